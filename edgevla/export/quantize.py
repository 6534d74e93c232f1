"""Quantized artifacts from an fp32 artifact: int8-dynamic, int8-static (QDQ), fp16.

    int8-dynamic  weights int8 per channel, activations quantized on the fly (ORT CPU: MatMulInteger)
    int8-static   QDQ graph, symmetric int8 weights per channel and activations with scales from a
                  calibration set: the form TensorRT builds INT8 engines from
    fp16          fp16 weights and math, norms/softmax/positions kept fp32 (GPU / TensorRT)

Only weight matmuls (and the token embedding for int8-dynamic) are quantized: attention
scores, norms and softmax stay in float, which is where int8 hurts most and saves least.
Every result is checked: an int8 method that leaves no int8 weights fails loudly (third-party
"int8" SmolVLA exports that were silently fp32 are why).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from edgevla.errors import EdgevlaError
from edgevla.export.known_noise import ORT_PREPROCESS_HINT, dropped
from edgevla.runtime.artifact import Manifest, read_artifact, write_manifest

ONNX_METHODS = ("int8-dynamic", "int8-static", "fp16")
# fp16: ops that stay fp32 (overflow or precision: RMS/LayerNorm statistics, softmax, positions)
FP16_KEEP_FP32 = ["Pow", "ReduceMean", "Sqrt", "Reciprocal", "Softmax", "CumSum", "LayerNormalization"]


def weight_counts(path: Path) -> dict[str, int]:
    """Initializers of one graph by element type: count and bytes (int8, uint8, fp16, fp32)."""
    model = onnx.load(str(path), load_external_data=True)
    kinds = {TensorProto.INT8: ("int8", 1), TensorProto.UINT8: ("uint8", 1), TensorProto.FLOAT16: ("fp16", 2)}
    kinds[TensorProto.FLOAT] = ("fp32", 4)
    counts: dict[str, int] = {}
    for init in model.graph.initializer:
        if init.data_type not in kinds:
            continue
        kind, itemsize = kinds[init.data_type]
        counts[f"{kind}_initializers"] = counts.get(f"{kind}_initializers", 0) + 1
        counts[f"{kind}_bytes"] = (
            counts.get(f"{kind}_bytes", 0) + int(np.prod(init.dims, dtype=np.int64)) * itemsize
        )
    return counts


def without_value_info(path: Path, out: Path) -> Path:
    """A copy of the graph with its shape annotations dropped: the dynamo exporter's value_info
    can disagree with what ORT's shape inference derives, and the quantizer then refuses. Kept:
    the notes on what ONNX Runtime contrib ops make (edgevla.export.fusion), which ONNX shape
    inference cannot derive itself."""
    model = onnx.load(str(path))
    unknown = set()
    for node in model.graph.node:
        if not onnx.defs.has(node.op_type, node.domain):
            unknown.update(node.output)
    keep = [info for info in model.graph.value_info if info.name in unknown]
    del model.graph.value_info[:]
    model.graph.value_info.extend(keep)
    onnx.save(model, str(out))
    return out


def gemm_to_matmul(path: Path) -> None:
    """Rewrite Gemm(X, W^T) + b nodes with constant W as MatMul + Add in place: ORT's dynamic
    quantizer handles MatMul but not Gemm, and the exporter emits Gemm for 2-D linears."""
    model = onnx.load(str(path))
    inits = {init.name: init for init in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        simple = (
            attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0 and not attrs.get("transA", 0)
        )
        if node.op_type != "Gemm" or not simple or node.input[1] not in inits:
            nodes.append(node)
            continue
        weight = numpy_helper.to_array(inits[node.input[1]])
        if attrs.get("transB", 0):
            weight = weight.T
        name = node.input[1] + "_kn"
        model.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(weight), name))
        product = node.output[0] + ("_mm" if len(node.input) > 2 else "")
        nodes.append(
            onnx.helper.make_node("MatMul", [node.input[0], name], [product], name=node.name + "_mm")
        )
        if len(node.input) > 2:
            nodes.append(
                onnx.helper.make_node(
                    "Add", [product, node.input[2]], [node.output[0]], name=node.name + "_add"
                )
            )
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    used = {i for n in model.graph.node for i in n.input}
    keep = [init for init in model.graph.initializer if init.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    onnx.save(model, str(path))


class FeedReader:
    """onnxruntime CalibrationDataReader over a list of feed dicts."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]):
        self.feeds = feeds
        self.position = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.position >= len(self.feeds):
            return None
        self.position += 1
        return self.feeds[self.position - 1]

    def rewind(self) -> None:
        self.position = 0


class RecordingSession:
    """An ONNX Runtime session that keeps a copy of every feed it runs."""

    def __init__(self, session, feeds: list[dict]):
        self.session = session
        self.feeds = feeds

    def run(self, outputs, feed: dict[str, np.ndarray]):
        self.feeds.append(dict(feed))
        return self.session.run(outputs, feed)


