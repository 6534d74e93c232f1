"""Dynamixel protocol 2.0, servo side: framing, CRC-16, byte stuffing, status packets, instructions.

Instruction: FF FF FD 00 ID LEN_L LEN_H INST PARAM... CRC_L CRC_H   (LEN = params + 3)
Status:      FF FF FD 00 ID LEN_L LEN_H 55   ERR PARAM... CRC_L CRC_H
CRC-16 polynomial 0x8005 (init 0, no reflection) over everything before the CRC. Between the
length and the CRC every FF FF FD gets an extra FD (byte stuffing). The error field holds a
result code (1 result fail .. 7 access error) plus the alert bit 0x80 while a hardware alarm
is latched (Hardware_Error_Status says which).
"""

from __future__ import annotations

from edgevla.firmware.servo import VirtualServo, WriteResult
from edgevla.firmware.wire import BusView, Instruction, Reply

BROADCAST_ID = 0xFE
SENDER_AT = 4  # index of the id byte in a status packet
HEADER = b"\xff\xff\xfd\x00"
PING, READ, WRITE, REG_WRITE, ACTION, FACTORY_RESET, REBOOT, CLEAR = (
    0x01,
    0x02,
    0x03,
    0x04,
    0x05,
    0x06,
    0x08,
    0x10,
)
STATUS = 0x55
SYNC_READ, SYNC_WRITE, BULK_READ, BULK_WRITE = 0x82, 0x83, 0x92, 0x93

# Error field result codes.
RESULT_FAIL, INSTRUCTION_ERROR, CRC_ERROR, DATA_RANGE_ERROR = 0x01, 0x02, 0x03, 0x04
DATA_LENGTH_ERROR, DATA_LIMIT_ERROR, ACCESS_ERROR, ALERT = 0x05, 0x06, 0x07, 0x80
WRITE_ERRORS = {
    WriteResult.OK: 0,
    WriteResult.ACCESS: ACCESS_ERROR,
    WriteResult.RANGE: DATA_RANGE_ERROR,
    WriteResult.LIMIT: DATA_LIMIT_ERROR,
}


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = (crc << 1) ^ 0x8005 if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = ((crc << 8) ^ _CRC_TABLE[((crc >> 8) ^ byte) & 0xFF]) & 0xFFFF
    return crc


def stuff(body: bytes) -> bytes:
    """Insert FD after every FF FF FD in the instruction/params part."""
    out = bytearray()
    for i, byte in enumerate(body):
        out.append(byte)
        if byte == 0xFD and i >= 2 and body[i - 2] == 0xFF and body[i - 1] == 0xFF:
            out.append(0xFD)
    return bytes(out)


