"""Grounding pretraining: teach a from-scratch VLM to find the cube its instruction names.

SmolVLA fine-tunes an action expert on top of SmolVLM2, which arrives knowing colours, objects and
where they are in an image. A `small` preset built from random weights knows none of it, and the
flow-matching loss alone did not teach it in hours of CPU training: the policy reached a cube, but
the named one only at chance (docs/SIM.md). This stage gives the small VLM that knowledge first, on
rendered simulator frames (edgevla.sim.grounding), with two heads on the prefix hidden states that
the last VLM layer's keys and values come from (what the action expert reads):

- which image token holds the named cube's centre (cross-entropy over the image tokens), so the
  colour word must change the image tokens through the VLM's attention;
- where that cube is, in image coordinates, from the image tokens pooled by those token scores
  (mean squared error), so the features of the chosen token say where it is.

The result is an ordinary edgevla policy directory (random action expert, identity stats) that a
recipe names as its `base`; fine-tuning with `mode: expert` then trains only the expert on top of
the frozen, grounded VLM, as SmolVLA does on SmolVLM2. The heads are not part of the policy.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import Tensor, nn

from edgevla.model.checkpoint import PRESET_TOKENIZER, save_policy
from edgevla.model.config import ModelConfig
from edgevla.model.network import RMSNorm, SmolVLANet, pixel_shuffle
from edgevla.model.policy import TorchPolicy, make_preprocessor
from edgevla.policy_io import STATE_KEY, TASK_KEY, image_key
from edgevla.runtime.preprocess import MeanStd, Preprocessor
from edgevla.sim.grounding import GroundingFrames
from edgevla.sim.tasks import TASKS
from edgevla.train.data import augment_images
from edgevla.train.loop import learning_rate
from edgevla.train.recipe import Recipe

PLACE_WEIGHT = 4.0  # the place error is in half-image units (~0.03 per pixel at 96 px): weigh it up


class GroundingHead(nn.Module):
    """Scores each image token as "the named cube" and reads the cube's place from the tokens
    pooled by those scores."""

    def __init__(self, hidden: int, eps: float):
        super().__init__()
        self.norm = RMSNorm(hidden, eps)
        self.score = nn.Linear(hidden, 1)
        self.place = nn.Linear(hidden, 2)

    def forward(self, image_hidden: Tensor) -> tuple[Tensor, Tensor]:
        """(B, tokens, hidden) -> token logits (B, tokens), place (B, 2) in [-1, 1] image units."""
        h = self.norm(image_hidden)
        logits = self.score(h).squeeze(-1)
        pooled = (logits.softmax(dim=-1)[..., None] * h).sum(dim=1)
        return logits, self.place(pooled)


def token_of_patch(cfg: ModelConfig) -> np.ndarray:
    """Image token index of each vision patch (row-major), through the connector's pixel shuffle:
    the layout comes from the network's own function, so the labels cannot disagree with it."""
    side = cfg.resize // cfg.vision.patch_size
    patches = torch.arange(side * side, dtype=torch.float64)[None, :, None]
    merged = pixel_shuffle(patches, cfg.scale_factor)[0]  # (tokens, scale^2): patch ids per token
    lookup = np.zeros(side * side, dtype=np.int64)
    for token, ids in enumerate(merged.long().tolist()):
        lookup[ids] = token
    return lookup


@dataclass
class Labels:
    tokens: np.ndarray  # (N, cubes) int64: image token of each cube's centre
    places: np.ndarray  # (N, cubes, 2) float32: each centre in [-1, 1] image units (x right, y down)


def make_labels(frames: GroundingFrames, cfg: ModelConfig) -> Labels:
    """Labels at the model's resolution; frames are square like the model's letterboxed input."""
    size = frames.images.shape[2]
    scale = cfg.resize / size
    side = cfg.resize // cfg.vision.patch_size
    at_model = frames.pixels * scale
    cells = np.clip(np.floor(at_model / cfg.vision.patch_size).astype(np.int64), 0, side - 1)
    tokens = token_of_patch(cfg)[cells[..., 1] * side + cells[..., 0]]
    places = (at_model / cfg.resize * 2 - 1).astype(np.float32)
    return Labels(tokens, places)


