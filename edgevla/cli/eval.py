"""`edgevla eval`: closed-loop success rate of a policy on the simulated arm (async runtime)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TextIO

from edgevla.cli.args import (
    add_dual,
    add_fps,
    add_merge,
    add_policy_worker,
    add_sim_cameras,
    dual_config,
    policy_choice,
    sim_cameras,
)


def configure(parser: argparse.ArgumentParser) -> None:
    from edgevla.evaluation.evaluate import EVAL_SEED
    from edgevla.sim.tasks import TASKS

    add_policy_worker(parser)
    parser.add_argument("--task", default="reach", choices=sorted(TASKS))
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument(
        "--seed", type=int, default=EVAL_SEED, help=f"first episode seed (default {EVAL_SEED})"
    )
    parser.add_argument("--max-seconds", type=float, default=10.0, help="time limit of an episode")
    add_fps(parser, "control and simulation rate")
    add_merge(parser)
    add_dual(parser)
    add_sim_cameras(parser, default=None)
    parser.add_argument(
        "--no-bus",
        action="store_true",
        help="arms in-process instead of virtual servos on ptys + the real driver (faster, no bytes)",
    )
    parser.add_argument("--gif", type=Path, help="save the first episode's camera view (.gif or .png strip)")
    parser.add_argument(
        "--sync",
        type=int,
        metavar="N",
        help="clockless: play N actions of each chunk in simulated time, no runtime, latency or bus "
        "(the model's own skill; compare with the default run to tell model from runtime problems)",
    )
    parser.add_argument(
        "--every-target",
        action="store_true",
        help="with --sync: run each scene once per cube, naming each in turn, and report how often "
        "the arm ends over the named one (does the policy read its instruction? chance is 1/3)",
    )
    parser.add_argument(
        "--push",
        type=float,
        default=0.0,
        metavar="DEG",
        help="with --sync: when an episode ends, push the base round by DEG degrees and give the "
        "policy --max-seconds to touch the cube again (recovered_rate: does it read its camera or "
        "hold whatever pose it reached?)",
    )
    parser.add_argument(
        "--episodes-out",
        type=Path,
        metavar="FILE.jsonl",
        help="append each episode's result to FILE as one JSON line the moment it ends, so a run "
        "that fails or is stopped part-way keeps the episodes it finished",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edgevla.cli.args import check_number
    from edgevla.errors import EdgevlaError
    from edgevla.evaluation.evaluate import EvalConfig, evaluate, open_eval_policy

    if args.episodes < 1:
        raise EdgevlaError("--episodes must be positive")
    check_number("--max-seconds", args.max_seconds, above=0)
    check_number("--fps", args.fps, above=0, maximum=1000)
    check_number("--push", args.push, minimum=0, maximum=45)
    dual = dual_config(args)
    cameras, sizes = sim_cameras(args, args.policy)
    if args.sync is not None and (args.sync < 1 or args.gif or args.merge != "blend"):
        raise EdgevlaError("--sync N needs N >= 1 and takes no --gif or --merge (no runtime runs)")
    if args.push and (args.sync is None or not 0 < args.push <= 45):
        raise EdgevlaError("--push DEG needs --sync N and 0 < DEG <= 45")
    if args.every_target and args.sync is None:
        raise EdgevlaError("--every-target needs --sync N (it replays each scene clockless)")
    episodes_out = _open_episodes_out(args.episodes_out)
    config = EvalConfig(
        task=args.task,
        episodes=args.episodes,
        seed=args.seed,
        max_seconds=args.max_seconds,
        fps=args.fps,
        merge=args.merge,
        cameras=cameras,
        size=args.size,
        sizes=sizes,
        gif=args.gif,
        bus=not args.no_bus,
        dual=dual,
    )
    policy = open_eval_policy(policy_choice(args), config)

    finished = 0

    def show(result) -> None:
        nonlocal finished
        finished += 1
        if episodes_out is not None:
            episodes_out.write(json.dumps(asdict(result)) + "\n")
            episodes_out.flush()
        # progress on stderr, also with --json (whose one object goes to stdout)
        outcome = f"success in {result.time_to_success_s:.2f} s" if result.success else "fail"
        print(
            f'  seed {result.seed}: "{result.instruction}" {outcome} '
            f"(final distance {result.final_distance_m * 100:.1f} cm, over the {result.went_to} cube, "
            f"chunk p50 {result.chunk_ms_p50:.0f} ms)"
            + (
                "" if result.recovered is None else f"; pushed: {'recovered' if result.recovered else 'lost'}"
            ),
            file=sys.stderr,
            flush=True,
        )

    try:
        if args.sync is None:
            report = evaluate(policy, config, show)
        else:
            from edgevla.evaluation.rollout import evaluate_sync

            report = evaluate_sync(
                policy, config, args.sync, show, every_target=args.every_target, push_deg=args.push
            )
    except (EdgevlaError, OSError) as error:
        kept = f"; they are in {args.episodes_out}" if episodes_out and finished else ""
        raise EdgevlaError(f"eval stopped ({finished} episodes finished): {error}{kept}") from error
    finally:
        policy.close()
        if episodes_out is not None:
            episodes_out.close()
    summary = report.summary()
    if args.json:
        print(json.dumps(summary))
    else:
        tts = summary["time_to_success_s"]
        print(
            f"{summary['policy']} on {args.task} ({summary['merge']}, {summary['mode']}): success {summary['success_rate']:.0%} "
            f"({summary['successes']}/{summary['episodes']}), time to success "
            f"{'n/a' if tts is None else f'{tts:.2f} s'}, chunk p50 {summary['chunk_ms_p50'] or float('nan'):.0f} ms, "
            f"starved ticks {summary['ticks_starved']}, ended over the named cube "
            f"{summary['went_to_named_cube']:.0%}"
            + (
                ""
                if summary["recovered_rate"] is None
                else f", recovered from a push {summary['recovered_rate']:.0%}"
            )
        )
    return 0


def _open_episodes_out(path: Path | None) -> TextIO | None:
    """The --episodes-out file, opened to append before any episode runs (a bad path fails now,
    not after an hour of episodes)."""
    from edgevla.errors import EdgevlaError

    if path is None:
        return None
    try:
        return path.open("a", encoding="utf-8")
    except OSError as error:
        raise EdgevlaError(
            f"--episodes-out {path}: cannot write there ({error.strerror}); give a writable path"
        ) from error
