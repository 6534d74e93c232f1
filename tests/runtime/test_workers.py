"""The three transports behind PolicyWorker, with real threads, real child processes and pipes."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgevla.hosting import open_policy
from edgevla.runtime.link import LinkClosed
from edgevla.runtime.wire import Refused
from edgevla.runtime.workers import PolicyWorker

from .helpers import expect, wave_actions, write_replay

OBS = {"observation.state": np.zeros(6, np.float32), "task": "wave"}


def _submit(worker: PolicyWorker, tick: int, timeout: float = 10.0) -> None:
    """Submit as the loop does: retried every few ms until the worker accepts it."""
    deadline = time.monotonic() + timeout
    while not worker.submit(tick=tick, obs=OBS):
        assert time.monotonic() < deadline, "worker never accepted the request"
        time.sleep(0.005)


def _wait_result(worker: PolicyWorker, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = worker.poll()
        if result is not None:
            return result
        time.sleep(0.005)
    raise AssertionError("worker produced no result")


@pytest.mark.parametrize("transport", ["thread", "process"])
def test_worker_returns_chunks_stamped_with_their_tick(tmp_path, transport):
    policy = open_policy(str(write_replay(tmp_path / "wave.npz")), transport=transport, expect=expect())
    worker = PolicyWorker(policy)
    try:
        assert worker.submit(tick=42, obs=OBS)
        assert not worker.submit(tick=43, obs=OBS)  # one request at a time
        result = _wait_result(worker)
        assert result.error is None and result.request.tick == 42
        np.testing.assert_allclose(result.actions, wave_actions()[:10], atol=1e-6)
        assert worker.submit(tick=44, obs=OBS)  # free again once the result was collected
        assert _wait_result(worker).request.tick == 44
    finally:
        worker.close()


def test_killed_worker_process_is_respawned(tmp_path):
    policy = open_policy(str(write_replay(tmp_path / "wave.npz")), transport="process", expect=expect())
    policy.backoff_s = (0.05, 0.2)
    worker = PolicyWorker(policy)
    try:
        first_pid = policy._link.proc.pid
        os.kill(first_pid, signal.SIGKILL)
        worker.submit(tick=0, obs=OBS)
        failed = _wait_result(worker)
        assert failed.actions is None and "worker pipe" in failed.error
        assert not worker.submit(tick=1, obs=OBS)  # backing off after the failure
        _submit(worker, tick=1)
        result = _wait_result(worker)
        assert result.error is None and result.actions.shape == (10, 6)
        assert policy._link.proc.pid != first_pid and policy.reconnects == 1
        assert worker.failures == 1
    finally:
        worker.close()
    assert policy._link is None  # closing the worker ended the child process too


def test_worker_process_that_cannot_load_says_why(tmp_path):
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(Refused, match="cannot load the policy: .*broken.npz"):
        open_policy(str(bad), transport="process", expect=expect())


def test_policy_that_does_not_fit_the_robot_is_refused_on_every_transport(tmp_path):
    path = str(write_replay(tmp_path / "wave.npz"))
    for transport in ("thread", "process"):
        with pytest.raises(Refused, match="robot has 7"):
            open_policy(path, transport=transport, expect=expect(joints=7))


def test_remote_transport_needs_an_address(tmp_path):
    with pytest.raises(Exception, match="needs --policy ws://"):
        open_policy(str(tmp_path / "x.npz"), transport="remote", expect=expect())


def test_link_closed_is_reported_not_raised_to_the_loop(tmp_path):
    policy = open_policy(str(write_replay(tmp_path / "wave.npz")), transport="process", expect=expect())
    policy.backoff_s = (0.05, 0.1)
    worker = PolicyWorker(policy)
    policy._link.proc.kill()
    policy._link.proc.wait()
    worker.submit(tick=0, obs=OBS)
    assert isinstance(_wait_result(worker).error, str)
    worker.close()
    with pytest.raises(LinkClosed):
        policy.infer(OBS)  # closed for good: no reconnect after close()


def test_runtime_imports_with_torch_blocked():
    modules = [
        "wire",
        "link",
        "session",
        "server",
        "workers",
        "scheduler",
        "merging",
        "loop",
        "stats",
        "replay",
    ]
    code = "import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
    code += "".join(f"import edgevla.runtime.{m}\n" for m in modules)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_worker_process_leaves_a_core_to_the_control_loop(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    policy = open_policy(
        str(write_replay(tmp_path / "wave.npz")), transport="process", expect=expect(), threads=1
    )
    try:
        proc = policy._link.proc
        environ = Path(f"/proc/{proc.pid}/environ").read_text().split("\0")
        env = dict(item.split("=", 1) for item in environ if "=" in item)
        assert env["OMP_NUM_THREADS"] == "1" and proc.args[-2:] == ["--threads", "1"]
    finally:
        policy.close()
