"""The torch-free loops that turn an action head's step graph into a chunk, one per head.

A loop gets `run_step(feed) -> outputs`, one call of the artifact's head graph with the
per-chunk prefix cache already bound, and returns the chunk (1, chunk, max_action_dim),
normalised. Each loop is the numpy twin of its head's `sample` in edgevla.model.heads
(tests/export checks them against each other through the exported graphs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgevla.errors import EdgevlaError
from edgevla.runtime.head_math import FastCodec, ddim_chunk, decode_chunks, diffusion_time, from_logits
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
    files: dict[str, str] = field(default_factory=dict)  # the head's own artifact files, by name: text


class HeadLoop:
    """What a loop says about itself; `chunk(run_step, noise, guidance)` makes one chunk."""

    guidable = False  # RTC guidance acts between its steps
    needs_noise = False  # the chunk depends on the noise it is given
    can_hold = False  # may return a chunk of NaN: no chunk decoded, the policy holds
    iterative = False  # takes a step count (--steps)
    last_tokens = None  # token heads: the tokens behind the last chunk (for comparing backends)

    def __init__(self, settings: LoopSettings, num_steps: int | None = None):
        self.settings = settings
        self.num_steps = num_steps or settings.num_steps

    @staticmethod
    def graph_tensors(chunk: list, head: dict[str, Any], expert_hidden_size: int) -> dict[str, list]:
        """The head graph's own tensors -> the manifest fields behind each axis after the batch
        axis (`chunk`: those of chunk_size x max_action_dim), checked against what the graph declares."""
        return {}

    def chunk(self, run_step: RunStep, noise: np.ndarray, guidance: GuidanceTarget | None) -> np.ndarray:
        raise NotImplementedError


class FlowLoop(HeadLoop):
    """Euler integration of the flow head's velocity, with RTC guidance between steps."""

    guidable = True
    needs_noise = True
    iterative = True
    output = "velocity"

    @classmethod
    def graph_tensors(cls, chunk: list, head: dict[str, Any], expert_hidden_size: int) -> dict[str, list]:
        time_emb = [(expert_hidden_size, "expert_hidden_size")]
        return {"x_t": chunk, "time_emb": time_emb, cls.output: chunk}

    def time_embedding(self, t: float) -> np.ndarray:
        s = self.settings
        return time_embedding(t, s.expert_hidden_size, s.min_period, s.max_period)

    def chunk(self, run_step: RunStep, noise: np.ndarray, guidance: GuidanceTarget | None) -> np.ndarray:
        def velocity(x_t: np.ndarray, time_emb: np.ndarray) -> np.ndarray:
            return run_step({"x_t": x_t, "time_emb": time_emb})[0]

        return euler_chunk(velocity, noise, self.num_steps, self.time_embedding, guidance)


class DiffusionLoop(FlowLoop):
    """DDIM over `num_steps` of the head's training noise levels; RTC guidance inpaints the
    predicted clean chunk before each update."""

    output = "epsilon"

    def chunk(self, run_step: RunStep, noise: np.ndarray, guidance: GuidanceTarget | None) -> np.ndarray:
        timesteps = int(self.settings.head["train_timesteps"])

        def epsilon(x_t: np.ndarray, step: int) -> np.ndarray:
            return run_step({"x_t": x_t, "time_emb": self.time_embedding(diffusion_time(step, timesteps))})[0]

        return ddim_chunk(epsilon, noise, timesteps, self.num_steps, guidance)


class RegressionLoop(HeadLoop):
    """One graph call: the chunk itself."""

    @staticmethod
    def graph_tensors(chunk: list, head: dict[str, Any], expert_hidden_size: int) -> dict[str, list]:
        return {"actions": chunk}

    def chunk(self, run_step: RunStep, noise: np.ndarray, guidance: GuidanceTarget | None) -> np.ndarray:
        return run_step({})[0].astype(np.float32)


