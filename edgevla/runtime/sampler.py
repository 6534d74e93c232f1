"""The flow-matching Euler sampler in numpy: the torch-free twin of `edgevla.model.flow`.

The exported denoise graph is one network call; the loop, the time embedding and the RTC
guidance live here so guidance can act between steps. `tests/export/test_sampler_twin.py`
checks these functions against the torch ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def time_embedding(t: float, size: int, min_period: float, max_period: float) -> np.ndarray:
    """Sinusoidal embedding (1, size) float32 of flow time t, computed in float64 like the network
    (`edgevla.model.heads.flow.time_embedding`): its arguments reach ~1.6e3 rad."""
    fraction = np.linspace(0.0, 1.0, size // 2, dtype=np.float64)
    period = min_period * (max_period / min_period) ** fraction
    angle = (2 * np.pi / period) * np.float64(np.float32(t))
    return np.concatenate([np.sin(angle), np.cos(angle)])[None].astype(np.float32)


@dataclass(frozen=True)
class GuidanceTarget:
    """RTC target in the model's space: actions (chunk, max_action_dim) normalised and padded,
    weights (chunk,) in [0, 1], guidance applied to the first `action_dim` dims only."""

    actions: np.ndarray
    weights: np.ndarray
    action_dim: int


def guide_velocity(x_t: np.ndarray, v_t: np.ndarray, t: float, target: GuidanceTarget) -> np.ndarray:
    """Twin of `edgevla.model.flow.guide_velocity` (see its docstring for the derivation):
    blend the predicted clean chunk x0 = x_t - t v toward the target and return the velocity
    that reaches the blend, (x_t - x0_guided) / t."""
    x0_hat = x_t - t * v_t
    weights = np.zeros_like(x0_hat)
    weights[..., : target.action_dim] = target.weights[..., None]
    x0_guided = x0_hat + weights * (target.actions - x0_hat)
    return (x_t - x0_guided) / t


def euler_chunk(
    velocity: Callable[[np.ndarray, np.ndarray], np.ndarray],
    noise: np.ndarray,
    num_steps: int,
    time_embed: Callable[[float], np.ndarray],
    guidance: GuidanceTarget | None = None,
) -> np.ndarray:
    """Integrate from t=1 (noise, (1, chunk, max_action_dim)) to t=0 in `num_steps` Euler steps.

    `velocity(x_t, time_emb)` is one network call; t takes the same float32 values as in torch.
    """
    dt = -1.0 / num_steps
    x_t = noise.astype(np.float32)
    for step in range(num_steps):
        t = float(np.float32(1.0 + step * dt))
        v_t = velocity(x_t, time_embed(t))
        if guidance is not None:
            v_t = guide_velocity(x_t, v_t, t, guidance).astype(np.float32)
        x_t = (x_t + np.float32(dt) * v_t).astype(np.float32)
    return x_t
