"""Fixtures for the virtual firmware tests: arms served on real ptys, vendor SDK ports on them."""

from __future__ import annotations

import dynamixel_sdk as dxl
import pytest
import scservo_sdk as scs

from edgevla.firmware import serve_robot

from .helpers import open_port


@pytest.fixture(autouse=True)
def patient_sdks(monkeypatch):
    """Give the SDKs ~100 ms instead of ~34 ms before they call a status packet missing.

    Their timeout is 2 x LATENCY_TIMER + 2 ms (a module constant meant to be tuned to the
    adapter). On this shared 2-core box, while the SDK busy-waits on one core, the pty's kernel
    worker that moves bytes to the reader can be delayed past 34 ms (measured: ~1 read in 100)."""
    monkeypatch.setattr(scs.port_handler, "LATENCY_TIMER", 50)
    monkeypatch.setattr(dxl.port_handler, "LATENCY_TIMER", 50)


@pytest.fixture
def so101():
    with serve_robot("so101_follower") as arm:
        port = open_port(scs.PortHandler, arm.port, 1_000_000)
        yield arm, port, scs.PacketHandler(0)
        port.closePort()


@pytest.fixture
def koch():
    with serve_robot("koch_follower") as arm:
        port = open_port(dxl.PortHandler, arm.port, 1_000_000)
        yield arm, port, dxl.PacketHandler(2.0)
        port.closePort()
