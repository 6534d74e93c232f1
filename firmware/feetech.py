"""Feetech SCS/STS protocol, servo side: framing, checksum, status packets, instruction semantics.

Instruction: FF FF ID LEN INST PARAM... CHK   (LEN = params + 2, CHK = ~(ID+LEN+INST+params))
Status:      FF FF ID LEN ERR  PARAM... CHK
The error byte carries alarm bits (voltage 1, angle sensor 2, overheat 4, over-current 8,
overload 32). Instruction codes 0x06/0x0A/0x0B (factory reset, reboot, set middle) follow
Feetech's FTServo SDK; the scservo_sdk Python package only sends 0x01..0x05, 0x82, 0x83.
"""

from __future__ import annotations

from edgevla.firmware.servo import VirtualServo, WriteResult
from edgevla.firmware.wire import BusView, Instruction, Reply

BROADCAST_ID = 0xFE
SENDER_AT = 2  # index of the id byte in a status packet
PING, READ, WRITE, REG_WRITE, ACTION = 0x01, 0x02, 0x03, 0x04, 0x05
FACTORY_RESET, REBOOT, SET_MIDDLE = 0x06, 0x0A, 0x0B
SYNC_READ, SYNC_WRITE = 0x82, 0x83


def checksum(body: bytes) -> int:
    """~(sum of ID, LEN, INST/ERR and params) & 0xFF."""
    return ~sum(body) & 0xFF


def instruction_packet(servo_id: int, code: int, params: bytes = b"") -> bytes:
    """Host side of the framing; the firmware's tests use it to build requests by hand."""
    body = bytes([servo_id, len(params) + 2, code]) + params
    return b"\xff\xff" + body + bytes([checksum(body)])


def status_packet(servo_id: int, error: int, params: bytes = b"") -> bytes:
    body = bytes([servo_id, len(params) + 2, error & 0x7F]) + params
    return b"\xff\xff" + body + bytes([checksum(body)])


def parse(buf: bytearray) -> list[Instruction]:
    """Take every complete instruction packet off the front of `buf` (kept: a partial packet).

    A packet with a wrong checksum is dropped without a reply, as the servos do."""
    found: list[Instruction] = []
    while True:
        start = buf.find(b"\xff\xff")
        if start < 0:
            del buf[: len(buf) - 1 if buf.endswith(b"\xff") else len(buf)]
            return found
        del buf[:start]
        if len(buf) < 4:
            return found
        if buf[2] == 0xFF:  # FF FF FF: the header starts one byte later
            del buf[0]
            continue
        length = buf[3]
        if length < 2:
            del buf[:2]
            continue
        total = length + 4
        if len(buf) < total:
            return found
        packet = bytes(buf[:total])
        if checksum(packet[2:-1]) != packet[-1]:
            del buf[:2]
            continue
        del buf[:total]
        found.append(Instruction(packet[2], packet[4], packet[5:-1], True, total))


def _reply(
    servo: VirtualServo, addressed_id: int, level: int, params: bytes = b"", always: bool = False
) -> list[Reply]:
    # Response_Status_Level 0: only PING and READ answer; 1: every unicast instruction answers.
    # The level in force when the instruction arrived decides (a write of level 0 is answered).
    if not always and level == 0:
        return []
    return [Reply(servo, status_packet(addressed_id, servo.error_bits(), params))]


def execute(bus: BusView, inst: Instruction) -> list[Reply]:
    """Run one instruction on the servos that hear it; return the status packets in wire order."""
    p = inst.params
    if inst.code == SYNC_READ and inst.id == BROADCAST_ID and len(p) >= 2:
        replies = []
        for servo_id in p[2:]:
            for servo in bus.servos_with_id(servo_id):
                if servo.model.sync_read:
                    data = servo.read(p[0], p[1])
                    if data is not None:
                        replies.append(Reply(servo, status_packet(servo_id, servo.error_bits(), data)))
        return replies
    if inst.code == SYNC_WRITE and inst.id == BROADCAST_ID and len(p) >= 2:
        address, size = p[0], p[1]
        for i in range(2, len(p) - size, size + 1):
            for servo in bus.servos_with_id(p[i]):
                servo.write(address, p[i + 1 : i + 1 + size])
        return []
    broadcast = inst.id == BROADCAST_ID
    servos = bus.all_servos() if broadcast else bus.servos_with_id(inst.id)
    replies: list[Reply] = []
    for servo in servos:
        reply = _execute_one(bus, servo, inst)
        if reply is not None and (not broadcast or inst.code == PING):
            replies += reply
    return replies


def _execute_one(bus: BusView, servo: VirtualServo, inst: Instruction) -> list[Reply] | None:
    """One servo runs a unicast or broadcast instruction; None = it does not answer at all."""
    p, sid, level = inst.params, servo.id, servo.status_level
    if inst.code == PING:
        return _reply(servo, sid, level, always=True)
    if inst.code == READ and len(p) == 2:
        data = servo.read(p[0], p[1])
        return None if data is None else _reply(servo, sid, level, data, always=True)
    if inst.code in (WRITE, REG_WRITE) and len(p) >= 2:
        if inst.code == WRITE:
            result = servo.write(p[0], p[1:])
        else:
            servo.pending = (p[0], p[1:])
            result = WriteResult.OK
        return None if result is WriteResult.RANGE else _reply(servo, sid, level)
    if inst.code == ACTION:
        if servo.pending is not None:
            address, data = servo.pending
            servo.pending = None
            servo.write(address, data)
        return _reply(servo, sid, level)
    if inst.code == FACTORY_RESET:
        replies = _reply(servo, sid, level)
        servo.factory_reset(bus.now, keep_id=True)
        return replies
    if inst.code == REBOOT:
        replies = _reply(servo, sid, level)
        servo.power_on(bus.now)
        return replies
    if inst.code == SET_MIDDLE:
        servo.write(servo.model.register("Torque_Enable").address, b"\x80")
        return _reply(servo, sid, level)
    return None  # unknown instruction: the servo ignores it
