"""Dynamixel protocol 2.0 back end on `dynamixel_sdk`: status layout and error numbers."""

from __future__ import annotations

import dynamixel_sdk as dxl

from edgevla.drivers.port import UrlPort
from edgevla.drivers.vendor import CORRUPT, OK, TX_FAIL, Reply, SdkTransactions
from edgevla.hardware import ServoModel

# Status packet: FF FF FD 00 ID LEN_L LEN_H 0x55 ERR PARAM... CRC_L CRC_H
_ID, _ERROR, _PARAMS = 4, 8, 9
STATUS_OVERHEAD = 11
ALERT_BIT = 0x80  # a hardware alarm is latched: read Hardware_Error_Status, clear it by rebooting
REFUSALS = {
    1: "result fail",
    2: "instruction error",
    3: "CRC error",
    4: "data range error",
    5: "data length error",
    6: "data limit error (goal outside the position limits?)",
    7: "access error (EEPROM while torque is on, or a read-only register)",
}


class DynamixelPort(UrlPort, dxl.PortHandler):
    pass


class Dynamixel(SdkTransactions):
    sdk = dxl
    status_overhead = STATUS_OVERHEAD
    name = "dynamixel"
    port_class = DynamixelPort

    def __init__(self, servo: ServoModel):
        super().__init__(servo)
        self.ph = dxl.PacketHandler(2.0)

    def receive(self, port, motor_id: int, length: int) -> Reply:
        """The next status packet from `motor_id`, skipping (and counting) any from other ids."""
        wrong = 0
        while True:
            packet, result = self.ph.rxPacket(port, False)
            kind = self._kind(result)
            if kind != OK:
                return Reply(kind, wrong_ids=wrong)
            if packet[_ID] != motor_id:
                wrong += 1
                continue
            data = packet[_PARAMS : _PARAMS + length]
            error = packet[_ERROR]
            if len(data) != length and not error & 0x7F:
                return Reply(CORRUPT, wrong_ids=wrong)
            return Reply(OK, data, error, wrong)

    def ping(self, port, motor_id: int) -> Reply:
        # not the SDK's ping: it indexes the model number out of whatever status arrives, so a
        # late status from an earlier try crashes it (IndexError) on a loaded machine
        packet = [0] * 10  # FF FF FD 00 ID LEN_L LEN_H INST CRC_L CRC_H; the SDK fills header and CRC
        packet[_ID], packet[5], packet[7] = motor_id, 3, dxl.INST_PING
        if self.ph.txPacket(port, packet) != dxl.COMM_SUCCESS:
            port.is_using = False
            return Reply(TX_FAIL)
        port.setPacketTimeout(STATUS_OVERHEAD + 3)
        return self.receive(port, motor_id, 3)  # model number (2) and firmware version

    def sync_read_send(self, port, address: int, length: int, ids: list[int]) -> str:
        return self._kind(self.ph.syncReadTx(port, address, length, ids, len(ids), False))

    def broadcast_ping(self, port) -> dict[int, int | None] | None:
        """{id: model number} of every servo answering at the port's baud rate."""
        found, result = self.ph.broadcastPing(port)
        return {motor_id: info[0] for motor_id, info in found.items()} if result == dxl.COMM_SUCCESS else {}

    def alarms(self, error: int) -> str | None:
        return f"hardware alert (read {self.rules.errors}; reboot clears it)" if error & ALERT_BIT else None

    def refusal(self, error: int) -> str | None:
        number = error & 0x7F
        return REFUSALS.get(number, f"error {number}") if number else None

    def half_turn_offset(self, actual: int, resolution: int, offset_limit: int) -> int:
        """Homing_Offset that makes `actual` (raw, offset 0) read mid-turn: Present = Actual + Offset."""
        return max(-offset_limit, min(offset_limit, resolution // 2 - 1 - actual))
