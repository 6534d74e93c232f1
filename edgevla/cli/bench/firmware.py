"""`edgevla bench firmware`: what the virtual servo firmware costs per sync read.

Two figures for a sync read of Present_Position on every joint: the firmware's own processing
(`VirtualBus.receive`, no pty), and the round trip through a pty to `edgevla firmware serve`
running in its own process, read with a blocking select (no SDK busy-wait). Together they bound
what a bus benchmark on the virtual arm can reach on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import termios
import time
import tty

import numpy as np

from edgevla.errors import EdgevlaError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--robot", default="so101_follower", help="robot definition to emulate")
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of each measurement")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


def sync_read_request(bus) -> tuple[bytes, int]:
    """The sync read packet for Present_Position of all joints, and the reply size to expect."""
    from edgevla.firmware import dynamixel, feetech

    reg = bus.servos[0].model.register("Present_Position")
    ids = bytes(s.id for s in bus.servos)
    if bus.vendor == "feetech":
        packet = feetech.instruction_packet(
            feetech.BROADCAST_ID, feetech.SYNC_READ, bytes([reg.address, reg.size]) + ids
        )
        return packet, len(ids) * (6 + reg.size)
    params = reg.address.to_bytes(2, "little") + reg.size.to_bytes(2, "little") + ids
    return dynamixel.instruction_packet(dynamixel.BROADCAST_ID, dynamixel.SYNC_READ, params), len(ids) * (
        11 + reg.size
    )


def device_time(robot: str, seconds: float) -> list[float]:
    """Microseconds per sync read inside the firmware (parse, execute, status packets)."""
    from edgevla.firmware import build_bus

    bus = build_bus(robot)
    request, _ = sync_read_request(bus)
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        bus.receive(request)
        times.append((time.perf_counter() - start) * 1e6)
    return times


def pty_round_trip(robot: str, seconds: float) -> list[float]:
    """Milliseconds from writing a sync read to the pty until the last status byte is read."""
    from edgevla.firmware import build_bus
    from edgevla.firmware.launch import served_firmware
    from edgevla.hardware import load_robot

    robot_def = load_robot(robot)
    request, reply_size = sync_read_request(build_bus(robot_def))
    with served_firmware(robot) as server:
        fd = os.open(server.port, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(fd)
        attrs = termios.tcgetattr(fd)
        attrs[4] = attrs[5] = getattr(termios, f"B{robot_def.baudrate}")
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
        # the factory return delay (500 us per servo) would dominate the figure
        _zero_register(fd, build_bus(robot_def), "Return_Delay_Time")
        times = []
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            start = time.perf_counter()
            os.write(fd, request)
            got = 0
            while got < reply_size:
                if not select.select([fd], [], [], 1.0)[0]:
                    raise EdgevlaError("bench firmware: no reply from the firmware within 1 s")
                got += len(os.read(fd, 4096))
            times.append((time.perf_counter() - start) * 1e3)
        os.close(fd)
        return times


def _zero_register(fd: int, bus, name: str) -> None:
    from edgevla.firmware import dynamixel, feetech

    reg = bus.servos[0].model.register(name)
    if bus.vendor == "feetech":
        packet = feetech.instruction_packet(feetech.BROADCAST_ID, feetech.WRITE, bytes([reg.address, 0]))
    else:
        packet = dynamixel.instruction_packet(
            dynamixel.BROADCAST_ID, dynamixel.WRITE, bytes([reg.address, 0, 0])
        )
    os.write(fd, packet)  # broadcast: no status packet
    time.sleep(0.05)


def run(args: argparse.Namespace) -> int:
    if args.seconds <= 0:
        raise EdgevlaError("--seconds must be > 0")
    device = device_time(args.robot, args.seconds)
    trip = pty_round_trip(args.robot, args.seconds)
    result = {
        "robot": args.robot,
        "device_us_p50": float(np.percentile(device, 50)),
        "device_us_p99": float(np.percentile(device, 99)),
        "pty_round_trip_ms_p50": float(np.percentile(trip, 50)),
        "pty_round_trip_ms_p99": float(np.percentile(trip, 99)),
        "pty_round_trip_ms_max": float(max(trip)),
        "sync_reads": len(trip),
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, python {platform.python_version()}",
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{args.robot}: firmware {result['device_us_p50']:.0f} us/sync read (p99 "
            f"{result['device_us_p99']:.0f}); through a pty {result['pty_round_trip_ms_p50']:.2f} ms "
            f"(p99 {result['pty_round_trip_ms_p99']:.2f}, max {result['pty_round_trip_ms_max']:.1f}) "
            f"over {len(trip)} sync reads"
        )
    return 0
