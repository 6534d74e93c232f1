"""What the control loops (teleop, record, async runtime) need from a robot arm.

`edgevla.drivers.robot.Robot` implements it over a real or virtual servo bus. Values are
calibrated, normalised joint units in the order of `joint_names`.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class RobotIO(Protocol):
    name: str
    joint_names: tuple[str, ...]

    def connect(self) -> None:
        """Open the bus, check every motor answers, apply the robot definition's settings."""

    def read_state(self) -> np.ndarray:
        """float32 (n_joints,) present positions, normalised."""

    def send_action(self, goal: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
        """Clamp `goal` (limits, present +/- max_relative_target), send it, return what was sent.
        `present`: the state the caller read this tick, so the bus is not read twice (None: read)."""

    def disconnect(self) -> None:
        """Stop the arm as its robot definition says (torque off by default) and close the bus."""
