"""Rebuild an edgevla torch checkpoint from an int8-dynamic ONNX artifact (format v2: context.onnx,
state.onnx, head.onnx of a flow head), for when the training run is gone and only the shipped artifact
is left.

    .venv/bin/python scripts/recover_checkpoint.py ART OUT

OUT gets the layout `edgevla train` writes for `<run>/policy` (edgevla_policy.json, model.safetensors,
stats.safetensors, tokenizer.json) plus recovery.json (where every weight came from).

Weights: every initializer of the two graphs, dequantized the way DequantizeLinear defines it,
(q - zero_point) * scale, per tensor or per output column (onnxruntime's dynamic quantizer puts
one scale per column of a MatMul's B). Which parameter an initializer is: the exporter keeps the
names of biases, norms and embedding tables; linear weights become unnamed `val_N` constants,
transposed (x @ W^T folded). To name those, a randomly initialised SmolVLANet of the recovered
config goes through the same path the artifact went (edgevla's exporter, then the Gemm -> MatMul
rewrite the int8-dynamic quantizer starts with): each constant of that reference export equals
exactly one parameter (or its transpose), and the artifact's constant of the same name and shape
is that parameter's trained value. Parameters no graph uses (lm_head, the final norm, what the
last VLM layer computes after its keys and values) keep their init values and are listed.

Config: the `small` preset with the manifest's I/O fields; the shapes the manifest does not
record (patch size, position table, VLM depth) are read off the weights, and every recovered
tensor's shape is checked against the network built from that config.

Tied to the v2 graphs and to the network code they were exported from (edgevla.export.onnx_graphs);
the demo artifact's v1 form (prefix + denoise, before commit 0abbb04) was read by this script as
it was then.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from edgevla.errors import EdgevlaError
from edgevla.export.onnx_graphs import example_inputs, export_graph, graph_modules
from edgevla.export.quantize import gemm_to_matmul, without_value_info
from edgevla.model.checkpoint import save_policy
from edgevla.model.config import ModelConfig, preset
from edgevla.model.network import SmolVLANet
from edgevla.model.policy import TorchPolicy, make_preprocessor
from edgevla.runtime.artifact import GRAPHS, STATS, TOKENIZER, Manifest, read_artifact
from edgevla.runtime.onnx_policy import load_stats

PREFIX = "net."  # the graphs' modules wrap the network as `self.net`
QUANTIZED, SCALE, ZERO_POINT = "_quantized", "_scale", "_zero_point"


def dequantized(path: Path) -> dict[str, np.ndarray]:
    """Every float initializer of the graph, quantized ones dequantized, under its float name."""
    model = onnx.load(str(path))
    arrays = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    # a MatMulInteger's B (K, N) is quantized per output column: scale/zero point of shape (N,)
    column_wise = {n.input[1] for n in model.graph.node if n.op_type == "MatMulInteger"}
    weights: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        if name.endswith(QUANTIZED):
            base = name[: -len(QUANTIZED)]
            scale, zero = arrays[base + SCALE], arrays[base + ZERO_POINT]
            if scale.ndim:
                if name not in column_wise or scale.shape != value.shape[1:]:
                    raise EdgevlaError(
                        f"{path.name}: {name} has a per-axis scale {scale.shape} this does not read"
                    )
                scale, zero = scale[None, :], zero[None, :]
            weights[base] = ((value.astype(np.int32) - zero.astype(np.int32)) * scale).astype(np.float32)
        elif value.dtype == np.float32 and not name.endswith((SCALE, ZERO_POINT)):
            weights[name] = value
    return weights


def layer_count(weights: dict[str, np.ndarray], stack: str) -> int:
    pattern = re.compile(rf"{PREFIX}{stack}\.(\d+)\.input_layernorm\.weight$")
    return len([name for name in weights if pattern.match(name)])


def recovered_config(
    manifest: Manifest, context: dict[str, np.ndarray], head: dict[str, np.ndarray]
) -> ModelConfig:
    """The small preset with the manifest's I/O and the shapes the weights show."""
    base = preset("small")
    needed = [
        f"{PREFIX}vision.embeddings.{table}.weight" for table in ("patch_embedding", "position_embedding")
    ]
    if missing := [name for name in needed if name not in context]:
        raise EdgevlaError(
            f"the context graph has no {missing[0]}: this artifact is not of the small preset's network"
        )
    patch = context[f"{PREFIX}vision.embeddings.patch_embedding.weight"].shape[-1]
    per_side = math.isqrt(context[f"{PREFIX}vision.embeddings.position_embedding.weight"].shape[0])
    vlm_layers, expert_layers = layer_count(context, "vlm_layers"), layer_count(head, "expert_layers")
    cfg = base.with_overrides(
        vision=replace(base.vision, patch_size=patch, image_size=per_side * patch),
        text=replace(base.text, num_layers=vlm_layers),
        num_expert_layers=expert_layers if expert_layers != vlm_layers else -1,
        cameras=tuple(manifest.cameras),
        camera_shapes=tuple(tuple(s) for s in manifest.camera_shapes),
        empty_cameras=manifest.empty_cameras,
        resize=manifest.resize,
        state_dim=manifest.state_dim,
        action_dim=manifest.action_dim,
        max_state_dim=manifest.max_state_dim,
        max_action_dim=manifest.max_action_dim,
        chunk_size=manifest.chunk_size,
        num_steps=manifest.num_steps,
        tokenizer_max_length=manifest.max_tokens,
        fps=manifest.fps,
        min_period=manifest.min_period,
        max_period=manifest.max_period,
    )
    if cfg.expert_hidden_size != manifest.expert_hidden_size:
        raise EdgevlaError(
            f"the small preset's expert width {cfg.expert_hidden_size} is not the manifest's "
            f"{manifest.expert_hidden_size}: this artifact is not of the small preset"
        )
    return cfg


