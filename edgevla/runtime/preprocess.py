"""Observation -> model inputs, model outputs -> robot actions; numpy + `tokenizers`, no torch.

Shared by the torch policy and the ONNX runtime so both see bit-for-bit the same inputs.
It reproduces lerobot's SmolVLA processors:
  - images: uint8 HxWx3 -> float [0,1] -> bilinear resize keeping aspect ratio to fit the
    square `resize` (torch `F.interpolate(mode="bilinear", align_corners=False)` semantics, no
    antialias), padded LEFT and TOP with 0, then mapped to [-1, 1]; a missing optional camera
    slot is an all -1 image with mask False;
  - state/action: MEAN_STD normalised ((x - mean) / (std + 1e-8); inverse x * std + mean) and
    zero-padded to max_state_dim / max_action_dim;
  - task: the policy's `task_suffix` (its conditioning, usually none) and "\n" appended,
    tokenised with the checkpoint's tokenizer, right-padded to the max
    length (a static shape for export; padded tokens are masked, which leaves the result
    unchanged). An instruction longer than the max is cut like lerobot does, with a warning.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgevla.errors import EdgevlaError, first_line
from edgevla.policy_io import IMAGE_PREFIX, STATE_KEY, TASK_KEY, PolicyIO, image_key

STD_EPS = 1e-8


# --- images ------------------------------------------------------------------------------------


def _linear_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source index pairs and weights of torch's bilinear (align_corners=False) along one axis,
    in float32 arithmetic like torch's CPU kernel (closer to it than float64)."""
    scale = np.float32(in_size) / np.float32(out_size)
    src = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    src = np.maximum(src, np.float32(0.0))
    low = np.minimum(src.astype(np.int64), in_size - 1)
    high = np.minimum(low + 1, in_size - 1)
    return low, high, src - low.astype(np.float32)


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """float32 (C, H, W) -> (C, height, width), matching torch bilinear with align_corners=False."""
    y0, y1, wy = _linear_taps(image.shape[1], height)
    x0, x1, wx = _linear_taps(image.shape[2], width)
    top = image[:, y0, :] * (1 - wy)[None, :, None] + image[:, y1, :] * wy[None, :, None]
    return top[:, :, x0] * (1 - wx)[None, None, :] + top[:, :, x1] * wx[None, None, :]


def _fit(height: int, width: int, max_height: int, max_width: int) -> tuple[float, int, int]:
    """The scale-down ratio and size that fit an image into max_height x max_width, aspect kept."""
    ratio = max(width / max_width, height / max_height)
    return ratio, int(height / ratio), int(width / ratio)


