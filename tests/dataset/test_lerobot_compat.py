"""edgevla reads a dataset recorded by lerobot 0.4.4, and writes files with the same schema."""

import json
import shutil

import av
import numpy as np
import pyarrow.parquet as pq
import pytest

from edgevla.cameras.synthetic import decode_counter
from edgevla.dataset import DatasetReader, DatasetWriter, VideoConfig
from edgevla.dataset.check import check

from .helpers import FIXTURE, FPS, add_frames, features, write_dataset


def test_reads_lerobot_dataset_frames_tasks_and_video_at_the_right_timestamps():
    ds = DatasetReader(FIXTURE)
    assert (len(ds), ds.num_episodes, ds.fps) == (28, 3, 30)
    assert ds.tasks == ["pick the red cube", "push the block left"]
    assert [(e.from_index, e.to_index) for e in ds.episodes] == [(0, 12), (12, 21), (21, 28)]
    # The three episodes share one mp4; the drawn counter shows each frame maps to its own image.
    for index in range(len(ds)):
        item = ds[index]
        assert decode_counter(item["observation.images.front"]) == index
        assert item["task"] == ds.tasks[int(item["task_index"])]
    item = ds[13]
    assert (item["episode_index"], item["frame_index"], item["task"]) == (1, 1, "push the block left")
    assert item["observation.state"].shape == (6,) and item["observation.state"].dtype == np.float32


def test_action_chunk_pads_past_the_episode_end_like_lerobot():
    ds = DatasetReader(FIXTURE)
    actions, is_pad = ds.action_chunk(9, 5)
    assert is_pad.tolist() == [False, False, False, True, True]
    np.testing.assert_array_equal(actions[3], ds.columns["action"][11])
    np.testing.assert_array_equal(actions[:3], ds.columns["action"][9:12])


def test_reads_lerobot_stats():
    stats = DatasetReader(FIXTURE).stats
    assert set(stats["action"]) == {"min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99"}
    assert stats["observation.images.front"]["mean"].shape == (3, 1, 1)
    assert stats["action"]["count"].tolist() == [28]


def test_check_accepts_the_lerobot_fixture():
    report = check(FIXTURE)
    assert report.ok, report.errors
    assert (report.episodes, report.frames) == (3, 28)


@pytest.fixture(scope="module")
def ours(tmp_path_factory):
    root = tmp_path_factory.mktemp("ours") / "ds"
    write_dataset(root, codec="libsvtav1", episode_metadata={"recording/late_frames": "int64"})
    return root


def _json(path):
    return json.loads(path.read_text())


def test_info_json_matches_lerobot(ours):
    theirs, mine = _json(FIXTURE / "meta/info.json"), _json(ours / "meta/info.json")
    assert set(mine) == set(theirs)
    for key in (
        "codebase_version",
        "chunks_size",
        "data_files_size_in_mb",
        "video_files_size_in_mb",
        "data_path",
        "video_path",
        "fps",
        "robot_type",
    ):
        assert mine[key] == theirs[key], key
    assert list(mine["features"]) == list(theirs["features"])
    assert mine["features"] == theirs["features"]  # incl. names and the video info block (av1, yuv420p)
    assert (mine["total_episodes"], mine["splits"]) == (2, {"train": "0:2"})


def _schema(path):
    schema = pq.read_schema(path)
    return [(field.name, str(field.type)) for field in schema]


def test_data_and_tasks_parquet_match_lerobot(ours):
    data = "data/chunk-000/file-000.parquet"
    assert _schema(ours / data) == _schema(FIXTURE / data)
    assert pq.read_schema(ours / data).metadata.keys() == pq.read_schema(FIXTURE / data).metadata.keys()
    assert _schema(ours / "meta/tasks.parquet") == _schema(FIXTURE / "meta/tasks.parquet")
    pandas = [
        json.loads(pq.read_schema(root / "meta/tasks.parquet").metadata[b"pandas"])
        for root in (ours, FIXTURE)
    ]
    assert pandas[0]["index_columns"] == pandas[1]["index_columns"] == ["__index_level_0__"]


def test_episodes_metadata_matches_lerobot(ours):
    theirs = _schema(FIXTURE / "meta/episodes/chunk-000/file-000.parquet")
    mine = _schema(ours / "meta/episodes/chunk-000/file-000.parquet")
    assert mine[: len(theirs)] == theirs  # same columns, types and order...
    assert mine[len(theirs) :] == [("recording/late_frames", "int64")]  # ...plus our recording counters


def test_stats_json_matches_lerobot(ours):
    theirs, mine = _json(FIXTURE / "meta/stats.json"), _json(ours / "meta/stats.json")
    assert set(mine) == set(theirs)
    for key in theirs:
        assert set(mine[key]) == set(theirs[key]), key
        for stat in theirs[key]:
            assert np.shape(mine[key][stat]) == np.shape(theirs[key][stat]), (key, stat)


def test_reads_lerobot_dataset_with_images_in_parquet():
    ds = DatasetReader(FIXTURE.parent / "lerobot_v30_images")
    assert (len(ds), ds.num_episodes, ds.camera_keys, ds.image_keys) == (
        9,
        2,
        [],
        ["observation.images.front"],
    )
    for index in range(len(ds)):
        image = ds[index]["observation.images.front"]
        assert image.shape == (72, 96, 3) and image.dtype == np.uint8
        assert decode_counter(image) == index  # PNG is lossless, but the code must still be found
    assert check(FIXTURE.parent / "lerobot_v30_images").ok


def test_appending_to_a_lerobot_dataset_keeps_its_files_and_codec(tmp_path):
    root = tmp_path / "theirs"
    shutil.copytree(FIXTURE, root)
    writer = DatasetWriter.open(root, FPS, features(), video=VideoConfig(codec="libx264"), resume=True)
    add_frames(writer, 28, 6, "a new task")
    writer.save_episode()
    writer.close()
    ds = DatasetReader(root)
    assert (ds.num_episodes, len(ds), ds.tasks[-1]) == (4, 34, "a new task")
    assert [decode_counter(ds[i]["observation.images.front"]) for i in range(34)] == list(range(34))
    assert ds.episodes[3].data_file == (0, 1) and ds.episodes[3].videos["observation.images.front"][0] == (
        0,
        1,
    )
    with av.open(str(ds.video_path("observation.images.front", 3))) as container:
        assert container.streams.video[0].codec_context.name in ("libdav1d", "av1", "libaom-av1")
    assert check(root).ok
