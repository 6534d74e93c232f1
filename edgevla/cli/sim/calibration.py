"""`edgevla sim calibration`: write the simulated arms' calibration profiles (lerobot JSON)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgevla.sim.joints import SIM_CALIBRATION_DIR


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arm", default="so101", help="kinematics and robot pair (default so101)")
    parser.add_argument(
        "--out", type=Path, default=SIM_CALIBRATION_DIR, help=f"folder (default {SIM_CALIBRATION_DIR})"
    )
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from edgevla.hardware import load_robot_pair
    from edgevla.sim.joints import write_sim_calibration
    from edgevla.sim.kinematics import load_kinematics

    for path in write_sim_calibration(load_kinematics(args.arm), list(load_robot_pair(args.arm)), args.out):
        print(path)
    return 0
