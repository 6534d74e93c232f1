"""Damaged or mismatched artifacts: one clear EdgevlaError, and through the CLI one line + exit 2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

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
    graph = art_copy / "context.onnx"
    graph.write_bytes(graph.read_bytes()[: graph.stat().st_size // 2])
    with pytest.raises(EdgevlaError, match="context.onnx has .* bytes, the manifest says .*truncated"):
        OnnxPolicy(art_copy)


def test_modified_file_fails_its_hash(art_copy):
    tokenizer = art_copy / "tokenizer.json"
    data = bytearray(tokenizer.read_bytes())
    data[-2] = ord(" ") if data[-2] != ord(" ") else ord("\n")
    tokenizer.write_bytes(bytes(data))
    with pytest.raises(EdgevlaError, match="tokenizer.json does not match its sha256"):
        OnnxPolicy(art_copy)


def test_corrupt_graph_with_matching_manifest_is_one_clear_error(art_copy):
    graph = art_copy / "head.onnx"
    data = bytearray(graph.read_bytes())
    data[: len(data) // 3] = b"\xff" * (len(data) // 3)
    graph.write_bytes(bytes(data))
    rehash(art_copy, "head.onnx")
    with pytest.raises(EdgevlaError, match="head.onnx is not a loadable ONNX graph"):
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
    graph = art_copy / "context.onnx"
    graph.write_bytes(graph.read_bytes()[:1000])
    bad = predict(str(tmp_path / "b.npy"))
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "truncated" in bad.stderr and "Traceback" not in bad.stderr


def edit_manifest(art, edit):
    manifest = json.loads((art / "manifest.json").read_text())
    edit(manifest)
    (art / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(chunk_size=-5), "chunk_size is -5, not a whole number > 0"),
        (lambda m: m.update(num_steps=0), "num_steps is 0"),
        (
            lambda m: m.update(max_action_dim=m["action_dim"]),
            r"max_action_dim says .* declares 'x_t' of shape",
        ),
        (lambda m: m.update(max_tokens=m["max_tokens"] + 1), r"max_tokens says .* declares 'tokens'"),
        (lambda m: m.update(expert_hidden_size=8), r"expert_hidden_size says 8, but head.onnx"),
        (lambda m: m.update(empty_cameras=m["empty_cameras"] + 1), r"cameras \+ empty_cameras says"),
        (
            lambda m: m.update(action_dim=m["max_action_dim"] + 1),
            "action_dim .* is larger than max_action_dim",
        ),
        (lambda m: m.update(min_period=float("nan")), "min_period is nan"),
        (lambda m: m.update(state_dim="6"), "state_dim is '6'"),
    ],
)
def test_manifest_numbers_are_checked_against_the_graphs_at_load(art_copy, edit, message):
    edit_manifest(art_copy, edit)
    with pytest.raises(EdgevlaError, match=message):
        OnnxPolicy(art_copy)


def test_a_graph_outside_the_artifact_or_outside_its_hash_list_is_refused(art_copy, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    shutil.copy(art_copy / "context.onnx", tmp_path / "elsewhere" / "context.onnx")
    edit_manifest(art_copy, lambda m: m["graphs"].update(context="../elsewhere/context.onnx"))
    with pytest.raises(
        EdgevlaError, match=r"graphs.context is '../elsewhere/context.onnx', outside the artifact"
    ):
        OnnxPolicy(art_copy)
    shutil.copy(art_copy / "head.onnx", art_copy / "other.onnx")
    edit_manifest(art_copy, lambda m: m["graphs"].update(context="context.onnx", head="other.onnx"))
    with pytest.raises(EdgevlaError, match=r"graphs.head 'other.onnx' is not in the manifest's hash list"):
        OnnxPolicy(art_copy)


@pytest.mark.parametrize("name", ["tokenizer.json", "stats.npz"])
def test_tokenizer_and_stats_must_be_in_the_hash_list(art_copy, name):
    edit_manifest(art_copy, lambda m: m["files"].pop(name))
    with pytest.raises(EdgevlaError, match=f"{name} is not in the manifest's hash list"):
        OnnxPolicy(art_copy)


def test_truncated_tokenizer_or_stats_that_match_the_manifest_are_one_line(art_copy, tmp_path):
    tokenizer = art_copy / "tokenizer.json"
    original = tokenizer.read_bytes()
    tokenizer.write_bytes(original[: len(original) // 2])
    rehash(art_copy, "tokenizer.json")
    with pytest.raises(EdgevlaError, match=f"tokenizer file {tokenizer} is damaged"):
        OnnxPolicy(art_copy)
    tokenizer.write_bytes(original)
    rehash(art_copy, "tokenizer.json")
    np.savez(tmp_path / "obs.npz", **observation(OnnxPolicy(art_copy).spec))
    stats = art_copy / "stats.npz"
    stats.write_bytes(stats.read_bytes()[: stats.stat().st_size // 2])
    rehash(art_copy, "stats.npz")
    command = [
        "predict",
        "--policy",
        str(art_copy),
        "--obs",
        str(tmp_path / "obs.npz"),
        "--out",
        str(tmp_path / "a.npy"),
    ]
    result = subprocess.run(
        [sys.executable, "-m", "edgevla", *command],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and f"{stats} is not a readable .npz" in result.stderr


def test_checkpoint_with_a_truncated_tokenizer_is_one_line(tiny_ckpt, tmp_path):
    from edgevla.model.checkpoint import load_policy

    ckpt = Path(shutil.copytree(tiny_ckpt, tmp_path / "ckpt"))
    tokenizer = ckpt / "tokenizer.json"
    tokenizer.write_bytes(tokenizer.read_bytes()[:1000])
    with pytest.raises(EdgevlaError, match=f"tokenizer file {tokenizer} is damaged"):
        load_policy(ckpt)
