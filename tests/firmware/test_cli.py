"""`edgevla firmware serve` as a subprocess: ready line, serving, clean shutdown, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import dynamixel_sdk as dxl
import pytest
import scservo_sdk as scs

from edgevla.cli import main
from edgevla.firmware.launch import served_firmware

from .helpers import open_port, sdk_call


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_ready_serves_and_removes_the_link(tmp_path, signum):
    link = tmp_path / "follower"
    with served_firmware("so101_follower", link=link) as served:
        assert served.port == str(link)
        assert link.is_symlink()
        port = open_port(scs.PortHandler, served.port, 1_000_000)
        assert sdk_call(port, scs.PacketHandler(0).ping, 6)[:2] == (777, scs.COMM_SUCCESS)
        port.closePort()
        served.process.send_signal(signum)
        assert served.process.wait(timeout=10) == 0
        assert "Traceback" not in served.stderr_text()
    assert not os.path.lexists(link)


def test_serve_with_faults_and_baud_for_dynamixel(tmp_path):
    options = ("--baud", "57600", "--silent-ids", "2", "--seed", "1")
    with served_firmware("koch_leader", *options, link=tmp_path / "koch") as served:
        port = open_port(dxl.PortHandler, served.port, 57600)
        ph = dxl.PacketHandler(2.0)
        assert sdk_call(port, ph.ping, 1)[:2] == (1190, dxl.COMM_SUCCESS)
        assert ph.ping(port, 2)[1] == dxl.COMM_RX_TIMEOUT
        port.closePort()


def test_fresh_motors_are_swapped_from_stdin(tmp_path):
    options = ("--fresh", "--motors", "2")
    with served_firmware(
        "so101_follower", *options, link=tmp_path / "fresh", stdin=subprocess.PIPE
    ) as served:
        port = open_port(scs.PortHandler, served.port, 1_000_000)
        ph = scs.PacketHandler(0)
        assert sdk_call(port, ph.write1ByteTxRx, 1, 55, 0)[0] == scs.COMM_SUCCESS  # unlock
        assert sdk_call(port, ph.write1ByteTxRx, 1, 5, 9)[0] == scs.COMM_SUCCESS  # shoulder_pan -> id 9
        assert sdk_call(port, ph.ping, 9)[1] == scs.COMM_SUCCESS
        served.process.stdin.write("plug shoulder_lift\n")
        served.process.stdin.flush()
        deadline = time.monotonic() + 10
        while "plugged: shoulder_lift" not in served.stderr_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "plugged: shoulder_lift" in served.stderr_text()
        assert ph.ping(port, 9)[1] == scs.COMM_RX_TIMEOUT  # the first motor is unplugged now
        assert sdk_call(port, ph.ping, 1)[1] == scs.COMM_SUCCESS
        port.closePort()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--robot", "nope"], "unknown robot 'nope'"),
        (["--robot", "so101_follower", "--drop", "2"], "'drop' must be a probability"),
        (["--robot", "so101_follower", "--baud", "12345"], "does not support 12345 baud"),
        (["--robot", "so101_follower", "--silent-ids", "x"], "--silent-ids"),
        (["--robot", "so101_follower", "--silent-after", "nan"], "'silent_after_s' must be a finite number"),
        (["--robot", "so101_follower", "--motion", "replay", "/nonexistent.csv"], "cannot read"),
        (["--robot", "so101_follower", "--motion", "dance"], "--motion expects"),
        (["--robot", "so101_follower", "--motors", "9"], "--motors must be 1..6"),
        (["--robot", "so101_follower", "--fresh", "--baud", "500000"], "--fresh servos keep"),
        (["--robot", "so101_follower", "--tcp", "5555"], "--tcp expects HOST:PORT"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(args, message, capsys):
    assert main(["firmware", "serve", *args]) != 0
    out, err = capsys.readouterr()
    assert message in err
    assert err.strip().count("\n") == 0, err
    assert out == ""


def test_link_in_the_way_is_refused_in_one_line_without_traceback(tmp_path):
    blocker = tmp_path / "taken"
    blocker.write_text("not a link")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgevla",
            "firmware",
            "serve",
            "--robot",
            "so101_follower",
            "--link",
            str(blocker),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "not a symlink" in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert blocker.read_text() == "not a link"


def test_bench_firmware_prints_one_json_object():
    result = subprocess.run(
        [sys.executable, "-m", "edgevla", "bench", "firmware", "--seconds", "0.2", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["sync_reads"] > 0
    assert 0 < figures["device_us_p50"] <= figures["device_us_p99"]
    assert 0 < figures["pty_round_trip_ms_p50"] <= figures["pty_round_trip_ms_p99"]


def test_firmware_imports_without_torch_or_transformers():
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
        "import edgevla.firmware as firmware, edgevla.cli.firmware, edgevla.cli.bench.firmware\n"
        "with firmware.serve_robot('koch_leader') as arm: print(arm.bus.positions())"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str([2048] * 6)
