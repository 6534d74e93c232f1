"""What every action head is: a short module on the expert trunk with one exported step graph.

A head turns the expert's hidden states into an action chunk. Each one names the inputs and
outputs of its step graph (the graph the runtime calls between its own numpy steps), builds
example inputs that fix the graph's static shapes, gives its training loss, and samples a chunk
in torch the same way its numpy twin in edgevla.runtime.head_loops does from the graph.
All of them read the prefix through the same per-chunk cache: expert_k, expert_v (expert
layers, B, P, kv_heads, head_dim) and prefix_mask (B, P) (`SmolVLANet.expert_cache`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from edgevla.errors import EdgevlaError

if TYPE_CHECKING:
    from edgevla.model.config import ModelConfig
    from edgevla.model.network import SmolVLANet


@dataclass
class GuidanceTarget:
    """RTC inpainting target in the model's space: normalised, padded to max_action_dim."""

    actions: Tensor  # (B, chunk, max_action_dim)
    weights: Tensor  # (B, chunk) in [0, 1]
    action_dim: int  # real dims; padded dims stay free


class ActionHead(nn.Module):
    name: ClassVar[str]
    step_inputs: ClassVar[tuple[str, ...]]  # the step graph's own inputs, before the prefix cache
    step_outputs: ClassVar[tuple[str, ...]]
    guidable: ClassVar[bool] = False  # can RTC guidance steer its sampling?
    needs_noise: ClassVar[bool] = True  # does sampling start from noise? (else `noise` is ignored)
    can_hold: ClassVar[bool] = False  # may sample a chunk of NaN: "no chunk, hold" (fast)

    def __init__(self, cfg: ModelConfig, width: int):
        super().__init__()
        self.cfg = cfg
        self.width = width

    def step(
        self, trunk: SmolVLANet, *inputs: Tensor, expert_k: Tensor, expert_v: Tensor, prefix_mask: Tensor
    ) -> Tensor | tuple[Tensor, ...]:
        """One call of the exported step graph."""
        raise NotImplementedError

    def example_step_inputs(self) -> tuple[Tensor, ...]:
        """Batch-of-one inputs of `step` (their shapes become the graph's static shapes)."""
        raise NotImplementedError

    def loss(
        self,
        trunk: SmolVLANet,
        batch: dict[str, Tensor],
        expert_k: Tensor,
        expert_v: Tensor,
        prefix_mask: Tensor,
    ) -> Tensor:
        """Mean training loss over real action dims and non-padded chunk steps."""
        raise NotImplementedError

    def sample(
        self,
        trunk: SmolVLANet,
        expert_k: Tensor,
        expert_v: Tensor,
        prefix_mask: Tensor,
        noise: Tensor | None = None,
        guidance: GuidanceTarget | None = None,
        num_steps: int | None = None,
    ) -> Tensor:
        """One chunk (B, chunk, max_action_dim), normalised, fp32 (`num_steps`: iterative heads)."""
        raise NotImplementedError

    def fit(self, chunks: np.ndarray) -> dict[str, Any]:
        """HeadConfig fields fitted on the training data's normalised action chunks (N, chunk,
        action_dim) when training starts (bins: the range; fast: the tokenizer). None by default."""
        return {}

    def check_fitted(self) -> None:
        if not self.cfg.head.fitted:
            raise EdgevlaError(
                f"the {self.name} head has not been fitted to training data (its "
                f"{'range' if self.name == 'bins' else 'tokenizer'} is empty): train it with `edgevla train` first"
            )

    def held_out_draws(self, actions: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        """The loss's random draws (noise, times, ...) for a held-out batch, from `generator`, so
        held-out losses compare across steps; keyword arguments of `loss`. None by default."""
        return {}

    def artifact_files(self) -> dict[str, str]:
        """Files the head's loop reads, written into the artifact (name -> text); its manifest
        entry names them. None by default."""
        return {}

    def manifest_fields(self) -> dict[str, Any]:
        """What the runtime's loop for this head needs, stored in the artifact's manifest."""
        return {"name": self.name}


def learned_queries(chunk: int, width: int) -> nn.Parameter:
    """One learned input token per chunk step (OpenVLA-OFT's empty action embeddings)."""
    return nn.Parameter(torch.randn(chunk, width) * 0.02)


def valid_steps(batch: dict[str, Tensor], errors: Tensor) -> Tensor:
    """(B, chunk) weights: 1 for chunk steps inside the episode, 0 for padding past its end."""
    if "action_is_pad" in batch:
        return (~batch["action_is_pad"].bool()).to(errors.dtype)
    return errors.new_ones(errors.shape[:2])


def masked_mean(per_step: Tensor, valid: Tensor) -> Tensor:
    """Mean of per-step losses (B, chunk) over the valid steps."""
    return (per_step * valid).sum() / valid.sum().clamp(min=1.0)
