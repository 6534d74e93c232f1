"""`edgevla rollout`: a policy drives the follower, you correct it with the leader arm, and every
attempt is recorded as one episode with its interventions flagged (docs/CORRECTIONS.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgevla.cli.args import add_arm_pair, add_cameras, add_fps, add_merge, add_policy_worker


def configure(parser: argparse.ArgumentParser) -> None:
    add_arm_pair(parser)
    add_policy_worker(parser)
    add_cameras(parser)
    parser.add_argument(
        "--dataset", type=Path, required=True, help="dataset directory (appended to with --resume)"
    )
    parser.add_argument("--task", required=True, help="the instruction given to the policy and stored")
    parser.add_argument(
        "--episodes", type=int, default=10, help="attempts the dataset holds when done (default 10)"
    )
    parser.add_argument("--episode-seconds", type=float, default=30.0, help="longest attempt (default 30)")
    parser.add_argument(
        "--reset-seconds",
        type=float,
        default=10.0,
        help="time to reset the scene between attempts (default 10)",
    )
    add_fps(parser, "control and frame rate", 30, whole=True)
    add_merge(parser)
    parser.add_argument(
        "--resume", action="store_true", help="repair an interrupted dataset and append to it"
    )
    parser.add_argument(
        "--no-keyboard", action="store_true", help="no raw-tty keys (then only the leader takes over)"
    )
    parser.add_argument("--vcodec", default="libsvtav1", choices=["libsvtav1", "libx264"])
    parser.add_argument(
        "--handover-speed",
        type=float,
        default=90.0,
        help="normalised units per second the leader is driven at to the follower's pose (default 90)",
    )
    parser.add_argument(
        "--leader-threshold",
        type=float,
        default=8.0,
        help="moving the resting leader this far (normalised units) takes over; 0: keys only (default 8)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edgevla.cli.args import check_number, policy_choice
    from edgevla.corrections.rollout import KEYS_HELP, ROLLOUT_KEYS, KeyOperator, Rollout, RolloutConfig
    from edgevla.corrections.takeover import TakeoverConfig
    from edgevla.dataset import VideoConfig
    from edgevla.record.arms import open_arm_pair
    from edgevla.record.keyboard import KeyboardControls
    from edgevla.signals import stop_on_signals

    check_number("--episodes", args.episodes, minimum=1)
    check_number("--episode-seconds", args.episode_seconds, above=0)
    check_number("--reset-seconds", args.reset_seconds, minimum=0)
    check_number("--handover-speed", args.handover_speed, above=0)
    check_number("--leader-threshold", args.leader_threshold, minimum=0)
    interrupts = stop_on_signals()
    config = RolloutConfig(
        dataset=args.dataset,
        task=args.task,
        fps=args.fps,
        episodes=args.episodes,
        episode_seconds=args.episode_seconds,
        reset_seconds=args.reset_seconds,
        resume=args.resume,
        merge=args.merge,
        video=VideoConfig(codec=args.vcodec),
        takeover=TakeoverConfig(handover_speed=args.handover_speed, leader_threshold=args.leader_threshold),
    )
    with (
        open_arm_pair(args.robot, args.leader_port, args.follower_port, args.leader_id, args.follower_id) as (
            leader,
            follower,
        ),
        KeyboardControls(not args.no_keyboard, keys=ROLLOUT_KEYS) as keys,
    ):
        config.robot_type = follower.name
        if keys.enabled:
            _say(KEYS_HELP)
        rollout = Rollout(
            config,
            follower,
            leader,
            args.camera,
            policy_choice(args),
            KeyOperator(keys, _say),
            log=_say,
            interrupted=lambda: interrupts.stop_requested,
        )
        with interrupts.deferred():
            report = rollout.run()
    corrected = sum(a.interventions > 0 for a in report.attempts)
    _say(f"{args.dataset}: {len(report.attempts)} attempt(s) recorded this session, {corrected} corrected")
    return 130 if interrupts.stop_requested else 0


def _say(line: str) -> None:
    print(line, flush=True)
