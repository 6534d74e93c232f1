"""The shapes of a SmolVLA-class policy, as dataclasses, and the named presets.

One `ModelConfig` describes everything the network and the pre/post-processing need. It is
saved as JSON inside edgevla checkpoints and derived from lerobot's config.json + the VLM's
config.json when a lerobot checkpoint is loaded (see `checkpoint.py`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from edgevla.errors import EdgevlaError
from edgevla.policy_io import PolicyIO


@dataclass(frozen=True)
class VisionConfig:
    """SigLIP-style encoder of the VLM (SmolVLM's vision_config)."""

    hidden_size: int = 768
    intermediate_size: int = 3072
    num_layers: int = 12
    num_heads: int = 12
    image_size: int = 512  # the size its position table was trained for
    patch_size: int = 16
    layer_norm_eps: float = 1e-6


@dataclass(frozen=True)
class TextConfig:
    """Llama-style decoder of the VLM (SmolVLM's text_config); the expert copies its head layout."""

    vocab_size: int = 49280
    hidden_size: int = 960
    intermediate_size: int = 2560
    num_layers: int = 16  # layers KEPT (SmolVLA keeps the first 16 of SmolVLM2's 32)
    num_heads: int = 15
    num_kv_heads: int = 5
    head_dim: int = 64
    rms_norm_eps: float = 1e-5


HEAD_NAMES = ("flow", "diffusion", "regression", "bins", "fast")


@dataclass(frozen=True)
class HeadConfig:
    """Which action head turns the expert's hidden states into a chunk, and its own settings
    (edgevla.model.heads). lerobot SmolVLA checkpoints are `flow` with the defaults."""

    name: str = "flow"  # flow | diffusion | regression | bins | fast
    time_sampling: str = "beta"  # flow: "beta" (SmolVLA's) or "high-noise" (for 1-2 step sampling)
    train_timesteps: int = (
        100  # diffusion: DDPM noise levels (cosine schedule); DDIM samples num_steps of them
    )
    bins: int = 256  # bins: per action dimension and chunk step
    decode: str = "argmax"  # bins: "argmax" (the most likely bin) or "expected" (probability-weighted centre)
    scale: float = 10.0  # fast: DCT coefficients are multiplied by this before rounding (FAST's gamma)
    vocab_size: int = 1024  # fast: BPE vocabulary size (the decoder also has one end token)
    # Fitted on the training data when training starts (edgevla.train), then part of the checkpoint:
    low: tuple[float, ...] = ()  # bins: per action dim, the normalised 1st percentile (range start)
    high: tuple[float, ...] = ()  # bins: per action dim, the normalised 99th percentile (range end)
    min_token: int = 0  # fast: the smallest rounded coefficient (character 0 of the BPE alphabet)
    max_token: int = 0  # fast: the largest one
    max_tokens: int = 0  # fast: longest token sequence the decoder emits (fixes its cache size)
    tokenizer: str = ""  # fast: the BPE tokenizer, `tokenizers` JSON

    @property
    def fitted(self) -> bool:
        """Whether the data-dependent fields a head needs are set (bins: range; fast: tokenizer)."""
        return {"bins": bool(self.low), "fast": bool(self.tokenizer)}.get(self.name, True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HeadConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise EdgevlaError(
                f"model config: head: unknown keys {unknown} (known: {', '.join(sorted(known))})"
            )
        values = dict(data)
        for key in ("low", "high"):
            values[key] = tuple(float(v) for v in values.get(key, ()))
        return cls(**values)


@dataclass(frozen=True)
class ModelConfig:
    vision: VisionConfig = field(default_factory=VisionConfig)
    text: TextConfig = field(default_factory=TextConfig)
    scale_factor: int = 4  # connector pixel shuffle: (image_size/patch)^2 / scale^2 tokens per image
    # action expert and head
    head: HeadConfig = field(default_factory=HeadConfig)
    expert_width_multiplier: float = 0.75
    num_expert_layers: int = -1  # <= 0: one expert layer per VLM layer
    attention_mode: str = "cross_attn"  # or "self_attn" (every layer joint)
    self_attn_every_n_layers: int = 2  # in cross_attn mode: layers i % n == 0 are joint; <= 0: all cross
    rope_max_wavelength: float = 10_000.0  # lerobot's own RoPE, not the VLM config's rope_theta
    min_period: float = 4e-3  # sinusoidal time embedding
    max_period: float = 4.0
    # inputs and outputs
    cameras: tuple[str, ...] = ("camera1",)  # names after "observation.images.", in prefix order
    camera_shapes: tuple[tuple[int, int], ...] = ((480, 640),)  # (H, W) the dataset recorded; informative
    empty_cameras: int = 0  # masked empty image slots appended after the real cameras
    resize: int = 512  # letterbox target (square)
    state_dim: int = 6
    action_dim: int = 6
    max_state_dim: int = 32
    max_action_dim: int = 32
    chunk_size: int = 50
    num_steps: int = 10
    tokenizer_max_length: int = 48
    fps: float | None = None
    task_suffix: str = ""  # appended to every instruction at run time (see PolicyIO.task_suffix)

    def __post_init__(self) -> None:
        self.validate()

    # derived shapes -------------------------------------------------------------------------
    @property
    def io(self) -> PolicyIO:
        """The inputs and outputs this network is built for (what its preprocessor and export use)."""
        return PolicyIO(
            cameras=self.cameras,
            empty_cameras=self.empty_cameras,
            resize=self.resize,
            state_dim=self.state_dim,
            action_dim=self.action_dim,
            max_state_dim=self.max_state_dim,
            max_action_dim=self.max_action_dim,
            chunk_size=self.chunk_size,
            num_steps=self.num_steps,
            max_tokens=self.tokenizer_max_length,
            fps=self.fps,
            task_suffix=self.task_suffix,
        )

    @property
    def expert_hidden_size(self) -> int:
        return int(self.text.hidden_size * self.expert_width_multiplier)

    @property
    def expert_intermediate_size(self) -> int:
        """lerobot's rule: 4 * (2/3 * width), rounded up to a multiple of 256."""
        hidden = int(2 * self.expert_hidden_size / 3) * 4
        return 256 * ((hidden + 255) // 256)

    @property
    def expert_layers(self) -> int:
        return self.num_expert_layers if self.num_expert_layers > 0 else self.text.num_layers

    @property
    def vlm_layers_per_expert_layer(self) -> int:
        return self.text.num_layers // self.expert_layers

    @property
    def kv_size(self) -> int:
        return self.text.num_kv_heads * self.text.head_dim

    @property
    def tokens_per_image(self) -> int:
        return (self.resize // self.vision.patch_size) ** 2 // self.scale_factor**2

    @property
    def num_image_slots(self) -> int:
        return len(self.cameras) + self.empty_cameras

    @property
    def prefix_length(self) -> int:
        return self.num_image_slots * self.tokens_per_image + self.tokenizer_max_length + 1

    def expert_index(self, vlm_layer: int) -> int | None:
        """The expert layer paired with VLM layer `vlm_layer`, or None (the expert skips it)."""
        step = self.vlm_layers_per_expert_layer
        return vlm_layer // step if vlm_layer % step == 0 else None

    def is_joint_layer(self, layer: int) -> bool:
        """Joint self-attention over [prefix; actions] (else: expert cross-attends to the prefix)."""
        if "cross" not in self.attention_mode:
            return True
        return self.self_attn_every_n_layers > 0 and layer % self.self_attn_every_n_layers == 0

    def validate(self) -> None:
        def bad(what: str) -> EdgevlaError:
            return EdgevlaError(f"model config: {what}")

        head = self.head
        if head.name not in HEAD_NAMES:
            raise bad(f"head.name '{head.name}' is not one of {', '.join(HEAD_NAMES)}")
        if head.time_sampling not in ("beta", "high-noise"):
            raise bad(f"head.time_sampling '{head.time_sampling}' is not 'beta' or 'high-noise'")
        if head.decode not in ("argmax", "expected"):
            raise bad(f"head.decode '{head.decode}' is not 'argmax' or 'expected'")
        for name in ("train_timesteps", "bins", "vocab_size"):
            if not isinstance(getattr(head, name), int) or getattr(head, name) < 2:
                raise bad(f"head.{name} {getattr(head, name)!r} is not a whole number >= 2")
        if not head.scale > 0:
            raise bad(f"head.scale {head.scale!r} is not > 0")
        if len(head.low) != len(head.high) or any(h < lo for lo, h in zip(head.low, head.high, strict=False)):
            raise bad("head.low/high must be one range per action dimension, low <= high")
        if self.num_steps < 1:
            raise bad(f"num_steps {self.num_steps} is not >= 1")
        if self.attention_mode not in ("cross_attn", "self_attn"):
            raise bad(f"attention_mode '{self.attention_mode}' is not 'cross_attn' or 'self_attn'")
        if self.text.num_layers % self.expert_layers:
            raise bad(
                f"{self.text.num_layers} VLM layers are not a multiple of {self.expert_layers} expert layers"
            )
        if self.text.num_heads % self.text.num_kv_heads:
            raise bad("num_heads must be a multiple of num_kv_heads")
        grid = self.resize // self.vision.patch_size
        if self.resize % self.vision.patch_size or grid % self.scale_factor:
            raise bad(f"resize {self.resize} must be a multiple of patch_size x scale_factor")
        if len(self.camera_shapes) != len(self.cameras):
            raise bad("camera_shapes needs one (H, W) per camera")
        if not self.cameras:
            raise bad("at least one camera is needed")
        if self.state_dim > self.max_state_dim or self.action_dim > self.max_action_dim:
            raise bad("state_dim/action_dim exceed max_state_dim/max_action_dim")
        # The expert's k/v input width is fixed per expert layer; the VLM layer it serves must
        # use the same kind of attention (lerobot builds and runs them by different indices).
        for layer in range(self.text.num_layers):
            index = self.expert_index(layer)
            if index is not None and self.is_joint_layer(layer) != self.is_joint_layer(index):
                raise bad(
                    f"VLM layer {layer} is {'joint' if self.is_joint_layer(layer) else 'cross'} but its "
                    f"expert layer {index} is built for the other kind; change num_expert_layers or "
                    "self_attn_every_n_layers (lerobot cannot run this combination either)"
                )

    # JSON -------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise EdgevlaError(f"model config: unknown keys {unknown}; was it written by a newer edgevla?")
        values = dict(data)
        values["vision"] = VisionConfig(**values.get("vision", {}))
        values["text"] = TextConfig(**values.get("text", {}))
        values["head"] = HeadConfig.from_dict(values.get("head", {}))
        values["cameras"] = tuple(values.get("cameras", ()))
        values["camera_shapes"] = tuple(tuple(s) for s in values.get("camera_shapes", ()))
        return cls(**values)

    def with_overrides(self, **changes: Any) -> ModelConfig:
        return replace(self, **changes)


def _tiny() -> ModelConfig:
    return ModelConfig(
        vision=VisionConfig(
            hidden_size=32, intermediate_size=64, num_layers=2, num_heads=2, image_size=32, patch_size=8
        ),
        text=TextConfig(
            vocab_size=512,
            hidden_size=64,
            intermediate_size=128,
            num_layers=4,
            num_heads=4,
            num_kv_heads=2,
            head_dim=16,
        ),
        scale_factor=2,
        cameras=("front",),
        camera_shapes=((96, 96),),
        resize=32,
        max_state_dim=8,
        max_action_dim=8,
        chunk_size=10,
        num_steps=10,
        tokenizer_max_length=16,
    )


def _small() -> ModelConfig:
    return ModelConfig(
        vision=VisionConfig(
            hidden_size=192, intermediate_size=768, num_layers=4, num_heads=3, image_size=128, patch_size=16
        ),
        text=TextConfig(
            vocab_size=512,
            hidden_size=384,
            intermediate_size=1024,
            num_layers=8,
            num_heads=6,
            num_kv_heads=2,
            head_dim=64,
        ),
        scale_factor=2,
        cameras=("front", "wrist"),
        camera_shapes=((128, 128), (128, 128)),
        resize=128,
        max_state_dim=8,
        max_action_dim=8,
        chunk_size=20,
        num_steps=10,
        tokenizer_max_length=24,
    )


def _smolvla_450m() -> ModelConfig:
    # SmolVLA-base: SmolVLM2-500M shapes, 16 of 32 text layers kept, 3 cameras, SO-100 arm dims.
    return ModelConfig(
        cameras=("camera1", "camera2", "camera3"),
        camera_shapes=((256, 256), (256, 256), (256, 256)),
    )


PRESETS = {"tiny": _tiny, "small": _small, "smolvla-450m": _smolvla_450m}


def preset(name: str) -> ModelConfig:
    if name not in PRESETS:
        raise EdgevlaError(f"unknown preset '{name}': choose one of {', '.join(PRESETS)}")
    return PRESETS[name]()
