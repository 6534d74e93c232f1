"""Repairing a dataset: keep the whole episodes, drop what is left of the rest.

After a crash: removes the scratch folder, temporary files and the data/video files no episode
refers to (the unfinished episode). Episodes whose files are damaged (a truncated video, an
unreadable or altered data file: `verify.EpisodeFiles.damage`) are dropped and named, and the
episodes after them renumbered so that indices and frame ranges stay contiguous, as
LeRobotDataset requires; a video file a dropped episode shares with kept ones (lerobot's layout)
is re-encoded with the kept frames only, as lerobot's delete_episodes does. Then tasks,
info.json totals and stats.json are rewritten from the episodes kept.

Crash-safe like the writer (see `renumber`): new files are written first, each metadata file
is replaced atomically, and only then are the files no episode refers to deleted; a repair
interrupted anywhere is finished by running it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgevla.dataset import durable
from edgevla.dataset.confine import refuse_escaping_links, remove, remove_tree
from edgevla.dataset.format import (
    DATA_PATH,
    EPISODES_PATH,
    PARTIAL_DIR,
    TASKS_PATH,
    VIDEO_PATH,
    DatasetFormatError,
    tasks_table,
)
from edgevla.dataset.meta import Episode, load_episodes, load_info, load_tasks, write_totals
from edgevla.dataset.renumber import drop_episodes
from edgevla.dataset.verify import EpisodeFiles


@dataclass
class RepairReport:
    episodes: int
    frames: int
    removed: list[str]
    dropped: dict[int, str] = field(default_factory=dict)  # episode index before the repair -> why

    def __str__(self) -> str:
        removed = (
            f"; removed {len(self.removed)} leftover file(s) of an unfinished or dropped episode"
            if self.removed
            else ""
        )
        dropped = (
            f"; dropped {len(self.dropped)} damaged episode(s) ({', '.join(map(str, self.dropped))}), "
            "the later ones renumbered"
            if self.dropped
            else ""
        )
        return f"{self.episodes} episode(s), {self.frames} frame(s) intact{dropped}{removed}"


def repair(root: Path) -> RepairReport:
    """Make `root` consistent with its whole episodes (idempotent); see the module docstring.

    Refuses, changing nothing, when a symlink in the dataset leads out of it, or when every
    episode is damaged (more likely a dataset copied half-way than one to empty)."""
    root = Path(root)
    info = load_info(root)
    refuse_escaping_links(root)
    episodes = load_episodes(root, info["features"])
    files = EpisodeFiles(root, info["features"])
    dropped = {episode.index: why for episode in episodes if (why := files.damage(episode))}
    if episodes and len(dropped) == len(episodes):
        first, why = next(iter(dropped.items()))
        raise DatasetFormatError(
            f"{root}: the files of every episode are damaged or missing (episode {first}: {why}); "
            "nothing was changed: copy the dataset again"
        )
    removed: list[str] = []
    if (root / PARTIAL_DIR).exists():
        removed += [str(p.relative_to(root)) for p in (root / PARTIAL_DIR).rglob("*") if p.is_file()]
        remove_tree(root, root / PARTIAL_DIR)
    kept = drop_episodes(root, info, files, episodes, dropped)
    removed += _remove_unreferenced(root, kept)
    tasks = load_tasks(root)
    missing = [task for episode in kept for task in episode.tasks if task not in tasks]
    if missing or not (root / TASKS_PATH).is_file():
        tasks += list(dict.fromkeys(missing))
        durable.write_parquet(root, root / TASKS_PATH, tasks_table(tasks))
    frames = kept[-1].to_index if kept else 0
    write_totals(root, info, len(kept), frames, len(tasks), [episode.stats for episode in kept])
    return RepairReport(len(kept), frames, sorted(removed), dropped)


def _remove_unreferenced(root: Path, episodes: list[Episode]) -> list[str]:
    """Delete the data and video files no episode refers to, and temporary files."""
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
    removed = []
    for path in candidates:
        if path not in referenced:
            remove(root, path)
            removed.append(str(path.relative_to(root)))
    return removed