class GroundingBatches:
    """Random (frame, named cube, instruction template) samples, preprocessed like policy inputs."""

    def __init__(self, frames: GroundingFrames, labels: Labels, pre: Preprocessor, camera: str):
        self.frames, self.labels, self.pre, self.camera = frames, labels, pre, camera
        self.templates = sorted(TASKS)
        self.state = np.zeros(pre.io.state_dim, dtype=np.float32)  # image tokens never see the state

    def batch(self, picks: np.ndarray, cubes: np.ndarray, tasks: np.ndarray) -> dict[str, Tensor]:
        inputs = [
            self.pre(
                {
                    image_key(self.camera): self.frames.images[frame],
                    STATE_KEY: self.state,
                    TASK_KEY: self.frames.instruction(frame, cube, self.templates[task]),
                }
            )
            for frame, cube, task in zip(picks, cubes, tasks, strict=True)
        ]
        out = {
            name: torch.from_numpy(np.stack([getattr(i, name) for i in inputs]))
            for name in ("images", "image_masks", "tokens", "token_mask", "state")
        }
        out["target_token"] = torch.from_numpy(self.labels.tokens[picks, cubes])
        out["target_place"] = torch.from_numpy(self.labels.places[picks, cubes])
        return out

    def random(self, rng: np.random.Generator, frames: np.ndarray, size: int) -> dict[str, Tensor]:
        picks = rng.choice(frames, size)
        cubes = rng.integers(0, self.frames.pixels.shape[1], size)
        return self.batch(picks, cubes, rng.integers(0, len(self.templates), size))


def grounding_loss(
    net: SmolVLANet, head: GroundingHead, batch: dict[str, Tensor]
) -> tuple[Tensor, dict[str, Tensor]]:
    *_, hidden = net.run_context(batch["images"], batch["image_masks"], batch["tokens"], batch["token_mask"])
    per_image = net.cfg.tokens_per_image
    logits, place = head(hidden[:, :per_image])  # the first camera's image tokens
    token_loss = nn.functional.cross_entropy(logits, batch["target_token"])
    place_loss = nn.functional.mse_loss(place, batch["target_place"])
    stats = {
        "token_acc": (logits.argmax(dim=-1) == batch["target_token"]).float().mean(),
        "place_px": (place - batch["target_place"]).norm(dim=-1).mean() * net.cfg.resize / 2,
    }
    return token_loss + PLACE_WEIGHT * place_loss, stats


@dataclass
class PretrainResult:
    steps: int
    seconds: float
    held_out_token_acc: float
    held_out_place_px: float
    held_out_frames: int
    history: list[dict[str, float]]


def evaluate(
    net: SmolVLANet, head: GroundingHead, data: GroundingBatches, frames: np.ndarray
) -> dict[str, float]:
    """Every held-out frame with every one of its cubes named (reach's instruction)."""
    net.eval()
    hits = pixels = count = 0.0
    cubes = data.frames.pixels.shape[1]
    pairs = [(f, c) for f in frames for c in range(cubes)]
    with torch.no_grad():
        for start in range(0, len(pairs), 64):
            chunk = np.array(pairs[start : start + 64])
            batch = data.batch(chunk[:, 0], chunk[:, 1], np.full(len(chunk), data.templates.index("reach")))
            _, stats = grounding_loss(net, head, batch)
            hits += float(stats["token_acc"]) * len(chunk)
            pixels += float(stats["place_px"]) * len(chunk)
            count += len(chunk)
    net.train()
    return {"token_acc": hits / max(count, 1), "place_px": pixels / max(count, 1)}


