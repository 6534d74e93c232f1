"""`edgevla dataset check`: structural problems, damaged files, info.json that disagrees with the
data, parquet/video frame-count mismatches, timestamp gaps."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgevla.dataset.durable import TMP_SUFFIX
from edgevla.dataset.format import PARTIAL_DIR, STATS_PATH, TASKS_PATH, DatasetFormatError, new_info
from edgevla.dataset.meta import load_episodes, load_info, load_stats, load_tasks
from edgevla.dataset.verify import EpisodeFiles, column_mismatches


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
    else:
        try:
            load_stats(root)
        except DatasetFormatError as err:
            error(f"{err}; 'edgevla dataset repair' rewrites it from the episodes")
    if [e.index for e in episodes] != list(range(len(episodes))):
        error(f"episode indices are not 0..{len(episodes) - 1}")
    if info.get("total_episodes") != len(episodes) or info.get("total_frames") != report.frames:
        error(
            f"info.json says {info.get('total_episodes')} episodes / {info.get('total_frames')} frames, "
            f"the episode metadata holds {len(episodes)} / {report.frames}; run 'edgevla dataset repair'"
        )
    if (root / PARTIAL_DIR).exists() or any(root.rglob(f"*{TMP_SUFFIX}")):
        warn("files of an unfinished episode are left (a crash?); 'edgevla dataset repair' removes them")

    files = EpisodeFiles(root, features, tolerance_s)
    columns_checked: set[tuple[int, int]] = set()  # data files already compared with info.json
    expected_from = 0
    frames_expected: dict[Path, int] = {}  # per video file: frames of the episodes stored in it
    for episode in episodes:
        name = f"episode {episode.index}"
        if episode.from_index != expected_from or episode.to_index - episode.from_index != episode.length:
            error(
                f"{name}: frame range {episode.from_index}..{episode.to_index} does not follow the previous episode"
            )
        expected_from = episode.to_index
        for key, (position, _, _) in episode.videos.items():
            path = files.video_path(key, position)
            frames_expected[path] = frames_expected.get(path, 0) + episode.length
        table = files.table(episode.data_file)
        if not isinstance(table, str) and episode.data_file not in columns_checked:
            columns_checked.add(episode.data_file)
            path = files.data_path(episode.data_file).relative_to(root)
            for problem in column_mismatches(table, features):
                error(f"data file {path}: {problem}")
        damage = files.damage(episode)
        if damage:
            error(f"{name}: {damage}")
        rows = files.rows(episode)
        if isinstance(rows, str) or rows.num_rows != episode.length:
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
    for path, expected in frames_expected.items():
        times = files.video_times.get(path)
        if isinstance(times, np.ndarray) and len(times) and len(times) != expected:
            error(f"video {path.relative_to(root)} has {len(times)} frames, its episodes have {expected}")
    return report