def reference_names(
    cfg: ModelConfig, max_tokens: int, opset: int, work: Path
) -> dict[str, dict[str, tuple[str, bool]]]:
    """graph -> initializer name -> (parameter name, stored transposed), from an export along the
    artifact's path (exporter, then the quantizer's Gemm -> MatMul rewrite) of a network whose
    every parameter is drawn at random, so that no two tensors (norms of ones, zero biases) agree."""
    generator = torch.Generator().manual_seed(0)
    net = SmolVLANet(cfg).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=generator))
    params = {name: p.detach().numpy() for name, p in net.state_dict().items()}
    examples = example_inputs(net, max_tokens)
    names: dict[str, dict[str, tuple[str, bool]]] = {}
    for graph, (module, inputs, outputs) in graph_modules(net).items():
        exported = work / f"{graph}.onnx"
        export_graph(module, examples[graph], exported, inputs, outputs, opset)
        clean = without_value_info(exported, work / f"clean_{graph}.onnx")
        gemm_to_matmul(clean)
        names[graph] = {}
        for init in onnx.load(str(clean)).graph.initializer:
            value = numpy_helper.to_array(init)
            if value.dtype != np.float32:
                continue
            matches = [
                (name, transposed)
                for name, p in params.items()
                for transposed, candidate in ((False, p), (True, p.T))[: p.ndim]
                if candidate.shape == value.shape and np.array_equal(candidate, value)
            ]
            if len(matches) > 1:
                raise EdgevlaError(f"reference {graph}: {init.name} equals several parameters {matches}")
            if matches:
                names[graph][init.name] = matches[0]
    return names


