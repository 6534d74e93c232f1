"""Feature statistics with lerobot's fields: min, max, mean, std, count, q01 q10 q50 q90 q99.

Per episode they are exact (numeric features) or computed from per-channel histograms of every
frame (images, downsampled like lerobot to ~150 px, values scaled to [0, 1], shape (3, 1, 1)).
Dataset stats aggregate episodes as lerobot does: count-weighted means, pooled variance, and
count-weighted averages of the episode quantiles.
"""

from __future__ import annotations

import numpy as np

from edgevla.dataset.format import QUANTILES

Stats = dict[str, np.ndarray]


def numeric_stats(values: np.ndarray) -> Stats:
    """Stats over axis 0 of a (frames, dim) or (frames,) array; scalars keep shape (1,)."""
    array = values.reshape(len(values), -1)
    as_float = array.astype(np.float64)
    stats = {
        "min": array.min(axis=0),
        "max": array.max(axis=0),
        "mean": as_float.mean(axis=0),
        "std": as_float.std(axis=0),
        "count": np.array([len(array)], np.int64),
    }
    for name, q in QUANTILES.items():
        stats[name] = np.quantile(as_float, q, axis=0)
    return stats


def downsample(image: np.ndarray, target: int = 150, threshold: int = 300) -> np.ndarray:
    """lerobot's stats downsampling: integer stride so the long side is about `target` px."""
    height, width = image.shape[:2]
    if max(height, width) < threshold:
        return image
    step = int(max(height, width) / target)
    return image[::step, ::step]


class ImageStatsAccumulator:
    """Per-channel 256-bin histograms of uint8 RGB frames; exact stats of the sampled pixels."""

    def __init__(self) -> None:
        self.histograms = np.zeros((3, 256), np.int64)
        self.frames = 0

    def add(self, image: np.ndarray) -> None:
        small = downsample(image)
        for channel in range(3):
            self.histograms[channel] += np.bincount(small[..., channel].ravel(), minlength=256)
        self.frames += 1

    def stats(self) -> Stats:
        levels = np.arange(256, dtype=np.float64) / 255.0
        counts = self.histograms.astype(np.float64)
        totals = counts.sum(axis=1)
        mean = (counts * levels).sum(axis=1) / totals
        std = np.sqrt((counts * (levels - mean[:, None]) ** 2).sum(axis=1) / totals)
        present = self.histograms > 0
        stats = {
            "min": levels[present.argmax(axis=1)],
            "max": levels[255 - present[:, ::-1].argmax(axis=1)],
            "mean": mean,
            "std": std,
        }
        cumulative = np.cumsum(counts, axis=1) / totals[:, None]
        for name, q in QUANTILES.items():
            stats[name] = levels[np.array([np.searchsorted(cumulative[c], q) for c in range(3)])]
        out = {key: value.reshape(3, 1, 1) for key, value in stats.items()}
        out["count"] = np.array([self.frames], np.int64)
        return out


def aggregate(episode_stats: list[Stats]) -> Stats:
    """Dataset stats of one feature from its per-episode stats (lerobot's aggregation)."""
    counts = np.stack([s["count"] for s in episode_stats]).astype(np.float64)  # (episodes, 1)
    total = counts.sum(axis=0)
    means = np.stack([s["mean"] for s in episode_stats])
    weights = counts.reshape(counts.shape + (1,) * (means.ndim - counts.ndim))
    mean = (means * weights).sum(axis=0) / total
    variances = np.stack([s["std"] ** 2 for s in episode_stats])
    variance = ((variances + (means - mean) ** 2) * weights).sum(axis=0) / total
    result = {
        "min": np.min(np.stack([s["min"] for s in episode_stats]), axis=0),
        "max": np.max(np.stack([s["max"] for s in episode_stats]), axis=0),
        "mean": mean,
        "std": np.sqrt(variance),
        "count": total.astype(np.int64),
    }
    for name in QUANTILES:
        result[name] = (np.stack([s[name] for s in episode_stats]) * weights).sum(axis=0) / total
    return result


def to_json(stats: dict[str, Stats]) -> dict:
    return {key: {name: value.tolist() for name, value in feature.items()} for key, feature in stats.items()}
