"""Motor setup (id and baud rate of one new servo at a time) and configuration (settings)."""

from __future__ import annotations

from edgevla.drivers.bus import MotorBus
from edgevla.drivers.errors import MotorNotFoundError
from edgevla.hardware import MotorDef, RobotDef


def find_single_servo(bus: MotorBus, baudrates: list[int], ids: range = range(0, 253)) -> tuple[int, int]:
    """(baud rate, id) of the one servo on the bus; an error when there are none or several.
    Stops at the first baud rate where anything answers (try the likeliest rate first)."""
    servos = []
    for baud in baudrates:
        servos = [(baud, motor_id) for motor_id in bus.scan(ids, [baud]).get(baud, {})]
        if servos:
            break
    if len(servos) != 1:
        seen = ", ".join(f"id {i} at {b} baud" for b, i in servos) or "none"
        raise MotorNotFoundError(
            f"motor setup needs exactly one servo connected on '{bus.port_name}'; found {seen}"
        )
    return servos[0]


def assign_id_and_baud(
    bus: MotorBus, motor: MotorDef, robot: RobotDef, baudrates: list[int]
) -> tuple[int, int]:
    """Give the single connected servo `motor.id` and the robot's baud rate; returns what it had."""
    baud, old_id = find_single_servo(bus, baudrates)
    bus.set_baudrate(baud)
    servo = motor.servo
    guard_first = {"Torque_Enable": 0} if bus.backend.rules.eeprom_guard == "torque" else {"Lock": 0}
    for name, value in guard_first.items():
        bus.write_id(name, old_id, value, servo)
    if old_id != motor.id:
        bus.write_id("ID", old_id, motor.id, servo)  # the status comes back from the old id
    if baud != robot.baudrate:
        # the servo answers at the old rate, then listens at the new one
        bus.write_id("Baud_Rate", motor.id, servo.baud_code(robot.baudrate), servo)
        bus.set_baudrate(robot.baudrate)
    if bus.backend.rules.eeprom_guard == "lock":
        bus.write_id("Lock", motor.id, 1, servo)
    if not bus.ping_id(motor.id, attempts=3):
        raise MotorNotFoundError(
            f"'{motor.name}' does not answer as id {motor.id} at {robot.baudrate} baud after setup"
        )
    return old_id, baud


def configure(bus: MotorBus, robot: RobotDef) -> None:
    """Write the robot definition's settings (return delay 0, PID, limits, modes) to every motor,
    with torque off (Dynamixel refuses EEPROM writes otherwise; Feetech needs Lock = 0)."""
    for motor in robot.motors:
        bus.write("Torque_Enable", motor.name, 0)
        bus.write_settings(motor.name, robot.motor_settings(motor))
