"""`edgevla teleop`: the follower mirrors the leader (torque off) at a fixed rate, with live figures."""

from __future__ import annotations

import argparse
import json

from edgevla.cli.args import add_arm_pair, add_duration, add_fps


def configure(parser: argparse.ArgumentParser) -> None:
    add_arm_pair(parser)
    add_fps(parser, "loop rate", 60.0)
    add_duration(parser)
    parser.add_argument("--json", action="store_true", help="print the final figures as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.live import Live

    from edgevla.cli.args import check_number
    from edgevla.record.arms import open_arm_pair
    from edgevla.record.teleop import run_teleop
    from edgevla.signals import stop_on_signals

    check_number("--fps", args.fps, above=0, maximum=1000)
    check_number("--duration", args.duration, above=0)
    interrupts = stop_on_signals()
    console = Console(stderr=True)
    with open_arm_pair(
        args.robot, args.leader_port, args.follower_port, args.leader_id, args.follower_id
    ) as (leader, follower):
        console.print(f"teleop {leader.name} -> {follower.name} at {args.fps:g} Hz; Ctrl-C stops")
        with Live(console=console, transient=True) as live:

            def show(stats):
                s = stats.summary()
                live.update(
                    f"rate {s['rate_hz']:.1f}/{args.fps:g} Hz  latency p50 {s['latency_ms_p50']:.2f} ms "
                    f"p99 {s['latency_ms_p99']:.2f} ms  late {s['late']}  dropped {s['dropped']}  "
                    f"clamped {s['clamped_steps']}"
                )

            with interrupts.deferred(reraise=False):  # Ctrl-C is the normal end of a session
                stats = run_teleop(
                    leader, follower, args.fps, args.duration, show, lambda: interrupts.stop_requested
                )
    summary = stats.summary()
    print(json.dumps(summary) if args.json else ", ".join(f"{k} {v}" for k, v in summary.items()))
    return 0
