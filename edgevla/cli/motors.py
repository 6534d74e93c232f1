"""`edgevla motors scan|setup|configure|torque|read`: servo ids, baud rates, settings, torque."""

from __future__ import annotations

import argparse
import json

from edgevla.cli.args import add_robot_port, warn_latency
from edgevla.errors import EdgevlaError


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION")

    scan = actions.add_parser("scan", help="find servos: ids and model numbers at each baud rate")
    scan.add_argument("--port", required=True, help="serial device or pyserial URL")
    scan.add_argument("--robot", help="robot whose servo family to scan for (default: --servo)")
    scan.add_argument(
        "--servo", default="sts3215", help="servo model whose protocol to speak (default sts3215)"
    )
    scan.add_argument(
        "--baud", type=int, action="append", help="baud rate(s) to try (default: all of the model)"
    )
    scan.add_argument("--ids", default="0-252", help="id range to ping on Feetech, e.g. 1-20 (default 0-252)")
    scan.add_argument("--json", action="store_true", help="print one JSON object")
    scan.set_defaults(handler=scan_command)

    setup = actions.add_parser(
        "setup",
        help="give new servos their ids and baud rate, one at a time",
        description=(
            "For each joint (or only --joint), connect that joint's servo ALONE to the bus; the "
            "command finds it at any id and baud rate and gives it the robot's id and baud rate."
        ),
    )
    add_robot_port(setup)
    setup.add_argument("--joint", action="append", help="only these joints (default: all, in order)")
    setup.add_argument("--yes", action="store_true", help="do not wait for Enter before each joint")
    setup.set_defaults(handler=setup_command)

    conf = actions.add_parser("configure", help="write the robot's settings (return delay 0, PID, limits)")
    add_robot_port(conf)
    conf.set_defaults(handler=configure_command)

    torque = actions.add_parser("torque", help="torque on (without a jump) or off")
    torque.add_argument("state", choices=("on", "off"))
    add_robot_port(torque)
    torque.add_argument("--joint", action="append", help="only these joints (default: all)")
    torque.set_defaults(handler=torque_command)

    read = actions.add_parser("read", help="read one register of every motor")
    add_robot_port(read)
    read.add_argument(
        "--register", default="Present_Position", help="register name (default Present_Position)"
    )
    read.add_argument(
        "--normalized",
        action="store_true",
        help="Present_Position in calibrated units (connects as the robot)",
    )
    read.add_argument(
        "--calibration", help="profile for --normalized (default: <calibration dir>/<robot>.json)"
    )
    read.add_argument("--json", action="store_true", help="print one JSON object")
    read.set_defaults(handler=read_command)


def _parse_ids(text: str) -> range:
    low, _, high = text.partition("-")
    try:
        ids = range(int(low), int(high or low) + 1)
    except ValueError:
        raise EdgevlaError(f"--ids expects a range like 1-20, got '{text}'") from None
    if not ids or ids.start < 0 or ids.stop > 253:
        raise EdgevlaError(f"--ids must lie within 0-252, got '{text}'")
    return ids


def _robot_bus(args):
    from edgevla.drivers.bus import MotorBus
    from edgevla.hardware import load_robot

    robot = load_robot(args.robot)
    warn_latency(args.port)
    return robot, MotorBus.for_robot(robot, args.port, args.baud)


def scan_command(args: argparse.Namespace) -> int:
    from edgevla.drivers.bus import MotorBus
    from edgevla.hardware import load_robot, load_servo

    servo = load_robot(args.robot).motors[0].servo if args.robot else load_servo(args.servo)
    bauds = args.baud or list(servo.baud_rates.values())
    warn_latency(args.port)
    with MotorBus(args.port, servo, bauds[0]) as bus:
        found = bus.scan(_parse_ids(args.ids), bauds)
    if args.json:
        print(json.dumps({str(b): {str(i): m for i, m in ids.items()} for b, ids in found.items()}))
    elif not found:
        print(f"no {servo.vendor} servo answers on {args.port} at {', '.join(map(str, bauds))} baud")
    for baud, ids in found.items():
        if not args.json:
            print(f"{baud} baud: " + ", ".join(f"id {i} (model {m})" for i, m in sorted(ids.items())))
    return 0 if found else 1


def setup_command(args: argparse.Namespace) -> int:
    from edgevla.drivers.setup import assign_id_and_baud

    robot, bus = _robot_bus(args)
    joints = args.joint or list(robot.joint_names)
    bauds = list(
        dict.fromkeys([robot.motors[0].servo.default_baudrate, *robot.motors[0].servo.baud_rates.values()])
    )
    with bus:
        for joint in joints:
            motor = robot.motor(joint)
            if not args.yes:
                input(f"Connect ONLY the '{joint}' servo to the bus, then press Enter ")
            old_id, old_baud = assign_id_and_baud(bus, motor, robot, bauds)
            print(f"{joint}: id {old_id} at {old_baud} baud -> id {motor.id} at {robot.baudrate} baud")
    return 0


def configure_command(args: argparse.Namespace) -> int:
    from edgevla.drivers.setup import configure as configure_bus

    robot, bus = _robot_bus(args)
    with bus:
        configure_bus(bus, robot)
    print(f"configured {len(robot.motors)} motors of {robot.name}")
    return 0


def torque_command(args: argparse.Namespace) -> int:
    from edgevla.drivers.safety import disable_torque, enable_torque

    robot, bus = _robot_bus(args)
    joints = [robot.motor(j).name for j in args.joint] if args.joint else list(robot.joint_names)
    with bus:
        (enable_torque if args.state == "on" else disable_torque)(bus, joints)
    print(f"torque {args.state}: {', '.join(joints)}")
    return 0


def read_command(args: argparse.Namespace) -> int:
    if args.normalized:
        from edgevla.drivers.robot import Robot

        warn_latency(args.port)
        with Robot(args.robot, args.port, args.calibration, baudrate=args.baud, torque=False) as arm:
            values = dict(zip(arm.joint_names, [round(float(v), 3) for v in arm.read_state()], strict=True))
            alarms = dict(arm.bus.alarms)
        args.register = "Present_Position (normalised)"
    else:
        robot, bus = _robot_bus(args)
        with bus:
            values = bus.sync_read(args.register)
            alarms = dict(bus.alarms)
    if args.json:
        print(json.dumps({"register": args.register, "values": values, "alarms": alarms}))
    else:
        for joint, value in values.items():
            print(f"{joint:>14}  {value}" + (f"  ALARM: {alarms[joint]}" if joint in alarms else ""))
    return 0
