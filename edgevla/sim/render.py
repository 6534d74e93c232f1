"""Cameras that see the arm and the cubes: a small numpy ray caster over oriented boxes.

Every object is a box (links, cubes, base), the table is the plane z = 0. Each pixel's ray finds
its nearest box with the slab test; surfaces are flat shaded by one directional light, and a
shadow ray towards the light darkens what the arm and cubes hide: shadows are how a single front
camera tells how high the gripper is above the table. Pure float64 numpy, so the same state gives
the same image on every run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgevla.errors import EdgevlaError
from edgevla.sim.kinematics import Kinematics
from edgevla.sim.scene import Scene

LIGHT_DIR = np.array([0.35, 0.25, 1.0]) / np.linalg.norm([0.35, 0.25, 1.0])  # towards the light
AMBIENT, DIFFUSE, SHADOW = 0.45, 0.55, 0.55  # shadowed pixels keep SHADOW of their light
TABLE_COLORS = (np.array([0.78, 0.72, 0.62]), np.array([0.74, 0.68, 0.58]))  # 5 cm checker
TABLE_EXTENT = ((-0.12, 0.45), (-0.40, 0.40))  # x, y metres
FLOOR_COLOR = np.array([0.30, 0.30, 0.33])
SKY_TOP, SKY_BOTTOM = np.array([0.55, 0.62, 0.70]), np.array([0.80, 0.82, 0.85])


@dataclass(frozen=True)
class CameraDef:
    """A pinhole camera. `mount` "world": `eye` looks at `target` (world metres). Otherwise `mount`
    is a joint frame name and `eye`/`target` are in that frame: the camera moves with the link."""

    name: str
    mount: str = "world"
    eye: tuple[float, float, float] = (0.40, 0.0, 0.45)
    target: tuple[float, float, float] = (0.14, 0.0, 0.0)
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    fov_deg: float = 50.0
    width: int = 96
    height: int = 96


# The cameras a simulated SO-101 session offers: a fixed one facing the arm across the table,
# and one on the wrist looking along the jaws (like the usual real setups).
CAMERAS: dict[str, CameraDef] = {
    "front": CameraDef("front"),
    "wrist": CameraDef(
        "wrist",
        mount="wrist_roll",
        eye=(0.035, 0.0, -0.055),
        target=(-0.01, 0.0, -0.15),
        up=(1.0, 0.0, 0.0),
        fov_deg=75.0,
    ),
}


def camera_def(name: str, width: int | None = None, height: int | None = None) -> CameraDef:
    if name not in CAMERAS:
        raise EdgevlaError(f"unknown simulated camera '{name}'; known: {', '.join(CAMERAS)}")
    cam = CAMERAS[name]
    return CameraDef(**{**cam.__dict__, "width": width or cam.width, "height": height or cam.height})


@dataclass(frozen=True)
class Box:
    rotation: np.ndarray  # 3x3 box frame -> world
    center: np.ndarray  # world
    half: np.ndarray  # half extents along the box's axes
    color: np.ndarray


def _segment_box(pose: np.ndarray, start: np.ndarray, end: np.ndarray, width: float, color) -> Box:
    """A box along a link segment, expressed in world coordinates."""
    a, b = pose[:3, :3] @ start + pose[:3, 3], pose[:3, :3] @ end + pose[:3, 3]
    axis = b - a
    length = float(np.linalg.norm(axis))
    x = axis / length
    helper = np.array([0.0, 0.0, 1.0]) if abs(x[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    y = np.cross(helper, x)
    y /= np.linalg.norm(y)
    return Box(
        np.stack([x, y, np.cross(x, y)], 1), (a + b) / 2, np.array([length / 2, width / 2, width / 2]), color
    )


def scene_boxes(kin: Kinematics, scene: Scene, angles: np.ndarray) -> list[Box]:
    frames = kin.frames(angles)
    boxes = [
        _segment_box(frames[frame], link.start, link.end, link.width, link.color)
        for frame, links in kin.links.items()
        for link in links
    ]
    boxes += [Box(c.rotation(), c.center, np.full(3, c.size / 2), c.color) for c in scene.cubes]
    return boxes


def _camera_pose(cam: CameraDef, frames: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(eye in world, 3x3 camera -> world rotation with columns right, down, forward)."""
    eye, target, up = (np.array(v, dtype=np.float64) for v in (cam.eye, cam.target, cam.up))
    if cam.mount != "world":
        pose = frames[cam.mount]
        eye, target, up = (
            pose[:3, :3] @ eye + pose[:3, 3],
            pose[:3, :3] @ target + pose[:3, 3],
            pose[:3, :3] @ up,
        )
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    return eye, np.stack([right, np.cross(forward, right), forward], 1)


