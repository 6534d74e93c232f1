"""The writer's promises: round trip, durability per episode, repair/resume, clear errors."""

import errno
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from edgevla.cameras.synthetic import decode_counter
from edgevla.dataset import DatasetReader, DatasetWriter, VideoConfig, repair
from edgevla.dataset import durable as durable_module
from edgevla.dataset.check import check
from edgevla.dataset.durable import DatasetWriteError
from edgevla.dataset.format import DatasetFormatError

from .helpers import FPS, add_frames, features, state_of, write_dataset


def test_round_trip_frames_counters_timestamps_and_stats(tmp_path):
    write_dataset(tmp_path / "ds", lengths=(12, 9, 5), cameras=("front", "wrist"))
    ds = DatasetReader(tmp_path / "ds")
    assert (len(ds), ds.num_episodes, ds.tasks) == (26, 3, ["pick", "place"])
    for index in range(len(ds)):
        item = ds[index]
        assert decode_counter(item["observation.images.front"]) == index
        assert decode_counter(item["observation.images.wrist"]) == index
        np.testing.assert_array_equal(item["observation.state"], state_of(index))
    video = ds.episode_video("observation.images.wrist", 1)
    assert video.shape == (9, 72, 96, 3) and [decode_counter(image) for image in video] == list(range(12, 21))
    episode = ds.episode_columns(1)
    np.testing.assert_allclose(episode["timestamp"], np.arange(9) / FPS, rtol=0, atol=1e-6)
    assert episode["task_index"].tolist() == [1] * 9
    states = ds.columns["observation.state"]
    np.testing.assert_allclose(ds.stats["observation.state"]["mean"], states.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(ds.stats["observation.state"]["min"], states.min(axis=0))
    assert ds.stats["observation.images.front"]["mean"].shape == (3, 1, 1)
    assert check(tmp_path / "ds").ok


def test_each_saved_episode_is_durable_before_close(tmp_path):
    writer = DatasetWriter.open(tmp_path / "ds", FPS, features(), video=VideoConfig(codec="libx264"))
    add_frames(writer, 0, 10, "pick")
    writer.save_episode()
    writer.wait()
    add_frames(writer, 10, 4, "pick")  # an episode in progress, not saved
    ds = DatasetReader(tmp_path / "ds")  # a second process would see exactly this
    assert (ds.num_episodes, len(ds), ds.info["total_frames"]) == (1, 10, 10)
    assert [decode_counter(ds[i]["observation.images.front"]) for i in range(10)] == list(range(10))
    writer.close()


def test_discarded_episode_leaves_no_trace(tmp_path):
    writer = DatasetWriter.open(tmp_path / "ds", FPS, features(), video=VideoConfig(codec="libx264"))
    add_frames(writer, 0, 6, "pick")
    writer.save_episode()
    add_frames(writer, 6, 5, "a task never saved")
    writer.discard_episode()
    add_frames(writer, 100, 7, "pick")
    writer.save_episode()
    writer.close()
    ds = DatasetReader(tmp_path / "ds")
    assert (ds.num_episodes, len(ds), ds.tasks) == (2, 13, ["pick"])
    assert decode_counter(ds[6]["observation.images.front"]) == 100
    assert not (tmp_path / "ds" / ".partial").exists()


CRASHER = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    from tests.dataset.helpers import add_frames, features, FPS
    from edgevla.dataset import DatasetWriter, VideoConfig
    writer = DatasetWriter.open({root!r}, FPS, features(), video=VideoConfig(codec="libx264"))
    for episode in range(2):
        add_frames(writer, episode * 10, 10, "pick")
        writer.save_episode()
    writer.wait()
    add_frames(writer, 20, 6, "pick")   # episode 3 in progress: its video is half written
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_sigkill_mid_episode_then_resume(tmp_path):
    root = tmp_path / "ds"
    tests = str(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    result = subprocess.run([sys.executable, "-c", CRASHER.format(tests=tests, root=str(root))], timeout=120)
    assert result.returncode == -signal.SIGKILL
    ds = DatasetReader(root)
    assert (ds.num_episodes, len(ds)) == (2, 20)
    assert [decode_counter(ds[i]["observation.images.front"]) for i in range(20)] == list(range(20))
    report = check(root)
    assert report.ok and any("unfinished episode" in w for w in report.warnings)

    writer = DatasetWriter.open(root, FPS, features(), video=VideoConfig(codec="libx264"), resume=True)
    add_frames(writer, 20, 8, "place")
    writer.save_episode()
    writer.close()
    ds = DatasetReader(root)
    assert (ds.num_episodes, len(ds), ds.tasks) == (3, 28, ["pick", "place"])
    assert [decode_counter(ds[i]["observation.images.front"]) for i in range(28)] == list(range(28))
    report = check(root)
    assert report.ok and not report.warnings


def test_repair_drops_files_of_an_uncommitted_episode_and_fixes_totals(tmp_path):
    root = tmp_path / "ds"
    write_dataset(root, lengths=(5, 6))
    # A crash after the data file and video were published but before the episode row was.
    (root / "data/chunk-000/file-002.parquet").write_bytes(
        (root / "data/chunk-000/file-001.parquet").read_bytes()
    )
    video = root / "videos/observation.images.front/chunk-000"
    (video / "file-002.mp4").write_bytes((video / "file-001.mp4").read_bytes())
    (root / "meta/info.json.edgevla-tmp").write_text("{")
    report = repair(root)
    assert (report.episodes, report.frames) == (2, 11)
    assert sorted(report.removed) == [
        "data/chunk-000/file-002.parquet",
        "meta/info.json.edgevla-tmp",
        "videos/observation.images.front/chunk-000/file-002.mp4",
    ]
    assert check(root).ok and not check(root).warnings


def test_not_a_dataset_dir_is_refused_and_left_alone(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(DatasetFormatError, match="exists and is not a LeRobotDataset"):
        DatasetWriter.open(tmp_path / "photos", FPS, features())
    with pytest.raises(DatasetFormatError, match="is not a LeRobotDataset"):
        DatasetReader(tmp_path / "photos")
    assert os.listdir(tmp_path / "photos") == ["cat.jpg"]


def test_existing_dataset_needs_resume(tmp_path):
    write_dataset(tmp_path / "ds", lengths=(4,))
    with pytest.raises(DatasetFormatError, match="pass --resume"):
        DatasetWriter.open(tmp_path / "ds", FPS, features())


def test_resume_with_other_features_is_refused_and_changes_nothing(tmp_path):
    write_dataset(tmp_path / "ds", lengths=(4,))
    before = sorted(p.stat().st_mtime_ns for p in (tmp_path / "ds").rglob("*") if p.is_file())
    with pytest.raises(DatasetFormatError, match=r"features differ .*'observation.images.wrist' is new"):
        DatasetWriter.open(tmp_path / "ds", FPS, features(cameras=("front", "wrist")), resume=True)
    with pytest.raises(DatasetFormatError, match="recorded at 30 fps, not 15"):
        DatasetWriter.open(tmp_path / "ds", 15, features(), resume=True)
    # repair() rewrote totals atomically, but the episode files are untouched and readable
    assert len(DatasetReader(tmp_path / "ds")) == 4
    assert len(before) == len([p for p in (tmp_path / "ds").rglob("*") if p.is_file()])


def test_frame_with_wrong_shape_is_refused(tmp_path):
    writer = DatasetWriter.open(tmp_path / "ds", FPS, features(), video=VideoConfig(codec="libx264"))
    with pytest.raises(DatasetFormatError, match="'observation.state' must have shape"):
        writer.add_frame(
            {
                "observation.state": np.zeros(5),
                "action": np.zeros(6),
                "observation.images.front": np.zeros((72, 96, 3), np.uint8),
            },
            "t",
        )
    writer.close()


def test_write_error_keeps_saved_episodes(tmp_path, monkeypatch):
    root = tmp_path / "ds"
    writer = DatasetWriter.open(root, FPS, features(), video=VideoConfig(codec="libx264"))
    add_frames(writer, 0, 8, "pick")
    writer.save_episode()
    writer.wait()
    real_write = durable_module.pq.write_table

    def disk_full(table, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(durable_module.pq, "write_table", disk_full)
    add_frames(writer, 8, 8, "pick")
    writer.save_episode()
    with pytest.raises(DatasetWriteError, match="disk full"):
        writer.wait()
    with pytest.raises(DatasetWriteError):  # the loop learns about it on its next call too
        add_frames(writer, 16, 1, "pick")
    monkeypatch.setattr(durable_module.pq, "write_table", real_write)
    ds = DatasetReader(root)
    assert (ds.num_episodes, len(ds)) == (1, 8)
    assert check(root).ok


def _mount_tmpfs(path, size):
    path.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    return result.returncode == 0


def test_real_disk_full_on_a_tiny_tmpfs(tmp_path):
    mount = tmp_path / "tiny"
    if not _mount_tmpfs(mount, "160k"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        writer = DatasetWriter.open(mount / "ds", FPS, features(), video=VideoConfig(codec="libx264"))
        saved = 0
        with pytest.raises(DatasetWriteError, match="disk full|No space"):
            for episode in range(200):
                add_frames(writer, episode * 10, 10, "pick")
                writer.save_episode()
                writer.wait()
                saved += 1
        assert saved >= 1
        writer.discard_episode()
        ds = DatasetReader(mount / "ds")
        assert ds.num_episodes >= saved
        assert [decode_counter(ds[i]["observation.images.front"]) for i in range(saved * 10)] == list(
            range(saved * 10)
        )
    finally:
        subprocess.run(["umount", str(mount)], check=False)
