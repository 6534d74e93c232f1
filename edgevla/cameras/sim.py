"""`NAME=sim:CAMERA[?socket=PATH]`: a camera of a running simulator (`edgevla sim serve`).

The simulator renders its cameras and publishes them on a Unix socket (edgevla.sim.frames);
this source reads the newest frame of CAMERA from it, so `edgevla record` and `edgevla run`
see a simulated arm exactly like a USB camera. The image size is the simulator's
(`edgevla sim serve --size`); the spec's width/height are not used.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgevla.cameras.base import CameraError, CameraSource
from edgevla.errors import EdgevlaError
from edgevla.sim.frames import FrameClient, default_socket

if TYPE_CHECKING:
    from edgevla.cameras.spec import SourceSpec


class SimCamera(CameraSource):
    def __init__(self, name: str, camera: str, socket_path: Path, fps: float = 30.0):
        self.name, self.camera, self.socket_path, self.fps = name, camera, socket_path, fps
        self.width = self.height = 0  # known after the first frame
        self._client: FrameClient | None = None
        self._seq = -1

    @classmethod
    def from_spec(cls, spec: SourceSpec) -> SimCamera:
        unknown = set(spec.options) - {"socket"}
        if unknown:
            raise CameraError(
                f"camera '{spec.name}': the sim source takes only ?socket=PATH, not {sorted(unknown)}"
            )
        path = Path(spec.options["socket"]) if "socket" in spec.options else default_socket()
        return cls(spec.name, spec.target or spec.name, path, spec.fps)

    def open(self) -> None:
        try:
            self._client = FrameClient(self.socket_path)
            first = self._client.next_frame(self.camera)
        except EdgevlaError as err:
            self.close()
            raise CameraError(f"camera '{self.name}': {err}") from None
        self.height, self.width = first.image.shape[:2]
        self._seq = first.seq - 1  # the first read returns this frame again

    def read(self) -> np.ndarray:
        if self._client is None:
            raise CameraError(f"camera '{self.name}' is not open")
        frame = self._client.next_frame(self.camera, self._seq)
        self._seq = frame.seq
        return frame.image

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
