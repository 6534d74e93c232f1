"""The robot's side of the dual system: `DualWorker`, a PolicyWorker whose chunk requests run
System 1 only, while System 2 keeps the context fresh at its own pace.

System 2 is paced here, where the cameras and the control loop's clock are: with `vlm_hz` a
thread of its own takes the newest frames from the loop (`attach(frames)`) and hands them to
`Systems.encode` at most that often (back to back when a pass is slower); with `prefix_every` the
chunk request itself runs a System 2 pass on its own frames before every N-th chunk. Each loop
start is a new episode: the context of an earlier one (other task, other scene, a clock that
started again) is never used. A request that finds no context of its episode, or only one
older than `max_age_s`, comes back held (the loop asks again next tick, with the state of
then); with `prefix_every` it waits for a pass on its own frames instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from edgevla.errors import EdgevlaError
from edgevla.policy_io import Observation
from edgevla.runtime.dual import Acted, DualConfig, Systems
from edgevla.runtime.stats import System2Stats
from edgevla.runtime.workers import PolicyWorker, Request

log = logging.getLogger("edgevla.runtime")
FRAMES_POLL_S = 0.005  # while the loop has no frames to give (cameras starting, no tick yet)


class DualWorker(PolicyWorker):
    def __init__(self, systems: Systems, config: DualConfig):
        self.systems, self.config = systems, config
        self.episode = 0
        self.system2 = System2Stats()
        self._feed = threading.Condition()  # guards the fields below; PolicyWorker's _cond is its own
        self._frames: Callable[[], Observation | None] | None = None
        self._closing = False
        self._since_context: int | None = None  # chunks since the last in-line pass (--prefix-every)
        super().__init__(systems)
        self._pacer = None
        if config.vlm_hz:
            self._pacer = threading.Thread(target=self._pace, name="edgevla-system2-pacer", daemon=True)
            self._pacer.start()

    def attach(self, frames: Callable[[], Observation | None]) -> System2Stats:
        """Start an episode: `frames()` gives the newest camera frames with the task and their
        timestamp (None while there are none). Returns the episode's System 2 figures."""
        with self._feed:
            self.episode += 1
            self.system2 = System2Stats()
            self._frames = frames
            self._since_context = None
            self._feed.notify_all()
            return self.system2

    def detach(self) -> None:
        """The episode's loop stopped: no more System 2 passes until the next `attach`."""
        with self._feed:
            self._frames = None

    def _compute(self, request: Request) -> Acted:
        episode, stats, max_age = self.episode, self.system2, self.config.max_age_s
        every = self.config.prefix_every
        if every and (self._since_context is None or self._since_context >= every):
            self._encode(episode, request.obs, stats)
        acted = self.systems.act(episode, request.obs, max_age, None, request.guidance)
        if acted.held is not None and every:  # never the old context: a pass on these frames first
            stats.stale_waits += 1
            self._encode(episode, request.obs, stats)
            acted = self.systems.act(episode, request.obs, max_age, None, request.guidance)
        if every:
            self._since_context += 1
        return acted

    def _encode(self, episode: int, obs: Observation, stats: System2Stats) -> None:
        started = time.perf_counter()
        try:
            self.systems.encode(episode, obs)
        except EdgevlaError:
            stats.failures += 1
            raise
        stats.contexts += 1
        stats.context_ms.add((time.perf_counter() - started) * 1e3)
        self._since_context = 0

    def _pace(self) -> None:
        """System 2's own thread: a pass on the newest frames, at most `vlm_hz` times a second."""
        period, next_at, streak, paced = 1.0 / self.config.vlm_hz, 0.0, 0, 0
        while True:
            with self._feed:
                while not self._closing and (
                    self._frames is None or (self.episode == paced and time.perf_counter() < next_at)
                ):
                    self._feed.wait(None if self._frames is None else next_at - time.perf_counter())
                if self._closing:
                    return
                frames, episode, stats = self._frames, self.episode, self.system2
            paced = episode  # a new episode gets its first pass at once, whatever the last one's pace
            try:
                obs = frames()
            except EdgevlaError as err:  # a camera died: the loop says so; System 2 waits
                obs = None
                log.warning("System 2 has no frames: %s", err)
            if obs is None:
                next_at = time.perf_counter() + FRAMES_POLL_S
                continue
            started = time.perf_counter()
            next_at = started + period  # start to start: passes slower than the period run back to back
            try:
                self.systems.encode(episode, obs)
            except EdgevlaError as err:
                if self._closing:
                    return
                stats.failures += 1
                streak += 1
                next_at = time.perf_counter() + min(5.0, 0.1 * 2 ** (streak - 1))
                log.warning("System 2 failed, the context ages: %s", err)
                continue
            streak = 0
            stats.contexts += 1
            stats.context_ms.add((time.perf_counter() - started) * 1e3)

    def close(self) -> None:
        with self._feed:
            self._closing = True
            self._feed.notify_all()
        super().close()  # closes the systems too, which ends a pass in flight on a link
        if self._pacer is not None:
            self._pacer.join(timeout=5)
