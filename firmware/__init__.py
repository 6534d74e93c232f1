"""Virtual servo firmware: Feetech STS/SCS and Dynamixel X (protocol 2.0) servos on a pseudo-terminal.

    from edgevla.firmware import serve_robot, Faults, Sweep

    with serve_robot("so101_follower", faults=Faults(corrupt=0.01, seed=0)) as arm:
        ...open arm.port with scservo_sdk / dynamixel_sdk / edgevla.drivers...
        arm.bus.servo("gripper").present_position

See docs/FIRMWARE.md.
"""

from edgevla.firmware.bus import VirtualBus
from edgevla.firmware.faults import Faults
from edgevla.firmware.motion import Hold, MotionSource, Replay, Sweep
from edgevla.firmware.robot import ServedRobot, build_bus, serve_robot
from edgevla.firmware.servo import Condition, VirtualServo

__all__ = [
    "Condition",
    "Faults",
    "Hold",
    "MotionSource",
    "Replay",
    "ServedRobot",
    "Sweep",
    "VirtualBus",
    "VirtualServo",
    "build_bus",
    "serve_robot",
]
