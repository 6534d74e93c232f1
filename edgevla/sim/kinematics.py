"""The arm's kinematic chain, loaded from `hardware/kinematics/<arm>.yaml`: forward kinematics,
the tool point, and a damped least-squares inverse kinematics used by the scripted expert.

Angles are radians in the model's convention (0 = middle of the range); `edgevla.sim.joints`
turns them into servo counts and normalised units.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# The hardware loader's YAML reader names the file and field on every problem; reuse it.
from edgevla.hardware import HardwareFileError, _read_yaml, _Reader
from edgevla.paths import hardware_dir


def quat_to_matrix(quat: np.ndarray) -> np.ndarray:
    w, x, y, z = np.asarray(quat, dtype=np.float64) / np.linalg.norm(quat)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def axis_angle_matrix(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues' rotation about unit `axis`."""
    x, y, z = axis
    skew = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return np.eye(3) + np.sin(angle) * skew + (1 - np.cos(angle)) * skew @ skew


def transform(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = rotation, translation
    return out


@dataclass(frozen=True)
class JointGeom:
    name: str
    origin: np.ndarray  # 4x4 parent frame -> joint frame at angle 0
    axis: np.ndarray  # unit vector in the joint frame
    lower: float  # radians
    upper: float
    direction: int  # +1/-1: servo counts grow with (+1) or against (-1) the model's angle


@dataclass(frozen=True)
class LinkBox:
    """A box drawn in a link's frame: long axis from `start` to `end`, square section `width`."""

    start: np.ndarray
    end: np.ndarray
    width: float
    color: np.ndarray  # RGB 0..1


@dataclass(frozen=True)
class Kinematics:
    robot: str
    joints: tuple[JointGeom, ...]
    tool_frame: str
    tool_point: np.ndarray  # in the tool frame
    links: dict[str, tuple[LinkBox, ...]]  # frame name ("base" or a joint name) -> boxes

    @property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.joints)

    @property
    def lower(self) -> np.ndarray:
        return np.array([j.lower for j in self.joints])

    @property
    def upper(self) -> np.ndarray:
        return np.array([j.upper for j in self.joints])

    def frames(self, angles: np.ndarray) -> dict[str, np.ndarray]:
        """World pose (4x4) of the base and of every joint's frame for joint `angles` (radians)."""
        poses = {"base": np.eye(4)}
        pose = poses["base"]
        for joint, angle in zip(self.joints, angles, strict=True):
            pose = pose @ joint.origin @ transform(axis_angle_matrix(joint.axis, angle), np.zeros(3))
            poses[joint.name] = pose
        return poses

    def tool_pose(self, angles: np.ndarray) -> np.ndarray:
        """World pose of the tool frame with its origin moved to the tool point."""
        pose = self.frames(angles)[self.tool_frame].copy()
        pose[:3, 3] = pose[:3, :3] @ self.tool_point + pose[:3, 3]
        return pose

    def tool_position(self, angles: np.ndarray) -> np.ndarray:
        return self.tool_pose(angles)[:3, 3]

    def solve_ik(
        self,
        target: np.ndarray,
        seed: np.ndarray,
        pointing: np.ndarray | None = None,
        pointing_weight: float = 0.05,
        active: int = 4,
        iterations: int = 100,
        tolerance: float = 1e-4,
    ) -> tuple[np.ndarray, float]:
        """Joint angles that put the tool point at `target` (world, metres), starting from `seed`.

        `pointing` (unit vector) asks the tool's approach axis (its local -z, from wrist to jaw
        tips) to point that way, weighted below the position so an unreachable orientation never
        costs position. Only the first `active` joints move (the SO-101's pan, lift, elbow and
        wrist flex place and aim the tool; roll and gripper keep `seed`). Damped least squares on
        the geometric Jacobian, clamped to the joint ranges. Returns (angles, position error m).
        """
        angles = np.clip(np.array(seed, dtype=np.float64), self.lower, self.upper)
        low, high = self.lower[:active], self.upper[:active]
        rows = 6 if pointing is not None else 3
        for _ in range(iterations):
            frames = self.frames(angles)
            tool = frames[self.tool_frame]
            tip = tool[:3, :3] @ self.tool_point + tool[:3, 3]
            approach = -tool[:3, 2]
            err = np.zeros(rows)
            err[:3] = target - tip
            if pointing is not None:
                err[3:] = pointing_weight * (pointing - approach)
            if np.linalg.norm(err[:3]) < tolerance and (
                pointing is None or np.linalg.norm(err[3:]) < tolerance
            ):
                break
            jac = np.zeros((rows, active))
            for i, joint in enumerate(self.joints[:active]):
                axis = frames[joint.name][:3, :3] @ joint.axis  # world axis of a revolute joint
                jac[:3, i] = np.cross(axis, tip - frames[joint.name][:3, 3])
                if pointing is not None:
                    jac[3:, i] = pointing_weight * np.cross(axis, approach)
            # a joint at a limit that the step pushes further is frozen, and the step re-solved
            # without it, so the other joints keep making progress instead of jamming there
            free = np.ones(active, dtype=bool)
            for _ in range(active):
                cols = jac * free
                delta = np.linalg.solve(cols.T @ cols + 1e-4 * np.eye(active), cols.T @ err)
                pushing = ((angles[:active] <= low) & (delta < 0)) | ((angles[:active] >= high) & (delta > 0))
                if not (pushing & free).any():
                    break
                free &= ~pushing
            angles[:active] = np.clip(angles[:active] + delta, low, high)
        error = float(np.linalg.norm(target - self.tool_position(angles)))
        if pointing is not None and error > 10 * tolerance:
            # the aim cost position (target too close or too far to point that way): keep the
            # aim found so far as a start and put the tool point on target without it
            return self.solve_ik(
                target, angles, None, active=active, iterations=iterations, tolerance=tolerance
            )
        return angles, error


