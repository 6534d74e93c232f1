"""What the bus needs from a vendor back end; `feetech.py` and `dynamixel.py` provide it.

Each back end is the one place that knows its vendor's byte layout: status packet offsets,
byte order, error-byte meanings and the sign of the homing offset. Framing, checksums and CRCs
are the official SDK's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


def sdk_kind(result: int, success: int, timeout: int, corrupt: int) -> str:
    """Map an SDK COMM_* result code to an outcome kind."""
    if result == success:
        return OK
    if result == timeout:
        return TIMEOUT
    if result == corrupt:
        return CORRUPT
    return TX_FAIL


def bit_names(value: int, names: dict[int, str]) -> str:
    return ", ".join(name for bit, name in names.items() if value & bit) or f"0x{value:02x}"
