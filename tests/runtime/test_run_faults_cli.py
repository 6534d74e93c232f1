"""`edgevla run` under faults: one live warning, one final line naming what failed, exit 2.

The firmware serves from this process over a real pty; `edgevla run` is its own process, with
a replay policy in a worker process (no torch), as a user would start it.
"""

import json
import os
import signal
import subprocess
import sys
import time

from edgevla.drivers.robot import Robot
from edgevla.firmware.faults import Faults
from edgevla.firmware.robot import serve_robot

from .helpers import write_replay

ROBOT = "so101_follower"


def _start_run(port: str, policy, *extra: str) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "edgevla",
        "run",
        "--robot",
        ROBOT,
        "--port",
        port,
        "--policy",
        str(policy),
    ]
    command += ["--fps", "30", "--duration", "60", "--stats-every", "0.3", *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_chunks(proc: subprocess.Popen) -> list[str]:
    """Read stderr until a live statistics line shows chunks flowing; return the lines read."""
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("ticks") and "chunk p50 nan" not in line:
            return lines
    raise AssertionError(f"the run ended before any chunk: {''.join(lines)}")


def test_run_stops_on_a_silent_servo_naming_it_and_turns_the_others_off(tmp_path):
    policy = write_replay(tmp_path / "wave.npz", chunk_size=20, fps=30.0, frames=3000)
    with serve_robot(ROBOT) as served:
        names = Robot(ROBOT, served.port).joint_names
        proc = _start_run(served.port, policy, "--stats-json", str(tmp_path / "s.json"))
        try:
            head = _wait_for_chunks(proc)
            served.bus.faults = Faults(silent_ids=frozenset({4}))  # wrist_flex's cable comes loose
            _, rest = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        torque = {name: served.bus.servo(name).torque for name in names}
    err = "".join(head) + rest
    assert proc.returncode == 2, err
    lines = err.strip().splitlines()
    warned = [i for i, line in enumerate(lines) if "servo bus read failed" in line]
    assert len(warned) == 1 and "wrist_flex" in lines[warned[0]], err
    assert lines[-1].startswith("edgevla run: error: servo wrist_flex (id 4) stopped answering"), lines[-1]
    assert "torque is off on the 5 servo(s) that answer" in lines[-1]
    named = [line for line in lines if "wrist_flex" in line]
    assert named == [lines[warned[0]], lines[-1]] and "Traceback" not in err, err  # nothing else
    assert torque.pop("wrist_flex") and not any(torque.values()), torque
    fault = json.loads((tmp_path / "s.json").read_text())["fault"]
    assert fault["kind"] == "bus" and fault["ticks"] >= 4  # 5 failed ticks in a row (the default)


def test_run_stops_when_its_worker_process_hangs(tmp_path):
    policy = write_replay(tmp_path / "wave.npz", chunk_size=20, fps=30.0, frames=3000)
    with serve_robot(ROBOT) as served:
        names = Robot(ROBOT, served.port).joint_names
        proc = _start_run(served.port, policy, "--max-starved-seconds", "0.5")
        try:
            head = _wait_for_chunks(proc)
            (worker,) = _children(proc.pid)
            os.kill(worker, signal.SIGSTOP)
            hung_at = time.monotonic()
            _, rest = proc.communicate(timeout=120)
            ended_after = time.monotonic() - hung_at
        finally:
            if proc.poll() is None:
                proc.kill()
        torque_left = [name for name in names if served.bus.servo(name).torque]
    err = "".join(head) + rest
    assert proc.returncode == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("edgevla run: error: no action to send for"), last
    assert "has not answered" in last and "torque is off" in last
    assert ended_after < 10, ended_after  # a chunk (0.67 s) + 0.5 s + shutting down; not 60 s
    assert not torque_left and "Traceback" not in err
    assert not _alive(worker)  # the stopped worker was ended, not left behind


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False