def _focal_px(cam: CameraDef) -> float:
    """Focal length in pixels of the horizontal field of view (square pixels)."""
    return 0.5 * cam.width / np.tan(np.deg2rad(cam.fov_deg) / 2)


def project(cam: CameraDef, frames: dict[str, np.ndarray], point: np.ndarray) -> np.ndarray:
    """(u, v) pixel coordinates (from the image's top-left corner) of a world point, for the arm
    pose whose joint `frames` are given; the inverse of the ray through a pixel centre."""
    eye, cam_rot = _camera_pose(cam, frames)
    x, y, z = cam_rot.T @ (np.asarray(point, dtype=np.float64) - eye)
    if z <= 0:
        raise ValueError(f"point {np.round(point, 3).tolist()} is behind the {cam.name} camera")
    focal = _focal_px(cam)
    return np.array([focal * x / z + cam.width / 2, focal * y / z + cam.height / 2])


def _ray_directions(cam: CameraDef) -> np.ndarray:
    """(H*W, 3) unit rays in the camera frame (x right, y down, z forward) through pixel centres."""
    focal = _focal_px(cam)
    u = (np.arange(cam.width) + 0.5 - cam.width / 2) / focal
    v = (np.arange(cam.height) + 0.5 - cam.height / 2) / focal
    uu, vv = np.meshgrid(u, v)
    rays = np.stack([uu, vv, np.ones_like(uu)], -1).reshape(-1, 3)
    return rays / np.linalg.norm(rays, axis=1, keepdims=True)


def _hit_box(origins: np.ndarray, dirs: np.ndarray, box: Box) -> tuple[np.ndarray, np.ndarray]:
    """Slab test: distance to the box along each ray (inf on a miss) and the hit face's normal."""
    o = (origins - box.center) @ box.rotation  # into the box frame
    d = dirs @ box.rotation
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
        t1, t2 = (-box.half - o) * inv, (box.half - o) * inv
    near, far = np.fmin(t1, t2), np.fmax(t1, t2)
    t_near, t_far = near.max(1), far.min(1)
    hit = (t_near <= t_far) & (t_far > 1e-6)
    dist = np.where(hit, np.maximum(t_near, 0.0), np.inf)
    face = near.argmax(1)
    normal_local = np.zeros_like(o)
    rows = np.arange(len(o))
    normal_local[rows, face] = -np.sign(d[rows, face])
    return dist, normal_local @ box.rotation.T


def _near_sphere(origins: np.ndarray, dirs: np.ndarray, box: Box) -> np.ndarray:
    """Rays that pass within the box's bounding sphere: a cheap filter before the slab test."""
    radius = float(np.linalg.norm(box.half))
    to_center = box.center - origins
    along = to_center @ dirs[0] if dirs.strides[0] == 0 else np.einsum("ij,ij->i", to_center, dirs)
    off_axis = np.einsum("ij,ij->i", to_center, to_center) - along**2
    return (off_axis <= radius**2) & (along > -radius)


