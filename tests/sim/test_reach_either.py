"""reach_either: two cubes share the named colour, the expert touches one drawn per episode, and
touching either succeeds (the multimodal task of issue #20)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edgevla.dataset import DatasetReader
from edgevla.evaluation.evaluate import EvalConfig, eval_world_config
from edgevla.evaluation.oracle import OraclePolicy
from edgevla.evaluation.rollout import evaluate_sync
from edgevla.runtime.replay import ReplayPolicy
from edgevla.sim.expert import ScriptedExpert
from edgevla.sim.kinematics import load_kinematics
from edgevla.sim.tasks import DOWN, SUCCESS_RADIUS, SuccessMonitor, facing, make_episode
from edgevla.sim.world import SimConfig, SimWorld

SEEDS = range(40)


@pytest.fixture(scope="module")
def kin():
    return load_kinematics("so101")


def on_top_of(kin, cube) -> np.ndarray:
    top = cube.center + [0.0, 0.0, cube.size / 2 + 0.003]
    angles, error = kin.solve_ik(top, facing(np.zeros(6), top), pointing=DOWN)
    assert error < 0.005
    return angles


def test_the_scene_has_exactly_two_cubes_of_the_named_colour_and_distractors_of_others(kin):
    for seed in SEEDS:
        episode = make_episode("reach_either", seed, kin)
        names = list(episode.scene.color_names)
        assert names.count(episode.target) == 2, names
        others = [n for n in names if n != episode.target]
        assert len(others) == 2 and len(set(others)) == 2  # distractors, each its own colour
        assert episode.instruction == f"touch a {episode.target} cube"
        centers = [c.center[:2] for c in episode.scene.cubes]
        gaps = [np.linalg.norm(a - b) for i, a in enumerate(centers) for b in centers[i + 1 :]]
        assert min(gaps) >= 0.07  # far enough apart to tell which one the arm is over


def test_the_expert_draws_either_named_cube_from_the_seed_and_touches_it(kin):
    world = SimWorld(SimConfig(task="reach_either", cameras=()))
    chosen = []
    for seed in SEEDS:
        episode = world.reset(seed)
        named = [i for i, c in enumerate(episode.scene.cubes) if c.color_name == episode.target]
        assert episode.chosen in named
        assert make_episode("reach_either", seed, kin).chosen == episode.chosen  # seeded: it repeats
        chosen.append(named.index(episode.chosen))
        if seed < 6:  # play a few through the servo model: it ends on the cube it drew
            expert = ScriptedExpert(world.kin, episode)
            for step in range(int(expert.duration * world.config.fps) + 1):
                world.step_servos(expert.goal(step / world.config.fps))
            tool = world.kin.tool_position(world.angles)
            assert world.succeeded and np.linalg.norm(tool - episode.chosen_cube.center) <= SUCCESS_RADIUS
    assert 0.25 < np.mean(chosen) < 0.75  # both modes, in about equal numbers (40 seeds)


def test_touching_either_named_cube_succeeds_and_a_distractor_does_not(kin):
    episode = make_episode("reach_either", 3, kin)
    for cube in episode.scene.cubes:
        monitor = SuccessMonitor(kin, episode)
        assert monitor.update(on_top_of(kin, cube)) == (cube.color_name == episode.target)


def test_naming_another_colour_leaves_one_cube_to_touch(kin):
    world = SimWorld(SimConfig(task="reach_either", cameras=()))
    episode = world.reset(3)
    other = next(c for c in episode.scene.cubes if c.color_name != episode.target)
    aimed = world.reset(3, target=other.color_name)
    assert (
        np.array_equal(aimed.target_center, other.center)
        and aimed.instruction == f"touch a {other.color_name} cube"
    )
    twin = next(c for c in episode.scene.cubes if c.color_name == episode.target)
    assert not SuccessMonitor(kin, aimed).update(on_top_of(kin, twin))


def test_a_perfect_policy_solves_it_and_every_target_names_each_colour_once():
    config = EvalConfig(task="reach_either", episodes=2, max_seconds=6.0, cameras=("front",), size=32)
    world = SimWorld(eval_world_config(config))
    oracle = OraclePolicy(world)
    summary = evaluate_sync(oracle, config, oracle.spec.chunk_size, world=world, every_target=True).summary()
    assert summary["success_rate"] == 1.0 and summary["went_to_named_cube"] == 1.0
    assert summary["episodes"] == 6  # 3 colours per scene (the shared one once), 2 scenes


def test_eval_and_demos_take_the_task(tmp_path):
    hold = np.tile(np.array([0, -50, 50, 50, 0, 10], np.float32), (60, 1))
    ReplayPolicy(hold, 30.0, 50, "hold").save(tmp_path / "hold.npz")
    result = subprocess.run(
        [
            sys.executable, "-m", "edgevla", "eval", "--policy", str(tmp_path / "hold.npz"),
            "--task", "reach_either", "--episodes", "1", "--sync", "10", "--max-seconds", "1", "--json",
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["task"] == "reach_either" and report["success_rate"] == 0.0
    assert report["per_episode"][0]["instruction"].startswith("touch a ")
    dataset = tmp_path / "either"
    result = subprocess.run(
        [
            sys.executable, "-m", "edgevla", "sim", "demos", "--task", "reach_either", "--dataset", str(dataset),
            "--episodes", "1", "--episode-seconds", "3", "--size", "32", "--fps", "15", "--no-bus",
            "--vcodec", "libx264", "--seed", "9000",
        ],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    episode = make_episode("reach_either", 9000, load_kinematics())
    assert DatasetReader(dataset).episodes[0].tasks == [episode.instruction]
    x, y = episode.chosen_cube.center[:2]
    assert f"success, to cube {episode.chosen} at x {x:.3f} y {y:.3f} m" in result.stdout
