"""Frames leave the simulator over its Unix socket and arrive through the `sim:NAME` camera source."""

from __future__ import annotations

import socket
import struct
import time

import numpy as np
import pytest

from edgevla.cameras import CameraError, open_cameras, parse_camera_spec
from edgevla.sim.clock import ExpertDriven, WorldClock
from edgevla.sim.frames import FrameClient, FrameServer
from edgevla.sim.world import SimConfig, SimWorld


@pytest.fixture
def sock_path(tmp_path):
    return tmp_path / "sim.sock"


def test_client_gets_the_newest_frame_and_waits_for_a_newer_one(sock_path):
    server = FrameServer(sock_path)
    try:
        client = FrameClient(sock_path)
        for value in range(3):
            server.publish("front", np.full((4, 6, 3), value, np.uint8), time.monotonic())
        frame = client.next_frame("front")
        assert frame.seq == 2 and frame.image.shape == (4, 6, 3) and frame.image.max() == 2
        # nothing newer yet: the request waits until the next publish
        later = time.monotonic()
        server.publish("front", np.full((4, 6, 3), 9, np.uint8), later)
        newer = client.next_frame("front", after=frame.seq)
        assert newer.seq == 3 and newer.image.max() == 9 and newer.time == later
        client.close()
    finally:
        server.close()
    assert not sock_path.exists()


def test_garbage_on_the_socket_does_not_kill_the_server(sock_path):
    server = FrameServer(sock_path)
    try:
        server.publish("front", np.zeros((2, 2, 3), np.uint8), 0.0)
        raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        raw.connect(str(sock_path))
        raw.sendall(struct.pack(">I", 5) + b"\xc1\xc1\xc1\xc1\xc1")  # not msgpack
        raw.close()
        huge = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        huge.connect(str(sock_path))
        huge.sendall(struct.pack(">I", 1 << 31))
        huge.close()
        assert FrameClient(sock_path).next_frame("front").image.shape == (2, 2, 3)
    finally:
        server.close()


def test_sim_camera_source_reads_a_running_simulator(sock_path):
    world = SimWorld(SimConfig(cameras=("front", "wrist"), width=48, height=32, fps=30))
    with WorldClock(world, sock_path, ExpertDriven(world)):
        readers = open_cameras(
            [
                parse_camera_spec(f"front=sim?socket={sock_path}"),
                parse_camera_spec(f"hand=sim:wrist?socket={sock_path}"),
            ]
        )
        try:
            first = readers[0].wait_frame()
            second = readers[0].wait_frame(after_seq=first.seq)
            assert first.image.shape == (32, 48, 3)
            assert readers[1].wait_frame().image.shape == (32, 48, 3)
            assert second.seq > first.seq
        finally:
            for reader in readers:
                reader.stop()


def test_sim_camera_without_simulator_says_how_to_start_one(sock_path):
    with pytest.raises(CameraError, match="edgevla sim serve"):
        open_cameras([parse_camera_spec(f"front=sim?socket={sock_path}")])


def test_unknown_sim_camera_is_an_error(sock_path):
    world = SimWorld(SimConfig(cameras=("front",), width=32, height=32))
    with (
        WorldClock(world, sock_path, ExpertDriven(world)),
        pytest.raises(CameraError, match="cameras: front"),
    ):
        open_cameras([parse_camera_spec(f"top=sim:top?socket={sock_path}")])
