"""How a new action chunk joins the actions still queued from the previous one.

Every strategy sees the same aligned arrays: `old` holds the queued actions for the ticks the
new chunk also covers (rows 0..overlap-1 of `new` are the same ticks), `counts[i]` how many
chunks already voted for row i. Rows of `new` past the overlap are taken as they are.

  latest    the new chunk wins outright (a step at the seam if the chunks disagree);
  blend     over the overlap the weight of the new chunk ramps from ~0 to 1, so the executed
            trajectory leaves the old plan smoothly and ends on the new one;
  ensemble  ACT temporal ensembling: every chunk that predicted a tick votes, chunk k (0 =
            oldest) with weight exp(-m k), i.e. older predictions count more;
  rtc       Real-Time Chunking: the policy was already guided toward the old actions while it
            denoised (see `rtc_guidance`), so its chunk is taken as it is.
"""

from __future__ import annotations

import math

import numpy as np

from edgevla.policy_io import Guidance

STRATEGIES = ("latest", "blend", "ensemble", "rtc")
ENSEMBLE_M = 0.01  # ACT's temporal-ensembling coefficient


def blend_weights(overlap: int) -> np.ndarray:
    """Weight of the new chunk per overlapping row: (i + 1) / (overlap + 1), a linear ramp."""
    return (np.arange(1, overlap + 1, dtype=np.float32) / (overlap + 1))[:, None]


def merge(strategy: str, old: np.ndarray, counts: np.ndarray, new: np.ndarray) -> np.ndarray:
    """The actions to queue for the new chunk's ticks (same length as `new`)."""
    overlap = len(old)
    out = new.astype(np.float32, copy=True)
    if overlap == 0 or strategy in ("latest", "rtc"):
        return out
    if strategy == "blend":
        w = blend_weights(overlap)
        out[:overlap] = (1 - w) * old + w * new[:overlap]
    elif strategy == "ensemble":
        # old[i] is already the weighted mean of counts[i] votes with weights exp(-m k), k < counts[i]
        k = counts.astype(np.float64)[:, None]
        old_weight = (1 - np.exp(-ENSEMBLE_M * k)) / (1 - math.exp(-ENSEMBLE_M))
        new_weight = np.exp(-ENSEMBLE_M * k)
        out[:overlap] = ((old * old_weight + new[:overlap] * new_weight) / (old_weight + new_weight)).astype(
            np.float32
        )
    else:
        raise ValueError(f"unknown merge strategy '{strategy}'; one of {', '.join(STRATEGIES)}")
    return out


def rtc_weights(chunk_size: int, delay: int, remaining: int) -> np.ndarray:
    """RTC's soft inpainting mask (Black et al. 2025).

    Rows executed while the new chunk is computed (i < delay) are frozen to the old plan (1);
    from there the weight decays exponentially to 0 at the end of the old plan (`remaining`
    rows); rows the old chunk never planned are free (0).
    """
    w = np.zeros(chunk_size, dtype=np.float32)
    delay = max(0, min(delay, remaining, chunk_size))
    w[:delay] = 1.0
    span = min(remaining, chunk_size) - delay
    if span > 0:
        c = (span - np.arange(span, dtype=np.float32)) / (span + 1)  # (1, 0) linearly
        w[delay : delay + span] = c * np.expm1(c) / math.expm1(1.0)
    return w


def rtc_guidance(old: np.ndarray, chunk_size: int, delay: int) -> Guidance | None:
    """Guidance for a chunk whose row 0 is the tick of `old[0]` (old = queued actions from there)."""
    if len(old) == 0:
        return None
    actions = np.empty((chunk_size, old.shape[1]), dtype=np.float32)
    n = min(len(old), chunk_size)
    actions[:n] = old[:n]
    actions[n:] = old[n - 1]  # beyond the old plan the weight is 0; any finite value does
    return Guidance(actions=actions, weights=rtc_weights(chunk_size, delay, len(old)))
