"""bitsandbytes int8/nf4 on CPU; the TensorRT recipe where TensorRT is absent."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgevla.errors import EdgevlaError
from edgevla.export.tensorrt import build_engines
from edgevla.hosting import open_policy

from .helpers import noise, observation


@pytest.mark.parametrize("method", ["bnb-int8", "bnb-nf4"])
def test_bnb_checkpoint_loads_quantized(tmp_path, tiny_ckpt, method):
    from edgevla.export.bnb import quantize_bnb

    facts = quantize_bnb(tiny_ckpt, method, tmp_path / method)
    packed = "int8_bytes" if method == "bnb-int8" else "uint8_bytes"
    assert facts["linears"] > 0 and facts[packed] > 0
    policy = open_policy(tmp_path / method)
    assert policy.spec.extra["backend"] == method
    reference = open_policy(tiny_ckpt)
    obs, eps = observation(policy.spec), noise(policy.spec)
    error = np.abs(policy.infer(obs, noise=eps) - reference.infer(obs, noise=eps))
    assert 0 < error.max() < 2.0


def test_tensorrt_recipe(tmp_path, tiny_art):
    message = build_engines(tiny_art, tmp_path / "engines", "fp16")
    script = (tmp_path / "engines" / "trtexec.sh").read_text()
    assert "TensorRT is not installed here" in message
    assert all(f"--onnx={tiny_art / graph}.onnx" in script for graph in ("context", "state", "head"))
    assert script.count("--fp16") == 3 and "--memPoolSize=workspace:2048" in script
    assert "trtexec" in (tmp_path / "engines" / "HOWTO.md").read_text()


def test_tensorrt_int8_needs_qdq_artifact(tmp_path, tiny_art):
    with pytest.raises(EdgevlaError, match="needs the QDQ scales of an int8-static artifact"):
        build_engines(tiny_art, tmp_path / "engines", "int8")
    assert json.loads((tiny_art / "manifest.json").read_text())["precision"] == "fp32"
