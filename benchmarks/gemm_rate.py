"""This machine's matrix-product rate: what the policy's backends could reach at best.

    python benchmarks/gemm_rate.py [--threads 2] [--reps 5] [--json]

Times one weight product of the shape that dominates the 450M prefix (the vision MLP at 512 px:
3 images x 1024 patches, 768 -> 3072) and one of the VLM text layers (241 tokens, 960 -> 2560):
    onnx fp32         ONNX Runtime MatMul, fp32 weight
    onnx int8         ONNX Runtime MatMulInteger, uint8 x int8 -> int32 (the bare int8 kernel)
    onnx int8-dynamic ONNX Runtime DynamicQuantizeMatMul, fp32 in/out, int8 weight: what an
                      int8-dynamic artifact runs, activation quantization included
    torch fp32, bf16  torch.matmul (skipped when torch is not installed)
Rate = 2*M*K*N / best time of `reps` (after one warm-up), in GFLOP/s (GOP/s for int8).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

SHAPES = {"vision-mlp 3072x768x3072": (3072, 768, 3072), "text-mlp 241x960x2560": (241, 960, 2560)}


def best_ms(run, reps: int) -> float:
    run()
    spent = []
    for _ in range(reps):
        start = time.perf_counter()
        run()
        spent.append((time.perf_counter() - start) * 1000)
    return min(spent)


def onnx_session(kind: str, m: int, k: int, n: int, threads: int):
    rng = np.random.default_rng(0)
    inputs, inits = [], []
    if kind == "fp32":
        inits.append(numpy_helper.from_array(rng.standard_normal((k, n)).astype(np.float32), "w"))
        inputs.append(helper.make_tensor_value_info("a", TensorProto.FLOAT, [m, k]))
        node = helper.make_node("MatMul", ["a", "w"], ["y"])
        feed = {"a": rng.standard_normal((m, k)).astype(np.float32)}
    elif kind == "int8":
        inits.append(numpy_helper.from_array(rng.integers(-127, 128, (k, n)).astype(np.int8), "w"))
        inputs.append(helper.make_tensor_value_info("a", TensorProto.UINT8, [m, k]))
        node = helper.make_node("MatMulInteger", ["a", "w"], ["y"])
        feed = {"a": rng.integers(0, 256, (m, k)).astype(np.uint8)}
    else:  # int8-dynamic
        inits.append(numpy_helper.from_array(rng.integers(-127, 128, (k, n)).astype(np.int8), "w"))
        inits.append(numpy_helper.from_array(np.full(n, 0.01, np.float32), "scale"))
        inputs.append(helper.make_tensor_value_info("a", TensorProto.FLOAT, [m, k]))
        node = helper.make_node("DynamicQuantizeMatMul", ["a", "w", "scale"], ["y"], domain="com.microsoft")
        feed = {"a": rng.standard_normal((m, k)).astype(np.float32)}
    out_type = TensorProto.INT32 if kind == "int8" else TensorProto.FLOAT
    graph = helper.make_graph(
        [node], "gemm", inputs, [helper.make_tensor_value_info("y", out_type, [m, n])], inits
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("com.microsoft", 1)]
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return lambda: session.run(None, feed)


def torch_run(dtype: str, m: int, k: int, n: int, threads: int):
    import torch

    torch.set_num_threads(threads)
    kind = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    a, w = torch.randn(m, k, dtype=kind), torch.randn(k, n, dtype=kind)

    def run():
        with torch.no_grad():
            torch.matmul(a, w)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for label, (m, k, n) in SHAPES.items():
        runners = {
            f"onnx {kind}": onnx_session(kind, m, k, n, args.threads)
            for kind in ("fp32", "int8", "int8-dynamic")
        }
        with contextlib.suppress(ImportError):
            runners.update({f"torch {d}": torch_run(d, m, k, n, args.threads) for d in ("fp32", "bf16")})
        for backend, run in runners.items():
            ms = best_ms(run, args.reps)
            rows.append({"shape": label, "backend": backend, "ms": ms, "gflops": 2 * m * k * n / ms / 1e6})
            if not args.json:
                print(
                    f"{label:26s} {backend:18s} {ms:8.2f} ms  {rows[-1]['gflops']:8.0f} GFLOP/s", flush=True
                )
    if args.json:
        print(json.dumps({"threads": args.threads, "rows": rows}))


if __name__ == "__main__":
    main()
