"""Every GPU figure of docs/PERFORMANCE.md from one run of at most 8 minutes (benchmarks/gpu.sh).

    benchmarks/gpu.sh [--out gpu-report.json] [--budget 450]
    python benchmarks/gpu_check.py --rehearse      # the same stages on this CPU with the tiny preset

On a machine without a GPU it prints one line saying so and exits 0.

Each stage runs in its own process (a crash or a hang costs that stage only) and is skipped when
the time left is less than it needs. Two lanes run side by side: on the CPU, the ONNX export and
its fp16 / int8-static (QDQ, only where TensorRT is) conversions; on the GPU, in this order:
    torch eager fp32 / bf16      450M chunk latency, prefix, peak GPU memory
    torch.compile bf16           CUDA graphs ("reduce-overhead", static prefix cache), plain
                                 inductor if that fails; compile time reported apart
    recipes                      peak GPU memory of recipes/smolvla-*.yaml at their batch size
                                 (`edgevla train --dry-run` on a synthetic dataset, grad_accum 1)
    onnx cuda fp16 / fp32        ONNX Runtime CUDA EP: per-graph and chunk latency
    dual system                  System 1 per chunk (cached context, fresh state:
                                 OnnxPolicy.encode_context once, then act)
    tensorrt fp16 / int8         ONNX Runtime TensorRT EP (engines built on the first run, build
                                 time reported apart as first_run_s); int8 from the QDQ artifact
The 450M policy has random weights (the preset): latency and memory do not depend on values.
Action error is against torch fp32 on the same observation and noise. One JSON report is written.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
NO_GPU = "no GPU here (torch sees no CUDA device and onnxruntime offers no CUDA provider): nothing measured"
# stage -> seconds it needs at least on an H100/H200-class machine. Two lanes run side by side:
# the CPU lane exports and converts the ONNX artifacts while the GPU lane times torch; a GPU-lane
# stage that reads an artifact waits for it.
CPU_LANE = {"export": 120, "quantize-fp16": 60, "quantize-int8-static": 120}
GPU_LANE = {
    "torch-fp32": 40,
    "torch-bf16": 30,
    "torch-compile-bf16": 150,
    "recipes": 90,
    "onnx-cuda-fp16": 40,
    "onnx-cuda-fp32": 40,
    "dual-system": 30,
    "tensorrt-fp16": 150,
    "tensorrt-int8": 150,
}
REQUIRES = {
    "quantize-fp16": "export",
    "quantize-int8-static": "export",
    "onnx-cuda-fp16": "quantize-fp16",
    "onnx-cuda-fp32": "export",
    "dual-system": "export",
    "tensorrt-fp16": "export",
    "tensorrt-int8": "quantize-int8-static",
}


def gpu_present() -> str | None:
    """The GPU's name, or None."""
    with contextlib.suppress(ImportError):
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    with contextlib.suppress(ImportError):
        import onnxruntime as ort

        if "CUDAExecutionProvider" in ort.get_available_providers():
            return "CUDA (onnxruntime)"
    return None


# --- one stage, in a child process ---------------------------------------------------------


# what a chunk calls on the network, today's names and those of the dual-system split
ENTRY_POINTS = (
    "encode_prefix",
    "encode_context",
    "encode_state",
    "denoise_step",
    "expert_cache",
    "run_expert",
)


class Context:
    def __init__(self, work: Path, rehearse: bool, runs: int):
        self.work, self.rehearse, self.runs = work, rehearse, runs
        self.device = "cpu" if rehearse else "cuda"
        self.preset = "tiny" if rehearse else "smolvla-450m"
        self.ckpt, self.art = work / "ckpt", work / "art-fp32"

    def sync(self) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()

    def observation(self, spec):
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from policy_table import observation

        return observation(spec, (480, 640))

    def noise(self, spec) -> np.ndarray:
        return np.random.default_rng(1).standard_normal(
            (spec.chunk_size, spec.max_action_dim), dtype=np.float32
        )

    def time_chunks(self, policy, warmup: int = 2) -> dict:
        obs, noise = self.observation(policy.spec), self.noise(policy.spec)
        for _ in range(warmup):
            policy.infer(obs, noise=noise)
        spent = []
        for _ in range(self.runs):
            start = time.perf_counter()
            actions = policy.infer(obs, noise=noise)
            spent.append((time.perf_counter() - start) * 1000)
        np.save(self.work / f"actions-{os.getpid()}.npy", actions)
        return {"chunk_ms_p50": float(np.median(spent)), "chunk_ms_min": float(min(spent)), "runs": self.runs,
                "error_vs_torch_fp32": self.error(actions)}  # fmt: skip

    def error(self, actions: np.ndarray) -> float | None:
        reference = self.work / "reference.npy"
        if not reference.exists():
            np.save(reference, actions)
            return 0.0
        return float(np.abs(actions - np.load(reference)).max())


