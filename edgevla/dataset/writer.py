"""Crash-safe LeRobotDataset v3.0 writer: every saved episode is durable on disk at once.

Layout choice: one data parquet, one mp4 per camera and one episodes-metadata parquet per
episode (file index = the n-th file of its kind). lerobot packs many episodes into one file and
keeps its writers open until finalize(), so a crash loses the session; a closed file per episode
is valid v3.0 (lerobot reads every chunk-*/file-*.parquet and seeks videos by from/to timestamps)
and makes saving an episode O(episode) instead of rewriting ever larger shared files.

Save order per episode (in a background thread, FIFO): videos -> data parquet -> tasks ->
episodes-metadata parquet (the commit point) -> info.json and stats.json. Each file is written
under a temporary name, fsynced and renamed. An episode exists iff its metadata row exists;
`repair()` deletes whatever a crash left beyond that and rebuilds info/tasks/stats.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from edgevla.dataset import durable
from edgevla.dataset.confine import inside, remove_tree
from edgevla.dataset.format import (
    DATA_PATH,
    EPISODES_PATH,
    PARTIAL_DIR,
    TASKS_PATH,
    VIDEO_PATH,
    DatasetFormatError,
    chunk_file,
    data_schema,
    new_info,
    tasks_table,
    video_keys,
    with_default_features,
)
from edgevla.dataset.meta import (
    Episode,
    episode_table,
    is_dataset,
    load_episodes,
    load_info,
    load_tasks,
    write_totals,
)
from edgevla.dataset.repair import RepairReport, repair
from edgevla.dataset.stats import Stats, numeric_stats
from edgevla.dataset.video import CODEC_NAMES, ENCODER_FOR, VideoConfig, VideoEncoder, check_codec


@dataclass
class _PendingEpisode:
    index: int
    from_index: int
    task_indices: list[int]
    columns: dict[str, list]
    encoders: dict[str, VideoEncoder]
    metadata: dict[str, Any]
    new_tasks: list[str] | None  # the full task list to publish, if this episode added tasks
    task_count: int  # tasks known when the episode was handed off (the next one may add more)
    done: threading.Event = field(default_factory=threading.Event)


def _features_differ(current: dict[str, dict], wanted: dict[str, dict]) -> list[str]:
    """Human-readable differences in name, dtype, shape and names between two feature sets."""
    problems = [f"'{key}' is new" for key in wanted if key not in current]
    problems += [f"'{key}' is missing" for key in current if key not in wanted]
    for key in current.keys() & wanted.keys():
        for part in ("dtype", "shape", "names"):
            have, want = current[key].get(part), wanted[key].get(part)
            if part != "dtype":
                have, want = list(have or []), list(want or [])
            if have != want:
                problems.append(f"'{key}' {part} {have} != {want}")
    return problems


class DatasetWriter:
    """Appends episodes to a LeRobotDataset v3.0 directory.

    writer = DatasetWriter.open(root, fps=30, features={...}, robot_type="so101_follower")
    writer.add_frame({"observation.state": ..., "action": ..., "observation.images.front": rgb}, task)
    writer.save_episode(metadata={"recording/late_frames": 0})   # returns at once
    writer.close()                                                # waits until all are durable
    """

    def __init__(
        self,
        root: Path,
        info: dict,
        tasks: list[str],
        episodes: list[Episode],
        video: VideoConfig,
        episode_metadata: dict[str, str],
    ):
        self.root, self.info, self.tasks, self.video = root, info, tasks, video
        self.features: dict[str, dict] = info["features"]
        self.fps: int = info["fps"]
        self.video_keys = video_keys(self.features)
        self.episode_metadata = episode_metadata  # extra episode columns: name -> "int64" | "float64"
        self._episode_stats = [episode.stats for episode in episodes]
        self.num_episodes = len(episodes)
        self.num_frames = sum(episode.length for episode in episodes)
        # Position of the next file of each kind; after lerobot's shared files when appending to one.
        self._next_file = {"data": 0, "meta": 0, **{key: 0 for key in self.video_keys}}
        for episode in episodes:
            self._bump("data", episode.data_file)
            self._bump("meta", episode.meta_file)
            for key, (position, _, _) in episode.videos.items():
                self._bump(key, position)
        self._saved_episodes = self.num_episodes
        self.repaired: RepairReport | None = None  # what opening with resume=True repaired
        self._columns: dict[str, list] | None = None
        self._encoders: dict[str, VideoEncoder] = {}
        self._task_indices: list[int] = []
        self._error: BaseException | None = None
        self._tasks_before = len(tasks)
        # FIFO of episodes to save; an Event in it is set when everything before it is saved.
        self._saves: queue.Queue[_PendingEpisode | threading.Event] = queue.Queue()
        self._saver = threading.Thread(target=self._save_loop, name="dataset-saver", daemon=True)
        self._saver.start()
        self.save_ms: list[float] = []  # saver time per episode until it was durable

    def _bump(self, kind: str, position: tuple[int, int]) -> None:
        chunk, file = position
        self._next_file[kind] = max(self._next_file[kind], chunk * self.info["chunks_size"] + file + 1)

    # ---------------------------------------------------------------- opening
    @classmethod
    def open(
        cls,
        root: str | Path,
        fps: int,
        features: dict[str, dict],
        robot_type: str | None = None,
        video: VideoConfig | None = None,
        resume: bool = False,
        episode_metadata: dict[str, str] | None = None,
    ) -> DatasetWriter:
        """Create a new dataset at `root`, or with `resume=True` repair and append to one."""
        root, video = Path(root), video or VideoConfig()
        episode_metadata = dict(episode_metadata or {})
        wanted = with_default_features(features)
        if is_dataset(root):
            if not resume:
                raise DatasetFormatError(f"{root} already holds a dataset; pass --resume to append to it")
            info = load_info(root)
            problems = _features_differ(info["features"], wanted)
            if problems:
                raise DatasetFormatError(
                    f"cannot resume {root}: its features differ ({'; '.join(problems[:4])})"
                )
            if info["fps"] != fps:
                raise DatasetFormatError(
                    f"cannot resume {root}: it was recorded at {info['fps']} fps, not {fps}"
                )
            repaired = repair(root)
            info = load_info(root)
            episodes = load_episodes(root, info["features"])
            if episodes:  # every episodes file must keep one schema: adopt the extra columns there
                extra = episodes[0].extra
                episode_metadata = {
                    k: "float64" if isinstance(v, float) else "int64" for k, v in extra.items()
                }
            # Keep one codec per dataset: appended episodes use the codec already there.
            codecs = {
                info["features"][k].get("info", {}).get("video.codec") for k in video_keys(info["features"])
            }
            codec = codecs.pop() if len(codecs) == 1 else None
            if codec in ENCODER_FOR and CODEC_NAMES.get(video.codec) != codec:
                video = replace(video, codec=ENCODER_FOR[codec])
            check_codec(video.codec)
            writer = cls(root, info, load_tasks(root), episodes, video, episode_metadata)
            writer.repaired = repaired
            return writer
        if root.exists() and not root.is_dir():
            raise DatasetFormatError(f"{root} is a file, not a folder: choose a new or empty directory")
        if root.exists() and any(root.iterdir()):
            raise DatasetFormatError(
                f"{root} exists and is not a LeRobotDataset (no meta/info.json); choose a new or empty directory"
            )
        check_codec(video.codec)
        for key in video_keys(wanted):
            height, width = wanted[key]["shape"][:2]
            wanted[key] = {
                **wanted[key],
                "names": ["height", "width", "channels"],
                "info": video.feature_info(height, width, fps),
            }
        info = new_info(fps, wanted, robot_type)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise durable.DatasetWriteError(
                f"cannot create {root}: {durable.describe_os_error(err)}"
            ) from err
        # An empty dataset is a valid one: `dataset check` accepts it before the first episode.
        durable.write_parquet(root, root / TASKS_PATH, tasks_table([]))
        write_totals(root, info, 0, 0, 0, [])
        return cls(root, info, [], [], video, episode_metadata)

    # ---------------------------------------------------------------- recording
    def _check_healthy(self) -> None:
        if self._error is not None:
            raise self._error

    def add_frame(self, frame: dict[str, Any], task: str) -> None:
        """Buffer one frame (numeric features) and queue its images for encoding."""
        self._check_healthy()
        if self._columns is None:
            self._start_episode()
        for encoder in self._encoders.values():
            encoder.ready.wait(timeout=10)
        for key, ft in self.features.items():
            if key in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
                continue
            if key not in frame:
                raise DatasetFormatError(f"frame lacks feature '{key}'")
            value = frame[key]
            if ft["dtype"] == "video":
                if value.shape != tuple(ft["shape"]) or value.dtype != np.uint8:
                    raise DatasetFormatError(
                        f"'{key}' must be uint8 {tuple(ft['shape'])}, got {value.dtype} {value.shape}"
                    )
                encoder = self._encoders[key]
                if encoder.error is not None:  # e.g. disk full: stop now rather than queue frames forever
                    error = encoder.error
                    reason = durable.describe_os_error(error) if isinstance(error, OSError) else str(error)
                    raise durable.DatasetWriteError(f"encoding {key} failed: {reason}")
                encoder.put(value)
            else:
                array = np.asarray(value, dtype=ft["dtype"])
                if array.size != int(np.prod(ft["shape"])):
                    raise DatasetFormatError(
                        f"'{key}' must have shape {tuple(ft['shape'])}, got {array.shape}"
                    )
                self._columns[key].append(
                    array.reshape(-1) if tuple(ft["shape"]) != (1,) else array.reshape(())
                )
        if task not in self.tasks:
            self.tasks.append(task)
        self._task_indices.append(self.tasks.index(task))

    def prepare_episode(self) -> None:
        """Start the next episode's video encoders now (e.g. during a reset period), so that the
        first frames of the episode do not pay for opening them."""
        self._check_healthy()
        if self._columns is None:
            self._start_episode()
        for encoder in self._encoders.values():
            encoder.ready.wait(timeout=10)

    def _start_episode(self) -> None:
        self._columns = {key: [] for key, ft in self.features.items() if ft["dtype"] != "video"}
        partial = self.root / PARTIAL_DIR / f"episode-{self.num_episodes:06d}"
        self._encoders = {}
        for key in self.video_keys:
            height, width = self.features[key]["shape"][:2]
            path = inside(self.root, partial / f"{key}.mp4")
            self._encoders[key] = VideoEncoder(path, width, height, self.fps, self.video)
        self._task_indices = []
        self._tasks_before = len(self.tasks)

    @property
    def episode_frames(self) -> int:
        return len(self._task_indices)

    @property
    def saves_pending(self) -> int:
        """Episodes handed to the saver that are not durable yet (0 once a save failed)."""
        return 0 if self._error is not None else self.num_episodes - self._saved_episodes

    @property
    def durable_episodes(self) -> int:
        """Episodes whose files are all on disk and fsynced (a crash from now on keeps them)."""
        return self._saved_episodes

    @property
    def encoder_backlog(self) -> int:
        return max((encoder.backlog for encoder in self._encoders.values()), default=0)

    def discard_episode(self) -> None:
        """Drop the episode being recorded (re-record)."""
        for encoder in self._encoders.values():
            encoder.abort()
        del self.tasks[self._tasks_before :]
        self._columns, self._encoders, self._task_indices = None, {}, []

    def save_episode(self, metadata: dict[str, Any] | None = None) -> int:
        """Hand the episode to the saver thread and return its index; durable after `wait()`."""
        self._check_healthy()
        if not self._task_indices:
            raise DatasetFormatError("cannot save an empty episode")
        # Extra episode columns: missing values are 0, names the dataset does not have are dropped.
        metadata = {name: (metadata or {}).get(name, 0) for name in self.episode_metadata}
        pending = _PendingEpisode(
            index=self.num_episodes,
            from_index=self.num_frames,
            task_indices=self._task_indices,
            columns=self._columns,
            encoders=self._encoders,
            metadata=metadata,
            new_tasks=list(self.tasks) if len(self.tasks) > self._tasks_before else None,
            task_count=len(self.tasks),
        )
        self.num_episodes += 1
        self.num_frames += len(self._task_indices)
        self._columns, self._encoders, self._task_indices = None, {}, []
        self._tasks_before = len(self.tasks)
        self._saves.put(pending)
        return pending.index

    def wait(self) -> None:
        """Block until every saved episode is durable; raise the saver's error if one failed."""
        done = threading.Event()
        self._saves.put(done)
        done.wait()
        self._check_healthy()

    def close(self) -> None:
        """Wait for pending saves, drop an unsaved episode, remove the scratch folder."""
        self.discard_episode()
        try:
            self.wait()
        finally:
            with contextlib.suppress(OSError):  # scratch files only: repair removes what is left
                remove_tree(self.root, self.root / PARTIAL_DIR)

    # ---------------------------------------------------------------- saving (saver thread)
    def _save_loop(self) -> None:
        while True:
            pending = self._saves.get()
            if isinstance(pending, threading.Event):
                pending.set()
                continue
            if self._error is not None:
                for encoder in pending.encoders.values():
                    encoder.abort()
                continue
            try:
                start = time.monotonic()
                self._save(pending)
                self.save_ms.append((time.monotonic() - start) * 1000)
            except BaseException as err:  # reported to the recording loop on its next call
                for encoder in pending.encoders.values():
                    encoder.abort()
                if isinstance(err, OSError):
                    err = durable.DatasetWriteError(
                        f"saving episode {pending.index} failed: {durable.describe_os_error(err)}"
                    )
                self._error = err

    def _path(self, template: str, kind: str, **fields: Any) -> tuple[Path, tuple[int, int]]:
        position = chunk_file(self._next_file[kind])
        path = self.root / template.format(chunk_index=position[0], file_index=position[1], **fields)
        self._next_file[kind] += 1
        return path, position

    def _save(self, pending: _PendingEpisode) -> None:
        length = len(pending.task_indices)
        episode_stats: dict[str, Stats] = {}
        videos: dict[str, tuple[tuple[int, int], float, float]] = {}
        for key, encoder in pending.encoders.items():
            frames, episode_stats[key] = encoder.finish()
            if frames != length:
                raise DatasetFormatError(
                    f"episode {pending.index}: {key} has {frames} video frames for {length} rows"
                )
            path, position = self._path(VIDEO_PATH, key, video_key=key)
            durable.publish(self.root, encoder.path, path)
            videos[key] = (position, 0.0, length / self.fps)

        frame_index = np.arange(length, dtype=np.int64)
        columns = {key: np.stack(values) for key, values in pending.columns.items() if values}
        columns["timestamp"] = (frame_index / self.fps).astype(np.float32)
        columns["frame_index"] = frame_index
        columns["episode_index"] = np.full(length, pending.index, np.int64)
        columns["index"] = pending.from_index + frame_index
        columns["task_index"] = np.asarray(pending.task_indices, np.int64)
        schema = data_schema(self.features)
        arrays = []
        for fld in schema:
            values = columns[fld.name]
            if pa.types.is_fixed_size_list(fld.type):
                arrays.append(
                    pa.FixedSizeListArray.from_arrays(
                        pa.array(values.reshape(-1), fld.type.value_type), fld.type.list_size
                    )
                )
            else:
                arrays.append(pa.array(values, fld.type))
        data_path, data_position = self._path(DATA_PATH, "data")
        durable.write_parquet(self.root, data_path, pa.Table.from_arrays(arrays, schema=schema))

        if pending.new_tasks is not None:
            durable.write_parquet(self.root, self.root / TASKS_PATH, tasks_table(pending.new_tasks))
        for key in schema.names:
            episode_stats[key] = numeric_stats(columns[key])
        episode_stats = {key: episode_stats[key] for key in self.features}  # info.json order, like lerobot

        tasks = [self.tasks[i] for i in dict.fromkeys(pending.task_indices)]
        meta_path, meta_position = self._path(EPISODES_PATH, "meta")
        episode = Episode(
            pending.index,
            length,
            tasks,
            data_position,
            pending.from_index,
            pending.from_index + length,
            videos,
            episode_stats,
            pending.metadata,
            meta_position,
        )
        durable.write_parquet(
            self.root, meta_path, episode_table(episode, self.features, self.episode_metadata)
        )
        self._episode_stats.append(episode_stats)
        write_totals(
            self.root,
            self.info,
            pending.index + 1,
            pending.from_index + length,
            pending.task_count,
            self._episode_stats,
        )
        self._saved_episodes += 1  # only now is saves_pending 0: info.json and stats.json are final too
