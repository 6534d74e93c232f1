"""The servo commands as a user runs them (subprocesses): results, and one clear line on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edgevla.firmware import Sweep, serve_robot

pytestmark = pytest.mark.timeout(120)


def edgevla(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgevla", *args], capture_output=True, text=True, timeout=timeout
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_bad_input_is_one_clear_line(tmp_path):
    assert_one_line_error(
        edgevla("motors", "read", "--robot", "so999", "--port", "/dev/null"), "unknown robot 'so999'"
    )
    bad_robot = tmp_path / "arm.yaml"
    bad_robot.write_text(
        "name: arm\nrole: follower\nbaudrate: 1000000\nmotors: {j: {id: 1, servo: sts3215}}\n"
    )
    assert_one_line_error(
        edgevla("motors", "configure", "--robot", str(bad_robot), "--port", "/dev/null"),
        str(bad_robot),
        "j.norm",
    )
    bad_cal = tmp_path / "cal.json"
    bad_cal.write_text('{"shoulder_pan": {"id": 1}}')
    assert_one_line_error(
        edgevla(
            "motors",
            "read",
            "--robot",
            "so101_follower",
            "--port",
            "/dev/null",
            "--normalized",
            "--calibration",
            str(bad_cal),
        ),
        str(bad_cal),
        "shoulder_pan.drive_mode",
    )
    assert_one_line_error(
        edgevla("motors", "torque", "off", "--robot", "so101_follower", "--port", "/dev/ttyUSB77"),
        "'/dev/ttyUSB77' does not exist",
    )
    assert_one_line_error(
        edgevla("calibrate", "--robot", "koch_leader", "--port", "/dev/null", "--baud", "12345", "--auto"),
        "does not support 12345 baud",
    )


def test_silent_motor_is_named_by_the_cli():
    from edgevla.firmware import Faults

    with serve_robot("so101_follower", faults=Faults(silent_ids={2})) as arm:
        result = edgevla("motors", "read", "--robot", "so101_follower", "--port", arm.port)
    assert_one_line_error(result, "shoulder_lift", "Present_Position")


def test_scan_read_torque_on_a_virtual_arm():
    with serve_robot("so101_follower") as arm:
        scan = edgevla(
            "motors", "scan", "--port", arm.port, "--baud", "1000000", "--baud", "500000", "--json"
        )
        assert scan.returncode == 0, scan.stderr
        assert json.loads(scan.stdout) == {"1000000": {str(i): 777 for i in range(1, 7)}}
        on = edgevla(
            "motors", "torque", "on", "--robot", "so101_follower", "--port", arm.port, "--joint", "gripper"
        )
        assert on.returncode == 0, on.stderr
        assert [s.get("Torque_Enable") for s in arm.bus.servos] == [0, 0, 0, 0, 0, 1]
        read = edgevla("motors", "read", "--robot", "so101_follower", "--port", arm.port, "--json")
        assert json.loads(read.stdout)["values"] == dict.fromkeys(arm.robot.joint_names, 2048)


def test_calibrate_auto_on_sweeping_virtual_leader(tmp_path):
    out = tmp_path / "leader.json"
    with serve_robot("so101_leader", motion=Sweep(low=500, high=3600, period_s=1.0)) as arm:
        result = edgevla(
            "calibrate",
            "--robot",
            "so101_leader",
            "--port",
            arm.port,
            "--auto",
            "--seconds",
            "3",
            "--out",
            str(out),
        )
        assert result.returncode == 0, result.stderr
        assert f"saved {out}" in result.stdout
        cal = json.loads(out.read_text())
        assert list(cal) == list(arm.robot.joint_names)
        for joint, entry in cal.items():
            assert set(entry) == {"id", "drive_mode", "homing_offset", "range_min", "range_max"}
            assert entry["range_max"] - entry["range_min"] > 2900, joint
            assert arm.bus.servo(joint).get("Homing_Offset") == entry["homing_offset"]
        normalised = edgevla(
            "motors",
            "read",
            "--robot",
            "so101_leader",
            "--port",
            arm.port,
            "--normalized",
            "--calibration",
            str(out),
            "--json",
        )
        values = json.loads(normalised.stdout)["values"]
        assert all(-100 <= v <= 100 for v in values.values())


def test_bench_bus_prints_one_json_object():
    result = edgevla("bench", "bus", "--robot", "so101_follower", "--seconds", "1", "--json")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    for key in ("cycles_per_s", "cycle_ms_p50", "cycle_ms_p99", "retries", "errors"):
        assert key in figures
    assert figures["cycles"] > 0 and figures["failures"] == 0


def test_drivers_import_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
        "import edgevla.drivers.robot, edgevla.drivers.homing, edgevla.drivers.setup, edgevla.cli.motors\n"
        "import edgevla.cli.calibrate, edgevla.cli.bench.bus"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["run", "--robot", "so101_follower", "--port", "/dev/null", "--policy", "p", "--id", "bench-b"],
        ["teleop", "--leader-port", "/dev/null", "--follower-port", "/dev/null", "--leader-id", "bench-b"],
    ],
    ids=["run", "teleop"],
)
def test_arm_id_picks_that_arms_calibration_and_never_the_shipped_default(command):
    """A second arm of one type, named by --id, runs on its own profile; with none saved yet the
    command says how to make it rather than drive that arm with another arm's calibration."""
    result = edgevla(*command)
    assert_one_line_error(result, "no calibration profile", "bench-b.json", "--id bench-b")
