"""`edgevla sim show`: render one episode played by the scripted expert to a PNG strip or a GIF."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgevla.cli.args import add_sim_cameras, sim_cameras
from edgevla.sim.clip import save_frames, stack_views
from edgevla.sim.expert import ScriptedExpert
from edgevla.sim.tasks import TASKS
from edgevla.sim.world import SimConfig, SimWorld


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default="reach", choices=sorted(TASKS))
    parser.add_argument("--seed", type=int, default=0)
    add_sim_cameras(parser, default="front,wrist", size=128)
    parser.add_argument("--out", type=Path, default=Path("sim-episode.png"), help=".png strip or .gif")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    cameras, sizes = sim_cameras(args)
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
