"""256-bin action tokens (RT-2, OpenVLA) decoded in parallel (OpenVLA-OFT): each action dimension
of each chunk step is one of `head.bins` bins spread evenly over that dimension's normalised
range, clipped at the training data's 1st and 99th percentiles (fitted when training starts and
kept in the config). One expert pass over learned queries gives every token's logits at once;
training is cross-entropy. Decoding: the argmax bin's centre, or (head.decode: expected) the
probability-weighted mean of the centres. The graph outputs logits; the decoding is numpy
(edgevla.runtime.head_math), the same on both backends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from edgevla.model.heads.base import ActionHead, GuidanceTarget, learned_queries, masked_mean, valid_steps
from edgevla.runtime.head_math import from_logits, percentile_range, to_bins

if TYPE_CHECKING:
    from edgevla.model.config import ModelConfig
    from edgevla.model.network import SmolVLANet


class BinsHead(ActionHead):
    name = "bins"
    step_inputs = ()
    step_outputs = ("logits",)
    needs_noise = False

    def __init__(self, cfg: ModelConfig, width: int):
        super().__init__(cfg, width)
        self.action_queries = learned_queries(cfg.chunk_size, width)
        self.action_out_proj = nn.Linear(width, cfg.max_action_dim * cfg.head.bins)

    def step(self, trunk: SmolVLANet, *, expert_k: Tensor, expert_v: Tensor, prefix_mask: Tensor) -> Tensor:
        """The prefix cache -> logits (B, chunk, max_action_dim, bins), fp32."""
        dtype = self.action_out_proj.weight.dtype
        queries = self.action_queries.to(dtype)[None].expand(prefix_mask.shape[0], -1, -1)
        hidden = trunk.run_expert(queries, expert_k, expert_v, prefix_mask).to(dtype)
        logits = self.action_out_proj(hidden).float()
        return logits.unflatten(-1, (self.cfg.max_action_dim, self.cfg.head.bins))

    def example_step_inputs(self) -> tuple[Tensor, ...]:
        return ()

    def fit(self, chunks: np.ndarray) -> dict[str, Any]:
        low, high = percentile_range(chunks)
        return {"low": tuple(low), "high": tuple(high)}

    def value_range(self) -> tuple[np.ndarray, np.ndarray]:
        self.check_fitted()
        return np.asarray(self.cfg.head.low), np.asarray(self.cfg.head.high)

    def loss(
        self,
        trunk: SmolVLANet,
        batch: dict[str, Tensor],
        expert_k: Tensor,
        expert_v: Tensor,
        prefix_mask: Tensor,
    ) -> Tensor:
        """Cross-entropy of every real dimension's bin, averaged over non-padded chunk steps."""
        dims = self.cfg.action_dim
        logits = self.step(trunk, expert_k=expert_k, expert_v=expert_v, prefix_mask=prefix_mask)[:, :, :dims]
        targets = to_bins(
            batch["actions"][..., :dims].float().cpu().numpy(), *self.value_range(), self.cfg.head.bins
        )
        targets = torch.from_numpy(targets).to(logits.device)
        errors = F.cross_entropy(logits.flatten(0, 2), targets.flatten(), reduction="none").view(
            targets.shape
        )
        return masked_mean(errors.mean(dim=-1), valid_steps(batch, errors))

    def tokens(self, trunk: SmolVLANet, expert_k: Tensor, expert_v: Tensor, prefix_mask: Tensor) -> tuple:
        """(values (B, chunk, action_dim) float32, bin indices int64) as numpy."""
        logits = self.step(trunk, expert_k=expert_k, expert_v=expert_v, prefix_mask=prefix_mask)
        logits = logits[:, :, : self.cfg.action_dim].cpu().numpy()
        return from_logits(logits, *self.value_range(), self.cfg.head.decode == "expected")

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
        with torch.no_grad():
            values, self.last_tokens = self.tokens(trunk, expert_k, expert_v, prefix_mask)
        padded = np.zeros((*values.shape[:2], self.cfg.max_action_dim), np.float32)
        padded[..., : values.shape[-1]] = values
        return torch.from_numpy(padded).to(prefix_mask.device)

    def manifest_fields(self) -> dict[str, Any]:
        low, high = self.value_range()
        head = self.cfg.head
        return {
            "name": self.name,
            "bins": head.bins,
            "decode": head.decode,
            "low": low.tolist(),
            "high": high.tolist(),
        }
