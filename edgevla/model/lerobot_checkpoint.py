"""lerobot SmolVLA checkpoint directories, translated into edgevla's network, config and stats.

lerobot layout (>= 0.3): config.json ("type": "smolvla"), model.safetensors, and processor files
(policy_preprocessor.json naming a normalizer_processor safetensors with "<feature>.mean/std").
Older checkpoints (smolvla_base) keep the stats as `normalize_inputs.buffer_observation_state.*`
and `unnormalize_outputs.buffer_action.*` inside model.safetensors. lerobot checkpoints do not
carry the VLM's config or tokenizer: they name `vlm_model_name`, which we look up as a local
directory, then in the local Hugging Face cache, never on the network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgevla.errors import EdgevlaError
from edgevla.model.checkpoint_files import check_stat_sizes, load_weights, read_json, read_safetensors
from edgevla.model.config import ModelConfig, TextConfig, VisionConfig
from edgevla.model.network import SmolVLANet
from edgevla.model.policy import TorchPolicy, make_preprocessor
from edgevla.policy_io import ACTION_KEY, IMAGE_PREFIX, STATE_KEY
from edgevla.runtime.preprocess import MeanStd

# lerobot key prefix -> edgevla key prefix (first match wins; longest prefixes first)
LEROBOT_PREFIXES = (
    ("model.vlm_with_expert.vlm.model.vision_model.", "vision."),
    ("model.vlm_with_expert.vlm.model.connector.modality_projection.proj.", "connector."),
    ("model.vlm_with_expert.vlm.model.text_model.embed_tokens.", "embed_tokens."),
    ("model.vlm_with_expert.vlm.model.text_model.layers.", "vlm_layers."),
    ("model.vlm_with_expert.vlm.model.text_model.norm.", "vlm_norm."),
    ("model.vlm_with_expert.vlm.lm_head.", "lm_head."),
    ("model.vlm_with_expert.lm_expert.layers.", "expert_layers."),
    ("model.vlm_with_expert.lm_expert.norm.", "expert_norm."),
    ("model.action_", "head.action_"),  # SmolVLA's flow projections: edgevla's flow head
    ("model.", ""),
)
LEGACY_STATS = {
    "state": "normalize_inputs.buffer_observation_state",
    "action": "unnormalize_outputs.buffer_action",
}


def find_vlm_dir(name: str, vlm_dir: str | Path | None = None) -> Path:
    """The local directory holding the VLM's config.json and tokenizer.json."""
    for candidate in (vlm_dir, name):
        if candidate is not None and Path(candidate).is_dir():
            folder = Path(candidate)
            for needed in ("config.json", "tokenizer.json"):
                if not (folder / needed).is_file():
                    raise EdgevlaError(f"VLM directory {folder} lacks {needed}")
            return folder
    try:
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(name, local_files_only=True, allow_patterns=["*.json"]))
        if (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file():
            return folder
    except Exception:  # noqa: BLE001 - any cache miss or bad name ends in the same advice
        pass
    raise EdgevlaError(
        f"the VLM config/tokenizer '{name}' is not available offline: run `edgevla fetch {name}` on a "
        "machine with network (fills the Hugging Face cache), or pass --vlm-dir DIR with its config.json "
        "and tokenizer.json"
    )


def config_from_lerobot(policy_cfg: dict[str, Any], vlm_cfg: dict[str, Any]) -> ModelConfig:
    def unsupported(what: str) -> EdgevlaError:
        return EdgevlaError(f"lerobot config: {what} is not supported by edgevla")

    if policy_cfg.get("type") != "smolvla":
        raise EdgevlaError(f"config.json has type '{policy_cfg.get('type')}', not a SmolVLA policy")
    if policy_cfg.get("add_image_special_tokens"):
        raise unsupported("add_image_special_tokens=true")
    if policy_cfg.get("adapt_to_pi_aloha"):
        raise unsupported("adapt_to_pi_aloha=true")
    if policy_cfg.get("n_obs_steps", 1) != 1:
        raise unsupported("n_obs_steps != 1")
    width, height = policy_cfg.get("resize_imgs_with_padding") or (512, 512)
    if width != height:
        raise unsupported(f"non-square resize_imgs_with_padding {width}x{height}")
    norm = policy_cfg.get("normalization_mapping", {})
    for kind in ("STATE", "ACTION"):
        if norm.get(kind, "MEAN_STD") not in ("MEAN_STD", "IDENTITY"):
            raise unsupported(f"{kind} normalization {norm[kind]}")

    features = policy_cfg.get("input_features", {})
    cameras, shapes = [], []
    for key, feature in features.items():
        if feature.get("type") != "VISUAL":
            continue
        if not key.startswith(IMAGE_PREFIX):
            raise unsupported(f"camera key '{key}' (expected '{IMAGE_PREFIX}<name>')")
        name = key[len(IMAGE_PREFIX) :]
        if not name.startswith("empty_camera_"):
            cameras.append(name)
            shapes.append(tuple(feature["shape"][1:]))
    if STATE_KEY not in features or ACTION_KEY not in policy_cfg.get("output_features", {}):
        raise EdgevlaError(f"lerobot config lacks input feature {STATE_KEY} or output feature {ACTION_KEY}")
    vision, text = vlm_cfg.get("vision_config", {}), vlm_cfg.get("text_config", {})
    kept = policy_cfg.get("num_vlm_layers", 16)
    try:
        return ModelConfig(
            vision=VisionConfig(
                hidden_size=vision["hidden_size"],
                intermediate_size=vision["intermediate_size"],
                num_layers=vision["num_hidden_layers"],
                num_heads=vision["num_attention_heads"],
                image_size=vision["image_size"],
                patch_size=vision["patch_size"],
                layer_norm_eps=vision.get("layer_norm_eps", 1e-6),
            ),
            text=TextConfig(
                vocab_size=text["vocab_size"],
                hidden_size=text["hidden_size"],
                intermediate_size=text["intermediate_size"],
                num_layers=kept if kept > 0 else text["num_hidden_layers"],
                num_heads=text["num_attention_heads"],
                num_kv_heads=text["num_key_value_heads"],
                head_dim=text.get("head_dim") or text["hidden_size"] // text["num_attention_heads"],
                rms_norm_eps=text.get("rms_norm_eps", 1e-5),
            ),
            scale_factor=vlm_cfg.get("scale_factor", 4),
            expert_width_multiplier=policy_cfg.get("expert_width_multiplier", 0.75),
            num_expert_layers=policy_cfg.get("num_expert_layers", -1),
            attention_mode=policy_cfg.get("attention_mode", "cross_attn"),
            self_attn_every_n_layers=policy_cfg.get("self_attn_every_n_layers", 2),
            min_period=policy_cfg.get("min_period", 4e-3),
            max_period=policy_cfg.get("max_period", 4.0),
            cameras=tuple(cameras),
            camera_shapes=tuple(shapes),
            empty_cameras=policy_cfg.get("empty_cameras", 0),
            resize=width,
            state_dim=features[STATE_KEY]["shape"][0],
            action_dim=policy_cfg["output_features"][ACTION_KEY]["shape"][0],
            max_state_dim=policy_cfg.get("max_state_dim", 32),
            max_action_dim=policy_cfg.get("max_action_dim", 32),
            chunk_size=policy_cfg.get("chunk_size", 50),
            num_steps=policy_cfg.get("num_steps", 10),
            tokenizer_max_length=policy_cfg.get("tokenizer_max_length", 48),
        )
    except KeyError as err:
        raise EdgevlaError(f"VLM config.json lacks {err}: is it a SmolVLM config?") from err


def _lerobot_stats(
    path: Path, weights: dict[str, torch.Tensor], norm: dict[str, str]
) -> tuple[MeanStd, MeanStd]:
    """State and action stats from the processor files, else from legacy buffers in the weights."""
    found: dict[str, np.ndarray] = {}
    preprocessor = path / "policy_preprocessor.json"
    if preprocessor.is_file():
        for step in read_json(preprocessor, "").get("steps", []):
            if step.get("registry_name") == "normalizer_processor" and step.get("state_file"):
                stats = read_safetensors(path / step["state_file"], "named by policy_preprocessor.json", True)
                for kind, key in (("state", STATE_KEY), ("action", ACTION_KEY)):
                    for stat in ("mean", "std"):
                        if f"{key}.{stat}" in stats:
                            found[f"{kind}.{stat}"] = stats[f"{key}.{stat}"]
    for kind, prefix in LEGACY_STATS.items():
        for stat in ("mean", "std"):
            if f"{kind}.{stat}" not in found and f"{prefix}.{stat}" in weights:
                found[f"{kind}.{stat}"] = weights[f"{prefix}.{stat}"].float().numpy()

    def stats_of(kind: str, mode: str) -> MeanStd:
        if mode == "IDENTITY":
            return MeanStd()
        if f"{kind}.mean" not in found or f"{kind}.std" not in found:
            raise EdgevlaError(
                f"{path}: no {kind} normalisation stats (neither policy_preprocessor.json + its safetensors "
                "nor normalize buffers in model.safetensors); copy the processor files next to the checkpoint"
            )
        return MeanStd(found[f"{kind}.mean"].astype(np.float32), found[f"{kind}.std"].astype(np.float32))

    return stats_of("state", norm.get("STATE", "MEAN_STD")), stats_of(
        "action", norm.get("ACTION", "MEAN_STD")
    )


def lerobot_to_edgevla_keys(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    converted = {}
    for key, value in weights.items():
        if key.startswith(("normalize_", "unnormalize_")):
            continue  # legacy stats, read separately
        for old, new in LEROBOT_PREFIXES:
            if key.startswith(old):
                converted[new + key[len(old) :]] = value
                break
        else:
            converted[key] = value  # reported as unexpected by load_weights
    return converted


def load_lerobot(
    path: str | Path, device: str = "cpu", dtype: str = "fp32", vlm_dir: str | Path | None = None
) -> TorchPolicy:
    path = Path(path)
    policy_cfg = read_json(path / "config.json", "not a lerobot policy directory")
    weights = read_safetensors(path / "model.safetensors", "the policy weights are not there")
    vlm = find_vlm_dir(
        policy_cfg.get("vlm_model_name", "HuggingFaceTB/SmolVLM2-500M-Video-Instruct"), vlm_dir
    )
    cfg = config_from_lerobot(policy_cfg, read_json(vlm / "config.json", "the VLM config"))
    state_stats, action_stats = _lerobot_stats(path, weights, policy_cfg.get("normalization_mapping", {}))
    check_stat_sizes(path, cfg, state_stats, action_stats)
    net = SmolVLANet(cfg)
    load_weights(net, {k: v.float() for k, v in lerobot_to_edgevla_keys(weights).items()}, path)
    tokenizer = vlm / "tokenizer.json"
    pre = make_preprocessor(cfg, tokenizer, state_stats, action_stats)
    return TorchPolicy(net, pre, tokenizer, name=path.name, device=device, dtype=dtype)
