"""L1 regression (OpenVLA-OFT): one expert pass over learned action queries, one per chunk step,
read out as the chunk directly. No noise, no iterations: the cheapest head per chunk, and the
one that averages distinct demonstrated solutions into one (its known weakness on multimodal
data such as `reach_either`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from edgevla.model.heads.base import ActionHead, GuidanceTarget, learned_queries, masked_mean, valid_steps

if TYPE_CHECKING:
    from edgevla.model.config import ModelConfig
    from edgevla.model.network import SmolVLANet


class RegressionHead(ActionHead):
    name = "regression"
    step_inputs = ()
    step_outputs = ("actions",)
    needs_noise = False

    def __init__(self, cfg: ModelConfig, width: int):
        super().__init__(cfg, width)
        self.action_queries = learned_queries(cfg.chunk_size, width)
        self.action_out_proj = nn.Linear(width, cfg.max_action_dim)

    def hidden(self, trunk: SmolVLANet, expert_k: Tensor, expert_v: Tensor, prefix_mask: Tensor) -> Tensor:
        """The expert's output (B, chunk, width) for the learned queries."""
        dtype = self.action_out_proj.weight.dtype
        queries = self.action_queries.to(dtype)[None].expand(prefix_mask.shape[0], -1, -1)
        return trunk.run_expert(queries, expert_k, expert_v, prefix_mask).to(dtype)

    def step(self, trunk: SmolVLANet, *, expert_k: Tensor, expert_v: Tensor, prefix_mask: Tensor) -> Tensor:
        """The prefix cache -> the chunk (B, chunk, max_action_dim), normalised, fp32."""
        return self.action_out_proj(self.hidden(trunk, expert_k, expert_v, prefix_mask)).float()

    def example_step_inputs(self) -> tuple[Tensor, ...]:
        return ()

    def loss(
        self,
        trunk: SmolVLANet,
        batch: dict[str, Tensor],
        expert_k: Tensor,
        expert_v: Tensor,
        prefix_mask: Tensor,
    ) -> Tensor:
        """Mean absolute error over real action dims and non-padded chunk steps."""
        predicted = self.step(trunk, expert_k=expert_k, expert_v=expert_v, prefix_mask=prefix_mask)
        errors = (predicted - batch["actions"].float()).abs()[..., : self.cfg.action_dim]
        return masked_mean(errors.mean(dim=-1), valid_steps(batch, errors))

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
            return self.step(trunk, expert_k=expert_k, expert_v=expert_v, prefix_mask=prefix_mask)
