"""Recording against the virtual servo firmware (leader sweeping, follower) with synthetic cameras."""

import itertools
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

# The driver layer and the virtual firmware land from another branch; until then, skip.
pytest.importorskip("edgevla.drivers.robot")
pytest.importorskip("edgevla.firmware.robot")

from edgevla.cameras import open_cameras, parse_camera_spec
from edgevla.cameras.synthetic import decode_counter
from edgevla.dataset import DatasetReader, VideoConfig
from edgevla.dataset.check import check
from edgevla.drivers.calibration import unnormalize
from edgevla.record.arms import open_arm_pair
from edgevla.record.recorder import RecordConfig, Recorder
from edgevla.record.virtual_arms import virtual_arm_pair

FPS = 30
CAMERAS = ("front", "wrist")


@pytest.fixture(scope="module")
def arms(tmp_path_factory):
    """One virtual leader/follower pair for the module (each test opens and releases it)."""
    with virtual_arm_pair("so101", tmp_path_factory.mktemp("arms")) as ports:
        yield ports


class SentGoals:
    """Wraps the real follower driver and remembers every goal it reports as sent."""

    def __init__(self, follower):
        self.follower, self.sent = follower, []
        self.name, self.joint_names = follower.name, follower.joint_names

    def read_state(self):
        return self.follower.read_state()

    def send_action(self, goal, present=None):
        sent = self.follower.send_action(goal, present)
        self.sent.append(np.array(sent, np.float32))
        return sent


def _counters(ds, key, episode):
    return [decode_counter(image) for image in ds.episode_video(key, episode)]


def test_record_two_episodes_and_read_them_back(arms, tmp_path):
    root = tmp_path / "ds"
    config = RecordConfig(
        root,
        "pick the cube",
        fps=FPS,
        episodes=2,
        episode_seconds=1.5,
        reset_seconds=0.3,
        keyboard=False,
        video=VideoConfig(codec="libsvtav1"),
    )
    cameras = open_cameras(
        [parse_camera_spec(f"{n}=synthetic?width=160&height=120", fps=FPS) for n in CAMERAS]
    )
    try:
        with open_arm_pair("so101", *arms) as (leader, follower):
            spy = SentGoals(follower)
            report = Recorder(config, leader, spy, cameras, log=lambda _: None).run()
            # What the follower's servos hold as their goal now: the last recorded action.
            goal_in_servos = follower.bus.sync_read("Goal_Position")
            last_sent_raw = unnormalize(spy.sent[-1], follower.table)
    finally:
        for camera in cameras:
            camera.stop()

    ds = DatasetReader(root)
    assert ds.num_episodes == 2 and check(root).ok
    assert ds.features["action"]["names"][0] == "shoulder_pan.pos"
    for episode, recorded in zip(ds.episodes, report.episodes, strict=True):
        columns = ds.episode_columns(episode.index)
        assert episode.length == recorded.frames
        assert (
            episode.length + episode.extra["recording/dropped_frames"] == 45
        )  # every slot recorded or counted
        np.testing.assert_allclose(columns["timestamp"], np.arange(episode.length) / FPS, atol=1e-6)
        assert np.all(np.diff(columns["timing.tick"]) > 0)
        repeats = 0
        for camera in CAMERAS:
            assert np.all(np.diff(columns[f"timing.camera.{camera}"]) >= 0)
            counters = _counters(ds, f"observation.images.{camera}", episode.index)
            assert len(counters) == episode.length
            assert all(a <= b for a, b in itertools.pairwise(counters)), counters  # never out of order
            repeats += sum(a == b for a, b in itertools.pairwise(counters))
        assert repeats == episode.extra["recording/repeated_camera_frames"]
    # The recorded action is exactly what the driver sent after its clamp (reset frames excluded).
    recorded = np.concatenate([ds.episode_columns(e)["action"] for e in range(2)])
    first = ds.episodes[0].length
    reset_steps = len(spy.sent) - len(recorded)
    sent = np.stack(spy.sent[:first] + spy.sent[first + reset_steps :])
    np.testing.assert_array_equal(recorded, sent)
    np.testing.assert_array_equal(recorded[-1], spy.sent[-1])
    assert list(goal_in_servos.values()) == last_sent_raw.tolist()  # the servos got exactly that
    leader_moves = np.abs(np.diff(ds.columns["leader.action"], axis=0)).max()
    assert leader_moves > 0  # the sweeping leader was really followed
    assert not np.array_equal(ds.columns["observation.state"], ds.columns["action"])


