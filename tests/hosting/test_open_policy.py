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
