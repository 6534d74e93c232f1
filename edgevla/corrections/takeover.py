"""A person taking the follower from a policy with the leader arm, and handing it back.

`TakeoverArm` is the follower as the runtime's control loop sees it (a `RobotIO`): every tick the
loop hands it the policy's goal, and the arm decides who moves the follower.

  POLICY    the policy's goal is sent (the driver clamps it, as always);
  HANDOVER  a person asked to take over (a key, or the resting leader moved past a threshold):
            the follower holds the goal it was last sent, and the leader, torque on, is driven
            towards the follower's pose at `handover_speed`; once every joint is within
            `release_within` its torque goes off, so the person picks up an arm already where
            the follower is: neither arm jumps;
  PERSON    the follower mirrors the leader, through the same clamp as teleoperation.

Handing back sends, that tick, the goal the person last gave and asks the loop to replan
(`ControlLoop.replan`): the policy's next chunk is computed from the state the arm is in and
eased in from there. Every tick ends in `on_frame(Tick)`: state, what was sent, what the policy
proposed, the phase.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edgevla.drivers.interface import RobotIO


class Phase(enum.IntEnum):
    POLICY = 0
    HANDOVER = 1
    PERSON = 2


@dataclass(frozen=True)
class TakeoverConfig:
    handover_speed: float = 90.0  # normalised units per second the leader is driven at
    release_within: float = 2.0  # units: the leader is released once every joint is this close
    leader_threshold: float = 8.0  # units a resting leader must be moved to take over (0: keys only)


@dataclass(frozen=True)
class Tick:
    state: np.ndarray  # follower, read this tick
    sent: np.ndarray  # the goal sent (after the driver's clamp): the executed action
    proposed: np.ndarray  # the goal the policy's runtime wanted to send this tick
    phase: Phase


class Leader(Protocol):
    """What a takeover needs of the leader arm beyond reading it: torque on and off, and goals
    while its torque is on (`edgevla.drivers.robot.Robot` has all three)."""

    def read_state(self) -> np.ndarray: ...
    def send_action(self, goal: np.ndarray, present: np.ndarray | None = None) -> np.ndarray: ...
    def set_torque(self, on: bool) -> None: ...


class TakeoverArm:
    """The follower, with a leader a person can take it over with (see the module docstring)."""

    def __init__(
        self,
        follower: RobotIO,
        leader: Leader,
        fps: float,
        config: TakeoverConfig = TakeoverConfig(),
        on_frame: Callable[[Tick], None] = lambda _tick: None,
    ):
        self.follower, self.leader, self.fps, self.config = follower, leader, fps, config
        self.name, self.joint_names = follower.name, follower.joint_names
        self.on_frame = on_frame
        self.replan: Callable[[], None] = lambda: None  # the control loop's, set per attempt
        self.phase = Phase.POLICY
        self.interventions = 0  # takeovers since the last `reset`
        self._lock = threading.Lock()
        self._asked: Phase | None = None  # a change asked for by the main thread, done next tick
        self._rest: np.ndarray | None = None  # where the leader lay when the policy got the arm
        self._last_sent: np.ndarray | None = None

    # --- the main thread's side -------------------------------------------------------------

    def take_over(self) -> None:
        with self._lock:
            if self.phase == Phase.POLICY:
                self._asked = Phase.HANDOVER

    def hand_back(self) -> None:
        with self._lock:
            if self.phase != Phase.POLICY:
                self._asked = Phase.POLICY

    def toggle(self) -> None:
        """One key (or a foot pedal typing it) both takes over and hands back."""
        if self.phase == Phase.POLICY:
            self.take_over()
        else:
            self.hand_back()

    def reset(self) -> None:
        """A new attempt: the policy has the arm, the leader's resting pose is read afresh."""
        self.release()
        with self._lock:
            self.phase, self._asked, self._rest, self._last_sent = Phase.POLICY, None, None, None
            self.interventions = 0

    def release(self) -> None:
        """Leader torque off if a handover was under way (the end of an attempt, an error)."""
        if self.phase == Phase.HANDOVER:
            self.leader.set_torque(False)
            self.phase = Phase.PERSON

    # --- RobotIO, called by the control loop's thread -----------------------------------------

    def connect(self) -> None:
        pass  # the caller connected both arms and disconnects them

    def disconnect(self) -> None:
        pass

    def read_state(self) -> np.ndarray:
        return self.follower.read_state()

    def send_action(self, goal: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
        present = self.follower.read_state() if present is None else present
        proposed = np.asarray(goal, dtype=np.float32)
        with self._lock:
            asked, self._asked = self._asked, None
        if asked == Phase.HANDOVER or (asked is None and self._leader_moved()):
            self.phase = Phase.HANDOVER
            self.interventions += 1
            self.leader.set_torque(True)  # where it is now: Goal := Present first, no jump
        elif asked == Phase.POLICY:
            self.release()
            self.phase = Phase.POLICY
            self._rest = None
            self.replan()  # from the next tick the policy plans from where the person left the arm
        if self.phase == Phase.POLICY and asked != Phase.POLICY:
            target = proposed
        elif self.phase == Phase.PERSON:
            target = self.leader.read_state()
        else:  # handing over (the follower holds), or the tick the person handed back
            target = self._last_sent if self._last_sent is not None else present
        sent = self.follower.send_action(target, present)
        if self.phase == Phase.HANDOVER:
            self._drive_leader(present)
        self._last_sent = np.asarray(sent, dtype=np.float32)
        self.on_frame(Tick(np.asarray(present, dtype=np.float32), self._last_sent, proposed, self.phase))
        return sent

    def _leader_moved(self) -> bool:
        """Whether a person moved the resting leader past the threshold while the policy ran."""
        if self.phase != Phase.POLICY or self.config.leader_threshold <= 0:
            return False
        pose = self.leader.read_state()
        if self._rest is None:
            self._rest = pose
            return False
        return bool(np.abs(pose - self._rest).max() > self.config.leader_threshold)

    def _drive_leader(self, follower_pose: np.ndarray) -> None:
        """One speed-limited step of the leader towards the follower; release once it is there."""
        pose = self.leader.read_state()
        gap = np.asarray(follower_pose, dtype=np.float64) - pose
        if np.abs(gap).max() <= self.config.release_within:
            self.leader.set_torque(False)
            self.phase = Phase.PERSON
            return
        step = self.config.handover_speed / self.fps
        self.leader.send_action(pose + np.clip(gap, -step, step), pose)
