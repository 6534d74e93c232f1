"""The torch-free loops that turn an action head's step graph into a chunk, one per head.

A loop gets `run_step(feed) -> outputs`, one call of the artifact's head graph with the
per-chunk prefix cache already bound, and returns the chunk (1, chunk, max_action_dim),
normalised. Each loop is the numpy twin of its head's `sample` in edgevla.model.heads
(tests/export checks them against each other through the exported graphs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgevla.errors import EdgevlaError
from edgevla.runtime.sampler import GuidanceTarget, euler_chunk, time_embedding

RunStep = Callable[[dict[str, np.ndarray]], list[np.ndarray]]


@dataclass(frozen=True)
class LoopSettings:
    """What every loop may read: the manifest's shapes and its `head` entry."""

    chunk_size: int
    max_action_dim: int
    num_steps: int
    expert_hidden_size: int
    min_period: float
    max_period: float
    head: dict[str, Any]


class FlowLoop:
    """Euler integration of the flow head's velocity, with RTC guidance between steps."""

    guidable = True
    needs_noise = True

    def __init__(self, settings: LoopSettings, num_steps: int | None = None):
        self.settings = settings
        self.num_steps = num_steps or settings.num_steps

    def time_embedding(self, t: float) -> np.ndarray:
        s = self.settings
        return time_embedding(t, s.expert_hidden_size, s.min_period, s.max_period)

    def chunk(self, run_step: RunStep, noise: np.ndarray, guidance: GuidanceTarget | None) -> np.ndarray:
        def velocity(x_t: np.ndarray, time_emb: np.ndarray) -> np.ndarray:
            return run_step({"x_t": x_t, "time_emb": time_emb})[0]

        return euler_chunk(velocity, noise, self.num_steps, self.time_embedding, guidance)


LOOPS: dict[str, type] = {"flow": FlowLoop}


def make_loop(settings: LoopSettings, num_steps: int | None = None):
    name = settings.head.get("name")
    if name not in LOOPS:
        raise EdgevlaError(
            f"the artifact's action head '{name}' is not one this edgevla runs ({', '.join(LOOPS)}): upgrade edgevla"
        )
    if num_steps is not None and not 1 <= num_steps <= 10:
        raise EdgevlaError(f"--steps {num_steps} is outside 1..10")
    return LOOPS[name](settings, num_steps)
