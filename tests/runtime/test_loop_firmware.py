"""Acceptance: the async loop driving the virtual servo firmware over a pty through `Robot`.

The firmware is the real protocol implementation on a pseudo-terminal; `Robot` talks to it with
the vendor SDK exactly as it would to an SO-101. Policies are the tiny SmolVLA-class model (in a
worker process, or behind a websocket server) and a replay of a known trajectory, whose rows can
be recognised on the servos.
"""

import os
import signal
import threading
import time

import numpy as np
import pytest

from .helpers import wave_actions, write_replay

pytest.importorskip("edgevla.drivers.robot", reason="servo drivers (#2) not merged yet")

from edgevla.drivers.calibration import normalize  # noqa: E402
from edgevla.drivers.robot import Robot  # noqa: E402
from edgevla.firmware.faults import Faults  # noqa: E402
from edgevla.firmware.robot import serve_robot  # noqa: E402
from edgevla.hosting import open_policy  # noqa: E402
from edgevla.policy_io import Expectation  # noqa: E402
from edgevla.runtime.loop import ControlLoop, LoopConfig  # noqa: E402
from edgevla.runtime.server import PolicyServer  # noqa: E402
from edgevla.runtime.workers import PolicyWorker  # noqa: E402

ROBOT = "so101_follower"


def _wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def arm():
    """A connected SO-101 follower on virtual firmware; yields (robot, served firmware)."""
    with serve_robot(ROBOT) as served:
        robot = Robot(ROBOT, served.port)
        robot.connect()
        try:
            yield robot, served
        finally:
            robot.disconnect()


def _expect(robot, cameras=()) -> Expectation:
    return Expectation(len(robot.joint_names), len(robot.joint_names), tuple(cameras), 50.0)


class GoalSampler:
    """Samples what the servos hold as Goal_Position, in normalised units, from a side thread."""

    def __init__(self, served, robot):
        self.served, self.robot, self.samples = served, robot, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        names = self.robot.joint_names
        while not self._stop.is_set():
            with self.served.bus.inspect() as bus:  # all joints of one sync write, never half of it
                raw = np.array([bus.servo(n).goal_position for n in names], dtype=np.float64)
            self.samples.append((time.monotonic(), normalize(raw, self.robot.table)))
            time.sleep(0.004)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def test_replayed_actions_reach_the_servos_in_tick_order(arm, tmp_path):
    robot, served = arm
    # 8.8 s of motion: long enough for the test, short enough that no pose recurs (the waves'
    # periods bring the arm back within 0.6 of its first pose after 9 s: a false match)
    path = write_replay(tmp_path / "wave.npz", chunk_size=20, fps=50.0, frames=440)
    policy = open_policy(str(path), transport="process", expect=_expect(robot))
    loop = ControlLoop(robot, PolicyWorker(policy), policy.spec, LoopConfig(fps=50.0, merge="latest"))
    loop.record_sent()
    with GoalSampler(served, robot) as sampler:
        loop.start()
        _wait_for(lambda: loop.stats.chunks >= 10)
        loop.stop()
    loop.worker.close()
    ticks = [t for t, _ in loop.sent]
    assert ticks == sorted(ticks) and len(set(ticks)) == len(ticks)
    trajectory = wave_actions(440, fps=50.0)
    goals = np.array([g for _, g in sampler.samples])
    dist = np.abs(goals[:, None, :] - trajectory[None, :, :]).max(axis=2)
    matched = dist.min(axis=1) < 0.3  # servo counts quantise the normalised units
    rows = dist.argmin(axis=1)[matched]
    assert len(rows) >= 20, "the servos never held the replayed goals"
    # After a stall the safety clamp (max step from the present position) sends part of a step,
    # which can sit on the row just before; anything further back is a chunk replayed out of order.
    assert np.all(np.diff(rows) >= -2), f"a servo went back to an older action: {rows.tolist()}"
    assert rows[-1] - rows[0] >= 20


