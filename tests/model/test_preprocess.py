"""The torch-free preprocessing reproduces lerobot's model inputs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edgevla.runtime.preprocess import TaskTokenizer, letterbox, resize_bilinear

from .smolvla_golden import CASES, GOLDEN, VLM_DIR, load_obs

LEROBOT_CASES = [c for c in CASES if c != "legacy_layout"]


@pytest.mark.parametrize("case", LEROBOT_CASES)
def test_letterbox_matches_lerobot(case):
    obs, inputs = load_obs(case), np.load(GOLDEN / case / "inputs.npz")
    cameras = sorted(k for k in obs if k.startswith("observation.images."))
    for slot, key in enumerate(cameras):
        assert np.abs(letterbox(obs[key], 64) - inputs["images"][slot]).max() < 1e-5
    # slots after the real cameras are lerobot's empty cameras: all -1
    assert np.all(inputs["images"][len(cameras) :] == -1.0)


@pytest.mark.parametrize("case", LEROBOT_CASES)
def test_tokens_match_lerobot(case, recwarn):
    obs, inputs = load_obs(case), np.load(GOLDEN / case / "inputs.npz")
    max_length = json.loads((GOLDEN / case / "config.json").read_text())["tokenizer_max_length"]
    tokens, mask = TaskTokenizer(VLM_DIR / "tokenizer.json", max_length)(str(obs["task"]))
    count = int(inputs["token_mask"].sum())
    assert tokens.shape == (max_length,) and mask.sum() == count
    np.testing.assert_array_equal(tokens[:count], inputs["tokens"][:count])


def test_long_instruction_warns_and_is_cut_like_lerobot():
    tokenizer = TaskTokenizer(VLM_DIR / "tokenizer.json", 12)
    with pytest.warns(UserWarning, match="the policy reads 12"):
        tokens, mask = tokenizer("open the drawer then put the sponge inside and close it, then move the arm")
    assert mask.all() and tokens.shape == (12,)


def test_short_instruction_does_not_warn(recwarn):
    TaskTokenizer(VLM_DIR / "tokenizer.json", 12)("push the block")
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_letterbox_pads_left_and_top():
    wide = np.full((20, 40, 3), 255, dtype=np.uint8)  # resized to 16x32 then padded on top
    out = letterbox(wide, 32)
    assert out.shape == (3, 32, 32)
    assert np.all(out[:, :16] == -1.0) and np.allclose(out[:, 16:], 1.0)
    tall = np.full((40, 20, 3), 255, dtype=np.uint8)
    out = letterbox(tall, 32)
    assert np.all(out[:, :, :16] == -1.0) and np.allclose(out[:, :, 16:], 1.0)


def test_resize_identity_when_same_size():
    image = np.random.default_rng(0).random((3, 7, 9), dtype=np.float32)
    np.testing.assert_allclose(resize_bilinear(image, 7, 9), image, atol=1e-7)


def test_runtime_preprocess_imports_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None; "
        "import edgevla.runtime.preprocess"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("size", [(48, 80, 38, 64), (90, 60, 64, 42), (20, 30, 64, 96), (480, 640, 384, 512)])
def test_resize_matches_torch_bilinear(size):
    import torch
    import torch.nn.functional as F  # noqa: N812

    height, width, out_h, out_w = size
    image = np.random.default_rng(0).random((3, height, width), dtype=np.float32)
    reference = F.interpolate(
        torch.from_numpy(image)[None], size=(out_h, out_w), mode="bilinear", align_corners=False
    )
    assert np.abs(resize_bilinear(image, out_h, out_w) - reference[0].numpy()).max() < 5e-6
