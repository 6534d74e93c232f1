"""Choosing the action head in a recipe: `--set head.name=...` on a preset, the data-fitted
settings (bins' percentile range, FAST's tokenizer) saved with the checkpoint, `base_parts: vlm`
(only a checkpoint's VLM kept), resume, and LoRA's default targets on a non-flow head."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edgevla.cli import main
from edgevla.dataset import DatasetReader
from edgevla.errors import EdgevlaError
from edgevla.model.checkpoint import load_edgevla
from edgevla.train.loop import train
from edgevla.train.recipe import load_recipe
from edgevla.train.synthetic import write_reaching_dataset

ROOT = Path(__file__).resolve().parents[2]
SMALL_CPU = ROOT / "recipes" / "small-cpu.yaml"
SHRINK = {
    "base": "preset:tiny",
    "model": {"chunk_size": 10, "resize": 32},
    "batch_size": 4,
    "cpu_threads": 1,
    "num_workers": 0,
    "log_interval": 1,
    "eval.interval": 0,
    "optim.warmup_steps": 0,
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_reaching_dataset(tmp_path_factory.mktemp("data") / "reach", episodes=4, length=20)


def run(dataset: Path, out: Path, steps: int, resume: bool = False, **extra):
    recipe = load_recipe(SMALL_CPU, {**SHRINK, "datasets": [str(dataset)], "out": str(out), **extra})
    return train(recipe, str(SMALL_CPU), out, max_steps=steps, resume=resume)


@pytest.fixture(scope="module")
def bins_run(dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bins") / "run"
    run(dataset, out, 3, **{"head.name": "bins", "checkpoint_interval": 2})
    return out


def test_bins_range_is_the_training_actions_percentiles(bins_run, dataset):
    policy = load_edgevla(bins_run / "policy")
    assert policy.cfg.head.name == "bins"
    reader = DatasetReader(dataset)
    # the chunk starting at each frame of the training episodes (the last one is held out)
    frames = [i for ep in reader.episodes[:-1] for i in range(ep.from_index, ep.to_index)]
    chunks = np.stack([reader.action_chunk(i, policy.cfg.chunk_size)[0] for i in frames])
    normalised = policy.pre.action_stats.normalize(chunks).reshape(-1, policy.cfg.action_dim)
    low, high = np.percentile(normalised, 1, axis=0), np.percentile(normalised, 99, axis=0)
    np.testing.assert_allclose(policy.cfg.head.low, low, atol=1e-5)
    np.testing.assert_allclose(policy.cfg.head.high, high, atol=1e-5)


def test_resume_refits_the_same_range(bins_run, dataset):
    before = load_edgevla(bins_run / "policy").cfg.head
    run(dataset, bins_run, 4, resume=True, **{"head.name": "bins", "checkpoint_interval": 2})
    assert load_edgevla(bins_run / "policy").cfg.head == before


def test_base_parts_vlm_keeps_only_the_vlm_and_fits_a_fresh_fast_head(bins_run, dataset, tmp_path):
    base = load_edgevla(bins_run / "policy")
    out = tmp_path / "fast"
    run(dataset, out, 2, **{"base": str(bins_run / "policy"), "base_parts": "vlm", "head.name": "fast",
                            "model": {}, "mode": "expert", "optim.lr": 1e-3})  # fmt: skip
    policy = load_edgevla(out / "policy")
    assert policy.cfg.head.name == "fast" and policy.cfg.head.tokenizer and policy.cfg.head.max_tokens > 1
    old, new = base.net.state_dict(), policy.net.state_dict()
    vlm = [k for k in new if k.startswith(("vision.", "vlm_layers.", "embed_tokens", "connector"))]
    assert vlm and all(torch.equal(old[k], new[k]) for k in vlm)  # frozen and copied
    expert = [k for k in new if k.startswith("expert_layers.")]
    assert any(not torch.equal(old[k], new[k]) for k in expert)  # fresh, not the bins run's
    assert not any(k.startswith("head.action_queries") for k in new)


def test_a_trained_head_refuses_a_new_vocabulary_without_a_fresh_head(bins_run, dataset, tmp_path):
    with pytest.raises(EdgevlaError, match="head.bins: .*base_parts: vlm"):
        run(dataset, tmp_path / "x", 1, **{"base": str(bins_run / "policy"), "head.bins": 128, "model": {}})


def test_lora_default_targets_reach_a_regression_head(dataset, tmp_path):
    out = tmp_path / "lora"
    run(dataset, out, 2, **{"head.name": "regression", "mode": "lora", "lora.rank": 2})
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert load_edgevla(out / "policy").cfg.head.name == "regression"


def test_unknown_head_is_one_line(dataset, capsys):
    code = main(["train", "--recipe", str(SMALL_CPU), "--dataset", str(dataset), "--dry-run",
                 "--set", "base=preset:tiny", "--set", "head.name=mlp"])  # fmt: skip
    assert code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1 and "head.name 'mlp'" in err[0] and "flow, diffusion, regression, bins, fast" in err[0]
    )
