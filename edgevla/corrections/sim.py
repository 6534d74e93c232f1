"""A correction round in the simulator, unattended: the policy drives the simulated follower, the
scripted expert (`edgevla.sim.person.SimPerson`) watches and corrects it through the same virtual
leader arm a person would hold, and labels each attempt. The same `Rollout` as on real arms.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edgevla.cameras import CameraReader
from edgevla.corrections.rollout import Rollout, RolloutConfig, RolloutReport
from edgevla.corrections.takeover import TakeoverConfig
from edgevla.dataset import VideoConfig
from edgevla.dataset.meta import is_dataset
from edgevla.hardware import load_robot
from edgevla.hosting.control import PolicyChoice
from edgevla.policy_io import Policy
from edgevla.sim.arms import open_sim_arms
from edgevla.sim.clock import WorldClock
from edgevla.sim.person import PersonConfig, SimPerson
from edgevla.sim.world import SimConfig, SimWorld

# Correction rounds draw their scenes from here: never a demonstration (0..) or eval (100000..) scene.
ROLLOUT_SEED = 200_000


@dataclass(frozen=True)
class SimRolloutConfig:
    task: str = "reach"
    episodes: int = 10
    seed: int = ROLLOUT_SEED
    fps: int = 30
    episode_seconds: float = 10.0
    cameras: tuple[str, ...] = ("front",)
    size: int = 96
    sizes: tuple[tuple[str, int], ...] = ()
    codec: str = "libsvtav1"
    merge: str = "blend"
    person: PersonConfig = field(default_factory=PersonConfig)
    takeover: TakeoverConfig = field(default_factory=lambda: TakeoverConfig(leader_threshold=0.0))


def sim_rollout(
    policy: Policy | PolicyChoice,
    config: SimRolloutConfig,
    dataset: Path,
    log: Callable[[str], None] = print,
    interrupted: Callable[[], bool] = lambda: False,
    world: SimWorld | None = None,
    watch: Callable[[object], None] | None = None,
) -> RolloutReport:
    """Attempts until `dataset` holds `config.episodes` episodes (appends to an existing one).
    `watch(served)` is handed the virtual arms (their firmware buses) before the first attempt."""
    world = world or SimWorld(
        SimConfig.square(config.task, config.fps, config.cameras, config.size, config.sizes)
    )
    world.reset(config.seed)
    person = SimPerson(world, load_robot(world.robot.name.replace("follower", "leader")), config.person)
    with (
        tempfile.TemporaryDirectory(prefix="edgevla-rollout-") as tmp,
        open_sim_arms(world, True, leader=True, hand=person) as arms,
        WorldClock(world, Path(tmp) / "sim.sock", arms.follow) as clock,
    ):
        if watch is not None:
            watch(arms.served)

        def start(index: int, cameras: Sequence[CameraReader]) -> str:
            return clock.change_scene(lambda: arms.start_episode(config.seed + index), cameras).instruction

        rollout = Rollout(
            RolloutConfig(
                dataset=dataset,
                task=config.task,
                fps=config.fps,
                episodes=config.episodes,
                episode_seconds=config.episode_seconds,
                reset_seconds=0.0,
                resume=is_dataset(dataset),
                merge=config.merge,
                video=VideoConfig(codec=config.codec),
                robot_type=world.robot.name,
                takeover=config.takeover,
            ),
            arms.follower,
            arms.leader,
            clock.camera_specs(),
            policy,
            person,
            log=log,
            episode_task=start,
            interrupted=interrupted,
        )
        return rollout.run()