def recover(art: Path, out: Path) -> dict:
    manifest = read_artifact(art)
    if set(manifest.graphs) != set(GRAPHS) or manifest.head.get("name") != "flow":
        raise EdgevlaError(
            f"{art}: graphs {sorted(manifest.graphs)}, head {manifest.head.get('name')}; this reads "
            "v2 artifacts of a flow head (context + state + head)"
        )
    weights = {g: dequantized(art / f) for g, f in manifest.graphs.items()}
    quantized = {
        g: {i.name for i in onnx.load(str(art / f)).graph.initializer if i.name.endswith(QUANTIZED)}
        for g, f in manifest.graphs.items()
    }
    cfg = recovered_config(manifest, weights["context"], weights["head"])
    torch.manual_seed(0)
    net = SmolVLANet(cfg).eval()
    with tempfile.TemporaryDirectory() as work:
        names = reference_names(cfg, manifest.max_tokens, manifest.opset, Path(work))
    state = {k: v.clone() for k, v in net.state_dict().items()}
    sources: dict[str, str] = {}
    for graph, table in names.items():
        # the other way round too: every weight the artifact holds is some parameter's
        left = sorted(n for n in weights[graph] if n.startswith(PREFIX) or n + QUANTIZED in quantized[graph])
        left = [n for n in left if n not in table]
        if left:
            raise EdgevlaError(f"{graph}: the artifact's weights {left[:3]} match no parameter of the config")
        for init, (param, transposed) in table.items():
            value = weights[graph].get(init)
            if value is None:
                raise EdgevlaError(
                    f"{art / manifest.graphs[graph]} has no {init} (the {param} of the reference)"
                )
            value = value.T if transposed else value
            if tuple(value.shape) != tuple(state[param].shape):
                raise EdgevlaError(
                    f"{graph}: {init} is {value.shape}, {param} is {tuple(state[param].shape)}"
                )
            if param in sources:  # a parameter two graphs carry must agree
                if not torch.equal(state[param], torch.tensor(value)):
                    raise EdgevlaError(f"{param} differs between {sources[param]} and {graph}/{init}")
                continue
            state[param] = torch.tensor(value)
            sources[param] = f"{graph}/{init}"
    net.load_state_dict(state, strict=True)
    unused = sorted(set(state) - set(sources))
    state_stats, action_stats = load_stats(art / STATS, manifest.state_dim, manifest.action_dim)
    pre = make_preprocessor(cfg, art / TOKENIZER, state_stats, action_stats)
    save_policy(TorchPolicy(net, pre, art / TOKENIZER, name=manifest.name), out)
    record = {
        "artifact": str(art),
        "artifact_files": {name: info.get("sha256") for name, info in manifest.files.items()},
        "precision": manifest.precision,
        "config_from_weights": {
            "vision.patch_size": cfg.vision.patch_size,
            "vision.image_size": cfg.vision.image_size,
            "text.num_layers": cfg.text.num_layers,
            "num_expert_layers": cfg.expert_layers,
        },
        "filled": sources,
        "unused_kept_init": unused,
    }
    (out / "recovery.json").write_text(json.dumps(record, indent=1))
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("art", type=Path, help="int8-dynamic (or fp32) v2 ONNX artifact directory")
    parser.add_argument("out", type=Path, help="checkpoint directory to write (must not exist or be empty)")
    args = parser.parse_args(argv)
    try:
        if args.out.exists() and any(args.out.iterdir()):
            raise EdgevlaError(f"{args.out} exists and is not empty: choose a new directory")
        record = recover(args.art, args.out)
    except EdgevlaError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    total = len(record["filled"]) + len(record["unused_kept_init"])
    print(f"{args.out}: {len(record['filled'])} of {total} parameter tensors from {args.art}")
    print(f"config read off the weights: {record['config_from_weights']}")
    print(f"in no graph, kept at init ({len(record['unused_kept_init'])}):")
    for name in record["unused_kept_init"]:
        print(f"  {name}")
    digest = hashlib.sha256((args.out / "model.safetensors").read_bytes()).hexdigest()[:16]
    print(f"model.safetensors sha256 {digest}...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
