"""Feetech STS/SCS back end on `scservo_sdk`: status layout; byte order, alarm bits and homing sign
come from the vendor rules (hardware/vendors.yaml)."""

from __future__ import annotations

import scservo_sdk as scs

from edgevla.drivers.port import UrlPort
from edgevla.drivers.vendor import CORRUPT, OK, TX_FAIL, Reply, SdkTransactions
from edgevla.hardware import ServoModel

# Status packet: FF FF ID LEN ERR PARAM... CHECKSUM
_ID, _ERROR, _PARAMS = 2, 4, 5
STATUS_OVERHEAD = 6  # bytes around the parameters of a status packet
BROADCAST_WINDOW_MS = 50.0  # how long a broadcast PING collects answers


class FeetechPort(UrlPort, scs.PortHandler):
    pass


class Feetech(SdkTransactions):
    sdk = scs
    status_overhead = STATUS_OVERHEAD
    name = "feetech"
    port_class = FeetechPort

    def __init__(self, servo: ServoModel):
        # The SDK keeps the byte order (protocol 0 little endian, 1 big) in a module global;
        # edgevla packs and unpacks bytes itself (SdkTransactions), so that never matters.
        super().__init__(servo)
        self.ph = scs.PacketHandler(servo.protocol)

    def receive(self, port, motor_id: int, length: int) -> Reply:
        """The next status packet from `motor_id`, skipping (and counting) any from other ids."""
        wrong = 0
        while True:
            packet, result = self.ph.rxPacket(port)
            kind = self._kind(result)
            if kind != OK:
                return Reply(kind, wrong_ids=wrong)
            if packet[_ID] != motor_id:
                wrong += 1
                continue
            data = packet[_PARAMS : _PARAMS + length]
            if len(data) != length:
                return Reply(CORRUPT, wrong_ids=wrong)  # a status for another instruction
            return Reply(OK, data, packet[_ERROR], wrong)

    def ping(self, port, motor_id: int) -> Reply:
        # not the SDK's ping: it also reads Model_Number and indexes the reply unchecked, so a
        # late status from an earlier try crashes it (IndexError) on a loaded machine
        if self.ph.txPacket(port, [0xFF, 0xFF, motor_id, 2, scs.INST_PING, 0]) != scs.COMM_SUCCESS:
            port.is_using = False
            return Reply(TX_FAIL)
        port.setPacketTimeout(STATUS_OVERHEAD)
        return self.receive(port, motor_id, 0)

    def sync_read_send(self, port, address: int, length: int, ids: list[int]) -> str:
        return self._kind(self.ph.syncReadTx(port, address, length, ids, len(ids)))

    def broadcast_ping(self, port) -> dict[int, int | None] | None:
        """{id: None} of the servos answering a broadcast PING ({} if none); None if their
        answers collided (STS servos all answer at once), so the ids must be pinged one by one.
        Model numbers are not in a PING status: None."""
        packet = [0xFF, 0xFF, scs.BROADCAST_ID, 2, scs.INST_PING, 0]
        if self.ph.txPacket(port, packet) != scs.COMM_SUCCESS:
            port.is_using = False
            return {}
        # the answers come one after another: give all of them the window, not one status
        port.setPacketTimeoutMillis(BROADCAST_WINDOW_MS + port.timeout_ms)
        found: dict[int, int | None] = {}
        while True:
            packet, result = self.ph.rxPacket(port)
            if result == scs.COMM_RX_TIMEOUT:
                return found
            if result != scs.COMM_SUCCESS:
                return None
            found[packet[_ID]] = None

    def alarms(self, error: int) -> str | None:
        """Physical alarms in a status error byte, or None."""
        return self.rules.alarm_names(error) if error else None

    def refusal(self, error: int) -> str | None:
        """Why the servo refused the instruction, or None (Feetech never refuses)."""
        return None

    def half_turn_offset(self, actual: int, resolution: int, offset_limit: int) -> int:
        """Homing_Offset that makes `actual` (raw, offset 0) read mid-turn (resolution/2 - 1).

        Present = (Actual - Offset) mod resolution, so an offset and that offset +/- resolution
        read the same; pick the one with the smaller magnitude, then keep it within what the
        sign-magnitude register holds (one raw position, e.g. 4095, cannot be centred exactly
        and reads one count off centre instead of overflowing the register)."""
        offset = (actual - (resolution // 2 - 1)) % resolution
        if offset > resolution // 2:
            offset -= resolution
        return max(-offset_limit, min(offset_limit, offset))
