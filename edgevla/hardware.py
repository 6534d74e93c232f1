"""Servo models and robot definitions, loaded from the YAML files under `hardware/`.

The files are the single source of register addresses, sizes, signedness, baud tables, vendor
rules (`vendors.yaml`) and per-robot settings: the driver, the virtual firmware and the TUI all
read them from here. Every problem in a file is reported with the file and the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import yaml

from edgevla.errors import EdgevlaError
from edgevla.paths import hardware_dir

EEPROM_GUARDS = ("lock", "torque")


class HardwareFileError(EdgevlaError):
    """A servo or robot definition file is missing or malformed."""


class NormMode(str, Enum):
    """How raw servo counts map to the numbers policies and datasets see (lerobot's modes)."""

    DEGREES = "degrees"
    RANGE_M100_100 = "range_m100_100"
    RANGE_0_100 = "range_0_100"


@dataclass(frozen=True)
class Register:
    name: str
    address: int
    size: int  # bytes
    writable: bool
    eeprom: bool  # persisted; vendor rules guard writes (Lock on Feetech, torque off on Dynamixel)
    sign_bit: int | None = None  # Feetech sign-magnitude: bit holding the sign
    twos_complement: bool = False  # Dynamixel signed registers

    def encode(self, value: int) -> int:
        """Signed user value -> unsigned wire value for this register."""
        value = int(value)
        if self.sign_bit is not None:
            magnitude = abs(value)
            if magnitude >= 1 << self.sign_bit:
                raise ValueError(f"{self.name}: magnitude {magnitude} exceeds {(1 << self.sign_bit) - 1}")
            return magnitude | (1 << self.sign_bit) if value < 0 else magnitude
        bits = 8 * self.size
        if self.twos_complement:
            if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
                raise ValueError(f"{self.name}: {value} does not fit {self.size} signed bytes")
            return value & ((1 << bits) - 1)
        if not 0 <= value < 1 << bits:
            raise ValueError(f"{self.name}: {value} does not fit {self.size} unsigned bytes")
        return value

    def decode(self, raw: int) -> int:
        """Unsigned wire value -> signed user value."""
        raw = int(raw)
        if self.sign_bit is not None:
            magnitude = raw & ((1 << self.sign_bit) - 1)
            return -magnitude if raw >> self.sign_bit & 1 else magnitude
        if self.twos_complement:
            bits = 8 * self.size
            return raw - (1 << bits) if raw >> (bits - 1) & 1 else raw
        return raw


@dataclass(frozen=True)
class VendorRules:
    """What differs between vendors beyond register layout (hardware/vendors.yaml)."""

    vendor: str
    homing_sign: int  # Present = Actual + homing_sign * Homing_Offset
    eeprom_guard: str  # "lock": Feetech Lock register; "torque": Dynamixel torque-on refusal
    big_endian_protocols: tuple[int, ...]
    refuse_out_of_limit_goal: bool  # Dynamixel: Data Limit Error; Feetech: clamp and move
    wrap_position: bool  # Feetech single-turn: Present_Position wraps into 0..resolution-1
    status_level: str  # register holding the status return level
    voltage: str  # register holding the input voltage (0.1 V)
    firmware_version: str  # register holding the (major) firmware version
    errors: str  # register holding the alarm bits
    alarm_bits: dict[int, str]  # alarm bit -> what it means

    def byteorder(self, protocol: int) -> str:
        return "big" if protocol in self.big_endian_protocols else "little"

    def alarm_names(self, bits: int) -> str:
        """'overheat, overload' for the set alarm bits (hex for bits without a name)."""
        return ", ".join(name for bit, name in self.alarm_bits.items() if bits & bit) or f"0x{bits:02x}"


@dataclass(frozen=True)
class ServoModel:
    name: str
    vendor: str
    protocol: int  # Feetech 0 (little endian) / 1 (big endian); Dynamixel 2 (protocol 2.0)
    model_number: int
    resolution: int  # counts per turn
    eeprom_end: int
    default_baudrate: int
    baud_rates: dict[int, int]  # register code -> bits per second
    registers: dict[str, Register]
    factory: dict[str, int]
    physics: dict[str, float]
    rules: VendorRules
    sync_read: bool = True
    source: Path | None = None

    def register(self, name: str) -> Register:
        try:
            return self.registers[name]
        except KeyError:
            raise EdgevlaError(f"servo model '{self.name}' has no register '{name}'") from None

    def baud_code(self, baudrate: int) -> int:
        for code, rate in self.baud_rates.items():
            if rate == baudrate:
                return code
        rates = ", ".join(str(r) for r in self.baud_rates.values())
        raise EdgevlaError(f"{self.name} does not support {baudrate} baud; supported: {rates}")


@dataclass(frozen=True)
class MotorDef:
    name: str
    id: int
    servo: ServoModel
    norm: NormMode
    max_relative_target: float | None = None  # normalised units per command
    settings: dict[str, int] = field(default_factory=dict)  # on top of the robot's settings


@dataclass(frozen=True)
class RobotDef:
    name: str
    role: str  # "follower" or "leader"
    vendor: str
    baudrate: int
    motors: tuple[MotorDef, ...]
    settings: dict[str, int]
    on_disconnect: str  # "torque_off" or "hold"
    description: str = ""
    aliases: tuple[str, ...] = ()
    source: Path | None = None

    @property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.motors)

    def motor(self, name: str) -> MotorDef:
        for m in self.motors:
            if m.name == name:
                return m
        raise EdgevlaError(
            f"robot '{self.name}' has no joint '{name}'; joints: {', '.join(self.joint_names)}"
        )

    def motor_settings(self, motor: MotorDef) -> dict[str, int]:
        """Registers configure() writes to `motor`: the robot's settings, then the motor's own."""
        return {**self.settings, **motor.settings}


