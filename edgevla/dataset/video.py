"""Video encoding in a background thread, and decoding frames at timestamps (PyAV).

Encoding follows lerobot's defaults (libsvtav1, yuv420p, g=2, crf=30, preset 12) so datasets
look like lerobot's; h264 (libx264) is the fast option. One encoder per camera and episode
runs in its own thread, so the recording loop only puts frames in a queue.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from edgevla.dataset.durable import DatasetWriteError, describe_os_error
from edgevla.dataset.format import DatasetFormatError
from edgevla.dataset.stats import ImageStatsAccumulator, Stats
from edgevla.errors import first_line

CODEC_NAMES = {"libsvtav1": "av1", "libx264": "h264", "libaom-av1": "av1", "libopenh264": "h264"}
ENCODER_FOR = {"av1": "libsvtav1", "h264": "libx264"}  # codec in info.json -> encoder to append with
_END, _ABORT = object(), object()


@dataclass(frozen=True)
class VideoConfig:
    codec: str = "libsvtav1"
    crf: int = 30
    gop: int = 2
    preset: int | None = 12  # libsvtav1 only (0 slowest .. 12/13 fastest); libx264 uses 'veryfast'
    pix_fmt: str = "yuv420p"

    def options(self) -> dict[str, str]:
        options = {"g": str(self.gop), "crf": str(self.crf)}
        if self.codec == "libsvtav1" and self.preset is not None:
            options["preset"] = str(self.preset)
        elif self.codec == "libx264":
            options["preset"] = "veryfast"
        return options

    def feature_info(self, height: int, width: int, fps: int) -> dict:
        """The `info` block lerobot stores with a video feature in info.json."""
        return {
            "video.height": height,
            "video.width": width,
            "video.codec": CODEC_NAMES.get(self.codec, self.codec),
            "video.pix_fmt": self.pix_fmt,
            "video.is_depth_map": False,
            "video.fps": fps,
            "video.channels": 3,
            "has_audio": False,
        }


def check_codec(codec: str) -> None:
    if codec not in av.codecs_available:
        raise DatasetFormatError(f"video codec '{codec}' is not available in this PyAV build; try libx264")


ENCODER_NICENESS = 10
_REAL_TIME = {getattr(os, "SCHED_FIFO", -1), getattr(os, "SCHED_RR", -1)}


def _lower_priority_of_this_thread() -> None:
    """Let the control loop win the CPU over encoding: on Linux a thread has its own nice value,
    and the codec's worker threads (created when the codec opens, from this thread) inherit it.
    A real-time policy inherited from the thread that made the encoder (a `--realtime` loop) is
    dropped first: nice values mean nothing to a real-time thread. Encoding that falls behind
    catches up from its queue, e.g. during the reset period."""
    if hasattr(os, "setpriority") and hasattr(threading, "get_native_id"):
        _make_normal(threading.get_native_id())


def _make_normal(tid: int) -> None:
    with contextlib.suppress(OSError):  # gone, or not permitted here: leave it as it is
        if hasattr(os, "sched_setscheduler") and os.sched_getscheduler(tid) in _REAL_TIME:
            os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
        os.setpriority(os.PRIO_PROCESS, tid, ENCODER_NICENESS)


class _CodecThreads:
    """Keeps the codec's threads from running at real-time priority.

    SVT-AV1, run as root (a Docker container on a Jetson, this dev box), starts its threads as
    SCHED_FIFO priority 99, when it opens and again later, some from its own threads: on a
    2-core computer they would pre-empt the control loop that the encoding is meant to yield to.
    `demote()`, called after the codec opens and after each frame, makes every thread that did
    not exist when this object was made and is real-time, and the encoding thread itself (SVT
    raises it too), a normal one at the encoder's nice value. (A real-time thread of your own
    started while recording would be taken for the codec's; edgevla's `--realtime` loop is
    `edgevla run`, which does not record.) Linux only; elsewhere it does nothing."""

    def __init__(self) -> None:
        self._seen = _thread_ids()
        self._encoding = threading.get_native_id()

    def demote(self) -> None:
        if not self._seen:
            return
        current = _thread_ids()
        for tid in (current - self._seen) | {self._encoding}:
            with contextlib.suppress(OSError):  # it ended already
                if os.sched_getscheduler(tid) in _REAL_TIME:
                    _make_normal(tid)
        self._seen = current


def _thread_ids() -> set[int]:
    try:
        return {int(tid) for tid in os.listdir("/proc/self/task")}
    except OSError:  # not Linux
        return set()


def _add_video_stream(
    container: av.container.OutputContainer, width: int, height: int, fps: int, config: VideoConfig
) -> av.VideoStream:
    # SVT-AV1 prints ~20 info lines per encoder on stderr unless told to log errors only.
    os.environ.setdefault("SVT_LOG", "1")
    stream = container.add_stream(config.codec, rate=fps, options=config.options())
    stream.width, stream.height, stream.pix_fmt = width, height, config.pix_fmt
    return stream


class VideoEncoder:
    """Encodes the frames `put` into one mp4 file from a daemon thread.

    `finish()` flushes and closes the file and returns its frame count and image stats;
    errors in the thread (disk full...) are raised there.
    """

    def __init__(self, path: Path, width: int, height: int, fps: int, config: VideoConfig):
        self.path, self.width, self.height, self.fps, self.config = path, width, height, fps, config
        self.frames = 0
        self.image_stats = ImageStatsAccumulator()
        self._queue: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self.ready = threading.Event()  # set once the codec is open (or failed to open)
        self._thread = threading.Thread(target=self._run, name=f"encode-{path.name}", daemon=True)
        self._thread.start()

    def put(self, image: np.ndarray) -> None:
        """Never blocks; the frame is encoded later by the thread."""
        self._queue.put(image)

    @property
    def error(self) -> BaseException | None:
        """What stopped the encoding thread, if anything did."""
        return self._error

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    def _run(self) -> None:
        container = None
        try:
            _lower_priority_of_this_thread()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            container = av.open(str(self.path), "w", format="mp4")
            stream = _add_video_stream(container, self.width, self.height, self.fps, self.config)
            # Open the codec now (SVT-AV1 takes ~20 ms holding the GIL) rather than at the first
            # frame, so a writer can prepare the next episode's encoders while nothing is recorded.
            codec_threads = _CodecThreads()
            stream.codec_context.open()
            codec_threads.demote()
            self.ready.set()
            time_base = Fraction(1, self.fps)
            while True:
                image = self._queue.get()
                if image is _ABORT:
                    break
                if image is _END:
                    container.mux(stream.encode())
                    break
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts, frame.time_base = self.frames, time_base
                container.mux(stream.encode(frame))
                codec_threads.demote()
                self.image_stats.add(image)
                self.frames += 1
        except BaseException as err:
            self._error = err
            self.ready.set()
            while not self._queue.empty():  # release the frames nobody will encode
                self._queue.get_nowait()
        finally:
            if container is not None:
                try:
                    container.close()
                except BaseException as err:  # closing writes the moov atom: it can fail too
                    self._error = self._error or err

    def finish(self) -> tuple[int, Stats]:
        self._queue.put(_END)
        self._thread.join()
        if self._error is not None:
            raise self._error
        if self.frames == 0:
            raise DatasetFormatError(f"no frames were encoded into {self.path}")
        return self.frames, self.image_stats.stats()

    def abort(self) -> None:
        self._queue.put(_ABORT)
        self._thread.join()
        self.path.unlink(missing_ok=True)


class DamagedVideoError(DatasetFormatError):
    """A video file that PyAV cannot open or read to its end (truncated, overwritten)."""

    def __init__(self, path: Path, reason: str):
        self.path, self.reason = path, reason
        super().__init__(
            f"video {path} is damaged or truncated ({self.reason}); "
            "'edgevla dataset repair' drops the episodes stored in it"
        )


def _video_stream(container: av.container.InputContainer, path: Path) -> av.VideoStream:
    if not container.streams.video:
        raise DamagedVideoError(path, "it holds no video stream")
    return container.streams.video[0]


def frame_times(path: Path) -> np.ndarray:
    """Sorted presentation times (s) of every frame of the first video stream, without decoding."""
    try:
        with av.open(str(path)) as container:
            stream = _video_stream(container, path)
            pts = [p.pts for p in container.demux(stream) if p.size > 0 and p.pts is not None]
            return np.sort(np.asarray(pts, np.float64) * float(stream.time_base))
    except av.FFmpegError as err:
        raise DamagedVideoError(path, err.strerror or first_line(err)) from err


def decode_frames(path: Path, timestamps: list[float], tolerance: float) -> np.ndarray:
    """uint8 (len(timestamps), H, W, 3) RGB: for each timestamp the frame closest to it.

    Raises DatasetFormatError if the closest frame is farther than `tolerance` seconds.
    """
    first, last = min(timestamps), max(timestamps)
    found: list[tuple[float, np.ndarray]] = []
    try:
        with av.open(str(path)) as container:
            stream = _video_stream(container, path)
            stream.thread_type = "AUTO"
            container.seek(int(max(0.0, first - tolerance) / stream.time_base), stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.time < first - tolerance:
                    continue
                found.append((frame.time, frame.to_ndarray(format="rgb24")))
                if frame.time >= last + tolerance:
                    break
    except av.FFmpegError as err:
        raise DamagedVideoError(path, err.strerror or first_line(err)) from err
    if not found:
        raise DatasetFormatError(f"{path}: no video frame near {first:.3f}..{last:.3f} s")
    times = np.array([time for time, _ in found])
    images = []
    for wanted in timestamps:
        nearest = int(np.abs(times - wanted).argmin())
        if abs(times[nearest] - wanted) > tolerance:
            raise DatasetFormatError(
                f"{path}: no video frame within {tolerance * 1000:.0f} ms of {wanted:.4f} s "
                f"(nearest {times[nearest]:.4f} s); the video and the parquet timestamps disagree"
            )
        images.append(found[nearest][1])
    return np.stack(images)


def copy_frames(
    source: Path,
    target: Path,
    ranges: list[tuple[float, float]],
    fps: int,
    config: VideoConfig,
    tolerance: float,
) -> int:
    """Re-encode the frames of `source` that lie in `ranges` ((start, end) seconds) into a new
    video `target`, numbered from 0 at `fps`: how `repair` takes a dropped episode out of a
    video it shares with others (lerobot's delete_episodes re-encodes too). Returns the frames.
    Encodes through a `VideoEncoder`, so the codec's threads are demoted as when recording
    (`record --resume` repairs from the thread that then runs the recording loop)."""
    encoder = None
    try:
        with av.open(str(source)) as reader:
            stream = _video_stream(reader, source)
            size = stream.codec_context.width, stream.codec_context.height
            encoder = VideoEncoder(target, *size, fps, config)
            for frame in reader.decode(stream):
                if any(start - tolerance <= frame.time < end - tolerance for start, end in ranges):
                    while encoder.backlog > fps:  # hold at most a second of decoded frames
                        time.sleep(0.005)
                    encoder.put(frame.to_ndarray(format="rgb24"))
        frames, _ = encoder.finish()
    except (OSError, av.FFmpegError) as err:
        if encoder is not None:
            encoder.abort()
        reason = describe_os_error(err) if isinstance(err, OSError) else first_line(err)
        raise DatasetWriteError(f"cannot copy frames of {source} into {target} ({reason})") from err
    return frames
