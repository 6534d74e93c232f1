"""Shared paths and helpers for the model tests: golden fixtures made by lerobot 0.4.4."""

from __future__ import annotations

from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).resolve().parent.parent / "fixtures" / "smolvla"
VLM_DIR = GOLDEN / "vlm"
CASES = [
    "cams1_square",
    "cams2_empty_nonsquare",
    "cams3_allcross_halfexpert_long",
    "selfattn_narrow_expert",
    "legacy_layout",
]


def load_obs(case: str) -> dict:
    return dict(np.load(GOLDEN / case / "obs.npz"))
