"""Tick-aligned action queue: which action runs at which control tick, and when to ask for more.

An observation taken at tick t yields a chunk whose row i is the action for tick t + i. When the
chunk arrives at tick now, rows for ticks before `now` are late and skipped (the robot already
moved on); the rest are merged with what is still queued (see `merging`). The inference latency
in ticks is tracked as an exponential moving average with its mean deviation, and the next
observation is sent when the queue is down to that latency plus a safety margin, so the next
chunk lands just before the queue runs dry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgevla.policy_io import Guidance
from edgevla.runtime.merging import STRATEGIES, merge, rtc_guidance


@dataclass(frozen=True)
class ScheduleConfig:
    chunk_size: int
    merge: str = "blend"
    request_at: int | None = None  # queue depth (actions) that triggers a request; None adapts
    smoothing: float = 0.25  # weight of the newest latency sample in the EMA
    margin_ticks: int = 1  # spare actions wanted in the queue when the chunk lands
    # `blend` and `rtc`: a chunk arriving to an empty queue (first chunk, after starvation) is eased
    # in from the held pose over this many rows (None = a quarter chunk), not jumped to
    ease_ticks: int | None = None

    def __post_init__(self):
        if self.merge not in STRATEGIES:
            raise ValueError(f"merge must be one of {', '.join(STRATEGIES)}, got '{self.merge}'")


class ActionQueue:
    def __init__(self, action_dim: int, config: ScheduleConfig):
        self.config = config
        self.start = 0  # tick of actions[0]
        self.actions = np.zeros((0, action_dim), dtype=np.float32)
        self.votes = np.zeros(0, dtype=np.int64)  # chunks merged into each queued action
        self.latency_ticks: float | None = None  # EMA of (arrival tick - observation tick)
        self.latency_dev: float = 0.0  # EMA of its absolute deviation

    def depth(self, tick: int) -> int:
        """Actions queued for `tick` and later."""
        return max(0, self.start + len(self.actions) - max(tick, self.start))

    def planned(self, tick: int) -> np.ndarray:
        """The queued actions from `tick` on (row 0 = tick)."""
        return self.actions[max(0, tick - self.start) :]

    def threshold(self) -> int:
        """Request the next chunk when no more than this many actions are left."""
        if self.config.request_at is not None:
            return self.config.request_at
        if self.latency_ticks is None:
            return self.config.chunk_size // 2
        expected = self.latency_ticks + 2 * self.latency_dev + self.config.margin_ticks
        return min(self.config.chunk_size - 1, math.ceil(expected))

    def should_request(self, tick: int) -> bool:
        return self.depth(tick) <= self.threshold()

    def _eased(self, plan: np.ndarray, hold: np.ndarray | None) -> np.ndarray:
        """When the queue ran dry, the plan is to stand still at `hold` for the ease length."""
        if len(plan) or hold is None:
            return plan
        ease = self.config.ease_ticks if self.config.ease_ticks is not None else self.config.chunk_size // 4
        return np.repeat(np.asarray(hold, dtype=np.float32)[None], ease, axis=0)

    def guidance(self, tick: int, hold: np.ndarray | None = None) -> Guidance | None:
        """RTC inpainting target for an observation taken at `tick` (None for other strategies)."""
        if self.config.merge != "rtc":
            return None
        delay = math.ceil(self.latency_ticks) if self.latency_ticks is not None else 0
        return rtc_guidance(self._eased(self.planned(tick), hold), self.config.chunk_size, delay)

    def add_chunk(
        self, obs_tick: int, now_tick: int, chunk: np.ndarray, hold: np.ndarray | None = None
    ) -> int:
        """Merge a chunk computed from the observation at `obs_tick`; returns actions skipped as late.

        `hold` is the pose the arm was last sent: when the queue ran dry, the new chunk is blended
        in from there instead of jumping to wherever its first row is.
        """
        sample = float(now_tick - obs_tick)
        if self.latency_ticks is None:
            self.latency_ticks = sample
        else:
            a = self.config.smoothing
            self.latency_dev = (1 - a) * self.latency_dev + a * abs(sample - self.latency_ticks)
            self.latency_ticks = (1 - a) * self.latency_ticks + a * sample
        late = min(len(chunk), max(0, now_tick - obs_tick))
        new = chunk[late:]
        if len(new) == 0:
            return late
        new_start = obs_tick + late
        old = self.planned(new_start)
        old_votes = self.votes[max(0, new_start - self.start) :][: len(old)]
        if self.config.merge == "blend":
            old = self._eased(old, hold)
            old_votes = np.concatenate([old_votes, np.ones(len(old) - len(old_votes), dtype=np.int64)])
        overlap = min(len(old), len(new))
        old_votes = old_votes[:overlap]
        self.actions = merge(self.config.merge, old[:overlap], old_votes, new)
        self.votes = np.concatenate([old_votes + 1, np.ones(len(new) - overlap, dtype=np.int64)])
        self.start = new_start
        return late

    def pop(self, tick: int) -> np.ndarray | None:
        """The action for `tick` (None when starved); everything before it is dropped."""
        offset = tick - self.start
        if offset < 0:
            return None
        action = self.actions[offset] if offset < len(self.actions) else None
        keep = min(len(self.actions), offset + 1)
        self.actions, self.votes, self.start = self.actions[keep:], self.votes[keep:], self.start + keep
        return action
