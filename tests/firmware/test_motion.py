"""Motion sources (the hand on a leader arm), the motor-setup flow, and joint physics on a fake clock."""

from __future__ import annotations

import numpy as np
import pytest

from edgevla.errors import EdgevlaError
from edgevla.firmware import Replay, Sweep, build_bus, feetech
from edgevla.firmware.motion import motion_from_args


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_sweep_covers_each_joint_range_while_torque_is_off():
    clock = FakeClock()
    bus = build_bus("so101_leader", motion=Sweep(low=400, high=3700, period_s=2.0), clock=clock)
    seen = []
    for _ in range(400):
        clock.t += 0.01
        seen.append(bus.positions())
    seen = np.array(seen)
    assert seen.shape == (400, 6)
    assert np.all(seen.min(axis=0) < 420) and np.all(seen.max(axis=0) > 3680)
    assert np.all(np.abs(np.diff(seen, axis=0)) < 120)  # smooth: no jumps between 10 ms samples


def test_motion_does_not_move_a_joint_with_torque_on():
    clock = FakeClock()
    bus = build_bus("so101_leader", motion=Sweep(), clock=clock)
    bus.servo("gripper").set("Torque_Enable", 1)
    for _ in range(50):
        clock.t += 0.02
        bus.positions()
    assert bus.servo("gripper").present_position == 2048
    assert bus.servo("shoulder_pan").present_position != 2048


def test_speed_limit_and_moving_flag_on_a_fake_clock():
    clock = FakeClock()
    bus = build_bus("so101_follower", clock=clock)
    servo = bus.servo(1)
    servo.write(servo.model.register("Torque_Enable").address, b"\x01")
    servo.write(servo.model.register("Goal_Position").address, (3748).to_bytes(2, "little"))
    clock.t += 0.25  # 3400 counts/s x 0.25 s = 850 counts of the 1700 to go
    assert bus.servo(1).present_position == 2048 + 850
    assert servo.get("Moving") == 1 and servo.get("Present_Velocity") == 3400
    clock.t += 0.5
    assert bus.servo(1).present_position == 3748
    assert servo.get("Moving") == 0 and servo.get("Present_Velocity") == 0
    servo.write(servo.model.register("Goal_Velocity").address, (100).to_bytes(2, "little"))
    servo.write(servo.model.register("Goal_Position").address, (3648).to_bytes(2, "little"))
    clock.t += 0.5
    assert bus.servo(1).present_position == 3698  # Goal_Velocity caps the speed at 100 counts/s


def test_replay_csv_interpolates_and_loops(tmp_path):
    path = tmp_path / "hand.csv"
    path.write_text("t,shoulder_pan,gripper\n0.0,1000,2000\n0.5,2000,2100\n1.0,3000,2200\n")
    replay = Replay.from_csv(path, ("shoulder_pan", "shoulder_lift", "gripper"))
    assert replay.fps == 2.0
    assert replay.position(0, 0.25) == pytest.approx(1500)
    assert replay.position(2, 0.75) == pytest.approx(2150)
    assert replay.position(1, 0.3) is None  # no column: the hand leaves that joint alone
    assert replay.position(0, 1.25) == pytest.approx(1500)  # loops


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("x,shoulder_pan\n0,1\n1,2\n", "header"),
        ("t,elbow\n0,1\n1,2\n", "unknown joint"),
        ("t,shoulder_pan\n0,1\n0,2\n", "must increase"),
        ("t,shoulder_pan\n0,1\n1,abc\n", "not a number"),
    ],
)
def test_bad_replay_files_name_the_file_and_problem(tmp_path, text, problem):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(EdgevlaError, match=problem) as err:
        Replay.from_csv(path, ("shoulder_pan",))
    assert str(path) in str(err.value)


def test_motion_arguments():
    joints = ("a", "b")
    assert isinstance(motion_from_args(["sweep"], joints), Sweep)
    assert motion_from_args(None, joints).position(0, 1.0) is None
    with pytest.raises(EdgevlaError, match="replay FILE"):
        motion_from_args(["replay"], joints)


def test_fresh_bus_sets_up_one_motor_at_a_time():
    bus = build_bus("so101_follower", fresh=True, clock=lambda: 0.0)
    ping = feetech.instruction_packet
    assert [tx.packet[2] for tx in bus.receive(ping(1, feetech.PING))] == [1]  # only the first motor
    for index, joint in enumerate(("shoulder_pan", "shoulder_lift")):
        bus.plug_only(joint)
        assert bus.receive(ping(index + 1, feetech.PING)) == [] or index == 0
        bus.receive(ping(1, feetech.WRITE, bytes([55, 0])))  # unlock EEPROM
        bus.receive(ping(1, feetech.WRITE, bytes([5, index + 1])))  # ID := joint id
    bus.plug_all()
    answers = {tx.packet[2] for i in (1, 2, 3) for tx in bus.receive(ping(i, feetech.PING))}
    assert answers == {1, 2}  # 1 and 2 set up; the four untouched motors collide on id 1
    assert bus.servo("shoulder_lift").id == 2
