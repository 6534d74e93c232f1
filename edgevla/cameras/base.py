"""One interface for every camera: a source that yields frames, and a thread that keeps the latest.

A `CameraSource` knows how to open a device (or generate images) and block until the next image
is ready. `CameraReader` runs one source in its own thread and keeps only the newest `Frame`, so
a control loop that samples cameras at its own rate never waits on a camera and never reads a
stale backlog.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from edgevla.errors import EdgevlaError

if TYPE_CHECKING:
    from edgevla.cameras.spec import SourceSpec


class CameraError(EdgevlaError):
    """A camera could not be opened or stopped delivering frames."""


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # uint8 (H, W, 3) RGB
    capture_time: float  # time.monotonic() when the image was grabbed
    seq: int  # 0, 1, 2... per reader; a gap means the reader skipped nothing but the source did


class CameraSource(ABC):
    """A device or generator of RGB images; `read` blocks until the next one is available."""

    name: str
    width: int
    height: int
    fps: float

    @classmethod
    @abstractmethod
    def from_spec(cls, spec: SourceSpec) -> CameraSource:
        """Build the source from a parsed `NAME=SOURCE` spec (see edgevla.cameras.spec)."""

    @abstractmethod
    def open(self) -> None:
        """Acquire the device; raise CameraError with what to do if it cannot be opened."""

    @abstractmethod
    def read(self) -> np.ndarray:
        """Block until the next image and return it as uint8 (height, width, 3) RGB."""

    @abstractmethod
    def close(self) -> None:
        """Release the device (safe to call twice)."""


class CameraReader:
    """Reads `source` in a daemon thread and keeps only the latest frame."""

    def __init__(self, source: CameraSource):
        self.source = source
        self._lock = threading.Lock()
        self._latest: Frame | None = None
        self._new_frame = threading.Condition(self._lock)
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self.source.name

    def start(self) -> CameraReader:
        # Open in the caller's thread so that "cannot open camera" surfaces where it is asked for.
        self.source.open()
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.name}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        seq = 0
        try:
            while not self._stop.is_set():
                image = self.source.read()
                frame = Frame(image=image, capture_time=time.monotonic(), seq=seq)
                with self._lock:
                    self._latest = frame
                    self._new_frame.notify_all()
                seq += 1
        except BaseException as err:  # handed to the consumer on its next call
            with self._lock:
                self._error = err
                self._new_frame.notify_all()

    def _check(self) -> None:
        if self._error is not None and not self._stop.is_set():
            raise CameraError(f"camera '{self.name}' stopped delivering frames: {self._error}")

    def latest(self) -> Frame | None:
        """The newest frame (None before the first one); raises if the camera thread died."""
        with self._lock:
            self._check()
            return self._latest

    def wait_frame(self, after_seq: int = -1, timeout: float = 5.0) -> Frame:
        """Block until a frame newer than `after_seq` exists and return it."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._latest is None or self._latest.seq <= after_seq:
                self._check()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CameraError(
                        f"camera '{self.name}' delivered no frame within {timeout:.1f} s; "
                        "check the cable/device or lower its resolution"
                    )
                self._new_frame.wait(left)
            return self._latest

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self.source.close()

    def __enter__(self) -> CameraReader:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
