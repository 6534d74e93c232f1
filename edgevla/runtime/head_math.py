"""The numbers an action head and its numpy loop share, in numpy: one definition for both sides.

The torch heads (edgevla.model.heads) train with these tables and sample with these functions,
and the torch-free loops (head_loops.py) run the same ones between graph calls, so a chunk
differs between backends only by what the graphs compute.

    diffusion   cosine noise schedule (Nichol & Dhariwal), DDIM timesteps and its update (eta 0),
                with RTC inpainting of the predicted clean chunk
    bins        a normalised value <-> one of N bins over a per-dimension range
    fast        the FAST tokenizer: per-dimension DCT over the chunk, scale and round, low
                frequencies of every dimension first, BPE (`tokenizers`) over the integers
"""

from __future__ import annotations

import json
import math
from functools import cache

import numpy as np

from edgevla.runtime.sampler import GuidanceTarget

# --- diffusion ---------------------------------------------------------------------------------

CLIP_X0 = 5.0  # predicted clean chunks are clipped here (normalised units; Octo's max_action)


@cache
def cosine_alpha_bars(train_timesteps: int, offset: float = 0.008) -> np.ndarray:
    """Cumulative signal fractions alpha_bar_t, t = 0..T-1, of the cosine schedule (float64):
    betas from the ratio of alpha_bar(t) = cos^2((t/T + s) / (1 + s) * pi/2), capped at 0.999."""

    def alpha_bar(step: float) -> float:
        return math.cos((step / train_timesteps + offset) / (1 + offset) * math.pi / 2) ** 2

    betas = [min(1 - alpha_bar(t + 1) / alpha_bar(t), 0.999) for t in range(train_timesteps)]
    table = np.cumprod(1.0 - np.asarray(betas, dtype=np.float64))
    table.flags.writeable = False
    return table


def ddim_timesteps(train_timesteps: int, num_steps: int) -> list[int]:
    """`num_steps` training timesteps from the noisiest (T-1) down to 0, evenly spaced."""
    return [int(t) for t in np.linspace(train_timesteps - 1, 0, num_steps).round()]


def diffusion_time(step: int, train_timesteps: int) -> float:
    """The float32 time in [0, 1) the network's sinusoidal embedding sees for timestep `step`."""
    return float(np.float32(step / train_timesteps))


def ddim_step(
    x_t: np.ndarray,
    eps: np.ndarray,
    alpha_t: float,
    alpha_prev: float,
    guidance: GuidanceTarget | None = None,
) -> np.ndarray:
    """One deterministic DDIM update from noise level alpha_t to alpha_prev (1.0: the clean chunk).

    x0 = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t), clipped; RTC inpainting blends x0 toward the
    target per chunk step (real action dims only) and re-derives eps from it, so at the last
    update (alpha_prev = 1) weight 1 lands exactly on the target."""
    x_t, eps = x_t.astype(np.float64), eps.astype(np.float64)
    x0 = np.clip((x_t - math.sqrt(1 - alpha_t) * eps) / math.sqrt(alpha_t), -CLIP_X0, CLIP_X0)
    if guidance is not None:
        weights = np.zeros_like(x0)
        weights[..., : guidance.action_dim] = guidance.weights[..., None]
        x0 = x0 + weights * (guidance.actions - x0)
    eps = (x_t - math.sqrt(alpha_t) * x0) / math.sqrt(1 - alpha_t)
    return (math.sqrt(alpha_prev) * x0 + math.sqrt(1 - alpha_prev) * eps).astype(np.float32)


def ddim_chunk(epsilon, noise: np.ndarray, train_timesteps: int, num_steps: int, guidance=None) -> np.ndarray:
    """Sample a chunk: `epsilon(x_t, step)` is one network call at training timestep `step`."""
    alphas = cosine_alpha_bars(train_timesteps)
    steps = ddim_timesteps(train_timesteps, num_steps)
    x_t = noise.astype(np.float32)
    for index, step in enumerate(steps):
        previous = steps[index + 1] if index + 1 < len(steps) else -1
        alpha_prev = float(alphas[previous]) if previous >= 0 else 1.0
        x_t = ddim_step(x_t, epsilon(x_t, step), float(alphas[step]), alpha_prev, guidance)
    return x_t


# --- bins --------------------------------------------------------------------------------------


