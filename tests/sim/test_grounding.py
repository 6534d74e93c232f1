"""Grounding pretraining: rendered frames labelled with where each cube is, the labels at the
model's token layout, and `edgevla sim pretrain` writing a base that a recipe fine-tunes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from edgevla.cli import main as cli_main
from edgevla.model.checkpoint import load_edgevla
from edgevla.model.config import preset
from edgevla.model.network import SmolVLANet
from edgevla.sim.grounding import render_grounding_frames
from edgevla.sim.render import project
from edgevla.sim.world import SimWorld
from edgevla.train.grounding import make_labels, token_of_patch
from edgevla.train.loop import train
from edgevla.train.recipe import load_recipe
from edgevla.train.synthetic import write_reaching_dataset

# the tiny preset at 64 px: an 8x8 patch grid, 16 image tokens after the 2x2 pixel shuffle
TINY = {"name": "tiny-grounding", "base": "preset:tiny", "model": {"resize": 64}, "seed": 3, "steps": 3}


@pytest.fixture(scope="module")
def frames():
    return render_grounding_frames(12, seed=0, size=64)


def test_each_cube_is_where_its_projection_says():
    world = SimWorld()  # the arm at each episode's start pose hides no cube
    cam = world.renderer.cameras["front"]
    dominant = {"red": 0, "green": 1, "blue": 2}
    for seed in range(10):
        scene = world.reset(seed).scene
        image = world.render("front")
        for cube in scene.cubes:
            u, v = project(cam, world.kin.frames(world.angles), cube.center)
            pixel = image[int(v), int(u)].astype(int)
            if cube.color_name in dominant:
                assert pixel.argmax() == dominant[cube.color_name], (seed, cube.color_name, pixel)
            else:  # yellow: red and green high, blue low
                assert min(pixel[0], pixel[1]) > 2 * pixel[2], (seed, cube.color_name, pixel)


def test_a_point_behind_the_camera_is_refused():
    world = SimWorld()
    cam = world.renderer.cameras["front"]
    with pytest.raises(ValueError, match="behind the front camera"):
        project(cam, world.kin.frames(world.angles), np.array([1.0, 0.0, 0.5]))


def test_frames_show_the_arm_along_a_reach_not_always_at_rest(frames):
    # same scene seed twice gives the same frame; different frames differ where the arm is
    again = render_grounding_frames(2, seed=0, size=64)
    assert np.array_equal(again.images, frames.images[:2])
    assert len({image.tobytes() for image in frames.images}) == len(frames)


def test_labels_follow_the_connectors_token_layout(frames):
    cfg = preset("tiny").with_overrides(resize=64)
    lookup = token_of_patch(cfg).reshape(8, 8)
    # the pixel shuffle merges 2x2 neighbouring patches: token (row, col) of a 4x4 grid
    rows, cols = np.indices((8, 8))
    assert np.array_equal(lookup, (rows // 2) * 4 + cols // 2)
    labels = make_labels(frames, cfg)
    u, v = frames.pixels[..., 0], frames.pixels[..., 1]
    assert np.array_equal(labels.tokens, (v // 16).astype(int) * 4 + (u // 16).astype(int))
    assert np.allclose(labels.places, frames.pixels / 64 * 2 - 1)


def write_recipe(tmp_path: Path, **changes) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({**TINY, **changes}))
    return path


def test_pretrain_writes_a_base_whose_vlm_expert_fine_tuning_keeps(tmp_path, capsys):
    recipe = write_recipe(tmp_path)
    out = tmp_path / "grounded"
    args = ["sim", "pretrain", "--recipe", str(recipe), "--out", str(out), "--frames", "60"]
    args += ["--held-out", "12", "--steps", "40", "--batch", "8", "--lr", "2e-3", "--workers", "1"]
    assert cli_main([*args, "--eval-interval", "20", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["steps"] == 40 and report["held_out_frames"] == 12
    assert 0.0 <= report["held_out_token_acc"] <= 1.0 and report["held_out_place_px"] > 0
    log = [json.loads(line) for line in (out / "grounding_metrics.jsonl").read_text().splitlines()]
    losses = [row["loss"] for row in log]
    assert np.mean(losses[-10:]) < np.mean(losses[:5]), "the grounding loss falls"
    assert [row["step"] for row in log if "held_out_token_acc" in row] == [20, 40]

    grounded = load_edgevla(out)
    assert grounded.cfg.cameras == ("front",) and grounded.cfg.resize == 64
    torch.manual_seed(3)
    fresh = SmolVLANet(grounded.cfg)
    patches = "vision.embeddings.patch_embedding.weight"
    assert not torch.equal(fresh.state_dict()[patches], grounded.net.state_dict()[patches]), "the VLM trained"

    # the recipe that fine-tunes it: the expert trains, the grounded VLM stays as it is; the
    # demos' wrist camera joins the base's front one (no weight depends on the camera count)
    dataset = write_reaching_dataset(tmp_path / "demos", episodes=3, length=24, cameras=("front", "wrist"))
    tuned = tmp_path / "tuned"
    overrides = {
        "base": str(out),
        "mode": "expert",
        "model": {"chunk_size": 10},
        "datasets": [str(dataset)],
        "out": str(tuned),
        "batch_size": 4,
        "cpu_threads": 1,
        "num_workers": 0,
        "eval.interval": 0,
    }
    fine = load_recipe(write_recipe(tmp_path, base=str(out)), overrides)
    train(fine, "recipe.yaml", tuned, max_steps=3)
    policy = load_edgevla(tuned / "policy")
    assert policy.cfg.cameras == ("front", "wrist") and policy.cfg.empty_cameras == 0
    for name, weight in grounded.net.state_dict().items():
        if name.startswith(("vision.", "connector.", "embed_tokens.", "vlm_layers.")):
            assert torch.equal(weight, policy.net.state_dict()[name]), name
    assert not torch.equal(
        grounded.net.head.action_out_proj.weight, policy.net.head.action_out_proj.weight
    ), "the expert trained"


def test_pretraining_needs_a_preset_recipe_and_sane_sizes(tmp_path, capsys):
    checkpoint_recipe = write_recipe(tmp_path, base=str(tmp_path))
    out = str(tmp_path / "out")
    assert cli_main(["sim", "pretrain", "--recipe", str(checkpoint_recipe), "--out", out]) != 0
    assert "builds a preset from scratch" in capsys.readouterr().err
    recipe = str(write_recipe(tmp_path))
    for bad, named in (
        (["--held-out", "10", "--frames", "10"], "--held-out"),
        (["--steps", "0"], "--steps"),
        (["--camera", "top"], "--camera"),
    ):
        assert cli_main(["sim", "pretrain", "--recipe", recipe, "--out", out, *bad]) != 0
        assert named in capsys.readouterr().err
    assert not Path(out).exists()