# --- parsing -------------------------------------------------------------------------------


class _Reader:
    """Reads fields of one YAML mapping, naming the file and field on every problem."""

    def __init__(self, path: Path, data: Any, where: str = ""):
        self.path, self.where = path, where
        if not isinstance(data, dict):
            self.fail("", f"expected a mapping, got {type(data).__name__}")
        self.data: dict = data

    def fail(self, key: str, problem: str):
        name = ".".join(p for p in (self.where, key) if p) or "(top level)"
        raise HardwareFileError(f"{self.path}: field '{name}': {problem}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        if key not in self.data:
            if default is ...:
                self.fail(key, "is missing")
            return default
        value = self.data[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            self.fail(key, f"expected {names}, got {value!r}")
        return value

    def child(self, key: str, default: Any = ...) -> _Reader:
        where = ".".join(p for p in (self.where, key) if p)
        return _Reader(self.path, self.get(key, dict, default), where)

    def int_map(self, key: str) -> dict[str, int]:
        sub = self.child(key, {})
        return {name: sub.get(name, int) for name in sub.data}


def _read_yaml(path: Path) -> _Reader:
    try:
        text = path.read_text()
    except OSError as err:
        raise HardwareFileError(f"{path}: cannot read: {err.strerror}") from None
    try:
        return _Reader(path, yaml.safe_load(text))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise HardwareFileError(f"{path}:{line}: not valid YAML: {getattr(err, 'problem', err)}") from None


def parse_vendors(path: Path) -> dict[str, VendorRules]:
    doc = _read_yaml(path)
    vendors = {}
    for vendor in doc.data:
        v = doc.child(vendor)
        guard = v.get("eeprom_guard", str)
        if guard not in EEPROM_GUARDS:
            v.fail("eeprom_guard", f"must be one of {', '.join(EEPROM_GUARDS)}, got '{guard}'")
        sign = v.get("homing_sign", int)
        if sign not in (-1, 1):
            v.fail("homing_sign", f"must be -1 or 1, got {sign}")
        registers = v.child("registers")
        bits = v.child("alarm_bits")
        vendors[vendor] = VendorRules(
            vendor=vendor,
            homing_sign=sign,
            eeprom_guard=guard,
            big_endian_protocols=tuple(v.get("big_endian_protocols", list)),
            refuse_out_of_limit_goal=v.get("refuse_out_of_limit_goal", bool),
            wrap_position=v.get("wrap_position", bool),
            status_level=registers.get("status_level", str),
            voltage=registers.get("voltage", str),
            firmware_version=registers.get("firmware_version", str),
            errors=registers.get("errors", str),
            alarm_bits={int(bit): bits.get(bit, str) for bit in bits.data},
        )
    return vendors


def parse_servo(path: Path, vendors: dict[str, VendorRules]) -> ServoModel:
    doc = _read_yaml(path)
    vendor = doc.get("vendor", str)
    if vendor not in vendors:
        doc.fail("vendor", f"must be one of {', '.join(vendors)}, got '{vendor}'")
    eeprom_end = doc.get("eeprom_end", int)
    signs = doc.int_map("sign_magnitude")
    twos = set(doc.get("twos_complement", list, []))
    table = doc.child("control_table")
    registers: dict[str, Register] = {}
    for name, spec in table.data.items():
        if not (isinstance(spec, list) and len(spec) == 3 and spec[2] in ("r", "rw")):
            table.fail(name, "expected [address, size, r|rw]")
        address, size, access = spec
        if not (isinstance(address, int) and 0 <= address < 256 and size in (1, 2, 4)):
            table.fail(name, f"address must be 0..255 and size 1, 2 or 4, got {spec}")
        registers[name] = Register(
            name, address, size, access == "rw", address < eeprom_end, signs.get(name), name in twos
        )
    for name in (*signs, *twos):
        if name not in registers:
            doc.fail("sign_magnitude" if name in signs else "twos_complement", f"unknown register '{name}'")
    baud = doc.child("baud_rates")
    baud_rates = {int(code): baud.get(code, int) for code in baud.data}
    factory = doc.int_map("factory")
    for name in factory:
        if name not in registers:
            doc.fail(f"factory.{name}", "is not in control_table")
    default_baudrate = doc.get("default_baudrate", int)
    if default_baudrate not in baud_rates.values():
        doc.fail("default_baudrate", f"{default_baudrate} is not in baud_rates")
    physics = doc.child("physics", {})
    return ServoModel(
        name=doc.get("name", str),
        vendor=vendor,
        protocol=doc.get("protocol", int),
        model_number=doc.get("model_number", int),
        resolution=doc.get("resolution", int),
        eeprom_end=eeprom_end,
        default_baudrate=default_baudrate,
        baud_rates=baud_rates,
        registers=registers,
        factory=factory,
        physics={k: physics.get(k, (int, float)) for k in physics.data},
        rules=vendors[vendor],
        sync_read=doc.get("sync_read", bool, True),
        source=path,
    )


def parse_robot(path: Path, root: Path | None = None) -> RobotDef:
    doc = _read_yaml(path)
    role = doc.get("role", str)
    if role not in ("follower", "leader"):
        doc.fail("role", f"must be 'follower' or 'leader', got '{role}'")
    on_disconnect = doc.get("on_disconnect", str, "torque_off")
    if on_disconnect not in ("torque_off", "hold"):
        doc.fail("on_disconnect", f"must be 'torque_off' or 'hold', got '{on_disconnect}'")
    motors_doc = doc.child("motors")
    motors, ids = [], set()
    for joint in motors_doc.data:
        m = motors_doc.child(joint)
        motor_id = m.get("id", int)
        if not 0 <= motor_id <= 252 or motor_id in ids:
            m.fail("id", f"must be a unique id in 0..252, got {motor_id}")
        ids.add(motor_id)
        servo = load_servo(m.get("servo", str), root)
        try:
            norm = NormMode(m.get("norm", str))
        except ValueError:
            m.fail("norm", f"must be one of {', '.join(n.value for n in NormMode)}")
        cap = m.get("max_relative_target", (int, float), None)
        if cap is not None and cap <= 0:
            m.fail("max_relative_target", "must be positive")
        settings = m.int_map("settings")
        for reg in settings:
            if reg not in servo.registers:
                m.fail(f"settings.{reg}", f"servo '{servo.name}' has no such register")
        motors.append(MotorDef(joint, motor_id, servo, norm, cap, settings))
    if not motors:
        doc.fail("motors", "defines no motor")
    vendors = {m.servo.vendor for m in motors}
    if len(vendors) != 1:
        doc.fail("motors", f"mixes vendors {sorted(vendors)} on one bus")
    settings = doc.int_map("settings")
    for reg in settings:
        for m in motors:
            if reg not in m.servo.registers:
                doc.fail(
                    f"settings.{reg}", f"servo '{m.servo.name}' of joint '{m.name}' has no such register"
                )
    baudrate = doc.get("baudrate", int)
    for m in motors:
        if baudrate not in m.servo.baud_rates.values():
            doc.fail("baudrate", f"{baudrate} is not supported by {m.servo.name}")
    return RobotDef(
        name=doc.get("name", str),
        role=role,
        vendor=vendors.pop(),
        baudrate=baudrate,
        motors=tuple(motors),
        settings=settings,
        on_disconnect=on_disconnect,
        description=doc.get("description", str, ""),
        aliases=tuple(doc.get("aliases", list, [])),
        source=path,
    )


# --- lookup --------------------------------------------------------------------------------


def list_servos(root: Path | None = None) -> list[str]:
    return sorted(p.stem for p in ((root or hardware_dir()) / "servos").glob("*.yaml"))


def load_servo(name: str, root: Path | None = None) -> ServoModel:
    path = (root or hardware_dir()) / "servos" / f"{name}.yaml"
    if not path.is_file():
        raise HardwareFileError(f"unknown servo model '{name}'; known: {', '.join(list_servos(root))}")
    return parse_servo(path, parse_vendors((root or hardware_dir()) / "vendors.yaml"))


def _robot_files(root: Path | None) -> list[Path]:
    return sorted(((root or hardware_dir()) / "robots").glob("*.yaml"))


def list_robots(root: Path | None = None) -> list[str]:
    return [p.stem for p in _robot_files(root)]


def load_robot(name_or_path: str | Path, root: Path | None = None) -> RobotDef:
    """A robot by name (`so101_follower`), alias (`so100_follower`) or path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise HardwareFileError(f"robot definition file '{path}' does not exist")
        return parse_robot(path, root)
    for candidate in _robot_files(root):
        if candidate.stem == str(name_or_path):
            return parse_robot(candidate, root)
    for candidate in _robot_files(root):
        robot = parse_robot(candidate, root)
        if str(name_or_path) in robot.aliases:
            return robot
    raise HardwareFileError(f"unknown robot '{name_or_path}'; known: {', '.join(list_robots(root))}")


def load_robot_pair(name: str, root: Path | None = None) -> tuple[RobotDef, RobotDef]:
    """`so101` -> (so101_leader, so101_follower): the arms a teleoperation session uses."""
    leader, follower = load_robot(f"{name}_leader", root), load_robot(f"{name}_follower", root)
    if leader.joint_names != follower.joint_names:
        raise HardwareFileError(f"'{name}': leader and follower joints differ")
    return leader, follower
