"""`edgevla record`: teleoperate a leader/follower pair and record episodes into a LeRobotDataset v3.0."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edgevla.cli.args import add_arm_pair, add_cameras, add_fps


def configure(parser: argparse.ArgumentParser) -> None:
    add_arm_pair(parser)
    add_cameras(parser)
    parser.add_argument(
        "--dataset",
        type=Path,
        required=True,
        help="dataset directory (created, or appended to with --resume)",
    )
    parser.add_argument(
        "--task", required=True, help="instruction stored with every frame, e.g. 'pick the red cube'"
    )
    parser.add_argument(
        "--episodes", type=int, default=1, help="episodes the dataset holds when done (default 1)"
    )
    parser.add_argument(
        "--episode-seconds", type=float, default=30.0, help="length of an episode (default 30)"
    )
    parser.add_argument(
        "--reset-seconds",
        type=float,
        default=10.0,
        help="unrecorded teleoperation between episodes (default 10)",
    )
    add_fps(parser, "frames per second", 30, whole=True)
    parser.add_argument(
        "--camera-timeout",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="stop recording when a camera gives no new image this long (default 1); finished "
        "episodes are kept",
    )
    parser.add_argument(
        "--resume", action="store_true", help="repair an interrupted dataset and append to it"
    )
    parser.add_argument("--no-keyboard", action="store_true", help="no raw-tty episode keys (for scripts)")
    parser.add_argument(
        "--vcodec",
        default="libsvtav1",
        choices=["libsvtav1", "libx264"],
        help="video encoder (default libsvtav1 = AV1 like lerobot)",
    )
    parser.add_argument(
        "--camera-size", default="640x480", metavar="WxH", help="default camera size (default 640x480)"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON report at the end")
    parser.set_defaults(handler=run)


def _validate(args: argparse.Namespace) -> tuple[int, int]:
    from edgevla.cli.args import check_number
    from edgevla.errors import EdgevlaError

    if args.episodes < 1 or args.fps < 1:
        raise EdgevlaError("--episodes and --fps must be positive")
    check_number("--episode-seconds", args.episode_seconds, above=0)
    check_number("--reset-seconds", args.reset_seconds, minimum=0)
    check_number("--camera-timeout", args.camera_timeout, above=0)
    try:
        width, height = (int(v) for v in args.camera_size.lower().split("x"))
    except ValueError:
        raise EdgevlaError(
            f"--camera-size '{args.camera_size}': expected WIDTHxHEIGHT, e.g. 640x480"
        ) from None
    return width, height


def run(args: argparse.Namespace) -> int:
    from edgevla.cameras import open_cameras, parse_camera_spec
    from edgevla.dataset import VideoConfig
    from edgevla.record.arms import open_arm_pair
    from edgevla.record.keyboard import HELP
    from edgevla.record.recorder import RecordConfig, Recorder
    from edgevla.signals import stop_on_signals

    width, height = _validate(args)
    interrupts = stop_on_signals()
    specs = [parse_camera_spec(text, width, height, args.fps) for text in args.camera]
    config = RecordConfig(
        dataset=args.dataset,
        task=args.task,
        fps=args.fps,
        episodes=args.episodes,
        episode_seconds=args.episode_seconds,
        reset_seconds=args.reset_seconds,
        resume=args.resume,
        keyboard=not args.no_keyboard,
        video=VideoConfig(codec=args.vcodec),
        camera_timeout_s=args.camera_timeout,
    )
    cameras = open_cameras(specs)
    try:
        with open_arm_pair(
            args.robot, args.leader_port, args.follower_port, args.leader_id, args.follower_id
        ) as (leader, follower):
            config.robot_type = follower.name
            recorder = Recorder(
                config,
                leader,
                follower,
                cameras,
                log=_say,
                interrupted=lambda: interrupts.stop_requested,
            )
            if config.keyboard and sys.stdin.isatty():
                _say(HELP)
            with interrupts.deferred():  # the recorder stops between ticks, then we end as interrupted
                report = recorder.run()
    finally:
        for camera in cameras:
            camera.stop()
    if args.json:
        print(json.dumps({"episodes": [vars(e) for e in report.episodes], "save_ms": report.save_ms}))
    _say(f"{args.dataset}: {len(report.episodes)} episode(s) recorded this session")
    if report.fault is not None:
        from edgevla.errors import EdgevlaError

        kept = len(report.episodes)
        raise EdgevlaError(
            f"{report.fault}; the {kept} episode(s) finished before it are saved in {args.dataset}"
        )
    return 0


def _say(line: str) -> None:
    print(line, flush=True)
