"""Calibration: lerobot-compatible profiles, normalisation and its inverse, overflow-safe
half-turn homing (also near the 0/4095 wrap and after repeated calibrations), range recording
on a virtual leader whose joints sweep."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from edgevla.drivers import homing
from edgevla.drivers.bus import MotorBus
from edgevla.drivers.calibration import (
    MotorCalibration,
    NormTable,
    load_calibration,
    normalize,
    save_calibration,
    unnormalize,
)
from edgevla.drivers.dynamixel import Dynamixel
from edgevla.drivers.errors import CalibrationError
from edgevla.drivers.feetech import Feetech
from edgevla.drivers.robot import Robot
from edgevla.firmware import Sweep, serve_robot
from edgevla.hardware import load_robot, load_servo
from edgevla.paths import calibration_dir

from .helpers import PATIENT

SO101 = load_robot("so101_follower")


def profile(lo=1000, hi=3000, drive=0, joints=SO101.motors):
    return {m.name: MotorCalibration(m.id, drive, 0, lo, hi) for m in joints}


def test_normalisation_follows_lerobot_formulas():
    table = NormTable.build(SO101, profile())
    raw = np.array([1000, 2000, 3000, 500, 3500, 2500])
    out = normalize(raw, table)
    # body joints RANGE_M100_100, gripper RANGE_0_100; out-of-range raw clips to the range ends
    np.testing.assert_allclose(out, [-100, 0, 100, -100, 100, 75], atol=1e-4)
    assert out.dtype == np.float32
    flipped = NormTable.build(SO101, profile(drive=1))
    np.testing.assert_allclose(normalize(raw, flipped), [100, 0, -100, 100, -100, 25], atol=1e-4)


def test_degrees_mode_and_round_trip():
    robot = load_robot("so101_follower")
    table = NormTable.build(robot, profile(lo=500, hi=3595))
    degrees = NormTable(
        np.zeros(6, dtype=int), table.range_min, table.range_max, table.drive_mode, table.max_res
    )
    # DEGREES = (raw - mid) * 360 / 4095 with mid 2047.5
    np.testing.assert_allclose(normalize([2047.5 + 4095 / 4] * 6, degrees), 90.0, atol=1e-3)
    rng = np.random.default_rng(0)
    for t in (table, degrees, NormTable.build(robot, profile(lo=500, hi=3595, drive=1))):
        raw = rng.integers(500, 3596, size=(200, 6))
        back = np.stack([unnormalize(normalize(r, t), t) for r in raw])
        assert np.abs(back - raw).max() <= 1  # float32 + rounding: within one count


def test_profile_file_round_trip_is_lerobot_json(tmp_path):
    cal = profile(lo=120, hi=3980)
    path = save_calibration(cal, tmp_path / "arm.json")
    doc = json.loads(path.read_text())
    assert doc["gripper"] == {
        "id": 6,
        "drive_mode": 0,
        "homing_offset": 0,
        "range_min": 120,
        "range_max": 3980,
    }
    assert load_calibration(path) == cal


@pytest.mark.parametrize(
    "text, field",
    [
        ("{not json", "not valid JSON"),
        ('{"gripper": {"id": 6, "drive_mode": 0, "homing_offset": 0, "range_min": 5}}', "gripper.range_max"),
        (
            '{"gripper": {"id": 6, "drive_mode": 0, "homing_offset": "x", "range_min": 1, "range_max": 2}}',
            "gripper.homing_offset",
        ),
        (
            '{"gripper": {"id": 6, "drive_mode": 0, "homing_offset": 0, "range_min": 9, "range_max": 2}}',
            "gripper.range_min",
        ),
    ],
)
def test_malformed_profile_names_file_and_field(tmp_path, text, field):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(CalibrationError, match=field) as err:
        load_calibration(path)
    assert str(path) in str(err.value)


def test_profile_for_other_robot_is_refused(tmp_path):
    path = save_calibration({"gripper": MotorCalibration(6, 0, 0, 1, 2)}, tmp_path / "other.json")
    with pytest.raises(CalibrationError, match="shoulder_pan"):
        Robot(SO101, "/dev/null", path)


def test_shipped_profiles_match_virtual_arms():
    for name in ("so101_follower", "so101_leader", "koch_follower", "koch_leader"):
        robot = load_robot(name)
        table = NormTable.build(robot, load_calibration(calibration_dir() / f"{name}.json"))
        # the virtual joints start at raw 2048 with homing offset 0: mid-range
        np.testing.assert_allclose(normalize(np.full(6, 2048), table), [0, 0, 0, 0, 0, 50], atol=0.05)


@pytest.mark.parametrize("actual", [0, 1, 2, 5, 100, 2046, 2047, 2048, 3000, 4090, 4094, 4095])
def test_feetech_half_turn_offset_never_overflows(actual):
    offset = Feetech(load_servo("sts3215")).half_turn_offset(actual, 4096, 2047)
    assert -2047 <= offset <= 2047  # what the sign-magnitude register (bit 11) holds
    present = (actual - offset) % 4096
    assert abs(present - 2047) <= 1  # 4095 cannot be centred exactly: one count off, no overflow


def test_every_feetech_position_is_homed_safely():
    backend = Feetech(load_servo("sts3215"))
    for actual in range(4096):
        offset = backend.half_turn_offset(actual, 4096, 2047)
        assert abs(offset) <= 2047 and abs((actual - offset) % 4096 - 2047) <= 1


def test_dynamixel_half_turn_offset():
    assert Dynamixel(load_servo("xl330-m288")).half_turn_offset(100, 4096, 2**31 - 1) == 1947


@pytest.mark.parametrize("robot_name", ["so101_follower", "koch_follower"])
def test_repeated_homing_near_the_wrap(robot_name):
    """Home a joint held near 0/4095 again and again: the offset is always recomputed from the
    raw position (never added to the old one), fits its register, and the joint reads mid-turn."""
    robot = load_robot(robot_name)
    with serve_robot(robot) as arm, MotorBus.for_robot(robot, arm.port, config=PATIENT) as bus:
        for actual in (4090, 3, 4095, 0, 4093, 2):
            with arm.bus.inspect():
                for servo in arm.bus.servos:
                    servo.actual = float(actual)
            offsets = homing.home_half_turn(bus)
            present = bus.sync_read("Present_Position")
            for name, value in present.items():
                assert abs(value - 2047) <= 1, (actual, name, value, offsets[name])
                assert bus.read("Homing_Offset", name) == offsets[name]
            if robot.vendor == "feetech":
                assert all(abs(o) <= 2047 for o in offsets.values())


def test_record_ranges_on_sweeping_leader_then_save_reload_normalise(tmp_path):
    """The calibrate --auto flow on a virtual leader in --motion sweep."""
    robot = load_robot("so101_leader")
    sweep = Sweep(low=300, high=3800, period_s=0.8)
    with serve_robot(robot, motion=sweep) as arm, MotorBus.for_robot(robot, arm.port, config=PATIENT) as bus:
        homing.reset_homing(bus, robot.joint_names)
        deadline = time.monotonic() + 3.0  # > 2 periods of the slowest joint (0.8 * 1.75 s)
        raw = homing.record_ranges(bus, stop=lambda: time.monotonic() > deadline, period_s=0.005)
        for lo, hi in raw.values():
            # the sweep's ends, within the ~90 ms a loaded machine may leave between two samples
            assert lo <= 420 and hi >= 3680
        offsets, ranges = homing.centre_on_range(bus, raw)
        cal = homing.build_calibration(bus, offsets, ranges)
        assert homing.write_calibration(bus, cal) == list(robot.joint_names)
        assert homing.write_calibration(bus, cal) == []  # already stored: no EEPROM write
        path = save_calibration(cal, tmp_path / "leader.json")
        table = NormTable.build(robot, load_calibration(path))
        # the servos now read in calibrated units: everything within the normalised range
        for _ in range(20):
            state = normalize(list(bus.sync_read("Present_Position").values()), table)
            assert np.all(state[:5] >= -100) and np.all(state[:5] <= 100)
            assert 0 <= state[5] <= 100
        # raw ends of the recorded range map to the normalised ends and back
        ends = np.array([cal[j].range_min for j in robot.joint_names])
        np.testing.assert_allclose(normalize(ends, table), [-100] * 5 + [0], atol=1e-4)
        np.testing.assert_array_equal(unnormalize(normalize(ends, table), table), ends)
        # the middle of each raw range now reads mid-turn
        for name in raw:
            mid = (cal[name].range_min + cal[name].range_max) / 2
            assert abs(mid - 2047) <= 2, name
