"""Calibrations users make: saved where lerobot keeps them, found again, and refused when a joint
never moved (the procedure of edgevla.drivers.arm_calibration, through `edgevla calibrate`)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgevla.drivers.arm_calibration import review_ranges
from edgevla.drivers.calibration import MotorCalibration, find_profile, profile_path
from edgevla.drivers.errors import CalibrationError
from edgevla.drivers.robot import Robot
from edgevla.firmware import Sweep, serve_robot
from edgevla.hardware import load_robot
from edgevla.paths import calibration_dir

from .helpers import PATIENT

pytestmark = pytest.mark.timeout(120)
LEROBOT_KEYS = {"id", "drive_mode", "homing_offset", "range_min", "range_max"}


class StillGripper(Sweep):
    """Every joint sweeps but the gripper, which nobody touches."""

    def position(self, joint: int, t: float) -> float:
        return 2048.0 if joint == 5 else super().position(joint, t)


@pytest.fixture
def lerobot_folder(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "lerobot-calibration"
    monkeypatch.setenv("HF_LEROBOT_CALIBRATION", str(folder))
    monkeypatch.delenv("EDGEVLA_CALIBRATION_DIR", raising=False)
    return folder


def calibrate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgevla", "calibrate", *args], capture_output=True, text=True, timeout=90
    )


def shipped_state() -> dict[str, str]:
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(calibration_dir().rglob("*.json"))
    }


def test_calibrate_saves_to_lerobots_folder_by_arm_id_and_leaves_the_checkout_alone(lerobot_folder):
    before = shipped_state()
    with serve_robot("so101_leader", motion=Sweep(low=500, high=3600, period_s=1.0)) as arm:
        result = calibrate(
            "--robot", "so101_leader", "--port", arm.port, "--auto", "--seconds", "3", "--id", "bench"
        )
        assert result.returncode == 0, result.stderr
        profile = lerobot_folder / "teleoperators" / "so101_leader" / "bench.json"
        assert f"saved {profile}" in result.stdout
        doc = json.loads(profile.read_text())  # lerobot's format: {motor: {id, drive_mode, ...}}
        assert list(doc) == list(arm.robot.joint_names)
        assert all(set(entry) == LEROBOT_KEYS for entry in doc.values())
        assert all(isinstance(v, int) for entry in doc.values() for v in entry.values())
        # the driver finds it by the arm's id, and it drives the arm
        robot = load_robot("so101_leader")
        assert find_profile(robot, "bench").path == profile
        with Robot(robot, arm.port, arm_id="bench", torque=False) as leader:
            assert all(-100 <= v <= 100 for v in leader.read_state())
    assert shipped_state() == before


def test_followers_and_leaders_are_filed_as_lerobot_files_them(lerobot_folder):
    follower, leader = load_robot("so101_follower"), load_robot("koch_leader")
    assert profile_path(follower) == lerobot_folder / "robots" / "so101_follower" / "so101_follower.json"
    assert profile_path(leader, "left") == lerobot_folder / "teleoperators" / "koch_leader" / "left.json"


def test_a_joint_that_never_moved_is_refused_by_name_and_nothing_is_saved(lerobot_folder):
    with serve_robot("so101_leader", motion=StillGripper(period_s=1.0)) as arm:
        result = calibrate("--robot", "so101_leader", "--port", arm.port, "--auto", "--seconds", "3")
        limits = [(s.get("Min_Position_Limit"), s.get("Max_Position_Limit")) for s in arm.bus.servos]
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert (
        "gripper" in lines[0]
        and "did not move" in lines[0]
        and "move each through its whole range" in lines[0]
    )
    assert "shoulder_pan" not in lines[0]
    assert not lerobot_folder.exists()  # no profile
    assert limits == [(0, 4095)] * 6  # as homing reset left them: no recorded range reached a servo


def test_an_arm_nobody_moved_names_every_joint():
    with serve_robot("so101_leader") as arm:
        result = calibrate("--robot", "so101_leader", "--port", arm.port, "--auto", "--seconds", "1")
    assert result.returncode == 2
    assert "shoulder_pan, shoulder_lift, elbow_flex, wrist_flex, wrist_roll, gripper" in result.stderr


def test_the_shipped_profiles_are_never_overwritten():
    shipped = calibration_dir() / "so101_leader.json"
    before = shipped.read_bytes()
    result = calibrate("--robot", "so101_leader", "--port", "/dev/null", "--auto", "--out", str(shipped))
    assert result.returncode == 2 and "shipped default profile (read-only)" in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert shipped.read_bytes() == before


def test_lookup_order_explicit_then_the_arms_own_then_the_shipped_default(lerobot_folder, tmp_path, caplog):
    robot = load_robot("so101_follower")
    shipped = find_profile(robot)
    assert shipped.shipped and shipped.path == calibration_dir() / "so101_follower.json"
    own = profile_path(robot)
    own.parent.mkdir(parents=True)
    own.write_text(shipped.path.read_text())
    assert find_profile(robot) == type(shipped)(own, shipped=False)
    assert find_profile(robot, explicit=tmp_path / "x.json").path == tmp_path / "x.json"
    with pytest.raises(CalibrationError, match="--id left"):
        find_profile(robot, "left")  # an arm asked for by id never falls back to a default
    own.unlink()
    with serve_robot("so101_follower", tcp=("127.0.0.1", 0)) as arm:
        with caplog.at_level(logging.WARNING), Robot(robot, arm.url, bus_config=PATIENT):
            pass  # not a pseudo-terminal: maybe a real arm, and the shipped profile is not its own
        assert f"edgevla calibrate --robot so101_follower --port {arm.url}" in caplog.text
        caplog.clear()
        with caplog.at_level(logging.WARNING), Robot(robot, arm.port, bus_config=PATIENT):
            pass  # a virtual arm: the shipped profile is made for it, nothing to say
        assert caplog.text == ""


def test_environment_override_is_one_flat_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEVLA_CALIBRATION_DIR", str(tmp_path))
    robot = load_robot("so101_leader")
    assert profile_path(robot) == tmp_path / "so101_leader.json"
    assert profile_path(robot, "bench") == tmp_path / "bench.json"
    assert find_profile(robot).shipped  # nothing there yet: the shipped default
    assert os.listdir(tmp_path) == []


def cal(low: int, high: int) -> MotorCalibration:
    return MotorCalibration(id=1, drive_mode=0, homing_offset=0, range_min=low, range_max=high)


def test_review_flags_unmoved_and_small_ranges():
    flags = review_ranges(
        {"shoulder_pan": cal(400, 3700), "elbow_flex": cal(2040, 2050), "gripper": cal(1900, 2200)},
        load_robot("so101_leader"),
    )
    assert flags == {"elbow_flex": "never moved", "gripper": "range 7% of a turn"}
