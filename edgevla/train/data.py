"""Training samples from LeRobotDataset v3 directories, preprocessed exactly like inference.

Each sample is frame i of an episode: the mapped cameras and state go through the shared numpy
`Preprocessor` (letterbox, MEAN_STD, tokenised task), the target is the action chunk starting
at i (normalised, padded), with `action_is_pad` past the episode end. Normalisation stats are
computed over every frame of every dataset given, so the merged policy carries them.

Camera frames are decoded once per episode and kept in memory (uint8, the dataset's size)
when they fit in `cache_mb`; otherwise each sample decodes its frame from the video.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from edgevla.dataset import DatasetReader
from edgevla.dataset.format import DatasetFormatError
from edgevla.errors import EdgevlaError
from edgevla.policy_io import IMAGE_PREFIX, STATE_KEY, TASK_KEY, image_key
from edgevla.runtime.preprocess import MeanStd, Preprocessor
from edgevla.train.corrections import NEGATIVE, POSITIVE
from edgevla.train.recipe import Augment, Features, OversampleStart, Recipe


@dataclass(frozen=True)
class FrameRef:
    dataset: int
    index: int  # global frame index inside that dataset
    episode: int


def open_datasets(recipe: Recipe, source: str) -> list[DatasetReader]:
    if not recipe.datasets:
        raise EdgevlaError(f"{source}: datasets: no dataset given; pass --dataset DIR")
    readers = []
    for where, folder in enumerate(recipe.datasets):
        if not Path(folder).is_dir():
            raise EdgevlaError(f"{source}: datasets[{where}]: dataset directory {folder} does not exist")
        try:
            readers.append(DatasetReader(folder))
        except DatasetFormatError as err:
            raise EdgevlaError(f"{source}: datasets[{where}]: {err}") from err
        if len(readers[-1]) == 0:
            raise EdgevlaError(f"{source}: datasets[{where}]: {folder} holds no frames")
    return readers


def camera_mapping(
    features: Features, readers: list[DatasetReader], source: str, say: Callable[[str], None] = print
) -> dict[str, str]:
    """model camera name -> dataset video key, checked against every dataset."""
    first = readers[0]
    mapping = dict(features.cameras) or {key[len(IMAGE_PREFIX) :]: key for key in first.camera_keys}
    if not mapping:
        raise EdgevlaError(f"{source}: features.cameras: the dataset {first.root} has no camera")
    shared = [slot for slot, key in mapping.items() if list(mapping.values()).count(key) > 1]
    if shared:
        raise EdgevlaError(
            f"{source}: features.cameras: {' and '.join(shared)} map the same dataset camera "
            f"'{mapping[shared[0]]}'; one dataset camera fills one slot"
        )
    mapping = without_unrecorded_cameras(mapping, readers, source, say)
    for reader in readers:
        for model_name, key in mapping.items():
            if key not in reader.camera_keys:
                raise EdgevlaError(
                    f"{source}: features.cameras.{model_name}: the dataset {reader.root} has no camera "
                    f"'{key}' (it has {', '.join(reader.camera_keys) or 'none'})"
                )
        for field_name, key in (("state", features.state), ("action", features.action)):
            if key not in reader.features:
                raise EdgevlaError(
                    f"{source}: features.{field_name}: the dataset {reader.root} has no feature '{key}'"
                )
    return mapping


def without_unrecorded_cameras(
    mapping: dict[str, str], readers: list[DatasetReader], source: str, say: Callable[[str], None]
) -> dict[str, str]:
    """`mapping` less the cameras no dataset recorded, when that is unambiguous.

    A recipe names the cameras it expects (a smolvla recipe: camera1 <- front, camera2 <- wrist).
    When every camera the datasets have is mapped (a front-only dataset), a camera none of them
    recorded is left out and its slot trains as an empty image; `say` tells. When a dataset also
    has cameras the recipe does not name, which one goes where would be a guess: it stops, naming
    both lists and an override that maps them.
    """
    absent = {slot: key for slot, key in mapping.items() if all(key not in r.camera_keys for r in readers)}
    unmapped = [r for r in readers if any(key not in mapping.values() for key in r.camera_keys)]
    if absent and (unmapped or len(absent) == len(mapping)):
        reader = (unmapped or readers)[0]
        slot, key = next(iter(absent.items()))
        wanted = ", ".join(f"{s}: {k}" for s, k in mapping.items())
        suggested = ", ".join(f"{s}: {k}" for s, k in zip(mapping, reader.camera_keys, strict=False))
        raise EdgevlaError(
            f"{source}: features.cameras.{slot}: the dataset {reader.root} has no camera '{key}' "
            f"(it has {', '.join(reader.camera_keys) or 'none'}; the recipe maps {wanted}): "
            f"map them yourself, e.g. --set 'features.cameras={{{suggested}}}'"
        )
    for slot, key in absent.items():
        say(f"{source}: features.cameras.{slot}: no dataset has camera '{key}'; that slot trains empty")
    return {slot: key for slot, key in mapping.items() if slot not in absent}


def recorded_names(mapping: dict[str, str]) -> dict[str, str]:
    """model camera name -> the name the dataset recorded it under (`observation.images.<name>`).
    A trained policy takes its cameras under these names, so the robot that recorded the dataset
    runs it with the same `--camera NAME=...` and a dataset calibrates it as it is."""
    return {slot: key[len(IMAGE_PREFIX) :] for slot, key in mapping.items()}


def feature_dim(reader: DatasetReader, key: str) -> int:
    return int(np.prod(reader.features[key]["shape"]))


def dataset_stats(readers: list[DatasetReader], key: str) -> MeanStd:
    """Mean/std over every frame of every dataset (what the policy is normalised with)."""
    values = np.concatenate([r.columns[key].reshape(len(r), -1) for r in readers]).astype(np.float64)
    return MeanStd(values.mean(axis=0).astype(np.float32), values.std(axis=0).astype(np.float32))


def split_episodes(readers: list[DatasetReader], held_out: float) -> tuple[list[FrameRef], list[FrameRef]]:
    """Frames of the training episodes and of the last `held_out` episodes (fraction or count)."""
    episodes = [(d, ep) for d, reader in enumerate(readers) for ep in reader.episodes]
    count = int(held_out) if held_out >= 1 else math.ceil(held_out * len(episodes))
    count = min(count, len(episodes) - 1)  # always keep one episode to train on
    train, evaluation = [], []
    for position, (d, ep) in enumerate(episodes):
        refs = [FrameRef(d, i, ep.index) for i in range(ep.from_index, ep.to_index)]
        (evaluation if position >= len(episodes) - count else train).extend(refs)
    return train, evaluation


def action_chunks(
    readers: list[DatasetReader], refs: list[FrameRef], key: str, pre: Preprocessor, limit: int = 20_000
) -> np.ndarray:
    """Normalised action chunks (N, chunk, action_dim) starting at up to `limit` of the frames
    in `refs`, evenly spread (what a head fits its data-dependent settings on)."""
    frames = sorted({(ref.dataset, ref.index) for ref in refs})
    frames = frames[:: max(1, math.ceil(len(frames) / limit))]
    io = pre.io
    return np.stack(
        [
            pre.normalize_actions(readers[d].action_chunk(i, io.chunk_size, key=key)[0].astype(np.float32))
            for d, i in frames
        ]
    )[..., : io.action_dim]


def oversample_starts(
    refs: list[FrameRef], readers: list[DatasetReader], spec: OversampleStart
) -> list[FrameRef]:
    """`refs` with each frame of an episode's first `spec.seconds` listed `spec.repeat` times."""
    if spec.repeat == 1 or spec.seconds == 0:
        return refs
    out = []
    for ref in refs:
        reader = readers[ref.dataset]
        early = ref.index - reader.episodes[ref.episode].from_index < spec.seconds * reader.fps
        out.extend([ref] * (spec.repeat if early else 1))
    return out


