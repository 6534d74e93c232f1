"""benchmarks/gpu.sh: one line and exit 0 where there is no GPU; every stage runs (the rehearsal
on this CPU with the tiny preset) so the first run on a GPU machine does not fail on our side."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from gpu_check import CPU_LANE, GPU_LANE, NO_GPU, gpu_present  # noqa: E402


@pytest.mark.skipif(gpu_present() is not None, reason="this machine has a GPU: gpu.sh would measure it")
def test_without_a_gpu_it_says_so_and_exits_0(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu.sh"), "--out", str(tmp_path / "report.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [NO_GPU] and done.stderr == ""
    assert not (tmp_path / "report.json").exists()


@pytest.mark.slow
def test_rehearsal_runs_every_stage(tmp_path):
    """All stages but torch.compile (minutes of C++ compilation here) on the tiny preset: each
    gives figures or says why it was skipped; none fails."""
    out = tmp_path / "report.json"
    command = [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--rehearse", "--runs", "1"]
    command += ["--budget", "900", "--skip", "torch-compile-bf16", "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1000)
    assert done.returncode == 0, done.stderr
    stages = json.loads(out.read_text())["stages"]
    assert set(stages) == set(CPU_LANE) | set(GPU_LANE)
    assert not [name for name, result in stages.items() if "failed" in result]
    for name in ("torch-fp32", "torch-bf16", "onnx-cuda-fp32", "onnx-cuda-fp16"):
        assert stages[name]["chunk_ms_p50"] > 0
    assert (
        stages["torch-fp32"]["error_vs_torch_fp32"] == 0.0
        and stages["onnx-cuda-fp32"]["error_vs_torch_fp32"] < 1e-4
    )
    assert all("peak_gib" in recipe for recipe in stages["recipes"].values() if isinstance(recipe, dict))
