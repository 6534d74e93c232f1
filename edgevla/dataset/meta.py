"""A dataset's metadata files: info.json, tasks, the per-episode rows (with their stats), stats.json."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from edgevla.dataset import durable
from edgevla.dataset.format import (
    CODEBASE_VERSION,
    EPISODES_DIR,
    INFO_PATH,
    STAT_NAMES,
    STATS_PATH,
    TASKS_PATH,
    DatasetFormatError,
    position_of,
    read_tasks,
    video_keys,
)
from edgevla.dataset.stats import Stats, aggregate
from edgevla.errors import first_line


@dataclass
class Episode:
    """One row of meta/episodes: where an episode's frames and videos are."""

    index: int
    length: int
    tasks: list[str]
    data_file: tuple[int, int]  # (chunk_index, file_index)
    from_index: int  # global frame index range [from_index, to_index)
    to_index: int
    videos: dict[str, tuple[tuple[int, int], float, float]]  # key -> ((chunk, file), from_ts, to_ts)
    stats: dict[str, Stats] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # columns lerobot does not define
    meta_file: tuple[int, int] = (0, 0)


def is_dataset(root: Path) -> bool:
    return (root / INFO_PATH).is_file()


def load_info(root: Path) -> dict[str, Any]:
    path = root / INFO_PATH
    if not path.is_file():
        what = "does not exist" if not root.exists() else "is not a LeRobotDataset (no meta/info.json)"
        raise DatasetFormatError(f"{root} {what}")
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DatasetFormatError(f"{path} is not readable JSON: {err}") from err
    version = info.get("codebase_version")
    if version != CODEBASE_VERSION:
        raise DatasetFormatError(
            f"{root} is a LeRobotDataset {version}, edgevla reads {CODEBASE_VERSION}; "
            "convert it with lerobot's convert_dataset_v21_to_v30 script"
        )
    for key in ("fps", "features", "data_path"):
        if key not in info:
            raise DatasetFormatError(f"{path} has no '{key}'")
    return info


def load_tasks(root: Path) -> list[str]:
    path = root / TASKS_PATH
    if not path.is_file():
        return []
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as err:
        raise DatasetFormatError(f"{path} is not a readable parquet file ({first_line(err)})") from err
    return read_tasks(table)


def load_stats(root: Path) -> dict[str, Stats]:
    """meta/stats.json: feature -> stat name -> array ({} when there is none)."""
    path = root / STATS_PATH
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DatasetFormatError(f"{path} is not readable JSON ({err})") from err
    if not isinstance(data, dict) or not all(isinstance(stats, dict) for stats in data.values()):
        raise DatasetFormatError(f"{path} is not a mapping of features to their statistics")
    stats: dict[str, Stats] = {}
    for key, named in data.items():
        stats[key] = {}
        for name, value in named.items():
            try:
                array = np.asarray(value)
            except ValueError:  # ragged nested lists
                array = np.asarray(None)
            if array.dtype.kind not in "biuf":
                raise DatasetFormatError(f"{path}: {key}.{name} is not an array of numbers")
            stats[key][name] = array
    return stats


def _episode_from_row(row: dict[str, Any], features: dict[str, dict], meta_file: tuple[int, int]) -> Episode:
    videos = {
        key: (
            (row[f"videos/{key}/chunk_index"], row[f"videos/{key}/file_index"]),
            row[f"videos/{key}/from_timestamp"],
            row[f"videos/{key}/to_timestamp"],
        )
        for key in video_keys(features)
    }
    stats: dict[str, Stats] = {}
    for key in features:
        if f"stats/{key}/count" in row:
            stats[key] = {
                name: np.asarray(row[f"stats/{key}/{name}"])
                for name in STAT_NAMES
                if f"stats/{key}/{name}" in row
            }
    known = {"episode_index", "tasks", "length", "data/chunk_index", "data/file_index"}
    known |= {
        "dataset_from_index",
        "dataset_to_index",
        "meta/episodes/chunk_index",
        "meta/episodes/file_index",
    }
    extra = {k: v for k, v in row.items() if k not in known and not k.startswith(("stats/", "videos/"))}
    return Episode(
        index=row["episode_index"],
        length=row["length"],
        tasks=list(row["tasks"]),
        data_file=(row["data/chunk_index"], row["data/file_index"]),
        from_index=row["dataset_from_index"],
        to_index=row["dataset_to_index"],
        videos=videos,
        stats=stats,
        extra=extra,
        meta_file=meta_file,
    )


