"""`edgevla.hosting.open_policy`: one call from a policy source to a running Policy."""

import subprocess
import sys

import numpy as np
import pytest

from edgevla.errors import EdgevlaError
from edgevla.hosting import open_policy
from edgevla.runtime.replay import ReplayPolicy

from ..runtime.helpers import expect, wave_actions, write_replay

OBS = {"observation.state": np.zeros(6, np.float32), "task": "wave", "timestamp": 0.0}


def test_each_source_says_what_it_is_or_why_it_cannot_open(tmp_path):
    assert isinstance(open_policy(write_replay(tmp_path / "wave.npz")), ReplayPolicy)
    with pytest.raises(EdgevlaError, match=r"policy '.*nowhere' does not exist: give a replay \.npz"):
        open_policy(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(EdgevlaError, match="notes.txt' is not a replay .npz, an exported artifact"):
        open_policy(tmp_path / "notes.txt")
    with pytest.raises(EdgevlaError, match="server address, not a local policy"):
        open_policy("ws://gpu-box:8765")  # serving or predicting needs a local policy
    with pytest.raises(EdgevlaError, match="unknown transport 'gpu'"):
        open_policy(tmp_path / "wave.npz", transport="gpu", expect=expect())


def test_opening_a_replay_imports_no_torch(tmp_path):
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
        "from edgevla.hosting import open_policy\n"
        "from edgevla.policy_io import Expectation\n"
        "policy = open_policy(sys.argv[1], expect=Expectation(6, 6, (), 30.0))\n"
        "print(policy.infer({'task': 'x', 'timestamp': 0.0}).shape)\n"
    )
    path = write_replay(tmp_path / "wave.npz")
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(10, 6)"


def test_the_worker_process_starts_and_ends_without_a_word_on_stderr(tmp_path):
    path = write_replay(tmp_path / "wave.npz")
    command = [sys.executable, "-m", "edgevla.hosting.worker_process", str(path), "--threads", "1"]
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == ""  # the parent's terminal shows this stderr


def test_a_worker_process_loads_the_source_with_the_callers_options(tmp_path):
    policy = open_policy(
        write_replay(tmp_path / "wave.npz"),
        transport="process",
        expect=expect(),
        threads=1,
        providers=["cpu"],
    )
    try:
        argv = policy._link.proc.args
        assert argv[1:3] == ["-m", "edgevla.hosting.worker_process"]
        assert argv[-4:] == ["--providers", "cpu", "--threads", "1"]
        np.testing.assert_allclose(policy.infer(OBS), wave_actions()[:10], atol=1e-6)
    finally:
        policy.close()
    assert policy._link is None  # closing the policy ended its worker process


DEMO_POLICY = (
    __import__("pathlib").Path(__file__).resolve().parents[2]
    / "edgevla"
    / "assets"
    / "small-reach"
    / "onnx-int8"
)


def session_threads(policy) -> set[int]:
    import onnxruntime as ort

    found = [*vars(policy).values(), *getattr(policy, "sessions", {}).values()]
    sessions = [v for v in found if isinstance(v, ort.InferenceSession)]
    assert sessions
    return {session.get_session_options().intra_op_num_threads for session in sessions}


def test_a_small_policy_gets_one_thread_unless_told(tmp_path, monkeypatch):
    """A second thread made the 12 MB demo policy slower (docs/PERFORMANCE.md): one by default,
    in this process and in a worker process; a bigger policy keeps all cores but one."""
    from edgevla.hosting.transports import ProcessPolicy
    from edgevla.runtime.workers import worker_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert session_threads(open_policy(DEMO_POLICY)) == {1}
    assert session_threads(open_policy(DEMO_POLICY, threads=2)) == {2}
    started = []
    monkeypatch.setattr(
        "edgevla.hosting.transports.LinkPolicy.__init__", lambda self, link, *a, **k: started.append(link)
    )
    monkeypatch.setattr("edgevla.hosting.transports.ProcessLink", lambda argv, env: (argv, env))
    ProcessPolicy(str(DEMO_POLICY), expect())
    argv, env = started[0]()
    assert argv[-2:] == ["--threads", "1"] and env["OMP_NUM_THREADS"] == "1"
    assert worker_threads(None, 500 * 2**20) == 3 and worker_threads(None, None) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert worker_threads(None, 12 * 2**20) == 2  # the user's choice wins
