"""Clockless evaluation (`edgevla eval --sync`): the model's own skill, with the runtime left out.

Per step: the simulator renders the observation, the policy returns a chunk, the first
`execute` actions are played through the in-process servo model (each joint slews at its
servo's top speed), in simulated time. No inference latency, no machine load, no bus: when a
policy succeeds here and fails through the async runtime (`edgevla eval`), look at latency,
merging and the loop; when it fails here too, the model itself is the problem. The sampling
noise is drawn from each episode's seed, so a run repeats exactly (an unseeded policy made the
same 12 episodes score 6/12 to 12/12 to the named cube).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from edgevla.errors import EdgevlaError
from edgevla.evaluation.evaluate import EpisodeResult, EvalConfig, EvalReport, eval_world_config
from edgevla.policy_io import Policy, image_key
from edgevla.sim.world import SimWorld


def evaluate_sync(
    policy: Policy,
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
    report = EvalReport(config.task, policy.spec.name, f"sync, {execute} actions per chunk")
    max_ticks = int(config.max_seconds * config.fps)
    unused = [image_key(c) for c in config.cameras if c not in {s.name for s in policy.spec.cameras}]
    runs = [(config.seed + i, None) for i in range(config.episodes)]
    if every_target:
        runs = [(seed, c) for seed, _ in runs for c in dict.fromkeys(world.reset(seed).scene.color_names)]
    pan = world.kin.joint_names.index("shoulder_pan")
    for seed, target in runs:
        episode = world.reset(seed, target)
        chunk_ms: list[float] = []
        noise = np.random.default_rng(seed)
        tick = _play(policy, world, execute, max_ticks, unused, chunk_ms, noise)
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
            _play(policy, world, execute, max_ticks, unused, chunk_ms, noise)
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
    report.runtime["chunks_held"] = getattr(policy, "holds", 0)  # token heads: chunks not decoded
    return report


def _play(
    policy: Policy,
    world: SimWorld,
    execute: int,
    max_ticks: int,
    unused: list[str],
    chunk_ms: list[float],
    noise: np.random.Generator,
) -> int:
    """Chunks until success or `max_ticks`; appends each inference time to `chunk_ms` and returns
    the ticks played. Each chunk's sampling noise comes from `noise`."""
    shape = (policy.spec.chunk_size, policy.spec.max_action_dim)
    tick = 0
    while tick < max_ticks and not world.succeeded:
        started = time.perf_counter()
        obs = {k: v for k, v in world.observation().items() if k not in unused}  # the wire is strict
        chunk = np.asarray(
            policy.infer(obs, noise.standard_normal(shape, dtype=np.float32)), dtype=np.float64
        )
        chunk_ms.append((time.perf_counter() - started) * 1e3)
        for action in chunk[:execute]:
            tick += 1
            if world.step_servos(world.from_normalized(action)) or tick >= max_ticks:
                break
    return tick
