"""`edgevla sim show`: render one episode played by the scripted expert to a PNG strip or a GIF."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edgevla.errors import EdgevlaError
from edgevla.sim.clip import save_frames
from edgevla.sim.expert import ScriptedExpert
from edgevla.sim.render import CAMERAS
from edgevla.sim.tasks import TASKS
from edgevla.sim.world import SimConfig, SimWorld


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default="reach", choices=sorted(TASKS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cameras", default="front,wrist", help=f"comma list of {', '.join(CAMERAS)}")
    parser.add_argument("--size", type=int, default=128, help="image width and height in pixels")
    parser.add_argument("--out", type=Path, default=Path("sim-episode.png"), help=".png strip or .gif")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    cameras = tuple(c for c in args.cameras.split(",") if c)
    unknown = [c for c in cameras if c not in CAMERAS]
    if unknown or not cameras:
        raise EdgevlaError(
            f"--cameras: unknown {', '.join(unknown) or '(none)'}; known: {', '.join(CAMERAS)}"
        )
    world = SimWorld(SimConfig(task=args.task, cameras=cameras, width=args.size, height=args.size))
    episode = world.reset(args.seed)
    expert = ScriptedExpert(world.kin, episode)
    dt = 1.0 / world.config.fps
    frames = []
    for step in range(int(expert.duration / dt) + 1):
        world.step_servos(expert.goal(step * dt))
        frames.append(np.concatenate([world.render(c) for c in cameras], axis=0))
    save_frames(frames, args.out, world.config.fps)
    outcome = "success" if world.succeeded else "FAILED"
    print(f'"{episode.instruction}" (seed {args.seed}): {outcome}, {len(frames)} frames -> {args.out}')
    return 0
