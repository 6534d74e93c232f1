"""Typed errors of the servo layer: each names the port, motor and register involved."""

from __future__ import annotations

from edgevla.errors import EdgevlaError


class BusError(EdgevlaError):
    """Something went wrong talking to servos."""


class PortError(BusError):
    """The serial port cannot be opened or configured (missing device, refused baud rate)."""


class MotorNotFoundError(BusError):
    """Motors the robot definition expects do not answer a ping."""


class MotorCommError(BusError):
    """A transaction with one motor still failed after every retry."""

    def __init__(self, motor: str, register: str, kind: str, attempts: int, hint: str = ""):
        self.motor, self.register, self.kind, self.attempts = motor, register, kind, attempts
        super().__init__(
            f"motor '{motor}': {register} failed after {attempts} attempt(s) ({kind}); "
            "check its cable, power and id (edgevla motors scan)" + (f"; {hint}" if hint else "")
        )


class MotorRefusedError(BusError):
    """The servo answered but refused the instruction (its status packet carries an error)."""


class CalibrationError(EdgevlaError):
    """A calibration profile is missing, malformed or does not fit the robot."""
