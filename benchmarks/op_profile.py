"""Per-operator time of one graph of an artifact, from ONNX Runtime's profiler.

    python benchmarks/op_profile.py ART --graph prefix [--threads 2] [--runs 3] [--top 15] [--json]

Works on any graph an artifact lists (prefix/denoise, context/state/head): every input is fed
from its declared shape and type (floats standard normal, integers small, masks all true), which
is enough for timing because no kernel here branches on values. The first run is a warm-up and
is left out. Prints time per run by operator type (after ONNX Runtime's own fusions, so it shows
what actually ran) and the slowest nodes.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnxruntime as ort

DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
}


def feed_for(session: ort.InferenceSession, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feed = {}
    for arg in session.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in arg.shape]
        dtype = DTYPES[arg.type]
        if dtype is np.bool_:
            feed[arg.name] = np.ones(shape, dtype=bool)
        elif np.issubdtype(dtype, np.integer):
            feed[arg.name] = rng.integers(0, 100, shape).astype(dtype)
        else:
            feed[arg.name] = rng.standard_normal(shape).astype(dtype)
    return feed


def profile(
    graph: Path, threads: int, runs: int, arena: bool = False
) -> tuple[dict[str, float], dict[str, float], float]:
    """(ms per run by op type, ms per run by node, wall ms per run) over `runs` timed runs."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.enable_cpu_mem_arena = arena
    with tempfile.TemporaryDirectory() as work:
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(work) / "ort")
        session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        feed = feed_for(session)
        session.run(None, feed)  # warm-up, left out below
        for _ in range(runs):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    by_op: dict[str, float] = defaultdict(float)
    by_node: dict[str, float] = defaultdict(float)
    model_runs = sorted((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])
    start = model_runs[-runs]["ts"]  # the warm-up run is left out
    for event in events:
        if event.get("cat") != "Node" or not event["name"].endswith("_kernel_time") or event["ts"] < start:
            continue
        args = event.get("args", {})
        by_op[args.get("op_name", "?")] += event["dur"] / 1000 / runs
        by_node[event["name"].removesuffix("_kernel_time")] += event["dur"] / 1000 / runs
    wall = sum(e["dur"] for e in model_runs[-runs:]) / 1000 / runs
    return dict(by_op), dict(by_node), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("art", help="artifact directory, or one .onnx file")
    parser.add_argument("--graph", default="prefix", help="graph name in the manifest (prefix, denoise, ...)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--top", type=int, default=12, help="slowest nodes listed")
    parser.add_argument("--arena", action="store_true", help="ONNX Runtime's CPU memory arena on")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    path = Path(args.art)
    if path.is_dir():
        graphs = json.loads((path / "manifest.json").read_text())["graphs"]
        path = path / graphs[args.graph]
    by_op, by_node, wall = profile(path, args.threads, args.runs, args.arena)
    total = sum(by_op.values())
    if args.json:
        print(json.dumps({"graph": str(path), "wall_ms": wall, "kernel_ms": total, "by_op": by_op}))
        return
    print(f"{path}: {wall:.1f} ms per run (kernels {total:.1f} ms), {args.threads} threads, {args.runs} runs")
    for op, ms in sorted(by_op.items(), key=lambda kv: -kv[1]):
        print(f"  {op:32s} {ms:9.1f} ms  {100 * ms / total:5.1f} %")
    print("slowest nodes:")
    for node, ms in sorted(by_node.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"  {node:60s} {ms:9.1f} ms")


if __name__ == "__main__":
    main()
