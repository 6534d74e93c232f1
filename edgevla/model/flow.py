"""Flow matching around SmolVLANet: the Euler sampler (with optional RTC guidance), the training
loss, and which parameters train.

Convention (lerobot's SmolVLA): x_t = t * noise + (1 - t) * actions, so t = 1 is pure noise and
t = 0 the clean chunk; the network predicts the velocity v = noise - actions, and sampling
integrates from t = 1 to t = 0 in `num_steps` Euler steps: x <- x + dt * v, dt = -1/num_steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from edgevla.errors import EdgevlaError
from edgevla.model.network import SmolVLANet


@dataclass
class GuidanceTarget:
    """RTC inpainting target in the model's space: normalised, padded to max_action_dim."""

    actions: Tensor  # (B, chunk, max_action_dim)
    weights: Tensor  # (B, chunk) in [0, 1]
    action_dim: int  # real dims; padded dims stay free


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


@torch.no_grad()
def sample_chunk(
    model: SmolVLANet,
    images: Tensor,
    image_masks: Tensor,
    tokens: Tensor,
    token_mask: Tensor,
    state: Tensor,
    noise: Tensor | None = None,
    num_steps: int | None = None,
    guidance: GuidanceTarget | None = None,
) -> Tensor:
    """One action chunk (B, chunk, max_action_dim), normalised, fp32."""
    cfg = model.cfg
    steps = num_steps or cfg.num_steps
    batch = state.shape[0]
    if noise is None:
        noise = torch.randn(batch, cfg.chunk_size, cfg.max_action_dim, device=state.device)
    prefix_k, prefix_v, prefix_mask = model.encode_prefix(images, image_masks, tokens, token_mask, state)
    dt = -1.0 / steps
    x_t = noise.float()
    for step in range(steps):
        t = 1.0 + step * dt
        t_batch = torch.full((batch,), t, dtype=torch.float32, device=state.device)
        v_t = model.denoise_step(x_t, t_batch, prefix_k, prefix_v, prefix_mask)
        if guidance is not None:
            # the float32 value of t, as the network saw it
            v_t = guide_velocity(x_t, v_t, float(t_batch[0]), guidance)
        x_t = x_t + dt * v_t
    return x_t


def sample_time(batch: int, device: torch.device | str) -> Tensor:
    """t ~ Beta(1.5, 1.0) * 0.999 + 0.001: biased toward noisy times, never exactly 0."""
    beta = torch.distributions.Beta(torch.tensor(1.5), torch.tensor(1.0))
    return (beta.sample((batch,)) * 0.999 + 0.001).to(device)


def flow_matching_loss(
    model: SmolVLANet, batch: dict[str, Tensor], noise: Tensor | None = None, time: Tensor | None = None
) -> Tensor:
    """Mean squared velocity error over real action dims and non-padded chunk steps.

    `batch` holds preprocessed tensors (see edgevla.runtime.preprocess.ModelInputs, batched):
    images (B, slots, 3, S, S), image_masks (B, slots), tokens (B, T), token_mask (B, T),
    state (B, max_state_dim), actions (B, chunk, max_action_dim) normalised and padded, and
    optionally action_is_pad (B, chunk) bool (steps past the episode end).
    """
    actions = batch["actions"].float()
    if actions.shape[1:] != (model.cfg.chunk_size, model.cfg.max_action_dim):
        raise EdgevlaError(
            f"batch actions have shape {tuple(actions.shape)}, expected (B, {model.cfg.chunk_size}, "
            f"{model.cfg.max_action_dim}) normalised and padded"
        )
    noise = torch.randn_like(actions) if noise is None else noise
    time = sample_time(actions.shape[0], actions.device) if time is None else time
    x_t = time[:, None, None] * noise + (1 - time[:, None, None]) * actions
    target = noise - actions
    prefix = model.encode_prefix(
        batch["images"], batch["image_masks"], batch["tokens"], batch["token_mask"], batch["state"]
    )
    velocity = model.denoise_step(x_t, time, *prefix)
    errors = F.mse_loss(velocity, target, reduction="none")[..., : model.cfg.action_dim]
    valid = torch.ones(errors.shape[:2], dtype=errors.dtype, device=errors.device)
    if "action_is_pad" in batch:
        valid = (~batch["action_is_pad"].bool()).to(errors.dtype)
    per_step = errors.mean(dim=-1)
    return (per_step * valid).sum() / valid.sum().clamp(min=1.0)


FREEZING = ("expert", "vision-frozen", "full")


def apply_freezing(model: SmolVLANet, policy: str = "expert") -> int:
    """Set requires_grad by policy; returns the number of trainable parameters.

    expert         the VLM (vision, connector, embeddings, text layers) is frozen; the expert and
                   the state/action/time projections train (SmolVLA's default fine-tune).
    vision-frozen  also train the VLM text layers and the connector; the vision encoder stays frozen.
    full           everything trains.
    In every policy the weights no loss reaches stay frozen: the LM head, the VLM's final norm
    and the parts of the last VLM layer after its keys/values.
    """
    if policy not in FREEZING:
        raise EdgevlaError(f"unknown freezing policy '{policy}': choose one of {', '.join(FREEZING)}")
    vlm_parts = [model.vision, model.connector, model.embed_tokens, model.vlm_layers]
    frozen = {"expert": vlm_parts, "vision-frozen": [model.vision], "full": []}[policy]
    last = model.vlm_layers[-1]
    unreachable = [model.lm_head, model.vlm_norm, last.self_attn.q_proj, last.self_attn.o_proj]
    unreachable += [last.post_attention_layernorm, last.mlp]
    for param in model.parameters():
        param.requires_grad = True
    for module in frozen + unreachable:
        for param in module.parameters():
            param.requires_grad = False
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
