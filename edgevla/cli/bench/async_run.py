"""`edgevla bench async`: `edgevla run` on a virtual arm, as a user runs it, and its timing figures.

The virtual servo firmware is served from its own process (`edgevla firmware serve`) so that it
does not share the control loop's interpreter; `edgevla run` then drives it with the policy for
`--duration` seconds and its `--stats-json` is reported, with the machine's load next to it
(a busy machine shows in the period percentiles, not in the code). With the dual-system flags
(`--vlm-hz`, `--prefix-every`) the same run reports both systems' rates, the context's age at use
and the per-tick latency next to those of a single-rate run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from edgevla.cli.args import add_cameras, add_dual, add_fps, add_merge
from edgevla.errors import EdgevlaError
from edgevla.runtime.stats import RATE_FIGURES

FIGURES = (
    "period_ms_nominal",
    "period_ms_p50",
    "period_ms_p99",
    "period_ms_max",
    "period_ms_jitter",
    "ticks",
    "ticks_waiting_first_chunk",
    "ticks_starved",
    "ticks_overrun",
    "actions_late",
    "chunks",
    "chunk_ms_p50",
    "chunk_ms_p90",
    "bus_errors",
    *RATE_FIGURES,  # both systems (single-rate: one System 2 pass per chunk)
)


def configure(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--policy", help="checkpoint, artifact, replay .npz or ws:// server")
    source.add_argument("--preset", help="a random-weight model preset (tiny, small), cameras synthetic")
    parser.add_argument("--robot", default="so101_follower")
    add_cameras(parser)
    add_fps(parser, default=50.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--task", default="pick the cube")
    add_merge(parser)
    add_dual(parser)
    parser.add_argument("--worker", default="process", choices=["thread", "process", "remote"])
    parser.add_argument("--realtime", action="store_true", help="real-time priority for the loop thread")
    parser.add_argument(
        "--drop", type=float, default=0.0, help="firmware: probability a status packet is lost"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


def _edgevla(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgevla", *args]


def _preset_checkpoint(name: str, folder: Path) -> tuple[str, list[str]]:
    """Write a preset checkpoint with `edgevla model init`; its path and its cameras as synthetic sources."""
    out = folder / name
    for command in (
        ("model", "init", "--preset", name, "--out", str(out)),
        ("model", "info", "--policy", str(out), "--json"),
    ):
        result = subprocess.run(_edgevla(*command), capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise EdgevlaError(f"cannot make the '{name}' preset: {result.stderr.strip()[-300:]}")
    cameras = json.loads(result.stdout)["cameras"]
    return str(out), [f"{c}=synthetic?width=160&height=120" for c in cameras]


def run(args: argparse.Namespace) -> int:
    from edgevla.firmware.launch import served_firmware

    with tempfile.TemporaryDirectory(prefix="edgevla-bench-") as tmp:
        link, stats_path = Path(tmp) / "arm", Path(tmp) / "stats.json"
        policy, cameras = args.policy, args.camera
        if args.preset:
            policy, preset_cameras = _preset_checkpoint(args.preset, Path(tmp))
            cameras = cameras or preset_cameras
        with served_firmware(args.robot, "--drop", str(args.drop), link=link):
            command = _edgevla(
                "run", "--robot", args.robot, "--port", str(link), "--policy", policy,
                "--task", args.task, "--fps", str(args.fps), "--duration", str(args.duration),
                "--merge", args.merge, "--worker", args.worker, "--stats-json", str(stats_path),
                "--stats-every", str(max(args.duration, 1.0)),
                # a benchmark measures starvation and a slow loop rather than stopping on them
                "--max-starved-seconds", str(args.duration + 60), "--max-slow-seconds", str(args.duration + 60),
            )  # fmt: skip
            for camera in cameras:
                command += ["--camera", camera]
            if args.realtime:
                command.append("--realtime")
            for flag, value in (
                ("--vlm-hz", args.vlm_hz),
                ("--prefix-every", args.prefix_every),
                ("--max-context-age", args.max_context_age),
            ):
                if value is not None:
                    command += [flag, str(value)]
            load_before = os.getloadavg()[0]
            result = subprocess.run(command, capture_output=True, text=True, timeout=args.duration + 180)
            if result.returncode != 0 or not stats_path.exists():
                raise EdgevlaError(f"edgevla run failed: {result.stderr.strip()[-400:]}")
            stats = json.loads(stats_path.read_text())
    figures = {key: stats[key] for key in FIGURES}
    figures.update(
        policy=args.policy or f"preset {args.preset}",
        fps=args.fps,
        duration_s=args.duration,
        worker=args.worker,
        realtime=args.realtime,
        cpu_count=os.cpu_count(),
        load_average_1min=round(max(load_before, os.getloadavg()[0]), 2),
        machine=platform.machine(),
        bus=stats.get("bus", {}),
    )
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:>26}  {value:.3f}" if isinstance(value, float) else f"{key:>26}  {value}")
    return 0
