"""`edgevla sim serve`: run the simulator and publish its cameras for `sim:NAME` camera sources."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from edgevla.sim.frames import default_socket
from edgevla.sim.render import CAMERAS
from edgevla.sim.session import ExpertDriven, SimSession
from edgevla.sim.tasks import TASKS
from edgevla.sim.world import SimConfig, SimWorld


def add_world_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default="reach", choices=sorted(TASKS))
    parser.add_argument(
        "--cameras", default="front", help=f"comma list of {', '.join(CAMERAS)} (default front)"
    )
    parser.add_argument("--size", type=int, default=96, help="camera image width and height (default 96)")
    parser.add_argument("--fps", type=float, default=30.0, help="simulation and camera rate (default 30)")


def world_from_args(args: argparse.Namespace) -> SimWorld:
    from edgevla.errors import EdgevlaError

    cameras = tuple(c for c in args.cameras.split(",") if c)
    unknown = [c for c in cameras if c not in CAMERAS]
    if unknown or not cameras:
        raise EdgevlaError(
            f"--cameras: unknown {', '.join(unknown) or '(none)'}; known: {', '.join(CAMERAS)}"
        )
    if args.size < 16 or args.fps <= 0:
        raise EdgevlaError("--size must be >= 16 and --fps positive")
    return SimWorld(
        SimConfig(task=args.task, cameras=cameras, width=args.size, height=args.size, fps=args.fps)
    )


def configure(parser: argparse.ArgumentParser) -> None:
    add_world_arguments(parser)
    parser.add_argument("--seed", type=int, default=0, help="first episode seed")
    parser.add_argument(
        "--socket", type=Path, default=None, help=f"frame socket (default {default_socket()})"
    )
    parser.add_argument("--duration", type=float, default=None, help="stop after S seconds (default: Ctrl-C)")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    world = world_from_args(args)
    socket_path = args.socket or default_socket()
    with SimSession(world, socket_path, ExpertDriven(world, args.seed)) as session:
        print(f"ready {socket_path}", flush=True)
        started = time.monotonic()
        while args.duration is None or time.monotonic() - started < args.duration:
            time.sleep(0.2)
    print(
        f"served {session.ticks} ticks, render {1000 * session.render_s / max(1, session.ticks):.1f} ms/tick"
    )
    return 0
