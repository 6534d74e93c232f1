"""The heads comparison's report: every figure `edgevla bench heads` measured, gathered from its
work directory into heads.json, a markdown table (heads.md) and a success-vs-latency plot
(heads.png). Nothing here measures; a figure that is missing stays empty in the table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

PRECISIONS = ("fp32", "int8")
TASKS = ("reach", "reach_either")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def training(run: Path) -> dict[str, Any]:
    """Trainable parameters, samples/s (mean over the logged windows after the first, which
    includes start-up) and the last loss, from a run's metrics.jsonl."""
    path = run / "metrics.jsonl"
    if not path.is_file():
        return {}
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    start = next((r for r in records if r["kind"] == "start"), {})
    windows = [r for r in records if r["kind"] == "train"]
    rates = [r["samples_per_s"] for r in windows[1:]] or [r["samples_per_s"] for r in windows]
    return {
        "trainable_params": start.get("trainable_params"),
        "train_steps": windows[-1]["step"] if windows else 0,
        "samples_per_s": float(np.mean(rates)) if rates else None,
        "train_seconds": windows[-1]["elapsed_s"] if windows else None,
        "final_loss": windows[-1]["loss"] if windows else None,
    }


def size_mb(art: Path) -> float | None:
    files = [p for p in art.rglob("*") if p.is_file()] if art.is_dir() else []
    return sum(p.stat().st_size for p in files) / 2**20 if files else None


def gather(work: Path, variants, args: argparse.Namespace) -> dict[str, Any]:
    latency = read_json(work / "latency.json") or {"rows": []}
    by_key = {(row["variant"], row["precision"]): row for row in latency["rows"]}
    throughput = read_json(work / "throughput.json") or {}
    rows = []
    for variant in variants:
        row: dict[str, Any] = {"variant": variant.name, "head": variant.head, "sample_steps": variant.steps}
        row |= training(work / "train" / variant.head)
        measured = throughput.get(variant.head)
        if measured:  # back to back, one machine: preferred over the training runs' own figure
            row["train_run_samples_per_s"] = row.get("samples_per_s")
            row["samples_per_s"] = measured["samples_per_s"]
        for precision in PRECISIONS:
            timing = by_key.get((variant.name, precision), {})
            row[f"chunk_ms_p50_{precision}"] = timing.get("chunk_ms_p50")
            row[f"chunk_ms_p90_{precision}"] = timing.get("chunk_ms_p90")
            row[f"head_calls_{precision}"] = timing.get("head_calls_per_chunk")
            row[f"head_call_ms_{precision}"] = timing.get("head_call_ms")
            row[f"artifact_mb_{precision}"] = size_mb(work / "art" / variant.head / precision)
            for task in TASKS:
                result = read_json(work / "eval" / f"{variant.name}-{precision}-{task}.json") or {}
                row[f"success_{task}_{precision}"] = result.get("success_rate")
                row[f"episodes_{task}_{precision}"] = result.get("episodes")
                row[f"holds_{task}_{precision}"] = (result.get("runtime") or {}).get("chunks_undecoded")
        rows.append(row)
    return {
        "bench": "heads",
        "datasets": args.dataset,
        "base": args.base,
        "train_steps": args.train_steps,
        "batch": args.batch,
        "eval": "async runtime" if not args.sync else f"clockless, {args.sync} actions per chunk",
        "latency": {k: v for k, v in latency.items() if k != "rows"},
        "rows": rows,
    }


def cell(value: Any, form: str = "{:.0f}") -> str:
    return "" if value is None else form.format(value)


def success_cell(row: dict[str, Any]):
    def rate(task: str, precision: str) -> str:
        value, n = row.get(f"success_{task}_{precision}"), row.get(f"episodes_{task}_{precision}")
        holds = row.get(f"holds_{task}_{precision}")
        extra = f", {holds} holds" if holds else ""
        return "" if value is None else f"{value:.0%} of {n}{extra}"

    return rate


def table(report: dict[str, Any]) -> str:
    header = (
        "| head | trainable params | train samples/s | chunk p50/p90 ms fp32 | chunk p50/p90 ms int8 "
        "| head graph calls/chunk x ms int8 | artifact MB fp32/int8 | reach fp32 | reach int8 | reach_either fp32 | reach_either int8 |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for r in report["rows"]:
        rate = success_cell(r)
        lines.append(
            f"| {r['variant']} | {cell(r.get('trainable_params'), '{:,}')} | {cell(r.get('samples_per_s'), '{:.2f}')} "
            f"| {cell(r['chunk_ms_p50_fp32'], '{:.0f}')}/{cell(r['chunk_ms_p90_fp32'], '{:.0f}')} "
            f"| {cell(r['chunk_ms_p50_int8'], '{:.0f}')}/{cell(r['chunk_ms_p90_int8'], '{:.0f}')} "
            f"| {cell(r['head_calls_int8'], '{:.1f}')} x {cell(r['head_call_ms_int8'], '{:.1f}')} "
            f"| {cell(r['artifact_mb_fp32'], '{:.1f}')}/{cell(r['artifact_mb_int8'], '{:.1f}')} "
            f"| {rate('reach', 'fp32')} | {rate('reach', 'int8')} | {rate('reach_either', 'fp32')} "
            f"| {rate('reach_either', 'int8')} |"
        )
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for axis, task in zip(axes, TASKS, strict=True):
        for r in report["rows"]:
            for precision, marker in (("fp32", "o"), ("int8", "^")):
                x, y = r.get(f"chunk_ms_p50_{precision}"), r.get(f"success_{task}_{precision}")
                if x is None or y is None:
                    continue
                axis.scatter(x, y, marker=marker, s=45)
                axis.annotate(
                    f"{r['variant']} {precision}",
                    (x, y),
                    fontsize=7,
                    xytext=(4, 3),
                    textcoords="offset points",
                )
        axis.set_xscale("log")
        axis.set_xlabel("chunk latency p50, ms (log)")
        axis.set_title(task)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("success rate")
    figure.suptitle("action heads: success vs chunk latency (o fp32, ^ int8)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def write_report(work: Path, variants, args: argparse.Namespace) -> dict[str, Any]:
    report = gather(work, variants, args)
    report["plot"] = "heads.png" if plot(report, work / "heads.png") else None
    (work / "heads.json").write_text(json.dumps(report, indent=1))
    notes = [
        f"Training: {report['train_steps']} steps x batch {report['batch']} per head on {', '.join(report['datasets'])}, "
        f"from the VLM of {report['base']}. Eval: {report['eval']}.",
    ]
    if report["latency"]:
        lat = report["latency"]
        notes.append(
            f"Latency: one run, back to back ({lat.get('seconds', 0):.0f} s); before: {lat.get('load_before')}; "
            f"after: {lat.get('load_after')}."
        )
    (work / "heads.md").write_text(table(report) + "\n" + "\n".join(notes) + "\n")
    print(table(report))
    return report
