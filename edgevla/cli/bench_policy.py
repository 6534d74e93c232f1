"""`edgevla bench policy`: chunk latency (p50/p90) and peak memory of one policy backend.

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

import numpy as np

from edgevla.errors import EdgevlaError
from edgevla.runtime.policy import Policy


def torch_backend(args: argparse.Namespace) -> Policy:
    import torch

    from edgevla.model.checkpoint import build_preset, load_policy

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.preset:
        return build_preset(args.preset, device=args.device, dtype=args.dtype)
    return load_policy(args.policy, device=args.device, dtype=args.dtype, vlm_dir=args.vlm_dir)


BACKENDS: dict[str, Callable[[argparse.Namespace], Policy]] = {"torch": torch_backend}


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
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


def synthetic_observation(policy: Policy, seed: int = 0) -> dict:
    """Random camera frames at the policy's size, a random state and a fixed instruction."""
    rng = np.random.default_rng(seed)
    spec = policy.spec
    obs = {
        f"observation.images.{c.name}": rng.integers(0, 256, (c.height, c.width, 3), np.uint8)
        for c in spec.cameras
    }
    obs["observation.state"] = rng.normal(size=spec.state_dim).astype(np.float32)
    obs["task"] = "pick up the red cube and place it in the bowl"
    return obs


def measure(policy: Policy, runs: int, warmup: int) -> dict:
    if runs < 1 or warmup < 0:
        raise EdgevlaError("--runs must be >= 1 and --warmup >= 0")
    obs = synthetic_observation(policy)
    for _ in range(warmup):
        policy.infer(obs)
    latencies = []
    for _ in range(runs):
        start = time.perf_counter()
        policy.infer(obs)
        latencies.append((time.perf_counter() - start) * 1000)
    return {
        "chunk_ms_p50": float(np.percentile(latencies, 50)),
        "chunk_ms_p90": float(np.percentile(latencies, 90)),
        "chunk_ms_min": float(min(latencies)),
        "runs": runs,
        # ru_maxrss is in KiB on Linux: the whole process, interpreter and libraries included
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


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
        "num_steps": spec.num_steps,
        "cameras": len(spec.cameras),
        **figures,
    }
    if args.backend == "torch":
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