def calibration_feeds(art: Path, observations: Iterator[dict], seed: int = 0) -> dict[str, list[dict]]:
    """Inputs of every graph as the fp32 artifact sees them on real observations: one context and
    one state feed per observation, and one head feed per head step (noise from `seed`)."""
    from edgevla.runtime.onnx_policy import OnnxPolicy

    policy = OnnxPolicy(art, providers=["cpu"], seed=seed)
    feeds: dict[str, list[dict]] = {graph: [] for graph in policy.sessions}
    policy.sessions = {graph: RecordingSession(s, feeds[graph]) for graph, s in policy.sessions.items()}
    for obs in observations:
        policy.infer(obs)
    if not feeds["context"]:
        raise EdgevlaError("the calibration set yielded no observations")
    return feeds


def quantize_graph(method: str, src: Path, dst: Path, feeds: list[dict] | None, work: Path) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    clean = without_value_info(src, work / f"clean_{src.name}")
    if method == "int8-dynamic":
        gemm_to_matmul(clean)
        with dropped(ORT_PREPROCESS_HINT):
            quantize_dynamic(
                clean,
                dst,
                op_types_to_quantize=["MatMul", "Gather"],
                per_channel=True,
                weight_type=QuantType.QInt8,
                # fused graphs (edgevla.export.fusion) hold contrib ops that ONNX shape
                # inference cannot type; what they produce is fp32
                extra_options={"MatMulConstBOnly": True, "DefaultTensorType": TensorProto.FLOAT},
            )
    elif method == "int8-static":
        with dropped(ORT_PREPROCESS_HINT):
            quantize_static(
                clean,
                dst,
                FeedReader(feeds or []),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=["MatMul", "Gemm", "Conv"],
                per_channel=True,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                extra_options={
                    "MatMulConstBOnly": True,
                    "ActivationSymmetric": True,
                    "WeightSymmetric": True,
                    "DefaultTensorType": TensorProto.FLOAT,
                },
            )
    elif method == "fp16":
        from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

        model = convert_float_to_float16(
            onnx.load(str(clean)), keep_io_types=True, op_block_list=DEFAULT_OP_BLOCK_LIST + FP16_KEEP_FP32
        )
        onnx.save(model, str(dst))
    else:
        raise EdgevlaError(f"unknown method '{method}': choose one of {', '.join(ONNX_METHODS)}")


def verify(method: str, counts: dict[str, dict[str, int]]) -> None:
    """Fail loudly when a graph did not get the weights its method promises."""
    for graph, facts in counts.items():
        if method.startswith("int8") and facts.get("int8_initializers", 0) == 0:
            raise EdgevlaError(
                f"{graph}: {method} left no int8 weights in the graph; the result would be fp32"
            )
        if method == "fp16" and facts.get("fp16_initializers", 0) == 0:
            raise EdgevlaError(f"{graph}: fp16 conversion left no fp16 weights in the graph")


def quantize_artifact(
    art: str | Path, method: str, out: str | Path, observations: Iterator[dict] | None = None, log=print
) -> Path:
    """Write ART2 = ART with every graph quantized by `method`; returns its path."""
    art, out = Path(art), Path(out)
    if method not in ONNX_METHODS:
        raise EdgevlaError(f"unknown ONNX method '{method}': choose one of {', '.join(ONNX_METHODS)}")
    manifest = read_artifact(art)
    if manifest.precision != "fp32":
        raise EdgevlaError(f"{art} is already {manifest.precision}: quantize from the fp32 artifact")
    if out.exists() and any(out.iterdir()):
        raise EdgevlaError(f"{out} exists and is not empty: choose a new --out directory")
    feeds: dict[str, list[dict]] = {}
    if method == "int8-static":
        if observations is None:
            raise EdgevlaError(
                "int8-static needs --calibration DATASET_DIR or a folder of observation .npz files"
            )
        log("running the fp32 artifact on the calibration observations")
        feeds = calibration_feeds(art, observations)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        counts: dict[str, dict[str, int]] = {}
        for graph, filename in manifest.graphs.items():
            log(f"{method}: {graph} graph")
            with tempfile.TemporaryDirectory() as work:
                quantize_graph(method, art / filename, staging / filename, feeds.get(graph), Path(work))
            counts[graph] = weight_counts(staging / filename)
        verify(method, counts)
        for name in manifest.files:
            if not (staging / name).exists() and not name.endswith((".onnx", ".onnx.data")):
                shutil.copyfile(art / name, staging / name)
        quantization: dict[str, Any] = {"method": method, "from": str(art), "weights": counts}
        if method == "int8-static":
            quantization["calibration"] = {g: len(f) for g, f in feeds.items()}
        updated = Manifest(
            **{**manifest.__dict__, "precision": method, "quantization": quantization, "files": {}}
        )
        write_manifest(staging, updated)
        staging.chmod(0o755)
        if out.exists():
            out.rmdir()
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out
