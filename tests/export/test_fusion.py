"""The fusion pass (edgevla.export.fusion): the fused kernels replace every attention, tanh-GELU
and RMSNorm site, the actions stay the unfused graph's, and the result still quantizes."""

from __future__ import annotations

import json
import shutil
import warnings
from collections import Counter

import numpy as np
import onnx
import pytest

from edgevla.cli import main
from edgevla.errors import EdgevlaError
from edgevla.export.fusion import optimize_artifact
from edgevla.export.quantize import quantize_artifact
from edgevla.runtime.artifact import read_artifact
from edgevla.runtime.onnx_policy import OnnxPolicy

from .conftest import GOLDEN, LONG_CASE
from .helpers import noise, observation


def ops(path) -> Counter:
    return Counter(node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node)


@pytest.fixture(scope="module")
def fused_golden(tmp_path_factory, golden_art):
    fused = shutil.copytree(golden_art, tmp_path_factory.mktemp("fused") / "art")
    counts = optimize_artifact(fused, log=lambda _: None)
    return fused, counts


def test_every_site_is_fused(golden_art, fused_golden):
    fused, counts = fused_golden
    graphs = read_artifact(golden_art).graphs
    for graph, filename in graphs.items():
        before, after = ops(golden_art / filename), ops(fused / filename)
        assert counts[graph]["attention"] == before["Softmax"] == after["MultiHeadAttention"]
        assert counts[graph]["gelu"] == before["Tanh"] == after["FastGelu"]
        assert counts[graph]["rmsnorm"] == before["Reciprocal"] == after["SimplifiedLayerNormalization"]
        assert after["Softmax"] == after["Tanh"] == after["Reciprocal"] == 0
        assert sum(after.values()) < sum(before.values())
    assert all(counts[graph]["attention"] > 0 and counts[graph]["rmsnorm"] > 0 for graph in graphs)
    assert sum(counts[graph]["gelu"] for graph in graphs) > 0  # the vision MLP's GELU was there to fuse
    assert json.loads((fused / "fusion.json").read_text())["sites"] == counts


def test_fused_artifact_gives_the_unfused_actions(golden_art, fused_golden):
    """The lerobot golden checkpoint: padded language tokens (fully masked rows), joint and
    cross expert layers, three cameras. Same noise, same observation."""
    fused, _ = fused_golden
    read_artifact(fused)  # re-hashed: loads without complaint
    obs = dict(np.load(GOLDEN / LONG_CASE / "obs.npz"))
    eps = np.load(GOLDEN / LONG_CASE / "noise.npy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # this golden instruction is longer than 12 tokens on purpose
        expected = OnnxPolicy(golden_art).infer(obs, noise=eps)
        actions = OnnxPolicy(fused).infer(obs, noise=eps)
        assert np.abs(actions - expected).max() <= 1e-5
        short = observation(OnnxPolicy(fused).spec, task="pick")  # most language slots padded
        spec = OnnxPolicy(fused).spec
        assert (
            np.abs(
                OnnxPolicy(fused).infer(short, noise=noise(spec))
                - OnnxPolicy(golden_art).infer(short, noise=noise(spec))
            ).max()
            <= 1e-5
        )


def test_fused_artifact_quantizes_and_stays_close(tmp_path, golden_art, fused_golden):
    fused, _ = fused_golden
    int8 = quantize_artifact(fused, "int8-dynamic", tmp_path / "int8", log=lambda _: None)
    assert all(ops(int8 / name)["MultiHeadAttention"] > 0 for name in read_artifact(int8).graphs.values())
    plain = quantize_artifact(golden_art, "int8-dynamic", tmp_path / "plain", log=lambda _: None)
    spec = OnnxPolicy(int8).spec
    obs, eps = observation(spec), noise(spec)
    error = np.abs(OnnxPolicy(int8).infer(obs, noise=eps) - OnnxPolicy(plain).infer(obs, noise=eps))
    assert error.max() <= 1e-3  # the same weight MatMuls were quantized the same way
    assert (int8 / "fusion.json").is_file()


def test_fusing_twice_or_a_quantized_artifact_is_refused(tmp_path, fused_golden, golden_art):
    fused, _ = fused_golden
    with pytest.raises(EdgevlaError, match="fused already"):
        optimize_artifact(fused, log=lambda _: None)
    int8 = quantize_artifact(golden_art, "int8-dynamic", tmp_path / "int8", log=lambda _: None)
    with pytest.raises(EdgevlaError, match="fuse the fp32 artifact, then quantize"):
        optimize_artifact(int8, log=lambda _: None)


def test_export_cli_optimize(tmp_path, tiny_ckpt, capsys):
    out = tmp_path / "art"
    assert main(["export", "onnx", "--policy", str(tiny_ckpt), "--out", str(out), "--optimize"]) == 0
    assert "fused context" in capsys.readouterr().out
    assert ops(out / "context.onnx")["MultiHeadAttention"] > 0
    read_artifact(out)


def test_tensorrt_refuses_a_fused_artifact(tmp_path, fused_golden):
    from edgevla.export.tensorrt import trtexec_commands

    fused, _ = fused_golden
    with pytest.raises(EdgevlaError, match="export it again without --optimize for TensorRT"):
        trtexec_commands(fused, tmp_path / "engines", "fp16", 2048)


def test_only_a_fused_artifact_runs_with_the_memory_arena(golden_art, fused_golden):
    """The arena pays for the fused graphs' few large tensors and costs the unfused ones memory."""
    fused, _ = fused_golden
    for art, arena in ((golden_art, False), (fused, True)):
        sessions = OnnxPolicy(art, providers=["cpu"]).sessions.values()
        assert all(s.get_session_options().enable_cpu_mem_arena == arena for s in sessions)


def test_no_session_spins_between_runs(golden_art, fused_golden):
    """A chunk runs three sessions in turn: the idle ones' spinning threads would take the cores
    from the running one."""
    fused, _ = fused_golden
    for art in (golden_art, fused):
        for session in OnnxPolicy(art, providers=["cpu"]).sessions.values():
            options = session.get_session_options()
            assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
