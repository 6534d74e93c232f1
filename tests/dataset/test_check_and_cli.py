"""`edgevla dataset check` finds what breaks training; the CLI reports it in plain lines."""

import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from edgevla.dataset.check import check

from .helpers import FPS, write_dataset


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "ds"
    write_dataset(root, lengths=(10, 8))
    return root


def _edit_timestamps(path, edit):
    table = pq.read_table(path)
    timestamps = edit(table["timestamp"].to_numpy().copy())
    index = table.schema.get_field_index("timestamp")
    pq.write_table(
        table.set_column(index, table.schema.field(index), pa.array(timestamps, pa.float32())), path
    )


def test_timestamp_gap_is_reported(dataset):
    def skip_a_frame(ts):
        ts[5:] += np.float32(1 / FPS)
        return ts

    _edit_timestamps(dataset / "data/chunk-000/file-001.parquet", skip_a_frame)
    report = check(dataset)
    assert not report.ok
    assert any("episode 1: 1 timestamp gap(s), first after frame 4" in e for e in report.errors)


def test_video_with_a_different_frame_count_is_reported(dataset):
    videos = dataset / "videos/observation.images.front/chunk-000"
    (videos / "file-001.mp4").write_bytes((videos / "file-000.mp4").read_bytes())  # 10 frames, not 8
    report = check(dataset)
    assert (
        "video videos/observation.images.front/chunk-000/file-001.mp4 has 10 frames, its episodes have 8"
        in report.errors
    )


def test_missing_video_and_wrong_totals_are_reported_and_totals_repairable(dataset):
    info = json.loads((dataset / "meta/info.json").read_text())
    info["total_frames"] = 999
    (dataset / "meta/info.json").write_text(json.dumps(info))
    (dataset / "videos/observation.images.front/chunk-000/file-000.mp4").unlink()
    errors = check(dataset).errors
    assert any("999 frames" in e and "repair" in e for e in errors)
    assert any(
        "episode 0: video videos/observation.images.front/chunk-000/file-000.mp4 is missing" in e
        for e in errors
    )


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "edgevla", "dataset", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_info_check_and_repair(dataset):
    info = json.loads(_cli("info", str(dataset), "--json").stdout)
    assert (info["episodes"], info["frames"], info["tasks"]) == (2, 18, ["pick", "place"])
    ok = _cli("check", str(dataset))
    assert ok.returncode == 0 and "OK (2 episodes, 18 frames)" in ok.stdout
    (dataset / "data/chunk-000/file-005.parquet").write_bytes(b"left by a crash")
    repaired = _cli("repair", str(dataset))
    assert repaired.returncode == 0 and "removed 1 leftover file" in repaired.stdout
    assert not (dataset / "data/chunk-000/file-005.parquet").exists()


def test_cli_check_exit_code_and_not_a_dataset(dataset, tmp_path):
    _edit_timestamps(dataset / "data/chunk-000/file-000.parquet", lambda ts: ts * 2)
    bad = _cli("check", str(dataset))
    assert bad.returncode == 1 and "error: episode 0" in bad.stderr
    missing = _cli("check", str(tmp_path))
    assert missing.returncode == 2
    assert missing.stderr.strip().count("\n") == 0 and "is not a LeRobotDataset" in missing.stderr
    assert "Traceback" not in missing.stderr
