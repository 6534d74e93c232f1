"""Checkpoint I/O: lerobot SmolVLA directories (read) and edgevla's own (read/write).

lerobot layout (>= 0.3): config.json ("type": "smolvla"), model.safetensors, and processor files
(policy_preprocessor.json naming a normalizer_processor safetensors with "<feature>.mean/std").
Older checkpoints (smolvla_base) keep the stats as `normalize_inputs.buffer_observation_state.*`
and `unnormalize_outputs.buffer_action.*` inside model.safetensors. lerobot checkpoints do not
carry the VLM's config or tokenizer: they name `vlm_model_name`, which we look up as a local
directory, then in the local Hugging Face cache, never on the network.

edgevla layout: edgevla_policy.json (format, name, model config), model.safetensors (edgevla
key names), stats.safetensors, tokenizer.json. Self-contained.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file as load_numpy
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import load_file as load_torch
from safetensors.torch import save_file as save_torch

from edgevla.errors import EdgevlaError
from edgevla.model.config import ModelConfig, TextConfig, VisionConfig, preset
from edgevla.model.network import SmolVLANet
from edgevla.model.policy import TorchPolicy, make_preprocessor
from edgevla.runtime.preprocess import IMAGE_PREFIX, STATE_KEY, MeanStd

EDGEVLA_FILE = "edgevla_policy.json"
FORMAT = "edgevla-policy"
FORMAT_VERSION = 1
ASSETS = Path(__file__).resolve().parent.parent / "assets"
PRESET_TOKENIZER = ASSETS / "tiny_bpe_tokenizer.json"

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
    ("model.", ""),
)
LEGACY_STATS = {
    "state": "normalize_inputs.buffer_observation_state",
    "action": "unnormalize_outputs.buffer_action",
}


def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise EdgevlaError(f"{path} is missing: {what}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise EdgevlaError(f"{path} is not valid JSON ({err.msg} at line {err.lineno})") from err


def _read_safetensors(path: Path, what: str, as_numpy: bool = False) -> dict:
    if not path.is_file():
        raise EdgevlaError(f"{path} is missing: {what}")
    try:
        return load_numpy(str(path)) if as_numpy else load_torch(str(path))
    except (SafetensorError, OSError) as err:
        raise EdgevlaError(f"{path} is not a readable safetensors file ({err})") from err


def load_weights(net: SmolVLANet, weights: dict[str, torch.Tensor], source: Path) -> None:
    """Strict load with one clear line for missing, unexpected or mis-shaped tensors."""
    expected = net.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    wrong = [
        f"{k} {tuple(weights[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in weights and weights[k].shape != v.shape
    ]
    for label, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", wrong)):
        if items:
            more = f" (+{len(items) - 3} more)" if len(items) > 3 else ""
            raise EdgevlaError(
                f"{source}: {len(items)} {label} weight(s) for this config, e.g. {', '.join(items[:3])}{more}; "
                "the checkpoint does not match its config"
            )
    net.load_state_dict(weights, strict=True)


# --- lerobot --------------------------------------------------------------------------------


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
    if STATE_KEY not in features or "action" not in policy_cfg.get("output_features", {}):
        raise EdgevlaError("lerobot config lacks input feature observation.state or output feature action")
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
            action_dim=policy_cfg["output_features"]["action"]["shape"][0],
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
        for step in _read_json(preprocessor, "").get("steps", []):
            if step.get("registry_name") == "normalizer_processor" and step.get("state_file"):
                stats = _read_safetensors(
                    path / step["state_file"], "named by policy_preprocessor.json", True
                )
                for kind, key in (("state", STATE_KEY), ("action", "action")):
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
    policy_cfg = _read_json(path / "config.json", "not a lerobot policy directory")
    weights = _read_safetensors(path / "model.safetensors", "the policy weights are not there")
    vlm = find_vlm_dir(
        policy_cfg.get("vlm_model_name", "HuggingFaceTB/SmolVLM2-500M-Video-Instruct"), vlm_dir
    )
    cfg = config_from_lerobot(policy_cfg, _read_json(vlm / "config.json", "the VLM config"))
    state_stats, action_stats = _lerobot_stats(path, weights, policy_cfg.get("normalization_mapping", {}))
    _check_stat_sizes(path, cfg, state_stats, action_stats)
    net = SmolVLANet(cfg)
    load_weights(net, {k: v.float() for k, v in lerobot_to_edgevla_keys(weights).items()}, path)
    tokenizer = vlm / "tokenizer.json"
    pre = make_preprocessor(cfg, tokenizer, state_stats, action_stats)
    return TorchPolicy(net, pre, tokenizer, name=path.name, device=device, dtype=dtype)


def _check_stat_sizes(path: Path, cfg: ModelConfig, state: MeanStd, action: MeanStd) -> None:
    for kind, stats, size in (("state", state, cfg.state_dim), ("action", action, cfg.action_dim)):
        if stats.mean is not None and (stats.mean.shape != (size,) or stats.std.shape != (size,)):
            raise EdgevlaError(
                f"{path}: {kind} stats have shape {stats.mean.shape}, the config says ({size},)"
            )


# --- edgevla --------------------------------------------------------------------------------


def save_policy(policy: TorchPolicy, path: str | Path) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "name": policy.spec.name,
        "model": policy.cfg.to_dict(),
    }
    (path / EDGEVLA_FILE).write_text(json.dumps(meta, indent=1))
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in policy.net.state_dict().items()}
    save_torch(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    stats = {}
    for kind, value in (("state", policy.pre.state_stats), ("action", policy.pre.action_stats)):
        if value.mean is not None:
            stats[f"{kind}.mean"], stats[f"{kind}.std"] = value.mean, value.std
    save_numpy(stats, str(path / "stats.safetensors"))
    if policy.tokenizer_path.resolve() != (path / "tokenizer.json").resolve():
        shutil.copyfile(policy.tokenizer_path, path / "tokenizer.json")
    return path


def load_edgevla(path: str | Path, device: str = "cpu", dtype: str = "fp32") -> TorchPolicy:
    path = Path(path)
    meta = _read_json(path / EDGEVLA_FILE, "not an edgevla policy directory")
    if meta.get("format") != FORMAT or meta.get("version", 0) > FORMAT_VERSION:
        raise EdgevlaError(
            f"{path / EDGEVLA_FILE}: format {meta.get('format')} v{meta.get('version')} is not readable"
        )
    cfg = ModelConfig.from_dict(meta["model"])
    weights = _read_safetensors(path / "model.safetensors", "the policy weights are not there")
    stats = _read_safetensors(path / "stats.safetensors", "the normalisation stats are not there", True)

    def stats_of(kind: str) -> MeanStd:
        return MeanStd(stats[f"{kind}.mean"], stats[f"{kind}.std"]) if f"{kind}.mean" in stats else MeanStd()

    _check_stat_sizes(path, cfg, stats_of("state"), stats_of("action"))
    net = SmolVLANet(cfg)
    load_weights(net, {k: v.float() for k, v in weights.items()}, path)
    pre = make_preprocessor(cfg, path / "tokenizer.json", stats_of("state"), stats_of("action"))
    return TorchPolicy(
        net, pre, path / "tokenizer.json", name=meta.get("name", path.name), device=device, dtype=dtype
    )


def load_policy(
    path: str | Path, device: str = "cpu", dtype: str = "fp32", vlm_dir: str | Path | None = None
) -> TorchPolicy:
    """Load an edgevla or a lerobot SmolVLA checkpoint directory."""
    path = Path(path)
    if not path.is_dir():
        raise EdgevlaError(f"policy directory {path} does not exist")
    if (path / EDGEVLA_FILE).is_file():
        return load_edgevla(path, device, dtype)
    if (path / "config.json").is_file():
        return load_lerobot(path, device, dtype, vlm_dir)
    raise EdgevlaError(f"{path} holds neither {EDGEVLA_FILE} (edgevla) nor config.json (lerobot)")


def build_preset(
    name: str, seed: int = 0, device: str = "cpu", dtype: str = "fp32", **overrides: Any
) -> TorchPolicy:
    """A randomly initialised policy of a named preset, with identity stats and the bundled tokenizer."""
    cfg = preset(name).with_overrides(**overrides) if overrides else preset(name)
    torch.manual_seed(seed)
    net = SmolVLANet(cfg)
    pre = make_preprocessor(cfg, PRESET_TOKENIZER, MeanStd(), MeanStd())
    return TorchPolicy(net, pre, PRESET_TOKENIZER, name=name, device=device, dtype=dtype)
