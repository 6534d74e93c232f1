"""Observations shared by the export tests."""

from __future__ import annotations

import numpy as np

from edgevla.policy_io import PolicySpec


def observation(spec: PolicySpec, seed: int = 0, task: str = "pick up the red cube") -> dict:
    rng = np.random.default_rng(seed)
    obs = {f"observation.images.{c.name}": rng.integers(0, 256, (60, 80, 3), np.uint8) for c in spec.cameras}
    obs["observation.state"] = rng.normal(size=spec.state_dim).astype(np.float32)
    obs["task"] = task
    return obs


def noise(spec: PolicySpec, seed: int = 0) -> np.ndarray:
    return (
        np.random.default_rng(100 + seed)
        .standard_normal((spec.chunk_size, spec.max_action_dim))
        .astype(np.float32)
    )
