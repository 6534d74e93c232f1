"""`edgevla demo`: the embedded default. A small policy that edgevla trained on simulator demos
drives the simulated SO-101 through the async runtime, offline, on a CPU; prints success rate and
latency and saves what its cameras saw."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from edgevla.cli.args import add_policy_worker, add_sim_cameras, policy_choice, sim_cameras
from edgevla.paths import assets_dir

ASSET = assets_dir() / "small-reach"
# Preferred first: the torch-free int8 ONNX artifact, then fp32 ONNX, then the torch checkpoint.
VARIANTS = ("onnx-int8", "onnx-fp32", "checkpoint")


def shipped_policy(asset: Path | None = None) -> Path | None:
    asset = asset or ASSET
    for variant in VARIANTS:
        if (asset / variant).is_dir():
            return asset / variant
    return None


def configure(parser: argparse.ArgumentParser) -> None:
    add_policy_worker(parser, without_policy=f"the one shipped in {ASSET}")
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--max-seconds", type=float, default=10.0, help="time limit of an episode")
    parser.add_argument(
        "--gif", type=Path, default=Path("edgevla-demo.gif"), help="first episode's camera view"
    )
    add_sim_cameras(parser, default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edgevla.errors import EdgevlaError
    from edgevla.evaluation.evaluate import EvalConfig, eval_world_config, evaluate, open_eval_policy
    from edgevla.evaluation.oracle import OraclePolicy
    from edgevla.sim.world import SimWorld

    if args.episodes < 1:
        raise EdgevlaError("--episodes must be >= 1")
    source = args.policy or shipped_policy()
    say = (lambda *_: None) if args.json else print
    cameras, sizes = sim_cameras(args, source)
    config = EvalConfig(
        episodes=args.episodes, max_seconds=args.max_seconds, cameras=cameras, sizes=sizes, gif=args.gif
    )
    world = None
    started = time.monotonic()
    if source is None:
        # No trained policy ships yet: show the same robot-side path (simulator, virtual servos,
        # driver, async control loop) driven by the simulator's oracle, and say how to train one.
        say(f"edgevla demo: no trained policy in {ASSET} yet; make one with `make demo-data demo-train`.")
        say("  running the ORACLE policy (reads the simulator's true cube position, not the camera)")
        world = SimWorld(eval_world_config(config))
        policy = OraclePolicy(world)
    else:
        say(f"edgevla demo: policy {source}")
        choice = policy_choice(args, source)
        policy = open_eval_policy(choice, config)
        say(
            f"  policy '{policy.spec.name}' ready in {time.monotonic() - started:.1f} s "
            f"({choice.transport} worker)"
        )
    square = dict(sizes)
    views = ", ".join(f"{c} camera {square.get(c, config.size)} px" for c in cameras)
    say(
        "  simulated SO-101 follower on virtual servos (real driver over a pty), task 'reach' "
        f"(touch the named cube), {views}, {config.fps:g} fps"
    )

    def show(result) -> None:
        outcome = f"success in {result.time_to_success_s:.2f} s" if result.success else "missed"
        say(f'  "{result.instruction}": {outcome}, chunk p50 {result.chunk_ms_p50:.0f} ms')

    try:
        summary = evaluate(policy, config, show, world=world).summary()
    finally:
        policy.close()
    summary["wall_s"] = round(time.monotonic() - started, 1)
    summary["gif"] = str(args.gif)
    summary["policy"] = str(source) if source else "oracle"
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k not in ("queue_depth", "period_histogram")}))
    else:
        tts = summary["time_to_success_s"]
        print(
            f"success {summary['success_rate']:.0%} ({summary['successes']}/{summary['episodes']}), "
            f"time to success {'n/a' if tts is None else f'{tts:.2f} s'}, "
            f"chunk latency p50 {summary['chunk_ms_p50'] or float('nan'):.0f} ms, "
            f"control period p99 {summary['runtime'].get('period_ms_p99', float('nan')):.1f} ms; "
            f"camera view of episode 1: {args.gif}"
        )
    return 0
