"""edgevla reproduces lerobot 0.4.4's SmolVLA actions on golden checkpoints (no lerobot needed)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from edgevla.model.checkpoint import load_policy

from .smolvla_golden import CASES, GOLDEN, VLM_DIR, load_obs


@pytest.mark.parametrize("case", CASES)
def test_actions_match_lerobot(case):
    policy = load_policy(GOLDEN / case, vlm_dir=VLM_DIR)
    expected = np.load(GOLDEN / case / "actions.npy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the long-instruction case warns; tested separately
        actions = policy.infer(load_obs(case), noise=np.load(GOLDEN / case / "noise.npy"))
    assert actions.dtype == np.float32
    assert actions.shape == expected.shape
    assert np.abs(actions - expected).max() <= 1e-4


def test_legacy_layout_reads_stats_from_weights():
    legacy = load_policy(GOLDEN / "legacy_layout", vlm_dir=VLM_DIR)
    modern = load_policy(GOLDEN / "cams1_square", vlm_dir=VLM_DIR)
    assert not any(GOLDEN.joinpath("legacy_layout").glob("policy_*"))
    np.testing.assert_array_equal(legacy.pre.action_stats.std, modern.pre.action_stats.std)
    np.testing.assert_array_equal(legacy.pre.state_stats.mean, modern.pre.state_stats.mean)


def test_different_noise_gives_different_actions():
    policy = load_policy(GOLDEN / "cams1_square", vlm_dir=VLM_DIR)
    noise = np.load(GOLDEN / "cams1_square" / "noise.npy")
    first = policy.infer(load_obs("cams1_square"), noise=noise)
    second = policy.infer(load_obs("cams1_square"), noise=-noise)
    assert np.abs(first - second).max() > 1e-2
