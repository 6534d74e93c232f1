"""The numpy sampler pieces equal their torch originals in edgevla.model."""

from __future__ import annotations

import numpy as np
import torch

from edgevla.model.heads.base import GuidanceTarget as TorchTarget
from edgevla.model.heads.flow import guide_velocity as torch_guide
from edgevla.model.heads.flow import time_embedding as torch_time_embedding
from edgevla.runtime.sampler import GuidanceTarget, guide_velocity, time_embedding


def test_guide_velocity_twin():
    rng = np.random.default_rng(0)
    x_t, v_t, target = (rng.normal(size=(2, 10, 8)).astype(np.float32) for _ in range(3))
    weights = rng.uniform(size=(2, 10)).astype(np.float32)
    for t in (1.0, 0.5, 0.1):
        ours = guide_velocity(x_t, v_t, t, GuidanceTarget(target, weights, 6))
        theirs = torch_guide(
            torch.from_numpy(x_t),
            torch.from_numpy(v_t),
            t,
            TorchTarget(torch.from_numpy(target), torch.from_numpy(weights), 6),
        )
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(ours[..., 6:], v_t[..., 6:], atol=1e-5)  # padded dims stay free


def test_time_embedding_twin():
    for t in np.linspace(1.0, 0.1, 10, dtype=np.float32):
        ours = time_embedding(float(t), 720, 4e-3, 4.0)
        theirs = torch_time_embedding(torch.tensor([float(t)], dtype=torch.float32), 720, 4e-3, 4.0).float()
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=0, atol=1e-6)
