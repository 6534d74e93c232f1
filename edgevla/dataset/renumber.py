"""Dropping damaged episodes from a dataset: the rest renumbered, their files rewritten.

LeRobotDataset needs episode indices 0..n-1 and contiguous frame ranges, so the episodes after a
dropped one move down. Crash-safe: renumbered rows and re-encoded videos go to new files first,
then each episodes metadata file is replaced atomically in episode order (leaving out a dropped
episode's row there is the commit), so an interrupted run leaves at worst a gap in the
numbering, which the next run closes. The files no episode refers to any more are deleted by
`repair` afterwards.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from edgevla.dataset import durable
from edgevla.dataset.confine import inside, remove
from edgevla.dataset.format import (
    CHUNKS_SIZE,
    DATA_PATH,
    VIDEO_PATH,
    DatasetFormatError,
    chunk_file,
    position_of,
    video_keys,
)
from edgevla.dataset.meta import Episode, episode_files
from edgevla.dataset.stats import Stats, numeric_stats
from edgevla.dataset.verify import EpisodeFiles
from edgevla.dataset.video import ENCODER_FOR, VideoConfig, copy_frames


def _bookkeeping_stats(index: int, start: int, length: int) -> dict[str, Stats]:
    """Per-episode stats of the two frame columns that renumbering changes."""
    return {
        "episode_index": numeric_stats(np.full(length, index, np.int64)),
        "index": numeric_stats(np.arange(start, start + length, dtype=np.int64)),
    }


def drop_episodes(
    root: Path, info: dict, files: EpisodeFiles, episodes: list[Episode], dropped: dict[int, str]
) -> list[Episode]:
    """The episodes not in `dropped`, numbered 0.. with contiguous frame ranges, and written so
    on disk (a gap left by an interrupted earlier run is closed the same way)."""
    pairs: list[tuple[Episode, Episode]] = []  # (as found, as kept)
    start = 0
    for old in episodes:
        if old.index in dropped:
            continue
        renumbered = _bookkeeping_stats(len(pairs), start, old.length)
        stats = {key: renumbered.get(key, value) for key, value in old.stats.items()}
        new = replace(old, index=len(pairs), from_index=start, to_index=start + old.length, stats=stats)
        pairs.append((old, new))
        start = new.to_index
    moved = [old for old, new in pairs if (old.index, old.from_index) != (new.index, new.from_index)]
    if not dropped and not moved:
        return [new for _, new in pairs]
    gone = [episode for episode in episodes if episode.index in dropped]
    _rewrite_data_files(root, info, files, {e.data_file for e in gone + moved}, pairs)
    for key in video_keys(info["features"]):
        _rewrite_shared_videos(root, info, key, {e.videos[key][0] for e in gone}, pairs, files.tolerance_s)
    _rewrite_episode_rows(root, pairs)
    return [new for _, new in pairs]


def _next_position(root: Path, pattern: str, info: dict) -> int:
    """The file position after every file of a kind on disk, referenced or not."""
    chunks_size = info.get("chunks_size", CHUNKS_SIZE)
    taken = [chunk * chunks_size + file for chunk, file in map(position_of, root.glob(pattern))]
    return max(taken, default=-1) + 1


def _rewrite_data_files(
    root: Path,
    info: dict,
    files: EpisodeFiles,
    stale: set[tuple[int, int]],
    pairs: list[tuple[Episode, Episode]],
) -> None:
    """Each data file holding a dropped or renumbered episode, copied to a new file with only the
    kept rows, renumbered; the old file goes once no episode refers to it."""
    position = _next_position(root, "data/chunk-*/file-*.parquet", info)
    for data_file in sorted(stale):
        in_file = [(i, old, new) for i, (old, new) in enumerate(pairs) if old.data_file == data_file]
        if not in_file:
            continue  # only dropped rows: the file goes with the unreferenced ones
        chunk, file = chunk_file(position)
        position += 1
        table = pa.concat_tables([_renumbered_rows(files.rows(old), new) for _, old, new in in_file])
        durable.write_parquet(root, root / DATA_PATH.format(chunk_index=chunk, file_index=file), table)
        for i, old, new in in_file:
            pairs[i] = (old, replace(new, data_file=(chunk, file)))


def _rewrite_shared_videos(
    root: Path,
    info: dict,
    key: str,
    stale: set[tuple[int, int]],
    pairs: list[tuple[Episode, Episode]],
    tolerance_s: float,
) -> None:
    """A video file of `key` shared by a dropped episode and kept ones is re-encoded with the kept
    episodes' frames only (lerobot's layout packs many episodes into one file)."""
    feature_info = info["features"][key].get("info", {})
    config = VideoConfig(
        codec=ENCODER_FOR.get(feature_info.get("video.codec"), ENCODER_FOR["av1"]),
        pix_fmt=feature_info.get("video.pix_fmt", "yuv420p"),
    )
    fps = info["fps"]
    position = _next_position(root, f"videos/{key}/chunk-*/file-*.mp4", info)
    for source_position in sorted(stale):
        in_file = [
            (i, old, new) for i, (old, new) in enumerate(pairs) if old.videos[key][0] == source_position
        ]
        if not in_file:
            continue  # only dropped episodes: the file goes with the unreferenced ones
        chunk, file = chunk_file(position)
        position += 1
        source = root / VIDEO_PATH.format(
            video_key=key, chunk_index=source_position[0], file_index=source_position[1]
        )
        target = root / VIDEO_PATH.format(video_key=key, chunk_index=chunk, file_index=file)
        scratch = inside(root, target.with_name(target.name + durable.TMP_SUFFIX))
        durable.make_folder(root, target.parent)
        ranges = [old.videos[key][1:] for _, old, _ in in_file]
        frames = copy_frames(source, scratch, ranges, fps, config, tolerance_s)
        expected = sum(old.length for _, old, _ in in_file)
        if frames != expected:
            raise DatasetFormatError(f"{source}: {frames} frames of the kept episodes, expected {expected}")
        durable.publish(root, scratch, target)
        start = 0.0
        for i, old, new in in_file:
            end = start + old.length / fps
            pairs[i] = (old, replace(new, videos={**new.videos, key: ((chunk, file), start, end)}))
            start = end


def _renumbered_rows(rows: pa.Table, episode: Episode) -> pa.Table:
    for name, values in (
        ("episode_index", np.full(episode.length, episode.index)),
        ("index", np.arange(episode.from_index, episode.to_index)),
    ):
        position = rows.schema.get_field_index(name)
        field_ = rows.schema.field(position)
        rows = rows.set_column(position, field_, pa.array(values, field_.type))
    return rows


def _rewrite_episode_rows(root: Path, pairs: list[tuple[Episode, Episode]]) -> None:
    """Each episodes metadata file with the new numbering, without the dropped rows (in episode
    order: an interrupted rewrite leaves a gap in the numbering, never two rows of one index)."""
    kept = {old.index: new for old, new in pairs}
    for path in episode_files(root):
        table = pq.read_table(path)
        rows = []
        for row in table.to_pylist():
            new = kept.get(row["episode_index"])
            if new is None:
                continue
            update = {
                "episode_index": new.index,
                "dataset_from_index": new.from_index,
                "dataset_to_index": new.to_index,
                "data/chunk_index": new.data_file[0],
                "data/file_index": new.data_file[1],
            }
            for key, ((chunk, file), start, end) in new.videos.items():
                update[f"videos/{key}/chunk_index"], update[f"videos/{key}/file_index"] = chunk, file
                update[f"videos/{key}/from_timestamp"], update[f"videos/{key}/to_timestamp"] = start, end
            for key in ("episode_index", "index"):
                for name, value in new.stats.get(key, {}).items():
                    if f"stats/{key}/{name}" in row:
                        update[f"stats/{key}/{name}"] = np.asarray(value).tolist()
            rows.append(row | update)
        if rows == table.to_pylist():
            continue
        if rows:
            durable.write_parquet(root, path, pa.Table.from_pylist(rows, schema=table.schema))
        else:
            remove(root, path)
