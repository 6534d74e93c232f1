"""Virtual arms: a bus of virtual servos built from a robot definition, served on a pty."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edgevla.firmware.bus import VirtualBus
from edgevla.firmware.faults import Faults
from edgevla.firmware.motion import MotionSource
from edgevla.firmware.pty_link import PtyServer
from edgevla.firmware.registry import register, unregister
from edgevla.firmware.servo import VirtualServo
from edgevla.firmware.tcp_link import TcpServer
from edgevla.hardware import RobotDef, load_robot

SWITCH_INTERVAL_S = 0.0005


def build_bus(
    robot: str | Path | RobotDef,
    *,
    fresh: bool = False,
    motors: int | None = None,
    baud: int | None = None,
    motion: MotionSource | None = None,
    faults: Faults | None = None,
    clock: Callable[[], float] = time.monotonic,
    wire_time: bool = False,
) -> VirtualBus:
    """The robot's servos, joints mid-range.

    Set up (default): each servo has the id of its joint and the robot's baud rate (or `baud`),
    every other register at its factory value, as after a motor-setup run.
    `fresh`: straight from the box (factory id 1 and factory baud rate), only the first motor
    plugged in; `VirtualBus.plug_only(i)` swaps in the next one. `motors` keeps the first N.
    `wire_time`: replies also wait for the bytes' transmission time at the bus baud rate (a pty
    is otherwise faster than any serial line)."""
    robot = robot if isinstance(robot, RobotDef) else load_robot(robot)
    chosen = robot.motors[:motors] if motors else robot.motors
    now = clock()
    servos = []
    for motor in chosen:
        servo = VirtualServo(motor.servo, now)
        if not fresh:
            rate = baud or robot.baudrate
            settings = {"ID": motor.id, "Baud_Rate": motor.servo.baud_code(rate)}
            for name, value in settings.items():
                servo.set(name, value)
                reg = motor.servo.register(name)
                servo.flash[reg.address : reg.address + reg.size] = servo.mem[
                    reg.address : reg.address + reg.size
                ]
        servos.append(servo)
    bus = VirtualBus(
        robot.vendor,
        servos,
        motion=motion,
        faults=faults,
        clock=clock,
        joint_names=[m.name for m in chosen],
        wire_time=wire_time,
    )
    if fresh:
        bus.plug_only(0)
    return bus


@dataclass
class ServedRobot:
    """A virtual arm on a pty: open `port` with any serial library; inspect servos via `bus`."""

    robot: RobotDef
    bus: VirtualBus
    server: PtyServer
    tcp: TcpServer | None = None

    @property
    def port(self) -> str:
        return self.server.port

    @property
    def url(self) -> str | None:
        """`socket://HOST:PORT` when also served on TCP."""
        return self.tcp.url if self.tcp else None


@contextmanager
def serve_robot(
    robot: str | Path | RobotDef,
    *,
    motion: MotionSource | None = None,
    faults: Faults | None = None,
    fresh: bool = False,
    motors: int | None = None,
    baud: int | None = None,
    link: str | Path | None = None,
    check_baud: bool = True,
    wire_time: bool = False,
    tcp: tuple[str, int] | None = None,
) -> Iterator[ServedRobot]:
    """Serve a virtual `robot` on a pseudo-terminal for the duration of the `with` block.

    The server is a thread of this process. A host that busy-waits for replies (both vendor
    SDKs do) holds the GIL, and at Python's default 5 ms switch interval the firmware thread
    answers late enough to hit SDK timeouts; the interval is lowered to 0.5 ms while serving.
    For timing figures serve from another process (`edgevla firmware serve`).
    `tcp=(host, port)` also serves the same bus on TCP (port 0: any free port; see `.url`)."""
    robot = robot if isinstance(robot, RobotDef) else load_robot(robot)
    bus = build_bus(
        robot, fresh=fresh, motors=motors, baud=baud, motion=motion, faults=faults, wire_time=wire_time
    )
    server = PtyServer(bus, link=link, check_baud=check_baud).start()
    try:
        network = TcpServer(bus, *tcp).start() if tcp else None
    except BaseException:
        server.close()
        raise
    previous = sys.getswitchinterval()
    sys.setswitchinterval(min(previous, SWITCH_INTERVAL_S))
    entry = register(server.port, server.device, robot.name)  # so the TUI lists the port
    try:
        yield ServedRobot(robot, bus, server, network)
    finally:
        unregister(entry)
        sys.setswitchinterval(previous)
        if network:
            network.close()
        server.close()
