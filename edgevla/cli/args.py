"""Arguments and checks shared by the servo commands (motors, calibrate, bench bus)."""

from __future__ import annotations

import argparse
import sys

from edgevla.drivers.latency import check_latency


def add_robot_port(parser: argparse.ArgumentParser, robot_required: bool = True) -> None:
    parser.add_argument(
        "--robot", required=robot_required, help="robot name (so101_follower, koch_leader, ...) or YAML file"
    )
    parser.add_argument(
        "--port", required=True, help="serial device (/dev/ttyACM0, /dev/serial/by-id/...) or pyserial URL"
    )
    parser.add_argument("--baud", type=int, help="bus baud rate (default: the robot definition's)")


def warn_latency(port: str) -> None:
    report = check_latency(port)
    if report and report.too_high:
        print(f"warning: {report.advice()}", file=sys.stderr)
