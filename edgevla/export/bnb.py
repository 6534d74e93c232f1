"""bitsandbytes int8 (LLM.int8) and nf4 weights on the torch model, for desktop GPUs (CPU works too).

bitsandbytes quantizes when a layer is moved to its device, so the quantized checkpoint keeps
fp32 weights on disk plus `bnb_quantization.json`, and `load_bnb_policy` (also reached through
`edgevla.hosting.open_policy`) swaps the linears at load time, as transformers' `load_in_8bit`
does. The connector (its dtype sets the model's input dtype) and the small action/state/time
projections stay full precision.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgevla.errors import EdgevlaError
from edgevla.model.checkpoint import load_edgevla, load_policy, save_policy
from edgevla.model.policy import TorchPolicy

BNB_FILE = "bnb_quantization.json"  # marks a checkpoint that loads quantized
BNB_METHODS = ("bnb-int8", "bnb-nf4")
FULL_PRECISION = {"connector", "state_proj", "head"}  # small, and where quantization error shows


def quantized_linear(linear: nn.Linear, method: str) -> nn.Module:
    import bitsandbytes as bnb

    weight = linear.weight.data.float().cpu()
    if method == "bnb-int8":
        layer = bnb.nn.Linear8bitLt(
            linear.in_features,
            linear.out_features,
            bias=linear.bias is not None,
            has_fp16_weights=False,
            threshold=6.0,
        )
        layer.weight = bnb.nn.Int8Params(weight, requires_grad=False, has_fp16_weights=False)
    else:
        layer = bnb.nn.Linear4bit(
            linear.in_features,
            linear.out_features,
            bias=linear.bias is not None,
            compute_dtype=torch.float32,
            quant_type="nf4",
        )
        layer.weight = bnb.nn.Params4bit(weight, requires_grad=False, quant_type="nf4")
    if linear.bias is not None:
        layer.bias = nn.Parameter(linear.bias.data.float().cpu(), requires_grad=False)
    return layer


def replace_linears(module: nn.Module, method: str, top: bool = True) -> int:
    """Swap every nn.Linear below `module` (except the full-precision projections); returns how many."""
    swapped = 0
    for name, child in module.named_children():
        if top and name in FULL_PRECISION:
            continue
        if isinstance(child, nn.Linear):
            setattr(module, name, quantized_linear(child, method))
            swapped += 1
        else:
            swapped += replace_linears(child, method, top=False)
    return swapped


def weight_bytes(net: nn.Module) -> dict[str, int]:
    counts: dict[str, int] = {}
    for param in net.parameters():
        kind = str(param.dtype).replace("torch.", "")
        counts[f"{kind}_bytes"] = counts.get(f"{kind}_bytes", 0) + param.numel() * param.element_size()
    return counts


def apply_bnb(policy: TorchPolicy, method: str) -> dict[str, Any]:
    if method not in BNB_METHODS:
        raise EdgevlaError(f"unknown bitsandbytes method '{method}': choose {' or '.join(BNB_METHODS)}")
    swapped = replace_linears(policy.net, method)
    policy.net.to(policy.device)  # bitsandbytes quantizes here
    counts = weight_bytes(policy.net)
    quantized = counts.get("int8_bytes", 0) + counts.get("uint8_bytes", 0)
    if swapped == 0 or quantized == 0:
        raise EdgevlaError(
            f"{method}: no linear layer holds quantized weights after the swap; nothing was quantized"
        )
    policy.spec.extra.update(backend=method, dtype=method)
    return {"method": method, "linears": swapped, **counts}


def quantize_bnb(source: str | Path, method: str, out: str | Path, vlm_dir: str | Path | None = None) -> dict:
    """Write an edgevla checkpoint that loads with `method` applied; returns the verified counts."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise EdgevlaError(f"{out} exists and is not empty: choose a new --out directory")
    policy = load_policy(source, vlm_dir=vlm_dir)
    save_policy(policy, out)
    facts = apply_bnb(policy, method)
    (out / BNB_FILE).write_text(json.dumps(facts, indent=1))
    return facts


def load_bnb_policy(path: str | Path, device: str = "cpu") -> TorchPolicy:
    path = Path(path)
    try:
        method = json.loads((path / BNB_FILE).read_text())["method"]
    except (json.JSONDecodeError, KeyError) as err:
        raise EdgevlaError(f"{path / BNB_FILE} is not a bitsandbytes description ({err})") from err
    policy = load_edgevla(path, device=device)
    apply_bnb(policy, method)
    return policy
