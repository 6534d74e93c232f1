"""`edgevla rollout` on a virtual leader/follower pair (firmware processes on ptys): the leader,
moved by a hand while the policy drives, takes over; the attempt is recorded with its flags."""

import subprocess
import sys

import numpy as np

from edgevla.dataset import DatasetReader
from edgevla.dataset.corrections import INTERVENTION_KEY, PHASE_KEY, SUCCESS_COLUMN
from edgevla.record.virtual_arms import virtual_arm_pair


def test_moving_the_leader_takes_over_and_the_attempt_is_one_flagged_episode(tmp_path):
    root = tmp_path / "ds"
    with virtual_arm_pair("so101", tmp_path) as (leader, follower):
        result = subprocess.run(
            [
                sys.executable, "-m", "edgevla", "rollout", "--leader-port", leader, "--follower-port", follower,
                "--policy", "edgevla/assets/small-reach/onnx-int8", "--camera", "front=synthetic?width=96&height=96",
                "--task", "touch the red cube", "--dataset", str(root), "--episodes", "1",
                "--episode-seconds", "4", "--no-keyboard", "--vcodec", "libx264",
            ],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    ds = DatasetReader(root)
    assert ds.num_episodes == 1
    phase = ds.columns[PHASE_KEY].astype(int)
    assert (phase == 0).any() and (phase == 2).any()  # the policy drove, then the person (the sweeping hand)
    assert np.array_equal(ds.columns[INTERVENTION_KEY] > 0.5, phase > 0)
    assert ds.episodes[0].extra[SUCCESS_COLUMN] == -1  # nobody at a keyboard to say
    assert "1 attempt(s) recorded" in result.stdout
