"""The artifact runtime imports and runs a chunk with torch and transformers blocked."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from edgevla.hosting import open_policy
from edgevla.runtime.onnx_policy import OnnxPolicy

from .helpers import noise, observation

SCRIPT = """
import sys
sys.modules["torch"] = None
sys.modules["transformers"] = None
sys.modules["lerobot"] = None
import numpy as np
from edgevla.hosting import open_policy
policy = open_policy(sys.argv[1])
data = np.load(sys.argv[2], allow_pickle=False)
obs = {k: data[k] for k in data.files if k != "noise"}
obs["task"] = str(obs["task"])
np.save(sys.argv[3], policy.infer(obs, noise=data["noise"]))
print(type(policy).__name__, sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers")))
"""


def test_runs_a_chunk_without_torch(tmp_path, tiny_art, tiny_ckpt):
    from edgevla.model.checkpoint import load_policy

    spec = OnnxPolicy(tiny_art).spec
    obs, eps = observation(spec), noise(spec)
    np.savez(tmp_path / "obs.npz", noise=eps, **obs)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            SCRIPT,
            str(tiny_art),
            str(tmp_path / "obs.npz"),
            str(tmp_path / "actions.npy"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "OnnxPolicy"
    expected = load_policy(tiny_ckpt).infer(obs, noise=eps)
    assert np.abs(np.load(tmp_path / "actions.npy") - expected).max() <= 1e-4


def test_loader_picks_by_directory_contents(tiny_art, tiny_ckpt):
    from edgevla.model.policy import TorchPolicy

    assert isinstance(open_policy(tiny_art), OnnxPolicy)
    assert isinstance(open_policy(tiny_ckpt), TorchPolicy)


def test_policy_draws_noise_when_none_given(tiny_art):
    policy = OnnxPolicy(tiny_art, seed=1)
    obs = observation(policy.spec)
    first, second = policy.infer(obs), policy.infer(obs)
    assert first.shape == (policy.spec.chunk_size, policy.spec.action_dim)
    assert np.abs(first - second).max() > 1e-3
