"""Joint angles <-> servo counts <-> normalised units for the simulated arm.

The simulated servos are calibrated the way lerobot's half-turn homing leaves a real arm: homing
offset 0 with the centred joint reading 2047, and range_min/range_max at the model's joint
limits. `sim_calibration` writes that calibration in lerobot's JSON shape so the real driver
can load it like any other arm's calibration.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgevla.hardware import NormMode, RobotDef
from edgevla.paths import REPO_ROOT
from edgevla.sim.kinematics import Kinematics

CENTER_COUNT = 2047  # what a centred joint reads after half-turn homing
# The simulated arms' calibration profiles, for the driver (EDGEVLA_CALIBRATION_DIR=<this>);
# regenerate with `edgevla sim calibration` when hardware/kinematics changes.
SIM_CALIBRATION_DIR = REPO_ROOT / "calibration" / "sim"


def counts_per_radian(robot: RobotDef) -> np.ndarray:
    return np.array([m.servo.resolution / (2 * np.pi) for m in robot.motors])


def angles_to_counts(kin: Kinematics, robot: RobotDef, angles: np.ndarray) -> np.ndarray:
    """Model angles (radians) -> raw Present/Goal_Position counts (float; round when sending)."""
    direction = np.array([j.direction for j in kin.joints])
    return CENTER_COUNT + direction * np.asarray(angles) * counts_per_radian(robot)


def counts_to_angles(kin: Kinematics, robot: RobotDef, counts: np.ndarray) -> np.ndarray:
    direction = np.array([j.direction for j in kin.joints])
    return (np.asarray(counts, dtype=np.float64) - CENTER_COUNT) * direction / counts_per_radian(robot)


def sim_calibration(kin: Kinematics, robot: RobotDef) -> dict[str, dict[str, int]]:
    """lerobot-shaped calibration {joint: {id, drive_mode, homing_offset, range_min, range_max}}."""
    ends = np.sort(
        np.stack([angles_to_counts(kin, robot, kin.lower), angles_to_counts(kin, robot, kin.upper)]), 0
    )
    return {
        motor.name: {
            "id": motor.id,
            "drive_mode": 0,
            "homing_offset": 0,
            "range_min": int(np.ceil(ends[0, i])),
            "range_max": int(np.floor(ends[1, i])),
        }
        for i, motor in enumerate(robot.motors)
    }


def write_sim_calibration(kin: Kinematics, robots: list[RobotDef], directory: Path) -> list[Path]:
    """One lerobot-format profile per robot (leader and follower share the kinematics)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for robot in robots:
        path = directory / f"{robot.name}.json"
        path.write_text(json.dumps(sim_calibration(kin, robot), indent=4) + "\n")
        paths.append(path)
    return paths


# The two functions below are lerobot's normalisation, kept here only until the drivers'
# edgevla.drivers.calibration lands; then they are replaced by calls to it.
def normalize(robot: RobotDef, calibration: dict[str, dict[str, int]], counts: np.ndarray) -> np.ndarray:
    out = np.empty(len(robot.motors), dtype=np.float64)
    for i, motor in enumerate(robot.motors):
        cal = calibration[motor.name]
        low, high = cal["range_min"], cal["range_max"]
        fraction = (np.clip(counts[i], low, high) - low) / (high - low)
        if cal["drive_mode"]:
            fraction = 1.0 - fraction
        out[i] = fraction * 100 if motor.norm is NormMode.RANGE_0_100 else fraction * 200 - 100
    return out


def unnormalize(robot: RobotDef, calibration: dict[str, dict[str, int]], values: np.ndarray) -> np.ndarray:
    out = np.empty(len(robot.motors), dtype=np.float64)
    for i, motor in enumerate(robot.motors):
        cal = calibration[motor.name]
        low, high = cal["range_min"], cal["range_max"]
        fraction = values[i] / 100 if motor.norm is NormMode.RANGE_0_100 else (values[i] + 100) / 200
        fraction = np.clip(fraction, 0.0, 1.0)
        if cal["drive_mode"]:
            fraction = 1.0 - fraction
        out[i] = low + fraction * (high - low)
    return out
