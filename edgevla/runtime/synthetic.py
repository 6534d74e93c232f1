"""Observations made up to fit a policy: random frames at its cameras' sizes, a random state and a
fixed instruction. What `bench policy` times and `check` compares on when no recorded ones are given."""

from __future__ import annotations

import numpy as np

from edgevla.runtime.policy import Observation, PolicySpec


def synthetic_observation(spec: PolicySpec, seed: int = 0) -> Observation:
    rng = np.random.default_rng(seed)
    obs: Observation = {
        f"observation.images.{c.name}": rng.integers(0, 256, (c.height, c.width, 3), np.uint8)
        for c in spec.cameras
    }
    obs["observation.state"] = rng.normal(size=spec.state_dim).astype(np.float32)
    obs["task"] = "pick up the red cube and place it in the bowl"
    return obs
