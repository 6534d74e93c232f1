"""The flow head: sampler guidance and loss; freezing policies; on the tiny preset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgevla.errors import EdgevlaError
from edgevla.model.checkpoint import build_preset
from edgevla.model.freezing import apply_freezing
from edgevla.policy_io import Guidance


@pytest.fixture(scope="module")
def tiny():
    return build_preset("tiny", seed=0)


def observation(policy, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    obs = {
        f"observation.images.{c.name}": rng.integers(0, 256, (64, 80, 3), np.uint8)
        for c in policy.spec.cameras
    }
    obs["observation.state"] = rng.normal(size=policy.spec.state_dim).astype(np.float32)
    obs["task"] = "stack the cups"
    return obs


def test_full_weight_guidance_reproduces_target_and_zero_weight_is_free(tiny):
    spec = tiny.spec
    noise = np.random.default_rng(0).normal(size=(spec.chunk_size, spec.max_action_dim)).astype(np.float32)
    free = tiny.infer(observation(tiny), noise)
    target = np.random.default_rng(1).normal(size=(spec.chunk_size, spec.action_dim)).astype(np.float32)
    weights = np.zeros(spec.chunk_size, np.float32)
    weights[:4] = 1.0
    guided = tiny.infer(observation(tiny), noise, Guidance(actions=target, weights=weights))
    np.testing.assert_allclose(guided[:4], target[:4], atol=1e-4)
    unguided = tiny.infer(observation(tiny), noise, Guidance(actions=target, weights=np.zeros_like(weights)))
    np.testing.assert_allclose(unguided, free, atol=1e-5)


def test_partial_guidance_moves_toward_target(tiny):
    spec = tiny.spec
    noise = np.random.default_rng(2).normal(size=(spec.chunk_size, spec.max_action_dim)).astype(np.float32)
    free = tiny.infer(observation(tiny), noise)
    target = free + 3.0
    half = tiny.infer(
        observation(tiny), noise, Guidance(actions=target, weights=np.full(spec.chunk_size, 0.5, np.float32))
    )
    assert np.abs(half - target).mean() < np.abs(free - target).mean()


def test_bad_guidance_shape(tiny):
    with pytest.raises(EdgevlaError, match="guidance must be"):
        tiny.infer(
            observation(tiny), guidance=Guidance(np.zeros((2, 2), np.float32), np.zeros(2, np.float32))
        )


def training_batch(policy, batch_size=2) -> dict:
    inputs = [policy.pre(observation(policy, seed)) for seed in range(batch_size)]
    cfg = policy.cfg
    batch = {
        name: torch.from_numpy(np.stack([getattr(i, name) for i in inputs]))
        for name in ("images", "image_masks", "tokens", "token_mask", "state")
    }
    batch["actions"] = torch.randn(batch_size, cfg.chunk_size, cfg.max_action_dim)
    return batch


def test_loss_ignores_padded_dims_and_steps(tiny):
    net, cfg = tiny.net, tiny.cfg
    batch = training_batch(tiny)
    noise, time = torch.randn_like(batch["actions"]), torch.tensor([0.3, 0.8])
    base = net.loss(batch, noise=noise, time=time)
    assert base.ndim == 0 and base > 0
    # actions on steps marked as padding must not count
    batch["action_is_pad"] = torch.zeros(2, cfg.chunk_size, dtype=torch.bool)
    batch["action_is_pad"][:, -3:] = True
    masked = net.loss(batch, noise=noise, time=time)
    edited = dict(batch, actions=batch["actions"].clone())
    edited["actions"][:, -3:, : cfg.action_dim] += 5.0
    # the expert is causal over steps, so the last 3 steps cannot affect earlier velocities
    assert torch.allclose(net.loss(edited, noise=noise, time=time), masked, atol=1e-6)
    assert not torch.allclose(masked, base)


def test_expert_freezing_trains_expert_not_vlm(tiny):
    net = tiny.net
    trainable = apply_freezing(net, "expert")
    assert trainable == sum(p.numel() for p in net.parameters() if p.requires_grad)
    assert not any(p.requires_grad for p in net.vision.parameters())
    assert not any(p.requires_grad for p in net.vlm_layers.parameters())
    assert all(p.requires_grad for p in net.expert_layers.parameters())
    loss = net.loss(training_batch(tiny))
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.expert_layers.parameters())
    assert net.vlm_layers[0].self_attn.q_proj.weight.grad is None
    net.zero_grad(set_to_none=True)


def test_full_freezing_gives_gradients_to_every_trainable_param(tiny):
    net = tiny.net
    apply_freezing(net, "full")
    net.loss(training_batch(tiny)).backward()
    missing = [n for n, p in net.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []
    assert not net.lm_head.weight.requires_grad
    assert apply_freezing(net, "vision-frozen") < apply_freezing(net, "full")
    net.zero_grad(set_to_none=True)
    apply_freezing(net, "expert")


def test_unknown_freezing_policy(tiny):
    with pytest.raises(EdgevlaError, match="unknown freezing policy"):
        apply_freezing(tiny.net, "most")


def test_a_few_training_steps_reduce_the_loss():
    policy = build_preset("tiny", seed=3)
    net = policy.net.train()
    apply_freezing(net, "expert")
    batch = training_batch(policy)
    noise, time = torch.randn_like(batch["actions"]), torch.full((2,), 0.5)
    optimizer = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-3)
    first = net.loss(batch, noise=noise, time=time).item()
    for _ in range(20):
        optimizer.zero_grad()
        net.loss(batch, noise=noise, time=time).backward()
        optimizer.step()
    assert net.loss(batch, noise=noise, time=time).item() < 0.7 * first
