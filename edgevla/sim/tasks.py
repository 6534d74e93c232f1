"""Tasks: an instruction, a scene drawn from a seed, a start pose, and a success test.

reach        "touch the red cube": the tool point comes within 2 cm of the cube's centre.
reach_close  "reach the red cube and close the gripper": within 2 cm with the gripper
             closed, having arrived with it open (closing first and then arriving fails).
reach_either "touch a red cube": two cubes are red (plus two of other colours); touching either
             succeeds. The scripted expert goes to one of them, drawn per episode from its seed
             (`Episode.chosen`), so the demonstrations are bimodal: a policy that averages its
             demonstrations aims between the two.

Near-miss starts (`near_miss`, for correction demos): the arm starts where a policy's failed
reach stops, 2-5 cm beside the named cube, down at its top or at hover height. Demos that only
start from rest never show the arm settled in the wrong place, so a policy learns to hold
whatever pose it reached (its state predicts its next action) instead of reading its camera.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from edgevla.errors import EdgevlaError
from edgevla.sim.kinematics import Kinematics
from edgevla.sim.scene import Cube, Scene, SceneConfig, random_scene

SUCCESS_RADIUS = 0.02  # metres, tool point to the named cube's centre
APPROACH_RADIUS = 0.05  # where reach_close checks that the gripper arrives open
CLOSED_FRACTION, OPEN_FRACTION = 0.10, 0.40  # of the gripper's range, from closed

# A start pose above the table with the jaws pointing forward and down (radians, model angles);
# each episode jitters it so demonstrations do not all start from one point.
HOME = np.array([0.0, -1.2, 0.9, 1.2, 0.0, 0.2])
HOME_JITTER = np.array([0.15, 0.1, 0.1, 0.1, 0.2, 0.2])
NEAR_MISS_XY = (0.02, 0.05)  # metres beside the cube's centre, horizontally
NEAR_MISS_HEIGHTS = (0.0, 0.05)  # above the cube's top: touching down, or hovering
DOWN = np.array([0.0, 0.0, -1.0])  # the tool's approach axis when it reaches a cube


def facing(angles: np.ndarray, point: np.ndarray) -> np.ndarray:
    """`angles` with the base turned towards `point`: an IK seed (the pan joint's axis points down)."""
    turned = np.array(angles, dtype=np.float64)
    turned[0] = -np.arctan2(point[1], point[0])
    return turned


@dataclass(frozen=True)
class TaskDef:
    name: str
    template: str  # instruction with {color}
    close_gripper: bool
    scene: SceneConfig = field(default_factory=SceneConfig)


TASKS: dict[str, TaskDef] = {
    "reach": TaskDef("reach", "touch the {color} cube", close_gripper=False),
    "reach_close": TaskDef("reach_close", "reach the {color} cube and close the gripper", close_gripper=True),
    "reach_either": TaskDef(
        "reach_either", "touch a {color} cube", close_gripper=False, scene=SceneConfig(n_cubes=4, twins=True)
    ),
}


def task_def(name: str) -> TaskDef:
    if name not in TASKS:
        raise EdgevlaError(f"unknown task '{name}'; known: {', '.join(TASKS)}")
    return TASKS[name]


@dataclass(frozen=True)
class Episode:
    task: TaskDef
    seed: int
    scene: Scene
    target: str  # colour name of the cube(s) the instruction names
    start: np.ndarray  # joint angles the arm starts from (radians)
    near_miss: bool = False  # the start is beside the named cube, not at rest
    chosen: int = -1  # index in scene.cubes of the named cube the expert goes to (-1: the only one)

    @property
    def instruction(self) -> str:
        return self.task.template.format(color=self.target)

    @property
    def chosen_cube(self) -> Cube:
        """The cube the scripted expert touches (and a near-miss start is beside)."""
        return self.scene.cubes[self.chosen] if self.chosen >= 0 else self.scene.cube(self.target)

    @property
    def target_center(self) -> np.ndarray:
        return self.chosen_cube.center

    @property
    def target_centers(self) -> list[np.ndarray]:
        """Every cube the instruction names: touching any one succeeds."""
        return [cube.center for cube in self.scene.cubes_of(self.target)]


def aim(episode: Episode, target: str) -> Episode:
    """`episode` with the instruction naming `target` instead; a colour two cubes share keeps the
    expert's draw between them."""
    if target == episode.target:
        return episode
    named = [i for i, cube in enumerate(episode.scene.cubes) if cube.color_name == target]
    if not named:
        raise EdgevlaError(f"the scene has no {target} cube; it has {', '.join(episode.scene.color_names)}")
    chosen = named[_expert_draw(episode.seed, len(named))] if len(named) > 1 else -1
    return replace(episode, target=target, chosen=chosen)


def _expert_draw(seed: int, choices: int) -> int:
    """Which of `choices` named cubes the expert goes to: its own stream, so the scene, start and
    the expert's timing stay what they are."""
    return int(np.random.default_rng([seed, 0xE17]).integers(choices))


def make_episode(
    task: str, seed: int, kin: Kinematics, scene_config: SceneConfig | None = None, near_miss: float = 0.0
) -> Episode:
    """The episode `seed` of `task`: same seed, same scene, target and start pose. `near_miss`:
    the fraction of episodes that start beside the named cube instead of at rest."""
    definition = task_def(task)
    rng = np.random.default_rng([seed, 0x5EED])
    scene = random_scene(rng, scene_config or definition.scene)
    # a shared colour is the one named (reach_either); otherwise any cube may be
    target = scene.shared_color or str(rng.choice(scene.color_names))
    start = np.clip(HOME + rng.uniform(-1, 1, HOME.size) * HOME_JITTER, kin.lower, kin.upper)
    episode = aim(Episode(definition, seed, scene, "", start), target)
    misses = np.random.default_rng([seed, 0xC0])  # its own stream: rest starts stay as they were
    if misses.random() < near_miss:
        beside = _beside(kin, episode.chosen_cube, start, misses)
        if beside is not None:
            if definition.close_gripper:  # a near miss of reach_close has its jaws still open
                g = kin.joint_names.index("gripper")
                beside[g] = kin.lower[g] + 0.8 * (kin.upper[g] - kin.lower[g])
            return replace(episode, start=beside, near_miss=True)
    return episode


def _beside(kin: Kinematics, cube: Cube, rest: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """Joint angles with the tool pointing down beside `cube` (None if no drawn spot is reachable)."""
    top = cube.center + np.array([0.0, 0.0, cube.size / 2 + rng.choice(NEAR_MISS_HEIGHTS)])
    for _ in range(8):
        angle, radius = rng.uniform(0, 2 * np.pi), rng.uniform(*NEAR_MISS_XY)
        spot = top + radius * np.array([np.cos(angle), np.sin(angle), 0.0])
        angles, error = kin.solve_ik(spot, facing(rest, spot), pointing=DOWN)
        if error <= 0.005:
            return np.clip(angles, kin.lower, kin.upper)
    return None


class SuccessMonitor:
    """Feeds on the arm's joint angles step by step; `succeeded` latches once the task is done."""

    def __init__(self, kin: Kinematics, episode: Episode):
        self.kin, self.episode = kin, episode
        gripper = kin.joints[kin.joint_names.index("gripper")]
        span = gripper.upper - gripper.lower
        self._gripper_index = kin.joint_names.index("gripper")
        self._closed_below = gripper.lower + CLOSED_FRACTION * span
        self._open_above = gripper.lower + OPEN_FRACTION * span
        self._arrived_open: bool | None = None  # decided when the tool first gets near the cube
        self.succeeded = False
        self.distance = np.inf  # latest tool distance to the nearest named cube, metres

    def update(self, angles: np.ndarray) -> bool:
        tool = self.kin.tool_position(angles)
        self.distance = min(float(np.linalg.norm(tool - center)) for center in self.episode.target_centers)
        gripper = angles[self._gripper_index]
        if self._arrived_open is None and self.distance <= APPROACH_RADIUS:
            self._arrived_open = gripper >= self._open_above
        done = self.distance <= SUCCESS_RADIUS
        if self.episode.task.close_gripper:
            done = done and bool(self._arrived_open) and gripper <= self._closed_below
        self.succeeded = self.succeeded or done
        return self.succeeded
