"""Diffusion (Octo, Diffusion Policy): the expert predicts the noise in a noised chunk (epsilon
prediction, DDPM training over `head.train_timesteps` levels of a cosine schedule); sampling is
deterministic DDIM over `num_steps` of those levels.

The step graph is flow's (same layers and inputs: the noisy chunk and a sinusoidal embedding of
the level, t / T); only the target and the loop differ. The DDIM update lives in numpy
(edgevla.runtime.head_math) and runs between graph calls on both backends; RTC guidance is
inpainting there: the predicted clean chunk is blended toward the target before each update.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from edgevla.model.heads.base import GuidanceTarget, masked_mean, valid_steps
from edgevla.model.heads.flow import FlowHead
from edgevla.runtime.head_math import cosine_alpha_bars, ddim_chunk, diffusion_time
from edgevla.runtime.sampler import GuidanceTarget as NumpyTarget

if TYPE_CHECKING:
    from edgevla.model.network import SmolVLANet


class DiffusionHead(FlowHead):
    name = "diffusion"
    step_outputs = ("epsilon",)
    guidable = True

    @property
    def timesteps(self) -> int:
        return self.cfg.head.train_timesteps

    def embed_steps(self, steps: Tensor) -> Tensor:
        times = torch.tensor([diffusion_time(int(s), self.timesteps) for s in steps.tolist()])
        return self.embed(times.to(steps.device))

    def held_out_draws(self, actions: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        noise = torch.randn(actions.shape, generator=generator)
        return {
            "noise": noise,
            "steps": torch.randint(0, self.timesteps, (actions.shape[0],), generator=generator),
        }

    def loss(
        self,
        trunk: SmolVLANet,
        batch: dict[str, Tensor],
        expert_k: Tensor,
        expert_v: Tensor,
        prefix_mask: Tensor,
        noise: Tensor | None = None,
        steps: Tensor | None = None,
    ) -> Tensor:
        """Mean squared error of the predicted noise (real action dims, non-padded steps)."""
        actions = batch["actions"].float()
        noise = torch.randn_like(actions) if noise is None else noise
        if steps is None:
            steps = torch.randint(0, self.timesteps, (actions.shape[0],), device=actions.device)
        alpha = torch.tensor(cosine_alpha_bars(self.timesteps), device=actions.device)[steps].float()
        alpha = alpha[:, None, None]
        x_t = alpha.sqrt() * actions + (1 - alpha).sqrt() * noise
        epsilon = self.step(
            trunk, x_t, self.embed_steps(steps), expert_k=expert_k, expert_v=expert_v, prefix_mask=prefix_mask
        )
        errors = F.mse_loss(epsilon, noise, reduction="none")[..., : self.cfg.action_dim]
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
        batch, device = prefix_mask.shape[0], prefix_mask.device
        if noise is None:
            noise = torch.randn(batch, self.cfg.chunk_size, self.cfg.max_action_dim, device=device)

        def epsilon(x_t: np.ndarray, step: int) -> np.ndarray:
            steps = torch.full((batch,), step, dtype=torch.long)
            out = self.step(
                trunk,
                torch.from_numpy(x_t).to(device),
                self.embed_steps(steps).to(device),
                expert_k=expert_k,
                expert_v=expert_v,
                prefix_mask=prefix_mask,
            )
            return out.cpu().numpy()

        target = None
        if guidance is not None:
            target = NumpyTarget(
                guidance.actions.float().cpu().numpy(),
                guidance.weights.float().cpu().numpy(),
                guidance.action_dim,
            )
        steps = num_steps or self.cfg.num_steps
        chunk = ddim_chunk(epsilon, noise.float().cpu().numpy(), self.timesteps, steps, target)
        return torch.from_numpy(chunk).to(device)

    def manifest_fields(self) -> dict[str, Any]:
        return {"name": self.name, "train_timesteps": self.timesteps}
