"""The operators the fusion pass chooses between, alone, at the 450M vision encoder's sizes.

    python benchmarks/fused_ops.py [--threads 1] [--arena]

One vision layer of 3 images x 1024 patches, 12 heads of 64:
    attention    as exported (MatMul, Mul, Softmax, MatMul); com.microsoft.MultiHeadAttention with
                 q/k/v as (B, S, N*H) (ONNX Runtime's tiled kernel) and with k/v as (B, N, S, H);
                 the exported form with both products int8 (quantize_dynamic, activations too)
    gelu         the exported tanh-GELU (7 nodes + bias Add), com.microsoft.FastGelu, opset-20 Gelu
Prints the best CPU time (`time.process_time`) of 7 runs of each, and each one's max difference
from the exported form.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

B, N, S, H = 3, 12, 1024, 64
WIDTH = 3072


def value(name: str, shape: list[int]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def model(nodes, inputs, outputs, inits=(), opset: int = 18) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    opsets = [helper.make_opsetid("", opset), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(graph, opset_imports=opsets)


def scalar(name: str, number: float) -> onnx.TensorProto:
    return helper.make_tensor(name, TensorProto.FLOAT, [], [number])


def attention_models() -> dict[str, tuple[onnx.ModelProto, str]]:
    four, three = [B, N, S, H], [B, S, N * H]
    exported = model(
        [
            helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
            helper.make_node("MatMul", ["q", "kt"], ["s0"]),
            helper.make_node("Mul", ["s0", "scale"], ["s1"]),
            helper.make_node("Softmax", ["s1"], ["p"], axis=-1),
            helper.make_node("MatMul", ["p", "v"], ["o"]),
        ],
        [value("q", four), value("k", four), value("v", four)],
        [value("o", four)],
        [scalar("scale", H**-0.5)],
    )
    mha = helper.make_node("MultiHeadAttention", ["q", "k", "v"], ["o"], domain="com.microsoft", num_heads=N)
    tiled = model([mha], [value("q", three), value("k", three), value("v", three)], [value("o", three)])
    heads_first = model([mha], [value("q", three), value("k", four), value("v", four)], [value("o", three)])
    return {
        "attention as exported": (exported, "4d"),
        "MultiHeadAttention (B,S,N*H)": (tiled, "3d"),
        "MultiHeadAttention k/v (B,N,S,H)": (heads_first, "mixed"),
        "attention, int8 products": (int8_products(exported), "4d"),
    }


def int8_products(exported: onnx.ModelProto) -> onnx.ModelProto:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as work:
        src, dst = Path(work) / "a.onnx", Path(work) / "q.onnx"
        onnx.save(exported, str(src))
        quantize_dynamic(src, dst, op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8,
                         extra_options={"MatMulConstBOnly": False})  # fmt: skip
        return onnx.load(str(dst))


def gelu_models() -> dict[str, onnx.ModelProto]:
    shape = [B, S, WIDTH]
    bias = helper.make_tensor("b", TensorProto.FLOAT, [WIDTH], np.zeros(WIDTH, np.float32))
    consts = [scalar("three", 3.0), scalar("c", 0.044715), scalar("s", float(np.sqrt(2 / np.pi)))]
    consts += [scalar("one", 1.0), scalar("half", 0.5), bias]
    spelled = [
        helper.make_node("Add", ["x0", "b"], ["x"]),
        helper.make_node("Pow", ["x", "three"], ["p"]),
        helper.make_node("Mul", ["c", "p"], ["m"]),
        helper.make_node("Add", ["x", "m"], ["u"]),
        helper.make_node("Mul", ["s", "u"], ["w"]),
        helper.make_node("Tanh", ["w"], ["t"]),
        helper.make_node("Add", ["t", "one"], ["t1"]),
        helper.make_node("Mul", ["half", "t1"], ["t2"]),
        helper.make_node("Mul", ["x", "t2"], ["y"]),
    ]
    io = ([value("x0", shape)], [value("y", shape)])
    fast = helper.make_node("FastGelu", ["x0", "b"], ["y"], domain="com.microsoft")
    gelu20 = [
        helper.make_node("Add", ["x0", "b"], ["x"]),
        helper.make_node("Gelu", ["x"], ["y"], approximate="tanh"),
    ]
    return {
        "tanh-GELU as exported": model(spelled, *io, consts),
        "FastGelu": model([fast], *io, [bias]),
        "Gelu (opset 20, tanh)": model(gelu20, *io, [bias], opset=20),
    }


def best_cpu_ms(session: ort.InferenceSession, feed: dict, runs: int = 7) -> float:
    session.run(None, feed)
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        session.run(None, feed)
        best = min(best, (time.process_time() - start) * 1000)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--arena", action="store_true", help="ONNX Runtime's CPU memory arena on")
    args = parser.parse_args()
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.enable_cpu_mem_arena = args.arena
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((B, N, S, H)).astype(np.float32) for _ in range(3))
    flat = {
        name: x.transpose(0, 2, 1, 3).reshape(B, S, N * H).copy()
        for name, x in zip("qkv", (q, k, v), strict=True)
    }
    feeds = {"4d": {"q": q, "k": k, "v": v}, "3d": flat, "mixed": {"q": flat["q"], "k": k, "v": v}}
    reference = None
    print(f"{args.threads} thread(s), arena {'on' if args.arena else 'off'}: best CPU ms of 7")
    for label, (graph, layout) in attention_models().items():
        session = ort.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"])
        out = session.run(None, feeds[layout])[0]
        out = out.transpose(0, 2, 1, 3).reshape(B, S, N * H) if out.ndim == 4 else out
        reference = out if reference is None else reference
        print(
            f"  {label:34s} {best_cpu_ms(session, feeds[layout]):7.1f} ms  max diff {np.abs(out - reference).max():.2e}"
        )
    x = {"x0": rng.standard_normal((B, S, WIDTH)).astype(np.float32)}
    reference = None
    for label, graph in gelu_models().items():
        session = ort.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"])
        out = session.run(None, x)[0]
        reference = out if reference is None else reference
        print(
            f"  {label:34s} {best_cpu_ms(session, x):7.1f} ms  max diff {np.abs(out - reference).max():.2e}"
        )


if __name__ == "__main__":
    main()
