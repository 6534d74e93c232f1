"""One simulated workcell: the arm's kinematics and units, an episode's scene, cameras, success.

`SimWorld` holds the follower's joint angles and turns them into observations. Who moves the
joints is up to the caller: `step_servos` is the in-process servo model (every joint slews
towards its goal at the servo's no-load speed) used where no serial bus is wanted, e.g. to check
the scripted expert; the virtual firmware moves them in a full bus session.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgevla.drivers.calibration import NormTable, normalize, unnormalize
from edgevla.hardware import RobotDef, load_robot
from edgevla.policy_io import STATE_KEY, TASK_KEY, image_key
from edgevla.sim import joints
from edgevla.sim.kinematics import Kinematics, load_kinematics
from edgevla.sim.render import Renderer, camera_def
from edgevla.sim.tasks import Episode, SuccessMonitor, aim, make_episode


@dataclass(frozen=True)
class SimConfig:
    task: str = "reach"
    fps: float = 30.0
    cameras: tuple[str, ...] = ("front",)
    width: int = 96
    height: int = 96
    sizes: tuple[tuple[str, int], ...] = ()  # (camera, square size) for cameras not width x height
    arm: str = "so101"
    robot: str = "so101_follower"
    near_miss: float = 0.0  # fraction of episodes starting beside the named cube (correction demos)

    @classmethod
    def square(
        cls,
        task: str,
        fps: float,
        cameras: tuple[str, ...],
        size: int,
        sizes: tuple[tuple[str, int], ...] = (),
    ) -> SimConfig:
        """Cameras of `size` x `size` pixels, or of their own square size from `sizes`."""
        return cls(task=task, fps=fps, cameras=cameras, width=size, height=size, sizes=sizes)


class SimWorld:
    def __init__(self, config: SimConfig = SimConfig()):
        self.config = config
        self.kin: Kinematics = load_kinematics(config.arm)
        self.robot: RobotDef = load_robot(config.robot)
        if self.kin.joint_names != self.robot.joint_names:
            raise ValueError(
                f"kinematics joints {self.kin.joint_names} != robot joints {self.robot.joint_names}"
            )
        self.calibration = joints.sim_calibration(self.kin, self.robot)
        self.norm = NormTable.build(self.robot, self.calibration)
        own_size = dict(config.sizes)
        self.renderer = Renderer(
            self.kin,
            [
                camera_def(c, own_size.get(c, config.width), own_size.get(c, config.height))
                for c in config.cameras
            ],
        )
        speeds = [m.servo.physics["max_speed_counts_per_s"] for m in self.robot.motors]
        self.max_speed = np.array(speeds) / joints.counts_per_radian(self.robot)  # rad/s
        self.episode: Episode
        self.angles: np.ndarray
        self.monitor: SuccessMonitor
        self.reset(0)  # always a valid scene; callers reset to the episode they want

    def reset(self, seed: int, target: str | None = None) -> Episode:
        """The scene of `seed`; `target` names another of its cubes than the seed's own."""
        self.episode = make_episode(self.config.task, seed, self.kin, near_miss=self.config.near_miss)
        if target is not None:
            if target not in self.episode.scene.color_names:
                cubes = ", ".join(self.episode.scene.color_names)
                raise ValueError(f"scene {seed} has no {target} cube (it has {cubes})")
            self.episode = aim(self.episode, target)
        self.angles = self.episode.start.copy()
        self.rearm()
        return self.episode

    def rearm(self) -> None:
        """Start the success check afresh in the same scene (the task must be done again)."""
        self.monitor = SuccessMonitor(self.kin, self.episode)
        self.monitor.update(self.angles)

    def set_angles(self, angles: np.ndarray) -> bool:
        """Place the follower's joints (e.g. read from the virtual servos); returns success so far."""
        self.angles = np.clip(np.asarray(angles, dtype=np.float64), self.kin.lower, self.kin.upper)
        return self.monitor.update(self.angles)

    def step_servos(self, goal_angles: np.ndarray, dt: float | None = None) -> bool:
        """In-process servo model: slew each joint towards its goal at the servo's top speed."""
        dt = 1.0 / self.config.fps if dt is None else dt
        move = np.clip(np.asarray(goal_angles) - self.angles, -self.max_speed * dt, self.max_speed * dt)
        return self.set_angles(self.angles + move)

    # --- units ---
    def to_normalized(self, angles: np.ndarray) -> np.ndarray:
        return normalize(joints.angles_to_counts(self.kin, self.robot, angles), self.norm)

    def from_normalized(self, values: np.ndarray) -> np.ndarray:
        """Normalised goal -> joint angles, through the whole counts the servos would get."""
        return joints.counts_to_angles(self.kin, self.robot, unnormalize(values, self.norm))

    # --- observations ---
    def render(self, camera: str) -> np.ndarray:
        return self.renderer.render(camera, self.episode.scene, self.angles)

    def observation(self) -> dict:
        """A policy observation keyed like lerobot (see edgevla.policy_io)."""
        obs = {image_key(cam): self.render(cam) for cam in self.config.cameras}
        obs[STATE_KEY] = self.to_normalized(self.angles).astype(np.float32)
        obs[TASK_KEY] = self.episode.instruction
        return obs

    def nearest_cube(self) -> str:
        """The colour of the cube the tool is over (nearest in the table plane): where the policy went."""
        tool = self.kin.tool_position(self.angles)[:2]
        nearest = min(self.episode.scene.cubes, key=lambda c: float(np.linalg.norm(c.center[:2] - tool)))
        return nearest.color_name

    @property
    def succeeded(self) -> bool:
        return self.monitor.succeeded
