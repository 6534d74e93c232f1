"""The bus side of the calibration screen: one worker thread owns the servo bus.

The thread reads every joint's Present_Position at `period_s` and reports each sample through
`on_event` (the screen turns that into a Textual message). The user's steps arrive as commands
and run between reads, always through the drivers' own procedures (`edgevla.drivers.homing`):
half-turn homing, range recording, writing limits, saving the profile atomically.

Hand-guided (a real arm): torque off -> hold the arm mid-range -> `home()` -> move every joint
through its range -> `finish_sweep()` -> review -> `write()` -> `save()`.
Self-moving (`auto=True`, e.g. a virtual leader served with `--motion sweep`): the joints move
by themselves, so there is no centre pose to hold: ranges are recorded with homing reset and
each range is centred on mid-turn afterwards (`homing.centre_on_range`, as `calibrate --auto`).
"""

from __future__ import annotations

import queue
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np
import serial

from edgevla.drivers import homing
from edgevla.drivers.bus import BusConfig, MotorBus
from edgevla.drivers.calibration import (
    Calibration,
    NormTable,
    check_fits,
    load_calibration,
    normalize,
    save_calibration,
)
from edgevla.drivers.errors import MotorNotFoundError
from edgevla.drivers.safety import disable_torque
from edgevla.drivers.setup import configure as configure_bus
from edgevla.errors import EdgevlaError
from edgevla.hardware import RobotDef

NEVER_MOVED_COUNTS = 20  # a range this small is a joint nobody moved
SMALL_RANGE_FRACTION = 0.10  # of one turn: suspicious for any joint of these arms
# What a bus can raise: the driver's errors, and raw port errors of an unplugged adapter (pyserial
# lets termios.error through from tcflush on a vanished pty/USB device).
BUS_FAILURES = (EdgevlaError, serial.SerialException, OSError, termios.error)


class Phase(str, Enum):
    CONNECTING = "connecting"
    CENTRE = "centre"  # torque off; waiting for the centre pose (auto: for the sweep to start)
    SWEEP = "sweep"  # recording ranges
    REVIEW = "review"  # ranges known, nothing written yet
    WRITTEN = "written"  # offsets and limits are in the servos
    SAVED = "saved"  # the profile file is written
    FAILED = "failed"


@dataclass(frozen=True)
class Sample:
    """One read of every joint (joint order). mins/maxes: the ranges so far while sweeping."""

    time: float
    raw: dict[str, int]
    normalised: dict[str, float] | None = None
    mins: dict[str, int] | None = None
    maxes: dict[str, int] | None = None


@dataclass(frozen=True)
class PhaseChanged:
    phase: Phase
    message: str
    calibration: Calibration | None = None
    flags: dict[str, str] = field(default_factory=dict)  # joint -> what looks wrong with its range
    path: Path | None = None


def review_ranges(calibration: Calibration, resolution: int) -> dict[str, str]:
    """Joints whose recorded range is suspicious, with the reason."""
    flags = {}
    for joint, cal in calibration.items():
        span = cal.range_max - cal.range_min
        if span < NEVER_MOVED_COUNTS:
            flags[joint] = "never moved"
        elif span < SMALL_RANGE_FRACTION * resolution:
            flags[joint] = f"range {span / resolution:.0%} of a turn"
    return flags