def stage_torch(ctx: Context, dtype: str, compiled: bool = False) -> dict:
    import torch

    from edgevla.model.checkpoint import load_policy

    policy = load_policy(ctx.ckpt, device=ctx.device, dtype=dtype)
    result: dict = {}
    if compiled:
        result.update(compile_network(ctx, policy))
    if ctx.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    result.update(ctx.time_chunks(policy))
    batch = policy.batch(policy.pre(ctx.observation(policy.spec)))
    spent = []
    with torch.no_grad():
        policy.net.encode_prefix(**batch)  # untimed: anything still to compile or allocate
        for _ in range(ctx.runs):
            ctx.sync()
            start = time.perf_counter()
            policy.net.encode_prefix(**batch)
            ctx.sync()
            spent.append((time.perf_counter() - start) * 1000)
    result["prefix_ms"] = float(np.median(spent))
    if ctx.device == "cuda":
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def compile_network(ctx: Context, policy) -> dict:
    """torch.compile the network's entry points (static shapes: the prefix cache has a fixed
    length), CUDA graphs first ("reduce-overhead": the step is launch-bound), plain inductor if
    that fails. Returns the mode that worked and its compile time (the first chunk)."""
    import torch

    entry_points = [n for n in ENTRY_POINTS if hasattr(policy.net, n)]
    if "encode_context" in entry_points:  # encode_prefix only calls the two systems' halves
        entry_points = [n for n in entry_points if n != "encode_prefix"]
    originals = {name: getattr(policy.net, name) for name in entry_points}
    problems = []
    for mode in ("reduce-overhead", "default"):
        for name, function in originals.items():
            setattr(policy.net, name, torch.compile(function, mode=mode))
        start = time.perf_counter()
        try:
            for _ in range(2):  # CUDA graphs record on the second call
                policy.infer(ctx.observation(policy.spec), noise=ctx.noise(policy.spec))
        except Exception as err:  # noqa: BLE001 - the next mode is tried, the failure reported
            problems.append(f"{mode}: {type(err).__name__}: {str(err).splitlines()[0][:160]}")
            torch._dynamo.reset()
            continue
        return {"mode": mode, "compile_s": time.perf_counter() - start, "compiled": entry_points,
                "problems": problems}  # fmt: skip
    raise RuntimeError("; ".join(problems))


