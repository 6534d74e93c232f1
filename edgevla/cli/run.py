"""`edgevla run`: drive a robot with a policy, asynchronously, at a fixed control rate."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from edgevla.cli.args import (
    add_arm_id,
    add_cameras,
    add_dual,
    add_duration,
    add_fps,
    add_merge,
    add_policy_worker,
    add_robot_port,
    dual_config,
    policy_choice,
)
from edgevla.errors import EdgevlaError
from edgevla.signals import Interrupts, stop_on_signals

log = logging.getLogger("edgevla.runtime")


def configure(parser: argparse.ArgumentParser) -> None:
    add_robot_port(parser)
    add_arm_id(parser)
    add_policy_worker(parser)
    parser.add_argument("--task", default="", help="the instruction given to the policy")
    add_cameras(parser)
    add_fps(parser)
    add_duration(parser)
    parser.add_argument("--stats-json", type=Path, help="write the run's statistics here at the end")
    parser.add_argument(
        "--plot", type=Path, help="save a PNG of the control periods and queue depth at the end"
    )
    add_merge(parser)
    add_dual(parser)
    parser.add_argument(
        "--request-at",
        type=int,
        help="ask for the next chunk at this queue depth (default: adapts to latency)",
    )
    parser.add_argument(
        "--realtime", action="store_true", help="run the control loop thread with real-time priority (Linux)"
    )
    parser.add_argument(
        "--stats-every", type=float, default=2.0, help="seconds between live statistics lines"
    )
    parser.add_argument(
        "--max-failed-ticks",
        type=int,
        default=5,
        help="stop the arm after this many ticks in a row whose servo read failed (default 5)",
    )
    parser.add_argument(
        "--max-slow-seconds",
        type=float,
        default=3.0,
        help="stop the arm after the loop ran below 90%% of --fps this long (default 3)",
    )
    parser.add_argument(
        "--max-starved-seconds",
        type=float,
        default=1.0,
        help="stop the arm after this long without an action from the policy (default 1)",
    )
    parser.set_defaults(handler=run)


def _validate(args: argparse.Namespace) -> None:
    from edgevla.cli.args import check_number

    check_number("--fps", args.fps, above=0, maximum=1000)
    check_number("--duration", args.duration, above=0)
    check_number("--stats-every", args.stats_every, above=0)
    check_number("--max-failed-ticks", args.max_failed_ticks, minimum=1)
    check_number("--max-slow-seconds", args.max_slow_seconds, above=0)
    check_number("--max-starved-seconds", args.max_starved_seconds, above=0)
    check_number("--worker-threads", args.worker_threads, minimum=1)


def run(args: argparse.Namespace) -> int:
    from edgevla.drivers.robot import Robot
    from edgevla.hosting.control import control
    from edgevla.runtime.loop import LoopConfig
    from edgevla.runtime.task import check_task
    from edgevla.runtime.watchdog import FaultLimits

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    _validate(args)
    dual = dual_config(args)
    interrupts = stop_on_signals()
    choice = policy_choice(args)
    limits = FaultLimits(args.max_failed_ticks, args.max_slow_seconds, args.max_starved_seconds)
    config = LoopConfig(
        fps=args.fps,
        task=args.task,
        merge=args.merge,
        request_at=args.request_at,
        realtime=args.realtime,
        limits=limits,
        dual=dual,
    )
    silent: list[str] = []
    # leaving the inner block stops the loop, the worker and the cameras; the outer one then stops
    # the robot as its definition says (torque off by default)
    with Robot(args.robot, args.port, baudrate=args.baud, arm_id=args.arm_id) as robot:
        with control(robot, args.camera, choice, config) as hosted:
            spec = hosted.policy.spec
            check_task(args.task, spec, args.policy)
            if spec.fps and abs(spec.fps - args.fps) > 1e-6:
                log.warning(
                    "policy '%s' was trained at %g fps, running at %g: its motions play %.2fx as fast",
                    spec.name,
                    spec.fps,
                    args.fps,
                    args.fps / spec.fps,
                )
            loop = hosted.start()
            print(
                f"running '{spec.name}' on {args.robot} at {args.fps:g} fps "
                f"({choice.transport} worker, {args.merge}"
                f"{'' if dual is None else '; ' + dual.describe()}); Ctrl-C stops",
                file=sys.stderr,
            )
            _report_until_done(loop, robot, args.duration, args.stats_every, interrupts)
        if loop.fault is not None and loop.fault.kind == "bus":
            silent = _silent_motors(robot)
            robot.disconnect(unreachable=silent)  # torque off only where a servo still answers
    loop.stats.driver = _driver_counters(robot)
    summary = loop.stats.summary()
    if loop.fault is not None:
        summary["fault"] = loop.fault.as_dict()
    if args.stats_json:
        args.stats_json.write_text(json.dumps(summary, indent=2))
    if args.plot:
        _plot(loop.stats, args.plot)
    print(loop.stats.line(), file=sys.stderr)
    if loop.fault is not None:
        raise EdgevlaError(_safe_stop_message(loop.fault, robot, silent))
    return 130 if interrupts.stop_requested else 0  # stopped by Ctrl-C or SIGTERM, like record and train


def _silent_motors(robot) -> list[str]:
    try:
        return robot.silent_motors()
    except EdgevlaError:  # the port itself is gone: nothing answers, nothing to spare
        return list(robot.joint_names)


def _safe_stop_message(fault, robot, silent: list[str]) -> str:
    """The one line that ends a run stopped by a fault: what failed and what the arm did."""
    ids = {m.name: m.id for m in robot.definition.motors}
    what = fault.message
    if silent:
        names = ", ".join(f"{name} (id {ids[name]})" for name in silent)
        what = f"servo {names} stopped answering: {fault.message}"
    answering = len(robot.joint_names) - len(silent)
    if robot.definition.on_disconnect != "torque_off":
        torque = "torque stays on (on_disconnect: hold)"
    elif silent:
        torque = f"torque is off on the {answering} servo(s) that answer"
    else:
        torque = "torque is off"
    return f"{what}; stopped: the arm held its last goal, {torque}"


def _report_until_done(loop, robot, duration: float | None, every: float, interrupts: Interrupts) -> None:
    """Main thread: print statistics and the loop's events until the time is up or Ctrl-C. The
    signal is polled, not raised here: raised inside the event queue's or the logger's lock, it
    would leave that lock held and the control loop thread blocked on it."""
    end = None if duration is None else time.monotonic() + duration
    next_line = time.monotonic() + every
    with interrupts.deferred(reraise=False):
        while (end is None or time.monotonic() < end) and not interrupts.stop_requested:
            time.sleep(0.05 if end is None else max(0.0, min(0.05, end - time.monotonic())))
            running = loop.running  # read first: the events of a loop that just stopped are all queued
            while not loop.events.empty():
                log.warning(loop.events.get())
            if not running:
                if loop.fault is not None:
                    return  # the caller stops the arm and says why
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
