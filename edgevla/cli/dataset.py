"""`edgevla dataset info|check|repair DIR`: summarise, validate or repair a LeRobotDataset v3.0."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _info(args: argparse.Namespace) -> int:
    from edgevla.dataset.corrections import corrections_summary, describe_corrections
    from edgevla.dataset.meta import load_episodes, load_info, load_tasks
    from edgevla.printable import printable

    info = load_info(args.dir)
    episodes = load_episodes(args.dir, info["features"])
    frames = sum(e.length for e in episodes)
    summary = {
        "dir": str(args.dir),
        "codebase_version": info["codebase_version"],
        "robot_type": info.get("robot_type"),
        "fps": info["fps"],
        "episodes": len(episodes),
        "frames": frames,
        "duration_s": round(frames / info["fps"], 2),
        "tasks": load_tasks(args.dir),
        "features": {
            k: {"dtype": f["dtype"], "shape": list(f["shape"])} for k, f in info["features"].items()
        },
        "recording": {  # per-episode counters: totals, or the maximum for maxima
            key: (max if "max" in key else sum)(e.extra[key] for e in episodes)
            for key in (episodes[0].extra if episodes else {})
            if not key.startswith("corrections/")
        },
        "corrections": corrections_summary(args.dir, info["features"], episodes),
    }
    for key, ft in info["features"].items():
        if ft["dtype"] == "video" and "info" in ft:
            summary["features"][key]["codec"] = ft["info"].get("video.codec")
    if args.json:
        print(json.dumps(summary))
        return 0
    robot = printable(str(summary["robot_type"]))
    print(f"{printable(summary['dir'])}: LeRobotDataset {summary['codebase_version']}, robot {robot}")
    print(f"  {len(episodes)} episodes, {frames} frames, {summary['duration_s']} s at {info['fps']} fps")
    print(f"  tasks: {'; '.join(printable(task) for task in summary['tasks']) or '-'}")
    for key, ft in summary["features"].items():
        codec = f" {ft['codec']}" if "codec" in ft else ""
        print(f"  {key:<32} {ft['dtype']:<8} {ft['shape']}{codec}")
    for key, total in summary["recording"].items():
        print(f"  {key}: {total:g} ({'max' if 'max' in key else 'total'} over all episodes)")
    if summary["corrections"]:
        for line in describe_corrections(summary["corrections"]):
            print(f"  {line}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from edgevla.dataset.check import check

    report = check(args.dir)
    if args.json:
        print(
            json.dumps(
                {
                    "ok": report.ok,
                    "errors": report.errors,
                    "warnings": report.warnings,
                    "episodes": report.episodes,
                    "frames": report.frames,
                }
            )
        )
    else:
        for line in report.errors:
            print(f"error: {line}", file=sys.stderr)
        for line in report.warnings:
            print(f"warning: {line}", file=sys.stderr)
        verdict = "OK" if report.ok else f"{len(report.errors)} problem(s)"
        print(f"{args.dir}: {verdict} ({report.episodes} episodes, {report.frames} frames)")
    return 0 if report.ok else 1


def _repair(args: argparse.Namespace) -> int:
    from edgevla.dataset.repair import repair

    report = repair(args.dir)
    for index, why in report.dropped.items():
        print(f"dropped episode {index}: {why}", file=sys.stderr)
    print(f"{args.dir}: {report}")
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    for name, handler, text in (
        ("info", _info, "summary: episodes, frames, tasks, features, recording counters"),
        (
            "check",
            _check,
            "validate structure, parquet vs video frame counts, timestamp gaps (exit 1 on problems)",
        ),
        (
            "repair",
            _repair,
            "remove what a crash left of an unfinished episode, drop (and name) episodes whose files are "
            "damaged, renumber the rest, rebuild info/tasks/stats",
        ),
    ):
        sub = actions.add_parser(name, help=text, description=text)
        sub.add_argument("dir", type=Path, help="dataset directory")
        if name != "repair":
            sub.add_argument("--json", action="store_true", help="print one JSON object")
        sub.set_defaults(handler=handler)
