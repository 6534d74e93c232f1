"""Clockless evaluation (`edgevla eval --sync`): the model's own skill, with the runtime left out.

Per step: the simulator renders the observation, the policy returns a chunk, the first
`execute` actions are played through the in-process servo model (each joint slews at its
servo's top speed), in simulated time. No inference latency, no machine load, no bus: when a
policy succeeds here and fails through the async runtime (`edgevla eval`), look at latency,
merging and the loop; when it fails here too, the model itself is the problem. The sampling
noise is drawn from each episode's seed, so a run repeats exactly (an unseeded policy made the
same 12 episodes score 6/12 to 12/12 to the named cube).

Under the dual system (`config.dual`) System 2 runs on the frames of its own ticks of simulated
time (every 1/vlm_hz seconds, or before every N-th chunk) and each chunk is System 1 on the
state of then: how much the images' age alone costs, pushes included (System 2 sees the push
only at its next pass).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from edgevla.errors import EdgevlaError
from edgevla.evaluation.evaluate import EpisodeResult, EvalConfig, EvalReport, eval_world_config
from edgevla.policy_io import STATE_KEY, TIMESTAMP_KEY, Observation, Policy, image_key
from edgevla.runtime.dual import DualConfig, Systems
from edgevla.sim.world import SimWorld


class Chunks:
    """Single-rate: one full pass per chunk, on the frames and the state of the chunk's tick."""

    def __init__(self, policy: Policy, world: SimWorld, unused: list[str]):
        self.policy, self.world, self.unused = policy, world, unused
        self.contexts = self.holds = 0

    def observation(self) -> Observation:
        return {
            k: v for k, v in self.world.observation().items() if k not in self.unused
        }  # the wire is strict

    def start(self) -> None:
        """A new episode (a push does not start one)."""

    def tick(self, t: float) -> None:
        """Simulated time `t` has come (before the chunk of that tick, if any)."""

    def chunk(self, t: float, noise: np.ndarray) -> np.ndarray:
        self.contexts += 1
        return self.policy.infer(self.observation(), noise)


class DualChunks(Chunks):
    """The dual system in simulated time: System 2 on the frames of every 1/vlm_hz s (or of every
    N-th chunk's tick), System 1 for every chunk on the state of its tick. A context too old for
    `max_age_s` is never used: the chunk waits for a pass on its own frames (counted)."""

    def __init__(self, systems: Systems, dual: DualConfig, world: SimWorld, unused: list[str]):
        super().__init__(systems, world, unused)
        self.systems, self.dual = systems, dual
        self.episode, self.next_pass, self.since = 0, 0.0, None

    def start(self) -> None:
        self.episode, self.next_pass, self.since = self.episode + 1, 0.0, None

    def _encode(self, t: float) -> None:
        self.systems.encode(self.episode, {**self.observation(), TIMESTAMP_KEY: t})
        self.contexts += 1
        self.since = 0

    def tick(self, t: float) -> None:
        if self.dual.vlm_hz and t >= self.next_pass - 1e-9:
            self._encode(t)
            self.next_pass += 1.0 / self.dual.vlm_hz  # on schedule: the average rate is exactly vlm_hz

    def chunk(self, t: float, noise: np.ndarray) -> np.ndarray:
        every = self.dual.prefix_every
        if every and (self.since is None or self.since >= every):
            self._encode(t)
        state = {STATE_KEY: self.world.to_normalized(self.world.angles).astype(np.float32), TIMESTAMP_KEY: t}
        acted = self.systems.act(self.episode, state, self.dual.max_age_s, noise)
        if acted.actions is None:
            self.holds += 1
            self._encode(t)
            acted = self.systems.act(self.episode, state, self.dual.max_age_s, noise)
        self.since += 1
        return acted.actions


