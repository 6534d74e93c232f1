"""Checkpoint I/O: edgevla's own directories (read/write), and any checkpoint by its contents.

edgevla layout: edgevla_policy.json (format, name, model config), model.safetensors (edgevla
key names), stats.safetensors, tokenizer.json. Self-contained. lerobot SmolVLA directories are
read by `lerobot_checkpoint.py`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import save_file as save_torch

from edgevla.errors import EdgevlaError
from edgevla.model.checkpoint_files import check_stat_sizes, load_weights, read_json, read_safetensors
from edgevla.model.config import ModelConfig, preset
from edgevla.model.lerobot_checkpoint import load_lerobot
from edgevla.model.network import SmolVLANet
from edgevla.model.policy import TorchPolicy, make_preprocessor
from edgevla.runtime.preprocess import MeanStd

EDGEVLA_FILE = "edgevla_policy.json"
FORMAT = "edgevla-policy"
FORMAT_VERSION = 1
ASSETS = Path(__file__).resolve().parent.parent / "assets"
PRESET_TOKENIZER = ASSETS / "tiny_bpe_tokenizer.json"


def save_policy(policy: TorchPolicy, path: str | Path) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "name": policy.spec.name,
        "model": policy.cfg.to_dict(),
    }
    (path / EDGEVLA_FILE).write_text(json.dumps(meta, indent=1))
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in policy.net.state_dict().items()}
    save_torch(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    stats = {}
    for kind, value in (("state", policy.pre.state_stats), ("action", policy.pre.action_stats)):
        if value.mean is not None:
            stats[f"{kind}.mean"], stats[f"{kind}.std"] = value.mean, value.std
    save_numpy(stats, str(path / "stats.safetensors"))
    if policy.tokenizer_path.resolve() != (path / "tokenizer.json").resolve():
        shutil.copyfile(policy.tokenizer_path, path / "tokenizer.json")
    return path


def load_edgevla(path: str | Path, device: str = "cpu", dtype: str = "fp32") -> TorchPolicy:
    path = Path(path)
    meta = read_json(path / EDGEVLA_FILE, "not an edgevla policy directory")
    if meta.get("format") != FORMAT or meta.get("version", 0) > FORMAT_VERSION:
        raise EdgevlaError(
            f"{path / EDGEVLA_FILE}: format {meta.get('format')} v{meta.get('version')} is not readable"
        )
    cfg = ModelConfig.from_dict(meta["model"])
    weights = read_safetensors(path / "model.safetensors", "the policy weights are not there")
    stats = read_safetensors(path / "stats.safetensors", "the normalisation stats are not there", True)

    def stats_of(kind: str) -> MeanStd:
        return MeanStd(stats[f"{kind}.mean"], stats[f"{kind}.std"]) if f"{kind}.mean" in stats else MeanStd()

    check_stat_sizes(path, cfg, stats_of("state"), stats_of("action"))
    net = SmolVLANet(cfg)
    # Checkpoints from before the action heads kept flow's projections at the top level.
    renamed = {("head." + k if k.startswith("action_") else k): v.float() for k, v in weights.items()}
    load_weights(net, renamed, path)
    pre = make_preprocessor(cfg, path / "tokenizer.json", stats_of("state"), stats_of("action"))
    return TorchPolicy(
        net, pre, path / "tokenizer.json", name=meta.get("name", path.name), device=device, dtype=dtype
    )


def load_policy(
    path: str | Path, device: str = "cpu", dtype: str = "fp32", vlm_dir: str | Path | None = None
) -> TorchPolicy:
    """Load an edgevla or a lerobot SmolVLA checkpoint directory."""
    path = Path(path)
    if not path.is_dir():
        raise EdgevlaError(f"policy directory {path} does not exist")
    if (path / EDGEVLA_FILE).is_file():
        return load_edgevla(path, device, dtype)
    if (path / "config.json").is_file():
        return load_lerobot(path, device, dtype, vlm_dir)
    raise EdgevlaError(f"{path} holds neither {EDGEVLA_FILE} (edgevla) nor config.json (lerobot)")


def build_preset(
    name: str, seed: int = 0, device: str = "cpu", dtype: str = "fp32", **overrides: Any
) -> TorchPolicy:
    """A randomly initialised policy of a named preset, with identity stats and the bundled tokenizer."""
    cfg = preset(name).with_overrides(**overrides) if overrides else preset(name)
    torch.manual_seed(seed)
    net = SmolVLANet(cfg)
    pre = make_preprocessor(cfg, PRESET_TOKENIZER, MeanStd(), MeanStd())
    return TorchPolicy(net, pre, PRESET_TOKENIZER, name=name, device=device, dtype=dtype)
