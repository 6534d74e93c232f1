"""scripts/recover_checkpoint.py on the shipped demo artifact: the checkpoint it rebuilds, exported
and quantized again, gives the shipped int8 weights bit for bit (the docs' recovered demo runs
start from it: HEADS.md, PERFORMANCE.md, CORRECTIONS.md)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

ROOT = Path(__file__).parents[2]
DEMO_ARTIFACT = ROOT / "edgevla/assets/small-reach/onnx-int8"


def int8_weights(art: Path) -> dict[str, np.ndarray]:
    return {
        f"{graph}/{init.name}": numpy_helper.to_array(init)
        for graph in ("context", "state", "head")
        for init in onnx.load(str(art / f"{graph}.onnx")).graph.initializer
        if init.data_type in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)
    }


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
    shipped, again = int8_weights(DEMO_ARTIFACT), int8_weights(tmp_path / "int8")
    assert len(shipped) == 212 and shipped.keys() == again.keys()
    assert all(np.array_equal(shipped[name], again[name]) for name in shipped)


def test_an_artifact_not_of_the_small_preset_is_one_clear_line(tmp_path, tiny_art):
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts/recover_checkpoint.py"), str(tiny_art), str(tmp_path / "p")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "this artifact is not of the small preset" in done.stderr
