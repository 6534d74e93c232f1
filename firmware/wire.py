"""What the two vendor protocol modules share: a parsed instruction, a reply, the bus they act on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from edgevla.firmware.servo import VirtualServo


@dataclass(frozen=True)
class Instruction:
    id: int
    code: int
    params: bytes  # un-stuffed
    crc_ok: bool  # Dynamixel answers a CRC error; Feetech drops such packets while parsing
    size: int  # bytes on the wire (for the wire-time model)


@dataclass(frozen=True)
class Reply:
    servo: VirtualServo  # who sends it (its return delay, its place in fault injection)
    packet: bytes


class BusView(Protocol):
    """The servos an instruction reaches: plugged in, not silenced, at the host's baud rate."""

    now: float

    def servos_with_id(self, servo_id: int) -> list[VirtualServo]: ...

    def all_servos(self) -> list[VirtualServo]: ...
