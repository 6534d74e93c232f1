"""Leader -> follower mirroring: one step, and the `edgevla teleop` loop with live figures.

The leader's normalised joint positions are the follower's goal (identity map, like lerobot);
the follower's driver clamps the goal (joint limits, present +/- max_relative_target) and
returns what it actually sent, which is what a dataset must record as the action.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from edgevla.drivers.interface import RobotIO
from edgevla.record.ticker import Ticker


@dataclass(frozen=True)
class Step:
    state: np.ndarray  # follower present position before the command
    command: np.ndarray  # leader position = the raw goal
    sent: np.ndarray  # the goal after the driver's clamp


def teleop_step(leader: RobotIO, follower: RobotIO) -> Step:
    state = follower.read_state()
    command = leader.read_state()
    sent = follower.send_action(command)
    return Step(state=state, command=command, sent=sent)


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


def run_teleop(leader: RobotIO, follower: RobotIO, fps: float, duration: float | None, show) -> TeleopStats:
    """Mirror until `duration` seconds pass (forever if None) or Ctrl-C; `show(stats)` twice a second."""
    ticker, stats = Ticker(fps), TeleopStats(fps)
    last_shown = time.monotonic()
    try:
        while duration is None or time.monotonic() - ticker.start < duration:
            tick = ticker.wait()
            step = teleop_step(leader, follower)
            stats.add(step, time.monotonic() - tick.started, ticker.is_late(tick), tick.dropped)
            if tick.started - last_shown >= 0.5:
                show(stats)
                last_shown = tick.started
    except KeyboardInterrupt:  # the normal way to end a teleop session
        pass
    return stats
