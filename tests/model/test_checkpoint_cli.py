"""edgevla checkpoints round-trip; predict/info CLIs; bad input gives one line and non-zero exit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file

from edgevla.cli import main
from edgevla.errors import EdgevlaError
from edgevla.model.checkpoint import build_preset, load_policy, save_policy
from edgevla.policy_io import Policy

from .smolvla_golden import GOLDEN, VLM_DIR, load_obs

CASE = "cams2_empty_nonsquare"


@pytest.fixture(scope="module")
def tiny():
    return build_preset("tiny", seed=0)


def tiny_obs(policy) -> dict:
    rng = np.random.default_rng(1)
    obs = {
        f"observation.images.{c.name}": rng.integers(0, 256, (90, 120, 3), np.uint8)
        for c in policy.spec.cameras
    }
    obs["observation.state"] = rng.normal(size=policy.spec.state_dim).astype(np.float32)
    obs["task"] = np.array("pick up the cube")
    return obs


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_policy_protocol_and_spec(tiny):
    assert isinstance(tiny, Policy)
    chunk = tiny.infer(tiny_obs(tiny))
    assert chunk.shape == (tiny.spec.chunk_size, tiny.spec.action_dim) and chunk.dtype == np.float32


def test_edgevla_checkpoint_round_trip(tmp_path, tiny):
    save_policy(tiny, tmp_path / "ckpt")
    assert {p.name for p in (tmp_path / "ckpt").iterdir()} == {
        "edgevla_policy.json",
        "model.safetensors",
        "stats.safetensors",
        "tokenizer.json",
    }
    loaded = load_policy(tmp_path / "ckpt")
    noise = np.random.default_rng(0).normal(size=(10, 8)).astype(np.float32)
    np.testing.assert_array_equal(loaded.infer(tiny_obs(tiny), noise), tiny.infer(tiny_obs(tiny), noise))


def test_lerobot_checkpoint_converts_to_edgevla_and_keeps_parity(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        save_policy(load_policy(GOLDEN / CASE, vlm_dir=VLM_DIR), tmp_path / "converted")
    policy = load_policy(tmp_path / "converted")  # self-contained: no vlm_dir needed
    actions = policy.infer(load_obs(CASE), noise=np.load(GOLDEN / CASE / "noise.npy"))
    assert np.abs(actions - np.load(GOLDEN / CASE / "actions.npy")).max() <= 1e-4


def test_predict_cli_matches_golden(tmp_path, capsys):
    out = tmp_path / "actions.npy"
    code, _, err = run_cli(
        capsys,
        "predict",
        "--policy",
        str(GOLDEN / CASE),
        "--vlm-dir",
        str(VLM_DIR),
        "--obs",
        str(GOLDEN / CASE / "obs.npz"),
        "--noise",
        str(GOLDEN / CASE / "noise.npy"),
        "--out",
        str(out),
    )
    assert code == 0, err
    assert np.abs(np.load(out) - np.load(GOLDEN / CASE / "actions.npy")).max() <= 1e-4


def test_model_info_json(capsys):
    code, out, _ = run_cli(capsys, "model", "info", "--preset", "tiny", "--json")
    facts = json.loads(out)
    assert code == 0 and facts["params"] < 2_000_000
    assert 0 < facts["trainable_params"] < facts["params"]
    assert sum(facts["parts"].values()) == facts["params"]


def test_model_init_with_a_head_writes_a_checkpoint_that_predicts(tmp_path, capsys):
    """A random preset with another head: what latency benchmarks of a one-pass head start from."""
    code, out, _ = run_cli(
        capsys, "model", "init", "--preset", "tiny", "--head", "regression", "--out", str(tmp_path / "r")
    )
    assert code == 0 and "regression head" in out
    policy = load_policy(tmp_path / "r")
    assert policy.net.cfg.head.name == "regression"
    assert policy.infer(tiny_obs(policy)).shape == (policy.spec.chunk_size, policy.spec.action_dim)
    with pytest.raises(SystemExit):  # bins need their range fitted on data
        main(["model", "init", "--preset", "tiny", "--head", "bins", "--out", str(tmp_path / "b")])


def copy_case(tmp_path, case=CASE):
    target = tmp_path / case
    shutil.copytree(GOLDEN / case, target)
    return target


def predict_error(capsys, tmp_path, policy, obs=None, *extra) -> str:
    obs = obs or str(GOLDEN / CASE / "obs.npz")
    argv = [
        "predict",
        "--policy",
        str(policy),
        "--vlm-dir",
        str(VLM_DIR),
        "--obs",
        obs,
        "--out",
        str(tmp_path / "a.npy"),
    ]
    code, _, err = run_cli(capsys, *argv, *extra)
    assert code != 0
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    return err


def test_missing_weights_file(tmp_path, capsys):
    policy = copy_case(tmp_path)
    (policy / "model.safetensors").unlink()
    assert "model.safetensors is missing" in predict_error(capsys, tmp_path, policy)


def test_missing_stats_files(tmp_path, capsys):
    policy = copy_case(tmp_path)
    for path in policy.glob("policy_*"):
        path.unlink()
    assert "no state normalisation stats" in predict_error(capsys, tmp_path, policy)


def test_renamed_weight_key(tmp_path, capsys):
    policy = copy_case(tmp_path)
    weights = load_file(policy / "model.safetensors")
    weights["model.state_projection.weight"] = weights.pop("model.state_proj.weight")
    save_file(weights, policy / "model.safetensors")
    err = predict_error(capsys, tmp_path, policy)
    assert "missing weight" in err and "state_proj.weight" in err


def test_mismatched_dims(tmp_path, capsys):
    policy = copy_case(tmp_path)
    config = json.loads((policy / "config.json").read_text())
    config["max_action_dim"] = 12
    (policy / "config.json").write_text(json.dumps(config))
    assert "mis-shaped weight" in predict_error(capsys, tmp_path, policy)


def test_missing_camera(tmp_path, capsys):
    obs = load_obs(CASE)
    del obs["observation.images.cam1"]
    np.savez(tmp_path / "obs.npz", **obs)
    err = predict_error(capsys, tmp_path, GOLDEN / CASE, str(tmp_path / "obs.npz"))
    assert "lacks camera 'observation.images.cam1'" in err


def test_wrong_image_dtype(tmp_path, capsys):
    obs = load_obs(CASE)
    obs["observation.images.cam0"] = obs["observation.images.cam0"].astype(np.float32) / 255
    np.savez(tmp_path / "obs.npz", **obs)
    err = predict_error(capsys, tmp_path, GOLDEN / CASE, str(tmp_path / "obs.npz"))
    assert "observation.images.cam0 is float32" in err


def test_wrong_noise_shape(tmp_path, capsys):
    np.save(tmp_path / "noise.npy", np.zeros((3, 3), np.float32))
    err = predict_error(capsys, tmp_path, GOLDEN / CASE, None, "--noise", str(tmp_path / "noise.npy"))
    assert "noise has shape (3, 3)" in err


def test_vlm_not_available_offline(tmp_path, capsys):
    err = predict_error(capsys, tmp_path, GOLDEN / CASE, None, "--vlm-dir", str(tmp_path / "nowhere"))
    assert "edgevla fetch edgevla-fixtures/tiny-smolvlm" in err


def test_wrong_state_size_raises(tiny):
    obs = tiny_obs(tiny)
    obs["observation.state"] = np.zeros(3, np.float32)
    with pytest.raises(EdgevlaError, match="has 3 values"):
        tiny.infer(obs)


def test_fetch_offline_is_one_clear_line(capsys):
    code, _, err = run_cli(capsys, "fetch", "lerobot/smolvla_base")
    assert code != 0 and err.strip().count("\n") == 0
    assert "cannot download 'lerobot/smolvla_base'" in err


def test_bf16_on_cpu_stays_close_to_fp32(tmp_path, tiny):
    save_policy(tiny, tmp_path / "ckpt")
    noise = np.random.default_rng(0).normal(size=(10, 8)).astype(np.float32)
    reference = tiny.infer(tiny_obs(tiny), noise)
    bf16 = load_policy(tmp_path / "ckpt", dtype="bf16")
    assert bf16.net.vlm_layers[0].self_attn.q_proj.weight.dtype == torch.bfloat16
    actions = bf16.infer(tiny_obs(tiny), noise)
    assert actions.dtype == np.float32
    assert np.abs(actions - reference).mean() < 0.05 * np.abs(reference).mean()


def test_fp16_on_cpu_is_refused(tmp_path, tiny):
    save_policy(tiny, tmp_path / "ckpt")
    with pytest.raises(EdgevlaError, match="fp16 needs a GPU"):
        load_policy(tmp_path / "ckpt", dtype="fp16")


def test_vlm_found_as_local_directory_named_in_config(tmp_path):
    policy_dir = copy_case(tmp_path)
    config = json.loads((policy_dir / "config.json").read_text())
    config["vlm_model_name"] = str(VLM_DIR)
    (policy_dir / "config.json").write_text(json.dumps(config))
    actions = load_policy(policy_dir).infer(load_obs(CASE), noise=np.load(GOLDEN / CASE / "noise.npy"))
    assert np.abs(actions - np.load(GOLDEN / CASE / "actions.npy")).max() <= 1e-4


def test_vlm_found_in_local_hugging_face_cache(tmp_path):
    # the cache layout huggingface_hub writes: models--org--name/{refs/main, snapshots/<commit>/...}
    repo = tmp_path / "hub" / "models--edgevla-fixtures--tiny-smolvlm"
    snapshot = repo / "snapshots" / ("0" * 40)
    shutil.copytree(VLM_DIR, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    out = tmp_path / "actions.npy"
    argv = ["predict", "--policy", str(GOLDEN / CASE), "--obs", str(GOLDEN / CASE / "obs.npz")]
    argv += ["--noise", str(GOLDEN / CASE / "noise.npy"), "--out", str(out)]
    env = dict(os.environ, HF_HUB_CACHE=str(tmp_path / "hub"), HF_HUB_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "-m", "edgevla", *argv], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert np.abs(np.load(out) - np.load(GOLDEN / CASE / "actions.npy")).max() <= 1e-4
