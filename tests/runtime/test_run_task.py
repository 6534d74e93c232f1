"""`edgevla run --task`: checked once at start against what the policy takes, the same way for
every worker transport (a worker process used to refuse every request and be respawned
forever, the thread worker to cut the task with a warning)."""

import dataclasses
import shutil
import subprocess
import sys

import pytest

from edgevla.errors import EdgevlaError
from edgevla.firmware.robot import serve_robot
from edgevla.paths import PACKAGE_DIR
from edgevla.runtime.task import check_task

from .helpers import SPEC, write_replay

ROBOT = "so101_follower"
TOKENIZER = PACKAGE_DIR / "assets" / "tiny_bpe_tokenizer.json"  # the presets' tokenizer


def _run(port: str, policy, task: str, worker: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "edgevla", "run", "--robot", ROBOT, "--port", port]
    command += ["--policy", str(policy), "--task", task, "--worker", worker, "--duration", "3"]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_a_task_longer_than_the_protocol_carries_is_one_line_on_every_transport(tmp_path):
    policy = write_replay(tmp_path / "wave.npz")
    with serve_robot(ROBOT) as served:
        results = {worker: _run(served.port, policy, "x" * 5000, worker) for worker in ("process", "thread")}
    errors = {}
    for worker, result in results.items():
        lines = [line for line in result.stderr.strip().splitlines() if "edgevla run: error" in line]
        assert result.returncode == 2 and len(lines) == 1, result.stderr
        assert "5000 characters" in lines[0] and "shorten it" in lines[0], lines[0]
        assert "Traceback" not in result.stderr
        errors[worker] = lines[0]
    assert errors["process"] == errors["thread"]


def test_a_task_longer_than_the_tokenizer_reads_is_refused_with_the_counts(tmp_path):
    shutil.copyfile(TOKENIZER, tmp_path / "tokenizer.json")  # as in an artifact or checkpoint
    spec = dataclasses.replace(SPEC, max_tokens=16)
    check_task("pick the red cube", spec, str(tmp_path))
    with pytest.raises(EdgevlaError, match=r"is \d+ tokens; policy 'wire-test' reads at most 16"):
        check_task(" ".join(["pick the red cube and place it in the blue bowl"] * 3), spec, str(tmp_path))
