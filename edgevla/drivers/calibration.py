"""Calibration profiles (lerobot-compatible JSON) and the raw <-> normalised joint mapping.

A profile holds, per joint: {"id", "drive_mode", "homing_offset", "range_min", "range_max"},
exactly the keys of lerobot's calibration files, so a profile made by either tool works with
the other. Ranges are in Present_Position counts (after the servo applied its homing offset).

The normalisation functions are pure and vectorised over joints (control loops call them
every tick; the simulator reuses them): build a `NormTable` once, then `normalize` /
`unnormalize` numpy arrays in joint order. Formulas are lerobot's:
DEGREES = (raw - mid) * 360 / (resolution - 1); RANGE_M100_100 = (raw - min) / (max - min) * 200
- 100, negated with drive_mode; RANGE_0_100 = (raw - min) / (max - min) * 100 (100 - x with
drive_mode). The range modes clip raw to [min, max] first.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgevla.drivers.errors import CalibrationError
from edgevla.hardware import NormMode, RobotDef
from edgevla.paths import calibration_dir, calibration_override, lerobot_calibration_dir

FIELDS = ("id", "drive_mode", "homing_offset", "range_min", "range_max")
MODE_CODES = {NormMode.DEGREES: 0, NormMode.RANGE_M100_100: 1, NormMode.RANGE_0_100: 2}


@dataclass(frozen=True)
class MotorCalibration:
    id: int
    drive_mode: int
    homing_offset: int
    range_min: int
    range_max: int


Calibration = dict[str, MotorCalibration]  # joint name -> its calibration


# --- files ---------------------------------------------------------------------------------


# lerobot files followers under robots/ and leaders under teleoperators/
LEROBOT_KINDS = {"follower": "robots", "leader": "teleoperators"}


def profile_path(robot: RobotDef, arm_id: str | None = None) -> Path:
    """Where the profile of one arm is written and looked for first. `arm_id` names the arm
    (default: the robot's name), as lerobot's `--robot.id`: <lerobot calibration>/robots/<robot>/
    <id>.json for a follower, teleoperators/<robot>/<id>.json for a leader; with
    EDGEVLA_CALIBRATION_DIR set, <that folder>/<id>.json."""
    folder = calibration_override() or lerobot_calibration_dir() / LEROBOT_KINDS[robot.role] / robot.name
    return folder / f"{arm_id or robot.name}.json"


@dataclass(frozen=True)
class ProfileSource:
    path: Path
    shipped: bool  # the read-only default made for the virtual arm, not a calibration of this arm


def find_profile(
    robot: RobotDef, arm_id: str | None = None, explicit: Path | str | None = None
) -> ProfileSource:
    """The profile to load: `explicit` (a path the user gave), else the arm's own profile
    (`profile_path`), else, when no arm id was asked for, the shipped default of the robot."""
    if explicit:
        return ProfileSource(Path(explicit), shipped=False)
    own = profile_path(robot, arm_id)
    if own.is_file():
        return ProfileSource(own, shipped=False)
    default = calibration_dir() / f"{robot.name}.json"
    if arm_id in (None, robot.name) and default.is_file():
        return ProfileSource(default, shipped=True)
    raise CalibrationError(
        f"no calibration profile '{own}'; run: edgevla calibrate --robot {robot.name} --port PORT"
        + (f" --id {arm_id}" if arm_id else "")
    )


def user_profiles() -> list[Path]:
    """Every profile in the user's calibration folder(s)."""
    flat = calibration_override()
    if flat is not None:
        return sorted(flat.glob("*.json"))
    root = lerobot_calibration_dir()
    return sorted(path for kind in LEROBOT_KINDS.values() for path in root.glob(f"{kind}/*/*.json"))


def writable_profile(path: Path) -> Path:
    """`path`, unless it is one of the shipped defaults (the package's, or a checkout's, which
    git tracks): those are read-only, a calibration never overwrites them."""
    path = Path(path)
    if path.resolve().is_relative_to(calibration_dir().resolve()):
        raise CalibrationError(
            f"'{path}' is a shipped default profile (read-only): save the calibration elsewhere "
            "(--out FILE, or without EDGEVLA_CALIBRATION_DIR pointing at the shipped folder)"
        )
    return path


def load_calibration(path: Path) -> Calibration:
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise CalibrationError(
            f"no calibration profile '{path}'; run: edgevla calibrate --robot ROBOT --port PORT"
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise CalibrationError(f"{path}: cannot read: {err}") from None
    except json.JSONDecodeError as err:
        raise CalibrationError(f"{path}: not valid JSON (line {err.lineno}): {err.msg}") from None
    return parse_calibration(doc, path)


def parse_calibration(doc: object, path: object = "calibration") -> Calibration:
    """A profile from its JSON object ({joint: {"id", "drive_mode", ...}}), validated;
    `path` names the source in errors."""
    if not isinstance(doc, dict) or not doc:
        raise CalibrationError(f"{path}: expected an object with one entry per joint")
    calibration = {}
    for joint, entry in doc.items():
        if not isinstance(entry, dict):
            raise CalibrationError(f"{path}: field '{joint}': expected an object with {', '.join(FIELDS)}")
        values = {}
        for name in FIELDS:
            value = entry.get(name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise CalibrationError(f"{path}: field '{joint}.{name}': expected an integer, got {value!r}")
            values[name] = value
        if values["range_min"] >= values["range_max"]:
            raise CalibrationError(f"{path}: field '{joint}.range_min': must be below range_max")
        if values["drive_mode"] not in (0, 1):
            raise CalibrationError(f"{path}: field '{joint}.drive_mode': must be 0 or 1")
        calibration[joint] = MotorCalibration(**values)
    return calibration


def save_calibration(calibration: Calibration, path: Path) -> Path:
    """Write atomically (a crash mid-write never leaves half a profile)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps({j: asdict(c) for j, c in calibration.items()}, indent=4) + "\n")
    os.replace(tmp, path)
    return path


def check_fits(calibration: Calibration, robot: RobotDef, source: object = "calibration") -> None:
    """The profile covers exactly the robot's joints, with the robot's ids."""
    missing = [j for j in robot.joint_names if j not in calibration]
    if missing:
        raise CalibrationError(f"{source}: no entry for joint(s) {', '.join(missing)} of '{robot.name}'")
    for motor in robot.motors:
        if calibration[motor.name].id != motor.id:
            raise CalibrationError(
                f"{source}: joint '{motor.name}' has id {calibration[motor.name].id}, "
                f"robot '{robot.name}' uses id {motor.id}"
            )


# --- normalisation -------------------------------------------------------------------------


@dataclass(frozen=True)
class NormTable:
    """Per-joint arrays (joint order) that `normalize` / `unnormalize` need."""

    modes: np.ndarray  # MODE_CODES values
    range_min: np.ndarray
    range_max: np.ndarray
    drive_mode: np.ndarray  # bool
    max_res: np.ndarray  # resolution - 1

    @classmethod
    def build(cls, robot: RobotDef, calibration: Calibration) -> NormTable:
        check_fits(calibration, robot)
        cals = [calibration[m.name] for m in robot.motors]
        return cls(
            modes=np.array([MODE_CODES[m.norm] for m in robot.motors]),
            range_min=np.array([c.range_min for c in cals], dtype=np.float64),
            range_max=np.array([c.range_max for c in cals], dtype=np.float64),
            drive_mode=np.array([bool(c.drive_mode) for c in cals]),
            max_res=np.array([m.servo.resolution - 1 for m in robot.motors], dtype=np.float64),
        )

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Normalised values of the calibrated range ends, low <= high per joint."""
        ends = np.stack([normalize(self.range_min, self), normalize(self.range_max, self)])
        return ends.min(axis=0), ends.max(axis=0)


def normalize(raw: np.ndarray, table: NormTable) -> np.ndarray:
    """Raw Present_Position counts -> normalised float32 values (lerobot's formulas)."""
    raw = np.asarray(raw, dtype=np.float64)
    lo, hi = table.range_min, table.range_max
    fraction = (np.clip(raw, lo, hi) - lo) / (hi - lo)
    m100 = fraction * 200.0 - 100.0
    z100 = fraction * 100.0
    degrees = (raw - (lo + hi) / 2.0) * 360.0 / table.max_res
    out = np.select(
        [table.modes == 0, table.modes == 1],
        [degrees, np.where(table.drive_mode, -m100, m100)],
        np.where(table.drive_mode, 100.0 - z100, z100),
    )
    return out.astype(np.float32)


def unnormalize(values: np.ndarray, table: NormTable) -> np.ndarray:
    """Normalised values -> raw counts (int64), the inverse of `normalize` within the range."""
    values = np.asarray(values, dtype=np.float64)
    lo, hi = table.range_min, table.range_max
    m100 = np.clip(np.where(table.drive_mode, -values, values), -100.0, 100.0)
    z100 = np.clip(np.where(table.drive_mode, 100.0 - values, values), 0.0, 100.0)
    raw = np.select(
        [table.modes == 0, table.modes == 1],
        [values * table.max_res / 360.0 + (lo + hi) / 2.0, (m100 + 100.0) / 200.0 * (hi - lo) + lo],
        z100 / 100.0 * (hi - lo) + lo,
    )
    return np.rint(raw).astype(np.int64)
