"""Every action head on the tiny preset: it trains, exports, quantizes, and its artifact run with
torch blocked gives the torch policy's chunk (fp32 within 1e-4; the same tokens for bins and fast).

One trained checkpoint, one fp32 and one int8 artifact per head, built once per session.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from edgevla.model.config import HeadConfig

from .helpers import noise, observation

HEADS = ("flow", "diffusion", "regression", "bins", "fast")


def smooth_chunks(count: int, chunk: int, dims: int, seed: int = 0) -> np.ndarray:
    """Normalised action chunks like a demonstration's: slow sinusoids per dimension."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, chunk)[None, :, None]
    speed = rng.uniform(0.5, 3.0, (count, 1, dims))
    phase = rng.uniform(0.0, 6.3, (count, 1, dims))
    return (rng.uniform(0.3, 1.5, (count, 1, dims)) * np.sin(speed * t + phase)).astype(np.float32)


def training_batch(policy, chunks: np.ndarray) -> dict[str, torch.Tensor]:
    """Preprocessed synthetic observations with `chunks` as their targets."""
    samples = [policy.pre(observation(policy.spec, seed=i)) for i in range(len(chunks))]
    batch = {
        key: torch.from_numpy(np.stack([getattr(s, key) for s in samples]))
        for key in ("images", "image_masks", "tokens", "token_mask", "state")
    }
    batch["actions"] = torch.from_numpy(np.stack([policy.pre.normalize_actions(c) for c in chunks]))
    batch["action_is_pad"] = torch.zeros(len(chunks), chunks.shape[1], dtype=torch.bool)
    return batch


@dataclass
class Built:
    losses: tuple[float, float]  # held-out-style loss before and after the training steps
    ckpt: Path
    art: Path
    int8: Path


def build(head: str, root: Path) -> Built:
    from edgevla.export.onnx_graphs import export_onnx
    from edgevla.export.quantize import quantize_artifact
    from edgevla.model.checkpoint import build_preset, save_policy

    policy = build_preset("tiny", seed=3, head=HeadConfig(name=head))
    cfg = policy.cfg
    policy.net.fit_head(smooth_chunks(300, cfg.chunk_size, cfg.action_dim))
    batch = training_batch(policy, smooth_chunks(4, cfg.chunk_size, cfg.action_dim, seed=1))
    draws = policy.net.head.held_out_draws(batch["actions"], torch.Generator().manual_seed(0))

    def loss() -> float:
        with torch.no_grad():
            return float(policy.net.loss(batch, **draws))

    before = loss()
    policy.net.train()
    optimizer = torch.optim.AdamW([p for p in policy.net.parameters() if p.requires_grad], lr=1e-3)
    for _ in range(12):
        optimizer.zero_grad()
        policy.net.loss(batch).backward()
        optimizer.step()
    policy.net.eval()
    after = loss()
    ckpt = save_policy(policy, root / "ckpt")
    art = export_onnx(policy, root / "art", log=lambda _: None)
    int8 = quantize_artifact(art, "int8-dynamic", root / "int8", log=lambda _: None)
    return Built((before, after), ckpt, art, int8)


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    cache: dict[str, Built] = {}

    def get(head: str) -> Built:
        if head not in cache:
            cache[head] = build(head, tmp_path_factory.mktemp(f"head-{head}"))
        return cache[head]

    return get


RUN_WITHOUT_TORCH = """
import json, sys
sys.modules["torch"] = None
sys.modules["transformers"] = None
import numpy as np
from edgevla.hosting import open_policy
policy = open_policy(sys.argv[1])
data = np.load(sys.argv[2], allow_pickle=False)
obs = {k: data[k] for k in data.files if k != "noise"}
obs["task"] = str(obs["task"])
actions = policy.infer(obs, noise=data["noise"])
np.save(sys.argv[3], actions)
tokens = policy.loop.last_tokens
tokens = tokens.tolist() if isinstance(tokens, np.ndarray) else tokens
print(json.dumps({"tokens": tokens, "holds": policy.holds, "torch": "torch" in sys.modules and sys.modules["torch"] is not None}))
"""


@pytest.mark.parametrize("head", HEADS)
def test_a_few_steps_reduce_the_loss(built, head):
    before, after = built(head).losses
    assert np.isfinite(before) and after < before


