"""`NAME=SOURCE` camera specifications (`--camera front=synthetic`) and the registry of sources.

    SOURCE  = KIND[:TARGET][?OPTION=VALUE&...]        e.g. opencv:/dev/video2?width=1280&height=720
    OPTION  = width | height | fps
    shorthand: a bare index ("0") or path ("/dev/video0", "./clip.mp4") means opencv:TARGET

To add a source kind, add one line to `SOURCES` naming a `CameraSource` subclass whose
`from_spec(spec)` builds it; the module is imported only when that kind is asked for.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field

from edgevla.cameras.base import CameraError, CameraReader, CameraSource

# kind -> "module:Class"
SOURCES: dict[str, str] = {
    "synthetic": "edgevla.cameras.synthetic:SyntheticCamera",
    "opencv": "edgevla.cameras.opencv:OpenCVCamera",
    "sim": "edgevla.cameras.sim:SimCamera",
}

_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_OPTIONS = {"width": int, "height": int, "fps": float}


@dataclass(frozen=True)
class SourceSpec:
    name: str  # becomes the dataset feature observation.images.<name>
    kind: str
    target: str = ""  # device index/path for opencv; unused by synthetic
    width: int = 640
    height: int = 480
    fps: float = 30.0
    options: dict[str, str] = field(default_factory=dict)  # kind-specific extras, for new sources


def parse_camera_spec(text: str, width: int = 640, height: int = 480, fps: float = 30.0) -> SourceSpec:
    """Parse one `NAME=SOURCE`; `width/height/fps` are used where the spec does not set them."""
    name, sep, source = text.partition("=")
    if not sep or not _NAME.match(name) or not source:
        raise CameraError(
            f"camera spec '{text}': expected NAME=SOURCE with NAME made of letters, digits and '_' "
            "(e.g. front=synthetic or wrist=/dev/video0)"
        )
    source, _, query = source.partition("?")
    if source.isdigit() or source.startswith(("/", "./", "../")):
        kind, target = "opencv", source
    else:
        kind, _, target = source.partition(":")
    if kind not in SOURCES:
        raise CameraError(
            f"camera spec '{text}': unknown source '{kind}' (known: {', '.join(sorted(SOURCES))})"
        )
    settings: dict[str, float | int] = {"width": width, "height": height, "fps": fps}
    extras: dict[str, str] = {}
    for item in filter(None, query.split("&")):
        key, _, value = item.partition("=")
        if key in _OPTIONS:
            try:
                settings[key] = _OPTIONS[key](value)
            except ValueError:
                raise CameraError(f"camera spec '{text}': option {key}={value!r} is not a number") from None
        else:
            extras[key] = value
    if settings["width"] <= 0 or settings["height"] <= 0 or settings["fps"] <= 0:
        raise CameraError(f"camera spec '{text}': width, height and fps must be positive")
    return SourceSpec(
        name, kind, target, int(settings["width"]), int(settings["height"]), float(settings["fps"]), extras
    )


def make_source(spec: SourceSpec) -> CameraSource:
    module_name, _, class_name = SOURCES[spec.kind].partition(":")
    source_class = getattr(importlib.import_module(module_name), class_name)
    return source_class.from_spec(spec)


def open_cameras(specs: list[SourceSpec]) -> list[CameraReader]:
    """Start one reader per spec; if one fails, stop those already started and re-raise."""
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise CameraError(f"camera names must be unique, got {', '.join(names)}")
    readers: list[CameraReader] = []
    try:
        for spec in specs:
            readers.append(CameraReader(make_source(spec)).start())
    except BaseException:
        for reader in readers:
            reader.stop()
        raise
    return readers
