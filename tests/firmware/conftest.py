"""Fixtures for the virtual firmware tests: arms served on real ptys, vendor SDK ports on them."""

from __future__ import annotations

import dynamixel_sdk as dxl
import pytest
import scservo_sdk as scs
from fw_helpers import open_port

from firmware import serve_robot


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
