"""Closed-loop evaluation: a policy drives the simulated arm through the async runtime.

Per episode: the scene of seed `seed + i` is set up, the follower is put at the episode's start
pose, a fresh control loop (edgevla.hosting.control) runs the policy with the episode's
instruction and the simulator's cameras (read through `sim:NAME` sources, as `edgevla run`
would), until the task succeeds or time runs out. One policy worker serves every episode.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgevla.hardware import load_robot
from edgevla.hosting.control import PolicyChoice, control, open_for_robot
from edgevla.policy_io import Policy
from edgevla.runtime.dual import DualConfig, Systems
from edgevla.sim.arms import open_sim_arms
from edgevla.sim.clip import pillow_image, save_frames, stack_views
from edgevla.sim.world import SimConfig, SimWorld

# Eval seeds start here so they never coincide with the demonstration seeds (0, 1, 2...).
EVAL_SEED = 100_000


@dataclass(frozen=True)
class EvalConfig:
    task: str = "reach"
    episodes: int = 10
    seed: int = EVAL_SEED
    max_seconds: float = 10.0  # an episode that has not succeeded by then fails
    fps: float = 30.0
    merge: str = "blend"
    cameras: tuple[str, ...] = ("front",)
    size: int = 96
    sizes: tuple[tuple[str, int], ...] = ()  # (camera, size) for cameras not `size` square
    gif: Path | None = None  # save the first episode's camera view(s) here
    bus: bool = True  # follower on the virtual servo firmware + real driver (False: in-process)
    dual: DualConfig | None = None  # the dual system (System 2 at its own pace); None: single-rate


@dataclass
class EpisodeResult:
    seed: int
    instruction: str
    success: bool
    time_to_success_s: float | None
    final_distance_m: float
    chunks: int
    chunk_ms_p50: float
    ticks_starved: int
    target: str = ""  # the colour of the named cube
    went_to: str = ""  # the cube the tool ended over (nearest in the table plane)
    recovered: bool | None = None  # touched again after a push at the end (None: not pushed)


@dataclass
class EvalReport:
    task: str
    policy: str
    merge: str
    mode: str = "single-rate"  # or the dual system's description
    episodes: list[EpisodeResult] = field(default_factory=list)
    runtime: dict = field(default_factory=dict)  # loop statistics of every episode together
    # control periods of every episode: (bin upper edge ms, ticks) for the non-empty bins
    period_histogram: list[tuple[float, int]] = field(default_factory=list)
    queue_depth: list = field(default_factory=list)  # (seconds, depth) trace of the last episode

    def summary(self) -> dict:
        n = len(self.episodes)
        times = [e.time_to_success_s for e in self.episodes if e.success]
        chunk_ms = [e.chunk_ms_p50 for e in self.episodes if np.isfinite(e.chunk_ms_p50)]
        pushed = [e for e in self.episodes if e.recovered is not None]
        return {
            "task": self.task,
            "policy": self.policy,
            "merge": self.merge,
            "mode": self.mode,
            "episodes": n,
            "successes": len(times),
            "success_rate": len(times) / n if n else 0.0,
            "time_to_success_s": float(np.mean(times)) if times else None,
            "chunk_ms_p50": float(np.median(chunk_ms)) if chunk_ms else None,
            "ticks_starved": int(sum(e.ticks_starved for e in self.episodes)),
            # ended over the named cube, touching or not: does the policy read the instruction?
            "went_to_named_cube": sum(e.went_to == e.target for e in self.episodes) / n if n else 0.0,
            # after a push at the end (`--push`): does the policy read its camera or hold its pose?
            "recovered_rate": float(np.mean([e.recovered for e in pushed])) if pushed else None,
            "per_episode": [asdict(e) for e in self.episodes],
            "runtime": self.runtime,
            "period_histogram": self.period_histogram,
            "queue_depth": self.queue_depth,
        }


def describe_mode(dual: DualConfig | None) -> str:
    return "single-rate" if dual is None else dual.describe()


def trained_cameras(source: str | Path) -> tuple[tuple[str, ...], tuple[tuple[str, int], ...]] | None:
    """The simulator cameras a local policy was trained on, each at the size its demonstrations
    had, as an exported artifact's manifest or an edgevla checkpoint's config records them; None
    when there is no such record (remote, replay, lerobot checkpoint) or a camera is not simulated."""
    from edgevla.sim.render import CAMERAS

    path = Path(source)
    for record, section in (("manifest.json", None), ("edgevla_policy.json", "model")):
        if (path / record).is_file():
            data = json.loads((path / record).read_text())
            data = data.get(section, {}) if section else data
            names, shapes = data.get("cameras", []), data.get("camera_shapes", [])
            if names and len(names) == len(shapes) and all(n in CAMERAS for n in names):
                return tuple(names), tuple((n, int(s[0])) for n, s in zip(names, shapes, strict=True))
    return None


def eval_world_config(config: EvalConfig) -> SimConfig:
    return SimConfig.square(config.task, config.fps, config.cameras, config.size, config.sizes)


def open_eval_policy(choice: PolicyChoice, config: EvalConfig) -> Policy | Systems:
    """The chosen policy, opened to fit what an episode gives it: the simulated follower's joints
    (its robot definition), `config`'s cameras and rate; its two systems under `config.dual`."""
    follower = load_robot(eval_world_config(config).robot)
    return open_for_robot(choice, follower.joint_names, config.cameras, config.fps, config.dual is not None)


