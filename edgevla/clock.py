"""The fixed-rate clock of every loop that keeps time (recording, teleoperation, the policy's
control loop, the simulator's renderer); it reports lateness instead of hiding it.

Slot n is due at start + n / fps. A tick that starts more than half a period after its due time
is *late*; when the loop falls a whole period behind, the missed slots are *dropped* (skipped,
not made up in a burst), so the loop stays locked to the wall clock.

`spin_s` busy-waits the last stretch before a slot, because sleep() may overshoot by ~1 ms (the
control loop, whose ticks the arm feels). `stop` is an event that cuts a wait short, so a loop
ends within one call instead of one period.
"""

from __future__ import annotations

import threading
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
    def __init__(
        self,
        fps: float,
        start: float | None = None,
        *,
        spin_s: float = 0.0,
        stop: threading.Event | None = None,
    ):
        self.period = 1.0 / fps
        self.start = time.monotonic() if start is None else start
        self.spin_s, self.stop = spin_s, stop
        self._next_slot = 0

    def wait(self) -> Tick:
        """Sleep until the next slot is due and return it (at once when `stop` is set)."""
        slot = self._next_slot
        due = self.start + slot * self.period
        self._sleep_until(due)
        now = time.monotonic()
        behind = max(0, int((now - due) / self.period))  # whole periods missed
        slot += behind
        due += behind * self.period
        self._next_slot = slot + 1
        return Tick(slot=slot, due=due, started=now, dropped=behind)

    def _sleep_until(self, due: float) -> None:
        delay = due - time.monotonic() - self.spin_s
        if delay > 0:
            if self.stop is None:
                time.sleep(delay)
            elif self.stop.wait(delay):
                return
        while time.monotonic() < due:
            pass

    def is_late(self, tick: Tick) -> bool:
        return tick.lateness > self.period / 2