def _screen_rows(cam: CameraDef, eye: np.ndarray, cam_rot: np.ndarray, box: Box) -> np.ndarray:
    """Indices of the pixels whose rays may hit `box`: the screen rectangle of its bounding
    sphere (projected conservatively as the cube around the sphere), so small or distant boxes
    cost only the pixels they cover."""
    radius = float(np.linalg.norm(box.half))
    x, y, z = cam_rot.T @ (box.center - eye)
    if z - radius <= 1e-3:  # the sphere reaches behind the camera: test every pixel
        return np.arange(cam.width * cam.height)
    focal = _focal_px(cam)
    depths = (z - radius, z + radius)
    u = [focal * (x + side * radius) / depth + cam.width / 2 for side in (-1, 1) for depth in depths]
    v = [focal * (y + side * radius) / depth + cam.height / 2 for side in (-1, 1) for depth in depths]
    u0, u1 = max(int(np.floor(min(u))), 0), min(int(np.ceil(max(u))), cam.width)
    v0, v1 = max(int(np.floor(min(v))), 0), min(int(np.ceil(max(v))), cam.height)
    if u0 >= u1 or v0 >= v1:
        return np.empty(0, dtype=np.int64)
    return (np.arange(v0, v1)[:, None] * cam.width + np.arange(u0, u1)[None, :]).ravel()


def _shadowed(points: np.ndarray, boxes: list[Box]) -> np.ndarray:
    dirs = np.broadcast_to(LIGHT_DIR, points.shape)
    blocked = np.zeros(len(points), dtype=bool)
    for box in boxes:
        candidates = np.flatnonzero(_near_sphere(points, dirs, box) & ~blocked)
        if len(candidates):
            blocked[candidates] |= np.isfinite(_hit_box(points[candidates], dirs[candidates], box)[0])
    return blocked


class Renderer:
    """Renders named cameras for one arm; rays are computed once per camera."""

    def __init__(self, kin: Kinematics, cameras: list[CameraDef]):
        self.kin = kin
        self.cameras = {cam.name: cam for cam in cameras}
        self._rays = {cam.name: _ray_directions(cam) for cam in cameras}

    def render(self, camera: str, scene: Scene, angles: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) RGB view of `scene` with the arm at joint `angles` (radians)."""
        cam = self.cameras[camera]
        frames = self.kin.frames(angles)
        eye, cam_rot = _camera_pose(cam, frames)
        dirs = self._rays[camera] @ cam_rot.T
        origins = np.broadcast_to(eye, dirs.shape)
        boxes = scene_boxes(self.kin, scene, angles)

        n = len(dirs)
        best = np.full(n, np.inf)
        normal = np.zeros((n, 3))
        color = np.zeros((n, 3))
        for box in boxes:
            rows = _screen_rows(cam, eye, cam_rot, box)
            dist, box_normal = _hit_box(origins[rows], dirs[rows], box)
            closer = dist < best[rows]
            rows = rows[closer]
            best[rows], normal[rows], color[rows] = dist[closer], box_normal[closer], box.color

        # the table plane z = 0, where no box is nearer
        with np.errstate(divide="ignore", invalid="ignore"):
            t_table = np.where(dirs[:, 2] < 0, -eye[2] / dirs[:, 2], np.inf)
        on_table = t_table < best
        best = np.where(on_table, t_table, best)
        hit = np.isfinite(best)
        points = eye + dirs * np.where(hit, best, 0.0)[:, None]
        in_table = (
            on_table
            & (points[:, 0] > TABLE_EXTENT[0][0])
            & (points[:, 0] < TABLE_EXTENT[0][1])
            & (points[:, 1] > TABLE_EXTENT[1][0])
            & (points[:, 1] < TABLE_EXTENT[1][1])
        )
        checker = (np.floor(points[:, 0] / 0.05) + np.floor(points[:, 1] / 0.05)) % 2 == 0
        color[on_table] = FLOOR_COLOR
        color[in_table] = np.where(checker[in_table, None], TABLE_COLORS[0], TABLE_COLORS[1])
        normal[on_table] = (0.0, 0.0, 1.0)

        light = AMBIENT + DIFFUSE * np.clip(normal @ LIGHT_DIR, 0.0, 1.0)
        lit_points = points[hit] + normal[hit] * 1e-4
        shade = np.ones(n)
        shade[hit] = np.where(_shadowed(lit_points, boxes), SHADOW, 1.0)
        rgb = color * (light * shade)[:, None]

        # rays that hit nothing see a vertical sky gradient
        sky = np.clip(0.5 - dirs[:, 2], 0.0, 1.0)[:, None]
        rgb[~hit] = (SKY_TOP * (1 - sky) + SKY_BOTTOM * sky)[~hit]
        image = np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return image.reshape(cam.height, cam.width, 3)
