"""Fixtures for the driver tests: virtual arms served on real ptys (firmware/), edgevla buses on them."""

from __future__ import annotations

import dynamixel_sdk as dxl
import pytest
import scservo_sdk as scs

from edgevla.drivers.bus import MotorBus
from edgevla.firmware import serve_robot
from edgevla.hardware import load_robot

from .helpers import PATIENT


@pytest.fixture(autouse=True)
def patient_sdks(monkeypatch):
    """The unmodified SDKs wait 2 x LATENCY_TIMER + 2 ms; give them ~100 ms on this busy box."""
    monkeypatch.setattr(scs.port_handler, "LATENCY_TIMER", 50)
    monkeypatch.setattr(dxl.port_handler, "LATENCY_TIMER", 50)


@pytest.fixture(params=["so101_follower", "koch_follower"])
def served(request):
    with serve_robot(request.param) as arm:
        yield arm


@pytest.fixture
def bus_on(served):
    with MotorBus.for_robot(load_robot(served.robot.name), served.port, config=PATIENT) as bus:
        yield served, bus
