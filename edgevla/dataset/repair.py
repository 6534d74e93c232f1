"""Repairing a dataset after a crash: keep the committed episodes, drop what is left of the rest."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from edgevla.dataset import durable
from edgevla.dataset.format import DATA_PATH, EPISODES_PATH, PARTIAL_DIR, TASKS_PATH, VIDEO_PATH, tasks_table
from edgevla.dataset.meta import load_episodes, load_info, load_tasks, write_totals


@dataclass
class RepairReport:
    episodes: int
    frames: int
    removed: list[str]

    def __str__(self) -> str:
        removed = (
            f"; removed {len(self.removed)} leftover file(s) of an unfinished episode" if self.removed else ""
        )
        return f"{self.episodes} episode(s), {self.frames} frame(s) intact{removed}"


def repair(root: Path) -> RepairReport:
    """Make `root` consistent with its committed episodes after a crash (idempotent).

    Removes the scratch folder, temporary files and data/video files no episode refers to (the
    unfinished episode), then rewrites tasks, info.json totals and stats.json from the episodes.
    """
    root = Path(root)
    info = load_info(root)
    episodes = load_episodes(root, info["features"])
    removed: list[str] = []
    if (root / PARTIAL_DIR).exists():
        removed += [str(p.relative_to(root)) for p in (root / PARTIAL_DIR).rglob("*") if p.is_file()]
        shutil.rmtree(root / PARTIAL_DIR)
    referenced = {
        root / DATA_PATH.format(chunk_index=e.data_file[0], file_index=e.data_file[1]) for e in episodes
    }
    referenced |= {
        root / EPISODES_PATH.format(chunk_index=e.meta_file[0], file_index=e.meta_file[1]) for e in episodes
    }
    for episode in episodes:
        for key, ((chunk, file), _, _) in episode.videos.items():
            referenced.add(root / VIDEO_PATH.format(video_key=key, chunk_index=chunk, file_index=file))
    candidates = list((root / "data").glob("chunk-*/file-*.parquet")) + list(
        (root / "videos").glob("*/chunk-*/file-*.mp4")
    )
    candidates += list(root.rglob(f"*{durable.TMP_SUFFIX}"))
    for path in candidates:
        if path not in referenced:
            path.unlink()
            removed.append(str(path.relative_to(root)))
    tasks = load_tasks(root)
    missing = [task for episode in episodes for task in episode.tasks if task not in tasks]
    if missing:
        tasks += list(dict.fromkeys(missing))
        durable.write_parquet(root / TASKS_PATH, tasks_table(tasks))
    frames = episodes[-1].to_index if episodes else 0
    write_totals(root, info, len(episodes), frames, len(tasks), [episode.stats for episode in episodes])
    return RepairReport(len(episodes), frames, sorted(removed))
