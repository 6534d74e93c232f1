"""Faster exported graphs: a pass over ONNX files that swaps op patterns for fused ONNX Runtime
kernels, on any graph edgevla writes (it matches patterns, not layer names).

    attention  MatMul(q, k^T) [* scale] [masked by Where] -> Softmax -> MatMul(., v)
               => com.microsoft.MultiHeadAttention (the mask becomes its additive attention_bias)
    gelu       the tanh-GELU the exporter spells as Pow/Mul/Add/Tanh/Add/Mul/Mul (vision MLP)
               => com.microsoft.FastGelu, taking the preceding bias Add with it
    rmsnorm    Pow/ReduceMean/Add/Sqrt/Reciprocal/Mul/Mul (VLM and expert norms)
               => SimplifiedLayerNormalization (ONNX Runtime's RMSNorm kernel)

ONNX Runtime's own optimizer does not catch these in the dynamo exporter's spelling (it leaves
the tanh-GELU and RMSNorm as separate nodes and the attention as two MatMuls and a Softmax).
Each kernel computes in fp32, like the unfused graph: the outputs agree to float rounding.
The fused ops are ONNX Runtime contrib ops: run the result with ONNX Runtime (CPU or CUDA), and
build TensorRT engines from the graph before this pass. Run it before `quantize`: the weight
MatMuls it leaves in place are what int8 quantization rewrites.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.external_data_helper import load_external_data_for_model

from edgevla.errors import EdgevlaError
from edgevla.runtime.artifact import FUSION_RECORD, read_artifact, write_manifest

MS_DOMAIN = "com.microsoft"
RECORD = FUSION_RECORD  # what the pass did to each graph, kept beside the graphs
FUSIONS = ("attention", "gelu", "rmsnorm")
SQRT_2_OVER_PI = float(np.sqrt(2 / np.pi))
# Below this many elements an initializer is read as a value (scales, shapes, axes); bigger ones
# are weights, which shape inference needs only as shapes.
SMALL = 64


class Graph:
    """An ONNX graph with the lookups a pattern rewrite needs: producers, consumers, constants
    and static shapes (of the graph as loaded: the passes ask only about tensors it had)."""

    def __init__(self, model: onnx.ModelProto):
        self.model = model
        graph = model.graph
        self.nodes = list(graph.node)
        self.inits = {init.name: init for init in graph.initializer}
        self.constants: dict[str, np.ndarray] = {}
        for node in self.nodes:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                self.constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        self.outputs = {out.name for out in graph.output}
        self.notes: dict[str, onnx.ValueInfoProto] = {}  # fused outputs' types, for later tools
        self.shapes = static_shapes(model)
        self.added = 0
        self.reindex()

    def reindex(self) -> None:
        self.producer = {out: node for node in self.nodes for out in node.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        for node in self.nodes:
            for name in node.input:
                self.consumers[name].append(node)

    def value(self, name: str) -> np.ndarray | None:
        if name in self.constants:
            return self.constants[name]
        init = self.inits.get(name)
        if init is not None and int(np.prod(init.dims, dtype=np.int64)) <= SMALL:
            return numpy_helper.to_array(init)
        return None

    def scalar(self, name: str) -> float | None:
        value = self.value(name)
        return float(value.reshape(-1)[0]) if value is not None and value.size == 1 else None

    def made_by(self, name: str, op_type: str) -> onnx.NodeProto | None:
        node = self.producer.get(name)
        return node if node is not None and node.op_type == op_type else None

    def only_consumer(self, name: str, op_type: str) -> onnx.NodeProto | None:
        users = self.consumers.get(name, [])
        if len(users) != 1 or name in self.outputs or users[0].op_type != op_type:
            return None
        return users[0]

    def name(self, stem: str) -> str:
        self.added += 1
        return f"fusion_{stem}_{self.added}"

    def const(self, values, dtype=np.int64) -> str:
        name = self.name("const")
        self.model.graph.initializer.append(numpy_helper.from_array(np.asarray(values, dtype=dtype), name))
        return name

    def add(self, op_type: str, inputs: list[str], outputs: list[str] | None = None, **attrs) -> str:
        domain = MS_DOMAIN if op_type in ("MultiHeadAttention", "FastGelu") else ""
        outputs = outputs or [self.name(op_type.lower())]
        self.nodes.append(
            helper.make_node(op_type, inputs, outputs, name=self.name(op_type), domain=domain, **attrs)
        )
        return outputs[0]

    def fused(self, op_type: str, inputs: list[str], output: str, shape: list[int], **attrs) -> str:
        """Add a fused (contrib) node and note its fp32 output's shape: ONNX shape inference
        knows no contrib op, and tools downstream (the quantizer) need types past it."""
        self.add(op_type, inputs, [output], **attrs)
        self.notes[output] = helper.make_tensor_value_info(output, TensorProto.FLOAT, shape)
        return output

    def finish(self) -> None:
        """Drop what no longer feeds an output, order the nodes, forget stale shape notes."""
        live = set(self.outputs)
        kept = []
        for node in reversed(topological(self.nodes, self.model)):
            if any(out in live for out in node.output):
                kept.append(node)
                live.update(node.input)
        self.nodes = kept[::-1]
        graph = self.model.graph
        del graph.node[:]
        graph.node.extend(self.nodes)
        used = {name for node in self.nodes for name in node.input}
        keep = [init for init in graph.initializer if init.name in used]
        del graph.initializer[:]
        graph.initializer.extend(keep)
        del graph.value_info[:]
        made = {out for node in self.nodes for out in node.output}
        graph.value_info.extend(info for name, info in self.notes.items() if name in made)
        if any(node.domain == MS_DOMAIN for node in self.nodes) and not any(
            op.domain == MS_DOMAIN for op in self.model.opset_import
        ):
            self.model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))


def static_shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    """Static shapes of every tensor, from ONNX shape inference run on a skeleton of `model`
    whose weights are declared inputs (so a graph of any size fits in protobuf's 2 GB)."""
    skeleton = onnx.ModelProto(ir_version=model.ir_version)
    skeleton.opset_import.extend(model.opset_import)
    skeleton.functions.extend(model.functions)
    graph = skeleton.graph
    graph.node.extend(model.graph.node)
    graph.input.extend(model.graph.input)
    graph.output.extend(model.graph.output)
    unknown = {
        out
        for node in model.graph.node
        if not onnx.defs.has(node.op_type, node.domain)
        for out in node.output
    }
    graph.value_info.extend(info for info in model.graph.value_info if info.name in unknown)  # contrib ops
    for init in model.graph.initializer:
        if int(np.prod(init.dims, dtype=np.int64)) <= SMALL:
            graph.initializer.append(init)
        else:
            graph.input.append(helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    inferred = onnx.shape_inference.infer_shapes(skeleton, data_prop=True)
    shapes = {}
    for info in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        tensor = info.type.tensor_type
        if tensor.HasField("shape") and all(d.HasField("dim_value") for d in tensor.shape.dim):
            shapes[info.name] = [d.dim_value for d in tensor.shape.dim]
    return shapes


def topological(nodes: list[onnx.NodeProto], model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """`nodes` in an order where every input is made before it is read (stable otherwise)."""
    ready = {i.name for i in model.graph.input} | {i.name for i in model.graph.initializer} | {""}
    waiting, ordered = list(nodes), []
    while waiting:
        rest = []
        for node in waiting:
            if all(name in ready for name in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(waiting):
            raise EdgevlaError(f"fusion left a cycle or a missing input at node {rest[0].name}")
        waiting = rest
    return ordered


# --- attention ------------------------------------------------------------------------------


def peel_scale(g: Graph, name: str) -> tuple[str, float]:
    """Walk back through Muls by a scalar constant: (the unscaled tensor, the product of scalars)."""
    scale = 1.0
    while (node := g.made_by(name, "Mul")) is not None:
        factors = [g.scalar(i) for i in node.input]
        if factors[1] is not None:
            scale, name = scale * factors[1], node.input[0]
        elif factors[0] is not None:
            scale, name = scale * factors[0], node.input[1]
        else:
            break
    return name, scale


def perm_of(node: onnx.NodeProto) -> list[int]:
    return next((list(a.ints) for a in node.attribute if a.name == "perm"), [])


def transposed_from(g: Graph, name: str, perm: list[int]) -> str | None:
    """The input of the Transpose with `perm` that made `name`, if one did."""
    node = g.made_by(name, "Transpose")
    return node.input[0] if node is not None and perm_of(node) == perm else None


def bsnh_of(g: Graph, tensor: str, perm: list[int]) -> str:
    """`tensor` (heads first) as (B, S, N, H): the tensor the exporter transposed it from when
    there is one, else a Transpose by `perm`."""
    source = transposed_from(g, tensor, inverse(perm))
    if source is None and perm == [0, 3, 1, 2]:
        source = transposed_key(g, tensor)
    return source or g.add("Transpose", [tensor], perm=perm)


def inverse(perm: list[int]) -> list[int]:
    return [perm.index(axis) for axis in range(len(perm))]


def transposed_key(g: Graph, key_t: str) -> str | None:
    """The (B, L, N, H) key behind a (B, N, H, L) `key_t` the exporter spelled as
    Reshape(Transpose(Reshape(Transpose(k, 0,2,1,3), (B*N, L, H)), 0,2,1), (B, N, H, L))
    (torch's scaled_dot_product_attention), or None."""
    outer = g.made_by(key_t, "Reshape")
    flipped = transposed_from(g, outer.input[0], [0, 2, 1]) if outer else None
    inner = g.made_by(flipped, "Reshape") if flipped else None
    if inner is None:
        return None
    heads_first = inner.input[0]
    batch, heads, length, dim = g.shapes.get(heads_first, [0, 0, 0, 0])
    if g.shapes.get(inner.output[0]) != [batch * heads, length, dim]:
        return None
    return transposed_from(g, heads_first, [0, 2, 1, 3])


def fuse_attention(g: Graph) -> int:
    fused = 0
    biases: dict[tuple[str, str], str] = {}
    for softmax in [n for n in g.nodes if n.op_type == "Softmax"]:
        site = match_attention(g, softmax)
        if site is None:
            continue
        qk, probs_v, scale, mask = site
        q4, _ = peel_scale(g, qk.input[0])
        k4t, _ = peel_scale(g, qk.input[1])
        v4 = probs_v.input[1]
        shapes = [g.shapes.get(x) for x in (q4, k4t, v4, probs_v.output[0])]
        if any(s is None or len(s) != 4 for s in shapes):
            continue
        (batch, heads, q_len, dim), (_, _, _, k_len) = shapes[0], shapes[1]
        if shapes[1] != [batch, heads, dim, k_len] or shapes[2] != [batch, heads, k_len, dim]:
            continue
        # All three in (B, S, N*H): the layout ONNX Runtime's CPU kernel runs tiled (flash)
        # attention on, never holding the (B, N, S, L) scores (150 MB per vision layer of the
        # 450M policy; allocating and faulting them in costs more than the arithmetic).
        hidden = g.const([0, 0, heads * dim])
        query, key, value = (
            g.add("Reshape", [bsnh_of(g, tensor, perm), hidden])
            for tensor, perm in ((q4, [0, 2, 1, 3]), (k4t, [0, 3, 1, 2]), (v4, [0, 2, 1, 3]))
        )
        inputs = [query, key, value]
        if mask is not None:
            cond, fill = mask
            if (cond, fill) not in biases:  # one bias per distinct mask, shared by its layers
                zero = g.const(0.0, np.float32)
                biases[cond, fill] = g.add("Where", [cond, zero, fill])
            inputs += ["", "", biases[cond, fill]]
        out = g.fused(
            "MultiHeadAttention",
            inputs,
            g.name("attention"),
            [batch, q_len, heads * dim],
            num_heads=heads,
            scale=scale,
        )
        rewire_output(g, probs_v.output[0], out, heads, dim)
        fused += 1
    return fused


def match_attention(g: Graph, softmax: onnx.NodeProto):
    """(QK MatMul, PV MatMul, total scale, (mask, fill) or None) around one Softmax, or None."""
    attrs = {a.name: helper.get_attribute_value(a) for a in softmax.attribute}
    if attrs.get("axis", -1) not in (-1, 3):
        return None
    probs_v = g.only_consumer(softmax.output[0], "MatMul")
    if probs_v is None or probs_v.input[0] != softmax.output[0]:
        return None
    scores, mask = softmax.input[0], None
    where = g.made_by(scores, "Where")
    fill = g.scalar(where.input[2]) if where is not None else None
    # only a fill that swamps any score (the exporter's fp32 minimum) is the same as adding it
    if where is not None and g.only_consumer(scores, "Softmax") and fill is not None and fill < -1e30:
        cond_shape = g.shapes.get(where.input[0])
        if cond_shape is None or len(cond_shape) != 4 or cond_shape[1] != 1:
            return None
        mask, scores = (where.input[0], where.input[2]), where.input[1]
    raw, scale = peel_scale(g, scores)
    qk = g.made_by(raw, "MatMul")
    if qk is None or len(g.consumers[raw]) != 1:
        return None
    scale *= peel_scale(g, qk.input[0])[1] * peel_scale(g, qk.input[1])[1]
    return qk, probs_v, scale, mask


def rewire_output(g: Graph, old: str, out: str, heads: int, dim: int) -> None:
    """Readers of the (B, N, S, H) attention output `old` read the (B, S, N*H) `out` instead: a
    Transpose back to (B, S, N, H) is replaced by a free Reshape of `out`."""
    for reader in list(g.consumers[old]):
        bsnh = g.add("Reshape", [out, g.const([0, 0, heads, dim])])
        if reader.op_type == "Transpose" and perm_of(reader) == [0, 2, 1, 3]:
            replace_input(g, reader.output[0], bsnh)
        else:
            replace_input(g, old, g.add("Transpose", [bsnh], perm=[0, 2, 1, 3]), only=reader)
    g.reindex()


def replace_input(g: Graph, old: str, new: str, only: onnx.NodeProto | None = None) -> None:
    for node in [only] if only is not None else list(g.consumers[old]):
        for index, name in enumerate(node.input):
            if name == old:
                node.input[index] = new
    if only is None and old in g.outputs:
        g.add("Identity", [new], [old])


# --- gelu -----------------------------------------------------------------------------------


def near(value: float | None, target: float) -> bool:
    return value is not None and abs(value - target) <= 1e-4 * max(1.0, abs(target))


def other_input(node: onnx.NodeProto, name: str) -> str | None:
    inputs = list(node.input)
    if len(inputs) != 2 or name not in inputs:
        return None
    return inputs[1] if inputs[0] == name else inputs[0]


def scaled_by(g: Graph, node: onnx.NodeProto | None, factor: float) -> str | None:
    """The non-constant input of a Mul by `factor`, else None."""
    if node is None or node.op_type != "Mul":
        return None
    for mine, theirs in ((0, 1), (1, 0)):
        if near(g.scalar(node.input[mine]), factor):
            return node.input[theirs]
    return None


def fuse_gelu(g: Graph) -> int:
    fused = 0
    for tanh in [n for n in g.nodes if n.op_type == "Tanh"]:
        inner = scaled_by(g, g.producer.get(tanh.input[0]), SQRT_2_OVER_PI)
        add = g.made_by(inner, "Add") if inner else None
        if add is None:
            continue
        x = cube = None
        for mine, theirs in ((0, 1), (1, 0)):
            cubed = scaled_by(g, g.producer.get(add.input[theirs]), 0.044715)
            power = g.made_by(cubed, "Pow") if cubed else None
            if (
                power is not None
                and power.input[0] == add.input[mine]
                and near(g.scalar(power.input[1]), 3.0)
            ):
                x, cube = add.input[mine], power
        one = g.only_consumer(tanh.output[0], "Add")
        if (
            x is None
            or x not in g.shapes
            or one is None
            or not near(g.scalar(other_input(one, tanh.output[0]) or ""), 1.0)
        ):
            continue
        first = g.only_consumer(one.output[0], "Mul")
        second = g.only_consumer(first.output[0], "Mul") if first is not None else None
        if second is None:
            continue
        operands = {other_input(first, one.output[0]), other_input(second, first.output[0])}
        half = [name for name in operands if name != x]
        if x not in operands or len(half) != 1 or not near(g.scalar(half[0]), 0.5):
            continue
        inputs = [x]
        biased = g.made_by(x, "Add")
        pattern = {cube.name, add.name, second.name, first.name}
        if biased is not None and {n.name for n in g.consumers[x]} <= pattern and x not in g.outputs:
            for mine, theirs in ((0, 1), (1, 0)):
                bias = g.inits.get(biased.input[theirs])
                if bias is not None and len(bias.dims) == 1:
                    inputs = [biased.input[mine], biased.input[theirs]]
        g.nodes.remove(second)  # the rest of the pattern goes when nothing reads it
        g.fused("FastGelu", inputs, second.output[0], g.shapes[x])
        fused += 1
    g.reindex()
    return fused


# --- rmsnorm --------------------------------------------------------------------------------


def fuse_rmsnorm(g: Graph) -> int:
    fused = 0
    for reciprocal in [n for n in g.nodes if n.op_type == "Reciprocal"]:
        sqrt = g.made_by(reciprocal.input[0], "Sqrt")
        add = g.made_by(sqrt.input[0], "Add") if sqrt else None
        if add is None:
            continue
        eps = [g.scalar(i) for i in add.input]
        if (eps[0] is None) == (eps[1] is None):
            continue
        mean = g.made_by(add.input[0] if eps[1] is not None else add.input[1], "ReduceMean")
        power = g.made_by(mean.input[0], "Pow") if mean else None
        if power is None or not near(g.scalar(power.input[1]), 2.0) or not reduces_last_axis(g, mean):
            continue
        x = power.input[0]
        normed = g.only_consumer(reciprocal.output[0], "Mul")
        if normed is None or other_input(normed, reciprocal.output[0]) != x:
            continue
        scaled = g.only_consumer(normed.output[0], "Mul")
        weight = other_input(scaled, normed.output[0]) if scaled is not None else None
        width = g.shapes.get(x, [0])[-1]
        init = g.inits.get(weight or "")
        if init is None or list(init.dims) != [width]:
            continue
        g.nodes.remove(scaled)
        g.fused(
            "SimplifiedLayerNormalization",
            [x, weight],
            scaled.output[0],
            g.shapes[x],
            axis=-1,
            epsilon=next(e for e in eps if e is not None),
            stash_type=1,
        )
        fused += 1
    g.reindex()
    return fused


def reduces_last_axis(g: Graph, mean: onnx.NodeProto) -> bool:
    attrs = {a.name: helper.get_attribute_value(a) for a in mean.attribute}
    axes = attrs.get("axes") or (list(g.value(mean.input[1])) if len(mean.input) > 1 else None)
    rank = len(g.shapes.get(mean.input[0], []))
    return attrs.get("keepdims", 1) == 1 and axes is not None and [a % rank for a in axes] == [rank - 1]


PASSES: dict[str, Callable[[Graph], int]] = {
    "attention": fuse_attention,
    "gelu": fuse_gelu,
    "rmsnorm": fuse_rmsnorm,
}


def fuse_model(model: onnx.ModelProto, fusions: tuple[str, ...] = FUSIONS) -> dict[str, int]:
    """Rewrite `model` in place; returns how many sites each fusion rewrote."""
    unknown = sorted(set(fusions) - set(PASSES))
    if unknown:
        raise EdgevlaError(f"unknown fusion {unknown}: choose from {', '.join(PASSES)}")
    g = Graph(model)
    counts = {}
    for name in fusions:
        counts[name] = PASSES[name](g)
        g.finish()
        g.reindex()
    return counts


def fuse_file(src: Path, dst: Path, fusions: tuple[str, ...] = FUSIONS) -> dict[str, int]:
    """Fuse one .onnx file into `dst` (weights external to `dst.name + '.data'` when the source
    kept them external)."""
    model = onnx.load(str(src), load_external_data=False)
    external = any(init.data_location == TensorProto.EXTERNAL for init in model.graph.initializer)
    if external:
        load_external_data_for_model(model, str(src.parent))
    counts = fuse_model(model, fusions)
    onnx.save(
        model,
        str(dst),
        save_as_external_data=external,
        all_tensors_to_one_file=True,
        location=dst.name + ".data",
        size_threshold=1024,
    )
    return counts


def optimize_artifact(
    art: str | Path, fusions: tuple[str, ...] = FUSIONS, log=print
) -> dict[str, dict[str, int]]:
    """Fuse every graph of the fp32 artifact ART in place and re-hash it; returns the counts per
    graph (also written to ART/fusion.json)."""
    art = Path(art)
    manifest = read_artifact(art)
    if manifest.precision != "fp32":
        raise EdgevlaError(f"{art} is {manifest.precision}: fuse the fp32 artifact, then quantize the result")
    if (art / RECORD).exists():
        raise EdgevlaError(f"{art} was fused already ({RECORD} is there)")
    counts = {}
    with tempfile.TemporaryDirectory(dir=art.parent, prefix=f".{art.name}.fusion.") as work:
        for graph, filename in manifest.graphs.items():
            counts[graph] = fuse_file(art / filename, Path(work) / filename, fusions)
            log(f"fused {graph}: {json.dumps(counts[graph])}")
        for filename in manifest.graphs.values():  # swap in only once every graph is done
            for old in (art / filename, art / f"{filename}.data"):
                old.unlink(missing_ok=True)
            for new in Path(work).glob(f"{filename}*"):
                shutil.move(new, art / new.name)
                (art / new.name).chmod(0o644)
    (art / RECORD).write_text(json.dumps({"fusions": list(fusions), "sites": counts}, indent=1))
    write_manifest(art, manifest)
    return counts
