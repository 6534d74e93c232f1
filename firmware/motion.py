"""Motion sources: the hand that moves a virtual joint while its torque is off (a leader arm).

A motion source answers one question: where does the hand hold joint `joint` (index in the
robot definition's order) at `t` seconds after the bus started, in raw encoder counts before
any homing offset? `None` leaves the joint where it is. Anything with that method works, e.g.
a simulator's scripted expert.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from edgevla.errors import EdgevlaError


class MotionSource(Protocol):
    def position(self, joint: int, t: float) -> float | None: ...


class Hold:
    """Nobody touches the arm: joints stay where they are."""

    def position(self, joint: int, t: float) -> float | None:
        return None


@dataclass(frozen=True)
class Sweep:
    """Each joint swings smoothly between `low` and `high` counts, starting from mid-range.

    Joint j uses a period of `period_s * (1 + 0.15 j)`, so joints are not in lock step and
    every joint reaches both ends within `period_s * (1 + 0.15 j)` seconds."""

    low: float = 400.0
    high: float = 3700.0
    period_s: float = 4.0

    def position(self, joint: int, t: float) -> float:
        mid, amplitude = (self.low + self.high) / 2, (self.high - self.low) / 2
        period = self.period_s * (1 + 0.15 * joint)
        return mid + amplitude * math.sin(2 * math.pi * t / period)


class Replay:
    """Plays recorded raw positions (frames x joints) at `fps`, linearly interpolated, looping."""

    def __init__(self, positions: np.ndarray, fps: float, loop: bool = True):
        positions = np.asarray(positions, dtype=np.float64)
        if positions.ndim != 2 or len(positions) < 1 or fps <= 0:
            raise EdgevlaError("replay needs a (frames, joints) array of raw positions and fps > 0")
        self.positions, self.fps, self.loop = positions, float(fps), loop

    @property
    def duration_s(self) -> float:
        return (len(self.positions) - 1) / self.fps

    def position(self, joint: int, t: float) -> float | None:
        if joint >= self.positions.shape[1]:
            return None
        frame = t * self.fps
        last = len(self.positions) - 1
        if last == 0:
            return float(self.positions[0, joint])
        frame = frame % last if self.loop else min(frame, last)
        i = int(frame)
        j = min(i + 1, last)
        w = frame - i
        value = float((1 - w) * self.positions[i, joint] + w * self.positions[j, joint])
        return None if math.isnan(value) else value

    @classmethod
    def from_csv(cls, path: str | Path, joint_names: tuple[str, ...], loop: bool = True) -> Replay:
        """CSV with a header `t,<joint>,...`: time in seconds (evenly spaced) and raw counts.

        Columns are matched to the robot's joints by name; a joint without a column is not moved."""
        path = Path(path)
        try:
            with path.open(newline="") as f:
                rows = list(csv.reader(f))
        except OSError as err:
            raise EdgevlaError(f"replay file '{path}': cannot read: {err.strerror}") from None
        if len(rows) < 3 or not rows[0] or rows[0][0].strip() != "t":
            raise EdgevlaError(f"replay file '{path}': expected a header 't,<joint>,...' and >= 2 rows")
        header = [name.strip() for name in rows[0][1:]]
        unknown = [name for name in header if name not in joint_names]
        if unknown:
            raise EdgevlaError(
                f"replay file '{path}': unknown joint(s) {unknown}; joints: {', '.join(joint_names)}"
            )
        try:
            table = np.array([[float(v) for v in row] for row in rows[1:] if row], dtype=np.float64)
        except ValueError as err:
            raise EdgevlaError(f"replay file '{path}': not a number: {err}") from None
        if table.shape[1] != len(header) + 1:
            raise EdgevlaError(f"replay file '{path}': every row needs {len(header) + 1} values")
        steps = np.diff(table[:, 0])
        if np.any(steps <= 0):
            raise EdgevlaError(f"replay file '{path}': column t must increase")
        positions = np.full((len(table), len(joint_names)), np.nan)
        for col, name in enumerate(header, start=1):
            positions[:, joint_names.index(name)] = table[:, col]
        return cls(positions, fps=1.0 / float(np.mean(steps)), loop=loop)


def motion_from_args(spec: list[str] | None, joint_names: tuple[str, ...]) -> MotionSource:
    """`--motion sweep`, `--motion hold`, `--motion replay FILE` -> a motion source."""
    if not spec or spec == ["hold"]:
        return Hold()
    if spec == ["sweep"]:
        return Sweep()
    if spec[0] == "replay" and len(spec) == 2:
        return Replay.from_csv(spec[1], joint_names)
    raise EdgevlaError(f"--motion expects 'sweep', 'hold' or 'replay FILE', got '{' '.join(spec)}'")
