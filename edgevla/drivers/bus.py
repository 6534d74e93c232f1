"""One servo bus over either vendor back end: reads, writes, sync reads/writes, ping, scan.

Every transaction is retried on a timeout, a corrupt status packet or a packet from the wrong
id, with a short doubling backoff; each failure kind is counted in `stats`. A transaction that
still fails raises `MotorCommError` naming the motor and register: the caller's loop decides
what to do. Alarm bits in status packets (overheat, overload, ...) are counted and kept in
`alarms` by motor; an instruction the servo refuses raises `MotorRefusedError`.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

from edgevla.drivers.dynamixel import Dynamixel
from edgevla.drivers.errors import BusError, MotorCommError, MotorRefusedError
from edgevla.drivers.feetech import Feetech
from edgevla.drivers.port import open_port, set_baudrate
from edgevla.drivers.vendor import CORRUPT, OK, TIMEOUT, TX_FAIL, WRONG_ID, Reply
from edgevla.errors import EdgevlaError
from edgevla.hardware import MotorDef, Register, RobotDef, ServoModel

log = logging.getLogger(__name__)
BACKENDS = {"feetech": Feetech, "dynamixel": Dynamixel}


TIMEOUT_ENV = "EDGEVLA_BUS_TIMEOUT_MS"


def default_timeout_ms() -> float:
    """20 ms, or $EDGEVLA_BUS_TIMEOUT_MS: a servo answers in under 1 ms, but a slow USB hub, a
    bus served over TCP or virtual firmware on a busy machine can need more."""
    text = os.environ.get(TIMEOUT_ENV)
    if text is None:
        return 20.0
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 10_000:
        raise EdgevlaError(
            f"{TIMEOUT_ENV}='{text}' is not a timeout; set milliseconds in (0, 10000] or unset it"
        )
    return value


@dataclass(frozen=True)
class BusConfig:
    retries: int = 3  # extra attempts after the first
    timeout_ms: float = field(default_factory=default_timeout_ms)  # status wait beyond wire time
    backoff_ms: float = 0.5  # before the first retry; doubles for each next one
    # Scanning pings ids one by one when the answers to a broadcast collide; most ids are absent
    # and each absent one costs this timeout. The ids that answer are then read with `timeout_ms`.
    ping_timeout_ms: float = 5.0


@dataclass
class BusStats:
    transactions: int = 0
    retries: int = 0
    timeouts: int = 0
    corrupt: int = 0
    wrong_id: int = 0
    tx_fail: int = 0
    servo_errors: int = 0  # status packets carrying alarm bits
    failures: int = 0  # transactions that failed after every retry

    @property
    def errors(self) -> int:
        return self.timeouts + self.corrupt + self.wrong_id + self.tx_fail

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "errors": self.errors}


def backend_for(servo: ServoModel) -> Feetech | Dynamixel:
    return BACKENDS[servo.vendor](servo)


class MotorBus:
    """Motors on one serial port. `motors` may be empty for scanning and motor setup."""

    def __init__(
        self,
        port: str,
        servo: ServoModel,
        baudrate: int,
        motors: Sequence[MotorDef] = (),
        config: BusConfig | None = None,
    ):
        for m in motors:
            if (m.servo.vendor, m.servo.protocol) != (servo.vendor, servo.protocol):
                raise EdgevlaError(f"motor '{m.name}' ({m.servo.name}) cannot share a bus with {servo.name}")
        self.port_name, self.servo, self.baudrate = port, servo, baudrate
        self.motors = {m.name: m for m in motors}
        self.config = config or BusConfig()
        self.backend = backend_for(servo)
        self.stats = BusStats()
        self.alarms: dict[str, str] = {}  # motor -> latest alarm text
        self.reply_ms: float | None = None  # round trip of recent one-servo transactions (moving average)
        self.port = None

    @classmethod
    def for_robot(
        cls, robot: RobotDef, port: str, baudrate: int | None = None, config: BusConfig | None = None
    ):
        return cls(port, robot.motors[0].servo, baudrate or robot.baudrate, robot.motors, config)

    # --- port -------------------------------------------------------------------------------

    def open(self) -> MotorBus:
        self.servo.baud_code(self.baudrate)  # a rate the servos cannot use is a clear error
        self.port = open_port(self.backend.port_class, self.port_name, self.baudrate, self.config.timeout_ms)
        return self

    def close(self) -> None:
        if self.port is not None:
            self.port.closePort()
            self.port = None

    def __enter__(self) -> MotorBus:
        return self.open() if self.port is None else self

    def __exit__(self, *exc) -> None:
        self.close()

    def set_baudrate(self, baudrate: int) -> None:
        self.servo.baud_code(baudrate)
        set_baudrate(self._port(), baudrate)
        self.baudrate = baudrate

    def _port(self):
        if self.port is None:
            raise BusError(f"bus on '{self.port_name}' is not open")
        return self.port

    @contextmanager
    def _status_timeout(self, timeout_ms: float) -> Iterator[None]:
        port = self._port()
        previous, port.timeout_ms = port.timeout_ms, timeout_ms
        try:
            yield
        finally:
            port.timeout_ms = previous

    # --- bookkeeping ------------------------------------------------------------------------

    def _count(self, reply: Reply) -> None:
        self.stats.transactions += 1
        self.stats.wrong_id += reply.wrong_ids
        if reply.kind == TIMEOUT:
            self.stats.timeouts += 1
        elif reply.kind == CORRUPT:
            self.stats.corrupt += 1
        elif reply.kind == WRONG_ID:
            self.stats.wrong_id += 1
        elif reply.kind == TX_FAIL:
            self.stats.tx_fail += 1

    def _check_status(self, motor: str, what: str, error: int) -> None:
        if not error:
            return
        refusal = self.backend.refusal(error)
        if refusal:
            raise MotorRefusedError(f"motor '{motor}' refused {what}: {refusal}")
        alarm = self.backend.alarms(error)
        if alarm:
            self.stats.servo_errors += 1
            if self.alarms.get(motor) != alarm:
                log.warning("motor '%s' reports: %s", motor, alarm)
            self.alarms[motor] = alarm

    def _timed(self, transaction) -> Reply:
        start = time.perf_counter()
        reply = transaction()
        if reply.ok:
            ms = (time.perf_counter() - start) * 1e3
            self.reply_ms = ms if self.reply_ms is None else 0.8 * self.reply_ms + 0.2 * ms
        return reply

    def _timeout_hint(self, kind: str, replies: int) -> str:
        """For a timeout: how long the bus waits and how long replies take here, so a bus that is
        merely slow (a servo's return delay, a hub, a network link) can be told from a dead servo."""
        if kind != TIMEOUT:
            return ""
        waits = f"all {replies} replies of a sync read" if replies > 1 else "a reply"
        hint = f"the bus waits {self.config.timeout_ms:g} ms for {waits} ({TIMEOUT_ENV})"
        if self.reply_ms is None:
            return hint
        hint += f"; one reply takes {self.reply_ms:.1f} ms here"
        needed = 2 * replies * self.reply_ms
        if needed > self.config.timeout_ms:
            hint += f": if the servos are only slow, set {TIMEOUT_ENV}={math.ceil(needed)}"
        return hint

    def _backoff(self, attempt: int) -> None:
        self.stats.retries += 1
        time.sleep(self.config.backoff_ms * 2 ** (attempt - 1) / 1000)

    def _retrying(self, motor: str, what: str, transaction) -> Reply:
        kind = OK
        for attempt in range(self.config.retries + 1):
            if attempt:
                self._backoff(attempt)
            reply = self._timed(transaction)
            self._count(reply)
            if reply.ok:
                self._check_status(motor, what, reply.error)
                return reply
            kind = reply.kind
        self.stats.failures += 1
        raise MotorCommError(motor, what, kind, self.config.retries + 1, self._timeout_hint(kind, 1))

    # --- by id (scan, setup) ----------------------------------------------------------------

    def ping_id(self, motor_id: int, attempts: int = 1) -> bool:
        port = self._port()
        for _ in range(attempts):
            reply = self._timed(lambda: self.backend.ping(port, motor_id))
            self._count(reply)
            if reply.ok:
                return True
        return False

    def read_id(self, register: str, motor_id: int, servo: ServoModel | None = None) -> int:
        reg = (servo or self.servo).register(register)
        port = self._port()
        reply = self._retrying(
            f"id {motor_id}", register, lambda: self.backend.read(port, motor_id, reg.address, reg.size)
        )
        return reg.decode(self.backend.from_bytes(reply.data))

    def write_id(self, register: str, motor_id: int, value: int, servo: ServoModel | None = None) -> None:
        reg = (servo or self.servo).register(register)
        data = self.backend.to_bytes(_encode(reg, value, f"id {motor_id}"), reg.size)
        port = self._port()
        self._retrying(
            f"id {motor_id}",
            f"{register} = {value}",
            lambda: self.backend.write(port, motor_id, reg.address, data),
        )

    def scan(self, ids: Iterable[int], baudrates: Iterable[int]) -> dict[int, dict[int, int]]:
        """{baud rate: {id: model number}} of every servo answering; the port keeps its last rate."""
        ids = list(ids)
        found: dict[int, dict[int, int]] = {}
        for baud in baudrates:
            self.set_baudrate(baud)
            answering = self.backend.broadcast_ping(self._port())
            if answering is None:  # answers collided: ask each id
                with self._status_timeout(self.config.ping_timeout_ms):
                    answering = {i: None for i in ids if self.ping_id(i)}
            models = {
                i: model if model is not None else self.read_id("Model_Number", i)
                for i, model in answering.items()
                if i in ids
            }
            if models:
                found[baud] = models
        return found

    # --- by motor name -----------------------------------------------------------------------

    def motor(self, name: str) -> MotorDef:
        try:
            return self.motors[name]
        except KeyError:
            raise EdgevlaError(f"no motor '{name}' on this bus; motors: {', '.join(self.motors)}") from None

    def read(self, register: str, motor: str) -> int:
        m = self.motor(motor)
        reg = m.servo.register(register)
        port = self._port()
        reply = self._retrying(motor, register, lambda: self.backend.read(port, m.id, reg.address, reg.size))
        return reg.decode(self.backend.from_bytes(reply.data))

    def write(self, register: str, motor: str, value: int) -> None:
        m = self.motor(motor)
        reg = m.servo.register(register)
        data = self.backend.to_bytes(_encode(reg, value, motor), reg.size)
        port = self._port()
        self._retrying(
            motor, f"{register} = {value}", lambda: self.backend.write(port, m.id, reg.address, data)
        )

    def sync_read(self, register: str, motors: Sequence[str] | None = None) -> dict[str, int]:
        """`register` of every motor (all by default), one SYNC READ where the model has it."""
        names = list(motors or self.motors)
        by_id: dict[int, tuple[str, Register]] = {}
        values: dict[str, int] = {}
        for name in names:
            m = self.motor(name)
            if m.servo.sync_read:
                by_id[m.id] = (name, m.servo.register(register))
            else:
                values[name] = self.read(register, name)
        if by_id:
            values.update(self._sync_read(register, by_id))
        return {name: values[name] for name in names}

    def _sync_read(self, register: str, by_id: dict[int, tuple[str, Register]]) -> dict[str, int]:
        regs = {(r.address, r.size) for _, r in by_id.values()}
        if len(regs) > 1:
            raise EdgevlaError(f"'{register}' sits at different addresses on this bus; read it per motor")
        address, size = regs.pop()
        port = self._port()
        pending, values, kind = list(by_id), {}, OK
        for attempt in range(self.config.retries + 1):
            if attempt:
                self._backoff(attempt)
            kind = self.backend.sync_read_send(port, address, size, pending)
            if kind != OK:
                self._count(Reply(kind))
                continue
            missing = []
            for motor_id in pending:
                reply = self.backend.receive(port, motor_id, size)
                self._count(reply)
                name, reg = by_id[motor_id]
                if reply.ok:
                    self._check_status(name, register, reply.error)
                    values[name] = reg.decode(self.backend.from_bytes(reply.data))
                else:
                    missing.append(motor_id)
                    kind = reply.kind
            pending = missing
            if not pending:
                return values
        self.stats.failures += 1
        hint = self._timeout_hint(kind, len(by_id))
        raise MotorCommError(by_id[pending[0]][0], register, kind, self.config.retries + 1, hint)

    def sync_write(self, register: str, values: Mapping[str, int]) -> None:
        """Write `register` on several motors in one SYNC WRITE (no status packets come back)."""
        payload: dict[int, list[int]] = {}
        size = None
        for name, value in values.items():
            m = self.motor(name)
            reg = m.servo.register(register)
            size = reg.size
            payload[m.id] = self.backend.to_bytes(_encode(reg, value, name), reg.size)
        if not payload:
            return
        address = self.motor(next(iter(values))).servo.register(register).address
        kind = self.backend.sync_write(self._port(), address, size, payload)
        self.stats.transactions += 1
        if kind != OK:
            self.stats.tx_fail += 1
            self.stats.failures += 1
            raise BusError(f"sync write of {register} on '{self.port_name}' failed ({kind})")

    def write_settings(self, motor: str, settings: Mapping[str, int]) -> None:
        """Write several registers of one motor, persisting EEPROM ones by the vendor's rule.

        EEPROM registers that already hold the value are not rewritten: flash wears out, and
        configure() runs on every connect."""
        m = self.motor(motor)
        eeprom = {n: v for n, v in settings.items() if m.servo.register(n).eeprom}
        changed = {n: v for n, v in eeprom.items() if self.read(n, motor) != v}
        ram = {n: v for n, v in settings.items() if n not in eeprom}
        if changed and self.backend.rules.eeprom_guard == "torque":
            self.write("Torque_Enable", motor, 0)  # Dynamixel refuses EEPROM writes with torque on
        unlock = changed and self.backend.rules.eeprom_guard == "lock" and "Lock" in m.servo.registers
        if unlock:
            self.write("Lock", motor, 0)  # Feetech keeps EEPROM writes across power-off only unlocked
        try:
            for name, value in changed.items():
                self.write(name, motor, value)
        finally:
            if unlock:
                self.write("Lock", motor, 1)
        for name, value in ram.items():
            self.write(name, motor, value)


def _encode(reg: Register, value: int, motor: str) -> int:
    try:
        return reg.encode(value)
    except ValueError as err:
        raise EdgevlaError(f"motor '{motor}': {err}") from None
