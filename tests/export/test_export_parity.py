"""ONNX fp32 artifacts give the torch policy's actions (lerobot golden checkpoint and tiny preset)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from edgevla.errors import EdgevlaError
from edgevla.policy_io import Guidance
from edgevla.runtime.onnx_policy import OnnxPolicy

from .conftest import GOLDEN, LONG_CASE
from .helpers import noise, observation


def test_golden_artifact_matches_torch_and_lerobot(golden_art, golden_policy):
    onnx = OnnxPolicy(golden_art)
    obs = dict(np.load(GOLDEN / LONG_CASE / "obs.npz"))
    golden_noise = np.load(GOLDEN / LONG_CASE / "noise.npy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # this golden instruction is longer than 12 tokens on purpose
        actions = onnx.infer(obs, noise=golden_noise)
        expected = golden_policy.infer(obs, noise=golden_noise)
    assert actions.dtype == np.float32 and actions.shape == expected.shape
    assert np.abs(actions - expected).max() <= 1e-4
    assert np.abs(actions - np.load(GOLDEN / LONG_CASE / "actions.npy")).max() <= 1e-4


def test_tiny_artifact_matches_torch_on_several_observations(tiny_art, tiny_ckpt):
    from edgevla.model.checkpoint import load_policy

    torch_policy, onnx = load_policy(tiny_ckpt), OnnxPolicy(tiny_art)
    for seed in range(3):
        obs, eps = observation(onnx.spec, seed), noise(onnx.spec, seed)
        assert np.abs(onnx.infer(obs, noise=eps) - torch_policy.infer(obs, noise=eps)).max() <= 1e-4


def test_checkpoint_and_artifact_describe_the_same_inputs_and_outputs(tiny_art, tiny_ckpt):
    from edgevla.model.checkpoint import load_policy

    torch_policy, onnx = load_policy(tiny_ckpt), OnnxPolicy(tiny_art)
    assert onnx.manifest.io == torch_policy.cfg.io == onnx.pre.io == torch_policy.pre.io
    torch_spec, onnx_spec = torch_policy.spec, onnx.spec
    assert {**torch_spec.__dict__, "extra": {}} == {**onnx_spec.__dict__, "extra": {}}
    assert torch_spec.extra["empty_cameras"] == onnx_spec.extra["empty_cameras"] == 0


def test_guided_chunks_agree(tiny_art, tiny_ckpt):
    """RTC guidance runs in numpy for ONNX and in torch for the checkpoint: same chunks."""
    from edgevla.model.checkpoint import load_policy

    torch_policy, onnx = load_policy(tiny_ckpt), OnnxPolicy(tiny_art)
    spec = onnx.spec
    obs, eps = observation(spec), noise(spec)
    rng = np.random.default_rng(7)
    target = rng.normal(size=(spec.chunk_size, spec.action_dim)).astype(np.float32)
    weights = np.clip(1.0 - np.arange(spec.chunk_size) / 4, 0, 1).astype(np.float32)
    guidance = Guidance(target, weights)
    guided = onnx.infer(obs, noise=eps, guidance=guidance)
    assert np.abs(guided - torch_policy.infer(obs, noise=eps, guidance=guidance)).max() <= 1e-4
    assert np.abs(guided[0] - target[0]).max() <= 1e-4  # weight 1 reproduces the target
    assert np.abs(guided - onnx.infer(obs, noise=eps)).max() > 1e-3


def test_full_length_instruction_is_not_cut(golden_art, golden_policy):
    """An instruction of exactly the tokenizer's max length: same actions, no truncation warning."""
    tokenizer = golden_policy.pre.tokenizer

    def length(text: str) -> int:
        return len(tokenizer.tokenizer.encode(text + "\n").ids)

    task = "pick"
    while length(task) < tokenizer.max_length:  # grow one token at a time
        task = next(t for t in (f"{task} a", f"{task}a", f"{task}.") if length(t) == length(task) + 1)
    assert length(task) == tokenizer.max_length
    onnx = OnnxPolicy(golden_art)
    obs, eps = observation(onnx.spec, task=task), noise(onnx.spec)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a cut instruction warns
        actions = onnx.infer(obs, noise=eps)
        expected = golden_policy.infer(obs, noise=eps)
    assert np.abs(actions - expected).max() <= 1e-4
    shorter = onnx.infer({**obs, "task": task.rsplit(" ", 1)[0]}, noise=eps)
    assert np.abs(shorter - actions).max() > 1e-4  # the last word matters: it was read


def test_wider_language_width_gives_the_same_actions(tmp_path, golden_policy):
    from edgevla.export.onnx_graphs import export_onnx

    width = golden_policy.cfg.tokenizer_max_length + 8
    art = export_onnx(golden_policy, tmp_path / "wide", max_tokens=width, log=lambda _: None)
    assert json.loads((art / "manifest.json").read_text())["max_tokens"] == width
    onnx = OnnxPolicy(art)
    obs, eps = observation(onnx.spec), noise(onnx.spec)
    assert np.abs(onnx.infer(obs, noise=eps) - golden_policy.infer(obs, noise=eps)).max() <= 1e-4


def test_narrower_language_width_is_refused(tmp_path, golden_policy):
    from edgevla.export.onnx_graphs import export_onnx

    with pytest.raises(EdgevlaError, match="below the checkpoint's tokenizer max length"):
        export_onnx(golden_policy, tmp_path / "narrow", max_tokens=4)
    assert not (tmp_path / "narrow").exists()


def test_artifact_is_self_contained(golden_art, golden_policy):
    manifest = json.loads((golden_art / "manifest.json").read_text())
    assert set(manifest["files"]) == {
        "context.onnx",
        "state.onnx",
        "head.onnx",
        "tokenizer.json",
        "stats.npz",
    }
    assert manifest["cameras"] == list(golden_policy.cfg.cameras)
    assert manifest["chunk_size"] == golden_policy.cfg.chunk_size
    assert manifest["num_steps"] == golden_policy.cfg.num_steps
    assert manifest["precision"] == "fp32"
    with np.load(golden_art / "stats.npz") as stats:
        np.testing.assert_array_equal(stats["action.std"], golden_policy.pre.action_stats.std)
