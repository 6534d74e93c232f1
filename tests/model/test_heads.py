"""The heads' own pieces on the tiny preset: the FAST tokenizer and its cached decoding, holds,
diffusion's RTC inpainting, bins' expected-value decoding, config checks."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from edgevla.errors import EdgevlaError
from edgevla.model.checkpoint import build_preset
from edgevla.model.config import HeadConfig, ModelConfig, preset
from edgevla.policy_io import Guidance
from edgevla.runtime.head_math import FastCodec, fit_fast, from_logits, to_bins
from edgevla.runtime.synthetic import synthetic_observation


def smooth_chunks(count: int, chunk: int = 10, dims: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, chunk)[None, :, None]
    return (rng.uniform(0.3, 1.5, (count, 1, dims)) * np.sin(rng.uniform(0.5, 3, (count, 1, dims)) * t
            + rng.uniform(0, 6.3, (count, 1, dims)))).astype(np.float32)  # fmt: skip


def fitted(head: str, **settings):
    policy = build_preset("tiny", seed=1, head=HeadConfig(name=head, **settings))
    policy.net.fit_head(smooth_chunks(200))
    return policy


def test_fast_codec_round_trip_and_incomplete_sequences():
    chunks = smooth_chunks(300)
    fields = fit_fast(chunks, 10.0, 256)
    codec = FastCodec(fields["tokenizer"], fields["min_token"], fields["max_token"], 10.0)
    ids = codec.encode(chunks[:20])
    assert (
        max(map(len, ids)) < 60 and max(map(len, ids)) + 1 <= fields["max_tokens"]
    )  # BPE compresses 60 values
    for sequence, chunk in zip(ids, chunks[:20], strict=True):
        # rounding at gamma 10 moves each coefficient by <= 0.05; the orthonormal inverse keeps that scale
        assert np.abs(codec.decode(sequence, 10, 6) - chunk).max() < 0.1
    assert codec.decode(ids[0][:-1], 10, 6) is None  # a token short: not a whole chunk
    assert fit_fast(chunks, 10.0, 256)["tokenizer"] == fields["tokenizer"]  # deterministic (resume refits)


def test_fast_decode_steps_match_the_teacher_forced_pass():
    policy = fitted("fast")
    net, head = policy.net, policy.net.head
    batch = policy.batch(policy.pre(synthetic_observation(policy.spec)))
    with torch.no_grad():
        prefix = net.encode_prefix(
            batch["images"], batch["image_masks"], batch["tokens"], batch["token_mask"], batch["state"]
        )
        expert_k, expert_v = net.expert_cache(prefix[0], prefix[1])
        tokens = torch.tensor([[head.end, 5, 17, 3, 99, 0]])
        full = head.action_out_proj(
            net.run_expert(head.token_embedding(tokens), expert_k, expert_v, prefix[2])
        )
        suffix_k = suffix_v = head.empty_cache(1)
        for position in range(tokens.shape[1]):
            logits, suffix_k, suffix_v = head.step(net, tokens[:, position : position + 1], torch.tensor([position]),
                                                   suffix_k, suffix_v, expert_k=expert_k, expert_v=expert_v,
                                                   prefix_mask=prefix[2])  # fmt: skip
            torch.testing.assert_close(logits, full[:, position], atol=1e-5, rtol=1e-5)


def test_undecodable_fast_chunk_holds_the_current_state():
    policy = fitted("fast")
    policy.net.head.tokens = lambda *args: [[]]  # no tokens before EOS: no chunk
    obs = synthetic_observation(policy.spec)
    actions = policy.infer(obs)
    np.testing.assert_array_equal(actions, np.tile(obs["observation.state"], (policy.spec.chunk_size, 1)))
    assert policy.holds == 1


def test_hold_reaches_the_loop_stats_through_the_worker():
    from edgevla.runtime.workers import PolicyWorker

    policy = fitted("fast")
    policy.net.head.tokens = lambda *args: [[]]
    worker = PolicyWorker(policy)
    try:
        assert worker.submit(0, synthetic_observation(policy.spec))
        deadline = time.monotonic() + 30
        result = worker.poll()
        while result is None and time.monotonic() < deadline:
            time.sleep(0.01)
            result = worker.poll()
        assert result is not None and result.undecoded and result.actions is not None
    finally:
        worker.close()


def test_diffusion_full_weight_inpainting_reproduces_the_target():
    policy = fitted("diffusion")
    spec = policy.spec
    obs = synthetic_observation(spec)
    noise = (
        np.random.default_rng(0).standard_normal((spec.chunk_size, spec.max_action_dim)).astype(np.float32)
    )
    free = policy.infer(obs, noise)
    target = free + 1.0
    weights = np.zeros(spec.chunk_size, np.float32)
    weights[:4] = 1.0
    guided = policy.infer(obs, noise, Guidance(actions=target, weights=weights))
    np.testing.assert_allclose(guided[:4], target[:4], atol=1e-4)
    unguided = policy.infer(obs, noise, Guidance(actions=target, weights=np.zeros_like(weights)))
    np.testing.assert_allclose(unguided, free, atol=1e-5)


def test_bins_argmax_and_expected_value():
    low, high = np.array([-1.0, 0.0]), np.array([1.0, 4.0])
    assert to_bins(np.array([[-5.0, 0.01], [0.999, 9.0]]), low, high, 4).tolist() == [[0, 0], [3, 3]]
    logits = np.full((1, 1, 2, 4), -50.0)
    logits[..., 2] = 0.0
    values, tokens = from_logits(logits, low, high, expected=False)
    np.testing.assert_allclose(values[0, 0], [0.25, 2.5])
    assert tokens.tolist() == [[[2, 2]]]
    logits[..., 1] = 0.0  # two equally likely bins: the expected value lies between their centres
    values, _ = from_logits(logits, low, high, expected=True)
    np.testing.assert_allclose(values[0, 0], [0.0, 2.0], atol=1e-6)


def test_bins_expected_decoding_is_a_setting_of_the_same_weights():
    policy = fitted("bins")
    obs = synthetic_observation(policy.spec)
    argmax = policy.infer(obs)
    policy.net.cfg = policy.net.cfg.with_overrides(
        head=HeadConfig(**{**policy.cfg.head.__dict__, "decode": "expected"})
    )
    expected = policy.infer(obs)
    assert np.abs(argmax - expected).max() > 1e-4


def test_unfitted_token_heads_refuse_to_sample_and_export(tmp_path):
    from edgevla.export.onnx_graphs import export_onnx

    for head in ("bins", "fast"):
        policy = build_preset("tiny", head=HeadConfig(name=head))
        with pytest.raises(EdgevlaError, match=f"the {head} head has not been fitted"):
            policy.infer(synthetic_observation(policy.spec))
        with pytest.raises(EdgevlaError, match=f"the {head} head has not been fitted"):
            export_onnx(policy, tmp_path / head, log=lambda _: None)


def test_head_config_round_trips_and_is_checked():
    cfg = fitted("bins").cfg
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(EdgevlaError, match="head.decode 'mode'"):
        preset("tiny").with_overrides(head=HeadConfig(name="bins", decode="mode"))
    with pytest.raises(EdgevlaError, match="head: unknown keys"):
        ModelConfig.from_dict({**cfg.to_dict(), "head": {"name": "bins", "bogus": 1}})
    with pytest.raises(EdgevlaError, match="--steps applies to the flow, diffusion heads"):
        from edgevla.model.policy import check_steps

        check_steps(fitted("regression").net.head, 2)
