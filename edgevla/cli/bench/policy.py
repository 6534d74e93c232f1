"""`edgevla bench policy`: chunk latency (p50/p90) and peak memory of one policy backend.

A backend turns the parsed arguments into something with the runtime `Policy` interface;
the timing loop is shared, so a new backend (ONNX Runtime, TensorRT...) only adds an entry to
`BACKENDS` and, if it needs them, its options in `configure`.
"""

from __future__ import annotations

import argparse
import json
import platform
from collections.abc import Callable
from pathlib import Path

from edgevla.cli.args import add_steps
from edgevla.errors import EdgevlaError
from edgevla.evaluation.latency import measure
from edgevla.policy_io import Policy


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


def run(args: argparse.Namespace) -> int:
    policy = BACKENDS[args.backend](args)
    figures = measure(policy, args.runs, args.warmup)
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
    return 0
