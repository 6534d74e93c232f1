"""A fixed-rate loop clock that reports lateness instead of hiding it.

Slot n is due at start + n / fps. A tick that starts more than half a period after its due time
is *late*; when the loop falls a whole period behind, the missed slots are *dropped* (skipped,
not made up in a burst), so the loop stays locked to the wall clock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Tick:
    slot: int  # slot number since the ticker started
    due: float  # time.monotonic() the slot was due
    started: float  # when the loop got control back
    dropped: int  # slots skipped just before this one

    @property
    def lateness(self) -> float:
        return self.started - self.due


class Ticker:
    def __init__(self, fps: float, start: float | None = None):
        self.period = 1.0 / fps
        self.start = time.monotonic() if start is None else start
        self._next_slot = 0

    def wait(self) -> Tick:
        """Sleep until the next slot is due and return it."""
        slot = self._next_slot
        due = self.start + slot * self.period
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        now = time.monotonic()
        behind = int((now - due) / self.period)  # whole periods missed
        if behind >= 1:
            slot += behind
            due += behind * self.period
        self._next_slot = slot + 1
        return Tick(slot=slot, due=due, started=now, dropped=behind if behind >= 1 else 0)

    def is_late(self, tick: Tick) -> bool:
        return tick.lateness > self.period / 2
