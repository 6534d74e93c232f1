"""The one Policy interface that the torch model, the ONNX runtime and the remote client share.

An observation is a plain dict of numpy arrays and the task string, keyed like lerobot:
    "observation.state":          float32 (state_dim,)        robot units (normalised joints)
    "observation.images.<camera>": uint8 (H, W, 3)            any size; the policy letterboxes
    "task":                        str                         the instruction
    "timestamp":                   float (optional)            seconds since the run started at
                                                               which the observation was taken
A chunk is float32 (chunk_size, action_dim) in robot units (unnormalised).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

Observation = dict[str, Any]


@dataclass(frozen=True)
class CameraSpec:
    name: str  # the part after "observation.images."
    height: int  # size the policy resizes to (letterbox); any input size is accepted
    width: int


@dataclass(frozen=True)
class PolicySpec:
    """What a client must know about a policy before sending it observations."""

    name: str
    cameras: tuple[CameraSpec, ...]
    state_dim: int
    action_dim: int
    chunk_size: int
    num_steps: int
    max_action_dim: int
    max_tokens: int
    fps: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Guidance:
    """Real-Time Chunking inpainting target for the next chunk.

    `actions[i]` (robot units) is what the previous chunk will execute at step i of the new one
    while inference runs; `weights[i]` in [0, 1] is how strongly step i is pulled toward it at
    each denoising step (1 = frozen, 0 = free).
    """

    actions: np.ndarray  # float32 (chunk_size, action_dim)
    weights: np.ndarray  # float32 (chunk_size,)


@runtime_checkable
class Policy(Protocol):
    spec: PolicySpec

    def infer(
        self, obs: Observation, noise: np.ndarray | None = None, guidance: Guidance | None = None
    ) -> np.ndarray:
        """Return one action chunk float32 (chunk_size, action_dim) in robot units.

        `noise` is float32 (chunk_size, max_action_dim); None draws it from N(0, 1).
        """
        ...
