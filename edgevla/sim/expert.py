"""A scripted teleoperator: plans joint goals over time that solve an episode, like a person
moving the leader arm: a reaction pause, smooth speed-limited moves, a slight tremor.

The plan is open loop (a person looks at the scene once and moves); the follower arm tracks these
goals through its servos, so what gets recorded is the same leader/follower pair a human makes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgevla.errors import EdgevlaError
from edgevla.sim.kinematics import Kinematics
from edgevla.sim.tasks import DOWN, Episode, facing


@dataclass(frozen=True)
class ExpertConfig:
    max_speed: float = 1.2  # rad/s, peak joint speed of a move
    min_move_s: float = 0.4  # even tiny moves take a human this long
    reaction_s: tuple[float, float] = (0.2, 0.6)  # pause before moving, drawn per episode
    hover_height: float = 0.05  # above the cube top, before the last vertical approach
    near_xy: float = 0.015  # closer than this (horizontally) to the cube: no hover waypoint
    slide_xy: float = 0.06  # down at the cube's top and closer than this: slide onto it
    touch_height: float = 0.0  # tool point on the cube top when touching (1.5 cm inside the radius)
    gripper_open: float = 1.0  # rad, how far the jaws open for reach_close
    gripper_close_s: float = 0.6
    hold_s: float = 0.8  # stay at the goal before the episode may end
    tremor: float = 0.003  # rad, amplitude of the slow hand tremor per joint


@dataclass(frozen=True)
class Segment:
    start_time: float
    duration: float
    start: np.ndarray
    end: np.ndarray


def _min_jerk(fraction: float) -> float:
    s = min(max(fraction, 0.0), 1.0)
    return s**3 * (10 - 15 * s + 6 * s * s)


class ScriptedExpert:
    """`goal(t)`: the leader arm's joint angles (radians) `t` seconds into the episode."""

    def __init__(self, kin: Kinematics, episode: Episode, config: ExpertConfig = ExpertConfig()):
        self.kin, self.episode, self.config = kin, episode, config
        rng = np.random.default_rng([episode.seed, 0xE4E])
        self._tremor_freq = rng.uniform(0.3, 1.5, (3, len(kin.joints)))
        self._tremor_phase = rng.uniform(0, 2 * np.pi, (3, len(kin.joints)))
        self.segments = self._plan(episode.start, rng.uniform(*config.reaction_s))

    @property
    def duration(self) -> float:
        """Seconds until the plan is done and has held its final pose for `hold_s`."""
        last = self.segments[-1]
        return last.start_time + last.duration + self.config.hold_s

    def _pose_at(self, position: np.ndarray, seed: np.ndarray) -> np.ndarray:
        angles, error = self.kin.solve_ik(position, seed, pointing=DOWN)
        if error > 0.005:
            raise EdgevlaError(
                f"episode {self.episode.seed}: the expert cannot reach {np.round(position, 3).tolist()} "
                f"(IK error {error * 100:.1f} cm); the scene config places cubes out of reach"
            )
        return angles

    def _plan(self, start: np.ndarray, reaction: float) -> list[Segment]:
        cfg, kin = self.config, self.kin
        cube = self.episode.chosen_cube  # of two named cubes (reach_either), the one drawn
        top = cube.center + np.array([0.0, 0.0, cube.size / 2])
        gripper = kin.joint_names.index("gripper")

        hover = self._pose_at(top + [0.0, 0.0, cfg.hover_height], facing(start, top))
        touch = self._pose_at(top + [0.0, 0.0, cfg.touch_height], hover)
        if self.episode.task.close_gripper:
            hover[gripper] = touch[gripper] = cfg.gripper_open
        closed = touch.copy()
        closed[gripper] = kin.lower[gripper]

        segments: list[Segment] = []
        time, pose = reaction, start
        # already above the cube, or down beside it (a re-plan from close by, a near miss):
        # straight onto it, no detour up
        tool = kin.tool_position(start)
        off = np.linalg.norm(tool[:2] - top[:2])
        down = tool[2] - (top[2] + cfg.touch_height) < 0.01
        near = off < cfg.near_xy or (down and off < cfg.slide_xy)
        moves = [(touch, None)] if near else [(hover, None), (touch, None)]
        if self.episode.task.close_gripper:
            moves.append((closed, cfg.gripper_close_s))
        for end, duration in moves:
            if duration is None:
                duration = max(cfg.min_move_s, 1.875 * float(np.abs(end - pose).max()) / cfg.max_speed)
            segments.append(Segment(time, duration, pose, end))
            time, pose = time + duration, end
        return segments

    def goal(self, t: float) -> np.ndarray:
        pose = self.segments[0].start
        for seg in self.segments:
            if t < seg.start_time:
                break
            pose = seg.start + (seg.end - seg.start) * _min_jerk((t - seg.start_time) / seg.duration)
        tremor = (
            self.config.tremor / 3 * np.sin(2 * np.pi * self._tremor_freq * t + self._tremor_phase).sum(0)
        )
        return np.clip(pose + tremor, self.kin.lower, self.kin.upper)
