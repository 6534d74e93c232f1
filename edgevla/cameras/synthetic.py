"""A camera that needs no hardware: moving stripes with the frame number drawn as a bar code.

The bar code fills the top band of the image with `CODE_BITS` black/white cells between a white
start cell and a black stop cell. The cells are large and flat, so the number survives lossy video
encoding: `decode_counter` reads it back from a decoded frame, which lets tests check that no frame
was dropped, repeated or reordered on the way into a dataset.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from edgevla.cameras.base import CameraError, CameraSource

if TYPE_CHECKING:
    from edgevla.cameras.spec import SourceSpec

CODE_BITS = 16
_CELLS = CODE_BITS + 2  # start cell (white) + bits (MSB first) + stop cell (black)
_STRIPE_PERIOD = 64  # pixels; the pattern moves 4 px per frame so motion is visible


def _band_height(height: int) -> int:
    return max(4, height // 6)


def _cell_edges(width: int) -> np.ndarray:
    return np.linspace(0, width, _CELLS + 1).round().astype(int)


def draw_counter(image: np.ndarray, counter: int) -> None:
    """Paint `counter` (mod 2**CODE_BITS) into the top band of `image` in place."""
    bits = [1] + [(counter >> (CODE_BITS - 1 - i)) & 1 for i in range(CODE_BITS)] + [0]
    band = _band_height(image.shape[0])
    edges = _cell_edges(image.shape[1])
    for cell, bit in enumerate(bits):
        image[:band, edges[cell] : edges[cell + 1]] = 255 if bit else 0


def decode_counter(image: np.ndarray) -> int:
    """Read the number `draw_counter` painted; ValueError if the image holds no bar code."""
    band = _band_height(image.shape[0])
    edges = _cell_edges(image.shape[1])
    rows = slice(band // 4, band - band // 4)
    levels = []
    for cell in range(_CELLS):
        left, right = edges[cell], edges[cell + 1]
        margin = (right - left) // 4
        levels.append(float(image[rows, left + margin : right - margin].mean()))
    bits = [level > 127.5 for level in levels]
    if not bits[0] or bits[-1] or min(abs(level - 127.5) for level in levels) < 40:
        raise ValueError("no synthetic frame counter found in this image")
    return sum(bit << (CODE_BITS - 1 - i) for i, bit in enumerate(bits[1:-1]))


class SyntheticCamera(CameraSource):
    """Generates frames at `fps`; frame n is the n-th frame period since `open()`.

    Like a real camera it does not wait for a slow reader: if the reader thread is late, the
    frames of the missed periods are skipped and their numbers never appear.
    """

    def __init__(self, name: str, width: int = 640, height: int = 480, fps: float = 30.0):
        if width < _CELLS * 2 or height < 12:
            raise CameraError(
                f"synthetic camera '{name}': {width}x{height} is too small (min {_CELLS * 2}x12)"
            )
        self.name, self.width, self.height, self.fps = name, width, height, fps
        self._start = 0.0
        self._next = 0
        self._background = self._make_background()

    @classmethod
    def from_spec(cls, spec: SourceSpec) -> SyntheticCamera:
        if spec.target or spec.options:
            raise CameraError(f"camera '{spec.name}': the synthetic source takes only width, height and fps")
        return cls(spec.name, spec.width, spec.height, spec.fps)

    def _make_background(self) -> np.ndarray:
        # Wider than the frame by one stripe period, so a frame is a cheap horizontal slice of it.
        y, x = np.mgrid[0 : self.height, 0 : self.width + _STRIPE_PERIOD]
        stripes = ((x + y) % _STRIPE_PERIOD) < _STRIPE_PERIOD // 2
        background = np.empty((self.height, self.width + _STRIPE_PERIOD, 3), np.uint8)
        background[..., 0] = np.where(stripes, 200, 40)
        background[..., 1] = (y * 255 // max(1, self.height - 1)).astype(np.uint8)
        background[..., 2] = np.where(stripes, 60, 180)
        return background

    def open(self) -> None:
        self._start = time.monotonic()
        self._next = 0

    def image(self, counter: int) -> np.ndarray:
        """Frame number `counter` (deterministic; also used by tests to build expected frames)."""
        shift = (counter * 4) % _STRIPE_PERIOD
        image = self._background[:, shift : shift + self.width].copy()
        draw_counter(image, counter)
        return image

    def read(self) -> np.ndarray:
        due = self._start + self._next / self.fps
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        counter = max(self._next, int((time.monotonic() - self._start) * self.fps))
        self._next = counter + 1
        return self.image(counter)

    def close(self) -> None:
        pass