def _record_command(arms, root, *extra):
    return [
        sys.executable,
        "-m",
        "edgevla",
        "record",
        "--robot",
        "so101",
        "--leader-port",
        arms[0],
        "--follower-port",
        arms[1],
        "--camera",
        "front=synthetic?width=160&height=120",
        "--camera",
        "wrist=synthetic?width=160&height=120",
        "--dataset",
        str(root),
        "--task",
        "stack",
        "--episodes",
        "5",
        "--episode-seconds",
        "1.2",
        "--reset-seconds",
        "0.2",
        "--no-keyboard",
        *extra,
    ]


def test_sigkill_in_episode_three_then_resume_to_five(arms, tmp_path):
    root = tmp_path / "ds"
    process = subprocess.Popen(
        _record_command(arms, root, "--vcodec", "libx264"), stdout=subprocess.PIPE, text=True
    )
    for line in process.stdout:
        if line.startswith("recording episode 3/5"):
            break
    else:
        pytest.fail(f"recorder ended early: {process.wait()}")
    time.sleep(0.6)  # mid-episode: frames buffered, videos half encoded
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)

    ds = DatasetReader(root)
    assert ds.num_episodes == 2
    for episode in range(2):
        counters = _counters(ds, "observation.images.front", episode)
        assert len(counters) == ds.episodes[episode].length > 0
    assert check(root).ok

    result = subprocess.run(
        _record_command(arms, root, "--vcodec", "libx264", "--resume"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "resuming" in result.stdout and "recording episode 3/5" in result.stdout
    ds = DatasetReader(root)
    assert ds.num_episodes == 5 and check(root).ok
    assert [e.index for e in ds.episodes] == list(range(5))


def test_unopenable_camera_is_one_line_and_records_nothing(arms, tmp_path):
    root = tmp_path / "ds"
    command = _record_command(arms, root)
    command[command.index("front=synthetic?width=160&height=120")] = "front=/dev/video-nope"
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "front" in result.stderr
    assert not root.exists()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_keeps_saved_episodes_and_drops_the_unfinished_one(arms, tmp_path, stop):
    root = tmp_path / "ds"
    process = subprocess.Popen(
        _record_command(arms, root, "--vcodec", "libx264"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
    )
    for line in process.stdout:
        if line.startswith("recording episode 2/5"):
            break
    time.sleep(0.4)
    process.send_signal(stop)
    try:
        _, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)  # PYTHONFAULTHANDLER: every thread's stack to stderr
        pytest.fail(f"the recorder did not stop within 30 s of {stop.name}:\n{process.communicate()[1]}")
    assert process.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr
    ds = DatasetReader(root)
    assert ds.num_episodes == 1
    report = check(root)
    assert report.ok and not report.warnings  # closed cleanly: no leftovers to repair


def test_an_episode_announced_saved_survives_sigkill_right_after_the_line(arms, tmp_path):
    root = tmp_path / "ds"
    command = _record_command(arms, root)  # AV1: flushing the encoder takes a while
    command[command.index("--episodes") + 1] = "2"
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("episode 1 saved"):
            process.send_signal(signal.SIGKILL)
            break
    else:
        pytest.fail(f"no 'episode 1 saved' line: {lines}")
    process.wait(timeout=10)
    ds = DatasetReader(root)  # what a crash leaves, before any repair
    assert ds.num_episodes == 1
    counters = _counters(ds, "observation.images.front", 0)
    assert len(counters) == ds.episodes[0].length > 0


def _one_line_error(command):
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    return result.stderr


@pytest.mark.parametrize("option", ["--episode-seconds", "--reset-seconds"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_seconds_are_one_line(arms, tmp_path, option, value):
    command = _record_command(arms, tmp_path / "ds")
    command[command.index(option) + 1] = value
    assert option in _one_line_error(command)
    assert not (tmp_path / "ds").exists()


def test_a_file_given_as_dataset_is_one_line_and_left_alone(arms, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("keep me")
    assert "notes.txt is a file, not a folder" in _one_line_error(_record_command(arms, path))
    assert path.read_text() == "keep me"


def test_resume_names_the_damaged_episode_it_drops(arms, tmp_path):
    root = tmp_path / "ds"
    command = _record_command(arms, root, "--vcodec", "libx264")
    command[command.index("--episodes") + 1] = "2"
    subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    video = root / "videos/observation.images.wrist/chunk-000/file-000.mp4"
    video.write_bytes(video.read_bytes()[:1000])  # episode 1's wrist video, truncated
    result = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "dropped damaged episode 1" in result.stderr and "file-000.mp4" in result.stderr
    assert "resuming" in result.stdout and "recording episode 2/2" in result.stdout
    ds = DatasetReader(root)
    assert ds.num_episodes == 2 and check(root).ok
