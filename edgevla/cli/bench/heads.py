"""`edgevla bench heads`: the action heads compared on one backbone, the same data and budget.

Stages (each skips what WORK already holds, so a stopped run continues where it was):

    train     every head trained by `edgevla train` on the same demos, from the same checkpoint's
              VLM (base_parts: vlm; state projection, expert and head fresh from one seed), with
              the same number of steps and batch size
    export    each policy exported to ONNX (fp32) and quantized (int8-dynamic)
    throughput  training samples/s of every head, `edgevla bench train` back to back on the
              first dataset (the training runs' own figures share the machine with whatever
              else ran then; these share it with each other)
    latency   chunk latency p50/p90 of every variant and precision, one process, back to back,
              with the load average before and after
    eval      success over held-out simulator episodes (eval seeds, never demo seeds) on each
              task, fp32 and int8, through `edgevla eval` (async runtime, or --sync N clockless)
    report    WORK/heads.json, WORK/heads.md (the table) and WORK/heads.png (success vs latency)

A variant is a head with a sampling step count: `flow` (its own 10 steps), `flow@2` (the same
weights, 2 Euler steps). Every command run is recorded beside its result.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from edgevla.errors import EdgevlaError

HEADS = ("flow", "diffusion", "regression", "bins", "fast")
STAGES = ("train", "export", "throughput", "latency", "eval", "report")
PRECISIONS = ("fp32", "int8")
TASKS = ("reach", "reach_either")
DEFAULT_VARIANTS = "flow,flow@2,diffusion,regression,bins,fast"


@dataclass(frozen=True)
class Variant:
    name: str  # "flow@2"
    head: str  # "flow"
    steps: int | None  # sampling steps (None: the policy's own)


def parse_variants(text: str) -> list[Variant]:
    variants = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        head, _, steps = item.partition("@")
        if head not in HEADS:
            raise EdgevlaError(f"--heads: '{head}' is not one of {', '.join(HEADS)}")
        if steps and (not steps.isdigit() or head not in ("flow", "diffusion") or not 1 <= int(steps) <= 10):
            raise EdgevlaError(f"--heads: '{item}': @STEPS (1..10) applies to flow and diffusion only")
        variants.append(Variant(item, head, int(steps) if steps else None))
    if not variants:
        raise EdgevlaError("--heads names no head")
    return variants


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset", action="append", required=True, help="demo dataset (repeat: all train every head)"
    )
    parser.add_argument("--base", required=True, help="checkpoint whose VLM every head starts from")
    parser.add_argument("--work", default="runs/heads", help="where runs, artifacts and results go")
    parser.add_argument(
        "--heads", default=DEFAULT_VARIANTS, help=f"variants, HEAD or HEAD@STEPS (default {DEFAULT_VARIANTS})"
    )
    parser.add_argument(
        "--recipe", default="recipes/small-sim-reach.yaml", help="training recipe (its head is replaced)"
    )
    parser.add_argument(
        "--train-steps", type=int, default=1500, help="optimizer steps per head (the same for all)"
    )
    parser.add_argument("--batch", type=int, default=16, help="batch size per step (the same for all)")
    parser.add_argument("--episodes", type=int, default=50, help="held-out episodes per task and precision")
    parser.add_argument(
        "--sync", type=int, default=0, help="clockless eval playing N actions per chunk (0: async runtime)"
    )
    parser.add_argument("--latency-runs", type=int, default=20, help="timed chunks per variant and precision")
    parser.add_argument("--throughput-steps", type=int, default=10, help="timed training steps per head")
    parser.add_argument(
        "--throughput-passes", type=int, default=2, help="passes over the heads, order reversed each"
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="ONNX Runtime threads for latency (0: its default)"
    )
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma list of {', '.join(STAGES)}")
    parser.set_defaults(handler=run)


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} cores"


def edgevla_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgevla", *args]


def run_logged(command: list[str], log: Path) -> subprocess.CompletedProcess:
    """Run `command`, its stderr to `log`, the command line and the load around it beside it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with log.open("w") as err:
        err.write(f"$ {' '.join(command)}\n# {time.strftime('%FT%TZ', time.gmtime())} {load_average()}\n")
        err.flush()
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=err, text=True, check=False)
        err.write(f"# exit {result.returncode} after {time.time() - started:.0f} s; {load_average()}\n")
    if result.returncode != 0:
        raise EdgevlaError(f"{command[3]} failed (exit {result.returncode}): see {log}")
    return result


