"""Grounding frames: rendered scenes labelled with where each cube appears in the image.

SmolVLA starts from SmolVLM2, a vision-language model that already knows what "the red cube" looks
like and where it is in a picture. edgevla's `small` preset starts from random weights, and the
action loss alone teaches that too slowly on a CPU (docs/SIM.md). These frames stand in for the
missing pretraining, in the simulator's own world: each shows a scene with the arm somewhere
along a scripted reach, and carries the pixel position of every cube's centre, so a model can be
taught to find the named cube before it is taught to reach it (edgevla.train.grounding).
Numpy only, like the rest of the simulator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgevla.sim.expert import ScriptedExpert
from edgevla.sim.render import project
from edgevla.sim.tasks import TASKS
from edgevla.sim.world import SimConfig, SimWorld

# Scene seeds for grounding frames start here: far from demonstration seeds (0..) and from
# `edgevla eval`'s held-out seeds (100000..), so no evaluated scene is ever pretrained on.
GROUNDING_SEED_BASE = 10_000_000


@dataclass
class GroundingFrames:
    images: np.ndarray  # (N, H, W, 3) uint8, the camera's view
    colors: list[tuple[str, ...]]  # per frame, its cubes' colour names
    pixels: np.ndarray  # (N, cubes, 2) float: each cube centre's (u, v) in pixels, top-left origin

    def __len__(self) -> int:
        return len(self.images)

    def instruction(self, frame: int, cube: int, task: str) -> str:
        return TASKS[task].template.format(color=self.colors[frame][cube])


def render_grounding_frames(
    count: int, seed: int = 0, camera: str = "front", size: int = 96, progress=None
) -> GroundingFrames:
    """`count` frames of scenes `GROUNDING_SEED_BASE + seed + i`, each with the arm at a random
    moment of the scripted expert's reach towards a random one of its cubes (from the start pose
    through the touch), so frames show the arm where it will be when a policy acts."""
    world = SimWorld(SimConfig(cameras=(camera,), width=size, height=size))
    cam = world.renderer.cameras[camera]
    images = np.zeros((count, size, size, 3), dtype=np.uint8)
    pixels = np.zeros((count, 3, 2))
    colors: list[tuple[str, ...]] = []
    for index in range(count):
        scene_seed = GROUNDING_SEED_BASE + seed + index
        rng = np.random.default_rng([scene_seed, 0x6E0])
        cubes = world.reset(scene_seed).scene.color_names
        episode = world.reset(scene_seed, target=str(rng.choice(cubes)))
        expert = ScriptedExpert(world.kin, episode)
        world.set_angles(expert.goal(rng.uniform(0.0, expert.duration)))
        images[index] = world.render(camera)
        frames = world.kin.frames(world.angles)
        pixels[index] = [project(cam, frames, cube.center) for cube in episode.scene.cubes]
        colors.append(episode.scene.color_names)
        if progress is not None:
            progress()
    return GroundingFrames(images, colors, pixels)
