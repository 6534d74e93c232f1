"""The bus side of the calibration screen: one worker thread owns the servo bus.

The thread reads every joint's Present_Position at `period_s` and reports each sample through
`on_event` (the screen turns that into a Textual message). The user's steps arrive as commands
and run between reads, always through the library's calibration procedure
(`edgevla.drivers.arm_calibration`, which `edgevla calibrate` runs too): homing, range
recording, the checks, writing limits, saving the profile atomically.

Hand-guided (a real arm): torque off -> hold the arm mid-range -> `begin()` -> move every joint
through its range -> `finish_sweep()` -> review -> `write()` -> `save()`.
Self-moving (`auto=True`, e.g. a virtual leader served with `--motion sweep`): the joints move
by themselves, so there is no centre pose to hold: ranges are recorded with homing reset and
each range is centred on mid-turn afterwards (as `calibrate --auto`).
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

from edgevla.drivers.arm_calibration import ArmCalibration, refusal, review_ranges, save_profile
from edgevla.drivers.bus import BusConfig, MotorBus
from edgevla.drivers.calibration import Calibration, NormTable, check_fits, load_calibration, normalize
from edgevla.drivers.safety import disable_torque
from edgevla.errors import EdgevlaError
from edgevla.hardware import RobotDef

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
        self.steps = ArmCalibration(self.bus, robot, auto)
        self.phase = Phase.CONNECTING
        self._commands: queue.Queue[str] = queue.Queue()
        self._sweep_done = threading.Event()
        self._stopping = threading.Event()
        self._table: NormTable | None = None
        self._calibration: Calibration | None = None
        self._thread = threading.Thread(target=self._run, name=f"calibrate-{robot.name}", daemon=True)

    # --- called from the UI thread --------------------------------------------------------

    def start(self) -> CalibrationSession:
        self._thread.start()
        return self

    def begin(self) -> None:
        """Homing (hand-guided: the arm is held mid-range; auto: reset), then record ranges."""
        self._commands.put("begin")

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
            self.steps.prepare()
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
        self._calibration = None
        if self.auto:
            message = "Torque is off. The arm moves by itself: press Enter to record its ranges."
        else:
            message = "Torque is off. Hold the arm at the MIDDLE of every joint's range, then press Enter."
        self._emit_phase(Phase.CENTRE, message)

    def _do_restart(self) -> None:
        self._sweep_done.clear()
        disable_torque(self.bus)
        self._to_centre()

    def _do_begin(self) -> None:
        if self.phase is not Phase.CENTRE:
            return
        self.steps.start()
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

        calibration = self.steps.record(
            stop=lambda: self._sweep_done.is_set() or self._stopping.is_set(),
            on_sample=on_sample,
            period_s=0.005,
        )
        if self._stopping.is_set():
            return
        self._calibration = calibration
        flags = review_ranges(calibration, self.robot)
        problem = refusal(calibration)
        if problem:  # nothing to write: the ranges are no calibration (and show none)
            message = f"Calibration refused: {problem}. r records again."
        else:
            self._table = NormTable.build(self.robot, calibration)
            note = f" Check: {', '.join(f'{j} ({why})' for j, why in flags.items())}." if flags else ""
            message = f"Review the ranges.{note} Enter writes the limits to the servos; r records again."
        self._emit_phase(Phase.REVIEW, message, calibration=calibration, flags=flags)

    def _do_write(self) -> None:
        if self.phase is not Phase.REVIEW or self._calibration is None or refusal(self._calibration):
            return
        self.steps.write(self._calibration)
        self._emit_phase(
            Phase.WRITTEN,
            "Limits written to the servos. Enter saves the calibration file.",
            calibration=self._calibration,
        )

    def _do_save(self) -> None:
        if self.phase is not Phase.WRITTEN or self._calibration is None:
            return
        path = save_profile(self._calibration, self.out)
        self._emit_phase(
            Phase.SAVED,
            f"Saved {path}. r calibrates again; Escape goes back.",
            calibration=self._calibration,
            path=path,
        )


def _failure_text(err: BaseException, port: str) -> str:
    if isinstance(err, EdgevlaError):
        return f"{err}. Nothing more was written; fix it and press r to reconnect."
    return (
        f"serial port '{port}' stopped working ({err}); was it unplugged? "
        "Nothing more was written; press r to reconnect."
    )
