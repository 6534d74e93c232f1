"""Damaged or mismatched artifacts: one clear EdgevlaError, and through the CLI one line + exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edgevla.errors import EdgevlaError
from edgevla.runtime.artifact import read_artifact, sha256_of
from edgevla.runtime.onnx_policy import OnnxPolicy

from .helpers import observation


def rehash(art, name):
    """Make the manifest agree with a damaged file, so the ONNX loader itself is reached."""
    manifest = json.loads((art / "manifest.json").read_text())
    manifest["files"][name] = {"sha256": sha256_of(art / name), "bytes": (art / name).stat().st_size}
    (art / "manifest.json").write_text(json.dumps(manifest))


def test_truncated_graph_is_refused(art_copy):
    graph = art_copy / "prefix.onnx"
    graph.write_bytes(graph.read_bytes()[: graph.stat().st_size // 2])
    with pytest.raises(EdgevlaError, match="prefix.onnx has .* bytes, the manifest says .*truncated"):
        OnnxPolicy(art_copy)


def test_modified_file_fails_its_hash(art_copy):
    tokenizer = art_copy / "tokenizer.json"
    data = bytearray(tokenizer.read_bytes())
    data[-2] = ord(" ") if data[-2] != ord(" ") else ord("\n")
    tokenizer.write_bytes(bytes(data))
    with pytest.raises(EdgevlaError, match="tokenizer.json does not match its sha256"):
        OnnxPolicy(art_copy)


def test_corrupt_graph_with_matching_manifest_is_one_clear_error(art_copy):
    graph = art_copy / "denoise.onnx"
    data = bytearray(graph.read_bytes())
    data[: len(data) // 3] = b"\xff" * (len(data) // 3)
    graph.write_bytes(bytes(data))
    rehash(art_copy, "denoise.onnx")
    with pytest.raises(EdgevlaError, match="denoise.onnx is not a loadable ONNX graph"):
        OnnxPolicy(art_copy)


def test_missing_file_and_missing_manifest(art_copy, tmp_path):
    (art_copy / "stats.npz").unlink()
    with pytest.raises(EdgevlaError, match="stats.npz is missing"):
        read_artifact(art_copy)
    with pytest.raises(EdgevlaError, match="not an exported artifact"):
        read_artifact(tmp_path)


def test_artifact_for_other_cameras(golden_art):
    policy = OnnxPolicy(golden_art)
    obs = observation(policy.spec)
    first = f"observation.images.{policy.spec.cameras[0].name}"
    obs["observation.images.gripper"] = obs.pop(first)
    with pytest.raises(EdgevlaError, match=f"observation lacks camera '{first}'"):
        policy.infer(obs)


def test_cli_predict_reports_one_line(art_copy, tmp_path):
    policy = OnnxPolicy(art_copy)
    obs = observation(policy.spec)
    np.savez(tmp_path / "obs.npz", **obs)

    def predict(out: str) -> subprocess.CompletedProcess:
        command = ["predict", "--policy", str(art_copy), "--obs", str(tmp_path / "obs.npz"), "--out", out]
        return subprocess.run([sys.executable, "-m", "edgevla", *command], capture_output=True, text=True)

    ok = predict(str(tmp_path / "a.npy"))
    assert ok.returncode == 0, ok.stderr
    assert np.load(tmp_path / "a.npy").shape == (policy.spec.chunk_size, policy.spec.action_dim)
    graph = art_copy / "prefix.onnx"
    graph.write_bytes(graph.read_bytes()[:1000])
    bad = predict(str(tmp_path / "b.npy"))
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "truncated" in bad.stderr and "Traceback" not in bad.stderr
