"""Saving what the cameras saw: an animated GIF or a PNG strip (Pillow, the `sim` extra)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np

from edgevla.errors import MissingExtraError


def pillow_image() -> ModuleType:
    """PIL.Image; callers that save a clip at the end ask for it first, so a missing extra is said
    before the episodes run, not after."""
    try:
        from PIL import Image
    except ModuleNotFoundError:
        raise MissingExtraError("sim", "PIL") from None
    return Image


def save_frames(frames: list[np.ndarray], path: Path, fps: float, strip_every: int = 10) -> None:
    """`.gif`: every frame, animated; anything else: a PNG strip of every `strip_every`-th frame."""
    Image = pillow_image()  # noqa: N806 - the module's own name
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        images = [Image.fromarray(f) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    else:
        Image.fromarray(np.concatenate(frames[::strip_every] + [frames[-1]], axis=1)).save(path)


def stack_views(images: list[np.ndarray], axis: int = 1) -> np.ndarray:
    """Camera views in a row (axis 1) or a column (axis 0); cameras may differ in size, so each is
    padded (bottom or right) to the largest."""
    other = 1 - axis
    extent = max(i.shape[other] for i in images)
    padded = []
    for image in images:
        pad = [(0, 0)] * 3
        pad[other] = (0, extent - image.shape[other])
        padded.append(np.pad(image, pad))
    return np.concatenate(padded, axis=axis)
