"""Artifacts exported once per test session (each export costs 10-40 s on a small CPU)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "model"))
from tests.model.smolvla_golden import GOLDEN, VLM_DIR

LONG_CASE = "cams3_allcross_halfexpert_long"  # golden lerobot checkpoint, tokenizer max length 12


@pytest.fixture(scope="session")
def golden_policy():
    from edgevla.model.checkpoint import load_policy

    return load_policy(GOLDEN / LONG_CASE, vlm_dir=VLM_DIR)


@pytest.fixture(scope="session")
def golden_art(tmp_path_factory, golden_policy) -> Path:
    from edgevla.export.onnx_graphs import export_onnx

    return export_onnx(golden_policy, tmp_path_factory.mktemp("golden") / "art", log=lambda _: None)


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory) -> Path:
    from edgevla.model.checkpoint import build_preset, save_policy

    return save_policy(build_preset("tiny", seed=3), tmp_path_factory.mktemp("tiny") / "ckpt")


@pytest.fixture(scope="session")
def tiny_art(tmp_path_factory, tiny_ckpt) -> Path:
    from edgevla.export.onnx_graphs import export_onnx
    from edgevla.model.checkpoint import load_policy

    return export_onnx(load_policy(tiny_ckpt), tmp_path_factory.mktemp("tiny") / "art", log=lambda _: None)


@pytest.fixture
def art_copy(tmp_path, golden_art) -> Path:
    """A private copy to damage."""
    return Path(shutil.copytree(golden_art, tmp_path / "art"))
