"""The simulated SO-101: kinematics vs the robot definition, units, IK, tasks, expert, cameras."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edgevla.cli import main as cli_main
from edgevla.drivers.calibration import check_fits
from edgevla.hardware import HardwareFileError, load_robot
from edgevla.sim import joints
from edgevla.sim.expert import ScriptedExpert
from edgevla.sim.kinematics import load_kinematics
from edgevla.sim.render import Renderer, camera_def
from edgevla.sim.scene import CUBE_COLORS
from edgevla.sim.tasks import SUCCESS_RADIUS, SuccessMonitor, make_episode
from edgevla.sim.world import SimConfig, SimWorld


@pytest.fixture(scope="module")
def kin():
    return load_kinematics("so101")


@pytest.fixture(scope="module")
def follower():
    return load_robot("so101_follower")


def test_kinematics_match_the_robot_definitions(kin, follower):
    assert kin.robot == follower.name
    assert kin.joint_names == follower.joint_names == load_robot("so101_leader").joint_names
    calibration = joints.sim_calibration(kin, follower)
    check_fits(calibration, follower)  # the driver accepts it: every joint, the robot's ids
    for motor in follower.motors:
        cal = calibration[motor.name]
        # every joint's range fits one servo turn, so raw positions never wrap
        assert 0 <= cal.range_min < cal.range_max <= motor.servo.resolution - 1


def test_joint_units_round_trip_and_anchor_points():
    world = SimWorld(SimConfig(cameras=()))
    kin = world.kin
    rng = np.random.default_rng(0)
    angles = rng.uniform(kin.lower, kin.upper)
    # through the driver's normalisation and back: within one servo count
    back = world.from_normalized(world.to_normalized(angles))
    assert np.allclose(back, angles, atol=2 * np.pi / 4096)
    # body joints: the middle of the range is 0 and the ends are -100/+100; gripper closed 0 open 100
    low, high = world.to_normalized(kin.lower), world.to_normalized(kin.upper)
    assert np.allclose(low[:5], -100, atol=0.1) and np.allclose(high[:5], 100, atol=0.1)
    assert low[5] == pytest.approx(0, abs=0.1) and high[5] == pytest.approx(100, abs=0.1)
    assert np.allclose(world.to_normalized((kin.lower + kin.upper) / 2)[:5], 0, atol=0.1)


def test_forward_kinematics_keeps_link_lengths(kin):
    rng = np.random.default_rng(1)
    rest = kin.frames(np.zeros(6))
    moved = kin.frames(rng.uniform(kin.lower, kin.upper))
    names = ["base", *kin.joint_names]
    for a, b in zip(names, names[1:], strict=False):
        length = np.linalg.norm(rest[a][:3, 3] - rest[b][:3, 3])
        assert np.linalg.norm(moved[a][:3, 3] - moved[b][:3, 3]) == pytest.approx(length, abs=1e-9)
        assert np.allclose(moved[b][:3, :3].T @ moved[b][:3, :3], np.eye(3), atol=1e-9)


def test_ik_reaches_targets_on_the_table_within_joint_limits(kin):
    rng = np.random.default_rng(2)
    for _ in range(20):
        radius, bearing = rng.uniform(0.16, 0.28), rng.uniform(-0.9, 0.9)
        target = np.array([radius * np.cos(bearing), radius * np.sin(bearing), rng.uniform(0.02, 0.12)])
        angles, error = kin.solve_ik(target, np.zeros(6), pointing=np.array([0.0, 0.0, -1.0]))
        assert error < 1e-3
        assert np.allclose(kin.tool_position(angles), target, atol=1e-3)
        assert np.all(angles >= kin.lower) and np.all(angles <= kin.upper)


def test_bad_kinematics_file_names_file_and_field(tmp_path):
    bad = tmp_path / "arm.yaml"
    bad.write_text(
        "robot: x\njoints:\n  - {name: a, xyz: [0, 0], quat: [1, 0, 0, 0], axis: [0, 0, 1], range: [-1, 1]}\n"
    )
    with pytest.raises(HardwareFileError, match=r"arm.yaml: field 'joints\[0\].xyz': expected 3 numbers"):
        load_kinematics(path=bad)


def test_episodes_are_reproducible_and_varied(kin):
    a, b = make_episode("reach", 7, kin), make_episode("reach", 7, kin)
    assert a.instruction == b.instruction and a.instruction.startswith("touch the ")
    assert np.array_equal(a.start, b.start)
    assert all(np.array_equal(x.center, y.center) for x, y in zip(a.scene.cubes, b.scene.cubes, strict=True))
    targets = {make_episode("reach", s, kin).target for s in range(30)}
    assert len(targets) >= 3  # instructions name different colours across episodes


@pytest.mark.parametrize("near_miss", [0.0, 1.0])
@pytest.mark.parametrize("task", ["reach", "reach_close"])
def test_scripted_expert_solves_each_task(task, near_miss):
    world = SimWorld(SimConfig(task=task, cameras=(), near_miss=near_miss))
    successes = 0
    for seed in range(40):
        expert = ScriptedExpert(world.kin, world.reset(seed))
        steps = int(expert.duration * world.config.fps) + 1
        for step in range(steps):
            world.step_servos(expert.goal(step / world.config.fps))
        successes += world.succeeded
    assert successes / 40 >= 0.95


def test_expert_moves_like_a_person_not_a_teleport():
    world = SimWorld(SimConfig(task="reach", cameras=()))
    expert = ScriptedExpert(world.kin, world.reset(3))
    times = np.arange(0, expert.duration, 1 / 30)
    goals = np.array([expert.goal(t) for t in times])
    speed = np.abs(np.diff(goals, axis=0)).max(1) * 30
    assert speed.max() < 2.0  # rad/s: a hand on the leader arm, below the servo's top speed
    assert np.allclose(goals[0], expert.episode.start, atol=0.01)  # starts where the arm is


def test_near_miss_starts_are_beside_the_named_cube_and_the_expert_slides_onto_it(kin):
    world = SimWorld(SimConfig(task="reach", cameras=(), near_miss=1.0))
    heights = set()
    for seed in range(20):
        episode = world.reset(seed)
        assert episode.near_miss and not world.succeeded
        # the rest start of the same seed is untouched by the option (demos stay reproducible)
        assert np.array_equal(
            make_episode("reach", seed, kin).start, make_episode("reach", seed, kin, near_miss=0).start
        )
        cube = episode.scene.cube(episode.target)
        top = cube.center + [0.0, 0.0, cube.size / 2]
        tool = kin.tool_position(episode.start)
        assert 0.02 - 0.003 <= np.linalg.norm(tool[:2] - top[:2]) <= 0.05 + 0.003
        heights.add(round(float(tool[2] - top[2]), 2))
        expert = ScriptedExpert(world.kin, episode)
        path = [kin.tool_position(expert.goal(t)) for t in np.arange(0, expert.duration, 1 / 30)]
        if tool[2] - top[2] < 0.01:  # down beside it: slide across, never back up to hover height
            assert max(p[2] for p in path) < top[2] + 0.02
        for step in range(int(expert.duration * world.config.fps) + 1):
            world.step_servos(expert.goal(step / world.config.fps))
        assert world.succeeded
    assert heights == {0.0, 0.05}  # touching down beside it, and hovering beside it
    assert not SimWorld(SimConfig(task="reach", cameras=())).reset(0).near_miss


def test_success_needs_the_named_cube(kin):
    episode = make_episode("reach", 5, kin)
    other = next(c for c in episode.scene.cubes if c.color_name != episode.target)
    seed = np.zeros(6)
    seed[0] = -np.arctan2(other.center[1], other.center[0])
    on_other, _ = kin.solve_ik(
        other.center + [0, 0, other.size / 2 + 0.003], seed, pointing=np.array([0, 0, -1.0])
    )
    monitor = SuccessMonitor(kin, episode)
    assert not monitor.update(on_other)
    target = episode.target_center
    seed[0] = -np.arctan2(target[1], target[0])
    on_target, _ = kin.solve_ik(target + [0, 0, 0.018], seed, pointing=np.array([0, 0, -1.0]))
    assert monitor.update(on_target) and monitor.distance <= SUCCESS_RADIUS


def test_reach_close_needs_arriving_open_then_closing(kin):
    episode = make_episode("reach_close", 5, kin)
    target = episode.target_center
    seed = np.zeros(6)
    seed[0] = -np.arctan2(target[1], target[0])
    at_cube, _ = kin.solve_ik(target + [0, 0, 0.018], seed, pointing=np.array([0, 0, -1.0]))
    closed, opened = at_cube.copy(), at_cube.copy()
    closed[5], opened[5] = kin.lower[5], 1.0

    arrived_closed = SuccessMonitor(kin, episode)
    assert not arrived_closed.update(closed)
    assert not arrived_closed.update(opened) and not arrived_closed.update(closed)

    proper = SuccessMonitor(kin, episode)
    assert not proper.update(opened)  # there, but the jaws are still open
    assert proper.update(closed)


def test_rendering_is_deterministic_and_follows_the_arm(kin):
    renderer = Renderer(kin, [camera_def("front"), camera_def("wrist", 64, 48)])
    episode = make_episode("reach", 11, kin)
    first = renderer.render("front", episode.scene, episode.start)
    assert first.shape == (96, 96, 3) and first.dtype == np.uint8
    assert np.array_equal(first, renderer.render("front", episode.scene, episode.start))
    assert renderer.render("wrist", episode.scene, episode.start).shape == (48, 64, 3)
    moved = episode.start.copy()
    moved[0] += 0.3
    assert np.abs(renderer.render("front", episode.scene, moved).astype(int) - first).sum() > 1000
    assert not np.array_equal(
        first, renderer.render("front", make_episode("reach", 12, kin).scene, episode.start)
    )


def test_each_camera_renders_at_its_own_size_and_the_cli_says_which_size_is_bad(tmp_path, capsys):
    # a near wrist camera costs twice the front one per pixel: `front,wrist:64` keeps recording real-time
    world = SimWorld(SimConfig(cameras=("front", "wrist"), sizes=(("wrist", 64),)))
    obs = world.observation()
    assert obs["observation.images.front"].shape == (96, 96, 3)
    assert obs["observation.images.wrist"].shape == (64, 64, 3)
    strip = tmp_path / "strip.png"
    assert cli_main(["sim", "show", "--cameras", "front,wrist:40", "--size", "72", "--out", str(strip)]) == 0
    from PIL import Image

    assert Image.open(strip).height == 72 + 40  # the views stacked, the narrower one padded
    for bad, says in (
        ("front,wrist:x", "'wrist:x' needs a whole size"),
        ("front,front", "names a camera twice"),
    ):
        assert cli_main(["sim", "show", "--cameras", bad, "--out", str(strip)]) == 2
        assert says in capsys.readouterr().err


def test_front_camera_sees_every_cube(kin):
    renderer = Renderer(kin, [camera_def("front")])
    for seed in range(5):
        episode = make_episode("reach", seed, kin)
        image = renderer.render("front", episode.scene, episode.start).astype(int)
        for cube in episode.scene.cubes:
            lit = np.array(CUBE_COLORS[cube.color_name]) * 255
            # some pixel is close in hue to the cube's colour under at least the shadowed light
            ratio = image / np.maximum(image.max(-1, keepdims=True), 1)
            target = lit / lit.max()
            assert (np.abs(ratio - target).max(-1) < 0.12).sum() >= 4, (
                f"seed {seed}: {cube.color_name} not seen"
            )


def test_cli_expert_json(capsys):
    assert cli_main(["sim", "expert", "--task", "reach", "--episodes", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["episodes"] == 3 and report["success_rate"] == 1.0 and report["time_to_success_s"] > 0


def test_cli_show_writes_a_strip(tmp_path):
    from PIL import Image

    out = tmp_path / "strip.png"
    assert cli_main(["sim", "show", "--seed", "2", "--size", "48", "--out", str(out)]) == 0
    strip = Image.open(out)
    assert strip.height == 2 * 48 and strip.width > 5 * 48  # front over wrist, several frames


def test_cli_bad_camera_is_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "edgevla", "sim", "show", "--cameras", "top"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "unknown top" in result.stderr


def test_sim_package_is_torch_free():
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
        "from edgevla.sim.world import SimWorld, SimConfig\n"
        "w = SimWorld(SimConfig()); w.reset(0); print(w.observation()['observation.state'].shape)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "(6,)" in result.stdout


def test_shipped_sim_calibration_matches_the_kinematics(kin, tmp_path):
    from edgevla.hardware import load_robot_pair
    from edgevla.sim.joints import SIM_CALIBRATION_DIR, write_sim_calibration

    for path in write_sim_calibration(kin, list(load_robot_pair("so101")), tmp_path):
        shipped = SIM_CALIBRATION_DIR / path.name
        assert json.loads(shipped.read_text()) == json.loads(path.read_text()), (
            f"{shipped} is stale: run `edgevla sim calibration`"
        )
