"""Damaged and hostile dataset files: symlinks leading out, truncated videos, altered or
unreadable data, a broken stats.json, an empty dataset. Nothing outside a dataset is ever
written or deleted; `check` reports each problem, `repair` drops and names damaged episodes
and keeps every other one."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from edgevla.cameras.synthetic import decode_counter
from edgevla.dataset import DatasetReader, DatasetWriter, VideoConfig, repair
from edgevla.dataset import durable as durable_module
from edgevla.dataset.check import check
from edgevla.dataset.format import DatasetFormatError

from .helpers import FIXTURE, FPS, add_frames, features, write_dataset

WRIST = "videos/observation.images.wrist/chunk-000"


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "edgevla", "dataset", *args], capture_output=True, text=True, timeout=120
    )


def _outside(tmp_path):
    """A folder of someone else's files next to the dataset."""
    folder = tmp_path / "precious"
    folder.mkdir()
    for name in ("file-000.parquet", "file-007.parquet", "file-000.mp4", "episode-000000"):
        (folder / name).write_text("not the dataset's")
    return folder


@pytest.mark.parametrize("link", ["data/chunk-001", "videos/observation.images.front/chunk-001", ".partial"])
def test_symlink_out_of_the_dataset_is_refused_and_nothing_outside_is_touched(tmp_path, link):
    root = tmp_path / "ds"
    write_dataset(root, lengths=(5, 6))
    outside = _outside(tmp_path)
    (root / link).parent.mkdir(parents=True, exist_ok=True)
    (root / link).symlink_to(outside)
    before = sorted(p.name for p in outside.iterdir())

    with pytest.raises(DatasetFormatError, match=f"{root / link} is a symlink to {outside}, outside"):
        repair(root)
    with pytest.raises(DatasetFormatError, match="changed nothing"):
        DatasetWriter.open(root, FPS, features(), video=VideoConfig(codec="libx264"), resume=True)
    result = _cli("repair", str(root))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and link in result.stderr
    assert sorted(p.name for p in outside.iterdir()) == before
    assert DatasetReader(root).num_episodes == 2  # the dataset itself is untouched too


def test_writer_refuses_to_save_through_a_symlink_planted_while_recording(tmp_path):
    root = tmp_path / "ds"
    writer = DatasetWriter.open(root, FPS, features(), video=VideoConfig(codec="libx264"))
    add_frames(writer, 0, 6, "pick")
    outside = _outside(tmp_path)
    (root / "data").mkdir()
    (root / "data/chunk-000").symlink_to(outside)  # where the episode's data file would go
    writer.save_episode()
    with pytest.raises(DatasetFormatError, match="data/chunk-000 is a symlink"):
        writer.wait()
    assert sorted(p.name for p in outside.iterdir()) == [
        "episode-000000",
        "file-000.mp4",
        "file-000.parquet",
        "file-007.parquet",
    ]
    assert (outside / "file-000.parquet").read_text() == "not the dataset's"


def test_a_symlink_that_stays_inside_the_dataset_is_fine(tmp_path):
    root = tmp_path / "ds"
    write_dataset(root, lengths=(5, 6))
    (root / "scratch").mkdir()
    (root / ".partial").symlink_to(root / "scratch")
    (root / "scratch/left.mp4").write_bytes(b"half an episode")
    report = repair(root)
    assert (report.episodes, report.removed) == (2, [".partial/left.mp4"])
    assert not (root / ".partial").exists() and (root / "scratch").is_dir()


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_truncated_video_drops_that_episode_and_keeps_the_others(tmp_path):
    root = tmp_path / "ds"
    write_dataset(root, lengths=(5, 6, 7, 4), cameras=("front", "wrist"))
    _truncate(root / WRIST / "file-001.mp4")
    assert any("episode 1: video" in e and "file-001.mp4" in e for e in check(root).errors)

    result = _cli("repair", str(root))
    assert result.returncode == 0, result.stderr
    assert "dropped episode 1: video videos/observation.images.wrist/chunk-000/file-001.mp4" in result.stderr
    assert "3 episode(s), 16 frame(s) intact; dropped 1 damaged episode(s) (1)" in result.stdout
    report = check(root)
    assert report.ok and not report.warnings, report.errors
    ds = DatasetReader(root)
    assert [(e.index, e.from_index, e.to_index) for e in ds.episodes] == [(0, 0, 5), (1, 5, 12), (2, 12, 16)]
    kept = [*range(5), *range(11, 22)]  # the drawn counters of episodes 0, 2 and 3
    for key in ("observation.images.front", "observation.images.wrist"):
        assert [decode_counter(ds[i][key]) for i in range(16)] == kept
    assert ds.columns["episode_index"].tolist() == [0] * 5 + [1] * 7 + [2] * 4
    assert str(repair(root)) == "3 episode(s), 16 frame(s) intact"  # idempotent

    writer = DatasetWriter.open(
        root, FPS, features(("front", "wrist")), video=VideoConfig(codec="libx264"), resume=True
    )
    add_frames(writer, 100, 3, "pick", cameras=("front", "wrist"))
    writer.save_episode()
    writer.close()
    assert DatasetReader(root).num_episodes == 4 and check(root).ok