class BinsLoop(HeadLoop):
    """One graph call for every token's logits; argmax (or expected value) per dimension."""

    @staticmethod
    def graph_tensors(chunk: list, head: dict[str, Any], expert_hidden_size: int) -> dict[str, list]:
        return {"logits": [*chunk, (head.get("bins"), "head.bins")]}

    def tokens(self, run_step: RunStep) -> tuple[np.ndarray, np.ndarray]:
        head = self.settings.head
        low, high = np.asarray(head["low"], np.float64), np.asarray(head["high"], np.float64)
        logits = run_step({})[0][:, :, : len(low)]
        return from_logits(logits, low, high, head["decode"] == "expected")

    def chunk(self, run_step: RunStep, noise: np.ndarray, guidance: GuidanceTarget | None) -> np.ndarray:
        values, self.last_tokens = self.tokens(run_step)
        out = np.zeros((*values.shape[:2], self.settings.max_action_dim), np.float32)
        out[..., : values.shape[-1]] = values
        return out


class FastLoop(HeadLoop):
    """Greedy autoregressive decoding through the decode-step graph and its KV cache, then the
    FAST tokenizer back to a chunk; a sequence that does not spell one is a chunk of NaN."""

    can_hold = True

    @staticmethod
    def graph_tensors(chunk: list, head: dict[str, Any], expert_hidden_size: int) -> dict[str, list]:
        # the cache's first axis is the joint layers, its second the batch: check what follows
        cache = [None, *((size, "head.cache_shape") for size in head["cache_shape"][2:])]
        vocab = (head["vocab_size"] + 1, "head.vocab_size + 1")
        tensors: dict[str, list] = {"token": [(1, "one token")], "position": [], "logits": [vocab]}
        return tensors | dict.fromkeys(("suffix_k", "suffix_v", "suffix_k_out", "suffix_v_out"), cache)

    def __init__(self, settings: LoopSettings, num_steps: int | None = None):
        super().__init__(settings, num_steps)
        head = settings.head
        self.codec = FastCodec(
            settings.files[head["tokenizer"]], head["min_token"], head["max_token"], head["scale"]
        )
        self.end = int(head["vocab_size"])

    def tokens(self, run_step: RunStep, cache_shape: tuple[int, ...]) -> list[int]:
        suffix_k = suffix_v = np.zeros(cache_shape, np.float32)
        token, sequence = self.end, []
        for position in range(int(self.settings.head["max_tokens"])):
            feed = {
                "token": np.array([[token]], np.int64),
                "position": np.array([position], np.int64),
                "suffix_k": suffix_k,
                "suffix_v": suffix_v,
            }
            logits, suffix_k, suffix_v = run_step(feed)
            token = int(np.argmax(logits[0]))
            if token == self.end:
                break
            sequence.append(token)
        return sequence

    def chunk(self, run_step: RunStep, noise: np.ndarray, guidance: GuidanceTarget | None) -> np.ndarray:
        s = self.settings
        sequence = self.tokens(run_step, s.head["cache_shape"])
        self.last_tokens = [sequence]
        return decode_chunks(
            self.codec, [sequence], s.chunk_size, int(s.head["action_dim"]), s.max_action_dim
        )


LOOPS: dict[str, type[HeadLoop]] = {
    "flow": FlowLoop,
    "diffusion": DiffusionLoop,
    "regression": RegressionLoop,
    "bins": BinsLoop,
    "fast": FastLoop,
}


def make_loop(settings: LoopSettings, num_steps: int | None = None) -> HeadLoop:
    name = settings.head.get("name")
    if name not in LOOPS:
        raise EdgevlaError(
            f"the artifact's action head '{name}' is not one this edgevla runs ({', '.join(LOOPS)}): upgrade edgevla"
        )
    loop = LOOPS[name]
    if num_steps is not None and not loop.iterative:
        iterative = ", ".join(n for n, kind in LOOPS.items() if kind.iterative)
        raise EdgevlaError(
            f"--steps applies to the {iterative} heads; this policy's head is {name}: drop --steps"
        )
    if num_steps is not None and not 1 <= num_steps <= 10:
        raise EdgevlaError(f"--steps {num_steps} is outside 1..10")
    return loop(settings, num_steps)
