"""Action heads on one backbone (see base.py for what a head is).

flow.py   flow matching with Euler sampling (SmolVLA, π0); lerobot checkpoints load as this one
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgevla.errors import EdgevlaError
from edgevla.model.heads.base import ActionHead, GuidanceTarget
from edgevla.model.heads.flow import FlowHead

if TYPE_CHECKING:
    from edgevla.model.config import ModelConfig

HEADS: dict[str, type[ActionHead]] = {head.name: head for head in (FlowHead,)}


def make_head(cfg: ModelConfig, width: int) -> ActionHead:
    if cfg.head.name not in HEADS:
        raise EdgevlaError(f"unknown action head '{cfg.head.name}': choose one of {', '.join(HEADS)}")
    return HEADS[cfg.head.name](cfg, width)


__all__ = ["HEADS", "ActionHead", "GuidanceTarget", "make_head"]
