"""`edgevla bench all`: one command, a markdown + JSON report with plots, missing benches named."""

from __future__ import annotations

import json

from edgevla.cli import main as cli_main


def test_bench_all_writes_report_with_plots_and_names_missing_benches(tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "runs:\n"
        '  - {label: "loop", bench: sim, args: [--episodes, "1", --max-seconds, "4"]}\n'
        '  - {label: "future bus bench", bench: nosuchbench, args: []}\n'
        '  - {label: "gpu only", bench: sim, args: [], needs: gpu}\n'
        '  - {label: "needs a policy", bench: sim, args: [], requires: [no/such/policy]}\n'
    )
    out = tmp_path / "report"
    assert cli_main(["bench", "all", "--plan", str(plan), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    status = {r["label"]: r["status"] for r in report["runs"]}
    assert status["loop"] == "ok" and status["future bus bench"] == "not available"
    assert status["gpu only"] in ("skipped", "ok") and status["needs a policy"] == "skipped"
    loop = next(r for r in report["runs"] if r["label"] == "loop")["result"]
    assert loop["period_ms_p50"] > 0 and loop["render_ms"]["front@96"] > 0
    assert (out / "sim-control-loop.png").stat().st_size > 1000
    text = (out / "report.md").read_text()
    assert "| loop |" in text and "not registered yet" in text and "sim-control-loop.png" in text


def test_bad_plan_is_one_clear_error(tmp_path, capsys):
    plan = tmp_path / "plan.yaml"
    plan.write_text("runs:\n  - {bench: sim}\n")
    assert cli_main(["bench", "all", "--plan", str(plan), "--out", str(tmp_path)]) == 2
    assert "runs[0] needs 'label' and 'bench'" in capsys.readouterr().err
