"""One call hosts a policy on a robot: opened to fit the robot's joints and cameras, run by a
worker, driving the arm through one control loop per episode, everything closed on the way out."""

from __future__ import annotations

import time

import numpy as np
import pytest

from edgevla.hosting.control import PolicyChoice, control
from edgevla.runtime.loop import LoopConfig
from edgevla.runtime.replay import ReplayPolicy
from edgevla.runtime.wire import Refused


class FourJointArm:
    """RobotIO of a four-joint arm that goes wherever it is sent (an ideal, instant arm)."""

    name = "four-joint"
    joint_names = ("base", "shoulder", "elbow", "gripper")

    def __init__(self):
        self.state = np.zeros(4, np.float32)
        self.goals: list[np.ndarray] = []

    def connect(self) -> None:
        pass

    def read_state(self) -> np.ndarray:
        return self.state.copy()

    def send_action(self, goal, present=None) -> np.ndarray:
        self.state = np.asarray(goal, np.float32).copy()
        self.goals.append(self.state)
        return self.state

    def disconnect(self) -> None:
        pass


def _replay(tmp_path, joints: int) -> str:
    actions = np.tile(np.arange(1, joints + 1, dtype=np.float32), (60, 1))
    path = tmp_path / f"joints{joints}.npz"
    ReplayPolicy(actions, fps=50.0, chunk_size=10, name=f"{joints}-joint").save(path)
    return str(path)


def _wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_the_policy_drives_the_joints_of_the_robot_it_is_hosted_on(tmp_path):
    arm = FourJointArm()
    choice = PolicyChoice(_replay(tmp_path, 4), worker="thread")
    with control(arm, ["front=synthetic?width=64&height=48"], choice, LoopConfig(fps=50.0)) as hosted:
        for task in ("touch the red cube", "touch the blue cube"):  # two episodes, one worker
            loop = hosted.start(task)
            _wait_for(lambda: len(arm.goals) >= 5)
            hosted.stop()
            assert loop.config.task == task and not loop.running
            assert np.allclose(arm.goals[-1], [1, 2, 3, 4])
            arm.goals.clear()
        camera = hosted.cameras[0]
        assert camera.latest() is not None
    # on the way out the worker takes no more requests and the camera no more frames
    assert not hosted.worker.submit(0, {"observation.state": arm.state, "task": ""})
    last = camera.latest().seq
    time.sleep(0.2)  # six frame periods of the camera
    assert camera.latest().seq == last


def test_a_policy_for_another_joint_count_is_refused_before_the_arm_moves(tmp_path):
    arm = FourJointArm()
    choice = PolicyChoice(_replay(tmp_path, 6), worker="thread")
    with (
        pytest.raises(Refused, match="takes a state of 6 values, the robot has 4"),
        control(arm, [], choice, LoopConfig(fps=50.0)),
    ):
        pass
    assert arm.goals == []