def letterbox(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 (3, size, size) in [-1, 1], aspect kept, padded left/top."""
    chw = image.transpose(2, 0, 1).astype(np.float32) / 255.0
    _, new_h, new_w = _fit(*chw.shape[1:], size, size)
    resized = resize_bilinear(chw, new_h, new_w)
    out = np.zeros((3, size, size), dtype=np.float32)
    out[:, size - new_h :, size - new_w :] = resized
    return out * 2.0 - 1.0


def shrink_to_fit(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 (H, W, 3) shrunk to the size `letterbox` would resize it to, with the same bilinear
    (so letterboxing the result resizes nothing: only rounding to uint8 differs); an image that
    already fits is returned as it is."""
    ratio, new_h, new_w = _fit(*image.shape[:2], height, width)
    if ratio <= 1:
        return image
    chw = resize_bilinear(image.transpose(2, 0, 1).astype(np.float32), max(new_h, 1), max(new_w, 1))
    return np.clip(np.rint(chw), 0, 255).astype(np.uint8).transpose(1, 2, 0)


def empty_image(size: int) -> np.ndarray:
    return np.full((3, size, size), -1.0, dtype=np.float32)


# --- vectors -----------------------------------------------------------------------------------


def pad_vector(vector: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((*vector.shape[:-1], size), dtype=np.float32)
    out[..., : vector.shape[-1]] = vector
    return out


@dataclass(frozen=True)
class MeanStd:
    """MEAN_STD statistics of one feature; None arrays mean IDENTITY."""

    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    def normalize(self, x: np.ndarray) -> np.ndarray:
        if self.mean is None:
            return x.astype(np.float32)
        return ((x - self.mean) / (self.std + STD_EPS)).astype(np.float32)

    def unnormalize(self, x: np.ndarray) -> np.ndarray:
        if self.mean is None:
            return x.astype(np.float32)
        return (x * self.std + self.mean).astype(np.float32)


# --- text --------------------------------------------------------------------------------------


class TaskTokenizer:
    """The checkpoint's tokenizer (a Hugging Face tokenizer.json) with SmolVLA's conventions."""

    def __init__(self, path: str | Path, max_length: int):
        from tokenizers import Tokenizer

        path = Path(path)
        if not path.is_file():
            raise EdgevlaError(f"tokenizer file {path} is missing: the policy directory is incomplete")
        try:
            self.tokenizer = Tokenizer.from_file(str(path))
        except Exception as err:  # noqa: BLE001 - `tokenizers` raises a bare Exception for bad files
            raise EdgevlaError(
                f"tokenizer file {path} is damaged ({first_line(err)}): copy the policy directory again"
            ) from err
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.max_length = max_length
        self.pad_id = self._pad_id()

    def _pad_id(self) -> int:
        for token in ("<|endoftext|>", "<pad>", "<|im_end|>"):
            token_id = self.tokenizer.token_to_id(token)
            if token_id is not None:
                return token_id
        return 0  # masked anyway

    @staticmethod
    def _text(task: str) -> str:
        return task if task.endswith("\n") else task + "\n"

    def count(self, task: str) -> int:
        """Tokens in `task` as the policy encodes it, before any cut to `max_length`."""
        return len(self.tokenizer.encode(self._text(task)).ids)

    def __call__(self, task: str) -> tuple[np.ndarray, np.ndarray]:
        """-> tokens int64 (max_length,), mask bool (max_length,)."""
        text = self._text(task)
        ids = self.tokenizer.encode(text).ids
        if len(ids) > self.max_length:
            warnings.warn(
                f"instruction is {len(ids)} tokens, the policy reads {self.max_length}: the end is cut "
                f"(as in training); shorten it: {task[:60]!r}...",
                stacklevel=2,
            )
            self.tokenizer.enable_truncation(self.max_length)
            ids = self.tokenizer.encode(text).ids
            self.tokenizer.no_truncation()
        tokens = np.full(self.max_length, self.pad_id, dtype=np.int64)
        tokens[: len(ids)] = ids
        mask = np.zeros(self.max_length, dtype=bool)
        mask[: len(ids)] = True
        return tokens, mask


# --- the whole observation ---------------------------------------------------------------------


@dataclass(frozen=True)
class ModelInputs:
    """Batch-less inputs of `encode_prefix` (add the leading batch axis to feed a model): those of
    `encode_context` (images, masks, tokens) and of `encode_state` (state)."""

    images: np.ndarray  # float32 (slots, 3, S, S)
    image_masks: np.ndarray  # bool (slots,)
    tokens: np.ndarray  # int64 (T,)
    token_mask: np.ndarray  # bool (T,)
    state: np.ndarray  # float32 (max_state_dim,)


@dataclass
class Preprocessor:
    """The numpy pre/post-processing of one policy: `io` (its shapes), its tokenizer and stats."""

    io: PolicyIO
    tokenizer: TaskTokenizer
    state_stats: MeanStd
    action_stats: MeanStd

    def __call__(self, obs: dict) -> ModelInputs:
        return ModelInputs(*self.context(obs), self.state(obs))

    def context(self, obs: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """System 2's inputs: images (slots, 3, S, S), image_masks, tokens, token_mask."""
        io = self.io
        images = [self._camera(obs, name) for name in io.cameras]
        images += [empty_image(io.resize)] * io.empty_cameras
        masks = np.array([True] * len(io.cameras) + [False] * io.empty_cameras)
        task = obs.get(TASK_KEY)
        if isinstance(task, np.ndarray) and task.ndim == 0:
            task = task.item()
        if not isinstance(task, str):
            raise EdgevlaError(
                f"observation has no '{TASK_KEY}' string: pass the instruction as obs['{TASK_KEY}']"
            )
        tokens, token_mask = self.tokenizer(task + io.task_suffix)
        return np.stack(images), masks, tokens, token_mask

    def _camera(self, obs: dict, name: str) -> np.ndarray:
        key = image_key(name)
        if key not in obs:
            present = sorted(k for k in obs if k.startswith(IMAGE_PREFIX))
            raise EdgevlaError(f"observation lacks camera '{key}' that the policy expects (it has {present})")
        image = np.asarray(obs[key])
        if image.dtype != np.uint8:
            raise EdgevlaError(f"{key} is {image.dtype}: images must be uint8 HxWx3 (0..255)")
        if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
            raise EdgevlaError(f"{key} has shape {image.shape}: images must be HxWx3 uint8")
        return letterbox(image, self.io.resize)

    def state(self, obs: dict) -> np.ndarray:
        """System 1's input: the state, normalised and padded (max_state_dim,)."""
        if STATE_KEY not in obs:
            raise EdgevlaError(f"observation lacks '{STATE_KEY}' ({self.io.state_dim} floats)")
        state = np.asarray(obs[STATE_KEY], dtype=np.float32).reshape(-1)
        if state.shape[0] != self.io.state_dim:
            raise EdgevlaError(
                f"{STATE_KEY} has {state.shape[0]} values, the policy expects {self.io.state_dim}"
            )
        if not np.all(np.isfinite(state)):
            raise EdgevlaError(f"{STATE_KEY} contains NaN or inf")
        return pad_vector(self.state_stats.normalize(state), self.io.max_state_dim)

    def check_noise(self, noise: np.ndarray) -> np.ndarray:
        noise = np.asarray(noise, dtype=np.float32)
        shape = (self.io.chunk_size, self.io.max_action_dim)
        if noise.shape != shape:
            raise EdgevlaError(f"noise has shape {noise.shape}, the policy needs {shape}")
        return noise

    def normalize_actions(self, actions: np.ndarray) -> np.ndarray:
        """Robot-unit actions (..., action_dim) -> normalised, padded to max_action_dim."""
        return pad_vector(self.action_stats.normalize(actions), self.io.max_action_dim)

    def guidance(self, actions: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """RTC guidance in model space: normalised padded actions (1, chunk, max_action_dim) and
        weights clipped to [0, 1] (1, chunk); shapes are checked against the policy."""
        actions = np.asarray(actions, dtype=np.float32)
        weights = np.asarray(weights, dtype=np.float32)
        chunk, dim = self.io.chunk_size, self.io.action_dim
        if actions.shape != (chunk, dim) or weights.shape != (chunk,):
            raise EdgevlaError(
                f"guidance must be actions ({chunk}, {dim}) and weights ({chunk},); "
                f"got {actions.shape} and {weights.shape}"
            )
        return self.normalize_actions(actions)[None], np.clip(weights, 0, 1)[None]

    def hold(self, obs: dict) -> np.ndarray:
        """The chunk a policy returns when its head decoded none (fast): the observed state
        repeated, in robot units, where actions are positions of the same joints (state and
        action of one size, as on the SO-101); else the mean action."""
        if self.io.state_dim == self.io.action_dim:
            state = np.asarray(obs[STATE_KEY], dtype=np.float32).reshape(-1)
            return np.tile(state, (self.io.chunk_size, 1))
        return self.postprocess(np.zeros((self.io.chunk_size, self.io.max_action_dim), np.float32))

    def postprocess(self, chunk: np.ndarray) -> np.ndarray:
        """Model output (chunk, max_action_dim) normalised -> (chunk, action_dim) robot units."""
        return self.action_stats.unnormalize(chunk[..., : self.io.action_dim])
