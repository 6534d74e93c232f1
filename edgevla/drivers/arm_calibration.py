"""Calibrating one arm, step by step, and the checks a result passes before anything is written.

`edgevla calibrate` runs the steps in a row; the TUI's calibration screen runs one per key press.
The bus primitives (homing, range recording, writing limits) are `homing.py`'s.

Hand-guided: prepare() (torque off) -> the arm is held mid-range -> start() (half-turn homing)
-> record() while a person moves every joint -> write() -> save_profile().
Self-moving (`auto`, e.g. a virtual leader served with `--motion sweep`): there is no centre pose
to hold, so start() resets homing and record() centres each recorded range on mid-turn.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edgevla.drivers import homing
from edgevla.drivers.bus import MotorBus
from edgevla.drivers.calibration import Calibration, save_calibration, writable_profile
from edgevla.drivers.errors import CalibrationError, MotorNotFoundError
from edgevla.drivers.safety import disable_torque
from edgevla.drivers.setup import configure
from edgevla.hardware import RobotDef

NEVER_MOVED_COUNTS = 20  # a range this small is a joint nobody moved
SMALL_RANGE_FRACTION = 0.10  # of one turn: suspicious for any joint of these arms


def review_ranges(calibration: Calibration, robot: RobotDef) -> dict[str, str]:
    """Joints whose recorded range is suspicious, with the reason."""
    flags = {}
    for joint, cal in calibration.items():
        span, turn = cal.range_max - cal.range_min, robot.motor(joint).servo.resolution
        if span < NEVER_MOVED_COUNTS:
            flags[joint] = "never moved"
        elif span < SMALL_RANGE_FRACTION * turn:
            flags[joint] = f"range {span / turn:.0%} of a turn"
    return flags


def refusal(calibration: Calibration) -> str | None:
    """Why this calibration must not be used (joints that did not move), or None."""
    still = [
        joint for joint, cal in calibration.items() if cal.range_max - cal.range_min < NEVER_MOVED_COUNTS
    ]
    if not still:
        return None
    return (
        f"joint(s) {', '.join(still)} did not move (range under {NEVER_MOVED_COUNTS} counts): move each "
        "through its whole range while the ranges are recorded, then calibrate again"
    )


def save_profile(calibration: Calibration, path: Path) -> Path:
    """Save a calibration that passed the checks, never over a shipped default profile."""
    problem = refusal(calibration)
    if problem:
        raise CalibrationError(f"{problem}; nothing was saved")
    return save_calibration(calibration, writable_profile(path))


class ArmCalibration:
    def __init__(self, bus: MotorBus, robot: RobotDef, auto: bool = False):
        self.bus, self.robot, self.auto = bus, robot, auto
        self.offsets: dict[str, int] = {}

    def prepare(self) -> None:
        """The robot's settings, then torque off: the arm is moved by hand (or moves itself)."""
        configure(self.bus, self.robot)
        disable_torque(self.bus)

    def start(self) -> None:
        """Hand-guided: the arm is held mid-range, make that pose read mid-turn. Auto: homing 0,
        so the recorded ranges are raw encoder counts."""
        if self.auto:
            homing.reset_homing(self.bus, self.robot.joint_names)
            self.offsets = {}
        else:
            self.offsets = homing.home_half_turn(self.bus)

    def record(
        self,
        stop: Callable[[], bool],
        on_sample: Callable[[dict[str, int], dict[str, int], dict[str, int]], None] | None = None,
        period_s: float = 0.01,
    ) -> Calibration:
        """Record every joint's range until `stop()`; the calibration it makes (not yet written)."""
        ranges = homing.record_ranges(self.bus, stop=stop, on_sample=on_sample, period_s=period_s)
        offsets = self.offsets
        if self.auto:
            offsets, ranges = homing.centre_on_range(self.bus, ranges)
        calibration = homing.build_calibration(self.bus, offsets, ranges)
        if self.auto and refusal(calibration) is None:
            for name, offset in offsets.items():  # the sweep ran with offset 0: centre it now
                self.bus.write_settings(name, {"Homing_Offset": offset})
        return calibration

    def write(self, calibration: Calibration) -> None:
        """Offsets and position limits into the servos, once the ranges pass the checks and every
        motor answers (never leave the arm half-written)."""
        problem = refusal(calibration)
        if problem:
            raise CalibrationError(f"{problem}; nothing was written")
        silent = [m for m in self.robot.motors if not self.bus.ping_id(m.id, attempts=3)]
        if silent:
            names = ", ".join(f"{m.name} (id {m.id})" for m in silent)
            raise MotorNotFoundError(f"no answer from {names} on '{self.bus.port_name}'; nothing was written")
        homing.write_calibration(self.bus, calibration, force=True)
