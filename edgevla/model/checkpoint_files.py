"""Reading checkpoint files with one clear error each: JSON, safetensors, strict weight loading
and the size of normalisation stats. Shared by edgevla's own format and the lerobot translation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file as load_numpy
from safetensors.torch import load_file as load_torch

from edgevla.errors import EdgevlaError
from edgevla.model.config import ModelConfig
from edgevla.model.network import SmolVLANet
from edgevla.runtime.preprocess import MeanStd


def read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise EdgevlaError(f"{path} is missing: {what}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise EdgevlaError(f"{path} is not valid JSON ({err.msg} at line {err.lineno})") from err


def read_safetensors(path: Path, what: str, as_numpy: bool = False) -> dict:
    if not path.is_file():
        raise EdgevlaError(f"{path} is missing: {what}")
    try:
        return load_numpy(str(path)) if as_numpy else load_torch(str(path))
    except (SafetensorError, OSError) as err:
        raise EdgevlaError(f"{path} is not a readable safetensors file ({err})") from err


def load_weights(net: SmolVLANet, weights: dict[str, torch.Tensor], source: Path) -> None:
    """Strict load with one clear line for missing, unexpected or mis-shaped tensors."""
    expected = net.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    wrong = [
        f"{k} {tuple(weights[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in weights and weights[k].shape != v.shape
    ]
    for label, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", wrong)):
        if items:
            more = f" (+{len(items) - 3} more)" if len(items) > 3 else ""
            raise EdgevlaError(
                f"{source}: {len(items)} {label} weight(s) for this config, e.g. {', '.join(items[:3])}{more}; "
                "the checkpoint does not match its config"
            )
    net.load_state_dict(weights, strict=True)


def check_stat_sizes(path: Path, cfg: ModelConfig, state: MeanStd, action: MeanStd) -> None:
    for kind, stats, size in (("state", state, cfg.state_dim), ("action", action, cfg.action_dim)):
        if stats.mean is not None and (stats.mean.shape != (size,) or stats.std.shape != (size,)):
            raise EdgevlaError(
                f"{path}: {kind} stats have shape {stats.mean.shape}, the config says ({size},)"
            )
