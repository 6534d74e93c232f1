"""`edgevla bench heads`: the report gathers what each stage wrote, and bad variants are one line."""

from __future__ import annotations

import json
from pathlib import Path

from edgevla.cli import main

ARGS = ["bench", "heads", "--dataset", "d1", "--dataset", "d2", "--base", "base"]


def fake_work(work: Path) -> None:
    """What train, export, latency and eval leave behind for two variants of flow and bins."""
    for head, rate in (("flow", 4.0), ("bins", 6.0)):
        run = work / "train" / head
        run.mkdir(parents=True)
        records = [{"kind": "start", "step": 0, "trainable_params": 1234567}]
        records += [{"kind": "train", "step": s, "loss": 1.0, "samples_per_s": r, "elapsed_s": s}
                    for s, r in ((10, 1.0), (20, rate), (30, rate))]  # fmt: skip
        (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records))
        for precision, size in (("fp32", 3 * 2**20), ("int8", 2**20)):
            art = work / "art" / head / precision
            art.mkdir(parents=True)
            (art / "head.onnx").write_bytes(b"0" * size)
    rows = [
        {
            "variant": v,
            "precision": p,
            "chunk_ms_p50": ms,
            "chunk_ms_p90": ms * 1.2,
            "head_calls_per_chunk": 2.0,
            "head_call_ms": 5.0,
        }
        for v, ms in (("flow", 100.0), ("flow@2", 30.0), ("bins", 20.0))
        for p in ("fp32", "int8")
    ]
    (work / "latency.json").write_text(json.dumps({"rows": rows, "load_before": "x", "load_after": "y"}))
    (work / "eval").mkdir()
    for variant in ("flow", "flow@2", "bins"):
        for precision in ("fp32", "int8"):
            for task in ("reach", "reach_either"):
                result = {"success_rate": 0.5 if variant == "flow" else 0.25, "episodes": 20, "runtime": {}}
                path = work / "eval" / f"{variant}-{precision}-{task}.json"
                path.write_text(json.dumps(result))


def test_report_gathers_every_stage(tmp_path, capsys):
    work = tmp_path / "heads"
    fake_work(work)
    code = main(
        [*ARGS, "--work", str(work), "--heads", "flow,flow@2,bins", "--stages", "report", "--sync", "10"]
    )
    assert code == 0
    report = json.loads((work / "heads.json").read_text())
    flow, flow2, bins = report["rows"]
    assert (
        flow["trainable_params"] == 1234567 and flow["samples_per_s"] == 4.0
    )  # the start-up window left out
    assert flow2["chunk_ms_p50_int8"] == 30.0 and flow2["sample_steps"] == 2 and flow2["head"] == "flow"
    assert bins["artifact_mb_fp32"] == 3.0 and bins["success_reach_either_int8"] == 0.25
    table = (work / "heads.md").read_text()
    assert "| flow@2 | 1,234,567 | 4.00 | 30/36 | 30/36 | 2.0 x 5.0 | 3.0/1.0 | 25% of 20 |" in table
    assert report["eval"] == "clockless, 10 actions per chunk"
    assert (work / "heads.png").stat().st_size > 0


def test_bad_variant_is_one_line(tmp_path, capsys):
    for heads, says in (("flow,mlp", "'mlp' is not one of"), ("bins@2", "@STEPS (1..10) applies to flow")):
        code = main([*ARGS, "--work", str(tmp_path), "--heads", heads, "--stages", "report"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code != 0 and len(err) == 1 and says in err[0]
