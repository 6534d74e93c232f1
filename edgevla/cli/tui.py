"""`edgevla tui`: the terminal UI (calibration, motors, recipes); see docs/TUI.md."""

from __future__ import annotations

import argparse

from edgevla.cli.args import add_arm_id


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--robot", help="open straight on the calibration screen of this robot (needs its --port)"
    )
    parser.add_argument(
        "--port",
        action="append",
        default=[],
        help="serial device or pyserial URL to list on the start screen (repeatable); with --robot, "
        "where that robot is plugged",
    )
    add_arm_id(parser)
    parser.add_argument("--out", help="calibration profile to write instead (a file of your choice)")
    parser.add_argument(
        "--auto", action="store_true", help="the arm moves by itself (a virtual sweep): no centre pose"
    )
    parser.add_argument(
        "--compare",
        nargs=3,
        metavar=("PAIR", "LEADER_PORT", "FOLLOWER_PORT"),
        help="leader and follower side by side, e.g. --compare so101 /dev/ttyACM0 /dev/ttyACM1",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edgevla.errors import EdgevlaError
    from edgevla.hardware import load_robot, load_robot_pair

    if args.robot and len(args.port) != 1:
        raise EdgevlaError("--robot opens the calibration of one arm: give its --port once")
    if args.robot:
        load_robot(args.robot)  # a wrong name is a one-line error before the screen opens
    if args.compare:
        load_robot_pair(args.compare[0])
    from edgevla.tui.app import EdgevlaApp

    app = EdgevlaApp(
        args.robot,
        args.port[0] if args.robot else None,
        Path(args.out) if args.out else None,
        auto=args.auto,
        compare=args.compare,
        arm_id=args.arm_id,
        ports=tuple(args.port),
    )
    app.run()
    return int(app.return_code or 0)
