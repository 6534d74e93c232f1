"""Starting the virtual firmware in its own process and waiting for it (edgevla.firmware.launch)."""

from __future__ import annotations

import os
import time

import pytest
import scservo_sdk as scs

from edgevla.errors import EdgevlaError
from edgevla.firmware.launch import served_firmware, start_firmware

from .helpers import open_port, sdk_call


def test_served_firmware_answers_on_its_link_and_cleans_up(tmp_path):
    link = tmp_path / "leader"
    with served_firmware("so101_leader", "--motion", "sweep", link=link) as served:
        assert served.port == str(link) and link.is_symlink()
        port = open_port(scs.PortHandler, served.port, 1_000_000)
        assert sdk_call(port, scs.PacketHandler(0).ping, 1)[:2] == (777, scs.COMM_SUCCESS)
        port.closePort()
        process = served.process
    assert process.returncode == 0  # stopped cleanly, not killed
    assert not os.path.lexists(link)


def test_without_a_link_the_port_is_the_pty_itself():
    with served_firmware("koch_follower") as served:
        assert os.path.realpath(served.port).startswith("/dev/pts/")


def test_a_server_that_cannot_start_is_one_line_naming_why(tmp_path):
    began = time.monotonic()
    with pytest.raises(EdgevlaError, match="unknown robot 'nope'") as raised:
        start_firmware("nope", link=tmp_path / "arm")
    assert "\n" not in str(raised.value) and "exited" in str(raised.value)
    assert time.monotonic() - began < 30  # the exit is noticed, not waited out
