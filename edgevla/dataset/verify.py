"""Whether a dataset's files hold what its metadata says.

Shared by `dataset check` (reports every problem), `repair` (drops the episodes whose files are
damaged) and the reader (refuses a data file that disagrees with info.json). An episode is
damaged when its data rows cannot be read or are missing, when its values disagree with the
statistics saved with it (bytes changed inside the file), or when one of its videos is missing,
unreadable or short of frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from edgevla.dataset.format import DATA_PATH, DEFAULT_FEATURES, VIDEO_PATH, VISUAL_DTYPES
from edgevla.dataset.meta import Episode
from edgevla.dataset.stats import numeric_stats
from edgevla.dataset.video import DamagedVideoError, frame_times
from edgevla.errors import first_line


def values_per_frame(column_type: pa.DataType, column: pa.ChunkedArray) -> int | None:
    """How many values each row of a data column holds (None: rows of different lengths)."""
    if pa.types.is_fixed_size_list(column_type):
        return column_type.list_size
    if pa.types.is_list(column_type) or pa.types.is_large_list(column_type):
        lengths = pc.unique(pc.list_value_length(column)).to_pylist()
        return lengths[0] if len(lengths) == 1 else None
    return 1


def column_mismatches(table: pa.Table, features: dict[str, dict]) -> list[str]:
    """The non-visual features of info.json that a data file lacks or stores with another shape."""
    problems = []
    for key, feature in features.items():
        if feature["dtype"] in VISUAL_DTYPES:
            continue
        if key not in table.column_names:
            problems.append(f"it has no column '{key}'")
            continue
        wanted = int(np.prod(feature["shape"]))
        have = values_per_frame(table.schema.field(key).type, table.column(key))
        if have != wanted:
            stored = "rows of different lengths" if have is None else f"{have} value(s) per frame"
            problems.append(f"'{key}' has {stored}, info.json says shape {list(feature['shape'])}")
    return problems


def column_values(column: pa.ChunkedArray) -> np.ndarray:
    """A numeric column as (rows,) or (rows, dim)."""
    column = column.combine_chunks()
    if pa.types.is_fixed_size_list(column.type):
        return column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), column.type.list_size)
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        return np.asarray(column.to_pylist())
    return column.to_numpy(zero_copy_only=False)


def stats_disagreement(rows: pa.Table, episode: Episode, features: dict[str, dict]) -> str | None:
    """The first recorded feature whose values no longer give the min/max/mean saved with the
    episode (computed from the same rows when it was written). Frame bookkeeping columns are
    left to the structural checks of `dataset check`."""
    for key, stats in episode.stats.items():
        if key in DEFAULT_FEATURES or key not in rows.column_names:
            continue
        if features.get(key, {}).get("dtype") in VISUAL_DTYPES:
            continue
        values = column_values(rows.column(key))
        if len(values) == 0 or not {"min", "max", "mean"} <= stats.keys():
            continue
        now = numeric_stats(values)
        scale = max(float(np.max(np.abs(now["max"]))), float(np.max(np.abs(now["min"]))), 1.0)
        for name, rtol in (("min", 1e-6), ("max", 1e-6), ("mean", 1e-4)):
            saved = np.asarray(stats[name], np.float64).reshape(-1)
            current = np.asarray(now[name], np.float64).reshape(-1)
            if saved.shape != current.shape or not np.allclose(current, saved, rtol=rtol, atol=rtol * scale):
                return (
                    f"'{key}' values disagree with the {name} saved with the episode: "
                    "the data file was changed or is corrupt"
                )
    return None


class EpisodeFiles:
    """Reads each data file and each video's frame times once, for all the episodes that use it."""

    def __init__(self, root: Path, features: dict[str, dict], tolerance_s: float = 1e-4):
        self.root, self.features, self.tolerance_s = root, features, tolerance_s
        self._tables: dict[tuple[int, int], pa.Table | str] = {}
        self.video_times: dict[Path, np.ndarray | str] = {}

    def data_path(self, data_file: tuple[int, int]) -> Path:
        return self.root / DATA_PATH.format(chunk_index=data_file[0], file_index=data_file[1])

    def video_path(self, key: str, position: tuple[int, int]) -> Path:
        return self.root / VIDEO_PATH.format(video_key=key, chunk_index=position[0], file_index=position[1])

    def table(self, data_file: tuple[int, int]) -> pa.Table | str:
        """The whole data file, or why it cannot be read."""
        if data_file not in self._tables:
            path = self.data_path(data_file)
            try:
                self._tables[data_file] = pq.read_table(path)
            except (OSError, pa.ArrowException) as err:
                self._tables[data_file] = (
                    f"data file {path.relative_to(self.root)} unreadable ({first_line(err)})"
                )
        return self._tables[data_file]

    def rows(self, episode: Episode) -> pa.Table | str:
        table = self.table(episode.data_file)
        if isinstance(table, str):
            return table
        if "episode_index" not in table.column_names:
            return (
                f"data file {self.data_path(episode.data_file).relative_to(self.root)} has no episode_index"
            )
        return table.filter(pc.equal(table["episode_index"], episode.index))

    def frame_times(self, path: Path) -> np.ndarray | str:
        """Presentation times of every frame of a video, or why there are none."""
        if path not in self.video_times:
            if not path.is_file():
                self.video_times[path] = f"video {path.relative_to(self.root)} is missing"
            else:
                try:
                    self.video_times[path] = frame_times(path)
                except DamagedVideoError as err:
                    self.video_times[path] = f"video {path.relative_to(self.root)} unreadable ({err.reason})"
        return self.video_times[path]

    def video_frames_in(self, times: np.ndarray, start: float, end: float) -> int:
        tolerance = self.tolerance_s
        return int(np.count_nonzero((times >= start - tolerance) & (times < end - tolerance)))

    def damage(self, episode: Episode) -> str | None:
        """Why the files of `episode` cannot be trained on, or None when they are whole."""
        rows = self.rows(episode)
        if isinstance(rows, str):
            return rows
        if rows.num_rows != episode.length:
            return f"{rows.num_rows} parquet rows, metadata says {episode.length}"
        disagreement = stats_disagreement(rows, episode, self.features)
        if disagreement:
            return disagreement
        for key, (position, start, end) in episode.videos.items():
            times = self.frame_times(self.video_path(key, position))
            if isinstance(times, str):
                return times
            found = self.video_frames_in(times, start, end)
            if found != episode.length:
                return f"{key} has {found} video frames in {start:.3f}..{end:.3f} s, parquet has {episode.length}"
        return None
