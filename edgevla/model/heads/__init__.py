"""Action heads on one backbone (see base.py for what a head is).

flow.py        flow matching with Euler sampling (SmolVLA, π0); lerobot checkpoints load as this one
diffusion.py   epsilon-prediction DDPM, cosine schedule, DDIM sampling (Octo, Diffusion Policy)
regression.py  one pass over learned queries, L1 (OpenVLA-OFT)
bins.py        256 bins per dimension and step, parallel decoding, cross-entropy (RT-2, OpenVLA-OFT)
fast.py        FAST tokens (DCT + BPE) decoded autoregressively with a KV cache (π0-FAST)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgevla.errors import EdgevlaError
from edgevla.model.heads.base import ActionHead, GuidanceTarget
from edgevla.model.heads.bins import BinsHead
from edgevla.model.heads.diffusion import DiffusionHead
from edgevla.model.heads.fast import FastHead
from edgevla.model.heads.flow import FlowHead
from edgevla.model.heads.regression import RegressionHead

if TYPE_CHECKING:
    from edgevla.model.config import ModelConfig

HEADS: dict[str, type[ActionHead]] = {
    head.name: head for head in (FlowHead, DiffusionHead, RegressionHead, BinsHead, FastHead)
}


def make_head(cfg: ModelConfig, width: int) -> ActionHead:
    if cfg.head.name not in HEADS:
        raise EdgevlaError(f"unknown action head '{cfg.head.name}': choose one of {', '.join(HEADS)}")
    return HEADS[cfg.head.name](cfg, width)


__all__ = ["HEADS", "ActionHead", "GuidanceTarget", "make_head"]
