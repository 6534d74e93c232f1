"""Calibration procedures on a live bus: half-turn homing, range-of-motion recording, writing
a profile into the servos. The maths stays in `calibration.py` and the vendor back ends."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from edgevla.drivers.bus import MotorBus
from edgevla.drivers.calibration import Calibration, MotorCalibration
from edgevla.drivers.safety import disable_torque
from edgevla.hardware import Register


def offset_limit(register: Register) -> int:
    """Largest |Homing_Offset| the register holds (Feetech sign-magnitude: 2047 with bit 11)."""
    if register.sign_bit is not None:
        return (1 << register.sign_bit) - 1
    return (1 << (8 * register.size - 1)) - 1


def reset_homing(bus: MotorBus, motors: Sequence[str]) -> None:
    """Homing_Offset 0 and the widest position limits: Present_Position becomes the raw encoder."""
    for name in motors:
        servo = bus.motor(name).servo
        bus.write_settings(
            name, {"Homing_Offset": 0, "Min_Position_Limit": 0, "Max_Position_Limit": servo.resolution - 1}
        )


def half_turn_offsets(bus: MotorBus, actual: dict[str, int]) -> dict[str, int]:
    """Homing offsets that make each raw position `actual[name]` read mid-turn."""
    offsets = {}
    for name, position in actual.items():
        servo = bus.motor(name).servo
        limit = offset_limit(servo.register("Homing_Offset"))
        offsets[name] = bus.backend.half_turn_offset(position, servo.resolution, limit)
    return offsets


def home_half_turn(bus: MotorBus, motors: Sequence[str] | None = None) -> dict[str, int]:
    """Set each joint's present position (as it is held now) to mid-turn; returns the offsets.

    The offset is computed from the raw position with the old offset reset to 0, never added to
    a previous one, so repeated calibrations cannot overflow the register (lerobot's
    "Magnitude 2114 exceeds 2047")."""
    names = list(motors or bus.motors)
    disable_torque(bus, names)
    reset_homing(bus, names)
    offsets = half_turn_offsets(bus, bus.sync_read("Present_Position", names))
    for name, offset in offsets.items():
        bus.write_settings(name, {"Homing_Offset": offset})
    return offsets


def record_ranges(
    bus: MotorBus,
    motors: Sequence[str] | None = None,
    stop: Callable[[], bool] = lambda: True,
    on_sample: Callable[[dict[str, int], dict[str, int], dict[str, int]], None] | None = None,
    period_s: float = 0.01,
) -> dict[str, tuple[int, int]]:
    """Min and max Present_Position of each joint, sampled until `stop()` returns True.

    `on_sample(positions, mins, maxes)` is called after every sample (progress display)."""
    names = list(motors or bus.motors)
    positions = bus.sync_read("Present_Position", names)
    mins, maxes = dict(positions), dict(positions)
    while True:
        positions = bus.sync_read("Present_Position", names)
        for name, value in positions.items():
            mins[name], maxes[name] = min(mins[name], value), max(maxes[name], value)
        if on_sample:
            on_sample(positions, mins, maxes)
        if stop():
            return {name: (mins[name], maxes[name]) for name in names}
        time.sleep(period_s)


def centre_on_range(
    bus: MotorBus, raw_ranges: dict[str, tuple[int, int]]
) -> tuple[dict[str, int], dict[str, tuple[int, int]]]:
    """Homing offsets that put the middle of each raw range (recorded with offset 0) mid-turn,
    and the ranges as they read with those offsets. For hands-off calibration (a virtual sweep)."""
    offsets = half_turn_offsets(bus, {n: (lo + hi) // 2 for n, (lo, hi) in raw_ranges.items()})
    ranges = {}
    for name, (lo, hi) in raw_ranges.items():
        sign, top = bus.backend.rules.homing_sign, bus.motor(name).servo.resolution - 1
        shift = sign * offsets[name]
        ranges[name] = (max(0, lo + shift), min(top, hi + shift))
    return offsets, ranges


def build_calibration(
    bus: MotorBus,
    offsets: dict[str, int],
    ranges: dict[str, tuple[int, int]],
    drive_modes: dict[str, int] | None = None,
) -> Calibration:
    return {
        name: MotorCalibration(
            id=bus.motor(name).id,
            drive_mode=(drive_modes or {}).get(name, 0),
            homing_offset=offsets[name],
            range_min=ranges[name][0],
            range_max=ranges[name][1],
        )
        for name in ranges
    }


def write_calibration(bus: MotorBus, calibration: Calibration, force: bool = False) -> list[str]:
    """Store offsets and position limits in the servos where they differ (EEPROM wears out);
    returns the joints written."""
    names = list(calibration)
    current = {
        reg: bus.sync_read(reg, names)
        for reg in ("Homing_Offset", "Min_Position_Limit", "Max_Position_Limit")
    }
    written = []
    for name, cal in calibration.items():
        wanted = {
            "Homing_Offset": cal.homing_offset,
            "Min_Position_Limit": cal.range_min,
            "Max_Position_Limit": cal.range_max,
        }
        if force or any(current[reg][name] != value for reg, value in wanted.items()):
            bus.write_settings(name, wanted)
            written.append(name)
    return written