def weight_corrections(refs: list[FrameRef], repeats: list[np.ndarray]) -> list[FrameRef]:
    """`refs` with each frame listed as many times as `repeats[dataset][frame]` says (0: left out)."""
    out = []
    for ref in refs:
        out.extend([ref] * int(repeats[ref.dataset][ref.index]))
    return out


class FrameCache:
    """Decoded camera frames of whole episodes, or on-demand decoding when they do not fit."""

    def __init__(self, readers: list[DatasetReader], keys: list[str], cache_mb: float, show: bool):
        self.readers, self.keys = readers, keys
        frame_bytes = sum(int(np.prod(r.features[k]["shape"])) * len(r) for r in readers for k in keys)
        self.frames: dict[tuple[int, str, int], np.ndarray] | None = None
        if frame_bytes > cache_mb * 2**20:
            tqdm.write(
                f"decoded frames need {frame_bytes / 2**20:.0f} MB, more than frame_cache_mb={cache_mb:g}: "
                "each sample decodes its frame from the video (slow); raise frame_cache_mb if memory allows"
            )
        else:
            self.frames = {}
            jobs = [(d, k, ep) for d, r in enumerate(readers) for k in keys for ep in r.episodes]
            for d, key, ep in tqdm(jobs, desc="decoding video", unit="ep", disable=not show, leave=False):
                times = (np.arange(ep.length) / self.readers[d].fps).tolist()
                self.frames[(d, key, ep.index)] = self.readers[d].video_frames(key, ep.index, times)

    def image(self, ref: FrameRef, key: str) -> np.ndarray:
        reader = self.readers[ref.dataset]
        if self.frames is not None:
            start = reader.episodes[ref.episode].from_index
            return self.frames[(ref.dataset, key, ref.episode)][ref.index - start]
        timestamp = float(reader.columns["timestamp"][ref.index])
        return reader.video_frames(key, ref.episode, [timestamp])[0]


