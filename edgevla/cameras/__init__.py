"""Camera sources read in background threads, each keeping only its latest frame (torch-free).

from edgevla.cameras import open_cameras, parse_camera_spec
readers = open_cameras([parse_camera_spec("front=synthetic?width=320&height=240")])
frame = readers[0].wait_frame()          # Frame(image=uint8 HxWx3 RGB, capture_time, seq)
...
for reader in readers: reader.stop()
"""

from edgevla.cameras.base import CameraError, CameraReader, CameraSource, Frame
from edgevla.cameras.spec import SOURCES, SourceSpec, make_source, open_cameras, parse_camera_spec

__all__ = [
    "SOURCES",
    "CameraError",
    "CameraReader",
    "CameraSource",
    "Frame",
    "SourceSpec",
    "make_source",
    "open_cameras",
    "parse_camera_spec",
]