def test_altered_rows_in_a_shared_lerobot_data_file_drop_only_their_episode(tmp_path):
    root = tmp_path / "theirs"
    shutil.copytree(FIXTURE, root)
    data = root / "data/chunk-000/file-000.parquet"
    table = pq.read_table(data)
    column = table.schema.get_field_index("observation.state")
    states = table["observation.state"].combine_chunks().flatten().to_numpy().reshape(-1, 6).copy()
    states[14] = 1e6  # a frame of episode 1 (frames 12..20) now disagrees with its saved stats
    values = pa.FixedSizeListArray.from_arrays(pa.array(states.reshape(-1), pa.float32()), 6)
    pq.write_table(table.set_column(column, table.schema.field(column), values), data)
    assert any("episode 1: 'observation.state' values disagree" in e for e in check(root).errors)

    report = repair(root)
    assert list(report.dropped) == [1] and (report.episodes, report.frames) == (2, 19)
    assert check(root).ok, check(root).errors
    ds = DatasetReader(root)
    assert [decode_counter(ds[i]["observation.images.front"]) for i in range(19)] == [
        *range(12),
        *range(21, 28),
    ]
    assert ds.tasks == ["pick the red cube", "push the block left"]
    assert not data.exists()  # replaced by a file without the dropped rows


def test_an_interrupted_repair_is_finished_by_running_it_again(tmp_path, monkeypatch):
    root = tmp_path / "ds"
    write_dataset(root, lengths=(5, 6, 7, 4))
    _truncate(root / "videos/observation.images.front/chunk-000/file-000.mp4")
    real_write = durable_module.write_parquet
    written = []

    def crash_after_two_episode_rows(root_, path, table):
        if "meta/episodes" in str(path) and len(written) == 2:
            raise KeyboardInterrupt  # the process dies here
        real_write(root_, path, table)
        written.append(path) if "meta/episodes" in str(path) else None

    monkeypatch.setattr(durable_module, "write_parquet", crash_after_two_episode_rows)
    with pytest.raises(KeyboardInterrupt):
        repair(root)
    monkeypatch.setattr(durable_module, "write_parquet", real_write)
    report = repair(root)
    assert (report.episodes, report.frames) == (3, 17)
    assert check(root).ok, check(root).errors
    ds = DatasetReader(root)
    assert [decode_counter(ds[i]["observation.images.front"]) for i in range(17)] == list(range(5, 22))


def test_repair_drops_nothing_when_every_episode_is_damaged(tmp_path):
    root = tmp_path / "ds"
    write_dataset(root, lengths=(5, 6))
    shutil.rmtree(root / "videos")  # a copy that left the videos behind
    files = sorted(p for p in root.rglob("*") if p.is_file())
    with pytest.raises(
        DatasetFormatError, match="every episode are damaged or missing .* nothing was changed"
    ):
        repair(root)
    assert sorted(p for p in root.rglob("*") if p.is_file()) == files


def test_check_catches_a_state_shape_that_disagrees_with_the_data(tmp_path):
    root = tmp_path / "ds"
    write_dataset(root, lengths=(5, 6))
    info = json.loads((root / "meta/info.json").read_text())
    info["features"]["observation.state"]["shape"] = [7]
    (root / "meta/info.json").write_text(json.dumps(info))
    errors = check(root).errors
    assert (
        "data file data/chunk-000/file-000.parquet: 'observation.state' has 6 value(s) per frame, "
        "info.json says shape [7]" in errors
    )
    with pytest.raises(DatasetFormatError, match="'observation.state' has 6 value"):
        DatasetReader(root)


def test_check_catches_a_kilobyte_of_garbage_anywhere_in_a_data_file(tmp_path):
    root = tmp_path / "ds"
    write_dataset(root, lengths=(40, 30))
    data = root / "data/chunk-000/file-000.parquet"
    original = data.read_bytes()
    rng = np.random.default_rng(19)
    for offset in range(0, len(original) - 1024, 256):
        damaged = bytearray(original)
        damaged[offset : offset + 1024] = rng.bytes(1024)
        data.write_bytes(bytes(damaged))
        assert not check(root).ok, f"1 KB of garbage at byte {offset} went unnoticed"
    report = repair(root)
    assert list(report.dropped) == [0] and check(root).ok


def test_broken_stats_json_is_reported_and_repaired(tmp_path):
    root = tmp_path / "ds"
    write_dataset(root, lengths=(5, 6))
    (root / "meta/stats.json").write_text("{")
    assert any("meta/stats.json is not readable JSON" in e for e in check(root).errors)
    with pytest.raises(DatasetFormatError, match="stats.json is not readable JSON"):
        DatasetReader(root).stats  # noqa: B018 - the property reads the file
    repair(root)
    assert check(root).ok and DatasetReader(root).stats["observation.state"]["count"].tolist() == [11]


def test_an_empty_dataset_is_valid_and_stays_valid_after_repair(tmp_path):
    root = tmp_path / "ds"
    DatasetWriter.open(root, FPS, features(), video=VideoConfig(codec="libx264")).close()
    assert check(root).ok and not check(root).warnings
    (root / "meta/tasks.parquet").unlink()  # as written before edgevla made empty datasets valid
    assert not check(root).ok
    assert str(repair(root)) == "0 episode(s), 0 frame(s) intact"
    assert check(root).ok
    writer = DatasetWriter.open(root, FPS, features(), video=VideoConfig(codec="libx264"), resume=True)
    add_frames(writer, 0, 4, "pick")
    writer.save_episode()
    writer.close()
    assert DatasetReader(root).num_episodes == 1 and check(root).ok


def test_a_file_is_not_a_dataset_folder(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("keep me")
    with pytest.raises(DatasetFormatError, match="notes.txt is a file, not a folder"):
        DatasetWriter.open(path, FPS, features())
    assert path.read_text() == "keep me"
