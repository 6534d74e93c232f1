"""The fixed-rate control loop: one thread, absolute deadlines, never waits for the model.

Each tick: read the arm, collect a finished chunk if one is ready, pop the action due at this
tick, send it (the driver clamps it to joint limits and max_relative_target), and hand a new
observation to the worker when the queue runs low. Inference, cameras and logging all happen in
other threads; the loop only touches non-blocking calls. With nothing queued the arm holds the
last commanded position. Under the dual system (a `DualWorker`) the worker's System 2 takes the
newest frames from the loop at its own pace (`_frames`), and a chunk request held for want of a
fresh enough context is asked again on the next tick, with that tick's state. Bus faults that survive the driver's retries are counted and the loop
goes on; a tick whose read failed sends nothing (the servos keep their goal) and asks the model
nothing (the state is stale). `FaultWatch` reports a failing bus, a rate the bus cannot hold and
a worker that delivers nothing at once, and stops the loop (`fault`) once one outlasts its limit.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edgevla.clock import Ticker
from edgevla.drivers.interface import RobotIO
from edgevla.errors import EdgevlaError
from edgevla.policy_io import STATE_KEY, TASK_KEY, TIMESTAMP_KEY, Observation, PolicySpec, image_key
from edgevla.runtime.dual import HELD_STALE, DualConfig
from edgevla.runtime.dual_worker import DualWorker
from edgevla.runtime.head_loops import LOOPS
from edgevla.runtime.scheduler import ActionQueue, ScheduleConfig
from edgevla.runtime.stats import LoopStats
from edgevla.runtime.watchdog import FaultLimits, FaultWatch, LoopFault
from edgevla.runtime.workers import PolicyWorker, Result

log = logging.getLogger("edgevla.runtime")


class Camera(Protocol):
    """What the loop needs from a camera reader (edgevla.cameras.CameraReader)."""

    name: str

    def latest(self):  # Frame | None, with .image uint8 (H, W, 3)
        ...


@dataclass(frozen=True)
class LoopConfig:
    fps: float = 30.0
    task: str = ""
    merge: str = "blend"
    request_at: int | None = None
    spin_s: float = 0.002  # sleep() may overshoot by ~1 ms: busy-wait the last stretch
    depth_sample_s: float = 0.1  # queue-depth time series resolution
    realtime: bool = False  # ask Linux for SCHED_FIFO on the loop thread (root or CAP_SYS_NICE)
    limits: FaultLimits = FaultLimits()  # when a fault stops the loop (default: never)
    dual: DualConfig | None = None  # the dual system (hosting gives the loop a DualWorker); None: single-rate


class ControlLoop:
    def __init__(
        self,
        robot: RobotIO,
        worker: PolicyWorker,
        spec: PolicySpec,
        config: LoopConfig,
        cameras: tuple[Camera, ...] = (),
    ):
        if not 0 < config.fps <= 1000:
            raise EdgevlaError(f"--fps must be in (0, 1000], got {config.fps}")
        if config.request_at is not None and not 0 <= config.request_at < spec.chunk_size:
            raise EdgevlaError(
                f"--request-at must be in [0, {spec.chunk_size - 1}] (the chunk has {spec.chunk_size})"
            )
        by_name = {c.name: c for c in cameras}
        missing = [c.name for c in spec.cameras if c.name not in by_name]
        if missing:
            raise EdgevlaError(
                f"policy '{spec.name}' needs camera(s) {', '.join(missing)}: add --camera NAME=SOURCE"
            )
        self.robot, self.worker, self.spec, self.config = robot, worker, spec, config
        self.cameras = tuple(by_name[c.name] for c in spec.cameras)
        self.queue = ActionQueue(
            spec.action_dim, ScheduleConfig(spec.chunk_size, config.merge, config.request_at)
        )
        self.stats = LoopStats(fps=config.fps)
        # messages for a reporter thread: the loop itself never writes to a terminal or file
        self.events: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.sent: deque[tuple[int, np.ndarray]] | None = None  # (tick, goal) trace when enabled
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._hold: np.ndarray | None = None
        self._state: np.ndarray | None = None
        self._got_chunk = False
        self._budget_warned = False
        self.watch = FaultWatch(config.fps, config.limits, self.events.put)
        head = spec.extra.get("head")
        if config.merge == "rtc" and head in LOOPS and not LOOPS[head].guidable:
            self.events.put(
                f"--merge rtc: the {head} head has no denoising steps to guide, so its chunks are taken "
                "as they come (as --merge latest); blend or ensemble smooth its chunk joins"
            )
        self.fault: LoopFault | None = None  # set when the loop stopped itself
        self._submitted_at: float | None = None  # perf_counter of the request in flight
        self._last_failure: str | None = None
        self._replan = threading.Event()
        self._plan_from = 0  # chunks asked for before this tick are stale (see `replan`)
        self._tick: int | None = None  # the tick in progress, for System 2's frames
        self._source: tuple[int, float | None] | None = None  # (obs tick, frame time) of the newest chunk
        self._held: str | None = None  # why the last chunk request was held (dual system)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> ControlLoop:
        # the first state read blocks here, outside the loop: without it there is nothing to hold
        self._state = np.asarray(self.robot.read_state(), dtype=np.float32)
        self._hold = self._state.copy()
        if isinstance(self.worker, DualWorker):
            self.stats.system2 = self.worker.attach(self._frames)
        self._thread = threading.Thread(target=self._run, name="edgevla-control-loop", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if isinstance(self.worker, DualWorker):
            self.worker.detach()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def replan(self) -> None:
        """Drop the queued actions and any chunk in flight, from the next tick on: the next chunk
        is asked for from the state the arm is in then and eased in from the pose it holds, as
        the first chunk is. For a person handing the arm back after moving it elsewhere."""
        self._replan.set()

    def record_sent(self, last: int = 10_000) -> None:
        """Keep the last (tick, goal) pairs sent, for tests and diagnostics."""
        self.sent = deque(maxlen=last)

    # -- the loop -------------------------------------------------------------------------

    def _run(self) -> None:
        if self.config.realtime:
            self._make_realtime()
        ticker = Ticker(self.config.fps, spin_s=self.config.spin_s)
        last, next_depth = None, 0.0
        while not self._stop.is_set():
            tick = ticker.wait()
            # fell a whole period behind (a stalled bus, a GC pause): those ticks were skipped
            self.stats.ticks_overrun += tick.dropped
            if last is not None:
                self.stats.period_ms.add((tick.started - last) * 1e3)
            last = tick.started
            self._step(tick.slot)
            self.stats.ticks += 1
            elapsed = tick.started - ticker.start
            if elapsed >= next_depth:
                self.stats.depth.append((elapsed, self.queue.depth(tick.slot + 1)))
                next_depth += self.config.depth_sample_s

    def _make_realtime(self) -> None:
        # a loaded machine preempts a normal thread for tens of ms; a real-time one it does not
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))  # 0: this thread on Linux
        except (AttributeError, PermissionError, OSError) as err:
            self.events.put(f"--realtime refused ({err}): needs Linux and root, CAP_SYS_NICE or `ulimit -r`")

    def _step(self, tick: int) -> None:
        started = time.perf_counter()
        self._tick = tick
        fresh = None  # this tick's state, when the read succeeded: send_action clamps against it
        error = None
        try:
            self._state = fresh = np.asarray(self.robot.read_state(), dtype=np.float32)
        except (EdgevlaError, OSError) as err:
            self.stats.bus_errors += 1  # keep the last good state; the driver counted its retries
            error = str(err)
        if self._replan.is_set():
            self._replan.clear()
            self._drop_plan(tick)
        result = self.worker.poll()
        if result is not None and result.request.tick >= self._plan_from:
            self._take(result, tick)
        action = self.queue.pop(tick)
        starved = action is None and self._got_chunk
        if action is None:
            if self._got_chunk:
                self.stats.ticks_starved += 1
            else:
                self.stats.ticks_waiting += 1
        else:
            self._hold = action
            self._note_ages(tick)
        if fresh is not None:  # after a failed read the servos keep their last goal: a hold
            try:
                # resending the held goal keeps the servos where they were told to be: never a jump
                self._hold = np.asarray(self.robot.send_action(self._hold, fresh), dtype=np.float32)
                if self.sent is not None:
                    self.sent.append((tick, self._hold.copy()))
            except (EdgevlaError, OSError) as err:
                self.stats.bus_errors += 1
                error = str(err)
        done = time.perf_counter()
        self.stats.tick_ms.add((done - started) * 1e3)
        self.fault = (
            self.watch.bus(tick, done, error)
            or self.watch.rate(tick, started, done - started)
            or self.watch.starvation(tick, done, starved, self._worker_state)
        )
        if self.fault is not None:
            self._stop.set()  # the servos hold the last goal sent; the caller turns torque off
            return
        if fresh is not None and not self.worker.busy and self.queue.should_request(tick):
            obs = self._observation(tick)
            if obs is not None and self.worker.submit(tick, obs, self.queue.guidance(tick, self._hold)):
                self._submitted_at = done

    def _drop_plan(self, tick: int) -> None:
        latency = (self.queue.latency_ticks, self.queue.latency_dev)
        self.queue = ActionQueue(self.spec.action_dim, self.queue.config)
        self.queue.latency_ticks, self.queue.latency_dev = latency  # the policy is as fast as before
        self._plan_from, self._got_chunk = tick, False  # waiting for the new plan is not starving

    def _note_ages(self, tick: int) -> None:
        """How old the state and the frames behind the action executed at `tick` are. Every action
        queued comes from the newest chunk (merged with older ones at most), so it is its source."""
        if self._source is None:
            return
        period_ms = 1e3 / self.config.fps
        obs_tick, frame_time = self._source
        self.stats.action_state_age_ms.add((tick - obs_tick) * period_ms)
        if frame_time is not None:
            self.stats.action_frame_age_ms.add(max(0.0, tick * period_ms - frame_time * 1e3))

    def _frames(self) -> Observation | None:
        """System 2's input (its own thread): the newest frame of every camera and the task, stamped
        with the tick in progress; None before the first tick or a camera's first frame."""
        tick = self._tick
        if tick is None:
            return None
        obs: Observation = {TASK_KEY: self.config.task, TIMESTAMP_KEY: tick / self.config.fps}
        for camera in self.cameras:
            frame = camera.latest()
            if frame is None:
                return None
            obs[image_key(camera.name)] = frame.image
        return obs

    def _worker_state(self) -> str:
        """What the worker is doing while the arm starves, for the message that stops the run."""
        if self._held == HELD_STALE:
            return (
                "every chunk request was held: System 2's newest context is older than --max-context-age "
                "(its passes are too slow or failing: raise --max-context-age or use a faster backend)"
            )
        if self._held is not None:
            return "every chunk request was held: System 2 has not finished a pass on this episode's frames"
        if self._last_failure is not None:  # failed since the last chunk: being respawned or reconnected
            return f"inference fails ({self.stats.worker_failures} time(s), last: {self._last_failure})"
        if self.worker.busy and self._submitted_at is not None:
            waited = time.perf_counter() - self._submitted_at
            return (
                f"the policy worker has not answered a request sent {waited:.1f} s ago "
                f"(hung, or far too slow for {self.config.fps:g} fps)"
            )
        return f"chunks arrive too late for {self.config.fps:g} fps: lower --fps or use a faster backend"

    def _observation(self, tick: int) -> Observation | None:
        obs: Observation = {
            STATE_KEY: self._state.copy(),
            TASK_KEY: self.config.task,
            TIMESTAMP_KEY: tick / self.config.fps,  # the tick stamp, in the policy's units
        }
        for camera in self.cameras:
            frame = camera.latest()
            if frame is None:
                return None  # a camera has not delivered yet: ask next tick
            obs[image_key(camera.name)] = frame.image
        return obs

    def _take(self, result: Result, tick: int) -> None:
        self._held = result.held
        if result.held is not None:  # no context fresh enough: asked again with the next tick's state
            if result.held == HELD_STALE:
                self.stats.holds_stale_context += 1
            else:
                self.stats.holds_no_context += 1
            return
        if result.actions is None:
            self.stats.worker_failures += 1
            self._last_failure = result.error
            self.events.put(f"inference failed, holding position: {result.error}")
            return
        if (
            result.actions.shape != (self.spec.chunk_size, self.spec.action_dim)
            or not np.isfinite(result.actions).all()
        ):
            self.stats.actions_rejected += result.actions.size // max(1, self.spec.action_dim)
            self.events.put("policy returned a chunk of the wrong shape or with NaN/inf: ignored, holding")
            return
        self.stats.chunks += 1
        self.stats.chunks_undecoded += result.undecoded
        self._last_failure = None
        self.stats.chunk_ms.add(result.elapsed_ms)
        self._source = (result.request.tick, result.frame_time)
        if result.context_age_s is not None:
            self.stats.context_age_ms.add(max(0.0, result.context_age_s * 1e3))
        self.stats.actions_late += self.queue.add_chunk(result.request.tick, tick, result.actions, self._hold)
        self.stats.latency_ticks = self.queue.latency_ticks
        self._got_chunk = True
        budget_ms = self.spec.chunk_size / self.config.fps * 1e3 / 2
        latency_ms = self.queue.latency_ticks / self.config.fps * 1e3
        if latency_ms > budget_ms and not self._budget_warned:
            self._budget_warned = True
            self.events.put(budget_warning(latency_ms, self.spec.chunk_size, self.config.fps))


def budget_warning(latency_ms: float, chunk_size: int, fps: float) -> str:
    return (
        f"inference latency {latency_ms:.0f} ms exceeds half a chunk ({chunk_size} actions at {fps:g} fps "
        f"= {chunk_size / fps * 500:.0f} ms): async execution stops helping here. Lower --fps, use a "
        "policy with a longer chunk, or a faster backend (ONNX int8 artifact, a GPU server via "
        "`edgevla serve`)"
    )