def bin_edges(low: np.ndarray, high: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """(start, width) per dimension; a dimension with no spread gets width 0 (every bin = low)."""
    low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
    return low, (high - low) / bins


def to_bins(values: np.ndarray, low: np.ndarray, high: np.ndarray, bins: int) -> np.ndarray:
    """Normalised values (..., dims) -> bin indices int64, clipped into [low, high]."""
    start, width = bin_edges(low, high, bins)
    scaled = (np.asarray(values, np.float64) - start) / np.where(width > 0, width, 1.0)
    return np.clip(np.floor(scaled), 0, bins - 1).astype(np.int64)


def bin_centres(low: np.ndarray, high: np.ndarray, bins: int) -> np.ndarray:
    """(dims, bins) float64: the value each bin decodes to."""
    start, width = bin_edges(low, high, bins)
    return start[:, None] + (np.arange(bins)[None, :] + 0.5) * width[:, None]


def from_logits(logits: np.ndarray, low: np.ndarray, high: np.ndarray, expected: bool) -> tuple:
    """Logits (..., dims, bins) over the first `dims` action dims -> (values float32, tokens int64).
    argmax: the most likely bin's centre; expected: the softmax-weighted mean of the centres."""
    bins = logits.shape[-1]
    centres = bin_centres(low, high, bins)
    tokens = np.argmax(logits, axis=-1)
    if expected:
        shifted = np.exp(logits.astype(np.float64) - logits.max(axis=-1, keepdims=True))
        values = (shifted / shifted.sum(axis=-1, keepdims=True) * centres).sum(axis=-1)
    else:
        values = np.take_along_axis(np.broadcast_to(centres, logits.shape), tokens[..., None], -1)[..., 0]
    return values.astype(np.float32), tokens


def percentile_range(actions: np.ndarray, low_q: float = 1.0, high_q: float = 99.0) -> tuple[list, list]:
    """Per-dimension 1st/99th percentiles of normalised actions (..., dims), as the bins' range."""
    flat = np.asarray(actions, np.float64).reshape(-1, actions.shape[-1])
    return np.percentile(flat, low_q, axis=0).tolist(), np.percentile(flat, high_q, axis=0).tolist()


# --- fast --------------------------------------------------------------------------------------


@cache
def dct_matrix(size: int) -> np.ndarray:
    """Orthonormal DCT-II matrix (size, size): coefficients = M @ signal, signal = M.T @ coefficients."""
    n = np.arange(size)
    matrix = np.sqrt(2.0 / size) * np.cos(np.pi * (2 * n[None, :] + 1) * n[:, None] / (2 * size))
    matrix[0] /= np.sqrt(2.0)
    matrix.flags.writeable = False
    return matrix


def dct_integers(chunks: np.ndarray, scale: float) -> np.ndarray:
    """(N, chunk, dims) normalised -> (N, chunk * dims) int64 rounded coefficients, ordered by
    frequency then dimension (the low frequencies of every dimension come first)."""
    coefficients = np.einsum("kt,ntd->nkd", dct_matrix(chunks.shape[1]), np.asarray(chunks, np.float64))
    return np.rint(coefficients * scale).astype(np.int64).reshape(len(chunks), -1)


def integers_to_chunk(values: np.ndarray, chunk: int, dims: int, scale: float) -> np.ndarray:
    """Inverse of `dct_integers` for one sequence of chunk * dims integers -> (chunk, dims) float32."""
    coefficients = np.asarray(values, np.float64).reshape(chunk, dims) / scale
    return (dct_matrix(chunk).T @ coefficients).astype(np.float32)


class FastCodec:
    """The fitted FAST tokenizer: chunk <-> BPE token ids. A rounded coefficient c becomes the
    character chr(c - min_token) (clipped into the fitted range); BPE merges runs of them."""

    def __init__(self, tokenizer_json: str, min_token: int, max_token: int, scale: float):
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_str(tokenizer_json)
        self.min_token, self.max_token, self.scale = min_token, max_token, scale
        self.vocab = self.tokenizer.get_vocab_size()

    def text(self, integers: np.ndarray) -> str:
        clipped = np.clip(integers, self.min_token, self.max_token) - self.min_token
        return "".join(map(chr, clipped.tolist()))

    def encode(self, chunks: np.ndarray) -> list[list[int]]:
        """(N, chunk, dims) normalised -> N token id lists."""
        texts = [self.text(row) for row in dct_integers(chunks, self.scale)]
        return [encoding.ids for encoding in self.tokenizer.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: list[int], chunk: int, dims: int) -> np.ndarray | None:
        """Token ids -> (chunk, dims) float32, or None when they do not spell a whole chunk."""
        pieces = [self.tokenizer.id_to_token(i) for i in ids]
        if any(piece is None for piece in pieces):
            return None
        integers = [ord(c) + self.min_token for c in "".join(pieces)]
        if len(integers) != chunk * dims:
            return None
        return integers_to_chunk(np.asarray(integers), chunk, dims, self.scale)


def fit_fast(chunks: np.ndarray, scale: float, vocab_size: int) -> dict:
    """Train the BPE vocabulary on (N, chunk, dims) normalised chunks. Returns the HeadConfig
    fields: tokenizer (JSON), min_token, max_token and max_tokens (the longest encoding seen,
    plus a quarter for chunks unlike the training ones)."""
    from tokenizers import Tokenizer, models, trainers

    integers = dct_integers(chunks, scale)
    low, high = int(integers.min()), int(integers.max())
    alphabet = [chr(i) for i in range(high - low + 1)]
    if len(alphabet) >= vocab_size:
        raise ValueError(
            f"the rounded DCT coefficients span {len(alphabet)} values, more than head.vocab_size "
            f"{vocab_size}: lower head.scale or raise head.vocab_size"
        )
    tokenizer = Tokenizer(models.BPE())
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=alphabet,
        special_tokens=[],
    )
    texts = ["".join(map(chr, (row - low).tolist())) for row in integers]
    tokenizer.train_from_iterator(texts, trainer=trainer)
    tokenizer_json = json.dumps(json.loads(tokenizer.to_str()), separators=(",", ":"))
    codec = FastCodec(tokenizer_json, low, high, scale)
    longest = max(len(ids) for ids in codec.encode(chunks))
    return {
        "tokenizer": tokenizer_json,
        "min_token": low,
        "max_token": high,
        "max_tokens": min(longest + max(2, longest // 4), chunks.shape[1] * chunks.shape[2]) + 1,
    }


def decode_chunks(
    codec: FastCodec, sequences: list[list[int]], chunk: int, dims: int, width: int
) -> np.ndarray:
    """Token sequences -> (B, chunk, width) float32 normalised, padded dims 0; a row that does
    not spell a whole chunk is all NaN (the policy holds instead)."""
    out = np.zeros((len(sequences), chunk, width), np.float32)
    for row, sequence in enumerate(sequences):
        decoded = codec.decode(sequence, chunk, dims)
        if decoded is None:
            out[row] = np.nan
        else:
            out[row, :, :dims] = decoded
    return out
