"""`edgevla sim demos`: record scripted-expert demonstrations into a LeRobotDataset."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from edgevla.cli.args import add_sim_world, sim_world


def configure(parser: argparse.ArgumentParser) -> None:
    add_sim_world(parser)
    parser.add_argument(
        "--dataset", type=Path, required=True, help="dataset directory (appended to if it exists)"
    )
    parser.add_argument("--episodes", type=int, default=50, help="episodes the dataset holds when done")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode")
    parser.add_argument(
        "--episode-seconds", type=float, default=5.0, help="length of each episode (default 5)"
    )
    parser.add_argument(
        "--no-bus",
        action="store_true",
        help="arms in-process instead of virtual servos on ptys + the real driver (faster, no bytes)",
    )
    parser.add_argument(
        "--near-miss",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="fraction of episodes (0..1) that start with the arm stopped 2-5 cm beside the named cube "
        "(down at its top or hovering), so the demo is the expert correcting a near miss (default 0)",
    )
    parser.add_argument("--vcodec", default="libsvtav1", choices=["libsvtav1", "libx264"])
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from edgevla.cli.args import check_number
    from edgevla.errors import EdgevlaError
    from edgevla.sim.demos import DemoConfig, record_demos

    world = sim_world(args)  # validates --cameras/--size/--fps the same way as `sim serve`
    check_number("--episode-seconds", args.episode_seconds, above=0)
    if args.episodes < 1 or args.fps != int(args.fps):
        raise EdgevlaError("--episodes must be positive and --fps a whole number")
    if not 0.0 <= args.near_miss <= 1.0:
        raise EdgevlaError(f"--near-miss is a fraction of episodes, 0..1; got {args.near_miss}")
    config = DemoConfig(
        task=args.task,
        episodes=args.episodes,
        seed=args.seed,
        fps=int(args.fps),
        episode_seconds=args.episode_seconds,
        cameras=world.config.cameras,
        size=args.size,
        sizes=world.config.sizes,
        codec=args.vcodec,
        bus=not args.no_bus,
        near_miss=args.near_miss,
    )
    started = time.monotonic()
    recorded = record_demos(config, args.dataset, log=print)
    print(f"{args.dataset}: {recorded} episode(s) recorded in {time.monotonic() - started:.0f} s")
    return 0
