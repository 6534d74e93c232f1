"""Opening a leader/follower pair with the driver layer, and always leaving it safe."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from edgevla.drivers.interface import RobotIO
from edgevla.errors import EdgevlaError
from edgevla.hardware import load_robot_pair


@contextmanager
def open_arm_pair(
    robot: str,
    leader_port: str,
    follower_port: str,
    leader_id: str | None = None,
    follower_id: str | None = None,
) -> Iterator[tuple[RobotIO, RobotIO]]:
    """Connect `<robot>_leader` (torque off, read by hand) and `<robot>_follower`, each with the
    calibration of its arm id (default: the robot name).

    On exit -- normal, error or Ctrl-C -- each arm is disconnected as its definition says
    (torque off by default), the follower first.
    """
    try:
        from edgevla.drivers.robot import Robot
    except ImportError as err:  # only while the driver layer is not merged into this build
        raise EdgevlaError(f"the servo driver layer is missing from this edgevla build ({err})") from err

    leader_def, follower_def = load_robot_pair(robot)
    with ExitStack() as stack:
        arms = []
        pair = ((leader_def, leader_port, leader_id), (follower_def, follower_port, follower_id))
        for definition, port, arm_id in pair:
            arm = Robot(definition, port, arm_id=arm_id)
            arm.connect()
            stack.callback(arm.disconnect)  # LIFO: the follower is released first
            arms.append(arm)
        yield arms[0], arms[1]