def evaluate_sync(
    policy: Policy | Systems,
    config: EvalConfig,
    execute: int,
    on_episode: Callable[[EpisodeResult], None] | None = None,
    world: SimWorld | None = None,
    every_target: bool = False,
    push_deg: float = 0.0,
) -> EvalReport:
    """`config.episodes` clockless episodes; `execute` actions of each chunk are played. `world`
    (built from `config` when None): for a policy that reads the simulator (OraclePolicy).
    `every_target`: each scene once per cube in it, named in turn (the same image and start
    state, only the instruction differs), so `went_to_named_cube` measures whether the policy
    reads its instruction (chance: 1 / cubes). `push_deg`: when an episode ends, the base joint is
    pushed round by that much, the way that moves the tool off the cube, and the policy gets
    `max_seconds` to touch it again (`recovered`): a policy that holds whatever pose it reached,
    instead of reading its camera, does not come back."""
    if not 1 <= execute <= policy.spec.chunk_size:
        raise EdgevlaError(
            f"--sync takes 1..{policy.spec.chunk_size} actions per chunk (its size), got {execute}"
        )
    world = world or SimWorld(eval_world_config(config))
    mode = "single-rate" if config.dual is None else config.dual.describe() + " (simulated time)"
    report = EvalReport(config.task, policy.spec.name, f"sync, {execute} actions per chunk", mode)
    max_ticks = int(config.max_seconds * config.fps)
    unused = [image_key(c) for c in config.cameras if c not in {s.name for s in policy.spec.cameras}]
    chunks = (
        Chunks(policy, world, unused)
        if config.dual is None
        else DualChunks(policy, config.dual, world, unused)
    )
    runs = [(config.seed + i, None) for i in range(config.episodes)]
    if every_target:
        runs = [(seed, c) for seed, _ in runs for c in dict.fromkeys(world.reset(seed).scene.color_names)]
    pan = world.kin.joint_names.index("shoulder_pan")
    for seed, target in runs:
        episode = world.reset(seed, target)
        chunks.start()
        chunk_ms: list[float] = []
        noise = np.random.default_rng(seed)
        tick = _play(chunks, world, execute, max_ticks, chunk_ms, noise)
        success, distance, went_to = world.succeeded, world.monitor.distance, world.nearest_cube()
        recovered = None
        if push_deg:
            # a hand pushes the base round, away from the cube; only the camera shows where it is
            pushes = [world.angles.copy(), world.angles.copy()]
            pushes[0][pan] += np.radians(push_deg)
            pushes[1][pan] -= np.radians(push_deg)
            world.rearm()
            tool = world.kin.tool_position(world.angles)  # off the named cube it touched (or is nearest)
            cube = min(episode.target_centers, key=lambda c: float(np.linalg.norm(tool - c)))
            world.set_angles(max(pushes, key=lambda a: np.linalg.norm(world.kin.tool_position(a) - cube)))
            _play(chunks, world, execute, tick + max_ticks, chunk_ms, noise, first=tick)
            recovered = world.succeeded
        result = EpisodeResult(
            seed=episode.seed,
            instruction=episode.instruction,
            success=success,
            time_to_success_s=round(tick / config.fps, 3) if success else None,
            final_distance_m=round(distance, 4),
            chunks=len(chunk_ms),
            chunk_ms_p50=float(np.median(chunk_ms)),
            ticks_starved=0,
            target=episode.target,
            went_to=went_to,
            recovered=recovered,
        )
        report.episodes.append(result)
        if on_episode is not None:
            on_episode(result)
    chunk_count = sum(e.chunks for e in report.episodes)
    report.runtime = {
        "dual_system": config.dual is not None,
        "chunks": chunk_count,
        "contexts": chunks.contexts,
    }
    report.runtime["holds_stale_context"] = chunks.holds  # waited for a pass on their own frames
    report.runtime["chunks_undecoded"] = getattr(policy, "holds", 0)  # token heads: chunks not decoded
    return report


def _play(
    chunks: Chunks,
    world: SimWorld,
    execute: int,
    max_ticks: int,
    chunk_ms: list[float],
    noise: np.random.Generator,
    first: int = 0,
) -> int:
    """Chunks from tick `first` until success or `max_ticks`; appends each inference time to
    `chunk_ms` and returns the ticks played. An episode's ticks run on through a push, so that
    System 2's simulated clock does. Each chunk's sampling noise comes from `noise`."""
    spec = chunks.policy.spec
    shape = (spec.chunk_size, spec.max_action_dim)
    fps = world.config.fps
    tick = first
    while tick < max_ticks and not world.succeeded:
        chunks.tick(tick / fps)
        started = time.perf_counter()
        chunk = np.asarray(
            chunks.chunk(tick / fps, noise.standard_normal(shape, dtype=np.float32)), np.float64
        )
        chunk_ms.append((time.perf_counter() - started) * 1e3)
        for index, action in enumerate(chunk[:execute]):
            if index:
                chunks.tick(tick / fps)
            tick += 1
            if world.step_servos(world.from_normalized(action)) or tick >= max_ticks:
                break
    return tick - first
