"""`edgevla bench sim`: camera render time, and the control loop driving the simulated arm
(period jitter, starvation, chunk latency, success) with a given policy (default: the oracle)."""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from edgevla.cli.args import (
    add_dual,
    add_merge,
    add_policy_worker,
    add_sim_cameras,
    dual_config,
    policy_choice,
    sim_cameras,
)
from edgevla.runtime.stats import RATE_FIGURES


def render_ms(
    cameras: tuple[str, ...], size: int, sizes: tuple[tuple[str, int], ...] = (), frames: int = 20
) -> dict[str, float]:
    """Median milliseconds to render one frame of each camera at `size` x `size` (or its own)."""
    from edgevla.sim.world import SimConfig, SimWorld

    world = SimWorld(SimConfig(cameras=cameras, width=size, height=size, sizes=sizes))
    episode = world.reset(0)
    out = {}
    for cam in cameras:
        times = []
        for i in range(frames):
            world.set_angles(episode.start + 0.01 * i)
            start = time.perf_counter()
            world.render(cam)
            times.append((time.perf_counter() - start) * 1000)
        out[f"{cam}@{world.renderer.cameras[cam].width}"] = float(np.median(times))
    return out


def configure(parser: argparse.ArgumentParser) -> None:
    add_policy_worker(parser, without_policy="the oracle, in-process")
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--max-seconds", type=float, default=8.0)
    add_merge(parser)
    add_dual(parser)
    add_sim_cameras(parser, default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edgevla.evaluation.evaluate import EvalConfig, eval_world_config, evaluate, open_eval_policy
    from edgevla.evaluation.oracle import OraclePolicy
    from edgevla.sim.world import SimWorld

    cameras, sizes = sim_cameras(args, args.policy)
    dual = dual_config(args)
    figures = {"render_ms": {**render_ms(cameras, args.size, sizes), **render_ms(cameras, 128)}}
    config = EvalConfig(
        episodes=args.episodes,
        max_seconds=args.max_seconds,
        merge=args.merge,
        cameras=cameras,
        size=args.size,
        sizes=sizes,
        dual=dual,
    )
    world = SimWorld(eval_world_config(config))
    policy = open_eval_policy(policy_choice(args), config) if args.policy else OraclePolicy(world)
    try:
        summary = evaluate(policy, config, world=world).summary()
    finally:
        policy.close()
    runtime = summary["runtime"]
    report = {
        "bench": "sim",
        "machine": platform.machine(),
        **figures,
        "policy": summary["policy"],
        "merge": args.merge,
        "mode": summary["mode"],
        "episodes": summary["episodes"],
        "success_rate": summary["success_rate"],
        "time_to_success_s": summary["time_to_success_s"],
        "chunk_ms_p50": summary["chunk_ms_p50"],
        "ticks_starved": summary["ticks_starved"],
        **{
            k: runtime.get(k) for k in ("period_ms_p50", "period_ms_p99", "period_ms_max", "period_ms_jitter")
        },
        **{k: runtime.get(k) for k in RATE_FIGURES},
        "period_histogram": summary["period_histogram"],
        "queue_depth": summary["queue_depth"],
    }
    if args.json:
        print(json.dumps(report))
    else:
        renders = ", ".join(f"{k} {v:.1f} ms" for k, v in report["render_ms"].items())
        print(f"render: {renders}")
        print(
            f"loop with {report['policy']} ({args.merge}): period p50 {report['period_ms_p50']:.2f} "
            f"p99 {report['period_ms_p99']:.2f} ms, jitter {report['period_ms_jitter']:.2f} ms, "
            f"starved {report['ticks_starved']} ticks, success {report['success_rate']:.0%}"
        )
        print(
            f"{report['mode']}: System 2 {report['system2_hz']:.1f} Hz, System 1 {report['system1_hz']:.1f} Hz; "
            f"per executed action: state {report['action_state_age_ms_p50']:.0f} ms old, frames "
            f"{report['action_frame_age_ms_p50']:.0f} ms (p50); holds {report['holds_stale_context']} stale, "
            f"{report['holds_no_context']} before the first context"
        )
    return 0
