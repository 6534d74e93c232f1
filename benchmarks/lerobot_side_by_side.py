"""lerobot's eager SmolVLA and edgevla's backends on the same checkpoint, observation and noise:
chunk latency, peak RSS and the ratio of each edgevla backend to lerobot.

lerobot runs from a throwaway environment of its own (never a dependency of edgevla; see
tests/fixtures/make_smolvla_goldens.py for how to make one, e.g. /work/lerobot-venv); this
script's lerobot half imports nothing from edgevla, its edgevla half nothing from lerobot.

    # 1. a SmolVLA-450M checkpoint saved by lerobot itself (random weights, SmolVLM2-500M shapes,
    #    3 cameras 480x640) with obs.npz + noise.npy, made once by the lerobot env:
    HF_HUB_OFFLINE=1 /work/lerobot-venv/bin/python tests/fixtures/make_smolvla_450m_golden.py WORK
    # 2. edgevla artifacts of that checkpoint, as many as you want compared:
    edgevla export onnx --policy WORK/policy --vlm-dir WORK/vlm --out WORK/art [--optimize]
    edgevla quantize --policy WORK/art --method int8-dynamic --out WORK/art-int8
    # 3. side by side (each backend in its own process, `--threads` each):
    python benchmarks/lerobot_side_by_side.py --lerobot-python /work/lerobot-venv/bin/python \
        --work WORK torch torch:bf16 onnx:WORK/art-int8 [--threads 2] [--runs 3]

Backends: `torch[:bf16]` (edgevla's torch policy on WORK/policy) or `onnx:ART`. Print `uptime`
beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def lerobot_child(work: Path, threads: int, runs: int, warmup: int) -> dict:
    """Runs in the lerobot environment: lerobot's own loading, preprocessing and sampling."""
    import torch
    from lerobot.policies.factory import make_pre_post_processors
    from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy

    torch.set_num_threads(threads)
    policy = SmolVLAPolicy.from_pretrained(str(work / "policy")).eval()
    pre, post = make_pre_post_processors(policy.config, pretrained_path=str(work / "policy"))
    raw = dict(np.load(work / "obs.npz"))
    noise = torch.from_numpy(np.load(work / "noise.npy"))[None]
    batch = {k: torch.from_numpy(v).permute(2, 0, 1).float() / 255 for k, v in raw.items() if "images" in k}
    batch["observation.state"] = torch.from_numpy(raw["observation.state"])
    batch["task"] = str(raw["task"])

    def chunk():
        with torch.no_grad():
            return post(policy.predict_action_chunk(pre(dict(batch)), noise=noise))[0]

    for _ in range(warmup):
        chunk()
    spent = []
    for _ in range(runs):
        start = time.perf_counter()
        actions = chunk()
        spent.append((time.perf_counter() - start) * 1000)
    np.save(work / "lerobot_actions.npy", actions.numpy().astype(np.float32))
    return {
        "backend": "lerobot 0.4.4 eager",
        "chunk_ms_p50": float(np.median(spent)),
        "chunk_ms_min": float(min(spent)),
        "runs": runs,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def edgevla_rows(args: argparse.Namespace) -> list[dict]:
    """edgevla's backends through benchmarks/policy_table.py, errors against lerobot's actions."""
    backends = []
    for backend in args.backends:
        kind, _, rest = backend.partition(":")
        backends.append(f"torch:{args.work / 'policy'}:{rest or 'fp32'}" if kind == "torch" else backend)
    command = [sys.executable, str(HERE / "policy_table.py"), *backends, "--json"]
    command += ["--threads", str(args.threads), "--runs", str(args.runs), "--warmup", str(args.warmup)]
    command += ["--vlm-dir", str(args.work / "vlm"), "--obs", str(args.work / "obs.npz")]
    command += [
        "--noise",
        str(args.work / "noise.npy"),
        "--reference",
        str(args.work / "lerobot_actions.npy"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"edgevla backends failed:\n{done.stderr[-2000:]}")
    if done.stderr.strip():
        print(done.stderr.strip(), file=sys.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])["rows"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backends", nargs="*", default=["torch"], help="torch[:bf16] or onnx:ART")
    parser.add_argument(
        "--work", type=Path, required=True, help="folder with policy/, vlm/, obs.npz, noise.npy"
    )
    parser.add_argument("--lerobot-python", help="the lerobot environment's python")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--lerobot-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.lerobot_child:
        print(json.dumps(lerobot_child(args.work, args.threads, args.runs, args.warmup)))
        return
    if not args.lerobot_python or not (args.work / "policy").is_dir():
        sys.exit("give --lerobot-python and a --work folder made by make_smolvla_450m_golden.py (see --help)")
    command = [args.lerobot_python, __file__, "--lerobot-child", "--work", str(args.work)]
    command += ["--threads", str(args.threads), "--runs", str(args.runs), "--warmup", str(args.warmup)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode:
        sys.exit(f"lerobot failed:\n{done.stderr[-2000:]}")
    lerobot = json.loads(done.stdout.strip().splitlines()[-1])
    rows = edgevla_rows(args)
    report = {"threads": args.threads, "load": os.getloadavg(), "lerobot": lerobot, "edgevla": rows}
    for row in rows:
        row["speedup_vs_lerobot"] = lerobot["chunk_ms_p50"] / row["chunk_ms_p50"]
        row["rss_vs_lerobot"] = row["peak_rss_mb"] / lerobot["peak_rss_mb"]
    if args.json:
        print(json.dumps(report))
        return
    print(
        f"{lerobot['backend']:48s} chunk {lerobot['chunk_ms_p50']:8.0f} ms  RSS {lerobot['peak_rss_mb']:6.0f} MB"
    )
    for row in rows:
        print(
            f"{row['backend'][-48:]:48s} chunk {row['chunk_ms_p50']:8.0f} ms  System 1 {row['system1_ms_p50']:6.0f} ms  RSS {row['peak_rss_mb']:6.0f} MB  "
            f"x{row['speedup_vs_lerobot']:.2f} speed, x{row['rss_vs_lerobot']:.2f} RSS, "
            f"max |a - lerobot| {row['max_abs_err']:.2e}"
        )


if __name__ == "__main__":
    main()