def stage_recipes(ctx: Context) -> dict:
    from edgevla.train.dryrun import dry_run
    from edgevla.train.recipe import load_recipe
    from edgevla.train.synthetic import write_reaching_dataset

    data = write_reaching_dataset(ctx.work / "reach", 4, 24, ("front", "wrist"), 96, 128)
    result = {}
    for path in sorted((ROOT / "recipes").glob("smolvla-*.yaml")):
        overrides = {
            "base": str(ctx.ckpt),
            "datasets": [str(data)],
            "grad_accum": 1,
            "out": str(ctx.work / "run"),
        }
        if ctx.rehearse:
            overrides.update({"batch_size": 2, "device": "cpu"})
        try:
            recipe = load_recipe(path, overrides)
            report = dry_run(recipe, str(path), steps=2)
            result[path.stem] = {"batch_size": recipe.batch_size, **report["memory"]}
        except Exception as err:  # noqa: BLE001 - one recipe's failure is reported, the others still run
            result[path.stem] = {"failed": f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"}
    return result


def stage_export(ctx: Context) -> dict:
    from edgevla.export.onnx_graphs import export_onnx
    from edgevla.model.checkpoint import load_policy

    start = time.perf_counter()
    export_onnx(load_policy(ctx.ckpt), ctx.art, log=lambda _: None)
    return {"export_s": time.perf_counter() - start}


def stage_quantize(ctx: Context, method: str) -> dict:
    from edgevla.export.quantize import quantize_artifact

    observations = None
    if method == "int8-static":
        from edgevla.runtime.onnx_policy import OnnxPolicy

        spec = OnnxPolicy(ctx.art, providers=["cpu"]).spec
        observations = iter([ctx.observation(spec) for _ in range(2)])
    start = time.perf_counter()
    quantize_artifact(ctx.art, method, ctx.work / f"art-{method}", observations, log=lambda _: None)
    return {"quantize_s": time.perf_counter() - start}


def ort_options(provider: str, precision: str, work: Path) -> list:
    """Provider list with options (TensorRT: precision flags and an engine cache under work)."""
    if provider == "tensorrt":
        options = {
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(work / "trt-cache"),
            "trt_fp16_enable": precision in ("fp16", "int8"),
            "trt_int8_enable": precision == "int8",  # explicit: the QDQ graph carries the scales
        }
        return [("TensorrtExecutionProvider", options), "CUDAExecutionProvider", "CPUExecutionProvider"]
    if provider == "cuda":
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def stage_onnx(ctx: Context, provider: str, precision: str, art_name: str) -> dict:
    """Each graph of WORK/`art_name` alone on `provider` (first run = engine build for TensorRT),
    then whole chunks through OnnxPolicy where the provider needs no options."""
    import onnxruntime as ort

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from op_profile import feed_for

    art = ctx.work / art_name
    if ctx.rehearse:
        provider = "cpu"
    graphs = json.loads((art / "manifest.json").read_text())["graphs"]
    result: dict = {"graph_ms": {}, "first_run_s": {}}
    for graph, filename in graphs.items():
        session = ort.InferenceSession(
            str(art / filename), providers=ort_options(provider, precision, ctx.work)
        )
        result.setdefault("providers", session.get_providers())
        feed = feed_for(session)
        start = time.perf_counter()
        session.run(None, feed)
        result["first_run_s"][graph] = time.perf_counter() - start
        spent = []
        for _ in range(ctx.runs):
            start = time.perf_counter()
            session.run(None, feed)
            spent.append((time.perf_counter() - start) * 1000)
        result["graph_ms"][graph] = float(np.median(spent))
    if provider in ("cuda", "cpu"):
        from edgevla.runtime.onnx_policy import OnnxPolicy

        result.update(ctx.time_chunks(OnnxPolicy(art, providers=[provider])))
    return result


def stage_dual(ctx: Context) -> dict:
    from edgevla.runtime.onnx_policy import OnnxPolicy

    policy = OnnxPolicy(ctx.art, providers=["cpu" if ctx.rehearse else "cuda"])
    obs = ctx.observation(policy.spec)
    context = policy.encode_context(obs)
    policy.act(context, obs)
    spent = []
    for _ in range(ctx.runs * 3):
        start = time.perf_counter()
        policy.act(context, obs)
        spent.append((time.perf_counter() - start) * 1000)
    return {"system1_chunk_ms_p50": float(np.median(spent)), "runs": len(spent)}


def run_stage(name: str, ctx: Context) -> dict:
    stages = {
        "torch-fp32": lambda: stage_torch(ctx, "fp32"),
        "torch-bf16": lambda: stage_torch(ctx, "bf16"),
        "recipes": lambda: stage_recipes(ctx),
        "export": lambda: stage_export(ctx),
        "onnx-cuda-fp32": lambda: stage_onnx(ctx, "cuda", "fp32", "art-fp32"),
        "quantize-fp16": lambda: stage_quantize(ctx, "fp16"),
        "onnx-cuda-fp16": lambda: stage_onnx(ctx, "cuda", "fp16", "art-fp16"),
        "dual-system": lambda: stage_dual(ctx),
        "torch-compile-bf16": lambda: stage_torch(ctx, "bf16", compiled=True),
        "tensorrt-fp16": lambda: stage_onnx(
            ctx, "tensorrt", "fp16", "art-fp32"
        ),  # TensorRT picks fp16 kernels
        "quantize-int8-static": lambda: stage_quantize(ctx, "int8-static"),
        "tensorrt-int8": lambda: stage_onnx(ctx, "tensorrt", "int8", "art-int8-static"),
    }
    return stages[name]()


# --- the parent: budget, order, report -----------------------------------------------------


def has_tensorrt() -> bool:
    import onnxruntime as ort

    return "TensorrtExecutionProvider" in ort.get_available_providers()


class Run:
    """The two lanes, the shared deadline and the report."""

    def __init__(self, args: argparse.Namespace, work: str):
        self.args, self.work = args, work
        self.deadline = time.monotonic() + args.budget
        self.stages: dict[str, dict] = {}
        self.finished = {name: threading.Event() for name in {**CPU_LANE, **GPU_LANE}}
        self.lock = threading.Lock()

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def lane(self, stages: dict[str, int]) -> None:
        for name, seconds in stages.items():
            try:
                self.stages[name] = self.one(name, seconds)
            finally:
                self.finished[name].set()
            with self.lock:
                print(f"{name:22s} {json.dumps(self.stages[name])}", flush=True)

    def one(self, name: str, seconds: int) -> dict:
        before = REQUIRES.get(name)
        if before:
            self.finished[before].wait(timeout=max(0.0, self.left()))
            if "stage_s" not in self.stages.get(before, {}):
                return {"skipped": f"needs {before}"}
        trt_only = name.startswith("tensorrt") or (name == "quantize-int8-static" and not self.args.rehearse)
        if trt_only and not has_tensorrt():
            return {"skipped": "onnxruntime here has no TensorRT provider"}
        if self.left() < seconds:
            return {"skipped": f"{self.left():.0f} s left, it needs about {seconds} s"}
        if name in self.args.skip:
            return {"skipped": "--skip"}
        return child(name, self.args, self.work, timeout=self.left())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gpu-report.json", help="JSON report to write")
    parser.add_argument("--budget", type=float, default=450, help="seconds for all stages")
    parser.add_argument("--runs", type=int, default=5, help="timed chunks per backend")
    parser.add_argument("--skip", action="append", default=[], help="a stage not to run (repeatable)")
    parser.add_argument("--rehearse", action="store_true", help="run every stage on this CPU, tiny preset")
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:  # child
        ctx = Context(Path(args.work), args.rehearse, args.runs)
        print(json.dumps(run_stage(args.stage, ctx)))
        return 0
    gpu = None if args.rehearse else gpu_present()
    if gpu is None and not args.rehearse:
        print(NO_GPU)
        return 0
    sys.path.insert(0, str(ROOT))  # this checkout's edgevla, installed or not
    report: dict = {"gpu": gpu or "none (rehearsal on CPU)", "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    with tempfile.TemporaryDirectory(prefix="edgevla-gpu-") as work:
        run = Run(args, work)
        from edgevla.model.checkpoint import build_preset, save_policy

        # the rehearsal's tiny policy gets the 450M preset's camera names, which the recipes map
        cameras = {"cameras": ("camera1", "camera2", "camera3"), "camera_shapes": ((96, 96),) * 3}
        save_policy(
            build_preset(Context(Path(work), args.rehearse, 0).preset, **(cameras if args.rehearse else {})),
            Path(work) / "ckpt",
        )
        cpu = threading.Thread(target=run.lane, args=(CPU_LANE,), daemon=True)
        cpu.start()
        run.lane(GPU_LANE)
        cpu.join(timeout=max(0.0, run.left()))
        report["stages"] = {
            name: run.stages.get(name, {"skipped": "out of time"}) for name in {**CPU_LANE, **GPU_LANE}
        }
    report["seconds"] = round(args.budget - run.left(), 1)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")
    return 0


def child(name: str, args: argparse.Namespace, work: str, timeout: float) -> dict:
    command = [sys.executable, __file__, "--stage", name, "--work", work, "--runs", str(args.runs)]
    command += ["--rehearse"] if args.rehearse else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    start = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    except subprocess.TimeoutExpired:
        return {"failed": f"stopped after {timeout:.0f} s (the run's budget)"}
    if done.returncode:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return {"failed": (lines[-1] if lines else f"exit {done.returncode}")[:300]}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["stage_s"] = round(time.monotonic() - start, 1)
    return result


if __name__ == "__main__":
    sys.exit(main())
