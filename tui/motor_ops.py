"""Bus jobs of the motors screen: scan with details, torque, jog, setup. Each opens the port,
does one job through the drivers and closes it again (the screen runs them off the UI thread)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgevla.drivers.bus import BusConfig, MotorBus
from edgevla.drivers.safety import clamp_goal, disable_torque, enable_torque
from edgevla.drivers.setup import assign_id_and_baud
from edgevla.errors import EdgevlaError
from edgevla.hardware import RobotDef, ServoModel

JOG_STEP = 40  # counts per key press (~3.5 degrees)


@dataclass(frozen=True)
class MotorRow:
    id: int
    model: int
    firmware: str
    baud: int
    voltage_v: float | None
    temperature_c: int | None
    torque: bool | None
    errors: str


def _read(bus: MotorBus, servo: ServoModel, name: str, motor_id: int) -> int | None:
    """The register of `motor_id`, None when the model has no such register."""
    return bus.read_id(name, motor_id, servo) if name in servo.registers else None


def scan(
    port: str, servo: ServoModel, ids: range = range(0, 253), config: BusConfig | None = None
) -> list[MotorRow]:
    """Every servo of `servo`'s protocol on `port`, at every baud rate the model has."""
    bauds = list(servo.baud_rates.values())
    rows = []
    with MotorBus(port, servo, bauds[0], config=config) as bus:
        found = bus.scan(ids, bauds)
        for baud, models in found.items():
            bus.set_baudrate(baud)
            for motor_id, model in sorted(models.items()):
                volts = _read(bus, servo, servo.rules.voltage, motor_id)
                status = _read(bus, servo, servo.rules.errors, motor_id) or 0
                alarm = bus.alarms.get(f"id {motor_id}", "")
                rows.append(
                    MotorRow(
                        id=motor_id,
                        model=model,
                        firmware=str(_read(bus, servo, servo.rules.firmware_version, motor_id)),
                        baud=baud,
                        voltage_v=None if volts is None else volts / 10,
                        temperature_c=_read(bus, servo, "Present_Temperature", motor_id),
                        torque=bool(_read(bus, servo, "Torque_Enable", motor_id)),
                        errors=alarm or (servo.rules.alarm_names(status) if status else "none"),
                    )
                )
    return rows


def joint_of(robot: RobotDef, motor_id: int) -> str:
    for motor in robot.motors:
        if motor.id == motor_id:
            return motor.name
    raise EdgevlaError(f"id {motor_id} is not a motor of '{robot.name}'; set it up first (n)")


def set_torque(port: str, robot: RobotDef, motor_id: int, on: bool, config: BusConfig | None = None) -> None:
    """Torque on without a jump (goal := present first), or off."""
    joint = joint_of(robot, motor_id)
    with MotorBus.for_robot(robot, port, config=config) as bus:
        (enable_torque if on else disable_torque)(bus, [joint])


def jog(port: str, robot: RobotDef, motor_id: int, direction: int, config: BusConfig | None = None) -> int:
    """Move one motor JOG_STEP counts (torque on), within its position limits; returns the goal."""
    joint = joint_of(robot, motor_id)
    with MotorBus.for_robot(robot, port, config=config) as bus:
        if not bus.read("Torque_Enable", joint):
            enable_torque(bus, [joint])
        present = bus.read("Present_Position", joint)
        low, high = bus.read("Min_Position_Limit", joint), bus.read("Max_Position_Limit", joint)
        goal = clamp_goal(
            np.array([present + direction * JOG_STEP]),
            np.array([present]),
            np.array([low]),
            np.array([high]),
            np.array([JOG_STEP]),
        )
        bus.write("Goal_Position", joint, int(goal[0]))
        return int(goal[0])


def setup_motor(port: str, robot: RobotDef, joint: str, config: BusConfig | None = None) -> tuple[int, int]:
    """Give the one servo on the bus the id and baud rate of `joint`; returns its old (id, baud)."""
    servo = robot.motor(joint).servo
    bauds = list(dict.fromkeys([servo.default_baudrate, *servo.baud_rates.values()]))
    with MotorBus(port, servo, bauds[0], config=config) as bus:
        return assign_id_and_baud(bus, robot.motor(joint), robot, bauds)
