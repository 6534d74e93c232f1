"""The rows of docs/PERFORMANCE.md: prefix, one denoise step, chunk, peak RSS and action error of
several backends on one observation and one noise draw, each backend in its own process.

    python benchmarks/policy_table.py torch:CKPT torch:CKPT:bf16 onnx:ART onnx:ART-int8 \
        [--threads 2] [--runs 3] [--frame 480x640] [--json]

A backend is `torch:CHECKPOINT[:fp32|bf16]` or `onnx:ARTIFACT`. The first one is the reference
the others' action error is measured against (max and mean absolute difference, in the robot's
units after un-normalising). Chunk latency is `policy.infer` end to end (preprocessing
included); System 1 is `policy.act` against a cached context (the dual system's chunk: state token
and head, images not re-encoded); the graph rows time each ONNX graph of the artifact alone (inputs of its declared
shapes; no kernel here branches on values); torch's prefix is `encode_prefix` and its step the
rest of the chunk over the step count. Peak RSS is the child process's high-water mark after the
timed chunks (before the per-graph timing opens its own sessions). Print `uptime` beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def observation(spec, frame: tuple[int, int], seed: int = 0) -> dict:
    """One fixed observation: random frames of `frame` (H, W) at every camera, a random state."""
    from edgevla.policy_io import STATE_KEY, TASK_KEY, image_key

    rng = np.random.default_rng(seed)
    obs = {image_key(c.name): rng.integers(0, 256, (*frame, 3), np.uint8) for c in spec.cameras}
    obs[STATE_KEY] = rng.normal(size=spec.state_dim).astype(np.float32)
    obs[TASK_KEY] = "pick up the red cube and place it in the bowl"
    return obs


def open_backend(
    backend: str,
    threads: int,
    vlm_dir: str | None = None,
    arena: bool = False,
    steps: int | None = None,
    spinning: bool = False,
):
    kind, _, rest = backend.partition(":")
    if kind == "onnx":
        from edgevla.runtime import onnx_policy
        from edgevla.runtime.onnx_policy import OnnxPolicy

        if arena or spinning:  # what-ifs against the runtime's session settings
            onnx_policy.open_session = partial(open_session_what_if, all_arena=arena, spinning=spinning)

        return OnnxPolicy(rest, providers=["cpu"], threads=threads, num_steps=steps)
    if kind == "torch":
        import torch

        from edgevla.model.checkpoint import load_policy

        torch.set_num_threads(threads)
        path, _, dtype = rest.partition(":")
        return load_policy(path, dtype=dtype or "fp32", vlm_dir=vlm_dir)
    raise SystemExit(f"backend '{backend}': use torch:CHECKPOINT[:fp32|bf16] or onnx:ARTIFACT")


def open_session_what_if(
    path: Path,
    providers: list[str],
    threads: int = 0,
    arena: bool = False,
    *,
    all_arena: bool,
    spinning: bool,
):
    """The runtime's session with ONNX Runtime's CPU memory arena on for every graph (the runtime
    keeps it for fused artifacts) and/or its intra-op threads spinning (the runtime turns it off)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.enable_cpu_mem_arena = arena or all_arena
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), sess_options=options, providers=providers)


def graph_times(art: Path, threads: int, runs: int, arena: bool = False) -> dict[str, float]:
    """ms per call of each graph of an artifact, alone, with the memory arena the runtime would
    give it (on for a fused artifact) unless `arena` turns it on for all."""
    import onnxruntime as ort
    from op_profile import feed_for

    from edgevla.runtime.artifact import FUSION_RECORD

    arena = arena or (art / FUSION_RECORD).exists()

    graphs = json.loads((art / "manifest.json").read_text())["graphs"]
    times = {}
    for graph, filename in graphs.items():
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.enable_cpu_mem_arena = arena
        session = ort.InferenceSession(str(art / filename), options, providers=["CPUExecutionProvider"])
        feed = feed_for(session)
        session.run(None, feed)
        spent = []
        for _ in range(runs):
            start = time.perf_counter()
            session.run(None, feed)
            spent.append((time.perf_counter() - start) * 1000)
        times[graph] = float(np.median(spent))
        del session
    return times


def torch_prefix_ms(policy, obs: dict, runs: int) -> float:
    import torch

    batch = policy.batch(policy.pre(obs))
    spent = []
    with torch.no_grad():
        for _ in range(runs):
            start = time.perf_counter()
            policy.net.encode_prefix(**batch)
            spent.append((time.perf_counter() - start) * 1000)
    return float(np.median(spent))


