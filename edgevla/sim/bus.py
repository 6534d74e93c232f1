"""The simulated arm behind virtual servos: the follower's joints ARE the firmware's servos.

`VirtualArms` serves the follower (and a leader) with the virtual servo firmware on ptys, so the
real driver, `edgevla record` and `edgevla run` talk to them exactly as to a USB bus. The
simulator reads where the follower's servos physically are (`follow`) to render the scene; the
scripted expert is the hand on the leader (`ExpertMotion`, a firmware motion source).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import numpy as np

from edgevla.hardware import load_robot
from edgevla.sim import joints
from edgevla.sim.expert import ScriptedExpert
from edgevla.sim.world import SimWorld


class ExpertMotion:
    """Firmware motion source: the scripted expert's hand holds the leader's joints.

    Until `hold(expert)` is called, and between episodes, the hand keeps the last pose."""

    def __init__(self, world: SimWorld, robot_name: str):
        self.world = world
        self.robot = load_robot(robot_name)
        self._expert: ScriptedExpert | None = None
        self._started = 0.0
        self._counts = joints.angles_to_counts(world.kin, self.robot, world.angles)
        self._at: float | None = None

    def hold(self, expert: ScriptedExpert) -> None:
        self._expert, self._started, self._at = expert, time.monotonic(), None

    def position(self, joint: int, t: float) -> float | None:
        # the bus asks once per joint at the same instant: compute the whole pose once per instant
        if self._expert is not None and t != self._at:
            goal = self._expert.goal(time.monotonic() - self._started)
            self._counts, self._at = joints.angles_to_counts(self.world.kin, self.robot, goal), t
        return float(self._counts[joint])


@dataclass
class VirtualArms:
    """Served virtual arms; `follower_port`/`leader_port` are pty paths for any serial library."""

    world: SimWorld
    follower: object  # firmware ServedRobot
    leader: object | None
    motion: object | None  # ExpertMotion, or a hand with hold(expert) (SimPerson)

    @property
    def follower_port(self) -> str:
        return self.follower.port

    @property
    def leader_port(self) -> str | None:
        return self.leader.port if self.leader else None

    def follow(self) -> np.ndarray:
        """The follower's joint angles now, from its servos' physical (encoder) positions."""
        with self.follower.bus.inspect() as bus:
            counts = np.array([servo.actual for servo in bus.servos], dtype=np.float64)
        return joints.counts_to_angles(self.world.kin, self.follower.robot, counts)

    def place(self, angles: np.ndarray) -> None:
        """Put the follower's joints at `angles` (a person resetting the arm between episodes):
        the encoders read there and each goal is moved along, so no joint jumps back."""
        counts = joints.angles_to_counts(self.world.kin, self.follower.robot, angles)
        with self.follower.bus.inspect() as bus:
            for servo, count in zip(bus.servos, counts, strict=True):
                servo.actual = float(count)
                servo.set("Goal_Position", servo.present_position)

    def start_episode(self, seed: int):
        """Scene `seed`, follower at its start pose, the expert's hand on the leader."""
        episode = self.world.reset(seed)
        self.place(episode.start)
        if self.motion is not None:
            self.motion.hold(ScriptedExpert(self.world.kin, episode))
        return episode


@contextmanager
def serve_arms(
    world: SimWorld, leader: bool = True, follower_link=None, leader_link=None, hand=None
) -> Iterator[VirtualArms]:
    """Serve `<arm>_follower` (and `<arm>_leader` moved by the expert) for the `with` block.
    `hand`: another motion source for the leader (`edgevla.sim.person.SimPerson`), given the
    leader's bus once it is served."""
    from edgevla.firmware import serve_robot

    follower_name = world.robot.name
    with ExitStack() as stack:
        served = stack.enter_context(serve_robot(follower_name, link=follower_link))
        motion, served_leader = None, None
        if leader:
            leader_name = follower_name.replace("follower", "leader")
            motion = hand or ExpertMotion(world, leader_name)
            served_leader = stack.enter_context(serve_robot(leader_name, motion=motion, link=leader_link))
            if hand is not None:
                hand.attach(served_leader.bus)
        yield VirtualArms(world, served, served_leader, motion)
