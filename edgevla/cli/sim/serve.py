"""`edgevla sim serve`: run the simulator and publish its cameras for `sim:NAME` camera sources."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from edgevla.cli.args import add_duration, add_sim_world, sim_world
from edgevla.sim.clock import ExpertDriven, WorldClock
from edgevla.sim.frames import default_socket
from edgevla.sim.world import SimWorld


def configure(parser: argparse.ArgumentParser) -> None:
    add_sim_world(parser)
    parser.add_argument("--seed", type=int, default=0, help="first episode seed")
    parser.add_argument(
        "--socket", type=Path, default=None, help=f"frame socket (default {default_socket()})"
    )
    add_duration(parser)
    parser.add_argument(
        "--bus",
        action="store_true",
        help="serve the follower and leader as virtual servos on ptys (the expert holds the leader); "
        "without it the expert moves the simulated arm directly",
    )
    parser.add_argument("--follower-link", type=Path, help="--bus: symlink to the follower's pty")
    parser.add_argument("--leader-link", type=Path, help="--bus: symlink to the leader's pty")
    parser.add_argument(
        "--episode-seconds", type=float, default=10.0, help="--bus: next scene after this long (default 10)"
    )
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    world = sim_world(args)
    socket_path = args.socket or default_socket()
    if args.bus:
        return _serve_bus(args, world, socket_path)
    with WorldClock(world, socket_path, ExpertDriven(world, args.seed)) as clock:
        print(f"ready {socket_path}", flush=True)
        started = time.monotonic()
        while args.duration is None or time.monotonic() - started < args.duration:
            time.sleep(0.2)
    print(f"served {clock.ticks} ticks, render {1000 * clock.render_s / max(1, clock.ticks):.1f} ms/tick")
    return 0


def _serve_bus(args: argparse.Namespace, world: SimWorld, socket_path: Path) -> int:
    """Episodes back to back: a new scene every --episode-seconds, or 1 s after a success."""
    from edgevla.sim.bus import serve_arms
    from edgevla.sim.joints import SIM_CALIBRATION_DIR

    with (
        serve_arms(world, follower_link=args.follower_link, leader_link=args.leader_link) as arms,
        WorldClock(world, socket_path, arms.follow) as clock,
    ):
        print(f"ready frames {socket_path}", flush=True)
        print(f"follower {arms.follower_port}  leader {arms.leader_port}", flush=True)
        print(f"calibration: EDGEVLA_CALIBRATION_DIR={SIM_CALIBRATION_DIR}", flush=True)
        started, seed = time.monotonic(), args.seed
        while args.duration is None or time.monotonic() - started < args.duration:
            episode = clock.change_scene(lambda s=seed: arms.start_episode(s), cameras=())
            print(f"episode {seed}: {episode.instruction}", flush=True)
            began, success_at = time.monotonic(), None
            while time.monotonic() - began < args.episode_seconds:
                if args.duration is not None and time.monotonic() - started >= args.duration:
                    break
                if success_at is None and world.succeeded:
                    success_at = time.monotonic()
                    print(f"episode {seed}: success after {success_at - began:.2f} s", flush=True)
                if success_at is not None and time.monotonic() - success_at > 1.0:
                    break
                time.sleep(0.05)
            seed += 1
    return 0
