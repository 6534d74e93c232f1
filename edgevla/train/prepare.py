"""The network a recipe trains: its base, its config adapted to the dataset, what trains.

- base: a preset (random init, shaped by the dataset's cameras and dims) or a checkpoint
  (edgevla or lerobot) whose cameras the recipe maps dataset cameras onto;
- mode: LoRA adapters through PEFT, or a freezing policy of `edgevla.model.freezing`;
- gradient checkpointing of every decoder block's MLP half and of the vision layers;
- `Objective`: the loss as a module's forward, so DDP (accelerate) can wrap it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from edgevla.errors import EdgevlaError
from edgevla.model.checkpoint import PRESET_TOKENIZER, load_policy
from edgevla.model.config import HeadConfig, ModelConfig, TextConfig, VisionConfig, preset
from edgevla.model.freezing import apply_freezing
from edgevla.model.network import SmolVLANet
from edgevla.train.data import recorded_names
from edgevla.train.recipe import Recipe


@dataclass
class Base:
    net: SmolVLANet
    tokenizer: Path
    name: str
    fresh_head: bool = True  # the head starts untrained (its data-dependent settings get fitted)


# What `base_parts: vlm` keeps of a checkpoint: the VLM (what System 2 computes). The state
# projection, the expert and the head start fresh, so every head begins from the same VLM.
VLM_PARTS = ("vision.", "connector.", "embed_tokens.", "vlm_layers.", "vlm_norm.", "lm_head.")
# Head settings a kept (trained) head may change: they shape no weight and no fitted table.
KEPT_HEAD_SETTINGS = ("time_sampling", "decode")


# Model fields a recipe may change on a checkpoint base: the action horizon and the sampler's
# step count shape no weight (action tokens carry no learned position).
CHECKPOINT_OVERRIDES = ("chunk_size", "num_steps")


def _shape_of(feature: dict) -> tuple[int, int]:
    height, width = feature["shape"][:2]
    return int(height), int(width)


def head_config(current: HeadConfig, changes: dict[str, Any], source: str) -> HeadConfig:
    """The recipe's `head:` settings (and `--set head.name=...`) on top of `current`."""
    try:
        return HeadConfig.from_dict({**asdict(current), **changes})
    except (TypeError, ValueError, EdgevlaError) as err:
        raise EdgevlaError(f"{source}: head: {err}") from err


def preset_config(recipe: Recipe, name: str, dataset_fields: dict[str, Any], source: str) -> ModelConfig:
    cfg = preset(name)
    changes = dict(dataset_fields)
    if recipe.head:
        changes["head"] = head_config(cfg.head, {**recipe.model.get("head", {}), **recipe.head}, source)
    known = {f.name for f in fields(ModelConfig)}
    for key, value in recipe.model.items():
        if key not in known:
            raise EdgevlaError(f"{source}: model.{key}: not a model config field")
        if key == "head":
            value = changes.get("head") or head_config(cfg.head, value, source)
        elif key in ("vision", "text"):
            current = getattr(cfg, key)
            kind = VisionConfig if key == "vision" else TextConfig
            try:
                value = kind(**{**current.__dict__, **value})
            except TypeError as err:
                raise EdgevlaError(f"{source}: model.{key}: {err}") from err
        changes[key] = value
    try:
        return cfg.with_overrides(**changes)
    except (TypeError, EdgevlaError) as err:
        raise EdgevlaError(f"{source}: model: {err}") from err


def resolve_base(base: str, source: str) -> Path:
    """A checkpoint directory, or a hub repo id already in the local Hugging Face cache."""
    if Path(base).is_dir():
        return Path(base)
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(base, local_files_only=True))
    except Exception as err:  # noqa: BLE001 - every miss ends in the same advice
        raise EdgevlaError(
            f"{source}: base: '{base}' is neither a checkpoint directory nor in the local Hugging Face "
            f"cache; run `edgevla fetch {base}` on a machine with network, or pass --set base=DIR"
        ) from err


