"""Torque on without a jump, torque off, and goal clamping."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgevla.drivers.bus import MotorBus
from edgevla.drivers.errors import BusError


def enable_torque(bus: MotorBus, motors: Sequence[str] | None = None) -> None:
    """Torque on where the joints are now: Goal_Position := Present_Position first.

    A servo keeps its last Goal_Position while torque is off; enabling torque with a stale
    goal drives the joint there at full speed."""
    names = list(motors or bus.motors)
    present = bus.sync_read("Present_Position", names)
    bus.sync_write("Goal_Position", present)
    for name in names:
        bus.write("Torque_Enable", name, 1)


def disable_torque(bus: MotorBus, motors: Sequence[str] | None = None) -> None:
    """Torque off on every motor that answers; a motor that does not is reported after the rest."""
    first_error = None
    for name in motors or bus.motors:
        try:
            bus.write("Torque_Enable", name, 0)
        except BusError as err:
            first_error = first_error or err
    if first_error:
        raise first_error


def clamp_goal(
    goal: np.ndarray, present: np.ndarray, low: np.ndarray, high: np.ndarray, max_step: np.ndarray
) -> np.ndarray:
    """`goal` within [low, high] and within present +/- max_step (NaN max_step: no step cap)."""
    step = np.where(np.isnan(max_step), np.inf, max_step)
    return np.clip(np.clip(goal, present - step, present + step), low, high)
