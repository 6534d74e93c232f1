"""Resumable training checkpoints without pickle: tensors in safetensors, scalars in JSON.

OUT/checkpoints/step-000500/
    model.safetensors       the trained parameters (every parameter when the base is a preset,
                            whose frozen part is random), by module name
    optimizer.safetensors   AdamW state tensors as "<param index>.<name>" (exp_avg, exp_avg_sq, step)
    rng.safetensors         torch CPU (and CUDA) generator states
    state.json              step, optimizer param_groups, recipe, elapsed time
OUT/checkpoints/latest.json names the newest complete one; a checkpoint is written to a
temporary folder and renamed, so a crash mid-save leaves the previous one as latest.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from edgevla.errors import EdgevlaError

LATEST = "latest.json"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=1))
    os.replace(temporary, path)


def model_tensors(net: nn.Module, everything: bool) -> dict[str, torch.Tensor]:
    params = net.named_parameters()
    chosen = net.state_dict().items() if everything else ((n, p) for n, p in params if p.requires_grad)
    return {name: value.detach().cpu().contiguous() for name, value in chosen}


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    state = optimizer.state_dict()
    tensors = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            value = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"{index}.{name}"] = value.detach().cpu().contiguous()
    groups = [
        {k: list(v) if isinstance(v, tuple) else v for k, v in g.items()} for g in state["param_groups"]
    ]
    return tensors, groups


def save_checkpoint(
    folder: Path,
    step: int,
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    everything: bool,
    extra: dict[str, Any],
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"step-{step:06d}"
    temporary = folder / f".step-{step:06d}.tmp"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    save_file(model_tensors(net, everything), str(temporary / "model.safetensors"))
    tensors, groups = optimizer_tensors(optimizer)
    save_file(tensors, str(temporary / "optimizer.safetensors"))
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state()
    save_file(rng, str(temporary / "rng.safetensors"))
    _write_json(temporary / "state.json", {"step": step, "param_groups": groups, **extra})
    shutil.rmtree(final, ignore_errors=True)
    os.replace(temporary, final)
    _write_json(folder / LATEST, {"step": step, "path": final.name})
    return final


def latest_checkpoint(folder: Path) -> Path | None:
    pointer = folder / LATEST
    if not pointer.is_file():
        return None
    path = folder / json.loads(pointer.read_text())["path"]
    return path if (path / "state.json").is_file() else None


def load_checkpoint(path: Path, net: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore parameters, optimizer and RNG state; returns state.json."""
    state = json.loads((path / "state.json").read_text())
    weights = load_file(str(path / "model.safetensors"))
    own = dict(net.state_dict())
    unknown = sorted(set(weights) - set(own))
    if unknown:
        raise EdgevlaError(
            f"{path}: holds {len(unknown)} tensors this run does not have (e.g. {unknown[0]}); "
            "was it written by another recipe? Use another --out or drop --resume"
        )
    for name, value in weights.items():
        if own[name].shape != value.shape:
            raise EdgevlaError(
                f"{path}: {name} has shape {tuple(value.shape)}, this run {tuple(own[name].shape)}"
            )
    net.load_state_dict(weights, strict=False)
    flat = load_file(str(path / "optimizer.safetensors"))
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in flat.items():
        index, name = key.split(".", 1)
        per_param.setdefault(int(index), {})[name] = value
    groups = state["param_groups"]
    if len(groups) != len(optimizer.param_groups) or any(
        len(saved["params"]) != len(live["params"])
        for saved, live in zip(groups, optimizer.param_groups, strict=False)
    ):
        raise EdgevlaError(
            f"{path}: optimizer groups differ from this run's; use another --out or drop --resume"
        )
    optimizer.load_state_dict({"state": per_param, "param_groups": groups})
    rng = load_file(str(path / "rng.safetensors"))
    torch.set_rng_state(rng["cpu"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["cuda"])
    return state
