"""Observations made up to fit a policy: random frames at its cameras' sizes, a random state and a
fixed instruction. What `bench policy` times and `check` compares on when no recorded ones are given."""

from __future__ import annotations

import numpy as np

from edgevla.policy_io import STATE_KEY, TASK_KEY, Observation, PolicySpec, image_key


def synthetic_observation(spec: PolicySpec, seed: int = 0) -> Observation:
    rng = np.random.default_rng(seed)
    obs: Observation = {
        image_key(c.name): rng.integers(0, 256, (c.height, c.width, 3), np.uint8) for c in spec.cameras
    }
    obs[STATE_KEY] = rng.normal(size=spec.state_dim).astype(np.float32)
    obs[TASK_KEY] = "pick up the red cube and place it in the bowl"
    return obs