def unstuff(body: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(body):
        out.append(body[i])
        if body[i] == 0xFD and i >= 2 and body[i - 2] == 0xFF and body[i - 1] == 0xFF:
            i += 1  # skip the stuffed FD that follows
        i += 1
    return bytes(out)


def _packet(servo_id: int, body: bytes) -> bytes:
    body = stuff(body)
    length = len(body) + 2
    head = HEADER + bytes([servo_id, length & 0xFF, length >> 8]) + body
    crc = crc16(head)
    return head + bytes([crc & 0xFF, crc >> 8])


def instruction_packet(servo_id: int, code: int, params: bytes = b"") -> bytes:
    """Host side of the framing; the firmware's tests use it to build requests by hand."""
    return _packet(servo_id, bytes([code]) + params)


def status_packet(servo_id: int, error: int, params: bytes = b"") -> bytes:
    return _packet(servo_id, bytes([STATUS, error]) + params)


def parse(buf: bytearray) -> list[Instruction]:
    """Take every complete instruction packet off the front of `buf` (kept: a partial packet)."""
    found: list[Instruction] = []
    while True:
        start = buf.find(HEADER[:3])
        if start < 0:
            keep = 2 if buf.endswith(b"\xff\xff") else 1 if buf.endswith(b"\xff") else 0
            del buf[: len(buf) - keep]
            return found
        del buf[:start]
        if len(buf) < 7:
            return found
        if buf[3] != 0x00:  # FF FF FD FD is stuffed data, not a header
            del buf[:3]
            continue
        length = buf[5] | buf[6] << 8
        if length < 3:
            del buf[:3]
            continue
        total = 7 + length
        if len(buf) < total:
            return found
        packet = bytes(buf[:total])
        del buf[:total]
        if packet[7] == STATUS:  # another device's status packet on the bus
            continue
        crc_ok = crc16(packet[:-2]) == (packet[-2] | packet[-1] << 8)
        body = unstuff(packet[7:-2])
        found.append(Instruction(packet[4], body[0], body[1:], crc_ok, total))


def _error(servo: VirtualServo, code: int = 0) -> int:
    return code | (ALERT if servo.hardware_error else 0)


def _answers(servo: VirtualServo, code: int) -> bool:
    """Status_Return_Level 0: PING only; 1: PING and READs; 2: every instruction."""
    level = servo.status_level
    if code == PING:
        return True
    if code in (READ, SYNC_READ, BULK_READ):
        return level >= 1
    return level >= 2


def _u16(data: bytes, at: int) -> int:
    return data[at] | data[at + 1] << 8


def execute(bus: BusView, inst: Instruction) -> list[Reply]:
    """Run one instruction on the servos that hear it; return the status packets in wire order."""
    p = inst.params
    if not inst.crc_ok:
        if inst.id == BROADCAST_ID:
            return []
        return [Reply(s, status_packet(s.id, _error(s, CRC_ERROR))) for s in bus.servos_with_id(inst.id)]
    if inst.id == BROADCAST_ID and inst.code in (SYNC_READ, SYNC_WRITE, BULK_READ, BULK_WRITE):
        return _group(bus, inst.code, p)
    broadcast = inst.id == BROADCAST_ID
    servos = bus.all_servos() if broadcast else bus.servos_with_id(inst.id)
    replies: list[Reply] = []
    for servo in sorted(servos, key=lambda s: s.id):
        sid, answers = servo.id, _answers(servo, inst.code)  # as configured when the packet arrived
        error, params = _execute_one(bus, servo, inst)
        if (not broadcast or inst.code == PING) and answers:
            replies.append(Reply(servo, status_packet(sid, _error(servo, error), params)))
        if inst.code == REBOOT and error == 0:
            servo.power_on(bus.now)
        if inst.code == FACTORY_RESET and error == 0:
            keep_id, keep_baud = p[:1] in (b"\x01", b"\x02"), p[:1] == b"\x02"
            servo.factory_reset(bus.now, keep_id=keep_id, keep_baud=keep_baud)
    return replies


def _execute_one(bus: BusView, servo: VirtualServo, inst: Instruction) -> tuple[int, bytes]:
    """(result code, params of the status packet) for one servo."""
    p, code = inst.params, inst.code
    if code == PING:
        fw = servo.get("Firmware_Version") if servo.has("Firmware_Version") else 0
        return 0, servo.model.model_number.to_bytes(2, "little") + bytes([fw])
    if code == READ:
        if len(p) != 4:
            return DATA_LENGTH_ERROR, b""
        data = servo.read(_u16(p, 0), _u16(p, 2))
        return (DATA_RANGE_ERROR, b"") if data is None else (0, data)
    if code == WRITE:
        if len(p) < 3:
            return DATA_LENGTH_ERROR, b""
        return WRITE_ERRORS[servo.write(_u16(p, 0), p[2:])], b""
    if code == REG_WRITE:
        if len(p) < 3:
            return DATA_LENGTH_ERROR, b""
        servo.pending = (_u16(p, 0), p[2:])
        return 0, b""
    if code == ACTION:
        if servo.pending is None:
            return 0, b""
        address, data = servo.pending
        servo.pending = None
        return WRITE_ERRORS[servo.write(address, data)], b""
    if code == REBOOT:
        return 0, b""
    if code == FACTORY_RESET:
        if servo.torque:
            return ACCESS_ERROR, b""
        return (0, b"") if p[:1] in (b"\x01", b"\x02", b"\xff") else (DATA_RANGE_ERROR, b"")
    if code == CLEAR:
        if p != b"\x01\x44\x58\x4c\x22":
            return DATA_RANGE_ERROR, b""
        if servo.velocity != 0:
            return RESULT_FAIL, b""
        servo.actual %= servo.model.resolution  # forget the extra turns of extended position mode
        return 0, b""
    return INSTRUCTION_ERROR, b""


def _group(bus: BusView, code: int, p: bytes) -> list[Reply]:
    """Sync/bulk read and write: one broadcast packet, per-servo parameters."""
    replies: list[Reply] = []
    if code in (SYNC_READ, SYNC_WRITE):
        if len(p) < 4:
            return []
        address, size = _u16(p, 0), _u16(p, 2)
        if code == SYNC_READ:
            for servo_id in p[4:]:
                replies += _read_reply(bus, servo_id, address, size)
            return replies
        for i in range(4, len(p) - size, size + 1):
            for servo in bus.servos_with_id(p[i]):
                servo.write(address, p[i + 1 : i + 1 + size])
        return []
    i = 0
    while i + 5 <= len(p):
        servo_id, address, size = p[i], _u16(p, i + 1), _u16(p, i + 3)
        if code == BULK_READ:
            replies += _read_reply(bus, servo_id, address, size)
            i += 5
        else:
            for servo in bus.servos_with_id(servo_id):
                servo.write(address, p[i + 5 : i + 5 + size])
            i += 5 + size
    return replies


def _read_reply(bus: BusView, servo_id: int, address: int, size: int) -> list[Reply]:
    replies = []
    for servo in bus.servos_with_id(servo_id):
        if _answers(servo, SYNC_READ):
            data = servo.read(address, size)
            error, data = (DATA_RANGE_ERROR, b"") if data is None else (0, data)
            replies.append(Reply(servo, status_packet(servo_id, _error(servo, error), data)))
    return replies