def load_base(recipe: Recipe, cameras: dict[str, str], dims: dict[str, Any], source: str) -> Base:
    """The starting network with its config adapted to the dataset.

    `cameras` maps model camera names to dataset keys, `dims` holds state_dim, action_dim, fps
    and the dataset camera shapes by key. A checkpoint keeps its layer shapes: only the real
    state/action dims (inside max_*_dim), the camera list and the fps change; checkpoint cameras
    the recipe leaves unmapped become masked empty image slots; `recipe.model` may change
    CHECKPOINT_OVERRIDES. Either way the adapted config names each camera as the dataset does
    (`recorded_names`): checkpoint slot camera1 fed by `front` becomes `front`.
    """
    shapes = dims["camera_shapes"]
    names = recorded_names(cameras)
    adapted = {"state_dim": dims["state_dim"], "action_dim": dims["action_dim"], "fps": dims["fps"]}
    if recipe.preset is not None:
        adapted["cameras"] = tuple(names.values())
        adapted["camera_shapes"] = tuple(shapes[key] for key in cameras.values())
        cfg = preset_config(recipe, recipe.preset, adapted, source)
        torch.manual_seed(recipe.seed)
        return Base(SmolVLANet(cfg), PRESET_TOKENIZER, recipe.preset)

    policy = load_policy(resolve_base(recipe.base, source), vlm_dir=recipe.vlm_dir)
    cfg = policy.cfg
    # SmolVLA has no per-camera weight (one vision encoder sees every image), so a camera the
    # checkpoint never had is added, e.g. a wrist camera on a front-camera base; but only when
    # every camera it had is mapped: otherwise the unknown name is more likely a mapping mistake.
    kept = tuple(name for name in cfg.cameras if name in cameras)
    added = tuple(name for name in cameras if name not in cfg.cameras)
    if added and len(kept) < len(cfg.cameras):
        raise EdgevlaError(
            f"{source}: features.cameras.{added[0]}: the checkpoint {recipe.base} has no camera "
            f"'{added[0]}' (it has {', '.join(cfg.cameras)}); map its cameras onto dataset cameras"
        )
    for kind, limit in (("state", cfg.max_state_dim), ("action", cfg.max_action_dim)):
        if dims[f"{kind}_dim"] > limit:
            raise EdgevlaError(
                f"{source}: features.{kind}: the dataset's {kind} has {dims[f'{kind}_dim']} values, "
                f"the checkpoint takes at most {limit}"
            )
    for key, value in recipe.model.items():
        if key not in CHECKPOINT_OVERRIDES:
            raise EdgevlaError(
                f"{source}: model.{key}: a checkpoint keeps its shapes; only "
                f"{', '.join(CHECKPOINT_OVERRIDES)} (no weight depends on them) can change"
            )
        adapted[key] = value
    adapted["cameras"] = tuple(names[name] for name in kept + added)
    adapted["camera_shapes"] = tuple(shapes[cameras[name]] for name in kept + added)
    adapted["empty_cameras"] = cfg.empty_cameras + len(cfg.cameras) - len(kept)
    adapted["head"] = head = head_config(cfg.head, recipe.head, source)
    name = Path(recipe.base).name
    if recipe.base_parts == "all" and head.name == cfg.head.name:
        changed = [
            k for k, v in asdict(head).items() if v != getattr(cfg.head, k) and k not in KEPT_HEAD_SETTINGS
        ]
        if changed:
            raise EdgevlaError(
                f"{source}: head.{changed[0]}: the checkpoint's trained {head.name} head depends on it; "
                "start a fresh head with base_parts: vlm"
            )
        if recipe.model.get("chunk_size", cfg.chunk_size) != cfg.chunk_size and head.name in (
            "regression",
            "bins",
        ):
            raise EdgevlaError(
                f"{source}: model.chunk_size: the {head.name} head learned one query per chunk step; "
                "start a fresh head with base_parts: vlm to change it"
            )
        policy.net.cfg = cfg.with_overrides(**adapted)
        return Base(policy.net, policy.tokenizer_path, name, fresh_head=False)
    # a fresh head (another kind, or base_parts: vlm): a new network, the checkpoint's parts copied
    keep = VLM_PARTS if recipe.base_parts == "vlm" else ("",)
    torch.manual_seed(recipe.seed)
    net = SmolVLANet(cfg.with_overrides(**adapted))
    own = net.state_dict()
    kept_weights = {
        key: value
        for key, value in policy.net.state_dict().items()
        if key.startswith(keep)
        and not key.startswith("head.")
        and key in own
        and own[key].shape == value.shape
    }
    net.load_state_dict(kept_weights, strict=False)
    return Base(net, policy.tokenizer_path, name)


