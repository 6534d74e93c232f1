"""A policy at another image size (edgevla.model.resolution, `export onnx --vision-size`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgevla.cli import main
from edgevla.errors import EdgevlaError
from edgevla.model.checkpoint import build_preset, load_policy, save_policy
from edgevla.model.resolution import at_resolution, interpolated_table
from edgevla.runtime.artifact import read_artifact

OBS_SEED = 4


def observation(policy) -> dict:
    rng = np.random.default_rng(OBS_SEED)
    obs = {
        f"observation.images.{c.name}": rng.integers(0, 256, (48, 64, 3), np.uint8)
        for c in policy.spec.cameras
    }
    obs["observation.state"] = rng.normal(size=policy.spec.state_dim).astype(np.float32)
    obs["task"] = "pick up the cube"
    return obs


def chunk(policy) -> np.ndarray:
    spec = policy.spec
    eps = np.random.default_rng(5).standard_normal((spec.chunk_size, spec.max_action_dim)).astype(np.float32)
    return policy.infer(observation(policy), noise=eps)


@pytest.mark.parametrize("method", ["interpolate", "bucket"])
def test_the_trained_size_changes_nothing(method):
    policy = build_preset("tiny", seed=2)
    same = at_resolution(policy, policy.cfg.resize, method)
    assert np.array_equal(chunk(same), chunk(policy))


def test_half_size_runs_a_quarter_of_the_patches():
    policy = build_preset("tiny", seed=2)  # 32 px, 8 px patches: a 4 x 4 grid
    for method in ("interpolate", "bucket"):
        half = at_resolution(policy, 16, method)
        assert half.pre.io.resize == half.cfg.resize == 16
        assert half.cfg.tokens_per_image == policy.cfg.tokens_per_image // 4
        actions = chunk(half)
        assert actions.shape == chunk(policy).shape and np.isfinite(actions).all()
    table = policy.net.vision.embeddings.position_embedding.weight
    interpolated = at_resolution(policy, 16, "interpolate").net.vision.embeddings
    assert interpolated.position_embedding.weight.shape == (4, table.shape[1])  # stored at 2 x 2
    assert interpolated.position_ids.tolist() == [0, 1, 2, 3]
    bucketed = at_resolution(policy, 16, "bucket").net.vision.embeddings
    assert torch.equal(bucketed.position_embedding.weight, table)  # the trained table
    assert bucketed.position_ids.tolist() == [0, 1, 4, 5]  # SmolVLM's bucketing of 2 x 2 in 4 x 4


def test_interpolation_is_bicubic_at_patch_centres():
    """A table linear in the patch coordinates stays linear at the new centres (away from the
    border, where bicubic sampling clamps)."""
    side, grid = 16, 8
    ys, xs = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    table = torch.tensor(np.stack([xs, ys], -1).reshape(-1, 2), dtype=torch.float32)
    out = interpolated_table(table, grid).reshape(grid, grid, 2).numpy()
    centres = (np.arange(grid) + 0.5) * side / grid - 0.5  # align_corners=False
    assert np.allclose(out[2:-2, 2:-2, 0], centres[None, 2:-2].repeat(grid - 4, 0), atol=1e-4)
    assert np.allclose(out[2:-2, 2:-2, 1], centres[2:-2, None].repeat(grid - 4, 1), atol=1e-4)


def test_a_size_that_does_not_fit_the_patches_is_refused():
    policy = build_preset("tiny")
    with pytest.raises(EdgevlaError, match="multiple of 16"):
        at_resolution(policy, 20)


def test_export_at_a_lower_size(tmp_path, capsys):
    ckpt = save_policy(build_preset("tiny", seed=2), tmp_path / "ckpt")
    out = tmp_path / "art"
    assert main(["export", "onnx", "--policy", str(ckpt), "--out", str(out), "--vision-size", "16"]) == 0
    assert read_artifact(out).resize == 16
    from edgevla.runtime.onnx_policy import OnnxPolicy

    half = at_resolution(load_policy(ckpt), 16)
    assert np.abs(chunk(OnnxPolicy(out)) - chunk(half)).max() <= 1e-4
    capsys.readouterr()
    argv = ["export", "onnx", "--policy", str(ckpt), "--out", str(tmp_path / "bad"), "--vision-size", "20"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--vision-size 20 must be a positive multiple of 16" in err and len(err.strip().splitlines()) == 1
