"""LeRobotDataset v3.0 layout: paths, info.json, and the arrow schemas lerobot 0.4.x reads.

Facts checked against a dataset written by lerobot 0.4.4 (tests/fixtures/lerobot_v30).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from edgevla.errors import EdgevlaError

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000  # files per chunk folder
DATA_FILES_SIZE_IN_MB = 100
VIDEO_FILES_SIZE_IN_MB = 200
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_DIR = "meta/episodes"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
PARTIAL_DIR = ".partial"  # in-progress episode videos; inside the dataset so a rename publishes them
EPISODES_PATH = EPISODES_DIR + "/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
STAT_NAMES = ("min", "max", "mean", "std", "count", *QUANTILES)

# Columns every frame carries besides the user's features (lerobot's DEFAULT_FEATURES).
DEFAULT_FEATURES: dict[str, dict[str, Any]] = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
VISUAL_DTYPES = ("video", "image")
NUMERIC_DTYPES = ("float32", "float64", "int64", "int32", "int16", "int8", "uint8", "bool")


class DatasetFormatError(EdgevlaError):
    """A directory is not a (readable) LeRobotDataset v3.0, or features do not match."""


def chunk_file(position: int) -> tuple[int, int]:
    """The n-th file of a kind (0-based) lives at (chunk_index, file_index)."""
    return divmod(position, CHUNKS_SIZE)


def position_of(path: Path) -> tuple[int, int]:
    """(chunk_index, file_index) of a `chunk-CCC/file-FFF.ext` path."""
    return int(path.parent.name.split("-")[1]), int(path.stem.split("-")[1])


def video_keys(features: dict[str, dict]) -> list[str]:
    return [key for key, ft in features.items() if ft["dtype"] == "video"]


def arrow_type(feature: dict[str, Any]) -> pa.DataType:
    """How a non-visual feature is stored in the data parquet (scalar or fixed-size list)."""
    dtype, shape = feature["dtype"], tuple(feature["shape"])
    scalar = pa.from_numpy_dtype(dtype)
    if shape == (1,):
        return scalar
    if len(shape) == 1:
        return pa.list_(scalar, shape[0])
    raise DatasetFormatError(f"feature shape {list(shape)} is not supported (only scalars and vectors)")


def data_schema(features: dict[str, dict]) -> pa.Schema:
    """Schema of data/*.parquet: every non-video feature, in info.json order, with HF metadata."""
    fields, hf_features = [], {}
    for key, ft in features.items():
        if ft["dtype"] in VISUAL_DTYPES:
            continue
        fields.append(pa.field(key, arrow_type(ft)))
        value = {"dtype": ft["dtype"], "_type": "Value"}
        shape = tuple(ft["shape"])
        hf_features[key] = value if shape == (1,) else {"feature": value, "length": shape[0], "_type": "List"}
    # The `huggingface` metadata lets `datasets` restore the feature types without info.json.
    metadata = {b"huggingface": json.dumps({"info": {"features": hf_features}}).encode()}
    return pa.schema(fields, metadata=metadata)


def tasks_table(tasks: list[str]) -> pa.Table:
    """meta/tasks.parquet as lerobot writes it: a pandas frame indexed by the task string."""
    pandas_metadata = {
        "index_columns": ["__index_level_0__"],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {
                "name": None,
                "field_name": "__index_level_0__",
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            },
        ],
        "attributes": {},
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.0",
    }
    schema = pa.schema(
        [pa.field("task_index", pa.int64()), pa.field("__index_level_0__", pa.large_string())],
        metadata={b"pandas": json.dumps(pandas_metadata).encode()},
    )
    return pa.table(
        [pa.array(range(len(tasks)), pa.int64()), pa.array(tasks, pa.large_string())], schema=schema
    )


def read_tasks(table: pa.Table) -> list[str]:
    """Task strings by task_index, from lerobot's pandas layout or a plain `task` column."""
    names = table.column_names
    text_column = "__index_level_0__" if "__index_level_0__" in names else "task"
    if text_column not in names or "task_index" not in names:
        raise DatasetFormatError(
            f"meta/tasks.parquet has columns {names}; expected task_index and the task text"
        )
    by_index = dict(
        zip(table.column("task_index").to_pylist(), table.column(text_column).to_pylist(), strict=True)
    )
    return [by_index[i] for i in range(len(by_index))]


def new_info(fps: int, features: dict[str, dict], robot_type: str | None) -> dict[str, Any]:
    return {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robot_type,
        "total_episodes": 0,
        "total_frames": 0,
        "total_tasks": 0,
        "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": DATA_FILES_SIZE_IN_MB,
        "video_files_size_in_mb": VIDEO_FILES_SIZE_IN_MB,
        "fps": fps,
        "splits": {},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if video_keys(features) else None,
        "features": features,
    }


def joint_feature(joint_names: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """A float32 vector of joint positions, named like lerobot's ("shoulder_pan.pos", ...)."""
    names = [f"{joint}.pos" for joint in joint_names]
    return {"dtype": "float32", "shape": [len(names)], "names": names}


def video_feature(height: int, width: int) -> dict[str, Any]:
    """A camera stored as video frames of `height` x `width` RGB."""
    return {"dtype": "video", "shape": [height, width, 3], "names": ["height", "width", "channels"]}


def with_default_features(features: dict[str, dict]) -> dict[str, dict]:
    """The user's features (lists for shapes, as in info.json) followed by the frame columns."""
    clash = set(features) & set(DEFAULT_FEATURES)
    if clash:
        raise DatasetFormatError(f"feature names {sorted(clash)} are reserved for the frame columns")
    merged: dict[str, dict] = {}
    for key, ft in features.items():
        if "/" in key:
            raise DatasetFormatError(f"feature name '{key}' must not contain '/'")
        if ft["dtype"] not in VISUAL_DTYPES + NUMERIC_DTYPES:
            raise DatasetFormatError(f"feature '{key}' has unsupported dtype '{ft['dtype']}'")
        merged[key] = {**ft, "shape": list(ft["shape"])}
    return merged | {key: dict(ft) for key, ft in DEFAULT_FEATURES.items()}
