"""The export, quantize, check and bench commands end to end (in-process, on the session artifacts)."""

from __future__ import annotations

import json

from edgevla.cli import main


def test_quantize_cli_prints_counts(tmp_path, tiny_art, capsys):
    assert (
        main(
            ["quantize", "--policy", str(tiny_art), "--method", "int8-dynamic", "--out", str(tmp_path / "q")]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "context: {" in out and '"int8_initializers"' in out
    assert json.loads((tmp_path / "q" / "manifest.json").read_text())["precision"] == "int8-dynamic"


def test_check_cli_fp32_parity(tiny_ckpt, tiny_art, capsys):
    argv = [
        "check",
        "--policy",
        str(tiny_ckpt),
        "--art",
        str(tiny_art),
        "--frames",
        "2",
        "--gripper-dims",
        "5",
        "--json",
    ]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["chunks"] == 2 and report["max_abs"] <= 1e-4
    assert len(report["per_dim"]) == 6 and report["per_dim"][5]["mean_abs_degrees"] is None
    assert all(d["cosine"] > 0.999999 for d in report["per_dim"])


def test_check_cli_degrees_from_a_robot_calibration(tiny_ckpt, tiny_art, capsys):
    from edgevla.paths import calibration_dir

    argv = ["check", "--policy", str(tiny_ckpt), "--art", str(tiny_art), "--frames", "1", "--json", "--robot"]
    argv += ["so101_follower", "--calibration", str(calibration_dir() / "so101_follower.json")]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["degrees_from"] == "calibrated so101_follower"
    assert all(d["mean_abs_degrees"] is not None for d in report["per_dim"])  # the gripper motor too


def test_check_cli_robot_alone_reads_that_robots_calibration(tiny_ckpt, tiny_art, capsys):
    """The README's `edgevla check ... --robot so101_follower`: its own profile, as `run` uses it."""
    from edgevla.drivers.calibration import find_profile
    from edgevla.hardware import load_robot

    argv = ["check", "--policy", str(tiny_ckpt), "--art", str(tiny_art), "--frames", "1", "--json", "--robot"]
    assert main([*argv, "so101_follower"]) == 0
    alone = json.loads(capsys.readouterr().out)
    assert (
        main([*argv, "so101_follower", "--calibration", str(find_profile(load_robot("so101_follower")).path)])
        == 0
    )
    assert alone == json.loads(capsys.readouterr().out)
    assert main(["check", "--policy", str(tiny_ckpt), "--art", str(tiny_art), "--calibration", "x.json"]) == 2
    assert "--calibration needs --robot" in capsys.readouterr().err


def test_bench_policy_onnx_json(tiny_art, capsys):
    argv = [
        "bench",
        "policy",
        "--policy",
        str(tiny_art),
        "--backend",
        "onnx",
        "--runs",
        "1",
        "--warmup",
        "0",
        "--json",
    ]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["backend"] == "onnx" and report["precision"] == "fp32"
    assert report["model_file_mb"] > 0 and report["chunk_ms_p50"] > 0
    assert report["providers"] == ["CPUExecutionProvider"]


def test_bench_onnx_int8_refuses_fp32_artifact(tiny_art, capsys):
    argv = ["bench", "policy", "--policy", str(tiny_art), "--backend", "onnx-int8", "--runs", "1", "--json"]
    assert main(argv) == 2
    assert "not int8" in capsys.readouterr().err


def test_export_cli_refuses_narrow_width_and_bad_cameras(tmp_path, tiny_ckpt, capsys):
    argv = ["export", "onnx", "--policy", str(tiny_ckpt), "--out", str(tmp_path / "a"), "--max-tokens", "3"]
    assert main(argv) == 2
    assert "below the checkpoint's tokenizer max length" in capsys.readouterr().err
    argv = ["export", "onnx", "--policy", str(tiny_ckpt), "--out", str(tmp_path / "b"), "--cameras", "a,b"]
    assert main(argv) == 2
    assert "--cameras needs 1 distinct names" in capsys.readouterr().err


def test_export_tensorrt_cli(tmp_path, tiny_art, capsys):
    assert main(["export", "tensorrt", "--art", str(tiny_art), "--out", str(tmp_path / "e"), "--fp16"]) == 0
    assert "trtexec.sh" in capsys.readouterr().out


def test_export_and_quantize_print_no_third_party_noise(tmp_path, tiny_ckpt):
    """A successful run shows edgevla's lines only: torch.onnx's "torchvision is not installed"
    (4 per graph) and onnxruntime's pre-processing hint (1-2 per graph) are known noise."""
    import subprocess
    import sys

    # from a checkpoint: exports, then quantizes
    argv = ["quantize", "--policy", str(tiny_ckpt), "--method", "int8-dynamic", "--out", str(tmp_path / "q")]
    result = subprocess.run(
        [sys.executable, "-m", "edgevla", *argv], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    printed = result.stdout + result.stderr
    assert "exporting the head graph (flow)" in printed and "wrote" in printed
    for noise in ("torchvision", "pre-processing", "WARNING"):
        assert noise not in printed, printed
