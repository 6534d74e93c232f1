"""`Robot`: a follower or leader arm from a robot definition, a port and a calibration profile.

Implements `edgevla.drivers.interface.RobotIO`: values are normalised joint units (see
`calibration.py`) in the order of `joint_names`.

    with Robot(load_robot("so101_follower"), "/dev/ttyACM0") as arm:   # connect() ... disconnect()
        state = arm.read_state()
        sent = arm.send_action(state + 5)   # clamped to limits and to present +/- max_relative_target
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path

import numpy as np

from edgevla.drivers.bus import BusConfig, MotorBus
from edgevla.drivers.calibration import (
    Calibration,
    NormTable,
    check_fits,
    find_profile,
    load_calibration,
    normalize,
    unnormalize,
)
from edgevla.drivers.errors import BusError, MotorNotFoundError
from edgevla.drivers.homing import write_calibration
from edgevla.drivers.latency import check_latency
from edgevla.drivers.port import is_pseudo_terminal
from edgevla.drivers.safety import clamp_goal, disable_torque, enable_torque
from edgevla.drivers.setup import configure
from edgevla.errors import EdgevlaError
from edgevla.hardware import RobotDef, load_robot

log = logging.getLogger(__name__)


class Robot:
    def __init__(
        self,
        definition: RobotDef | str,
        port: str,
        calibration: Calibration | Path | str | None = None,
        *,
        baudrate: int | None = None,
        bus_config: BusConfig | None = None,
        torque: bool | None = None,
        arm_id: str | None = None,
    ):
        """`calibration`: a profile, a path to one, or None for the arm's own profile (`arm_id`,
        default the robot's name: see `calibration.find_profile`), else the shipped default.
        `torque`: hold position while connected (default: followers yes, leaders no)."""
        self.definition = definition if isinstance(definition, RobotDef) else load_robot(definition)
        self.name = self.definition.name
        self.joint_names = self.definition.joint_names
        self.uses_shipped_profile = False  # the read-only default of the virtual arm
        if not isinstance(calibration, dict):
            source = find_profile(self.definition, arm_id, calibration)
            self.uses_shipped_profile = source.shipped
            calibration = load_calibration(source.path)
            check_fits(calibration, self.definition, source.path)
        self.calibration = calibration
        self.table = NormTable.build(self.definition, calibration)
        self.low, self.high = self.table.bounds()
        self.max_step = np.array(
            [
                np.nan if m.max_relative_target is None else m.max_relative_target
                for m in self.definition.motors
            ]
        )
        self.torque = self.definition.role == "follower" if torque is None else torque
        self.bus = MotorBus.for_robot(self.definition, port, baudrate, bus_config)
        self.connected = False

    # --- RobotIO ----------------------------------------------------------------------------

    def connect(self) -> None:
        report = check_latency(self.bus.port_name)
        if report and report.too_high:
            log.warning(report.advice())
        self.bus.open()
        if self.uses_shipped_profile and not is_pseudo_terminal(self.bus.port_name):
            log.warning(
                f"{self.name} on {self.bus.port_name}: not calibrated yet, using the shipped profile of "
                f"the virtual arm; calibrate it: edgevla calibrate --robot {self.name} --port {self.bus.port_name}"
            )
        try:
            self._check_motors()
            configure(self.bus, self.definition)
            write_calibration(self.bus, self.calibration)
            if self.torque:
                enable_torque(self.bus)
        except BaseException:
            self._stop()
            raise
        self.connected = True

    def read_state(self) -> np.ndarray:
        raw = self.bus.sync_read("Present_Position")
        return normalize(np.fromiter(raw.values(), dtype=np.float64, count=len(raw)), self.table)

    def send_action(self, goal: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
        if not self.torque:
            raise EdgevlaError(
                f"'{self.name}' is a {self.definition.role} without torque: it cannot take goals"
            )
        goal = np.asarray(goal, dtype=np.float64)
        if goal.shape != (len(self.joint_names),):
            raise EdgevlaError(
                f"'{self.name}' expects {len(self.joint_names)} joint goals, got shape {goal.shape}"
            )
        if not np.all(np.isfinite(goal)):
            raise EdgevlaError(f"'{self.name}': goal contains NaN/inf: {goal.tolist()}")
        present = self.read_state() if present is None else np.asarray(present, dtype=np.float64)
        sent = clamp_goal(goal, present, self.low, self.high, self.max_step)
        raw = unnormalize(sent, self.table)
        self.bus.sync_write("Goal_Position", dict(zip(self.joint_names, raw.tolist(), strict=True)))
        return sent.astype(np.float32)

    def set_torque(self, on: bool) -> None:
        """Torque on where the joints are now (no jump), or off: a leader arm is driven to a pose
        this way (a person taking over from a policy) and then handed back to the hand."""
        if on:
            enable_torque(self.bus)
        else:
            disable_torque(self.bus)
        self.torque = on

    def disconnect(self, unreachable: Collection[str] = ()) -> None:
        """`unreachable`: motors known not to answer (see `silent_motors`), left alone."""
        if self.bus.port is None:
            return
        self._stop(unreachable)
        self.connected = False

    def silent_motors(self) -> list[str]:
        """The motors that do not answer a ping now: after a bus fault, which servo went quiet."""
        return [m.name for m in self.definition.motors if not self.bus.ping_id(m.id, attempts=2)]

    # --- safety -----------------------------------------------------------------------------

    def __enter__(self) -> Robot:
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.disconnect()

    def _check_motors(self) -> None:
        missing = [m for m in self.definition.motors if not self.bus.ping_id(m.id, attempts=3)]
        if missing:
            names = ", ".join(f"{m.name} (id {m.id})" for m in missing)
            raise MotorNotFoundError(
                f"'{self.name}' on '{self.bus.port_name}' at {self.bus.baudrate} baud: no answer from {names}; "
                "check power and cables, or run: edgevla motors scan --port PORT"
            )

    def _stop(self, unreachable: Collection[str] = ()) -> None:
        """Torque off (unless the robot definition says hold), then close the port, whatever fails."""
        answering = [name for name in self.joint_names if name not in unreachable]
        try:
            if self.definition.on_disconnect == "torque_off" and answering:
                disable_torque(self.bus, answering)
        except BusError as err:
            log.error("'%s': could not turn torque off: %s", self.name, err)
        finally:
            self.bus.close()
