"""Joint angles <-> servo counts for the simulated arm, and the arm's calibration profile.

The simulated servos are calibrated the way lerobot's half-turn homing leaves a real arm: homing
offset 0 with the centred joint reading 2047, and range_min/range_max at the model's joint
limits. Counts <-> normalised units is the driver's own mapping (edgevla.drivers.calibration),
so the simulator and a real arm speak the same units.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgevla.drivers.calibration import Calibration, MotorCalibration, save_calibration
from edgevla.hardware import RobotDef
from edgevla.paths import shipped
from edgevla.sim.kinematics import Kinematics

CENTER_COUNT = 2047  # what a centred joint reads after half-turn homing
# The simulated arms' calibration profiles, for the driver (EDGEVLA_CALIBRATION_DIR=<this>);
# regenerate with `edgevla sim calibration` when hardware/kinematics changes.
SIM_CALIBRATION_DIR = shipped("calibration") / "sim"


def counts_per_radian(robot: RobotDef) -> np.ndarray:
    return np.array([m.servo.resolution / (2 * np.pi) for m in robot.motors])


def angles_to_counts(kin: Kinematics, robot: RobotDef, angles: np.ndarray) -> np.ndarray:
    """Model angles (radians) -> raw Present/Goal_Position counts (float; round when sending)."""
    direction = np.array([j.direction for j in kin.joints])
    return CENTER_COUNT + direction * np.asarray(angles) * counts_per_radian(robot)


def counts_to_angles(kin: Kinematics, robot: RobotDef, counts: np.ndarray) -> np.ndarray:
    direction = np.array([j.direction for j in kin.joints])
    return (np.asarray(counts, dtype=np.float64) - CENTER_COUNT) * direction / counts_per_radian(robot)


def sim_calibration(kin: Kinematics, robot: RobotDef) -> Calibration:
    """lerobot-shaped calibration {joint: (id, drive_mode, homing_offset, range_min, range_max)}."""
    ends = np.sort(
        np.stack([angles_to_counts(kin, robot, kin.lower), angles_to_counts(kin, robot, kin.upper)]), 0
    )
    return {
        motor.name: MotorCalibration(
            id=motor.id,
            drive_mode=0,
            homing_offset=0,
            range_min=int(np.ceil(ends[0, i])),
            range_max=int(np.floor(ends[1, i])),
        )
        for i, motor in enumerate(robot.motors)
    }


def write_sim_calibration(kin: Kinematics, robots: list[RobotDef], directory: Path) -> list[Path]:
    """One profile per robot (leader and follower share the kinematics), in the driver's format."""
    return [save_calibration(sim_calibration(kin, r), directory / f"{r.name}.json") for r in robots]