@pytest.mark.parametrize("head", HEADS)
def test_artifact_without_torch_gives_the_torch_chunk(built, head, tmp_path):
    from edgevla.model.checkpoint import load_policy

    art = built(head).art
    reference = load_policy(built(head).ckpt)
    obs, eps = observation(reference.spec, seed=7), noise(reference.spec, seed=7)
    np.savez(tmp_path / "obs.npz", noise=eps, **obs)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            RUN_WITHOUT_TORCH,
            str(art),
            str(tmp_path / "obs.npz"),
            str(tmp_path / "a.npy"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["torch"] is False
    expected = reference.infer(obs, noise=eps)
    actions = np.load(tmp_path / "a.npy")
    assert actions.shape == (reference.spec.chunk_size, reference.spec.action_dim)
    assert np.abs(actions - expected).max() <= 1e-4
    if head in ("bins", "fast"):
        torch_tokens = reference.net.head.last_tokens
        torch_tokens = torch_tokens.tolist() if isinstance(torch_tokens, np.ndarray) else torch_tokens
        assert report["tokens"] == torch_tokens and len(report["tokens"][0]) > 0
    assert report["holds"] == reference.holds
    manifest = json.loads((art / "manifest.json").read_text())
    assert manifest["head"]["name"] == head


@pytest.mark.parametrize("head", HEADS)
def test_int8_artifact_runs(built, head):
    from edgevla.runtime.onnx_policy import OnnxPolicy

    policy = OnnxPolicy(built(head).int8, seed=0)
    assert policy.manifest.precision == "int8-dynamic"
    assert policy.manifest.quantization["weights"]["head"]["int8_initializers"] > 0
    actions = policy.infer(observation(policy.spec))
    assert actions.shape == (policy.spec.chunk_size, policy.spec.action_dim) and np.isfinite(actions).all()


def test_steps_choose_the_flow_and_diffusion_sampling(built):
    from edgevla.errors import EdgevlaError
    from edgevla.runtime.onnx_policy import OnnxPolicy

    for head in ("flow", "diffusion"):
        obs, eps = observation(OnnxPolicy(built(head).art).spec), noise(OnnxPolicy(built(head).art).spec)
        one = OnnxPolicy(built(head).art, num_steps=1).infer(obs, noise=eps)
        ten = OnnxPolicy(built(head).art, num_steps=10).infer(obs, noise=eps)
        assert np.abs(one - ten).max() > 1e-4
    with pytest.raises(EdgevlaError, match="--steps applies to the flow, diffusion heads"):
        OnnxPolicy(built("regression").art, num_steps=2)
    with pytest.raises(EdgevlaError, match="outside 1..10"):
        OnnxPolicy(built("flow").art, num_steps=11)


def test_fast_decode_graph_takes_static_int8_and_fp16(built, tmp_path):
    from edgevla.export.quantize import quantize_artifact
    from edgevla.runtime.onnx_policy import OnnxPolicy

    spec = OnnxPolicy(built("fast").art).spec
    calibration = [observation(spec, seed=s) for s in range(2)]
    for method in ("int8-static", "fp16"):
        out = quantize_artifact(
            built("fast").art, method, tmp_path / method, iter(calibration), log=lambda _: None
        )
        policy = OnnxPolicy(out)
        actions = policy.infer(observation(spec, seed=5))
        assert actions.shape == (spec.chunk_size, spec.action_dim) and np.isfinite(actions).all()
        assert (out / "action_tokenizer.json").is_file()


def test_check_compares_a_token_head_in_robot_units(built, capsys):
    from edgevla.cli import main

    code = main(
        [
            "check",
            "--policy",
            str(built("bins").ckpt),
            "--art",
            str(built("bins").int8),
            "--frames",
            "2",
            "--json",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["chunks"] == 2 and np.isfinite(summary["max_abs"])


def test_fast_hold_travels_over_the_wire():
    from edgevla.runtime.wire import Chunk, decode, encode

    actions = np.zeros((10, 6), np.float32)
    assert decode(encode(Chunk(id=1, actions=actions, infer_ms=3.0, undecoded=True))).undecoded is True
    assert decode(encode(Chunk(id=2, actions=actions, infer_ms=3.0))).undecoded is False


def test_flow_trains_with_high_noise_time_sampling():
    from edgevla.model.checkpoint import build_preset

    policy = build_preset("tiny", seed=0, head=HeadConfig(name="flow", time_sampling="high-noise"))
    chunks = smooth_chunks(2, policy.cfg.chunk_size, policy.cfg.action_dim)
    loss = policy.net.loss(training_batch(policy, chunks))
    loss.backward()
    assert torch.isfinite(loss) and policy.net.head.action_out_proj.weight.grad.abs().sum() > 0
    times = policy.net.head.sample_time(4000, "cpu")
    assert (times > 0.9).float().mean() > 0.3  # a third of the draws near pure noise (beta 1.5: ~15 %)
