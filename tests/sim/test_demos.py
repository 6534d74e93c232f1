"""Scripted-expert demonstrations recorded by edgevla's Recorder into a LeRobotDataset."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from edgevla.cli import main as cli_main
from edgevla.dataset import DatasetReader
from edgevla.sim.kinematics import load_kinematics
from edgevla.sim.tasks import make_episode
from edgevla.sim.world import SimConfig, SimWorld


def test_demos_are_a_valid_dataset_with_one_instruction_per_episode(tmp_path):
    dataset = tmp_path / "demos"
    args = ["sim", "demos", "--dataset", str(dataset), "--episodes", "2", "--episode-seconds", "3"]
    assert cli_main([*args, "--size", "64", "--fps", "15", "--vcodec", "libx264"]) == 0
    reader = DatasetReader(dataset)
    assert reader.num_episodes == 2 and reader.fps == 15
    assert reader.camera_keys == ["observation.images.front"]
    kin = load_kinematics()
    assert [e.tasks for e in reader.episodes] == [[make_episode("reach", s, kin).instruction] for s in (0, 1)]
    first = reader.episode_columns(0)
    # the follower moved: a teleoperated reach, not a still arm
    state = first["observation.state"]
    assert np.abs(state[-1] - state[0]).max() > 5.0
    # the recorded action is the clamped leader command: never further than the clamp from the state
    assert np.all(np.abs(first["action"] - state)[:, :5] <= 10.0 + 1e-3)
    frame = reader.frame(5)
    assert frame["observation.images.front"].shape[-3:] in ((64, 64, 3), (3, 64, 64))
    # an episode's first frame shows its own scene (cubes), not the previous episode's: compare
    # where the two scenes differ, rendered with the arm at the second episode's start pose
    first_of_second = reader.video_frames("observation.images.front", 1, [0.0])[0].astype(float)
    world = SimWorld(SimConfig(cameras=("front",), width=64, height=64))
    start = world.reset(1).start
    own_scene = world.render("front").astype(float)
    world.reset(0)
    world.set_angles(start)
    previous_scene = world.render("front").astype(float)
    cubes = np.abs(own_scene - previous_scene).max(axis=-1) > 60
    assert cubes.sum() > 10
    to_own = np.abs(first_of_second - own_scene)[cubes].mean()
    assert to_own < 0.5 * np.abs(first_of_second - previous_scene)[cubes].mean()
    # appending: asking for 3 episodes records only the missing one
    assert cli_main([*args[:5], "3", "--episode-seconds", "3", "--size", "64", "--fps", "15"]) == 0
    assert DatasetReader(dataset).num_episodes == 3


def test_near_miss_demos_record_the_correction_from_beside_the_cube(tmp_path):
    """`--near-miss 1`: each episode starts with the follower stopped beside the named cube, and
    what is recorded is the expert's move onto it."""
    dataset = tmp_path / "near-miss"
    args = ["sim", "demos", "--dataset", str(dataset), "--episodes", "1", "--episode-seconds", "3"]
    assert (
        cli_main(
            [*args, "--near-miss", "1", "--no-bus", "--size", "32", "--fps", "15", "--vcodec", "libx264"]
        )
        == 0
    )
    world = SimWorld(SimConfig(cameras=(), fps=15))
    cube = world.reset(0).scene.cube(world.episode.target)
    top = cube.center + [0.0, 0.0, cube.size / 2]
    columns = DatasetReader(dataset).episode_columns(0)

    def off(values: np.ndarray) -> float:
        return float(np.linalg.norm(world.kin.tool_position(world.from_normalized(values))[:2] - top[:2]))

    assert 0.018 < off(columns["observation.state"][0]) < 0.055  # recorded from beside the cube
    assert off(columns["action"][-1]) < 0.01 and off(columns["observation.state"][-1]) < 0.015  # onto it


def test_near_miss_out_of_range_is_one_clear_line(tmp_path):
    dataset = tmp_path / "demos"
    result = subprocess.run(
        [sys.executable, "-m", "edgevla", "sim", "demos", "--dataset", str(dataset), "--near-miss", "1.5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and not dataset.exists()
    assert result.stderr.strip().count("\n") == 0 and "--near-miss" in result.stderr
