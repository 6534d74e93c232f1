"""Recipe validation and bad input: every error is one line naming the file/field and the fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from edgevla.errors import EdgevlaError
from edgevla.model.config import preset
from edgevla.model.network import SmolVLANet
from edgevla.train.loop import oom_advice, train
from edgevla.train.prepare import lora_target_regex
from edgevla.train.recipe import load_recipe
from edgevla.train.synthetic import write_reaching_dataset

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))
SMALL_CPU = ROOT / "recipes" / "small-cpu.yaml"
GOLDEN = ROOT / "tests" / "fixtures" / "smolvla" / "cams1_square"
VLM = ROOT / "tests" / "fixtures" / "smolvla" / "vlm"
FAST = {"base": "preset:tiny", "model": {"resize": 32, "chunk_size": 10}, "cpu_threads": 1}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_reaching_dataset(tmp_path_factory.mktemp("data") / "reach", episodes=2, length=12)


def test_shipped_recipes_validate_and_state_their_memory():
    names = {path.stem for path in RECIPES}
    assert {
        "smolvla-lora-8gb",
        "smolvla-lora-12gb",
        "smolvla-lora-24gb",
        "smolvla-expert-24gb",
        "small-cpu",
        "small-sim-corrections",
    } <= names
    for path in RECIPES:
        recipe = load_recipe(path)
        assert recipe.memory == "unmeasured" or recipe.memory.endswith("GiB"), path
    fixes = load_recipe(ROOT / "recipes" / "small-sim-corrections.yaml").corrections
    assert fixes.intervention_weight > 1  # DAgger out of the box; --set corrections.advantage=true


def test_recipe_comments_name_the_recipe_the_shipped_demo_policy_came_from():
    import json

    from edgevla.paths import assets_dir

    shipped = json.loads((assets_dir() / "small-reach" / "onnx-int8" / "manifest.json").read_text())
    trained_by = shipped["name"]  # a policy is named after the recipe that trained it
    assert (ROOT / "recipes" / f"{trained_by}.yaml").is_file()
    for path in RECIPES:
        header = "".join(line for line in path.read_text().splitlines(keepends=True) if line.startswith("#"))
        if "demo policy" in header and path.stem != trained_by:
            assert f"recipes/{trained_by}.yaml" in header and "no demo policy" not in header, path.name


def test_smolvla_lora_targets_match_the_450m_network():
    with torch.device("meta"):  # shapes only, no 1.8 GB of weights
        net = SmolVLANet(preset("smolvla-450m"))
    for path in RECIPES:
        recipe = load_recipe(path)
        if recipe.mode == "lora":
            regex = lora_target_regex(net, recipe.lora.targets, str(path), "lora.targets")
            assert regex


def error_of(*args, **kwargs) -> str:
    with pytest.raises(EdgevlaError) as info:
        load_and_train(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def load_and_train(overrides: dict, out: Path) -> None:
    recipe = load_recipe(SMALL_CPU, {**FAST, "out": str(out), **overrides})
    train(recipe, str(SMALL_CPU), out, max_steps=1)


def test_unknown_field_and_wrong_type_name_file_and_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("base: preset:tiny\nsteps: 10\noptim:\n  lr: 1e-4\n  warmpu_steps: 3\n")
    with pytest.raises(EdgevlaError, match=r"bad.yaml: optim.warmpu_steps: unknown field"):
        load_recipe(bad)
    bad.write_text("base: preset:tiny\nsteps: ten\n")
    with pytest.raises(EdgevlaError, match=r"bad.yaml: steps: expected int, got 'ten'"):
        load_recipe(bad)
    bad.write_text("base: preset:tiny\nsteps: 10\nmode: qlora\n")
    with pytest.raises(EdgevlaError, match=r"bad.yaml: mode: 'qlora' is not one of lora, expert"):
        load_recipe(bad)


@pytest.mark.parametrize(
    ("field", "value"),
    [("optim.lr", ".nan"), ("optim.lr", ".inf"), ("optim.betas", "[0.9, .nan]"), ("augment.brightness", "-.inf"),
     ("optim.warmup_steps", "-1"), ("optim.betas", "[0.9, 1.5]"), ("lora.dropout", "1.0"), ("seed", "-3")],
)  # fmt: skip
def test_recipe_numbers_must_be_finite_and_in_range(dataset, field, value):
    result = subprocess.run(
        [sys.executable, "-m", "edgevla", "train", "--recipe", str(SMALL_CPU), "--dataset", str(dataset),
         "--dry-run", "--set", f"{field}={value}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip().count("\n") == 0
        and f"small-cpu.yaml (with overrides): {field}" in result.stderr
    )


def test_truncated_episode_video_is_one_line_naming_it(tmp_path):
    dataset = write_reaching_dataset(tmp_path / "reach", episodes=2, length=12)
    video = dataset / "videos/observation.images.front/chunk-000/file-001.mp4"
    video.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    message = error_of({"datasets": [str(dataset)]}, tmp_path / "out")
    assert f"video {video} is damaged or truncated" in message and "dataset repair" in message


def test_missing_dataset(tmp_path):
    message = error_of({"datasets": [str(tmp_path / "nope")]}, tmp_path / "out")
    assert "datasets[0]" in message and "does not exist" in message


def test_camera_missing_in_dataset(dataset, tmp_path):
    overrides = {"datasets": [str(dataset)], "features.cameras": {"front": "observation.images.top"}}
    message = error_of(overrides, tmp_path / "out")
    assert "features.cameras.front" in message and "no camera 'observation.images.top'" in message
    assert "observation.images.front" in message  # what it has


SMOLVLA_CAMERAS = {"camera1": "observation.images.front", "camera2": "observation.images.wrist"}


def test_a_recipe_camera_no_dataset_recorded_is_left_out_and_the_policy_takes_the_dataset_names(
    dataset, tmp_path, capsys
):
    """The README session: a smolvla recipe (camera1 <- front, camera2 <- wrist), a front-only
    dataset; the trained policy then takes `front`, as `run --camera front=...` gives it."""
    from edgevla.model.checkpoint import load_edgevla

    load_and_train({"datasets": [str(dataset)], "features.cameras": SMOLVLA_CAMERAS}, tmp_path / "out")
    assert (
        "features.cameras.camera2: no dataset has camera 'observation.images.wrist'"
        in capsys.readouterr().out
    )
    assert load_edgevla(tmp_path / "out" / "policy").cfg.cameras == ("front",)


def test_unmapped_dataset_cameras_beside_a_missing_one_are_refused_naming_both(tmp_path):
    two = write_reaching_dataset(tmp_path / "two", episodes=2, length=12, cameras=("front", "top"))
    message = error_of({"datasets": [str(two)], "features.cameras": SMOLVLA_CAMERAS}, tmp_path / "out")
    assert "features.cameras.camera2" in message and "no camera 'observation.images.wrist'" in message
    assert "it has observation.images.front, observation.images.top" in message  # the dataset's list
    assert "the recipe maps camera1: observation.images.front, camera2: observation.images.wrist" in message
    assert (
        "--set 'features.cameras={camera1: observation.images.front, camera2: observation.images.top}'"
        in message
    )


def test_feature_the_checkpoint_does_not_know(dataset, tmp_path):
    overrides = {"datasets": [str(dataset)], "base": str(GOLDEN), "vlm_dir": str(VLM), "model": {},
                 "features.cameras": {"wrist": "observation.images.front"}}  # fmt: skip
    message = error_of(overrides, tmp_path / "out")
    assert "features.cameras.wrist" in message and "no camera 'wrist'" in message and "cam0" in message


def test_lora_targets_that_match_nothing(dataset, tmp_path):
    overrides = {
        "datasets": [str(dataset)],
        "mode": "lora",
        "lora.targets": ["state_proj", "expert_layers.*\\.qproj"],
    }
    message = error_of(overrides, tmp_path / "out")
    assert "lora.targets[1]" in message and "matches no Linear layer" in message


def test_a_shipped_recipe_is_found_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a wheel install: no recipes/ folder here
    assert load_recipe("recipes/smolvla-lora-8gb.yaml").name == "smolvla-lora-8gb"
    with pytest.raises(
        EdgevlaError, match=r"recipe recipes/nope.yaml does not exist; the shipped ones: .*small-cpu"
    ):
        load_recipe("recipes/nope.yaml")


def test_cli_reports_one_line_and_exit_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "edgevla", "train", "--recipe", str(SMALL_CPU), "--dataset", str(tmp_path / "x")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "does not exist" in result.stderr


def test_gpu_out_of_memory_names_the_knobs(dataset, tmp_path, monkeypatch):
    # No GPU here: the OOM is raised where the forward pass would raise it on one.
    def out_of_memory(self, batch, **draws):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr("edgevla.train.prepare.Objective.forward", out_of_memory)
    message = error_of({"datasets": [str(dataset)], "batch_size": 8}, tmp_path / "out")
    assert message == oom_advice(load_recipe(SMALL_CPU, {**FAST, "batch_size": 8}))
    assert "gradient_checkpointing: true" in message and "batch_size: 4 with grad_accum: 2" in message