def dataset_dims(reader, features, cameras: dict[str, str]) -> dict[str, Any]:
    from edgevla.train.data import feature_dim

    return {
        "state_dim": feature_dim(reader, features.state),
        "action_dim": feature_dim(reader, features.action),
        "fps": float(reader.fps),
        "camera_shapes": {key: _shape_of(reader.features[key]) for key in cameras.values()},
    }


# --- what trains ------------------------------------------------------------------------------


def lora_target_regex(net: nn.Module, patterns: list[str], source: str, where: str) -> str:
    """One regex PEFT full-matches against module names; every pattern must hit a Linear layer,
    as a whole name or its last dotted parts (`action_in_proj` hits `head.action_in_proj`)."""
    linear_names = [name for name, module in net.named_modules() if isinstance(module, nn.Linear)]
    for index, pattern in enumerate(patterns):
        try:
            compiled = re.compile(rf"(?:.*\.)?(?:{pattern})")
        except re.error as err:
            raise EdgevlaError(f"{source}: {where}[{index}]: '{pattern}' is not a regex ({err})") from err
        if not any(compiled.fullmatch(name) for name in linear_names):
            examples = ", ".join(linear_names[:: max(1, len(linear_names) // 6)][:6])
            raise EdgevlaError(
                f"{source}: {where}[{index}]: '{pattern}' matches no Linear layer of the model "
                f"(names look like {examples})"
            )
    return "|".join(rf"(?:.*\.)?(?:{pattern})" for pattern in patterns)


def apply_mode(net: SmolVLANet, recipe: Recipe, source: str) -> tuple[nn.Module, Any]:
    """Returns (the network to train, the PeftModel or None)."""
    if recipe.mode != "lora":
        apply_freezing(net, recipe.mode)
        return net, None
    from peft import LoraConfig, get_peft_model

    lora = recipe.lora
    targets = lora_target_regex(net, lora.targets, source, "lora.targets")
    module_names = {name for name, _ in net.named_modules()}
    for index, name in enumerate(lora.modules_to_save):
        if not any(full == name or full.endswith("." + name) for full in module_names):
            raise EdgevlaError(f"{source}: lora.modules_to_save[{index}]: no module named '{name}'")
    config = LoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=targets,
        modules_to_save=list(lora.modules_to_save) or None,
    )
    peft_model = get_peft_model(net, config)
    return peft_model.base_model.model, peft_model


def count_parameters(net: nn.Module) -> tuple[int, int]:
    params = list(net.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def _checkpointed(function, *args):
    return checkpoint(function, *args, use_reentrant=False)


def set_gradient_checkpointing(net: SmolVLANet, enabled: bool) -> None:
    """Recompute each decoder block's residual+MLP half and each vision layer in the backward
    pass instead of keeping their activations (the MLP intermediates dominate). Done by shadowing
    the bound methods on the instances, so module names and weights stay untouched."""
    for layer in [*net.vlm_layers, *net.expert_layers]:
        if enabled:
            layer.finish = partial(_checkpointed, type(layer).finish.__get__(layer))
        elif "finish" in layer.__dict__:
            del layer.finish
    for layer in net.vision.encoder.layers:
        if enabled:
            layer.forward = partial(_checkpointed, type(layer).forward.__get__(layer))
        elif "forward" in layer.__dict__:
            del layer.forward


class Objective(nn.Module):
    """The action head's loss as forward(), so DDP sees a forward pass over the whole network."""

    def __init__(self, net: SmolVLANet):
        super().__init__()
        self.net = net

    def forward(self, batch: dict[str, Tensor], **draws: Tensor):
        return self.net.loss(batch, **draws)
