"""scripts/recover_checkpoint.py on the shipped demo artifact: the checkpoint it rebuilds, exported
and quantized again, gives the shipped int8 weights bit for bit, as scripts/check_recovered_checkpoint.py
checks (the docs' recovered demo runs start from it: HEADS.md, PERFORMANCE.md, CORRECTIONS.md)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
DEMO_ARTIFACT = ROOT / "edgevla/assets/small-reach/onnx-int8"


def edgevla(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "edgevla", *args], check=True, capture_output=True)


@pytest.mark.slow
def test_recovered_demo_checkpoint_requantizes_to_the_shipped_weights(tmp_path):
    policy = tmp_path / "policy"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts/recover_checkpoint.py"), str(DEMO_ARTIFACT), str(policy)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "148 of 156 parameter tensors" in done.stdout  # the rest: what no graph computes
    edgevla("export", "onnx", "--policy", str(policy), "--out", str(tmp_path / "fp32"))
    edgevla(
        "quantize",
        "--policy",
        str(tmp_path / "fp32"),
        "--method",
        "int8-dynamic",
        "--out",
        str(tmp_path / "int8"),
    )
    # the script that compares a recovery with its artifact: actions within int8 noise, and the
    # re-quantized int8 weights the shipped ones bit for bit
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts/check_recovered_checkpoint.py"), str(DEMO_ARTIFACT), str(policy),
         str(tmp_path / "fp32"), str(tmp_path / "int8")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert "equal bit for bit: 212 of 212 shipped" in check.stdout


def test_an_artifact_not_of_the_small_preset_is_one_clear_line(tmp_path, tiny_art):
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts/recover_checkpoint.py"), str(tiny_art), str(tmp_path / "p")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "this artifact is not of the small preset" in done.stderr
