"""Leader -> follower mirroring: one step, and the `edgevla teleop` loop with live figures.

The leader's normalised joint positions are the follower's goal (identity map, like lerobot);
the follower's driver clamps the goal (joint limits, present +/- max_relative_target) and
returns what it actually sent, which is what a dataset must record as the action.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from edgevla.clock import Ticker
from edgevla.drivers.interface import RobotIO


@dataclass(frozen=True)
class Step:
    state: np.ndarray  # follower present position before the command
    command: np.ndarray  # leader position = the raw goal
    sent: np.ndarray  # the goal after the driver's clamp


class Mirror:
    """One teleoperation step at a time; the two arms are on separate buses, so the leader is
    read in a helper thread while the follower is read (serial I/O releases the GIL)."""

    def __init__(self, leader: RobotIO, follower: RobotIO):
        self.leader, self.follower = leader, follower
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="leader-read")

    def step(self) -> Step:
        pending = self._pool.submit(self.leader.read_state)
        state = self.follower.read_state()
        command = pending.result()
        sent = self.follower.send_action(command, state)
        return Step(state=state, command=command, sent=sent)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self) -> Mirror:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class TeleopStats:
    """Rolling figures for the live display and the final summary."""

    fps: float
    steps: int = 0
    late: int = 0
    dropped: int = 0
    clamped: int = 0  # steps where the driver changed the leader's goal
    latencies: list[float] = field(default_factory=list)  # seconds from tick to command sent
    started: float = field(default_factory=time.monotonic)

    def add(self, step: Step, latency: float, late: bool, dropped: int) -> None:
        self.steps += 1
        self.late += int(late)
        self.dropped += dropped
        self.clamped += int(not np.allclose(step.sent, step.command, atol=1e-3))
        self.latencies.append(latency)
        del self.latencies[:-1000]  # a rolling window keeps memory bounded in long sessions

    def summary(self) -> dict[str, float]:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        latencies = np.array(self.latencies or [0.0]) * 1000
        return {
            "target_fps": self.fps,
            "rate_hz": round(self.steps / elapsed, 2),
            "steps": self.steps,
            "late": self.late,
            "dropped": self.dropped,
            "clamped_steps": self.clamped,
            "latency_ms_p50": round(float(np.percentile(latencies, 50)), 2),
            "latency_ms_p99": round(float(np.percentile(latencies, 99)), 2),
        }


def run_teleop(
    leader: RobotIO,
    follower: RobotIO,
    fps: float,
    duration: float | None,
    show,
    stopped: Callable[[], bool] = lambda: False,
) -> TeleopStats:
    """Mirror until `duration` seconds pass (forever if None), `stopped()` or Ctrl-C;
    `show(stats)` twice a second."""
    ticker, stats = Ticker(fps), TeleopStats(fps)
    last_shown = time.monotonic()
    with Mirror(leader, follower) as mirror:
        try:
            while (duration is None or time.monotonic() - ticker.start < duration) and not stopped():
                tick = ticker.wait()
                step = mirror.step()
                stats.add(step, time.monotonic() - tick.started, ticker.is_late(tick), tick.dropped)
                if tick.started - last_shown >= 0.5:
                    show(stats)
                    last_shown = tick.started
        except KeyboardInterrupt:  # the normal way to end a teleop session
            pass
    return stats