def pretrain_grounding(
    cfg: ModelConfig,
    frames: GroundingFrames,
    recipe: Recipe,
    steps: int,
    batch_size: int,
    lr: float,
    held_out: int,
    eval_interval: int,
    progress=None,
) -> tuple[SmolVLANet, GroundingHead, PretrainResult]:
    """Train the VLM of a fresh `cfg` network (and the heads) on `frames`; the last `held_out`
    frames are never trained on and give the reported accuracy."""
    torch.manual_seed(recipe.seed)
    net = SmolVLANet(cfg)
    head = GroundingHead(cfg.text.hidden_size, cfg.text.rms_norm_eps)
    pre = make_preprocessor(cfg, PRESET_TOKENIZER, MeanStd(), MeanStd())
    data = GroundingBatches(frames, make_labels(frames, cfg), pre, cfg.cameras[0])
    train_frames = np.arange(len(frames) - held_out)
    eval_frames = np.arange(len(frames) - held_out, len(frames))
    vlm = [net.vision, net.connector, net.embed_tokens, net.vlm_layers[:-1]]
    params = [p for module in vlm for p in module.parameters()] + list(head.parameters())
    optim = replace(
        recipe.optim, lr=lr, decay_steps=steps, warmup_steps=min(recipe.optim.warmup_steps, steps // 10)
    )
    optimizer = torch.optim.AdamW(params, lr=lr, betas=tuple(optim.betas), weight_decay=0.0)
    rng = np.random.default_rng(recipe.seed)
    history: list[dict[str, float]] = []
    started = time.monotonic()
    net.train()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, optim)
        batch = data.random(rng, train_frames, batch_size)
        batch["images"] = augment_images(
            batch["images"], batch["image_masks"], replace(recipe.augment, shift=0)
        )
        loss, stats = grounding_loss(net, head, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, optim.grad_clip)
        optimizer.step()
        row = {"step": step + 1, "loss": loss.item(), "token_acc": stats["token_acc"].item()}
        if eval_interval and ((step + 1) % eval_interval == 0 or step + 1 == steps) and held_out:
            row.update({f"held_out_{k}": v for k, v in evaluate(net, head, data, eval_frames).items()})
        history.append(row)
        if progress is not None:
            progress(row)
    if not held_out:
        final = {"token_acc": math.nan, "place_px": math.nan}
    elif "held_out_token_acc" in history[-1]:  # the last step was just evaluated
        final = {"token_acc": history[-1]["held_out_token_acc"], "place_px": history[-1]["held_out_place_px"]}
    else:
        final = evaluate(net, head, data, eval_frames)
    result = PretrainResult(
        steps, time.monotonic() - started, final["token_acc"], final["place_px"], held_out, history
    )
    return net, head, result


def save_pretrained(
    net: SmolVLANet, head: GroundingHead, result: PretrainResult, out: Path, meta: dict[str, Any]
) -> dict[str, Any]:
    """The policy directory (a recipe base) plus grounding.json and the heads' weights; returns
    what grounding.json holds."""
    pre = make_preprocessor(net.cfg, PRESET_TOKENIZER, MeanStd(), MeanStd())
    save_policy(TorchPolicy(net, pre, PRESET_TOKENIZER, name="grounded-vlm"), out)
    save_file(
        {k: v.contiguous() for k, v in head.state_dict().items()}, str(out / "grounding_head.safetensors")
    )
    report = {
        **meta,
        "steps": result.steps,
        "seconds": round(result.seconds, 1),
        "held_out_frames": result.held_out_frames,
        "held_out_token_acc": result.held_out_token_acc,
        "held_out_place_px": result.held_out_place_px,
    }
    (out / "grounding.json").write_text(json.dumps(report, indent=1))
    with (out / "grounding_metrics.jsonl").open("w") as log:
        for row in result.history:
            log.write(json.dumps(row) + "\n")
    return report
