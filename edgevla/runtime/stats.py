"""Live figures of the control loop, in bounded memory however long the run.

Periods and chunk latencies go into fixed-bin histograms (percentiles without keeping samples);
queue depth is kept as a bounded time series. The loop thread writes, other threads read a
snapshot (plain ints and floats under the GIL; a display may be one tick stale).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np


class Histogram:
    """Counts in `resolution`-wide bins from 0 to `limit`; values above land in the last bin."""

    def __init__(self, resolution: float, limit: float):
        self.resolution = resolution
        self.counts = np.zeros(int(limit / resolution) + 1, dtype=np.int64)
        self.n = 0
        self.max = 0.0
        self._sum = 0.0
        self._sum_sq = 0.0

    def add(self, value: float) -> None:
        self.counts[min(len(self.counts) - 1, max(0, int(value / self.resolution)))] += 1
        self.n += 1
        self.max = max(self.max, value)
        self._sum += value
        self._sum_sq += value * value

    def merge(self, other: Histogram) -> None:
        """Add `other`'s samples (same bins) to these."""
        if other.resolution != self.resolution or len(other.counts) != len(self.counts):
            raise ValueError("histograms with different bins cannot be merged")
        self.counts += other.counts
        self.n += other.n
        self.max = max(self.max, other.max)
        self._sum += other._sum
        self._sum_sq += other._sum_sq

    def percentile(self, q: float) -> float:
        """Upper edge of the bin holding the q-th percentile (within one bin of exact)."""
        if self.n == 0:
            return float("nan")
        rank = math.ceil(q / 100 * self.n)
        index = int(np.searchsorted(np.cumsum(self.counts), max(rank, 1)))
        return min((index + 1) * self.resolution, self.max)

    @property
    def mean(self) -> float:
        return self._sum / self.n if self.n else float("nan")

    @property
    def std(self) -> float:
        if self.n < 2:
            return float("nan")
        return math.sqrt(max(0.0, self._sum_sq / self.n - self.mean**2))


@dataclass
class System2Stats:
    """The dual system's System 2 over one episode, written by the worker thread that runs it
    (its own, or the chunk requests' with --prefix-every) and read by the loop's reports."""

    contexts: int = 0
    failures: int = 0
    stale_waits: int = 0  # --prefix-every: a request found its context too old and waited for a pass
    context_ms: Histogram = field(default_factory=lambda: Histogram(0.1, 60_000.0))  # transport included

    def absorb(self, other: System2Stats) -> None:
        self.contexts += other.contexts
        self.failures += other.failures
        self.stale_waits += other.stale_waits
        self.context_ms.merge(other.context_ms)


# what benchmark reports take from `LoopStats.rates` (bench sim, bench async)
RATE_FIGURES = (
    "dual_system",
    "system1_hz",
    "system2_hz",
    "context_ms_p50",
    "context_age_ms_p50",
    "context_age_ms_max",
    "holds_no_context",
    "holds_stale_context",
    "tick_ms_p50",
    "tick_ms_p99",
    "action_state_age_ms_p50",
    "action_state_age_ms_max",
    "action_frame_age_ms_p50",
    "action_frame_age_ms_max",
)


