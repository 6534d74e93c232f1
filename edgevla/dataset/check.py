"""`edgevla dataset check`: structural problems, parquet/video frame-count mismatches, timestamp gaps."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from edgevla.dataset.durable import TMP_SUFFIX
from edgevla.dataset.format import (
    DATA_PATH,
    PARTIAL_DIR,
    STATS_PATH,
    TASKS_PATH,
    VIDEO_PATH,
    DatasetFormatError,
    new_info,
)
from edgevla.dataset.meta import load_episodes, load_info, load_tasks
from edgevla.dataset.video import frame_times


@dataclass
class CheckReport:
    root: Path
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    episodes: int = 0
    frames: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


def check(root: str | Path, tolerance_s: float = 1e-4) -> CheckReport:
    """Validate a LeRobotDataset v3.0 directory; raises only if it is not a dataset at all."""
    root = Path(root)
    info = load_info(root)
    report = CheckReport(root)
    error, warn = report.errors.append, report.warnings.append
    missing = [key for key in new_info(30, {}, None) if key not in info]
    if missing:
        error(f"meta/info.json lacks {', '.join(missing)}")
    features, fps = info["features"], info["fps"]
    try:
        episodes = load_episodes(root, features)
        tasks = load_tasks(root)
    except DatasetFormatError as err:
        error(str(err))
        return report
    report.episodes, report.frames = len(episodes), sum(e.length for e in episodes)
    if not (root / TASKS_PATH).is_file():
        error("meta/tasks.parquet is missing")
    if not (root / STATS_PATH).is_file():
        warn("meta/stats.json is missing (training cannot normalise without it)")
    if [e.index for e in episodes] != list(range(len(episodes))):
        error(f"episode indices are not 0..{len(episodes) - 1}")
    if info.get("total_episodes") != len(episodes) or info.get("total_frames") != report.frames:
        error(
            f"info.json says {info.get('total_episodes')} episodes / {info.get('total_frames')} frames, "
            f"the episode metadata holds {len(episodes)} / {report.frames}; run 'edgevla dataset repair'"
        )
    if (root / PARTIAL_DIR).exists() or any(root.rglob(f"*{TMP_SUFFIX}")):
        warn("files of an unfinished episode are left (a crash?); 'edgevla dataset repair' removes them")

    expected_from = 0
    tables: dict[tuple[int, int], pa.Table] = {}
    video_times: dict[Path, np.ndarray] = {}
    frames_expected: dict[Path, int] = {}  # per video file: frames of the episodes stored in it
    for episode in episodes:
        name = f"episode {episode.index}"
        if episode.from_index != expected_from or episode.to_index - episode.from_index != episode.length:
            error(
                f"{name}: frame range {episode.from_index}..{episode.to_index} does not follow the previous episode"
            )
        expected_from = episode.to_index
        data_path = root / DATA_PATH.format(chunk_index=episode.data_file[0], file_index=episode.data_file[1])
        if episode.data_file not in tables:
            try:
                tables[episode.data_file] = pq.read_table(
                    data_path, columns=["episode_index", "frame_index", "index", "timestamp", "task_index"]
                )
            except (OSError, pa.ArrowInvalid) as err:
                error(f"{name}: data file {data_path.relative_to(root)} unreadable ({err})")
                continue
        table = tables[episode.data_file]
        rows = table.filter(pc.equal(table["episode_index"], episode.index))
        if rows.num_rows != episode.length:
            error(f"{name}: {rows.num_rows} parquet rows, metadata says {episode.length}")
            continue
        frame_index = rows["frame_index"].to_numpy()
        if not np.array_equal(frame_index, np.arange(episode.length)):
            error(f"{name}: frame_index is not 0..{episode.length - 1}")
        if not np.array_equal(rows["index"].to_numpy(), np.arange(episode.from_index, episode.to_index)):
            error(f"{name}: global index is not {episode.from_index}..{episode.to_index - 1}")
        timestamps = rows["timestamp"].to_numpy().astype(np.float64)
        steps = np.diff(timestamps)
        gaps = np.flatnonzero(np.abs(steps - 1 / fps) > tolerance_s)
        if len(gaps):
            first = gaps[0]
            error(
                f"{name}: {len(gaps)} timestamp gap(s), first after frame {first}: "
                f"{timestamps[first]:.4f} -> {timestamps[first + 1]:.4f} s at {fps} fps"
            )
        if tasks and rows["task_index"].to_numpy().max() >= len(tasks):
            error(f"{name}: task_index beyond the {len(tasks)} task(s) of meta/tasks.parquet")
        for key, ((chunk, file), start, end) in episode.videos.items():
            path = root / VIDEO_PATH.format(video_key=key, chunk_index=chunk, file_index=file)
            if not path.is_file():
                error(f"{name}: video {path.relative_to(root)} is missing")
                continue
            if path not in video_times:
                try:
                    video_times[path] = frame_times(path)
                except Exception as err:  # PyAV raises its own error types for broken files
                    error(f"{name}: video {path.relative_to(root)} unreadable ({err})")
                    video_times[path] = np.array([])
            times = video_times[path]
            frames_expected[path] = frames_expected.get(path, 0) + episode.length
            in_range = int(np.count_nonzero((times >= start - tolerance_s) & (times < end - tolerance_s)))
            if in_range != episode.length:
                error(
                    f"{name}: {key} has {in_range} video frames in {start:.3f}..{end:.3f} s, parquet has {episode.length}"
                )
    for path, expected in frames_expected.items():
        if len(video_times[path]) and len(video_times[path]) != expected:
            error(
                f"video {path.relative_to(root)} has {len(video_times[path])} frames, its episodes have {expected}"
            )
    return report
