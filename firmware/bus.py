"""The virtual bus: the servos on one wire, which of them hear the host, and what goes back.

Bytes from the host go through the vendor parser; each instruction reaches the servos that are
plugged in, not silenced by fault injection, and set to the baud rate the host uses (a servo at
another rate sees line noise and stays quiet). Their status packets come back in wire order,
each after its servo's return delay, through the fault injector. Two servos answering the same
id collide: their packets are merged as an idle-high line would (bitwise AND), i.e. garbage.
"""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from edgevla.errors import EdgevlaError
from edgevla.firmware import dynamixel, feetech
from edgevla.firmware.faults import FaultInjector, Faults
from edgevla.firmware.motion import Hold, MotionSource
from edgevla.firmware.servo import VirtualServo
from edgevla.firmware.wire import Reply

PROTOCOLS = {"feetech": feetech, "dynamixel": dynamixel}
# A pause this long mid-packet makes it line noise: real servos reset their receiver on a gap.
PACKET_GAP_S = 0.05
BITS_PER_BYTE = 10  # 8N1: start bit, 8 data bits, stop bit
SPIN_LIMIT_S = 0.002  # delays shorter than this are busy-waited (see Transmission.wait)


@dataclass
class BusStats:
    instructions: int = 0  # well-formed packets heard by at least one servo rate
    replies: int = 0  # status packets put on the wire (after drops)
    ignored_baud: int = 0  # byte chunks no servo could hear (host at another baud rate)
    overflowed: int = 0  # status packets (partly) lost because the host did not read its input


@dataclass(frozen=True)
class Transmission:
    delay_s: float  # wait this long after the previous transmission
    packet: bytes

    def wait(self) -> None:
        """Wait `delay_s`. Short waits spin: a sleep hands the CPU away, and on a loaded machine
        getting it back can take tens of ms, far beyond a servo's return delay (<= 0.5 ms)."""
        if self.delay_s >= SPIN_LIMIT_S:
            time.sleep(self.delay_s)
            return
        end = time.perf_counter() + self.delay_s
        while time.perf_counter() < end:
            pass