class TimedSession:
    """An ONNX Runtime session that counts and times its calls (the head graph's share of a chunk)."""

    def __init__(self, session):
        self.session, self.calls, self.seconds = session, 0, 0.0

    def run(self, outputs, feed):
        started = time.perf_counter()
        result = self.session.run(outputs, feed)
        self.seconds += time.perf_counter() - started
        self.calls += 1
        return result


def read_rows(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.work = Path(args.work)
        self.variants = parse_variants(args.heads)
        self.heads = list(dict.fromkeys(v.head for v in self.variants))

    def policy(self, head: str) -> Path:
        return self.work / "train" / head / "policy"

    def artifact(self, head: str, precision: str) -> Path:
        return self.work / "art" / head / precision

    # -- stages --------------------------------------------------------------------------------
    def train(self) -> None:
        a = self.args
        for head in self.heads:
            if (self.policy(head) / "edgevla_policy.json").is_file():
                continue
            steps = str(a.train_steps)
            command = edgevla_command(
                "train", "--recipe", a.recipe, "--out", str(self.work / "train" / head),
                *[arg for path in a.dataset for arg in ("--dataset", path)],
                "--set", f"base={a.base}", "--set", "base_parts=vlm", "--set", f"head.name={head}",
                "--set", f"steps={steps}", "--set", f"batch_size={a.batch}", "--set", "optim.warmup_steps=20",
                "--set", f"optim.decay_steps={steps}", "--set", "eval.episodes=0", "--set", "eval.interval=0",
                "--set", "log_interval=10", "--set", "num_workers=0",
            )  # fmt: skip
            print(f"training {head}: {a.train_steps} steps x {a.batch}", file=sys.stderr)
            run_logged(command, self.work / "train" / f"{head}.log")

    def export(self) -> None:
        from edgevla.export.onnx_graphs import export_onnx
        from edgevla.export.quantize import quantize_artifact
        from edgevla.model.checkpoint import load_policy

        for head in self.heads:
            fp32, int8 = self.artifact(head, "fp32"), self.artifact(head, "int8")
            if not (fp32 / "manifest.json").is_file():
                print(f"exporting {head}", file=sys.stderr)
                export_onnx(
                    load_policy(self.policy(head)), fp32, source=str(self.policy(head)), log=lambda _: None
                )
            if not (int8 / "manifest.json").is_file():
                quantize_artifact(fp32, "int8-dynamic", int8, log=lambda _: None)

    def throughput(self) -> None:
        """Each head timed in every pass, the order reversed each pass (the box's other load drifts
        over minutes); a head's figure is its best pass, the least disturbed."""
        a = self.args
        out = self.work / "throughput.json"
        rows = read_rows(out)
        for number in range(a.throughput_passes):
            for head in self.heads if number % 2 == 0 else reversed(self.heads):
                passes = rows.setdefault(head, {"passes": []})["passes"]
                if len(passes) > number:
                    continue
                command = edgevla_command(
                    "bench", "train", "--recipe", a.recipe, "--dataset", a.dataset[0], "--json",
                    "--steps", str(a.throughput_steps), "--warmup", "3",
                    "--set", f"base={a.base}", "--set", "base_parts=vlm", "--set", f"head.name={head}",
                    "--set", f"batch_size={a.batch}", "--set", "num_workers=0", "--set", "eval.episodes=0",
                )  # fmt: skip
                print(f"training throughput {head}, pass {number + 1}", file=sys.stderr)
                result = run_logged(command, self.work / "throughput" / f"{head}-{number + 1}.log")
                passes.append(json.loads(result.stdout.strip().splitlines()[-1]) | {"load": load_average()})
                rows[head]["samples_per_s"] = max(p["samples_per_s"] for p in passes)
                out.write_text(json.dumps(rows, indent=1))

    def latency(self) -> None:
        from edgevla.evaluation.latency import measure
        from edgevla.runtime.onnx_policy import OnnxPolicy

        rows = []
        before = load_average()
        started = time.time()
        for variant in self.variants:
            for precision in PRECISIONS:
                policy = OnnxPolicy(
                    self.artifact(variant.head, precision), providers=["cpu"], threads=self.args.threads,
                    num_steps=variant.steps,
                )  # fmt: skip
                figures = measure(policy, self.args.latency_runs, warmup=2)
                head = policy.sessions["head"] = TimedSession(policy.sessions["head"])
                chunks = measure(policy, self.args.latency_runs, warmup=0)["runs"]
                figures |= {
                    "head_calls_per_chunk": head.calls / chunks,  # fast: tokens decoded (+ EOS)
                    "head_call_ms": head.seconds * 1e3 / max(1, head.calls),
                    "holds": policy.holds,
                }
                rows.append({"variant": variant.name, "precision": precision, **figures})
                print(
                    f"latency {variant.name} {precision}: p50 {figures['chunk_ms_p50']:.1f} ms",
                    file=sys.stderr,
                )
        record = {
            "rows": rows,
            "load_before": before,
            "load_after": load_average(),
            "seconds": time.time() - started,
        }
        record["threads"] = self.args.threads
        (self.work / "latency.json").write_text(json.dumps(record, indent=1))

    def eval_path(self, variant: Variant, precision: str, task: str) -> Path:
        return self.work / "eval" / f"{variant.name}-{precision}-{task}.json"

    def evaluate(self) -> None:
        a = self.args
        for variant in self.variants:
            for precision in PRECISIONS:
                for task in TASKS:
                    out = self.eval_path(variant, precision, task)
                    if out.is_file():
                        continue
                    command = edgevla_command(
                        "eval", "--policy", str(self.artifact(variant.head, precision)), "--task", task,
                        "--episodes", str(a.episodes), "--json",
                    )  # fmt: skip
                    command += ["--sync", str(a.sync)] if a.sync else []
                    command += ["--steps", str(variant.steps)] if variant.steps else []
                    print(f"eval {variant.name} {precision} {task}", file=sys.stderr)
                    result = run_logged(command, out.with_suffix(".log"))
                    summary = json.loads(result.stdout.strip().splitlines()[-1])
                    summary.pop("per_episode", None), summary.pop("queue_depth", None)
                    out.write_text(json.dumps({"command": " ".join(command), **summary}, indent=1))

    def report(self) -> None:
        from edgevla.evaluation.heads_report import write_report

        write_report(self.work, self.variants, self.args)

    STAGE_METHODS = {
        "train": train,
        "export": export,
        "throughput": throughput,
        "latency": latency,
        "eval": evaluate,
        "report": report,
    }


def run(args: argparse.Namespace) -> int:
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise EdgevlaError(f"--stages: '{unknown[0]}' is not one of {', '.join(STAGES)}")
    for name, value in (
        ("--train-steps", args.train_steps),
        ("--batch", args.batch),
        ("--episodes", args.episodes),
    ):
        if value < 1:
            raise EdgevlaError(f"{name} must be >= 1, got {value}")
    if args.sync < 0 or args.latency_runs < 1:
        raise EdgevlaError("--sync must be >= 0 and --latency-runs >= 1")
    bench = Bench(args)
    for stage in STAGES:  # in their order, whatever order --stages names them
        if stage in stages:
            Bench.STAGE_METHODS[stage](bench)
    return 0
