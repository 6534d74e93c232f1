"""`edgevla sim rollout`: an unattended correction round in the simulator (docs/CORRECTIONS.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgevla.cli.args import add_fps, add_merge, add_policy_worker, add_sim_cameras, check_number


def configure(parser: argparse.ArgumentParser) -> None:
    from edgevla.corrections.sim import ROLLOUT_SEED
    from edgevla.sim.tasks import TASKS

    add_policy_worker(parser)
    parser.add_argument("--task", default="reach", choices=sorted(TASKS))
    add_sim_cameras(parser, default=None)
    add_fps(parser, "simulation and control rate")
    add_merge(parser)
    parser.add_argument(
        "--dataset", type=Path, required=True, help="dataset directory (appended to if it exists)"
    )
    parser.add_argument("--episodes", type=int, default=10, help="attempts the dataset holds when done")
    parser.add_argument(
        "--seed", type=int, default=ROLLOUT_SEED, help=f"scene of the first attempt (default {ROLLOUT_SEED})"
    )
    parser.add_argument(
        "--episode-seconds", type=float, default=10.0, help="an attempt not done by then fails (default 10)"
    )
    parser.add_argument("--vcodec", default="libsvtav1", choices=["libsvtav1", "libx264"])
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from edgevla.cli.args import policy_choice, sim_cameras
    from edgevla.corrections.sim import SimRolloutConfig, sim_rollout
    from edgevla.errors import EdgevlaError
    from edgevla.signals import stop_on_signals

    check_number("--episodes", args.episodes, minimum=1)
    check_number("--episode-seconds", args.episode_seconds, above=0)
    check_number("--fps", args.fps, above=0, maximum=1000)
    if args.fps != int(args.fps):
        raise EdgevlaError("--fps must be a whole number (the dataset's rate)")
    cameras, sizes = sim_cameras(args, args.policy)
    config = SimRolloutConfig(
        task=args.task,
        episodes=args.episodes,
        seed=args.seed,
        fps=int(args.fps),
        episode_seconds=args.episode_seconds,
        cameras=cameras,
        size=args.size,
        sizes=sizes,
        codec=args.vcodec,
        merge=args.merge,
    )
    interrupts = stop_on_signals()
    report = sim_rollout(
        policy_choice(args), config, args.dataset, interrupted=lambda: interrupts.stop_requested
    )
    attempts = report.attempts
    if attempts:
        successes = sum(a.success == 1 for a in attempts)
        interventions = sum(a.interventions for a in attempts)
        corrected = sum(a.intervention_frames for a in attempts)
        frames = sum(a.frames for a in attempts)
        print(
            f"{args.dataset}: {len(attempts)} attempt(s) recorded, {successes} succeeded; "
            f"{interventions} intervention(s) ({interventions / len(attempts):.2f} per attempt), "
            f"{corrected} of {frames} frames corrected"
        )
    return 130 if interrupts.stop_requested else 0
