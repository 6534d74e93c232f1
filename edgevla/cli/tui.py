"""`edgevla tui`: the terminal UI (calibration, motors, recipes); see docs/TUI.md."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--robot", help="open straight on the calibration screen of this robot (needs --port)"
    )
    parser.add_argument("--port", help="serial device or pyserial URL of that robot")
    parser.add_argument(
        "--out", help="calibration profile to write (default: <calibration dir>/<robot>.json)"
    )
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

    if bool(args.robot) != bool(args.port):
        raise EdgevlaError("--robot and --port go together (the arm to calibrate and where it is plugged)")
    if args.robot:
        load_robot(args.robot)  # a wrong name is a one-line error before the screen opens
    if args.compare:
        load_robot_pair(args.compare[0])
    from edgevla.tui.app import EdgevlaApp

    app = EdgevlaApp(
        args.robot, args.port, Path(args.out) if args.out else None, auto=args.auto, compare=args.compare
    )
    app.run()
    return int(app.return_code or 0)