def evaluate(
    policy: Policy | Systems,
    config: EvalConfig,
    on_episode: Callable[[EpisodeResult], None] | None = None,
    world: SimWorld | None = None,
) -> EvalReport:
    """Run `config.episodes` episodes; `world` (built from `config` when None) lets a caller keep
    a handle on the simulator, e.g. a policy that reads it (OraclePolicy)."""
    from edgevla.runtime.loop import LoopConfig
    from edgevla.runtime.stats import LoopStats
    from edgevla.sim.clock import WorldClock

    if config.gif is not None:
        pillow_image()  # the clip is saved after the first episode: a missing extra is said now
    world = world or SimWorld(eval_world_config(config))
    world.reset(config.seed)
    report = EvalReport(config.task, policy.spec.name, config.merge, describe_mode(config.dual))
    loop_config = LoopConfig(fps=config.fps, merge=config.merge, dual=config.dual)
    with tempfile.TemporaryDirectory(prefix="edgevla-eval-") as tmp, open_sim_arms(world, config.bus) as arms:
        path = Path(tmp) / "sim.sock"
        with WorldClock(world, path, arms.follow) as clock:
            every_episode = LoopStats(config.fps)  # the runtime figures of all episodes together
            clip: list[np.ndarray] = []  # the first episode, as the cameras saw it
            if config.gif is not None:
                clock.on_frames = lambda images: clip.append(stack_views([images[c] for c in config.cameras]))
            with control(arms.follower, clock.camera_specs(), policy, loop_config) as hosted:
                for index in range(config.episodes):
                    episode = clock.change_scene(
                        lambda i=index: arms.start_episode(config.seed + i), hosted.cameras
                    )
                    loop = hosted.start(episode.instruction)
                    started = time.monotonic()
                    while not world.succeeded and time.monotonic() - started < config.max_seconds:
                        time.sleep(0.02)
                    elapsed = time.monotonic() - started
                    hosted.stop()
                    if clip and clock.on_frames is not None:
                        clock.on_frames = None
                        save_frames(clip, config.gif, config.fps)
                    stats = loop.stats.summary()
                    result = EpisodeResult(
                        seed=episode.seed,
                        instruction=episode.instruction,
                        success=world.succeeded,
                        time_to_success_s=round(elapsed, 3) if world.succeeded else None,
                        final_distance_m=round(world.monitor.distance, 4),
                        chunks=stats["chunks"],
                        chunk_ms_p50=stats["chunk_ms_p50"],
                        ticks_starved=stats["ticks_starved"],
                        target=episode.target,
                        went_to=world.nearest_cube(),
                    )
                    report.episodes.append(result)
                    every_episode.absorb(loop.stats)
                    if on_episode is not None:
                        on_episode(result)
                if report.episodes:  # the runtime figures, once, over every episode
                    runtime = every_episode.summary()
                    report.queue_depth = runtime.pop("queue_depth")  # the last episode's trace
                    report.runtime = runtime
                    hist = every_episode.period_ms
                    report.period_histogram = [
                        (round((i + 1) * hist.resolution, 3), int(hist.counts[i]))
                        for i in np.flatnonzero(hist.counts)
                    ]
    return report
