"""USB/V4L2 cameras and video files through OpenCV (an optional dependency).

OpenCV is not installed with edgevla's core: it is large and robot images often ship their own
build. The `cameras` extra (`pip install 'edgevla[cameras]'`: opencv-python-headless) or the
distribution's python3-opencv enables this source.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgevla.cameras.base import CameraError, CameraSource

if TYPE_CHECKING:
    from edgevla.cameras.spec import SourceSpec


def _import_cv2(camera: str):
    try:
        import cv2
    except ImportError as err:
        raise CameraError(
            f"camera '{camera}': OpenCV camera sources need OpenCV, which is not installed: "
            "pip install 'edgevla[cameras]' (or the distribution's python3-opencv; or use a 'synthetic' camera)"
        ) from err
    return cv2


class OpenCVCamera(CameraSource):
    """`device` is an index ("0") or a path ("/dev/video2", a video file, an RTSP URL)."""

    def __init__(self, name: str, device: str, width: int = 640, height: int = 480, fps: float = 30.0):
        self.name, self.device = name, device
        self.width, self.height, self.fps = width, height, fps
        self._capture = None

    @classmethod
    def from_spec(cls, spec: SourceSpec) -> OpenCVCamera:
        if not spec.target:
            raise CameraError(f"camera '{spec.name}': opencv needs a device, e.g. opencv:0 or /dev/video0")
        if spec.options:
            raise CameraError(f"camera '{spec.name}': unknown opencv option(s) {', '.join(spec.options)}")
        return cls(spec.name, spec.target, spec.width, spec.height, spec.fps)

    def open(self) -> None:
        cv2 = _import_cv2(self.name)
        target: int | str = int(self.device) if self.device.isdigit() else self.device
        capture = cv2.VideoCapture(target)
        if not capture.isOpened():
            capture.release()
            raise CameraError(
                f"camera '{self.name}': cannot open OpenCV device '{self.device}'; "
                "check it exists (ls /dev/video*), is not in use, and you may read it (group 'video')"
            )
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        capture.set(cv2.CAP_PROP_FPS, self.fps)
        # Drivers may pick the nearest mode they support: record what the device really delivers.
        self.width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)) or self.width
        self.height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) or self.height
        self._capture = capture
        self._cv2 = cv2

    def read(self) -> np.ndarray:
        ok, bgr = self._capture.read()
        if not ok:
            raise CameraError(f"camera '{self.name}': device '{self.device}' returned no image")
        return self._cv2.cvtColor(bgr, self._cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
