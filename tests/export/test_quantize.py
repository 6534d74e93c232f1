"""Quantized artifacts really hold int8 / fp16 weights, run, and stay close to fp32."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgevla.errors import EdgevlaError
from edgevla.export.quantize import quantize_artifact, verify, weight_counts
from edgevla.runtime.onnx_policy import OnnxPolicy

from .helpers import noise, observation

LEROBOT_DATASET = __import__("pathlib").Path(__file__).resolve().parent.parent / "fixtures" / "lerobot_v30"


def close_to_fp32(art, fp32_art, limit):
    quantized, reference = OnnxPolicy(art), OnnxPolicy(fp32_art)
    obs, eps = observation(reference.spec), noise(reference.spec)
    error = np.abs(quantized.infer(obs, noise=eps) - reference.infer(obs, noise=eps))
    assert 0 < error.max() < limit  # changed (really quantized) but close
    return error


def test_int8_dynamic(tmp_path, golden_art):
    art = quantize_artifact(golden_art, "int8-dynamic", tmp_path / "int8", log=lambda _: None)
    manifest = json.loads((art / "manifest.json").read_text())
    assert manifest["precision"] == "int8-dynamic"
    for graph in ("context", "state", "head"):
        counts = weight_counts(art / f"{graph}.onnx")
        assert counts["int8_initializers"] > 0 and counts["int8_bytes"] > counts.get("fp32_bytes", 0)
        assert manifest["quantization"]["weights"][graph] == counts
    close_to_fp32(art, golden_art, 0.5)


def test_int8_static_calibrated_on_a_recorded_dataset(tmp_path, tiny_art):
    from edgevla.export.calibration_samples import observations

    art = quantize_artifact(
        tiny_art, "int8-static", tmp_path / "qdq", observations(LEROBOT_DATASET, 6), log=lambda _: None
    )
    manifest = json.loads((art / "manifest.json").read_text())
    assert manifest["quantization"]["calibration"] == {
        "context": 6,
        "state": 6,
        "head": 6 * manifest["num_steps"],
    }
    assert manifest["quantization"]["weights"]["head"]["int8_initializers"] > 0
    close_to_fp32(art, tiny_art, 1.0)


def test_fp16(tmp_path, tiny_art):
    art = quantize_artifact(tiny_art, "fp16", tmp_path / "fp16", log=lambda _: None)
    counts = json.loads((art / "manifest.json").read_text())["quantization"]["weights"]["context"]
    assert counts["fp16_bytes"] > counts.get("fp32_bytes", 0)
    close_to_fp32(art, tiny_art, 0.1)


def test_int8_without_int8_weights_fails_loudly():
    with pytest.raises(EdgevlaError, match="no int8 weights"):
        verify("int8-dynamic", {"context": {"fp32_initializers": 80, "fp32_bytes": 10_000}})


def test_static_needs_calibration_and_fp32_source(tmp_path, tiny_art):
    with pytest.raises(EdgevlaError, match="needs --calibration"):
        quantize_artifact(tiny_art, "int8-static", tmp_path / "x")
    half = quantize_artifact(tiny_art, "fp16", tmp_path / "half", log=lambda _: None)
    with pytest.raises(EdgevlaError, match="already fp16"):
        quantize_artifact(half, "int8-dynamic", tmp_path / "y")
