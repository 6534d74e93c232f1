"""The arms a simulated session offers, as `RobotIO`s the control loops use unchanged.

bus=True   the follower (and leader) are virtual servos served by the firmware on ptys and
           driven by edgevla's real driver (`edgevla.drivers.robot.Robot`) with the simulated
           arm's calibration: the full path a real SO-101 takes, bytes included.
bus=False  in-process: `SimRobot` (servo model in the simulator, the driver's units and
           clamp) and `ExpertLeader` (the expert's hand as a leader): fast, no ptys.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from edgevla.drivers.interface import RobotIO
from edgevla.drivers.safety import clamp_goal
from edgevla.sim.expert import ScriptedExpert
from edgevla.sim.tasks import Episode
from edgevla.sim.world import SimWorld

IN_PROCESS_TIMEOUT_MS = 100.0  # status timeout on the simulator's own virtual servos


class SimRobot:
    """RobotIO over the simulator's in-process servo model (no serial bus): fast, for tests and
    machines without ptys. Same units and the same clamp as the driver (`edgevla.drivers`)."""

    def __init__(self, world: SimWorld):
        self.world = world
        self.name = f"{world.robot.name} (simulated)"
        self.joint_names = world.robot.joint_names
        self._low, self._high = world.norm.bounds()
        self._max_step = np.array([m.max_relative_target or np.nan for m in world.robot.motors], dtype=float)
        self._goal = world.angles.copy()

    def connect(self) -> None:
        self._goal = self.world.angles.copy()

    def read_state(self) -> np.ndarray:
        return self.world.to_normalized(self.world.angles).astype(np.float32)

    def send_action(self, goal: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
        present = self.read_state() if present is None else present
        sent = clamp_goal(np.asarray(goal, dtype=np.float64), present, self._low, self._high, self._max_step)
        self._goal = self.world.from_normalized(sent)
        return sent.astype(np.float32)

    def disconnect(self) -> None:
        self._goal = self.world.angles.copy()

    def follow(self) -> np.ndarray:
        """One simulator tick: the servos slew towards the last goal."""
        self.world.step_servos(self._goal)
        return self.world.angles


class ExpertLeader:
    """The leader arm as a RobotIO, held by the scripted expert: its state is the expert's goal."""

    def __init__(self, world: SimWorld):
        self.world = world
        self.name = f"{world.robot.name.replace('follower', 'leader')} (scripted expert)"
        self.joint_names = world.robot.joint_names
        self._expert: ScriptedExpert | None = None
        self._started = 0.0

    def hold(self, expert: ScriptedExpert) -> None:
        """A new episode: the expert's clock starts now."""
        self._expert, self._started = expert, time.monotonic()

    def connect(self) -> None:
        pass

    def read_state(self) -> np.ndarray:
        goal = self._expert.goal(time.monotonic() - self._started)
        return self.world.to_normalized(goal).astype(np.float32)

    def send_action(self, goal: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
        return np.asarray(goal, dtype=np.float32)  # a leader is moved by hand, never commanded

    def disconnect(self) -> None:
        pass


@dataclass
class SimArms:
    """What a session needs: the follower (and leader) RobotIO, the simulator's joint source, and
    how to start an episode (scene, follower at its start pose, the expert's hand on the leader)."""

    follower: RobotIO
    leader: RobotIO | None
    follow: Callable[[], np.ndarray]
    start_episode: Callable[[int], Episode]
    served: object | None = None  # the VirtualArms behind them (bus sessions): their firmware buses


@contextmanager
def open_sim_arms(world: SimWorld, bus: bool = True, leader: bool = False, hand=None) -> Iterator[SimArms]:
    """Connected arms for the `with` block; on exit they are disconnected (torque off). `hand`:
    the leader's motion source instead of the expert (virtual servos only, see `serve_arms`)."""
    if hand is not None and not bus:
        raise ValueError("a hand on the leader needs the virtual servos (bus=True)")
    if not bus:
        follower = SimRobot(world)
        hand = ExpertLeader(world) if leader else None

        def start(seed: int) -> Episode:
            episode = world.reset(seed)
            follower.connect()
            if hand is not None:
                hand.hold(ScriptedExpert(world.kin, episode))
            return episode

        yield SimArms(follower, hand, follower.follow, start)
        return

    from edgevla.drivers.bus import BusConfig, default_timeout_ms
    from edgevla.drivers.robot import Robot
    from edgevla.sim.bus import serve_arms
    from edgevla.sim.joints import sim_calibration

    # These servos are firmware threads of this process: they answer when Python schedules them,
    # after the renderer, recorder or policy let go of the GIL, not within a real servo's 20 ms.
    bus_config = BusConfig(timeout_ms=max(default_timeout_ms(), IN_PROCESS_TIMEOUT_MS))
    with serve_arms(world, leader=leader, hand=hand) as served:
        arms = [
            Robot(world.robot, served.follower_port, calibration=world.calibration, bus_config=bus_config)
        ]
        if leader:
            leader_def = served.leader.robot
            leader_cal = sim_calibration(world.kin, leader_def)
            arms.append(Robot(leader_def, served.leader_port, calibration=leader_cal, bus_config=bus_config))
        connected = []
        try:
            for arm in arms:
                arm.connect()
                connected.append(arm)
            yield SimArms(arms[0], arms[1] if leader else None, served.follow, served.start_episode, served)
        finally:
            for arm in reversed(connected):
                arm.disconnect()