def child(args: argparse.Namespace, frame: tuple[int, int], out: Path) -> dict:
    backend, threads, runs, warmup = args.backends[0], args.threads, args.runs, args.warmup
    policy = open_backend(backend, threads, args.vlm_dir, args.arena, args.steps, args.spinning)
    if args.obs:  # a recorded observation (.npz of image arrays, state, 0-d task string)
        obs = {key: value[()] if key == "task" else value for key, value in np.load(args.obs).items()}
        obs["task"] = str(obs["task"])
    else:
        obs = observation(policy.spec, frame)
    if args.noise:
        noise = np.load(args.noise).astype(np.float32)
    else:
        noise = np.random.default_rng(1).standard_normal(
            (policy.spec.chunk_size, policy.spec.max_action_dim), dtype=np.float32
        )
    for _ in range(warmup):
        policy.infer(obs, noise=noise)
    spent = []
    for _ in range(runs):
        start = time.perf_counter()
        actions = policy.infer(obs, noise=noise)
        spent.append((time.perf_counter() - start) * 1000)
    np.save(out, actions)
    # the dual system's per-chunk cost: System 1 (state token + head) against a cached context
    context = policy.encode_context(obs)
    system1 = []
    for _ in range(max(runs, 10)):
        start = time.perf_counter()
        policy.act(context, obs, noise=noise)
        system1.append((time.perf_counter() - start) * 1000)
    row = {
        "backend": backend,
        "chunk_ms_p50": float(np.median(spent)),
        "chunk_ms_min": float(min(spent)),
        "system1_ms_p50": float(np.median(system1)),
        "runs": runs,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "resize": policy.pre.io.resize,
        "steps": policy.spec.num_steps,
    }
    if backend.startswith("onnx:"):
        graphs = graph_times(Path(backend.split(":", 1)[1]), threads, runs, args.arena)
        row["graph_ms"] = graphs
        row["prefix_ms"] = graphs.get("prefix", graphs.get("context", 0) + graphs.get("state", 0))
        row["step_ms"] = graphs.get("denoise", graphs.get("head"))
    else:
        row["prefix_ms"] = torch_prefix_ms(policy, obs, runs)
        row["step_ms"] = (row["chunk_ms_p50"] - row["prefix_ms"]) / row["steps"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backends", nargs="+")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--frame", default="480x640", help="camera frame HxW")
    parser.add_argument("--vlm-dir", help="lerobot checkpoints: the local SmolVLM config + tokenizer dir")
    parser.add_argument("--obs", help="observation .npz to use instead of random frames")
    parser.add_argument("--noise", help="noise .npy (chunk_size x max_action_dim) to use")
    parser.add_argument(
        "--reference", help="actions .npy the errors are measured against (default: first backend)"
    )
    parser.add_argument("--arena", action="store_true", help="ONNX: ONNX Runtime's CPU memory arena on")
    parser.add_argument(
        "--spinning", action="store_true", help="ONNX: intra-op threads spin between runs (ORT's default)"
    )
    parser.add_argument(
        "--steps", type=int, help="ONNX: flow/diffusion steps per chunk (default: the manifest's)"
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    frame = tuple(int(x) for x in args.frame.split("x"))
    if args.child:
        row = child(args, frame, Path(args.child))
        print(json.dumps(row))
        return
    rows, reference = [], np.load(args.reference) if args.reference else None
    with tempfile.TemporaryDirectory() as work:
        for index, backend in enumerate(args.backends):
            actions_file = Path(work) / f"{index}.npy"
            command = [sys.executable, __file__, backend, "--child", str(actions_file)]
            command += [
                "--threads",
                str(args.threads),
                "--runs",
                str(args.runs),
                "--warmup",
                str(args.warmup),
            ]
            command += ["--frame", args.frame]
            command += ["--arena"] if args.arena else []
            command += ["--spinning"] if args.spinning else []
            command += ["--steps", str(args.steps)] if args.steps else []
            for flag in ("vlm_dir", "obs", "noise"):
                if getattr(args, flag):
                    command += [f"--{flag.replace('_', '-')}", getattr(args, flag)]
            done = subprocess.run(command, capture_output=True, text=True, env={**os.environ})
            if done.returncode:
                print(f"{backend}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            actions = np.load(actions_file)
            if reference is None:
                reference = actions
            row["max_abs_err"] = float(np.abs(actions - reference).max())
            row["mean_abs_err"] = float(np.abs(actions - reference).mean())
            rows.append(row)
            if not args.json:
                print(
                    f"{backend:60s} prefix {row['prefix_ms']:8.1f} ms  step {row['step_ms']:7.1f} ms  "
                    f"chunk {row['chunk_ms_p50']:8.1f} ms  System 1 {row['system1_ms_p50']:7.1f} ms  RSS {row['peak_rss_mb']:6.0f} MB  "
                    f"err max {row['max_abs_err']:.2e} mean {row['mean_abs_err']:.2e}",
                    flush=True,
                )
    if args.json:
        print(json.dumps({"threads": args.threads, "load": os.getloadavg(), "rows": rows}))


if __name__ == "__main__":
    main()