def episode_files(root: Path) -> list[Path]:
    return sorted((root / EPISODES_DIR).glob("chunk-*/file-*.parquet"))


def load_episodes(root: Path, features: dict[str, dict]) -> list[Episode]:
    """All episode rows sorted by episode_index (rows may be spread over several files)."""
    episodes = []
    for path in episode_files(root):
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowInvalid) as err:
            raise DatasetFormatError(f"{path} is not a readable parquet file: {err}") from err
        meta_file = position_of(path)
        try:
            episodes += [_episode_from_row(row, features, meta_file) for row in table.to_pylist()]
        except KeyError as err:
            raise DatasetFormatError(f"{path} lacks the episode column {err}") from err
    episodes.sort(key=lambda episode: episode.index)
    return episodes


_INT_DTYPES = ("int64", "int32", "int16", "int8", "uint8", "bool")


def episode_table(episode: Episode, features: dict[str, dict], episode_metadata: dict[str, str]) -> pa.Table:
    """The one-row meta/episodes parquet of `episode`, with lerobot's columns and types."""
    columns: dict[str, pa.Array] = {
        "episode_index": pa.array([episode.index], pa.int64()),
        "tasks": pa.array([episode.tasks], pa.list_(pa.string())),
        "length": pa.array([episode.length], pa.int64()),
        "data/chunk_index": pa.array([episode.data_file[0]], pa.int64()),
        "data/file_index": pa.array([episode.data_file[1]], pa.int64()),
        "dataset_from_index": pa.array([episode.from_index], pa.int64()),
        "dataset_to_index": pa.array([episode.to_index], pa.int64()),
    }
    for key, ((chunk, file), start, end) in episode.videos.items():
        columns[f"videos/{key}/chunk_index"] = pa.array([chunk], pa.int64())
        columns[f"videos/{key}/file_index"] = pa.array([file], pa.int64())
        columns[f"videos/{key}/from_timestamp"] = pa.array([start], pa.float64())
        columns[f"videos/{key}/to_timestamp"] = pa.array([end], pa.float64())
    for key, stats in episode.stats.items():
        integer = features[key]["dtype"] in _INT_DTYPES
        for name in STAT_NAMES:
            value = np.asarray(stats[name])
            leaf = pa.int64() if name == "count" or (integer and name in ("min", "max")) else pa.float64()
            list_type = leaf
            for _ in range(value.ndim):
                list_type = pa.list_(list_type)
            columns[f"stats/{key}/{name}"] = pa.array([value.tolist()], list_type)
    columns["meta/episodes/chunk_index"] = pa.array([episode.meta_file[0]], pa.int64())
    columns["meta/episodes/file_index"] = pa.array([episode.meta_file[1]], pa.int64())
    for name, dtype in episode_metadata.items():
        columns[name] = pa.array([episode.extra[name]], pa.from_numpy_dtype(dtype))
    return pa.table(columns)


def write_totals(
    root: Path, info: dict, episodes: int, frames: int, tasks: int, episode_stats: list[dict]
) -> None:
    """Rewrite info.json totals and stats.json (aggregated over `episode_stats`) durably."""
    info.update(
        total_episodes=episodes, total_frames=frames, total_tasks=tasks, splits={"train": f"0:{episodes}"}
    )
    keys = [key for key in info["features"] if all(key in stats for stats in episode_stats)]
    stats = {key: aggregate([s[key] for s in episode_stats]) for key in keys} if episode_stats else {}
    durable.write_json(
        root, root / STATS_PATH, {k: {n: v.tolist() for n, v in s.items()} for k, s in stats.items()}
    )
    durable.write_json(root, root / INFO_PATH, info)
