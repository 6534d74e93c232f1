"""Reading any LeRobotDataset v3.0 directory (edgevla's or lerobot's) for training and checks.

ds = DatasetReader("datasets/pick_cube")
len(ds), ds.fps, ds.features, ds.camera_keys, ds.tasks, ds.episodes, ds.stats
item = ds[i]                      # numeric features as numpy, "task" text, camera images uint8 HWC
actions, is_pad = ds.action_chunk(i, 50)    # (50, action_dim), (50,) bool
images = ds.video_frames("observation.images.front", episode=0, timestamps=[0.0, 0.1])
"""

from __future__ import annotations

import bisect
import io
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from edgevla.dataset.format import DATA_PATH, VIDEO_PATH, DatasetFormatError, video_keys
from edgevla.dataset.meta import Episode, load_episodes, load_info, load_stats, load_tasks
from edgevla.dataset.stats import Stats
from edgevla.dataset.verify import column_mismatches, column_values
from edgevla.dataset.video import decode_frames
from edgevla.errors import first_line


def _to_numpy(column: pa.ChunkedArray) -> np.ndarray:
    """A scalar column as (n,), a fixed-size or plain list column as (n, dim); image structs as
    an object array of encoded image bytes."""
    if pa.types.is_struct(column.type):  # lerobot "image" feature: {bytes: PNG, path}
        return np.array(column.combine_chunks().field("bytes").to_pylist(), dtype=object)
    return column_values(column)


def _decode_image(encoded: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(encoded)) as image:
        return np.asarray(image.convert("RGB"))


class DatasetReader:
    """Frames, action chunks, decoded video (or parquet image) frames and stats of one dataset.

    Frames are addressed by their global `index` (0..len-1), which is also their row here: rows
    are sorted by index and a valid dataset numbers its frames without gaps (`check` verifies).
    The numeric columns of every frame are loaded into memory at once (small next to videos);
    video frames are decoded on demand with PyAV.
    """

    def __init__(self, root: str | Path, tolerance_s: float = 1e-4):
        self.root = Path(root)
        self.info = load_info(self.root)
        self.fps: int = self.info["fps"]
        self.features: dict[str, dict] = self.info["features"]
        self.camera_keys = video_keys(self.features)
        self.image_keys = [key for key, ft in self.features.items() if ft["dtype"] == "image"]
        self.tasks = load_tasks(self.root)
        self.episodes: list[Episode] = load_episodes(self.root, self.features)
        self.tolerance_s = tolerance_s  # a video frame matches a timestamp within this (lerobot: 1e-4 s)
        self.columns = self._load_columns()
        self._episode_starts = [episode.from_index for episode in self.episodes]

    def _load_columns(self) -> dict[str, np.ndarray]:
        parts: dict[str, list[np.ndarray]] = {}
        files = dict.fromkeys(episode.data_file for episode in self.episodes)
        for chunk, file in files:
            path = self.root / DATA_PATH.format(chunk_index=chunk, file_index=file)
            try:
                table = pq.read_table(path)
            except (OSError, pa.ArrowException) as err:
                raise DatasetFormatError(f"{path}: cannot read data file ({first_line(err)})") from err
            problems = column_mismatches(table, self.features)
            if problems:
                raise DatasetFormatError(
                    f"{path}: {problems[0]}; 'edgevla dataset check {self.root}' lists every problem"
                )
            for name in table.column_names:
                parts.setdefault(name, []).append(_to_numpy(table.column(name)))
        columns = {name: np.concatenate(chunks) for name, chunks in parts.items()}
        if not columns:
            return {}
        order = np.argsort(columns["index"], kind="stable")  # files may be listed out of order
        return {name: values[order] for name, values in columns.items()}

    # ---------------------------------------------------------------- sizes and lookup
    def __len__(self) -> int:
        return len(self.columns.get("index", ()))

    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    def episode_of(self, index: int) -> Episode:
        """The episode holding global frame `index`."""
        if not 0 <= index < len(self):
            raise IndexError(f"frame {index} out of range 0..{len(self) - 1}")
        return self.episodes[bisect.bisect_right(self._episode_starts, index) - 1]

    @property
    def stats(self) -> dict[str, Stats]:
        return load_stats(self.root)

    # ---------------------------------------------------------------- frames
    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.frame(index)

    def frame(self, index: int, decode_video: bool = True) -> dict[str, Any]:
        """All features of one frame; camera images as uint8 (H, W, 3) RGB when `decode_video`."""
        episode = self.episode_of(index)
        item: dict[str, Any] = {name: values[index] for name, values in self.columns.items()}
        item["task"] = self.tasks[int(item["task_index"])] if self.tasks else None
        for key in self.image_keys:
            item[key] = _decode_image(item[key])
        if decode_video:
            timestamp = float(item["timestamp"])
            for key in self.camera_keys:
                item[key] = self.video_frames(key, episode.index, [timestamp])[0]
        return item

    def episode_columns(self, episode: int) -> dict[str, np.ndarray]:
        """Every numeric column of one episode."""
        ep = self.episodes[episode]
        return {name: values[ep.from_index : ep.to_index] for name, values in self.columns.items()}

    def action_chunk(self, index: int, size: int, key: str = "action") -> tuple[np.ndarray, np.ndarray]:
        """`size` actions from frame `index` on; past the episode end the last action repeats.

        Returns (actions (size, dim), action_is_pad (size,) bool), as lerobot's delta timestamps do.
        """
        episode = self.episode_of(index)
        wanted = np.arange(index, index + size)
        is_pad = wanted >= episode.to_index
        return self.columns[key][np.minimum(wanted, episode.to_index - 1)], is_pad

    def video_path(self, key: str, episode: int) -> Path:
        (chunk, file), _, _ = self.episodes[episode].videos[key]
        return self.root / VIDEO_PATH.format(video_key=key, chunk_index=chunk, file_index=file)

    def video_frames(self, key: str, episode: int, timestamps: list[float]) -> np.ndarray:
        """uint8 (len(timestamps), H, W, 3): frames of `key` at episode-relative timestamps."""
        _, start, _ = self.episodes[episode].videos[key]
        shifted = [start + t for t in timestamps]
        return decode_frames(self.video_path(key, episode), shifted, self.tolerance_s)

    def episode_video(self, key: str, episode: int) -> np.ndarray:
        """uint8 (length, H, W, 3): every frame of one episode, decoded in a single pass."""
        length = self.episodes[episode].length
        return self.video_frames(key, episode, [i / self.fps for i in range(length)])
