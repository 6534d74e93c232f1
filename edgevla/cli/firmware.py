"""`edgevla firmware serve`: a virtual arm's servo bus on a pseudo-terminal, until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from edgevla.errors import EdgevlaError


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    serve = actions.add_parser(
        "serve",
        help="serve a virtual robot's servos on a pty",
        description=(
            "Serve the virtual servo firmware of a robot on a pseudo-terminal that any serial "
            "program (vendor SDKs, lerobot, edgevla) can open. Prints 'ready PATH' on stdout "
            "once it answers, serves until SIGINT/SIGTERM, then removes the link. With --fresh, "
            "type 'plug JOINT' (or an index from 0) or 'plug all' on stdin to swap motors."
        ),
    )
    serve.add_argument(
        "--robot", required=True, help="robot name (so101_follower, koch_leader, ...) or YAML file"
    )
    serve.add_argument("--link", help="symlink to create for the pty (e.g. /tmp/edgevla-follower)")
    serve.add_argument("--baud", type=int, help="baud rate of the set-up servos (default: the robot's)")
    serve.add_argument(
        "--fresh", action="store_true", help="factory servos (id 1, factory baud), first one plugged"
    )
    serve.add_argument("--motors", type=int, help="only the first N motors of the robot")
    serve.add_argument(
        "--motion",
        nargs="+",
        metavar="MODE",
        help="what moves torque-off joints: 'hold' (default), 'sweep', or 'replay FILE.csv'",
    )
    serve.add_argument("--drop", type=float, default=0.0, help="probability that a status packet is lost")
    serve.add_argument(
        "--corrupt", type=float, default=0.0, help="probability that a status packet has a flipped byte"
    )
    serve.add_argument("--delay-ms", type=float, default=0.0, help="extra delay before every status packet")
    serve.add_argument("--silent-ids", default="", help="ids that never answer, e.g. 3,5")
    serve.add_argument(
        "--silent-after",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="--silent-ids answer for this long after the firmware starts, then fall silent",
    )
    serve.add_argument("--seed", type=int, help="seed of the fault injection")
    serve.add_argument("--tcp", metavar="HOST:PORT", help="also serve on TCP, for socket://HOST:PORT URLs")
    serve.add_argument(
        "--wire-time", action="store_true", help="replies also take the bytes' time at the bus baud rate"
    )
    serve.add_argument(
        "--no-baud-check", action="store_true", help="answer whatever baud rate the host sets on the pty"
    )
    serve.set_defaults(handler=serve_command)


def serve_command(args: argparse.Namespace) -> int:
    from edgevla.firmware.faults import Faults, parse_ids
    from edgevla.firmware.motion import motion_from_args
    from edgevla.firmware.robot import serve_robot
    from edgevla.hardware import load_robot

    robot = load_robot(args.robot)
    if args.motors is not None and not 1 <= args.motors <= len(robot.motors):
        raise EdgevlaError(f"--motors must be 1..{len(robot.motors)} for {robot.name}, got {args.motors}")
    if args.fresh and args.baud is not None:
        raise EdgevlaError(
            "--baud sets up the servos' rate; --fresh servos keep their factory rate: drop one"
        )
    faults = Faults(
        drop=args.drop,
        corrupt=args.corrupt,
        delay_ms=args.delay_ms,
        silent_ids=parse_ids(args.silent_ids),
        silent_after_s=args.silent_after,
        seed=args.seed,
    )
    motion = motion_from_args(args.motion, robot.joint_names)
    with serve_robot(
        robot,
        motion=motion,
        faults=faults,
        fresh=args.fresh,
        motors=args.motors,
        baud=args.baud,
        link=args.link,
        check_baud=not args.no_baud_check,
        wire_time=args.wire_time,
        tcp=_host_port(args.tcp) if args.tcp else None,
    ) as arm:
        servos = arm.bus.servos
        ids = "factory id 1" if args.fresh else f"ids {', '.join(str(s.id) for s in servos)}"
        print(
            f"serving {robot.name}: {len(servos)}x {servos[0].model.name}, {ids}, "
            f"{servos[0].baudrate} baud on {arm.server.device}",
            file=sys.stderr,
        )
        if arm.url:
            print(f"also serving on {arm.url}", file=sys.stderr)
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        print(f"ready {arm.port}", flush=True)
        if args.fresh:
            threading.Thread(target=_plug_commands, args=(arm.bus,), daemon=True).start()
        try:
            while not stop.wait(0.2):
                pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    print(f"stopped; removed {arm.port}" if args.link else "stopped", file=sys.stderr)
    return 0


def _plug_commands(bus) -> None:
    """Lines on stdin swap which motor is connected: 'plug shoulder_pan', 'plug 2', 'plug all'."""
    for line in sys.stdin:
        words = line.split()
        if len(words) != 2 or words[0] != "plug":
            print("commands: 'plug JOINT', 'plug INDEX' (from 0), 'plug all'", file=sys.stderr)
            continue
        try:
            if words[1] == "all":
                bus.plug_all()
            else:
                bus.plug_only(int(words[1]) if words[1].isdigit() else words[1])
        except (EdgevlaError, ValueError) as err:
            print(f"plug: {err}", file=sys.stderr)
            continue
        plugged = [name for name, on in zip(bus.joint_names, bus.plugged, strict=True) if on]
        print(f"plugged: {', '.join(plugged)}", file=sys.stderr)


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise EdgevlaError(f"--tcp expects HOST:PORT like 127.0.0.1:5555, got '{text}'")
    return host, int(port)
