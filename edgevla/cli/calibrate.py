"""`edgevla calibrate`: half-turn homing and range of motion of an arm, saved as a profile.

Hand-guided (default): torque off; hold the arm mid-range and press Enter (homing); move every
joint through its whole range and press Enter (ranges). `--auto` is for arms that move by
themselves, e.g. a virtual leader served with `--motion sweep`: it records the raw ranges for
`--seconds` and centres each joint's range on mid-turn.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

from edgevla.cli.args import add_robot_port, warn_latency


def configure(parser: argparse.ArgumentParser) -> None:
    add_robot_port(parser)
    parser.add_argument("--out", help="profile to write (default: <calibration dir>/<robot>.json)")
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


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    from edgevla.drivers import homing
    from edgevla.drivers.bus import MotorBus
    from edgevla.drivers.calibration import calibration_path, save_calibration
    from edgevla.drivers.safety import disable_torque
    from edgevla.drivers.setup import configure as configure_bus
    from edgevla.hardware import load_robot

    robot = load_robot(args.robot)
    out = Path(args.out) if args.out else calibration_path(robot.name)
    console = Console(stderr=True)
    warn_latency(args.port)

    def table(positions, mins, maxes) -> Table:
        view = Table("joint", "min", "now", "max", title=f"{robot.name}: ranges so far")
        for joint in positions:
            view.add_row(joint, str(mins[joint]), str(positions[joint]), str(maxes[joint]))
        return view

    with MotorBus.for_robot(robot, args.port, args.baud) as bus:
        try:
            configure_bus(bus, robot)
            disable_torque(bus)
            if args.auto:
                homing.reset_homing(bus, robot.joint_names)
                deadline = time.monotonic() + args.seconds
                with Live(console=console, transient=True) as live:
                    raw = homing.record_ranges(
                        bus,
                        stop=lambda: time.monotonic() >= deadline,
                        on_sample=lambda *s: live.update(table(*s)),
                    )
                offsets, ranges = homing.centre_on_range(bus, raw)
            else:
                console.print(
                    f"Torque is off. Move {robot.name} to the MIDDLE of its range, then press Enter."
                )
                input()
                offsets = homing.home_half_turn(bus)
                console.print("Now move EVERY joint through its whole range. Press Enter when done.")
                pressed = _enter_pressed()
                with Live(console=console, transient=True) as live:
                    ranges = homing.record_ranges(
                        bus, stop=pressed.is_set, on_sample=lambda *s: live.update(table(*s))
                    )
            flat = [j for j, (lo, hi) in ranges.items() if hi - lo < 20]
            if flat:
                console.print(f"warning: joint(s) {', '.join(flat)} barely moved; their range is tiny")
            calibration = homing.build_calibration(bus, offsets, {j: ranges[j] for j in robot.joint_names})
            homing.write_calibration(bus, calibration, force=True)
        finally:
            disable_torque(bus)
    save_calibration(calibration, out)
    for joint, cal in calibration.items():
        console.print(f"{joint:>14}: offset {cal.homing_offset:5d}  range {cal.range_min}..{cal.range_max}")
    print(f"saved {out}")
    return 0
