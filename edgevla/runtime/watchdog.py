"""The control loop's fault watch: what it tells the user at once, and when it stops the arm.

Three faults leave an arm that looks busy but is not driven: a servo that stopped answering
(every bus read fails after the driver's retries), a bus too slow for the requested rate (the
loop falls behind and skips ticks), and a policy worker that delivers no actions (hung, dead,
or far too slow). Each is reported on the tick it is first seen; each stops the loop once it
outlasts its limit. The loop then holds its last goal and the caller turns torque off.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# Below this share of the requested rate the loop counts as "slow". A loaded machine or a GC
# pause costs a few ticks a second, not one in ten.
SLOW_SHARE = 0.9
RATE_WINDOW_S = 1.0  # the achieved rate is judged over windows this long


@dataclass(frozen=True)
class FaultLimits:
    """When the loop gives up; None leaves that fault unlimited (warned about, never stopped)."""

    failed_ticks: int | None = None  # consecutive ticks whose bus read failed
    slow_s: float | None = None  # seconds in a row below SLOW_SHARE of the requested rate
    starved_s: float | None = None  # seconds without an action to send, after the first chunk


@dataclass(frozen=True)
class LoopFault:
    """Why the loop stopped itself: `kind` is 'bus', 'slow' or 'starved'."""

    kind: str
    message: str
    first_tick: int  # the tick the fault was first seen on
    stop_tick: int
    seconds: float  # from first seen to the stop

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "message": self.message,
            "ticks": self.stop_tick - self.first_tick,
            "seconds": round(self.seconds, 3),
        }


class FaultWatch:
    """Fed once per tick by the loop thread; `warn` gets the live messages (never blocks)."""

    def __init__(self, fps: float, limits: FaultLimits, warn: Callable[[str], None]):
        self.fps, self.limits, self.warn = fps, limits, warn
        self._failed: tuple[int, float] | None = None  # (tick, time) of the first failed read in a row
        self._failed_count = 0
        self._window: tuple[float, int] | None = None  # (start time, ticks run) of the rate window
        self._bus_s = 0.0  # bus time spent in the window
        self._slow_since: tuple[int, float] | None = None
        self._starved_since: tuple[int, float] | None = None

    def bus(self, tick: int, now: float, error: str | None) -> LoopFault | None:
        """This tick's bus read failed with `error`, or succeeded (None)."""
        if error is None:
            if self._failed is not None:
                self.warn(f"servo bus answers again after {self._failed_count} failed tick(s)")
            self._failed, self._failed_count = None, 0
            return None
        self._failed_count += 1
        limit = self.limits.failed_ticks
        if self._failed is None:
            self._failed = (tick, now)
            stops = f"the run stops after {limit} failed ticks in a row" if limit else "no limit set"
            self.warn(
                f"servo bus read failed, holding the last goal and pausing inference ({stops}): {error}"
            )
        if limit is not None and self._failed_count >= limit:
            first_tick, first = self._failed
            return LoopFault(
                "bus",
                f"the servo bus failed {self._failed_count} ticks in a row ({now - first:.2f} s): {error}",
                first_tick,
                tick,
                now - first,
            )
        return None

    def rate(self, tick: int, now: float, bus_s: float) -> LoopFault | None:
        """Count one tick run at `now` whose bus read and write took `bus_s`."""
        if self._window is None or self._failed is not None:  # failing reads are slow: `bus` reports them
            self._window, self._bus_s, self._slow_since = (now, 0), 0.0, None
        start, ran = self._window
        ran += 1
        self._bus_s += bus_s
        self._window = (start, ran)
        if now - start < RATE_WINDOW_S:
            return None
        achieved = ran / (now - start)
        bus_ms = self._bus_s / ran * 1e3
        self._window, self._bus_s = (now, 0), 0.0
        if achieved >= SLOW_SHARE * self.fps:
            self._slow_since = None
            return None
        if self._slow_since is None:
            self._slow_since = (tick, start)
            self.warn(
                f"the control loop runs at {achieved:.1f} Hz, {self.fps:g} asked: reading and writing the "
                f"servos takes {bus_ms:.1f} ms a tick (the period is {1e3 / self.fps:.1f} ms); lower --fps "
                "or speed up the bus (baud rate, USB latency timer)"
            )
        first_tick, first = self._slow_since
        if self.limits.slow_s is not None and now - first >= self.limits.slow_s:
            return LoopFault(
                "slow",
                f"the control loop ran below {SLOW_SHARE:.0%} of {self.fps:g} fps for {now - first:.1f} s "
                f"(last {achieved:.1f} Hz, servo bus {bus_ms:.1f} ms a tick): lower --fps or speed up the bus",
                first_tick,
                tick,
                now - first,
            )
        return None

    def starvation(self, tick: int, now: float, starved: bool, worker: Callable[[], str]) -> LoopFault | None:
        """`starved`: this tick had no action to send after the first chunk; `worker()` says what
        the worker is doing (asked only when there is something to report)."""
        if not starved or self._failed is not None:  # a failing bus pauses inference: `bus` reports it
            self._starved_since = None
            return None
        if self._starved_since is None:
            self._starved_since = (tick, now)
        first_tick, first = self._starved_since
        limit = self.limits.starved_s
        if limit is None or now - first < limit:
            return None
        return LoopFault(
            "starved",
            f"no action to send for {now - first:.2f} s (--max-starved-seconds {limit:g}): {worker()}",
            first_tick,
            tick,
            now - first,
        )
