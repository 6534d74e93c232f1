"""The dual-system split is exact: a context cached from the images, with the current state run
against it, gives the actions of one full pass over [images; language; state]."""

from __future__ import annotations

import numpy as np
import torch

from edgevla.model.network import SmolVLANet, attend
from edgevla.runtime.onnx_policy import OnnxPolicy
from tests.model.smolvla_golden import load_obs

from .conftest import LONG_CASE


def one_pass_prefix(net: SmolVLANet, images, image_masks, tokens, token_mask, state):
    """The prefix as lerobot computes it: every token in one pass, image+language tokens blind to
    the state token (block mask), the state token seeing everything valid."""
    context, context_valid = net.embed_context(images, image_masks, tokens, token_mask)
    x = torch.cat([context, net.state_proj(state)[:, None]], dim=1)
    valid = torch.cat([context_valid, torch.ones(x.shape[0], 1, dtype=torch.bool)], dim=1)
    block = torch.zeros(x.shape[1], dtype=torch.long)
    block[-1] = 1
    mask = (block[None, :] <= block[:, None])[None] & valid[:, None, :] & valid[:, :, None]
    positions = torch.cumsum(valid.long(), dim=1) - 1
    keys, values = [], []
    for layer in net.vlm_layers:
        q, k, v = net._qkv(layer, x, positions)
        keys.append(k)
        values.append(v)
        x = layer.finish(x, attend(q, k, v, mask))
    return torch.stack(keys), torch.stack(values), valid


def one_pass_actions(policy, obs: dict, noise: np.ndarray) -> np.ndarray:
    net, batch = policy.net, policy.batch(policy.pre(obs))
    with torch.no_grad():
        prefix_k, prefix_v, prefix_mask = one_pass_prefix(net, **batch)
        expert_k, expert_v = net.expert_cache(prefix_k, prefix_v)
        chunk = net.head.sample(net, expert_k, expert_v, prefix_mask, noise=torch.from_numpy(noise)[None])
    return policy.pre.postprocess(chunk[0].numpy())


def moved(obs: dict, seed: int) -> dict:
    """The same frames and task, the arm somewhere else."""
    state = np.asarray(obs["observation.state"], np.float32)
    return {
        **obs,
        "observation.state": state + np.random.default_rng(seed).normal(size=state.shape).astype(np.float32),
    }


def test_torch_split_matches_one_pass_on_a_lerobot_checkpoint(golden_policy):
    obs = moved(load_obs(LONG_CASE), 1)
    cfg = golden_policy.cfg
    noise = np.random.default_rng(0).standard_normal((cfg.chunk_size, cfg.max_action_dim)).astype(np.float32)
    split = golden_policy.infer(obs, noise=noise)
    np.testing.assert_allclose(split, one_pass_actions(golden_policy, obs, noise), atol=1e-5)


def test_cached_context_with_a_fresh_state_gives_the_full_recompute(golden_policy, golden_art):
    policy = OnnxPolicy(golden_art, providers=["cpu"])
    first = load_obs(LONG_CASE)
    later = moved(first, 2)
    noise = np.random.default_rng(3).standard_normal(policy.noise_shape).astype(np.float32)
    context = policy.encode_context(first)  # System 2 saw the frames when the arm was elsewhere
    from_cache = policy.act(context, later, noise=noise)
    np.testing.assert_allclose(from_cache, policy.infer(later, noise=noise), atol=1e-5)
    np.testing.assert_allclose(from_cache, one_pass_actions(golden_policy, later, noise), atol=1e-4)
    # and the state is really read: the cache with the old state gives other actions
    assert np.abs(from_cache - policy.act(context, first, noise=noise)).max() > 1e-3
