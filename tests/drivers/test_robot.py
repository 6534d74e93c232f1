"""`Robot` on virtual arms: connect, normalised state, clamped goals, no jump on torque-on,
torque off on disconnect and on exceptions, clear errors for missing motors."""

from __future__ import annotations

import time

import numpy as np
import pytest

from edgevla.drivers.bus import MotorBus
from edgevla.drivers.errors import MotorNotFoundError
from edgevla.drivers.interface import RobotIO
from edgevla.drivers.robot import Robot
from edgevla.errors import EdgevlaError
from edgevla.firmware import Faults, serve_robot
from tests.waiting import wait_until

from .helpers import PATIENT


@pytest.fixture(params=["so101_follower", "koch_follower"])
def follower(request):
    with serve_robot(request.param) as arm:
        yield arm, Robot(request.param, arm.port, bus_config=PATIENT)


def torques(arm) -> list[int]:
    return [arm.bus.servo(m.name).get("Torque_Enable") for m in arm.robot.motors]


def test_connect_configures_and_reads_normalised_state(follower):
    arm, robot = follower
    members = [n for n in dir(RobotIO) if not n.startswith("_")] + list(RobotIO.__annotations__)
    assert all(hasattr(robot, n) for n in members) and robot.joint_names == arm.robot.joint_names
    with robot:
        state = robot.read_state()
        assert state.dtype == np.float32 and state.shape == (6,)
        np.testing.assert_allclose(state, [0, 0, 0, 0, 0, 50], atol=0.1)  # shipped profile, joints mid-range
        assert torques(arm) == [1] * 6
        servo = arm.bus.servo("gripper")
        assert servo.get("Return_Delay_Time") == 0
        limit = "Max_Torque_Limit" if arm.robot.vendor == "feetech" else "Current_Limit"
        assert servo.get(limit) == 500  # the robot definition's gripper setting
        assert servo.get("Min_Position_Limit") == 400  # the calibration's range
    assert torques(arm) == [0] * 6


def test_goals_are_clamped_to_max_relative_target_and_limits(follower):
    arm, robot = follower
    with robot:
        start = robot.read_state()
        sent = robot.send_action(start + np.array([50, -50, 3, 0, 0, 35]))
        # max_relative_target: 10 for body joints, 20 for the gripper
        np.testing.assert_allclose(sent, start + [10, -10, 3, 0, 0, 20], atol=1e-3)
        assert wait_until(lambda: np.allclose(robot.read_state(), sent, atol=0.2))
        # far outside the calibrated range: step-capped now, never past the range end later
        for _ in range(15):
            sent = robot.send_action(np.array([500.0, -500, 0, 0, 0, 500]))
            wait_until(lambda s=sent: np.allclose(robot.read_state(), s, atol=0.2))
        np.testing.assert_allclose(sent[[0, 1, 5]], [100, -100, 100], atol=1e-3)
        assert arm.bus.servo("shoulder_pan").goal_position == 3696  # range_max of the profile
        # a state the caller already read this tick: clamped against it, one bus transaction
        present = robot.read_state()
        before = robot.bus.stats.transactions
        sent = robot.send_action(present + 50, present)
        assert robot.bus.stats.transactions == before + 1  # the sync write, no second read
        np.testing.assert_allclose(sent, np.minimum(present + [10, 10, 10, 10, 10, 20], 100), atol=1e-3)
        with pytest.raises(EdgevlaError, match="expects 6"):
            robot.send_action(np.zeros(5))
        with pytest.raises(EdgevlaError, match="NaN"):
            robot.send_action(np.full(6, np.nan))


def test_torque_on_does_not_jump_to_a_stale_goal():
    with serve_robot("so101_follower") as arm:
        # a goal left in the servo from an earlier session, far from where the joint rests
        with arm.bus.inspect():
            for servo in arm.bus.servos:
                servo.set("Goal_Position", 3500)
        before = arm.bus.positions()
        with Robot("so101_follower", arm.port, bus_config=PATIENT) as robot:
            time.sleep(0.3)  # long enough for a jump to show
            assert arm.bus.positions() == before
            assert [s.goal_position for s in arm.bus.servos] == before
            robot.read_state()
        # the control: the same stale goal with a plain torque-on write does jump
        arm.bus.servo("gripper").set("Goal_Position", 3500)
        with MotorBus.for_robot(arm.robot, arm.port, config=PATIENT) as bus:
            bus.write("Torque_Enable", "gripper", 1)
            assert wait_until(lambda: arm.bus.servo("gripper").present_position > 3000)


def test_exception_inside_the_block_turns_torque_off():
    with serve_robot("so101_follower") as arm:
        with pytest.raises(RuntimeError), Robot("so101_follower", arm.port, bus_config=PATIENT):
            assert torques(arm) == [1] * 6
            raise RuntimeError("control loop crashed")
        assert torques(arm) == [0] * 6


def test_missing_motor_is_named_and_nothing_is_left_on():
    with serve_robot("so101_follower", faults=Faults(silent_ids={4})) as arm:
        robot = Robot("so101_follower", arm.port)
        with pytest.raises(MotorNotFoundError, match=r"wrist_flex \(id 4\)"):
            robot.connect()
        assert robot.bus.port is None and torques(arm) == [0] * 6


def test_leader_reads_but_takes_no_goals():
    with serve_robot("so101_leader") as arm, Robot("so101_leader", arm.port, bus_config=PATIENT) as leader:
        assert torques(arm) == [0] * 6
        assert leader.read_state().shape == (6,)
        with pytest.raises(EdgevlaError, match="leader"):
            leader.send_action(np.zeros(6))