class VirtualBus:
    """Servos of one vendor on one wire. Thread-safe: every public method takes the bus lock."""

    def __init__(
        self,
        vendor: str,
        servos: Sequence[VirtualServo],
        motion: MotionSource | None = None,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.monotonic,
        joint_names: Sequence[str] = (),
        wire_time: bool = False,
    ):
        self.protocol = PROTOCOLS[vendor]
        self.vendor = vendor
        self.servos = list(servos)
        self.joint_names = tuple(joint_names) or tuple(f"motor{i}" for i in range(len(self.servos)))
        self.plugged = [True] * len(self.servos)
        self.motion = motion or Hold()
        self.faults = faults or Faults()
        self.wire_time = wire_time  # add the bytes' transmission time at the bus baud rate to delays
        self.injector = FaultInjector(self.faults)
        self.stats = BusStats()
        self.clock = clock
        self.t0 = clock()
        self.now = self.t0
        self.lock = threading.RLock()
        self._buffer = bytearray()
        self._host_baud: int | None = None
        self._listening: list[VirtualServo] = []  # who hears the instruction being executed
        self._by_id: dict[int, list[VirtualServo]] = {}

    # --- the wire ----------------------------------------------------------------------------

    def receive(self, data: bytes, host_baud: int | None = None) -> list[Transmission]:
        """Bytes from the host at `host_baud` (None: every servo hears them) -> what comes back."""
        with self.lock:
            self._advance()
            if host_baud != self._host_baud:
                self._buffer.clear()  # a new baud rate: the partial packet is noise
            self._host_baud = host_baud
            if not self._hearing():
                self.stats.ignored_baud += 1
                return []
            self._buffer += data
            out: list[Transmission] = []
            for inst in self.protocol.parse(self._buffer):
                self.stats.instructions += 1
                self._listening = self._hearing()  # ids and bauds as they were when the packet arrived
                self._by_id = {}
                for servo in self._listening:
                    self._by_id.setdefault(servo.id, []).append(servo)
                out += self._transmit(self.protocol.execute(self, inst), inst.size)
            return out

    def wait_for_host(self, fds: Sequence[int]) -> list[int]:
        """Block until one of a link's `fds` is readable; return those that are.

        A link that waits PACKET_GAP_S mid-packet with no byte arriving has seen a pause on the
        wire, and the partial packet is noise. The pause is judged by waiting on the line, not by
        comparing arrival times: bytes that queued while a busy or descheduled firmware was not
        reading arrived on time (select() checks the fds once more after its timeout).
        """
        while True:
            with self.lock:
                mid_packet = bool(self._buffer)
            ready, _, _ = select.select(fds, [], [], PACKET_GAP_S if mid_packet else None)
            if ready:
                return ready
            with self.lock:  # no byte for PACKET_GAP_S: a real servo resets its receiver
                self._buffer.clear()

    def _seconds_on_wire(self, n_bytes: int, servo: VirtualServo) -> float:
        return n_bytes * BITS_PER_BYTE / servo.baudrate if self.wire_time else 0.0

    def _transmit(self, replies: list[Reply], request_size: int) -> list[Transmission]:
        out = []
        for i, group in enumerate(_collisions(replies, self.protocol.SENDER_AT)):
            packet = group[0].packet
            for other in group[1:]:
                packet = (
                    bytes(a & b for a, b in zip(packet, other.packet, strict=False))
                    + other.packet[len(packet) :]
                )
            delay = max(r.servo.return_delay_s for r in group) + self.faults.delay_ms / 1000
            # the servo starts after the whole request arrived; the host has the reply after its last byte
            delay += self._seconds_on_wire(len(packet) + (request_size if i == 0 else 0), group[0].servo)
            packet = self.injector.apply(packet)
            if packet is not None:
                self.stats.replies += 1
                out.append(Transmission(delay, packet))
        return out

    def _hearing(self) -> list[VirtualServo]:
        # a silent servo sends nothing at all, as one whose cable came loose
        silent = self.faults.silent_ids if self.now - self.t0 >= self.faults.silent_after_s else frozenset()
        return [
            s
            for s, plugged in zip(self.servos, self.plugged, strict=True)
            if plugged and s.id not in silent and (self._host_baud is None or s.baudrate == self._host_baud)
        ]

    # BusView, used by the protocol modules while the lock is held.
    def servos_with_id(self, servo_id: int) -> list[VirtualServo]:
        return self._by_id.get(servo_id, [])

    def all_servos(self) -> list[VirtualServo]:
        return list(self._listening)

    # --- time --------------------------------------------------------------------------------

    def _advance(self) -> None:
        self.now = self.clock()
        t = self.now - self.t0
        for joint, servo in enumerate(self.servos):
            servo.advance(self.now, self.motion.position(joint, t))

    @contextmanager
    def inspect(self) -> Iterator[VirtualBus]:
        """Hold the bus still (no packets served) while reading several values consistently."""
        with self.lock:
            self._advance()
            yield self

    # --- for tests and tools -----------------------------------------------------------------

    def servo(self, key: int | str) -> VirtualServo:
        """A servo by joint name or current id (plugged or not), brought up to date."""
        with self.lock:
            self._advance()
            if isinstance(key, str):
                if key not in self.joint_names:
                    raise EdgevlaError(
                        f"virtual bus has no joint '{key}'; joints: {', '.join(self.joint_names)}"
                    )
                return self.servos[self.joint_names.index(key)]
            for servo in self.servos:
                if servo.id == key:
                    return servo
            raise EdgevlaError(f"virtual bus has no servo with id {key}")

    def positions(self) -> list[int]:
        """Present_Position of every servo, in joint order."""
        with self.inspect():
            return [s.present_position for s in self.servos]

    def plug_only(self, joint: int | str) -> None:
        """Connect one motor alone (the motor-setup flow: one new motor at a time)."""
        index = self.joint_names.index(joint) if joint in self.joint_names else joint
        if not isinstance(index, int) or not 0 <= index < len(self.servos):
            raise EdgevlaError(f"no motor {joint!r}; joints: {', '.join(self.joint_names)}")
        with self.lock:
            self.plugged = [i == index for i in range(len(self.servos))]

    def plug_all(self) -> None:
        with self.lock:
            self.plugged = [True] * len(self.servos)

    @property
    def dropped(self) -> int:
        return self.injector.dropped

    @property
    def corrupted(self) -> int:
        return self.injector.corrupted


def _collisions(replies: list[Reply], id_at: int) -> Iterator[list[Reply]]:
    """Group consecutive replies of different servos answering as the same id at the same moment."""
    group: list[Reply] = []
    for reply in replies:
        same_id = group and reply.packet[id_at] == group[0].packet[id_at]
        if same_id and all(reply.servo is not r.servo for r in group):
            group.append(reply)
            continue
        if group:
            yield group
        group = [reply]
    if group:
        yield group
