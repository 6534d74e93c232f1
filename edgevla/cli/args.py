"""Argument groups that several commands share, and the values they turn into.

One function per group, so a flag has the same name, default, help and checks in every command
that takes it. Command modules import their shared arguments from here and never from each
other; what a command does beyond its arguments lives in the library. Imports of the library
stay inside the functions: `edgevla --help` and the robot-side commands load only what they use.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from edgevla.errors import EdgevlaError

if TYPE_CHECKING:
    from edgevla.hosting.control import PolicyChoice
    from edgevla.runtime.dual import DualConfig
    from edgevla.sim.world import SimWorld

SimCameras = tuple[tuple[str, ...], tuple[tuple[str, int], ...]]  # names, (name, own size)

# --- robot and servo bus ----------------------------------------------------------------------


def add_robot_port(parser: argparse.ArgumentParser, without_port: str | None = None) -> None:
    """--robot, --port, --baud. With `without_port` (what runs when --port is left out) both are
    optional and --robot defaults to so101_follower."""
    parser.add_argument(
        "--robot",
        required=without_port is None,
        default=None if without_port is None else "so101_follower",
        help="robot name (so101_follower, koch_leader, ...) or YAML file"
        + ("" if without_port is None else " (default so101_follower)"),
    )
    parser.add_argument(
        "--port",
        required=without_port is None,
        help="serial device (/dev/ttyACM0, /dev/serial/by-id/...), pyserial URL or virtual firmware pty"
        + ("" if without_port is None else f" (default: {without_port})"),
    )
    parser.add_argument("--baud", type=int, help="bus baud rate (default: the robot definition's)")


ARM_ID_HELP = (
    "which arm of this robot type (default: the robot name); its calibration is lerobot's "
    "<calibration>/robots|teleoperators/<robot>/<ID>.json (docs/HARDWARE.md)"
)


def add_arm_id(parser: argparse.ArgumentParser) -> None:
    """--id: which calibrated arm of the robot type (`edgevla calibrate --id`)."""
    parser.add_argument("--id", dest="arm_id", help=ARM_ID_HELP)


def add_arm_pair(parser: argparse.ArgumentParser) -> None:
    """A leader/follower pair: --robot PAIR, --leader-port, --follower-port, --leader-id, --follower-id."""
    parser.add_argument(
        "--robot", default="so101", help="arm pair: so101 (so101_leader + so101_follower), koch, ..."
    )
    parser.add_argument(
        "--leader-port", required=True, help="serial port of the leader arm, e.g. /dev/ttyACM0"
    )
    parser.add_argument(
        "--follower-port", required=True, help="serial port of the follower arm, e.g. /dev/ttyACM1"
    )
    parser.add_argument("--leader-id", help="the leader arm's id: " + ARM_ID_HELP)
    parser.add_argument("--follower-id", help="the follower arm's id: " + ARM_ID_HELP)


def warn_latency(port: str) -> None:
    from edgevla.drivers.latency import check_latency

    report = check_latency(port)
    if report and report.too_high:
        print(f"warning: {report.advice()}", file=sys.stderr)


# --- cameras ----------------------------------------------------------------------------------


def add_cameras(parser: argparse.ArgumentParser) -> None:
    """--camera NAME=SOURCE, repeatable: what the robot sees, as observation.images.NAME."""
    parser.add_argument(
        "--camera",
        action="append",
        default=[],
        metavar="NAME=SOURCE",
        help="camera read as observation.images.NAME: synthetic, /dev/videoN, N, opencv:PATH, sim:NAME "
        "(options ?width=W&height=H&fps=F); repeatable",
    )


def add_sim_cameras(parser: argparse.ArgumentParser, default: str | None = "front", size: int = 96) -> None:
    """--cameras and --size of the simulated cameras; `default` None: those the policy was trained on."""
    from edgevla.sim.render import CAMERAS

    parser.add_argument(
        "--cameras",
        default=default,
        help=f"comma list of {', '.join(CAMERAS)}, each NAME or NAME:SIZE (default "
        + (default or "the cameras the policy was trained on, at its demos' size; else front")
        + ")",
    )
    parser.add_argument(
        "--size", type=int, default=size, help=f"camera image width and height (default {size})"
    )


def sim_cameras(args: argparse.Namespace, policy: str | Path | None = None) -> SimCameras:
    """`--cameras` when given, else those `policy` was trained on (its record), else front;
    `policy` may be anything `--policy` takes (a remote or a file has no record)."""
    if args.cameras is not None:
        return _parse_sim_cameras(args.cameras, args.size)
    if args.size < 16:
        raise EdgevlaError("--size must be >= 16")
    from edgevla.evaluation.evaluate import trained_cameras

    return (policy is not None and trained_cameras(policy)) or (("front",), ())


def _parse_sim_cameras(text: str, size: int) -> SimCameras:
    """`--cameras front,wrist:64` -> the camera names and the (name, size) of those given a size
    of their own (a near camera costs more to render per pixel: see docs/SIM.md)."""
    from edgevla.sim.render import CAMERAS

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


# --- the simulated world ----------------------------------------------------------------------


def add_sim_world(parser: argparse.ArgumentParser) -> None:
    """--task, --cameras, --size and --fps of a simulated world."""
    from edgevla.sim.tasks import TASKS

    parser.add_argument("--task", default="reach", choices=sorted(TASKS))
    add_sim_cameras(parser)
    add_fps(parser, "simulation and camera rate")


def sim_world(args: argparse.Namespace) -> SimWorld:
    from edgevla.sim.world import SimConfig, SimWorld

    cameras, sizes = sim_cameras(args)
    if args.fps <= 0:
        raise EdgevlaError("--fps must be positive")
    return SimWorld(SimConfig.square(args.task, args.fps, cameras, args.size, sizes))


# --- policy and worker ------------------------------------------------------------------------


def add_policy_worker(parser: argparse.ArgumentParser, without_policy: str | None = None) -> None:
    """--policy and where it runs: --worker, --token, --jpeg, --worker-threads. With
    `without_policy` (what runs when --policy is left out) --policy is optional."""
    from edgevla.hosting import TRANSPORTS

    parser.add_argument(
        "--policy",
        required=without_policy is None,
        help="checkpoint, exported artifact, replay .npz, or ws://HOST:PORT of `edgevla serve`"
        + ("" if without_policy is None else f" (default: {without_policy})"),
    )
    parser.add_argument(
        "--worker",
        choices=TRANSPORTS,
        help="where a local policy runs: thread, or process (default: keeps the model off the loop's "
        "GIL); ws:// is remote",
    )
    parser.add_argument("--token", help="token of the policy server")
    parser.add_argument("--jpeg", action="store_true", help="send camera images JPEG-compressed (remote)")
    parser.add_argument(
        "--worker-threads", type=int, help="compute threads of a worker process (default: all cores but one)"
    )
    add_steps(parser)


def add_steps(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--steps",
        type=int,
        help="sampling steps of a flow or diffusion head, 1..10 (default: the policy's own; flow trained "
        "with head.time_sampling=high-noise is the one made for 1-2)",
    )


def policy_choice(args: argparse.Namespace, source: str | Path | None = None) -> PolicyChoice:
    """The policy `add_policy_worker`'s arguments name; `source` in place of a --policy left out."""
    from edgevla.hosting.control import PolicyChoice

    return PolicyChoice(
        str(source or args.policy),
        worker=args.worker,
        token=args.token,
        jpeg=args.jpeg,
        threads=args.worker_threads,
        steps=args.steps,
    )


