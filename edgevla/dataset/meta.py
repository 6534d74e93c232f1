"""Loading a dataset's metadata: info.json, tasks, and the per-episode rows (with their stats)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from edgevla.dataset.format import (
    CODEBASE_VERSION,
    EPISODES_DIR,
    INFO_PATH,
    STAT_NAMES,
    TASKS_PATH,
    DatasetFormatError,
    read_tasks,
    video_keys,
)
from edgevla.dataset.stats import Stats


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
    return read_tasks(pq.read_table(path))


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
        meta_file = (int(path.parent.name.split("-")[1]), int(path.stem.split("-")[1]))
        try:
            episodes += [_episode_from_row(row, features, meta_file) for row in table.to_pylist()]
        except KeyError as err:
            raise DatasetFormatError(f"{path} lacks the episode column {err}") from err
    episodes.sort(key=lambda episode: episode.index)
    return episodes