def test_tiny_policy_drives_the_arm_and_a_killed_worker_is_survived(arm, tiny_checkpoint, synthetic_front):
    robot, served = arm
    policy = open_policy(str(tiny_checkpoint), transport="process", expect=_expect(robot, ["front"]))
    policy.backoff_s = (0.5, 0.5)  # a visible hold before the respawn
    loop = ControlLoop(
        robot,
        PolicyWorker(policy),
        policy.spec,
        LoopConfig(fps=50.0, task="pick"),
        cameras=(synthetic_front,),
    )
    with GoalSampler(served, robot) as sampler:
        loop.start()
        _wait_for(lambda: loop.stats.chunks >= 3)
        os.kill(policy._link.proc.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        _wait_for(lambda: loop.stats.worker_failures >= 1)
        failed_at = time.monotonic()
        chunks = loop.stats.chunks
        _wait_for(lambda: loop.stats.chunks >= chunks + 3)  # a respawned worker serves again
        assert loop.running
        loop.stop()
    loop.worker.close()
    s = loop.stats.summary()
    assert s["ticks_starved"] >= 5 and policy.reconnects == 1
    # while the worker was down (after the queue ran out) the servos' goals did not move
    held = [g for t, g in sampler.samples if failed_at + 0.25 < t < failed_at + 0.45]
    assert held and all(np.array_equal(g, held[0]) for g in held), (
        f"goals moved during the hold ({killed_at=})"
    )


def test_dropped_server_connection_is_survived(arm, tiny_checkpoint, synthetic_front):
    robot, _ = arm
    tiny = open_policy(tiny_checkpoint)
    server = PolicyServer(tiny, port=0, token="s").start()
    port = server.port
    policy = open_policy(server.url, transport="remote", expect=_expect(robot, ["front"]), token="s")
    policy.backoff_s = (0.1, 0.3)
    loop = ControlLoop(
        robot, PolicyWorker(policy), policy.spec, LoopConfig(fps=50.0), cameras=(synthetic_front,)
    )
    loop.start()
    try:
        _wait_for(lambda: loop.stats.chunks >= 3)
        server.close()  # the GPU box goes away
        _wait_for(lambda: loop.stats.worker_failures >= 1)
        time.sleep(0.5)
        server = PolicyServer(tiny, port=port, token="s").start()  # and comes back
        chunks = loop.stats.chunks
        _wait_for(lambda: loop.stats.chunks >= chunks + 3)
        assert loop.running and policy.reconnects >= 1
    finally:
        loop.stop()
        loop.worker.close()
        server.close()
    assert loop.stats.ticks_starved >= 1


def test_ten_percent_lost_status_packets_do_not_stop_the_loop(tmp_path):
    with serve_robot(ROBOT, faults=Faults(drop=0.10, seed=1)) as served:
        robot = Robot(ROBOT, served.port)
        _wait_for(lambda: _try_connect(robot), timeout=30)
        try:
            path = write_replay(tmp_path / "wave.npz", chunk_size=20, fps=50.0, frames=2000)
            policy = open_policy(str(path), transport="process", expect=_expect(robot))
            loop = ControlLoop(robot, PolicyWorker(policy), policy.spec, LoopConfig(fps=50.0))
            loop.start()
            _wait_for(lambda: loop.stats.ticks >= 150 and loop.stats.chunks >= 5)
            assert loop.running
            loop.stop()
            loop.worker.close()
        finally:
            robot.disconnect()
    assert served.bus.dropped > 10 and robot.bus.stats.retries > 10  # faults happened, retries absorbed them


def _try_connect(robot) -> bool:
    from edgevla.errors import EdgevlaError

    try:
        robot.connect()
        return True
    except EdgevlaError:
        return False


def _run_cli(*args: str, **kw):
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-m", "edgevla", "run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def test_run_command_on_the_virtual_arm_writes_its_statistics(tiny_checkpoint, tmp_path):
    import json

    stats_file = tmp_path / "s.json"
    with serve_robot(ROBOT) as served:
        proc = _run_cli(
            "--robot", ROBOT, "--port", served.port, "--policy", str(tiny_checkpoint), "--task", "pick the cube",
            "--camera", "front=synthetic?width=160&height=120", "--fps", "50", "--duration", "4",
            "--stats-json", str(stats_file), "--plot", str(tmp_path / "s.png"),
            # statistics, not the watchdog, are under test: a loaded machine can starve a 50 fps
            # loop or slow it below 90 % of its rate for seconds
            "--max-starved-seconds", "60", "--max-slow-seconds", "60",
        )  # fmt: skip
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        assert not any(served.bus.servo(n).torque for n in Robot(ROBOT, served.port).joint_names)
    s = json.loads(stats_file.read_text())
    for key in ("period_ms_p50", "period_ms_p99", "ticks", "ticks_starved", "actions_late", "chunk_ms_p50"):
        assert isinstance(s[key], int | float), key
    assert s["ticks"] >= 100 and s["chunks"] >= 1 and s["period_ms_nominal"] == 20.0
    assert "retries" in s["bus"] and (tmp_path / "s.png").stat().st_size > 10_000
    assert "Traceback" not in err


def test_run_says_a_missing_policy_folder_or_camera_once_in_one_line(tmp_path):
    from edgevla.paths import assets_dir

    shipped = str(assets_dir() / "small-reach" / "onnx-int8")  # it needs a front camera
    cases = ((str(tmp_path / "runs" / "pick"), "does not exist"), (shipped, "needs camera(s) front"))
    with serve_robot(ROBOT) as served:
        for policy, says in cases:
            proc = _run_cli("--robot", ROBOT, "--port", served.port, "--policy", policy, "--duration", "1")
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 2 and err.count("\n") == 1 and says in err, err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_stops_the_run_and_turns_torque_off(tmp_path, signum):
    path = write_replay(tmp_path / "wave.npz", chunk_size=20, fps=30.0, frames=2000)
    with serve_robot(ROBOT) as served:
        names = Robot(ROBOT, served.port).joint_names
        proc = _run_cli("--robot", ROBOT, "--port", served.port, "--policy", str(path), "--stats-every", "0.2",
                        "--stats-json", str(tmp_path / "s.json"))  # fmt: skip
        try:
            _wait_for(lambda: all(served.bus.servo(n).torque for n in names))
            proc.stderr.readline()  # running...
            for line in proc.stderr:  # wait for the live statistics to show chunks flowing
                if "ticks" in line and "chunk p50 nan" not in line:
                    break
        finally:
            proc.send_signal(signum)
            _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err  # the statistics are written, and the exit says it was stopped
        assert not any(served.bus.servo(n).torque for n in names)  # on_disconnect: torque_off
    assert "interrupted" in err and "Traceback" not in err
    assert (tmp_path / "s.json").exists()


@pytest.mark.slow
def test_bench_async_reports_the_loop_figures_with_the_machine_load():
    import json
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "edgevla", "bench", "async", "--preset", "tiny", "--duration", "3", "--json"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["ticks"] >= 100 and figures["chunks"] >= 1 and figures["load_average_1min"] >= 0
    assert figures["period_ms_nominal"] == 20.0 and "retries" in figures["bus"]


@pytest.mark.slow
def test_bench_async_with_the_dual_system_reports_both_rates():
    import json
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "edgevla", "bench", "async", "--preset", "tiny", "--duration", "4",
         "--vlm-hz", "2", "--json"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["dual_system"] is True and figures["chunks"] >= 2
    # System 2 at most twice a second, System 1 once per chunk
    assert 0 < figures["system2_hz"] <= 2.5 and figures["system1_hz"] > 0
    assert figures["context_age_ms_p50"] > 0 and figures["tick_ms_p50"] > 0