@dataclass
class LoopStats:
    fps: float
    period_ms: Histogram = field(default_factory=lambda: Histogram(0.01, 1000.0))
    chunk_ms: Histogram = field(default_factory=lambda: Histogram(0.1, 60_000.0))
    ticks: int = 0
    ticks_waiting: int = 0  # before the first chunk arrived
    ticks_starved: int = 0  # after it: nothing queued, the arm held its position
    ticks_overrun: int = 0  # deadlines missed by a whole period and skipped
    actions_late: int = 0  # chunk rows whose tick had passed on arrival
    actions_rejected: int = 0  # non-finite actions refused (held instead)
    chunks: int = 0
    chunks_undecoded: int = 0  # chunks the policy's head could not decode, replaced by a hold (fast)
    worker_failures: int = 0
    bus_errors: int = 0  # bus faults that reached the loop (after the driver's own retries)
    latency_ticks: float = float("nan")
    # the dual system (and single-rate, for comparison): what each executed action was computed from
    tick_ms: Histogram = field(default_factory=lambda: Histogram(0.01, 1000.0))  # state read -> action sent
    action_state_age_ms: Histogram = field(default_factory=lambda: Histogram(1.0, 60_000.0))
    action_frame_age_ms: Histogram = field(default_factory=lambda: Histogram(1.0, 60_000.0))
    context_age_ms: Histogram = field(default_factory=lambda: Histogram(1.0, 60_000.0))  # per chunk, at use
    holds_no_context: int = 0  # chunk requests held: System 2 had no context of this episode yet
    holds_stale_context: int = 0  # held: the newest context was older than --max-context-age
    system2: System2Stats | None = None  # set by a dual-system worker
    depth: deque = field(default_factory=lambda: deque(maxlen=3000))  # (seconds, queue depth)
    driver: dict = field(default_factory=dict)  # the driver's own retry/error counters

    def summary(self) -> dict:
        nominal = 1000.0 / self.fps
        depths = [d for _, d in self.depth]
        return {
            "fps": self.fps,
            "period_ms_nominal": nominal,
            "period_ms_p50": self.period_ms.percentile(50),
            "period_ms_p99": self.period_ms.percentile(99),
            "period_ms_max": self.period_ms.max,
            "period_ms_jitter": self.period_ms.std,  # standard deviation of the period
            "ticks": self.ticks,
            "ticks_waiting_first_chunk": self.ticks_waiting,
            "ticks_starved": self.ticks_starved,
            "ticks_overrun": self.ticks_overrun,
            "actions_late": self.actions_late,
            "actions_rejected": self.actions_rejected,
            "chunks": self.chunks,
            "chunks_undecoded": self.chunks_undecoded,
            "chunk_ms_p50": self.chunk_ms.percentile(50),
            "chunk_ms_p90": self.chunk_ms.percentile(90),
            "chunk_ms_max": self.chunk_ms.max,
            "latency_ticks_ema": self.latency_ticks,
            "worker_failures": self.worker_failures,
            "bus_errors": self.bus_errors,
            "bus": dict(self.driver),
            **self.rates(),
            "queue_depth_min": min(depths, default=0),
            "queue_depth_mean": float(np.mean(depths)) if depths else 0.0,
            "queue_depth": [[round(t, 3), d] for t, d in list(self.depth)[:: max(1, len(self.depth) // 300)]],
        }

    def rates(self) -> dict:
        """Both systems' rates and what each executed action was computed from. Single-rate runs
        report the same figures: there every chunk is a System 2 and a System 1 pass on frames as
        old as its state."""
        seconds = max((self.ticks + self.ticks_overrun) / self.fps, 1e-9)
        dual = self.system2 is not None
        contexts = self.system2.contexts if dual else self.chunks
        return {
            "dual_system": dual,
            "system1_hz": self.chunks / seconds,
            "system2_hz": contexts / seconds,
            "contexts": contexts,
            "context_ms_p50": self.system2.context_ms.percentile(50) if dual else None,
            "context_ms_max": self.system2.context_ms.max if dual else None,
            "context_failures": self.system2.failures if dual else 0,
            "context_age_ms_p50": self.context_age_ms.percentile(50),
            "context_age_ms_max": self.context_age_ms.max,
            "holds_no_context": self.holds_no_context,
            "holds_stale_context": self.holds_stale_context + (self.system2.stale_waits if dual else 0),
            "tick_ms_p50": self.tick_ms.percentile(50),
            "tick_ms_p99": self.tick_ms.percentile(99),
            "tick_ms_max": self.tick_ms.max,
            "action_state_age_ms_p50": self.action_state_age_ms.percentile(50),
            "action_state_age_ms_max": self.action_state_age_ms.max,
            "action_frame_age_ms_p50": self.action_frame_age_ms.percentile(50),
            "action_frame_age_ms_max": self.action_frame_age_ms.max,
        }

    def absorb(self, other: LoopStats) -> None:
        """Add a later run's figures to these (e.g. one per evaluation episode): counts add and
        histograms merge; the latency estimate, the queue-depth trace and the driver's counters
        (cumulative already) become the later run's."""
        counts = ("ticks", "ticks_waiting", "ticks_starved", "ticks_overrun", "actions_late")
        counts += ("actions_rejected", "chunks", "chunks_undecoded", "worker_failures", "bus_errors")
        counts += ("holds_no_context", "holds_stale_context")
        for name in counts:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("period_ms", "chunk_ms", "tick_ms", "action_state_age_ms", "action_frame_age_ms"):
            getattr(self, name).merge(getattr(other, name))
        self.context_age_ms.merge(other.context_age_ms)
        if other.system2 is not None:
            if self.system2 is None:
                self.system2 = System2Stats()
            self.system2.absorb(other.system2)
        self.latency_ticks, self.depth, self.driver = other.latency_ticks, other.depth, dict(other.driver)

    def line(self) -> str:
        """One human line for the periodic print."""
        s = self.summary()
        return (
            f"ticks {s['ticks']}  period p50 {s['period_ms_p50']:.2f} p99 {s['period_ms_p99']:.2f} "
            f"max {s['period_ms_max']:.2f} ms (nominal {s['period_ms_nominal']:.2f})  "
            f"chunk p50 {s['chunk_ms_p50']:.0f} ms  starved {s['ticks_starved']}  late {s['actions_late']}  "
            f"queue {self.depth[-1][1] if self.depth else 0}  bus retries {self.driver.get('retries', 0)} "
            f"errors {s['bus_errors']}"
            + (
                f"  System 2 {s['system2_hz']:.1f} Hz, System 1 {s['system1_hz']:.1f} Hz, context age p50 "
                f"{s['context_age_ms_p50']:.0f} ms, holds {s['holds_no_context'] + s['holds_stale_context']}"
                if s["dual_system"]
                else ""
            )
        )
