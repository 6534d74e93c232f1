"""What the bus needs from a vendor back end; `feetech.py` and `dynamixel.py` provide it.

Each back end is the one place that knows its vendor's status packet layout; the rules that
are data (byte order, alarm bits, homing sign, EEPROM guard) come from hardware/vendors.yaml
through the servo model. Framing, checksums and CRCs are the official SDK's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from edgevla.hardware import ServoModel

# Outcome kinds of one transaction; the bus counts each and retries all but "ok".
OK, TIMEOUT, CORRUPT, WRONG_ID, TX_FAIL = "ok", "timeout", "corrupt", "wrong_id", "tx_fail"


@dataclass
class Reply:
    """One status packet (or its absence) as the bus sees it."""

    kind: str = OK
    data: list[int] = field(default_factory=list)
    error: int = 0  # the status packet's error byte
    wrong_ids: int = 0  # status packets from other ids skipped while waiting for this one

    @property
    def ok(self) -> bool:
        return self.kind == OK


class SdkTransactions:
    """The transactions both vendor SDKs spell alike. A back end names its SDK module (`sdk`), the
    bytes around a status packet's parameters (`status_overhead`) and how it receives one."""

    sdk: ModuleType
    status_overhead: int
    ph: Any  # the SDK's PacketHandler

    def __init__(self, servo: ServoModel):
        self.rules = servo.rules
        self.byteorder = servo.rules.byteorder(servo.protocol)

    def to_bytes(self, raw: int, size: int) -> list[int]:
        return list(raw.to_bytes(size, self.byteorder))

    def from_bytes(self, data: list[int]) -> int:
        return int.from_bytes(bytes(data), self.byteorder)

    def receive(self, port, motor_id: int, length: int) -> Reply:
        raise NotImplementedError

    def _kind(self, result: int) -> str:
        """Map an SDK COMM_* result code to an outcome kind."""
        if result == self.sdk.COMM_SUCCESS:
            return OK
        if result == self.sdk.COMM_RX_TIMEOUT:
            return TIMEOUT
        if result == self.sdk.COMM_RX_CORRUPT:
            return CORRUPT
        return TX_FAIL

    def read(self, port, motor_id: int, address: int, length: int) -> Reply:
        result = self.ph.readTx(port, motor_id, address, length)
        if result != self.sdk.COMM_SUCCESS:
            return Reply(self._kind(result))
        return self.receive(port, motor_id, length)

    def write(self, port, motor_id: int, address: int, data: list[int]) -> Reply:
        result = self.ph.writeTxOnly(port, motor_id, address, len(data), data)
        if result != self.sdk.COMM_SUCCESS:
            return Reply(self._kind(result))
        if motor_id == self.sdk.BROADCAST_ID:
            return Reply(OK)
        port.setPacketTimeout(self.status_overhead)
        return self.receive(port, motor_id, 0)

    def sync_write(self, port, address: int, length: int, data: dict[int, list[int]]) -> str:
        param = [byte for motor_id, payload in data.items() for byte in (motor_id, *payload)]
        return self._kind(self.ph.syncWriteTxOnly(port, address, length, param, len(param)))
