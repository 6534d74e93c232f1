"""Training recipes end to end on CPU: small-cpu shrunk to the tiny preset, LoRA on top of its
output and on a lerobot golden checkpoint, resume, merge, PEFT loading."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from edgevla.cli import main
from edgevla.model.checkpoint import load_edgevla
from edgevla.model.lerobot_checkpoint import load_lerobot
from edgevla.train.loop import train
from edgevla.train.recipe import load_recipe
from edgevla.train.synthetic import write_reaching_dataset

ROOT = Path(__file__).resolve().parents[2]
SMALL_CPU = ROOT / "recipes" / "small-cpu.yaml"
GOLDEN = ROOT / "tests" / "fixtures" / "smolvla" / "cams1_square"
VLM = ROOT / "tests" / "fixtures" / "smolvla" / "vlm"
# small-cpu shrunk for test speed: the tiny preset, 1 CPU thread, no workers
SHRINK = {
    "base": "preset:tiny",
    "model": {"chunk_size": 10, "resize": 32},
    "batch_size": 8,
    "cpu_threads": 1,
    "num_workers": 0,
    "log_interval": 1,
    "eval.interval": 10,
    "optim.lr": 3e-3,
    "optim.warmup_steps": 5,
    "optim.decay_steps": 40,
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_reaching_dataset(tmp_path_factory.mktemp("data") / "reach", episodes=5, length=24)


def metrics(out: Path, kind: str = "train") -> list[dict]:
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [record for record in lines if record["kind"] == kind]


def run_small(dataset: Path, out: Path, max_steps: int, resume: bool = False, **extra):
    recipe = load_recipe(SMALL_CPU, {**SHRINK, "datasets": [str(dataset)], "out": str(out), **extra})
    return train(recipe, str(SMALL_CPU), out, max_steps=max_steps, resume=resume)


def observation(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "observation.images.front": rng.integers(0, 255, (48, 64, 3), dtype=np.uint8),
        "observation.state": rng.uniform(-40, 40, 6).astype(np.float32),
        "task": "reach the goal",
    }


@pytest.fixture(scope="module")
def small_run(dataset, tmp_path_factory) -> Path:
    """small-cpu (tiny preset), 40 steps, uninterrupted."""
    out = tmp_path_factory.mktemp("small") / "run"
    run_small(dataset, out, max_steps=40)
    return out


def test_small_cpu_loss_falls_and_outputs_a_policy(small_run):
    losses = [record["loss"] for record in metrics(small_run)]
    assert len(losses) == 40
    assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:5]), losses
    for record in metrics(small_run):
        assert {"step", "loss", "lr", "samples_per_s", "total_steps"} <= set(record)
    assert metrics(small_run, "eval"), "held-out episodes give an eval loss"
    policy = load_edgevla(small_run / "policy")
    stats = load_file(str(small_run / "policy" / "stats.safetensors"))
    assert stats["action.mean"].shape == (6,)  # from the dataset, not identity
    actions = policy.infer(observation())
    assert actions.shape == (10, 6) and np.all(np.isfinite(actions))


def test_resume_continues_exactly(dataset, small_run, tmp_path):
    out = tmp_path / "run"
    run_small(dataset, out, max_steps=20, checkpoint_interval=20)
    assert (out / "checkpoints" / "step-000020" / "optimizer.safetensors").is_file()
    run_small(dataset, out, max_steps=40, resume=True, checkpoint_interval=20)
    straight = load_file(str(small_run / "policy" / "model.safetensors"))
    resumed = load_file(str(out / "policy" / "model.safetensors"))
    for name, value in straight.items():
        torch.testing.assert_close(resumed[name], value, rtol=1e-5, atol=1e-6, msg=name)
    steps = [record["step"] for record in metrics(out)]
    assert steps == list(range(1, 41))  # appended, no gap, no repeat


def test_resume_at_the_last_checkpoint_exports_the_policy(dataset, tmp_path, capsys):
    """`--resume --max-steps N` on a run checkpointed at N: no step left, the policy is written."""
    out = tmp_path / "run"
    run_small(dataset, out, max_steps=10, checkpoint_interval=10)
    shutil.rmtree(out / "policy")
    overrides = [arg for key, value in SHRINK.items() for arg in ("--set", f"{key}={json.dumps(value)}")]
    args = ["train", "--recipe", str(SMALL_CPU), "--dataset", str(dataset), "--out", str(out), *overrides]
    assert main([*args, "--resume", "--max-steps", "10"]) == 0
    assert "trained 10 steps, final loss n/a" in capsys.readouterr().out
    assert (out / "policy" / "model.safetensors").is_file()


def test_lora_on_trained_policy_merges_and_peft_loads_it(small_run, dataset, tmp_path):
    from peft import PeftModel

    out = tmp_path / "lora"
    code = main(
        ["train", "--recipe", str(SMALL_CPU), "--dataset", str(dataset), "--out", str(out), "--max-steps", "8",
         "--set", f"base={small_run / 'policy'}", "--set", "mode=lora", "--set", "model={}",
         "--set", "lora.rank=4", "--set", "lora.alpha=8", "--set", "cpu_threads=1", "--set", "optim.lr=1e-2",
         "--set", "optim.warmup_steps=0", "--set", "num_workers=0"]
    )  # fmt: skip
    assert code == 0
    config = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert config["r"] == 4 and Path(config["base_model_name_or_path"]) == (small_run / "policy").resolve()

    base = load_edgevla(small_run / "policy")
    adapted = PeftModel.from_pretrained(base.net, str(out / "adapter"))
    lora_b = [p for n, p in adapted.named_parameters() if "lora_B" in n]
    assert lora_b and any(p.abs().max() > 0 for p in lora_b), "the adapters trained"
    merged = load_edgevla(out / "policy")
    base.pre = merged.pre  # the fine-tune's dataset stats
    noise = np.random.default_rng(1).standard_normal((10, 8)).astype(np.float32)
    for seed in range(3):
        with_adapter = base.infer(observation(seed), noise=noise)
        np.testing.assert_allclose(merged.infer(observation(seed), noise=noise), with_adapter, atol=1e-4)
    with adapted.disable_adapter():
        without = base.infer(observation(0), noise=noise)
    assert np.abs(without - base.infer(observation(0), noise=noise)).max() > 1e-4, "the adapter matters"


def golden_mapping() -> dict:
    return {
        "base": str(GOLDEN),
        "vlm_dir": str(VLM),
        "features.cameras": {"cam0": "observation.images.front"},
    }


def test_lora_on_lerobot_golden_changes_only_lora_params(dataset, tmp_path):
    out = tmp_path / "golden"
    overrides = {**golden_mapping(), "mode": "lora", "lora.rank": 4, "model": {}, "datasets": [str(dataset)],
                 "cpu_threads": 1, "num_workers": 0, "optim.lr": 1e-2, "optim.warmup_steps": 0, "out": str(out)}  # fmt: skip
    recipe = load_recipe(SMALL_CPU, overrides)
    train(recipe, "test", out, max_steps=4)
    adapter = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    assert adapter and all("lora_" in name for name in adapter)
    original = load_lerobot(GOLDEN, vlm_dir=VLM).net.state_dict()
    merged = load_edgevla(out / "policy").net.state_dict()
    targets = ("q_proj", "v_proj", "state_proj", "action_in_proj", "action_out_proj", "action_time_mlp")
    changed = {n for n, v in original.items() if not torch.equal(v, merged[n])}
    assert changed and all(any(t in n for t in targets) for n in changed), changed
    assert all("vlm_layers" not in n and "vision" not in n for n in changed)


def test_expert_mode_on_golden_freezes_the_vlm(dataset, tmp_path):
    out = tmp_path / "expert"
    overrides = {**golden_mapping(), "mode": "expert", "model": {}, "datasets": [str(dataset)], "cpu_threads": 1,
                 "num_workers": 0, "optim.lr": 1e-3, "optim.warmup_steps": 0, "out": str(out)}  # fmt: skip
    train(load_recipe(SMALL_CPU, overrides), "test", out, max_steps=3)
    original = load_lerobot(GOLDEN, vlm_dir=VLM).net.state_dict()
    merged = load_edgevla(out / "policy").net.state_dict()
    changed = {n for n, v in original.items() if not torch.equal(v, merged[n])}
    assert any(n.startswith("expert_layers.") for n in changed)
    assert not any(n.startswith(("vision.", "vlm_layers.", "embed_tokens", "connector")) for n in changed)
    assert not (out / "adapter").exists()
    # the checkpoint's cam0 slot, fed the dataset's front camera, is `front` to whoever runs it
    assert load_edgevla(out / "policy").cfg.cameras == ("front",)


def test_dry_run_prints_params_shapes_and_a_cpu_estimate(dataset, capsys):
    code = main(
        ["train", "--recipe", str(SMALL_CPU), "--dataset", str(dataset), "--dry-run", "--json",
         "--set", "base=preset:tiny", "--set", "model={resize: 32, chunk_size: 10}", "--set", "cpu_threads=1",
         "--set", "gradient_checkpointing=true"]
    )  # fmt: skip
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (
        0 < report["trainable_params"] < report["total_params"]
    )  # full mode: all but the unused LM head etc.
    assert report["batch"]["images"][:-1] == [8, 1, 3, 32, 32]
    assert report["batch"]["actions"][:-1] == [8, 10, 8]
    assert report["memory"]["kind"].startswith("estimate")
    assert report["memory"]["activations_gib"] > 0


def test_ctrl_c_saves_a_checkpoint_exits_130_and_resume_continues(dataset, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    overrides = [arg for key, value in SHRINK.items() for arg in ("--set", f"{key}={json.dumps(value)}")]
    args = ["train", "--recipe", str(SMALL_CPU), "--dataset", str(dataset), "--out", str(out), *overrides]
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgevla", *args, "--max-steps", "100000"], stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 240
        while not ((out / "metrics.jsonl").is_file() and metrics(out)):  # steps are running
            assert proc.poll() is None and time.monotonic() < deadline, "training never started"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    (stopped,) = metrics(out, "interrupted")
    assert json.loads((out / "checkpoints" / "latest.json").read_text())["step"] == stopped["step"] >= 1
    assert "--resume" in err and "Traceback" not in err and not (out / "policy").exists()
    assert main([*args, "--resume", "--max-steps", str(stopped["step"] + 2)]) == 0
    assert [record["step"] for record in metrics(out)] == list(range(1, stopped["step"] + 3))


def test_accelerate_launch_single_cpu_process(dataset, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "acc"
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "-m", "edgevla", "train", "--recipe", str(SMALL_CPU), "--dataset", str(dataset), "--out", str(out),
        "--max-steps", "3", "--set", "base=preset:tiny", "--set", "model={resize: 32, chunk_size: 10}",
        "--set", "cpu_threads=1", "--set", "batch_size=4", "--set", "log_interval=1",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert [record["step"] for record in metrics(out)] == [1, 2, 3]
    assert (out / "policy" / "model.safetensors").is_file()


@pytest.mark.slow  # real-time recording; the vendor SDK's ping can fail on a starved CPU (drivers area)
def test_small_cpu_on_a_dataset_recorded_from_the_virtual_arm(tmp_path):
    """`edgevla record` against the virtual servo firmware, then small-cpu (tiny) trains on it."""
    from edgevla.cameras import open_cameras, parse_camera_spec
    from edgevla.dataset import VideoConfig
    from edgevla.record.arms import open_arm_pair
    from edgevla.record.recorder import RecordConfig, Recorder
    from edgevla.record.virtual_arms import virtual_arm_pair

    root = tmp_path / "recorded"
    config = RecordConfig(root, "follow the leader", fps=30, episodes=3, episode_seconds=1.0, reset_seconds=0.2,
                          keyboard=False, video=VideoConfig(codec="libx264"))  # fmt: skip
    cameras = open_cameras([parse_camera_spec("front=synthetic?width=64&height=48", fps=30)])
    (tmp_path / "arms").mkdir()
    try:
        with virtual_arm_pair("so101", tmp_path / "arms") as ports, open_arm_pair("so101", *ports) as arms:
            Recorder(config, *arms, cameras, log=lambda _: None).run()
    finally:
        for camera in cameras:
            camera.stop()
    out = tmp_path / "run"
    run_small(root, out, max_steps=30)
    losses = [record["loss"] for record in metrics(out)]
    assert np.mean(losses[-8:]) < 0.7 * np.mean(losses[:4]), losses
    policy = load_edgevla(out / "policy")
    assert policy.cfg.cameras == ("front",) and policy.cfg.state_dim == 6


def test_oversample_start_repeats_only_each_episodes_first_frames(dataset):
    from edgevla.dataset import DatasetReader
    from edgevla.train.data import oversample_starts, split_episodes
    from edgevla.train.recipe import OversampleStart

    reader = DatasetReader(dataset)
    refs, _ = split_episodes([reader], 0)
    more = oversample_starts(refs, [reader], OversampleStart(seconds=4 / reader.fps, repeat=3))
    counts = {ref: more.count(ref) for ref in refs}
    for ref in refs:
        position = ref.index - reader.episodes[ref.episode].from_index
        assert counts[ref] == (3 if position < 4 else 1), (ref, position)
    assert len(more) == len(refs) + 2 * 4 * len(reader.episodes)


def test_recipe_rejects_a_zero_oversample_repeat(tmp_path):
    from edgevla.train.recipe import RecipeError

    with pytest.raises(RecipeError, match="oversample_start.repeat: must be > 0"):
        load_recipe(SMALL_CPU, {"oversample_start.repeat": 0})


def test_a_checkpoint_base_takes_a_new_chunk_size_but_keeps_its_shapes(small_run, dataset, tmp_path, capsys):
    out = tmp_path / "longer"
    common = ["train", "--recipe", str(SMALL_CPU), "--dataset", str(dataset), "--out", str(out),
              "--max-steps", "2", "--set", f"base={small_run / 'policy'}", "--set", "mode=full",
              "--set", "cpu_threads=1", "--set", "num_workers=0"]  # fmt: skip
    assert main([*common, "--set", "model={chunk_size: 16, resize: 64}"]) == 2
    assert (
        "model.resize: a checkpoint keeps its shapes; only chunk_size, num_steps" in capsys.readouterr().err
    )
    assert main([*common, "--set", "model={chunk_size: 16}"]) == 0
    longer = load_edgevla(out / "policy")
    assert longer.cfg.chunk_size == 16 and load_edgevla(small_run / "policy").cfg.chunk_size == 10
    assert longer.infer(observation(0)).shape == (16, 6)
