"""Flow matching (SmolVLA, π0): the expert predicts a velocity for a noisy chunk; sampling
integrates it from noise to actions in Euler steps, optionally guided toward a target (RTC).

Convention (lerobot's SmolVLA): x_t = t * noise + (1 - t) * actions, so t = 1 is pure noise and
t = 0 the clean chunk; the network predicts v = noise - actions, and sampling integrates from
t = 1 to t = 0 in `num_steps` Euler steps: x <- x + dt * v, dt = -1/num_steps. Any step count
1..10 runs from the same weights; `time_sampling: high-noise` trains with noise levels skewed
toward t = 1, where one- and two-step sampling read the whole chunk off one velocity.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from edgevla.model.heads.base import ActionHead, GuidanceTarget, masked_mean, valid_steps

if TYPE_CHECKING:
    from edgevla.model.config import ModelConfig
    from edgevla.model.network import SmolVLANet

# t ~ Beta(a, 1) * 0.999 + 0.001: noisy times more often, never exactly 0. SmolVLA uses a = 1.5;
# a = 4 puts a third of the samples above t = 0.9, the regime one-step sampling lives in.
TIME_SAMPLING = {"beta": 1.5, "high-noise": 4.0}


def time_embedding(t: Tensor, size: int, min_period: float, max_period: float) -> Tensor:
    """Sinusoidal embedding (B, size) of flow time t (B,), computed in fp64 like lerobot: the
    arguments reach ~1.6e3 rad, where fp32 would lose ~1e-4."""
    fraction = torch.linspace(0.0, 1.0, size // 2, dtype=torch.float64, device=t.device)
    period = min_period * (max_period / min_period) ** fraction
    angle = (2 * math.pi / period)[None, :] * t.double()[:, None]
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)


def guide_velocity(x_t: Tensor, v_t: Tensor, t: float, target: GuidanceTarget) -> Tensor:
    """Pull the predicted clean chunk toward `target` and return the matching velocity.

    With x_t = t * noise + (1 - t) * x0 and v = noise - x0, the clean chunk the network
    predicts is x0_hat = x_t - t * v. We blend it toward the target per step i:
        x0_guided = x0_hat + w_i * (target_i - x0_hat)      (real action dims only)
    and return the velocity that leads to it from x_t: v' = (x_t - x0_guided) / t.
    The Euler step x + dt * v' then moves toward x0_guided; at the last step (dt = -t) it lands
    exactly on it, so w_i = 1 reproduces the target and w_i = 0 leaves the policy free.
    Needs t > 0, which holds at every Euler step (t >= 1/num_steps).
    """
    x0_hat = x_t - t * v_t
    weights = torch.zeros_like(x0_hat)
    weights[..., : target.action_dim] = target.weights[..., None].to(x0_hat.dtype)
    x0_guided = x0_hat + weights * (target.actions.to(x0_hat.dtype) - x0_hat)
    return (x_t - x0_guided) / t


class FlowHead(ActionHead):
    name = "flow"
    step_inputs = ("x_t", "time_emb")
    step_outputs = ("velocity",)
    guidable = True

    def __init__(self, cfg: ModelConfig, width: int):
        super().__init__(cfg, width)
        # lerobot's names (its checkpoints load here unchanged)
        self.action_in_proj = nn.Linear(cfg.max_action_dim, width)
        self.action_time_mlp_in = nn.Linear(2 * width, width)
        self.action_time_mlp_out = nn.Linear(width, width)
        self.action_out_proj = nn.Linear(width, cfg.max_action_dim)

    def embed(self, t: Tensor) -> Tensor:
        return time_embedding(t, self.width, self.cfg.min_period, self.cfg.max_period)

    def step(
        self,
        trunk: SmolVLANet,
        x_t: Tensor,
        time_emb: Tensor,
        *,
        expert_k: Tensor,
        expert_v: Tensor,
        prefix_mask: Tensor,
    ) -> Tensor:
        """x_t (B, chunk, max_action_dim) fp32 and the time embedding (B, width) -> velocity, fp32.
        The fp64 sinusoid stays outside the graph (TensorRT and fp16 graphs have no fp64)."""
        dtype = self.action_in_proj.weight.dtype
        actions = self.action_in_proj(x_t.to(dtype))
        times = time_emb.to(dtype)[:, None, :].expand_as(actions)
        fused = self.action_time_mlp_in(torch.cat([actions, times], dim=2))
        hidden = trunk.run_expert(self.action_time_mlp_out(F.silu(fused)), expert_k, expert_v, prefix_mask)
        return self.action_out_proj(hidden.to(self.action_out_proj.weight.dtype)).float()

    def example_step_inputs(self) -> tuple[Tensor, ...]:
        return torch.zeros(1, self.cfg.chunk_size, self.cfg.max_action_dim), torch.zeros(1, self.width)

    def sample_time(self, batch: int, device: torch.device | str) -> Tensor:
        beta = torch.distributions.Beta(
            torch.tensor(TIME_SAMPLING[self.cfg.head.time_sampling]), torch.tensor(1.0)
        )
        return (beta.sample((batch,)) * 0.999 + 0.001).to(device)

    def held_out_draws(self, actions: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        noise = torch.randn(actions.shape, generator=generator)
        return {"noise": noise, "time": torch.rand(actions.shape[0], generator=generator) * 0.999 + 0.001}

    def loss(
        self,
        trunk: SmolVLANet,
        batch: dict[str, Tensor],
        expert_k: Tensor,
        expert_v: Tensor,
        prefix_mask: Tensor,
        noise: Tensor | None = None,
        time: Tensor | None = None,
    ) -> Tensor:
        """Mean squared velocity error over real action dims and non-padded chunk steps."""
        actions = batch["actions"].float()
        noise = torch.randn_like(actions) if noise is None else noise
        time = self.sample_time(actions.shape[0], actions.device) if time is None else time
        x_t = time[:, None, None] * noise + (1 - time[:, None, None]) * actions
        velocity = self.step(
            trunk, x_t, self.embed(time), expert_k=expert_k, expert_v=expert_v, prefix_mask=prefix_mask
        )
        errors = F.mse_loss(velocity, noise - actions, reduction="none")[..., : self.cfg.action_dim]
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
        steps = num_steps or self.cfg.num_steps
        batch = prefix_mask.shape[0]
        if noise is None:
            noise = torch.randn(
                batch, self.cfg.chunk_size, self.cfg.max_action_dim, device=prefix_mask.device
            )
        dt = -1.0 / steps
        x_t = noise.float()
        for index in range(steps):
            t = torch.full((batch,), 1.0 + index * dt, dtype=torch.float32, device=prefix_mask.device)
            v_t = self.step(
                trunk, x_t, self.embed(t), expert_k=expert_k, expert_v=expert_v, prefix_mask=prefix_mask
            )
            if guidance is not None:
                v_t = guide_velocity(x_t, v_t, float(t[0]), guidance)  # the float32 t the network saw
            x_t = x_t + dt * v_t
        return x_t
