"""`edgevla calibrate`: half-turn homing and range of motion of an arm, saved as a profile.

Hand-guided (default): torque off; hold the arm mid-range and press Enter (homing); move every
joint through its whole range and press Enter (ranges). `--auto` is for arms that move by
themselves, e.g. a virtual leader served with `--motion sweep`: it records the raw ranges for
`--seconds` and centres each joint's range on mid-turn. The steps and their checks are the
library's (`edgevla.drivers.arm_calibration`), shared with the TUI; the profile goes to the
user's calibration folder (lerobot's), never into the package.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable

from edgevla.cli.args import add_arm_id, add_robot_port, warn_latency


def configure(parser: argparse.ArgumentParser) -> None:
    add_robot_port(parser)
    add_arm_id(parser)
    parser.add_argument("--out", help="profile to write instead (a file of your choice)")
    parser.add_argument(
        "--auto", action="store_true", help="no prompts: record ranges while the arm moves itself"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="--auto: how long to record ranges")
    parser.set_defaults(handler=run)


def _enter_pressed() -> threading.Event:
    pressed = threading.Event()

    def wait():
        sys.stdin.readline()
        pressed.set()

    threading.Thread(target=wait, daemon=True).start()
    return pressed


def _after(seconds: float) -> Callable[[], bool]:
    deadline = time.monotonic() + seconds
    return lambda: time.monotonic() >= deadline


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    from edgevla.drivers.arm_calibration import ArmCalibration, review_ranges, save_profile
    from edgevla.drivers.bus import MotorBus
    from edgevla.drivers.calibration import profile_path, writable_profile
    from edgevla.drivers.safety import disable_torque
    from edgevla.hardware import load_robot

    robot = load_robot(args.robot)
    out = writable_profile(Path(args.out) if args.out else profile_path(robot, args.arm_id))
    console = Console(stderr=True)
    warn_latency(args.port)

    def table(positions, mins, maxes) -> Table:
        view = Table("joint", "min", "now", "max", title=f"{robot.name}: ranges so far")
        for joint in positions:
            view.add_row(joint, str(mins[joint]), str(positions[joint]), str(maxes[joint]))
        return view

    with MotorBus.for_robot(robot, args.port, args.baud) as bus:
        steps = ArmCalibration(bus, robot, auto=args.auto)
        try:
            steps.prepare()
            if args.auto:
                steps.start()
                stop = _after(args.seconds)
            else:
                console.print(
                    f"Torque is off. Move {robot.name} to the MIDDLE of its range, then press Enter."
                )
                input()
                steps.start()
                console.print("Now move EVERY joint through its whole range. Press Enter when done.")
                stop = _enter_pressed().is_set
            with Live(console=console, transient=True) as live:
                calibration = steps.record(stop, on_sample=lambda *s: live.update(table(*s)))
            steps.write(calibration)
        finally:
            disable_torque(bus)
    for joint, why in review_ranges(calibration, robot).items():
        console.print(f"warning: {joint}: {why}")
    save_profile(calibration, out)
    for joint, cal in calibration.items():
        console.print(f"{joint:>14}: offset {cal.homing_offset:5d}  range {cal.range_min}..{cal.range_max}")
    print(f"saved {out}")
    return 0
