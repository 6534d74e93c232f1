"""The simulator's follower joints are the virtual servos of the firmware, on a real pty."""

from __future__ import annotations

import time

import numpy as np
import scservo_sdk as scs

from edgevla.sim import joints
from edgevla.sim.bus import serve_arms
from edgevla.sim.world import SimConfig, SimWorld

PRESENT, GOAL, TORQUE = 56, 42, 40


def _sdk(port, call, *args):
    """One vendor SDK call, retried when a loaded machine delays the reply past the SDK timeout."""
    for _ in range(5):
        port.ser.reset_input_buffer()
        result = call(port, *args)
        if result[-2] == scs.COMM_SUCCESS if isinstance(result, tuple) else result == scs.COMM_SUCCESS:
            return result
        time.sleep(0.02)
    raise AssertionError(f"SDK call failed: {result}")


def _open(path: str):
    port = scs.PortHandler(path)
    assert port.openPort() and port.setBaudRate(1_000_000)
    return port, scs.PacketHandler(0)


def test_follower_servos_drive_the_scene_and_the_expert_holds_the_leader():
    world = SimWorld(SimConfig(cameras=("front",), width=48, height=48))
    with serve_arms(world) as arms:
        episode = arms.start_episode(3)
        assert np.allclose(arms.follow(), episode.start, atol=2 * np.pi / 4096)
        before = world.render("front")

        # the leader reads where the expert's hand holds it, over the wire with the vendor SDK
        leader, packets = _open(arms.leader_port)
        raw, _, _ = _sdk(leader, packets.read2ByteTxRx, 2, PRESENT)  # shoulder_lift
        expected = joints.angles_to_counts(world.kin, world.robot, episode.start)[1]
        assert abs(raw - expected) < 60  # the expert starts moving after a short reaction time
        leader.closePort()

        # a goal written to the follower over the wire moves the simulated joint
        follower, packets = _open(arms.follower_port)
        target = int(joints.angles_to_counts(world.kin, world.robot, episode.start)[0] + 300)
        _sdk(follower, packets.write2ByteTxRx, 1, GOAL, target)
        _sdk(follower, packets.write1ByteTxRx, 1, TORQUE, 1)
        deadline = time.monotonic() + 3
        while (
            time.monotonic() < deadline
            and abs(arms.follow()[0] - episode.start[0] - 300 * 2 * np.pi / 4096) > 0.01
        ):
            time.sleep(0.02)
        follower.closePort()
        moved = arms.follow()
        assert abs(moved[0] - episode.start[0] - 300 * 2 * np.pi / 4096) < 0.01
        world.set_angles(moved)
        assert np.abs(world.render("front").astype(int) - before).sum() > 500


def test_sim_serve_bus_serves_ptys_frames_and_episodes(tmp_path):
    import subprocess
    import sys

    sock = tmp_path / "frames.sock"
    result = subprocess.run(
        [
            sys.executable, "-m", "edgevla", "sim", "serve", "--bus", "--duration", "2.5",
            "--socket", str(sock), "--follower-link", str(tmp_path / "follower"), "--size", "32",
        ],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"ready frames {sock}" in result.stdout
    assert "episode 0: touch the " in result.stdout
    assert "EDGEVLA_CALIBRATION_DIR=" in result.stdout and not (tmp_path / "follower").exists()