def add_dual(parser: argparse.ArgumentParser) -> None:
    """--vlm-hz, --prefix-every, --max-context-age: the dual system (docs/DUAL.md); without them a
    chunk is one full pass over the frames and the state (single-rate)."""
    group = parser.add_argument_group(
        "dual system (docs/DUAL.md; default: single-rate, a full pass per chunk)"
    )
    group.add_argument(
        "--vlm-hz",
        type=float,
        metavar="F",
        help="System 2 (the VLM over the cameras and the task) in its own thread on the newest frames, "
        "at most F times a second; each chunk then runs System 1 only: the current state against "
        "System 2's newest context",
    )
    group.add_argument(
        "--prefix-every",
        type=int,
        metavar="N",
        help="or: System 2 on the request's own frames before every N-th chunk, System 1 alone for the others",
    )
    group.add_argument(
        "--max-context-age",
        type=float,
        metavar="S",
        help="never compute a chunk from frames more than S s older than its state: the request is "
        "held (counted) and asked again (default 1, or two System 2 periods when longer)",
    )


def dual_config(args: argparse.Namespace) -> DualConfig | None:
    """The dual system `add_dual`'s arguments ask for; None: single-rate."""
    from edgevla.runtime.dual import DualConfig

    if args.vlm_hz is None and args.prefix_every is None:
        if args.max_context_age is not None:
            raise EdgevlaError("--max-context-age needs --vlm-hz F or --prefix-every N (the dual system)")
        return None
    return DualConfig(args.vlm_hz, args.prefix_every, args.max_context_age)


# --- rate and duration ------------------------------------------------------------------------


def add_fps(
    parser: argparse.ArgumentParser, what: str = "control rate", default: float = 30.0, whole: bool = False
) -> None:
    """--fps; `whole` for a rate that must be a whole number (a dataset's frames per second)."""
    parser.add_argument(
        "--fps", type=int if whole else float, default=default, help=f"{what} (default {default:g})"
    )


def add_duration(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, help="stop after S seconds (default: until Ctrl-C)")


def add_merge(parser: argparse.ArgumentParser) -> None:
    from edgevla.runtime.merging import STRATEGIES

    parser.add_argument(
        "--merge", choices=STRATEGIES, default="blend", help="how action chunks join (default blend)"
    )


# --- numbers ----------------------------------------------------------------------------------
# argparse's `type=float` takes "nan" and "inf", and every comparison with NaN is false, so a
# check like `value <= 0` lets it through (`run --duration nan` ran two ticks and exited 0).


def check_number(
    flag: str,
    value: float | None,
    *,
    above: float | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
) -> None:
    """Raise one line unless `value` (None: the flag was not given) is finite, > `above`,
    >= `minimum` and <= `maximum` (each bound only when set)."""
    if value is None:
        return
    fits = (
        math.isfinite(value)
        and (above is None or value > above)
        and (minimum is None or value >= minimum)
        and (maximum is None or value <= maximum)
    )
    if not fits:
        bounds = [
            f"> {above:g}" if above is not None else "",
            f">= {minimum:g}" if minimum is not None else "",
        ]
        bounds.append(f"<= {maximum:g}" if maximum is not None else "")
        wanted = " and ".join(bound for bound in bounds if bound)
        raise EdgevlaError(f"{flag} must be a finite number{' ' + wanted if wanted else ''}, got {value:g}")
