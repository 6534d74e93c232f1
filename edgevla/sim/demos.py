"""Demonstrations for training: the scripted expert teleoperates the simulated arm and edgevla's
own `Recorder` (the code behind `edgevla record`) writes the LeRobotDataset.

Each episode: the scene of seed `seed + i` is set up, both arms are at its start pose, the expert
holds the leader and moves it; the recorder mirrors leader -> follower at `fps`, reads the
simulator's cameras through `sim:NAME` sources, and stores state, clamped action, leader
command and images, with the episode's own instruction ("touch the red cube").

By default both arms are virtual servos on ptys driven by edgevla's real driver, the expert being
the firmware's hand on the leader (`edgevla.sim.arms`); `bus=False` keeps them in-process.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from edgevla.sim.arms import open_sim_arms
from edgevla.sim.world import SimConfig, SimWorld


@dataclass(frozen=True)
class DemoConfig:
    task: str = "reach"
    episodes: int = 50
    seed: int = 0
    fps: int = 30
    episode_seconds: float = 5.0
    cameras: tuple[str, ...] = ("front",)
    size: int = 96
    sizes: tuple[tuple[str, int], ...] = ()  # (camera, size) for cameras not `size` square
    codec: str = "libsvtav1"
    bus: bool = True  # arms on the virtual servo firmware + real driver (False: in-process)
    near_miss: float = 0.0  # fraction of episodes starting beside the named cube (corrections)


def record_demos(config: DemoConfig, dataset: Path, log: Callable[[str], None] = print) -> int:
    """Record until `dataset` holds `config.episodes` episodes (appends to an existing one).
    Returns the number of episodes recorded by this call."""
    from edgevla.cameras import open_cameras, parse_camera_spec
    from edgevla.dataset import VideoConfig
    from edgevla.dataset.meta import is_dataset, load_info
    from edgevla.record.recorder import EpisodeReport, RecordConfig, Recorder
    from edgevla.sim.clock import WorldClock

    world = SimWorld(
        replace(
            SimConfig.square(config.task, config.fps, config.cameras, config.size, config.sizes),
            near_miss=config.near_miss,
        )
    )
    world.reset(config.seed)
    have = load_info(dataset)["total_episodes"] if is_dataset(dataset) else 0
    with (
        tempfile.TemporaryDirectory(prefix="edgevla-demos-") as tmp,
        open_sim_arms(world, config.bus, leader=True) as arms,
    ):
        path = Path(tmp) / "sim.sock"
        follower, leader = arms.follower, arms.leader
        with WorldClock(world, path, arms.follow) as clock:
            cameras = open_cameras([parse_camera_spec(spec) for spec in clock.camera_specs()])

            def start_episode(index: int) -> str:
                return clock.change_scene(
                    lambda: arms.start_episode(config.seed + index), cameras
                ).instruction

            def saved(report: EpisodeReport) -> None:
                episode, outcome = world.episode, "success" if world.succeeded else "FAILED"
                if episode.chosen >= 0:  # of two named cubes, the one the expert drew
                    x, y = episode.chosen_cube.center[:2]
                    outcome += f", to cube {episode.chosen} at x {x:.3f} y {y:.3f} m"
                log(
                    f"episode {report.index + 1}/{config.episodes} (seed {episode.seed}): {episode.instruction}: {outcome}"
                )

            # one Recorder for the whole run: each episode gets its own scene and instruction
            record = RecordConfig(
                dataset=dataset,
                task=config.task,  # each episode's own instruction comes from start_episode
                fps=config.fps,
                episodes=config.episodes,
                episode_seconds=config.episode_seconds,
                reset_seconds=0.0,
                resume=have > 0,
                keyboard=False,
                video=VideoConfig(codec=config.codec),
                robot_type=world.robot.name,
            )
            recorder = Recorder(
                record,
                leader,
                follower,
                cameras,
                log=lambda _line: None,
                episode_task=start_episode,
                on_saved=saved,
            )
            try:
                recorder.run()
            finally:
                for camera in cameras:
                    camera.stop()
    return config.episodes - have