class CalibrationSession:
    def __init__(
        self,
        robot: RobotDef,
        port: str,
        out: Path,
        on_event: Callable[[object], None],
        *,
        auto: bool = False,
        baudrate: int | None = None,
        bus_config: BusConfig | None = None,
        period_s: float = 0.02,
    ):
        self.robot, self.port, self.out, self.auto = robot, port, Path(out), auto
        self.on_event, self.period_s = on_event, period_s
        self.bus = MotorBus.for_robot(robot, port, baudrate, bus_config)
        self.phase = Phase.CONNECTING
        self._commands: queue.Queue[str] = queue.Queue()
        self._sweep_done = threading.Event()
        self._stopping = threading.Event()
        self._table: NormTable | None = None
        self._offsets: dict[str, int] = {}
        self._calibration: Calibration | None = None
        self._thread = threading.Thread(target=self._run, name=f"calibrate-{robot.name}", daemon=True)

    # --- called from the UI thread --------------------------------------------------------

    def start(self) -> CalibrationSession:
        self._thread.start()
        return self

    def home(self) -> None:
        """Hand-guided: the arm is held mid-range; set half-turn homing, then record ranges."""
        self._commands.put("home")

    def start_sweep(self) -> None:
        """Auto: record ranges while the arm moves by itself."""
        self._commands.put("sweep")

    def finish_sweep(self) -> None:
        self._sweep_done.set()

    def write(self) -> None:
        self._commands.put("write")

    def save(self) -> None:
        self._commands.put("save")

    def restart(self) -> None:
        """Calibrate again from the centre pose (an arm calibrated before is fine)."""
        self._sweep_done.set()
        self._commands.put("restart")

    def close(self, timeout: float = 3.0) -> None:
        self._stopping.set()
        self._sweep_done.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # --- the worker thread ----------------------------------------------------------------

    def _emit_phase(self, phase: Phase, message: str, **extra) -> None:
        self.phase = phase
        self.on_event(PhaseChanged(phase, message, **extra))

    def _run(self) -> None:
        try:
            self.bus.open()
            configure_bus(self.bus, self.robot)
            self._table = self._existing_table()
            self._to_centre()
            while not self._stopping.is_set():
                try:
                    command = self._commands.get_nowait()
                except queue.Empty:
                    self._emit_sample(self.bus.sync_read("Present_Position"))
                    time.sleep(self.period_s)
                    continue
                getattr(self, f"_do_{command}")()
        except BUS_FAILURES as err:
            self._emit_phase(Phase.FAILED, _failure_text(err, self.port))
        finally:
            self._release()

    def _release(self) -> None:
        """Torque off (a leader never holds; a follower must not stay stiff in a half-done state)."""
        try:
            if self.bus.port is not None:
                disable_torque(self.bus)
        except BUS_FAILURES:
            pass  # the bus is gone: nothing more can be sent
        finally:
            self.bus.close()

    def _existing_table(self) -> NormTable | None:
        """The saved profile, if any, for normalised values before the new ranges exist."""
        try:
            calibration = load_calibration(self.out)
            check_fits(calibration, self.robot, self.out)
            return NormTable.build(self.robot, calibration)
        except EdgevlaError:
            return None

    def _emit_sample(self, raw: dict[str, int], mins=None, maxes=None) -> None:
        normalised = None
        if self._table is not None:
            values = normalize(np.array(list(raw.values()), dtype=np.float64), self._table)
            normalised = dict(zip(raw, (float(v) for v in values), strict=True))
        self.on_event(Sample(time.monotonic(), dict(raw), normalised, mins, maxes))

    def _to_centre(self) -> None:
        disable_torque(self.bus)
        self._calibration = None
        if self.auto:
            message = "Torque is off. The arm moves by itself: press Enter to record its ranges."
        else:
            message = "Torque is off. Hold the arm at the MIDDLE of every joint's range, then press Enter."
        self._emit_phase(Phase.CENTRE, message)

    def _do_restart(self) -> None:
        self._sweep_done.clear()
        self._to_centre()

    def _do_home(self) -> None:
        if self.phase is not Phase.CENTRE or self.auto:
            return
        self._offsets = homing.home_half_turn(self.bus)
        self._record(centre=False)

    def _do_sweep(self) -> None:
        if self.phase is not Phase.CENTRE or not self.auto:
            return
        homing.reset_homing(self.bus, self.robot.joint_names)
        self._record(centre=True)

    def _record(self, centre: bool) -> None:
        self._table = None
        self._sweep_done.clear()
        self._emit_phase(
            Phase.SWEEP,
            "Move EVERY joint through its whole range (min/max grow live); press Enter when done.",
        )
        last = [0.0]

        def on_sample(positions, mins, maxes):
            now = time.monotonic()
            if now - last[0] >= self.period_s:  # record fast, draw at the display rate
                last[0] = now
                self._emit_sample(positions, dict(mins), dict(maxes))

        ranges = homing.record_ranges(
            self.bus,
            stop=lambda: self._sweep_done.is_set() or self._stopping.is_set(),
            on_sample=on_sample,
            period_s=0.005,
        )
        if self._stopping.is_set():
            return
        if centre:
            self._offsets, ranges = homing.centre_on_range(self.bus, ranges)
            for name, offset in self._offsets.items():  # the sweep ran with offset 0: centre now
                self.bus.write_settings(name, {"Homing_Offset": offset})
        self._calibration = homing.build_calibration(self.bus, self._offsets, ranges)
        resolution = self.robot.motors[0].servo.resolution
        flags = review_ranges(self._calibration, resolution)
        self._table = _table_or_none(self.robot, self._calibration)
        note = f" Check: {', '.join(f'{j} ({why})' for j, why in flags.items())}." if flags else ""
        self._emit_phase(
            Phase.REVIEW,
            f"Review the ranges.{note} Enter writes the limits to the servos; r records again.",
            calibration=self._calibration,
            flags=flags,
        )

    def _do_write(self) -> None:
        if self.phase is not Phase.REVIEW or self._calibration is None:
            return
        # every motor must answer before the first write: never leave the arm half-written
        silent = [m for m in self.robot.motors if not self.bus.ping_id(m.id, attempts=3)]
        if silent:
            names = ", ".join(f"{m.name} (id {m.id})" for m in silent)
            raise MotorNotFoundError(f"no answer from {names} on '{self.port}'; nothing was written")
        homing.write_calibration(self.bus, self._calibration, force=True)
        self._emit_phase(
            Phase.WRITTEN,
            "Limits written to the servos. Enter saves the calibration file.",
            calibration=self._calibration,
        )

    def _do_save(self) -> None:
        if self.phase is not Phase.WRITTEN or self._calibration is None:
            return
        path = save_calibration(self._calibration, self.out)
        self._emit_phase(
            Phase.SAVED,
            f"Saved {path}. r calibrates again; Escape goes back.",
            calibration=self._calibration,
            path=path,
        )


def _table_or_none(robot: RobotDef, calibration: Calibration) -> NormTable | None:
    """A normalisation table for display; None while a range is still empty."""
    if any(c.range_min >= c.range_max for c in calibration.values()):
        return None
    return NormTable.build(robot, calibration)


def _failure_text(err: BaseException, port: str) -> str:
    if isinstance(err, EdgevlaError):
        return f"{err}. Nothing more was written; fix it and press r to reconnect."
    return (
        f"serial port '{port}' stopped working ({err}); was it unplugged? "
        "Nothing more was written; press r to reconnect."
    )
