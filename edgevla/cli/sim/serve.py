"""`edgevla sim serve`: run the simulator and publish its cameras for `sim:NAME` camera sources."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from edgevla.errors import EdgevlaError
from edgevla.sim.frames import default_socket
from edgevla.sim.render import CAMERAS
from edgevla.sim.session import ExpertDriven, SimSession
from edgevla.sim.tasks import TASKS
from edgevla.sim.world import SimConfig, SimWorld


def add_world_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default="reach", choices=sorted(TASKS))
    add_camera_arguments(parser)
    parser.add_argument("--fps", type=float, default=30.0, help="simulation and camera rate (default 30)")


def add_camera_arguments(parser: argparse.ArgumentParser, default: str | None = "front") -> None:
    parser.add_argument(
        "--cameras",
        default=default,
        help=f"comma list of {', '.join(CAMERAS)}, each NAME or NAME:SIZE (default "
        + (default or "the cameras the policy was trained on, at its demos' size; else front")
        + ")",
    )
    parser.add_argument("--size", type=int, default=96, help="camera image width and height (default 96)")


def parse_cameras(text: str, size: int) -> tuple[tuple[str, ...], tuple[tuple[str, int], ...]]:
    """`--cameras front,wrist:64` -> the camera names and the (name, size) of those given a size
    of their own (a near camera costs more to render per pixel: see docs/SIM.md)."""
    names, sizes = [], []
    for item in (c for c in text.split(",") if c):
        name, _, own = item.partition(":")
        names.append(name)
        if own:
            if not own.isdigit() or int(own) < 16:
                raise EdgevlaError(f"--cameras: '{item}' needs a whole size >= 16 after the colon")
            sizes.append((name, int(own)))
    unknown = [c for c in names if c not in CAMERAS]
    if unknown or not names:
        raise EdgevlaError(
            f"--cameras: unknown {', '.join(unknown) or '(none)'}; known: {', '.join(CAMERAS)}"
        )
    if len(set(names)) != len(names):
        raise EdgevlaError(f"--cameras: '{text}' names a camera twice")
    if size < 16:
        raise EdgevlaError("--size must be >= 16")
    return tuple(names), tuple(sizes)


def policy_cameras(
    args: argparse.Namespace, policy: str | Path | None
) -> tuple[tuple[str, ...], tuple[tuple[str, int], ...]]:
    """`--cameras` when given, else those the policy was trained on (its record), else front;
    `policy` may be anything `--policy` takes (a remote or a file has no record)."""
    from edgevla.sim.evaluate import trained_cameras

    if args.cameras is not None:
        return parse_cameras(args.cameras, args.size)
    if args.size < 16:
        raise EdgevlaError("--size must be >= 16")
    return (policy is not None and trained_cameras(policy)) or (("front",), ())


def world_from_args(args: argparse.Namespace) -> SimWorld:
    cameras, sizes = parse_cameras(args.cameras, args.size)
    if args.fps <= 0:
        raise EdgevlaError("--fps must be positive")
    return SimWorld(SimConfig.square(args.task, args.fps, cameras, args.size, sizes))


def configure(parser: argparse.ArgumentParser) -> None:
    add_world_arguments(parser)
    parser.add_argument("--seed", type=int, default=0, help="first episode seed")
    parser.add_argument(
        "--socket", type=Path, default=None, help=f"frame socket (default {default_socket()})"
    )
    parser.add_argument("--duration", type=float, default=None, help="stop after S seconds (default: Ctrl-C)")
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
    world = world_from_args(args)
    socket_path = args.socket or default_socket()
    if args.bus:
        return _serve_bus(args, world, socket_path)
    with SimSession(world, socket_path, ExpertDriven(world, args.seed)) as session:
        print(f"ready {socket_path}", flush=True)
        started = time.monotonic()
        while args.duration is None or time.monotonic() - started < args.duration:
            time.sleep(0.2)
    print(
        f"served {session.ticks} ticks, render {1000 * session.render_s / max(1, session.ticks):.1f} ms/tick"
    )
    return 0


def _serve_bus(args: argparse.Namespace, world: SimWorld, socket_path: Path) -> int:
    """Episodes back to back: a new scene every --episode-seconds, or 1 s after a success."""
    from edgevla.sim.bus import serve_arms
    from edgevla.sim.joints import SIM_CALIBRATION_DIR

    with (
        serve_arms(world, follower_link=args.follower_link, leader_link=args.leader_link) as arms,
        SimSession(world, socket_path, arms.follow) as session,
    ):
        print(f"ready frames {socket_path}", flush=True)
        print(f"follower {arms.follower_port}  leader {arms.leader_port}", flush=True)
        print(f"calibration: EDGEVLA_CALIBRATION_DIR={SIM_CALIBRATION_DIR}", flush=True)
        started, seed = time.monotonic(), args.seed
        while args.duration is None or time.monotonic() - started < args.duration:
            episode = session.change_scene(lambda s=seed: arms.start_episode(s), cameras=())
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
