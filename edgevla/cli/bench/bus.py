"""`edgevla bench bus`: the control loop's bus cost, sync read Present_Position + sync write Goal_Position.

Against a real arm give --port; without it the virtual firmware is served from a separate
process (`edgevla firmware serve`), so the figure is the host side of the loop plus the pty
round trip. A pty is not a UART: there is no wire time (6 replies of 8 bytes at 1 Mbps take
~0.5 ms on a real bus) and no USB latency timer, so real-bus figures differ.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from contextlib import contextmanager

import numpy as np

from edgevla.cli.args import add_robot_port, warn_latency


def configure(parser: argparse.ArgumentParser) -> None:
    add_robot_port(parser, without_port="serve the virtual arm in a subprocess")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to run the loop")
    parser.add_argument(
        "--no-configure", action="store_true", help="keep the servos' settings (return delay...)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


@contextmanager
def virtual_arm(robot: str):
    """`edgevla firmware serve --robot ROBOT` in its own process; yields its pty path."""
    from edgevla.firmware.launch import served_firmware

    with served_firmware(robot) as firmware:
        yield firmware.port


def measure(bus, seconds: float) -> dict:
    names = list(bus.motors)
    cycles = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        present = bus.sync_read("Present_Position", names)
        bus.sync_write("Goal_Position", present)
        cycles.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    ms = np.array(cycles) * 1000
    stats = bus.stats.as_dict()
    return {
        "cycles": len(cycles),
        "cycles_per_s": round(len(cycles) / elapsed, 1),
        "cycle_ms_p50": round(float(np.percentile(ms, 50)), 3),
        "cycle_ms_p99": round(float(np.percentile(ms, 99)), 3),
        "cycle_ms_max": round(float(ms.max()), 3),
        "retries": stats["retries"],
        "errors": stats["errors"],
        "failures": stats["failures"],
    }


def run(args: argparse.Namespace) -> int:
    from edgevla.drivers.bus import MotorBus
    from edgevla.drivers.setup import configure as configure_bus
    from edgevla.hardware import load_robot

    robot = load_robot(args.robot)
    with virtual_arm(robot.name) if args.port is None else _given(args.port) as port:
        warn_latency(port)
        with MotorBus.for_robot(robot, port, args.baud) as bus:
            if not args.no_configure:
                configure_bus(bus, robot)  # return delay 0 (factory 500 us per servo)
            result = measure(bus, args.seconds)
    result.update(
        robot=robot.name,
        servos=len(robot.motors),
        port="virtual (pty, firmware in a subprocess)" if args.port is None else args.port,
        machine=f"{platform.machine()}, {os.cpu_count()} CPUs",
    )
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{robot.name} on {result['port']}: {result['cycles_per_s']} cycles/s, "
            f"p50 {result['cycle_ms_p50']} ms, p99 {result['cycle_ms_p99']} ms, "
            f"{result['retries']} retries, {result['errors']} errors"
        )
    return 0


@contextmanager
def _given(port: str):
    yield port
