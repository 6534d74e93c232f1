"""`edgevla bench record`: record against the virtual arms with synthetic cameras and report
late/dropped frames, camera frame age, and what saving an episode costs the loop and the disk."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from edgevla.cli.args import add_fps


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=60.0, help="total recording time (default 60)")
    parser.add_argument("--episode-seconds", type=float, default=20.0, help="episode length (default 20)")
    add_fps(parser, "frames per second", 30, whole=True)
    parser.add_argument("--cameras", type=int, default=2, help="synthetic cameras (default 2)")
    parser.add_argument("--size", default="640x480", help="camera WxH (default 640x480)")
    parser.add_argument("--vcodec", default="libsvtav1", choices=["libsvtav1", "libx264"])
    parser.add_argument("--robot", default="so101")
    parser.add_argument("--dataset", type=Path, help="keep the dataset here (default: a temporary folder)")
    parser.add_argument("--plot", type=Path, help="write a PNG of per-frame lateness")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="edgevla-bench-record-") as scratch:
        dataset = args.dataset or Path(scratch) / "dataset"
        figures = measure(args, Path(scratch), dataset)
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:<32} {value}")
    return 0


def measure(args: argparse.Namespace, scratch: Path, dataset: Path) -> dict:
    import os

    import numpy as np

    from edgevla.cameras import open_cameras, parse_camera_spec
    from edgevla.dataset import DatasetReader, VideoConfig
    from edgevla.dataset.check import check
    from edgevla.record.arms import open_arm_pair
    from edgevla.record.recorder import RecordConfig, Recorder
    from edgevla.record.virtual_arms import virtual_arm_pair

    load_before = os.getloadavg()[0]
    width, height = (int(v) for v in args.size.split("x"))
    episodes = max(1, round(args.seconds / args.episode_seconds))
    config = RecordConfig(
        dataset=dataset,
        task="benchmark",
        fps=args.fps,
        episodes=episodes,
        episode_seconds=args.episode_seconds,
        reset_seconds=0,
        keyboard=False,
        video=VideoConfig(codec=args.vcodec),
    )
    names = [f"cam{i}" for i in range(args.cameras)]
    cameras = open_cameras([parse_camera_spec(f"{n}=synthetic", width, height, args.fps) for n in names])
    try:
        with (
            virtual_arm_pair(args.robot, scratch) as (leader_port, follower_port),
            open_arm_pair(args.robot, leader_port, follower_port) as (leader, follower),
        ):
            report = Recorder(config, leader, follower, cameras, log=lambda _: None).run()
    finally:
        for camera in cameras:
            camera.stop()
    ds = DatasetReader(dataset)
    ticks = ds.columns["timing.tick"]
    intervals_ms = np.concatenate(
        [np.diff(ds.episode_columns(e)["timing.tick"]) * 1000 for e in range(ds.num_episodes)]
    )
    ages_ms = np.concatenate(
        [(ticks - ds.columns[f"timing.camera.{n}"]) * 1000 for n in names] or [np.zeros(1)]
    )
    figures = {
        "machine_cpus": _cpus(),
        "load_avg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],  # before, after
        "cameras": f"{args.cameras} x synthetic {width}x{height}",
        "fps": args.fps,
        "codec": args.vcodec,
        "episodes": ds.num_episodes,
        "frames": len(ds),
        "frames_expected": int(round(episodes * args.episode_seconds * args.fps)),
        "late_frames": sum(e.late for e in report.episodes),
        "dropped_frames": sum(e.dropped for e in report.episodes),
        "repeated_camera_frames": sum(e.repeated_camera_frames for e in report.episodes),
        "max_lateness_ms": round(max(e.max_lateness_ms for e in report.episodes), 2),
        "frame_interval_ms_p50": round(float(np.percentile(intervals_ms, 50)), 2),
        "frame_interval_ms_p99": round(float(np.percentile(intervals_ms, 99)), 2),
        "frame_interval_ms_max": round(float(intervals_ms.max()), 2),
        "camera_frame_age_ms_p50": round(float(np.percentile(ages_ms, 50)), 2),
        "camera_frame_age_ms_p99": round(float(np.percentile(ages_ms, 99)), 2),
        "save_loop_handoff_ms_max": round(max(e.handoff_ms for e in report.episodes), 3),
        "save_until_durable_ms": [round(ms, 1) for ms in report.save_ms],
        "dataset_check_ok": check(dataset).ok,
        "dataset_mb": round(sum(p.stat().st_size for p in dataset.rglob("*") if p.is_file()) / 1e6, 1),
    }
    if args.plot:
        _plot(args.plot, ds, args.fps)
        figures["plot"] = str(args.plot)
    return figures


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


def _plot(path: Path, ds, fps: int) -> None:
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 3.5))
    offset = 0.0
    for episode in range(ds.num_episodes):
        ticks = ds.episode_columns(episode)["timing.tick"]
        axis.plot(offset + ticks[1:], np.diff(ticks) * 1000, lw=0.7, color="tab:blue")
        if episode:
            axis.axvline(offset, color="grey", ls="--", lw=0.8)
        offset += ticks[-1] + 1 / fps
    axis.axhline(1000 / fps, color="red", lw=0.8, label=f"{fps} fps period")
    axis.set_xlabel(
        "recorded time (s); dashed = episode boundary (previous episode saved before the next starts)"
    )
    axis.set_ylabel("frame interval (ms)")
    axis.legend(loc="upper right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
