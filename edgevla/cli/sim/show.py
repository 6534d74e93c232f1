"""`edgevla sim show`: render one episode played by the scripted expert to a PNG strip or a GIF."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgevla.cli.sim_serve import parse_cameras
from edgevla.sim.clip import save_frames, stack_views
from edgevla.sim.expert import ScriptedExpert
from edgevla.sim.render import CAMERAS
from edgevla.sim.tasks import TASKS
from edgevla.sim.world import SimConfig, SimWorld


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default="reach", choices=sorted(TASKS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--cameras", default="front,wrist", help=f"comma list of {', '.join(CAMERAS)}, each NAME or NAME:SIZE"
    )
    parser.add_argument("--size", type=int, default=128, help="image width and height in pixels")
    parser.add_argument("--out", type=Path, default=Path("sim-episode.png"), help=".png strip or .gif")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    cameras, sizes = parse_cameras(args.cameras, args.size)
    world = SimWorld(SimConfig.square(args.task, SimConfig.fps, cameras, args.size, sizes))
    episode = world.reset(args.seed)
    expert = ScriptedExpert(world.kin, episode)
    dt = 1.0 / world.config.fps
    frames = []
    for step in range(int(expert.duration / dt) + 1):
        world.step_servos(expert.goal(step * dt))
        frames.append(stack_views([world.render(c) for c in cameras], axis=0))
    save_frames(frames, args.out, world.config.fps)
    outcome = "success" if world.succeeded else "FAILED"
    print(f'"{episode.instruction}" (seed {args.seed}): {outcome}, {len(frames)} frames -> {args.out}')
    return 0
