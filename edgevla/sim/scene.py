"""The table and the coloured cubes on it; a scene is drawn from a seed and never changes after."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgevla.errors import EdgevlaError

# name -> RGB 0..1; instructions name cubes by these words
CUBE_COLORS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.12, 0.10),
    "green": (0.10, 0.65, 0.20),
    "blue": (0.12, 0.25, 0.85),
    "yellow": (0.95, 0.85, 0.10),
}


@dataclass(frozen=True)
class Cube:
    color_name: str
    center: np.ndarray  # world metres; resting on the table, so z = size / 2
    size: float  # edge length, metres
    yaw: float  # rotation about z, radians

    @property
    def color(self) -> np.ndarray:
        return np.array(CUBE_COLORS[self.color_name])

    def rotation(self) -> np.ndarray:
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class SceneConfig:
    n_cubes: int = 3
    cube_size: float = 0.03
    # cubes are placed in a ring sector in front of the arm, where it can touch them from above
    min_radius: float = 0.16
    max_radius: float = 0.28
    max_bearing_deg: float = 50.0
    min_separation: float = 0.07  # centre to centre, so the arm can tell them apart
    twins: bool = False  # two of the cubes share a colour (reach_either); the others are distinct

    def __post_init__(self):
        most = len(CUBE_COLORS) + self.twins
        if not 1 + self.twins <= self.n_cubes <= most:
            raise EdgevlaError(f"n_cubes must be {1 + self.twins}..{most}, got {self.n_cubes}")


@dataclass(frozen=True)
class Scene:
    cubes: tuple[Cube, ...]

    def cube(self, color_name: str) -> Cube:
        """The one cube of that colour (a colour two cubes share has no single answer: `cubes_of`)."""
        found = self.cubes_of(color_name)
        if len(found) != 1:
            raise EdgevlaError(
                f"the scene has {len(found)} {color_name} cubes; it has {', '.join(self.color_names)}"
            )
        return found[0]

    def cubes_of(self, color_name: str) -> tuple[Cube, ...]:
        return tuple(cube for cube in self.cubes if cube.color_name == color_name)

    @property
    def shared_color(self) -> str | None:
        """The colour two cubes share, if any."""
        names = self.color_names
        return next((name for name in names if names.count(name) > 1), None)

    @property
    def color_names(self) -> tuple[str, ...]:
        return tuple(c.color_name for c in self.cubes)


def random_scene(rng: np.random.Generator, config: SceneConfig = SceneConfig()) -> Scene:
    """Cubes of distinct colours (but for `twins`: the first colour twice) at random, well
    separated places on the table."""
    names = list(rng.permutation(list(CUBE_COLORS))[: config.n_cubes - config.twins])
    if config.twins:
        names.insert(0, names[0])
    centers: list[np.ndarray] = []
    while len(centers) < config.n_cubes:
        radius = rng.uniform(config.min_radius, config.max_radius)
        bearing = np.deg2rad(rng.uniform(-config.max_bearing_deg, config.max_bearing_deg))
        center = np.array([radius * np.cos(bearing), radius * np.sin(bearing), config.cube_size / 2])
        if all(np.linalg.norm(center[:2] - c[:2]) >= config.min_separation for c in centers):
            centers.append(center)
    cubes = tuple(
        Cube(str(name), center, config.cube_size, float(rng.uniform(0, np.pi / 2)))
        for name, center in zip(names, centers, strict=True)
    )
    return Scene(cubes)