def kinematics_path(arm: str) -> Path:
    return hardware_dir() / "kinematics" / f"{arm}.yaml"


def load_kinematics(arm: str = "so101", path: Path | None = None) -> Kinematics:
    """Read `hardware/kinematics/<arm>.yaml` (or `path`); problems name the file and field."""
    path = path or kinematics_path(arm)
    if not path.is_file():
        raise HardwareFileError(f"kinematics file '{path}' does not exist; the simulator knows: so101")
    doc = _read_yaml(path)

    def vector(reader, key: str, size: int) -> np.ndarray:
        value = reader.get(key, list)
        if len(value) != size or not all(isinstance(v, (int, float)) for v in value):
            reader.fail(key, f"expected {size} numbers, got {value!r}")
        return np.array(value, dtype=np.float64)

    joints = []
    joint_list = doc.get("joints", list)
    for index, item in enumerate(joint_list):
        j = _Reader(path, item, f"joints[{index}]")
        low, high = vector(j, "range", 2)
        if not low < high:
            j.fail("range", "lower bound must be below upper bound")
        axis = vector(j, "axis", 3)
        direction = j.get("direction", int, 1)
        if direction not in (1, -1):
            j.fail("direction", "must be 1 or -1")
        origin = transform(quat_to_matrix(vector(j, "quat", 4)), vector(j, "xyz", 3))
        joints.append(
            JointGeom(j.get("name", str), origin, axis / np.linalg.norm(axis), low, high, direction)
        )
    names = [j.name for j in joints]
    tool = doc.child("tool")
    if tool.get("frame", str) not in names:
        tool.fail("frame", f"must be one of the joints {names}")
    links_doc = doc.child("links", {})
    links = {}
    for frame in links_doc.data:
        if frame != "base" and frame not in names:
            links_doc.fail(frame, f"is neither 'base' nor a joint ({', '.join(names)})")
        boxes = []
        for index, item in enumerate(links_doc.get(frame, list)):
            b = _Reader(path, item, f"links.{frame}[{index}]")
            boxes.append(
                LinkBox(
                    vector(b, "from", 3),
                    vector(b, "to", 3),
                    float(b.get("width", (int, float))),
                    vector(b, "color", 3),
                )
            )
        links[frame] = tuple(boxes)
    return Kinematics(
        robot=doc.get("robot", str),
        joints=tuple(joints),
        tool_frame=tool.get("frame", str),
        tool_point=vector(tool, "xyz", 3),
        links=links,
    )
