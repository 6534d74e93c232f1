"""`edgevla bench policy`: chunk latency (p50/p90) and peak memory of one policy backend, and for
a policy whose prefix splits, the dual system's parts: System 2 (the context), System 1 (the
state and the head's loop from the cached context) and one head step.

A backend turns the parsed arguments into something with the runtime `Policy` interface;
the timing loop is shared, so a new backend (ONNX Runtime, TensorRT...) only adds an entry to
`BACKENDS` and, if it needs them, its options in `configure`.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgevla.cli.args import add_steps
from edgevla.errors import EdgevlaError
from edgevla.evaluation.latency import measure
from edgevla.policy_io import Context, DualPolicy, Observation, Policy
from edgevla.runtime.synthetic import synthetic_observation


def torch_backend(args: argparse.Namespace) -> Policy:
    import torch

    from edgevla.model.checkpoint import build_preset, load_policy

    if args.threads:
        torch.set_num_threads(args.threads)
    from edgevla.model.policy import check_steps

    if args.preset:
        policy = build_preset(args.preset, device=args.device, dtype=args.dtype)
    else:
        policy = load_policy(args.policy, device=args.device, dtype=args.dtype, vlm_dir=args.vlm_dir)
    policy.num_steps = check_steps(policy.net.head, args.steps)
    return policy


def onnx_backend(args: argparse.Namespace) -> Policy:
    from edgevla.runtime.onnx_policy import OnnxPolicy

    if args.preset or not args.policy:
        raise EdgevlaError("ONNX backends run an exported artifact: pass --policy ART (edgevla export onnx)")
    policy = OnnxPolicy(
        args.policy,
        providers=args.providers.split(",") if args.providers else None,
        threads=args.threads,
        num_steps=args.steps,
    )
    precision = policy.manifest.precision
    if args.backend == "onnx-int8" and not precision.startswith("int8"):
        raise EdgevlaError(
            f"{args.policy} is {precision}, not int8: make one with `edgevla quantize --method int8-dynamic`"
        )
    return policy


def bnb_backend(args: argparse.Namespace) -> Policy:
    from edgevla.export.bnb import apply_bnb

    policy = torch_backend(args)
    apply_bnb(policy, args.backend)
    return policy


BACKENDS: dict[str, Callable[[argparse.Namespace], Policy]] = {
    "torch": torch_backend,
    "onnx": onnx_backend,
    "onnx-int8": onnx_backend,
    "bnb-int8": bnb_backend,
    "bnb-nf4": bnb_backend,
}
WEIGHT_FILES = ("*.onnx", "*.onnx.data", "model.safetensors")


def model_file_mb(policy_dir: str | None) -> float | None:
    """Size of the weight files (graphs or safetensors) of a policy directory."""
    if not policy_dir:
        return None
    files = {f for pattern in WEIGHT_FILES for f in Path(policy_dir).glob(pattern)}
    return sum(f.stat().st_size for f in files) / 2**20


def configure(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--preset", help="random-weight preset: tiny, small, smolvla-450m")
    source.add_argument("--policy", help="policy directory (or exported artifact for other backends)")
    parser.add_argument("--backend", default="torch", choices=sorted(BACKENDS))
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--vlm-dir", help="local SmolVLM config+tokenizer dir (lerobot checkpoints)")
    parser.add_argument("--runs", type=int, default=10, help="timed chunks")
    parser.add_argument("--warmup", type=int, default=2, help="untimed chunks first")
    parser.add_argument(
        "--threads", type=int, default=0, help="CPU threads of torch / ONNX Runtime (0: default)"
    )
    parser.add_argument(
        "--providers", help="ONNX backends: cpu, cuda, tensorrt (comma-separated; default: best present)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_steps(parser)
    parser.set_defaults(handler=run)


# --- the dual system's parts -------------------------------------------------------------------

ONNX_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
}


def onnx_head_step(policy, context: Context, obs: Observation) -> Callable[[], object]:
    """One call of the artifact's head graph against the prefix cache of `obs`'s state; its own
    inputs (x_t, time, ... whatever the head takes) are zeros of their declared shapes."""
    cache_names = ("expert_k", "expert_v", "prefix_mask")
    cache = dict(
        zip(cache_names, policy.sessions["state"].run(None, policy.state_feed(obs, context)), strict=True)
    )
    head = policy.sessions["head"]
    feed = {
        arg.name: np.zeros([d if isinstance(d, int) else 1 for d in arg.shape], ONNX_TYPES[arg.type])
        for arg in head.get_inputs()
        if arg.name not in cache
    }
    return lambda: head.run(None, {**feed, **cache})


def torch_head_step(policy, context: Context, obs: Observation) -> Callable[[], object]:
    """One call of the torch head's step against the prefix cache of `obs`'s state, on the head's
    example inputs."""
    import torch

    net = policy.net
    state = torch.from_numpy(policy.pre.state(obs))[None].to(policy.device)
    with torch.no_grad():
        prefix_k, prefix_v, prefix_mask = net.encode_state(state, *context.arrays)
        expert_k, expert_v = net.expert_cache(prefix_k, prefix_v)
    inputs = [tensor.to(policy.device) for tensor in net.head.example_step_inputs()]

    def step() -> None:
        with torch.no_grad():
            net.head.step(net, *inputs, expert_k=expert_k, expert_v=expert_v, prefix_mask=prefix_mask)
        if policy.device.type == "cuda":
            torch.cuda.synchronize()

    return step


def measure_systems(policy: DualPolicy, runs: int, warmup: int) -> dict:
    """p50/p90 ms of System 2 (`context_ms`), System 1 from the cached context (`system1_ms`: the
    state graph and the whole head loop) and one head step (`head_step_ms`)."""
    from edgevla.runtime.onnx_policy import OnnxPolicy

    obs = synthetic_observation(policy.spec)
    context = policy.encode_context(obs)
    step = (onnx_head_step if isinstance(policy, OnnxPolicy) else torch_head_step)(policy, context, obs)
    parts: dict[str, Callable[[], object]] = {
        "context_ms": lambda: policy.encode_context(obs),
        "system1_ms": lambda: policy.act(context, obs),
        "head_step_ms": step,
    }
    timings: dict[str, list[float]] = {name: [] for name in parts}
    for round_ in range(warmup + runs):
        for name, part in parts.items():
            start = time.perf_counter()
            part()
            if round_ >= warmup:
                timings[name].append((time.perf_counter() - start) * 1000)
    figures = {}
    for name, values in timings.items():
        figures[f"{name}_p50"] = float(np.percentile(values, 50))
        figures[f"{name}_p90"] = float(np.percentile(values, 90))
    return figures


def run(args: argparse.Namespace) -> int:
    policy = BACKENDS[args.backend](args)
    figures = measure(policy, args.runs, args.warmup)
    if isinstance(policy, DualPolicy):
        figures |= measure_systems(policy, args.runs, args.warmup)
        figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    spec = policy.spec
    report = {
        "bench": "policy",
        "backend": args.backend,
        "policy": args.preset or args.policy,
        "device": args.device,
        "dtype": args.dtype,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "chunk_size": spec.chunk_size,
        "num_steps": args.steps or spec.num_steps,
        "head": spec.extra.get("head", "flow"),
        "cameras": len(spec.cameras),
        "precision": spec.extra.get("precision", spec.extra.get("dtype", args.dtype)),
        "model_file_mb": model_file_mb(args.policy),
        **figures,
    }
    if args.backend in ("onnx", "onnx-int8"):
        report["providers"] = spec.extra["providers"]
    else:
        import torch

        report["threads"] = torch.get_num_threads()
        if args.device.startswith("cuda"):
            report["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"{report['policy']} [{args.backend} {args.device} {args.dtype}]: chunk p50 {report['chunk_ms_p50']:.1f} ms, "
            f"p90 {report['chunk_ms_p90']:.1f} ms over {args.runs} runs; peak RSS {report['peak_rss_mb']:.0f} MB"
        )
        if "context_ms_p50" in report:
            print(
                f"  dual system: System 2 (context) {report['context_ms_p50']:.1f} ms, System 1 (state + "
                f"{spec.num_steps} head steps from the cached context) {report['system1_ms_p50']:.1f} ms, "
                f"one head step {report['head_step_ms_p50']:.2f} ms (p50)"
            )
    return 0
