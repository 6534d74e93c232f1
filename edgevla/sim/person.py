"""The scripted expert as the person who corrects a policy with the leader arm.

It watches the follower's tool point while the policy drives: it takes over ("presses the key")
when the tool strays more than `stray_m` from the path the expert would have taken, or stalls
(moves less than `stall_m` in `stall_s`) short of success. Its hand is the firmware motion source
of the leader: it keeps off the leader while the leader's torque is on (being driven to the
follower's pose), and once the torque goes off it plans from wherever the leader is, as
`ScriptedExpert` does from an episode's start, and moves it. After `correct_s` of moving, with the
follower on its plan, it hands back. At the end it labels the attempt: success or not.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from edgevla.hardware import RobotDef
from edgevla.sim import joints
from edgevla.sim.expert import ExpertConfig, ScriptedExpert
from edgevla.sim.world import SimWorld

# the operator events this person gives (the names edgevla.corrections reads)
TAKE_OVER, HAND_BACK, SUCCESS = "take_over", "hand_back", "success"


@dataclass(frozen=True)
class PersonConfig:
    grace_s: float = 1.0  # the policy gets this long after it starts, or after a hand back
    stall_s: float = 1.0
    stall_m: float = 0.01  # moving less than this in stall_s, short of success, is a stall
    stray_m: float = 0.05  # farther than this from the expert's path is straying
    correct_s: float = 1.0  # the person moves the arm at least this long before handing back
    on_track_m: float = 0.02  # ...and hands back only with the follower this close to the hand's plan
    hand: ExpertConfig = ExpertConfig(reaction_s=(0.1, 0.2))


class SimPerson:
    """Motion source of the leader (`position`) and operator of a correction round (`poll`, `label`)."""

    def __init__(self, world: SimWorld, leader: RobotDef, config: PersonConfig = PersonConfig()):
        self.world, self.leader, self.config = world, leader, config
        self.bus = None  # the leader's virtual bus, to feel its torque and find its pose
        self.takeovers = 0
        self._lock = threading.Lock()
        self._correcting = False
        self._driven = False  # the leader's torque was on since the takeover (the handover ran)
        self._plan: ScriptedExpert | None = None
        self._plan_started = 0.0
        self._counts: np.ndarray | None = None
        self._at: float | None = None
        self._path = np.zeros((0, 3))
        self._history: deque[tuple[float, np.ndarray]] = deque()
        self._since = time.monotonic()
        self._said_success = False

    def attach(self, bus) -> None:
        self.bus = bus

    def hold(self, expert: ScriptedExpert) -> None:
        """A new episode: `expert` is the path the person expects; the policy has the arm."""
        with self._lock:
            self._correcting, self._driven, self._plan, self._at = False, False, None, None
            self._path = self._tool_path(expert)
            self._history.clear()
            self._since, self._said_success = time.monotonic(), False

    def _tool_path(self, expert: ScriptedExpert) -> np.ndarray:
        times = np.arange(0.0, expert.duration, 0.05)
        return np.array([self.world.kin.tool_position(expert.goal(t)) for t in times])

    # --- the hand: a firmware motion source, called inside the leader bus's lock -------------

    def position(self, joint: int, t: float) -> float | None:
        if not self._correcting or self.bus is None:
            return None  # hands off: the resting leader stays where it is
        if any(servo.torque for servo in self.bus.servos):
            self._driven, self._plan = True, None  # being driven to the follower: go along with it
            return None
        if not self._driven:
            return None
        if self._plan is None:
            counts = np.array([servo.actual for servo in self.bus.servos], dtype=np.float64)
            here = joints.counts_to_angles(self.world.kin, self.leader, counts)
            episode = dataclasses.replace(self.world.episode, start=here)
            self._plan = ScriptedExpert(self.world.kin, episode, self.config.hand)
            self._plan_started, self._at = time.monotonic(), None
            self._path = np.concatenate([self._path, self._tool_path(self._plan)])
        if t != self._at:  # the bus asks once per joint at the same instant
            goal = self._plan.goal(time.monotonic() - self._plan_started)
            self._counts, self._at = joints.angles_to_counts(self.world.kin, self.leader, goal), t
        return float(self._counts[joint])

    # --- the eyes: an operator of `edgevla.corrections` -----------------------------------------

    def poll(self) -> str | None:
        now, cfg = time.monotonic(), self.config
        if self.world.succeeded:
            if self._said_success:
                return None
            self._said_success = True
            return SUCCESS
        tool = self.world.kin.tool_position(self.world.angles)
        self._history.append((now, tool))
        while now - self._history[0][0] > cfg.stall_s + 0.5:
            self._history.popleft()
        if not self._correcting:
            if now - self._since < cfg.grace_s:
                return None
            if self._strayed(tool) or self._stalled(now, tool):
                with self._lock:
                    self._correcting, self._driven, self._plan = True, False, None
                self.takeovers += 1
                return TAKE_OVER
            return None
        plan = self._plan
        if plan is None or now - self._plan_started < cfg.correct_s:
            return None
        hand = self.world.kin.tool_position(plan.goal(now - self._plan_started))
        if np.linalg.norm(tool - hand) > cfg.on_track_m:
            return None
        with self._lock:
            self._correcting, self._plan = False, None
        self._since = now
        self._history.clear()
        return HAND_BACK

    def label(self) -> int:
        return int(self.world.succeeded)

    def _strayed(self, tool: np.ndarray) -> bool:
        return bool(np.linalg.norm(self._path - tool, axis=1).min() > self.config.stray_m)

    def _stalled(self, now: float, tool: np.ndarray) -> bool:
        window = [p for t, p in self._history if now - t <= self.config.stall_s]
        if now - self._history[0][0] < self.config.stall_s:
            return False
        return bool(max(np.linalg.norm(p - tool) for p in window) < self.config.stall_m)
