"""Multiply-add work of each graph of an artifact, from its static shapes.

    python benchmarks/flops.py ART [--json]

Counts 2 FLOPs per multiply-add in MatMul, Gemm, Conv and (fused graphs) MultiHeadAttention
nodes, weight products and attention products alike; element-wise ops, norms and softmax are
left out (a few percent).
Per chunk = prefix + num_steps x denoise (or the graphs the artifact lists, with `head` run
num_steps times).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx

from edgevla.export.fusion import static_shapes


def graph_flops(path: Path) -> dict[str, float]:
    model = onnx.load(str(path), load_external_data=False)
    shapes = static_shapes(model)
    inits = {init.name: list(init.dims) for init in model.graph.initializer}
    shape = lambda name: shapes.get(name) or inits.get(name)  # noqa: E731
    total = {"matmul": 0.0, "conv": 0.0}
    for node in model.graph.node:
        if node.op_type in ("MatMul", "Gemm"):
            a, b, out = shape(node.input[0]), shape(node.input[1]), shape(node.output[0])
            if a is None or b is None or out is None:
                raise SystemExit(f"{path}: no static shape at {node.name}")
            k = (
                a[-1]
                if node.op_type == "MatMul" or not any(x.name == "transA" and x.i for x in node.attribute)
                else a[0]
            )
            total["matmul"] += 2.0 * float(np.prod(out)) * k
        elif node.op_type == "MultiHeadAttention":  # a fused graph: Q.K^T and P.V, 2 x 2BSLD
            q, k = shape(node.input[0]), shape(node.input[1])
            total["matmul"] += 4.0 * q[0] * q[1] * k[1] * q[2]
        elif node.op_type == "Conv":
            w, out = shape(node.input[1]), shape(node.output[0])
            total["conv"] += 2.0 * float(np.prod(out)) * float(np.prod(w[1:]))
    return {"gflop": (total["matmul"] + total["conv"]) / 1e9, **{k: v / 1e9 for k, v in total.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("art")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    art = Path(args.art)
    manifest = json.loads((art / "manifest.json").read_text())
    per_graph = {graph: graph_flops(art / name) for graph, name in manifest["graphs"].items()}
    steps = manifest.get("num_steps") or manifest.get("head", {}).get("num_steps", 1)
    repeated = {"denoise", "head"}
    chunk = sum(g["gflop"] * (steps if name in repeated else 1) for name, g in per_graph.items())
    report = {"graphs": per_graph, "num_steps": steps, "chunk_gflop": chunk}
    if args.json:
        print(json.dumps(report))
        return
    for name, g in per_graph.items():
        print(f"{name:10s} {g['gflop']:9.1f} GFLOP  (conv {g['conv']:.1f})")
    print(f"chunk      {chunk:9.1f} GFLOP  ({steps} steps)")


if __name__ == "__main__":
    main()
