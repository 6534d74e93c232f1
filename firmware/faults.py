"""Fault injection on the virtual bus: lost and corrupted status packets, slow and silent servos."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from edgevla.errors import EdgevlaError


@dataclass(frozen=True)
class Faults:
    drop: float = 0.0  # probability that a status packet never arrives
    corrupt: float = 0.0  # probability that one byte of a status packet is flipped
    delay_ms: float = 0.0  # extra latency before every status packet
    silent_ids: frozenset[int] = field(default_factory=frozenset)  # servos that neither act nor answer
    silent_after_s: float = 0.0  # ...from this many seconds after the bus started (a cable coming loose)
    seed: int | None = None  # same seed + same traffic = same faults

    def __post_init__(self):
        for name in ("drop", "corrupt"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise EdgevlaError(f"fault '{name}' must be a probability in 0..1, got {value}")
        for name in ("delay_ms", "silent_after_s"):
            value = getattr(self, name)
            if not 0 <= value < float("inf"):
                raise EdgevlaError(f"fault '{name}' must be a finite number >= 0, got {value}")
        object.__setattr__(self, "silent_ids", frozenset(int(i) for i in self.silent_ids))

    @property
    def any(self) -> bool:
        return bool(self.drop or self.corrupt or self.delay_ms or self.silent_ids)


def parse_ids(text: str) -> frozenset[int]:
    """'3,5' -> {3, 5} (for --silent-ids)."""
    try:
        return frozenset(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise EdgevlaError(f"--silent-ids expects ids separated by commas like '3,5', got '{text}'") from None


class FaultInjector:
    """Applies `Faults` to outgoing status packets with its own seeded random stream."""

    def __init__(self, faults: Faults):
        self.faults = faults
        self.rng = random.Random(faults.seed)
        self.dropped = 0
        self.corrupted = 0

    def apply(self, packet: bytes) -> bytes | None:
        """The packet as the host receives it, or None when it is lost."""
        f = self.faults
        if f.drop and self.rng.random() < f.drop:
            self.dropped += 1
            return None
        if f.corrupt and self.rng.random() < f.corrupt:
            self.corrupted += 1
            flipped = bytearray(packet)
            flipped[self.rng.randrange(len(flipped))] ^= self.rng.randrange(1, 256)
            return bytes(flipped)
        return packet
