"""The same policy at a lower (or higher) image resolution: fewer patches through the vision
encoder, fewer image tokens in the prefix.

The vision encoder's position table was trained for one patch grid (32 x 32 at 512 px). Two ways
to give another grid its positions:

    interpolate  resample bicubically (align_corners=False), as SigLIP's `interpolate_pos_encoding`
                 does: every new patch gets the position embedding blended from the trained patches
                 around its centre. What is resampled is the grid of embeddings the trained patches
                 actually read, since SmolVLM's bucketing (which edgevla reproduces) hands patch k
                 row k-1 even at the trained size; the new table is in patch order, read one row
                 per patch. So this policy is for export (`edgevla export onnx --vision-size`): a
                 checkpoint saved from it would read its table through the bucketing again.
    bucket       keep the trained table and SmolVLM's bucketing, which gives each new patch the
                 trained row its top-left corner falls in (every other row at half the size).

Bucketing is the default: it is SmolVLM's own rule for a patch grid smaller than its table (an
image that does not fill the square input), and on a trained policy neither method was
measurably better (docs/PERFORMANCE.md, which also has what a lower size costs and saves).
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F  # noqa: N812

from edgevla.errors import EdgevlaError
from edgevla.model.config import ModelConfig
from edgevla.model.network import SmolVLANet
from edgevla.model.policy import TorchPolicy, make_preprocessor

METHODS = ("bucket", "interpolate")
TABLE = "vision.embeddings.position_embedding.weight"


def resized_config(cfg: ModelConfig, size: int, method: str) -> ModelConfig:
    """`cfg` for images of `size` px; with `interpolate` the position table is for that size too."""
    if method not in METHODS:
        raise EdgevlaError(f"unknown position method '{method}': choose {' or '.join(METHODS)}")
    step = cfg.vision.patch_size * cfg.scale_factor
    if size <= 0 or size % step:
        raise EdgevlaError(
            f"--vision-size {size} must be a positive multiple of {step} (patch {cfg.vision.patch_size} "
            f"x pixel shuffle {cfg.scale_factor})"
        )
    vision = replace(cfg.vision, image_size=size) if method == "interpolate" else cfg.vision
    return cfg.with_overrides(resize=size, vision=vision)


def interpolated_table(table: torch.Tensor, grid: int) -> torch.Tensor:
    """A (side*side, width) position table resampled to (grid*grid, width), bicubic."""
    side = round(table.shape[0] ** 0.5)
    if side * side != table.shape[0]:
        raise EdgevlaError(f"the position table has {table.shape[0]} rows, not a square grid")
    square = table.float().reshape(1, side, side, -1).permute(0, 3, 1, 2)
    resampled = F.interpolate(square, size=(grid, grid), mode="bicubic", align_corners=False)
    return resampled.permute(0, 2, 3, 1).reshape(grid * grid, -1).to(table.dtype)


def at_resolution(policy: TorchPolicy, size: int, method: str = "bucket") -> TorchPolicy:
    """A new fp32 CPU policy with `policy`'s weights that takes images of `size` px."""
    cfg = resized_config(policy.cfg, size, method)
    state = {name: value.detach().float().cpu() for name, value in policy.net.state_dict().items()}
    grid = size // cfg.vision.patch_size
    if method == "interpolate":
        trained = policy.net.vision.embeddings
        seen = state[TABLE][trained.position_ids.cpu()]  # what each trained patch read, in patch order
        state[TABLE] = interpolated_table(seen, grid)
    net = SmolVLANet(cfg)
    net.load_state_dict(state)
    if method == "interpolate":
        net.vision.embeddings.position_ids = torch.arange(grid * grid)  # one row per patch
    pre = make_preprocessor(cfg, policy.tokenizer_path, policy.pre.state_stats, policy.pre.action_stats)
    return TorchPolicy(net, pre, policy.tokenizer_path, name=policy.spec.name)