class TrainSamples(torch.utils.data.Dataset):
    """Preprocessed (inputs, actions, action_is_pad) for a list of frames."""

    def __init__(
        self,
        readers: list[DatasetReader],
        refs: list[FrameRef],
        features: Features,
        cameras: dict[str, str],
        preprocessor: Preprocessor,
        frames: FrameCache,
        advantage: list[np.ndarray] | None = None,
    ):
        """`advantage`: per dataset, per frame whether its action was good; the task then ends in
        the indicator text (`edgevla.train.corrections`)."""
        self.readers, self.refs, self.features = readers, refs, features
        self.cameras, self.pre, self.frames = cameras, preprocessor, frames
        self.advantage = advantage

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, position: int) -> dict[str, np.ndarray]:
        ref = self.refs[position]
        reader = self.readers[ref.dataset]
        obs = {image_key(name): self.frames.image(ref, key) for name, key in self.cameras.items()}
        obs[STATE_KEY] = reader.columns[self.features.state][ref.index]
        obs[TASK_KEY] = reader.tasks[int(reader.columns["task_index"][ref.index])]
        if self.advantage is not None:
            obs[TASK_KEY] += POSITIVE if self.advantage[ref.dataset][ref.index] else NEGATIVE
        inputs = self.pre(obs)
        actions, is_pad = reader.action_chunk(ref.index, self.pre.io.chunk_size, key=self.features.action)
        return {
            "images": inputs.images,
            "image_masks": inputs.image_masks,
            "tokens": inputs.tokens,
            "token_mask": inputs.token_mask,
            "state": inputs.state,
            "actions": self.pre.normalize_actions(actions.astype(np.float32)),
            "action_is_pad": is_pad,
        }


def collate(samples: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    return {key: torch.from_numpy(np.stack([s[key] for s in samples])) for key in samples[0]}


class StepBatches(torch.utils.data.Sampler):
    """Index batches for optimizer steps `start`..: epoch e is a permutation seeded by (seed, e),
    so resuming at any step replays the same order. Under DDP each process takes every
    `world`-th sample of a global batch of `batch * world`."""

    def __init__(
        self, size: int, batch: int, seed: int, start: int, total: int, rank: int = 0, world: int = 1
    ):
        self.size, self.batch, self.seed = size, batch, seed
        self.start, self.total, self.rank, self.world = start, total, rank, world

    def __len__(self) -> int:
        return max(0, self.total - self.start)

    def __iter__(self):
        per_step = self.batch * self.world
        for step in range(self.start, self.total):
            first = step * per_step
            epoch, offset = divmod(first, self.size)
            order = np.random.default_rng([self.seed, epoch]).permutation(self.size)
            while len(order) - offset < per_step:  # the global batch straddles two epochs
                epoch += 1
                order = np.concatenate(
                    [order, np.random.default_rng([self.seed, epoch]).permutation(self.size)]
                )
            yield order[offset + self.rank : offset + per_step : self.world].tolist()


def augment_images(images: torch.Tensor, masks: torch.Tensor, spec: Augment) -> torch.Tensor:
    """Jitter real camera images (B, slots, 3, S, S) in [-1, 1]; empty slots stay -1."""
    if not (spec.brightness or spec.contrast or spec.shift):
        return images
    batch, slots = images.shape[:2]
    unit = (images + 1) / 2
    shape = (batch, slots, 1, 1, 1)
    if spec.contrast:
        scale = 1 + (torch.rand(shape, device=images.device) * 2 - 1) * spec.contrast
        mean = unit.mean(dim=(2, 3, 4), keepdim=True)
        unit = (unit - mean) * scale + mean
    if spec.brightness:
        unit = unit + (torch.rand(shape, device=images.device) * 2 - 1) * spec.brightness
    if spec.shift:
        pad = spec.shift
        size = unit.shape[-1]
        padded = torch.nn.functional.pad(unit.flatten(0, 1), (pad, pad, pad, pad), mode="replicate")
        dy, dx = torch.randint(0, 2 * pad + 1, (2,)).tolist()  # one shift per batch keeps it cheap
        unit = padded[..., dy : dy + size, dx : dx + size].reshape(unit.shape)
    out = unit.clamp(0, 1) * 2 - 1
    return torch.where(masks[:, :, None, None, None], out, images)
