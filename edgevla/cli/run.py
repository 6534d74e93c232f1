"""`edgevla run`: drive a robot with a policy, asynchronously, at a fixed control rate."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from edgevla.errors import EdgevlaError
from edgevla.signals import Interrupts, stop_on_signals

log = logging.getLogger("edgevla.runtime")


def configure(parser: argparse.ArgumentParser) -> None:
    from edgevla.runtime.merging import STRATEGIES
    from edgevla.runtime.workers import TRANSPORTS

    parser.add_argument("--robot", required=True, help="robot definition, e.g. so101_follower")
    parser.add_argument(
        "--port", required=True, help="serial port of the servo bus (or a virtual firmware pty)"
    )
    parser.add_argument(
        "--policy",
        required=True,
        help="checkpoint, exported artifact, replay .npz, or ws://HOST:PORT of `edgevla serve`",
    )
    parser.add_argument("--task", default="", help="the instruction given to the policy")
    parser.add_argument(
        "--camera",
        action="append",
        default=[],
        metavar="NAME=SOURCE",
        help="camera: device index/path or synthetic",
    )
    parser.add_argument("--fps", type=float, default=30.0, help="control rate (default 30)")
    parser.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    parser.add_argument("--stats-json", type=Path, help="write the run's statistics here at the end")
    parser.add_argument(
        "--plot", type=Path, help="save a PNG of the control periods and queue depth at the end"
    )
    parser.add_argument(
        "--worker",
        choices=TRANSPORTS,
        help="where a local policy runs: thread, or process (default: keeps the model off the loop's GIL)",
    )
    parser.add_argument(
        "--merge", choices=STRATEGIES, default="blend", help="how chunks join (default blend)"
    )
    parser.add_argument(
        "--request-at",
        type=int,
        help="ask for the next chunk at this queue depth (default: adapts to latency)",
    )
    parser.add_argument(
        "--worker-threads", type=int, help="compute threads of a worker process (default: all cores but one)"
    )
    parser.add_argument("--token", help="token of the policy server")
    parser.add_argument("--jpeg", action="store_true", help="send camera images JPEG-compressed (remote)")
    parser.add_argument(
        "--realtime", action="store_true", help="run the control loop thread with real-time priority (Linux)"
    )
    parser.add_argument(
        "--stats-every", type=float, default=2.0, help="seconds between live statistics lines"
    )
    parser.set_defaults(handler=run)


def _open_cameras(specs: list[str]) -> list:
    if not specs:
        return []
    from edgevla.cameras import open_cameras, parse_camera_spec

    return open_cameras([parse_camera_spec(text) for text in specs])


def run(args: argparse.Namespace) -> int:
    from edgevla.drivers.robot import Robot
    from edgevla.runtime.loading import is_remote
    from edgevla.runtime.loop import ControlLoop, LoopConfig
    from edgevla.runtime.wire import Expectation
    from edgevla.runtime.workers import PolicyWorker, open_policy

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    interrupts = stop_on_signals()
    if args.duration is not None and args.duration <= 0:
        raise EdgevlaError(f"--duration must be positive, got {args.duration}")
    transport = args.worker or ("remote" if is_remote(args.policy) else "process")
    robot = Robot(args.robot, args.port)
    cameras, worker, loop = [], None, None
    robot.connect()
    try:
        cameras = _open_cameras(args.camera)
        expect = Expectation(
            state_dim=len(robot.joint_names),
            action_dim=len(robot.joint_names),
            cameras=tuple(c.name for c in cameras),
            fps=args.fps,
        )
        policy = open_policy(
            args.policy, transport, expect, token=args.token, jpeg=args.jpeg, threads=args.worker_threads
        )
        spec = policy.spec
        if spec.fps and abs(spec.fps - args.fps) > 1e-6:
            log.warning(
                "policy '%s' was trained at %g fps, running at %g: its motions play %.2fx as fast",
                spec.name,
                spec.fps,
                args.fps,
                args.fps / spec.fps,
            )
        worker = PolicyWorker(policy)
        config = LoopConfig(
            fps=args.fps, task=args.task, merge=args.merge, request_at=args.request_at, realtime=args.realtime
        )
        loop = ControlLoop(robot, worker, spec, config, tuple(cameras)).start()
        print(
            f"running '{spec.name}' on {args.robot} at {args.fps:g} fps ({transport} worker, {args.merge}); "
            "Ctrl-C stops",
            file=sys.stderr,
        )
        _report_until_done(loop, robot, args.duration, args.stats_every, interrupts)
    finally:
        if loop is not None:
            loop.stop()
        if worker is not None:
            worker.close()
        for camera in cameras:
            camera.stop()
        robot.disconnect()  # torque as the robot definition says
    loop.stats.driver = _driver_counters(robot)
    summary = loop.stats.summary()
    if args.stats_json:
        args.stats_json.write_text(json.dumps(summary, indent=2))
    if args.plot:
        _plot(loop.stats, args.plot)
    print(loop.stats.line(), file=sys.stderr)
    return 130 if interrupts.stop_requested else 0  # stopped by Ctrl-C or SIGTERM, like record and train


def _report_until_done(loop, robot, duration: float | None, every: float, interrupts: Interrupts) -> None:
    """Main thread: print statistics and the loop's events until the time is up or Ctrl-C. The
    signal is polled, not raised here: raised inside the event queue's or the logger's lock, it
    would leave that lock held and the control loop thread blocked on it."""
    end = None if duration is None else time.monotonic() + duration
    next_line = time.monotonic() + every
    with interrupts.deferred(reraise=False):
        while (end is None or time.monotonic() < end) and not interrupts.stop_requested:
            time.sleep(0.05 if end is None else max(0.0, min(0.05, end - time.monotonic())))
            while not loop.events.empty():
                log.warning(loop.events.get())
            if not loop.running:
                raise EdgevlaError("the control loop stopped unexpectedly; see the log above")
            if time.monotonic() >= next_line:
                loop.stats.driver = _driver_counters(robot)
                print(loop.stats.line(), file=sys.stderr, flush=True)
                next_line += every
    if interrupts.stop_requested:
        print("interrupted: stopping the arm", file=sys.stderr)


def _driver_counters(robot) -> dict:
    """The servo bus's own retry and failure counters (edgevla.drivers.bus.BusStats)."""
    stats = getattr(getattr(robot, "bus", None), "stats", None)
    return stats.as_dict() if stats is not None else {}


def _plot(stats, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = stats.summary()
    fig, (periods, depth) = plt.subplots(1, 2, figsize=(11, 3.8))
    counts = stats.period_ms.counts
    used = np.flatnonzero(counts)
    if len(used):
        edges = np.arange(used[0], used[-1] + 2) * stats.period_ms.resolution
        periods.stairs(counts[used[0] : used[-1] + 1], edges, fill=True)
    periods.set_yscale("log")
    periods.axvline(s["period_ms_nominal"], color="k", lw=0.8, ls="--", label="nominal")
    periods.axvline(s["period_ms_p99"], color="r", lw=0.8, label=f"p99 {s['period_ms_p99']:.2f} ms")
    periods.set(xlabel="control period (ms)", ylabel="ticks", title=f"{s['ticks']} ticks at {s['fps']:g} fps")
    periods.legend()
    times, depths = zip(*stats.depth, strict=True) if stats.depth else ((), ())
    depth.step(times, depths, where="post")
    depth.set(
        xlabel="time (s)",
        ylabel="queued actions",
        title=f"queue depth: starved {s['ticks_starved']} ticks, chunk p50 {s['chunk_ms_p50']:.0f} ms",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
