"""Training recipes: YAML files validated into dataclasses, with errors naming file and field.

A recipe says what to start from (a checkpoint directory or `preset:NAME`), which datasets and
features to read, what trains (LoRA, the expert, everything), and how (optimizer, schedule,
batch, precision). `load_recipe(path, overrides)` applies `key.path=value` overrides (the CLI's
--set, --dataset, --max-steps) before validating, so an override is checked like the file.
Relative paths are taken relative to the current directory, not the recipe file: shipped
recipes name no dataset and get it from --dataset.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edgevla.errors import EdgevlaError
from edgevla.paths import recipes_dir
from edgevla.policy_io import ACTION_KEY, STATE_KEY

MODES = ("lora", "expert", "vision-frozen", "full")
BASE_PARTS = ("all", "vlm")
PRECISIONS = ("fp32", "bf16", "fp16")
PRESET_PREFIX = "preset:"
# lerobot's SmolVLA LoRA default: expert q/v projections, the state projection and every linear
# layer of the action head (flow's: the action/time projections), as regular expressions over
# edgevla module names; each matches a whole name or its last dotted parts (`action_in_proj`
# matches `head.action_in_proj`), as PEFT matches a list of names.
DEFAULT_LORA_TARGETS = (
    r"expert_layers\.\d+\.self_attn\.(q_proj|v_proj)",
    "state_proj",
    r"head\.\w+",
)


class RecipeError(EdgevlaError):
    """A recipe file or override that does not validate."""


@dataclass
class Features:
    """Which dataset columns feed the model. cameras: model camera name -> dataset video key."""

    state: str = STATE_KEY
    action: str = ACTION_KEY
    cameras: dict[str, str] = field(default_factory=dict)  # empty: every dataset camera, same name


@dataclass
class Lora:
    rank: int = 64
    alpha: int = 64
    dropout: float = 0.0
    targets: list[str] = field(default_factory=lambda: list(DEFAULT_LORA_TARGETS))
    modules_to_save: list[str] = field(default_factory=list)  # trained in full next to the adapters


@dataclass
class Optim:
    """AdamW + linear warmup + cosine decay, SmolVLA's defaults."""

    lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    eps: float = 1e-8
    weight_decay: float = 1e-10
    grad_clip: float = 10.0
    warmup_steps: int = 1000
    decay_steps: int = 30000
    decay_lr: float = 2.5e-6


@dataclass
class Eval:
    episodes: float = 0.1  # < 1: fraction of episodes held out; >= 1: that many (last ones)
    interval: int = 1000  # optimizer steps between evaluations (0: never)
    batches: int = 4


@dataclass
class Augment:
    """Light photometric and geometric jitter of the real camera images (training only)."""

    brightness: float = 0.0  # +- fraction added to [0,1] intensities
    contrast: float = 0.0  # +- fraction of contrast scaling
    shift: int = 0  # +- pixels of random translation (at the model's resolution)


@dataclass
class OversampleStart:
    """Draw the frames of each episode's first `seconds` `repeat` times as often. That is where a
    policy decides where to go; later frames show the arm already on its way, so a policy can fit
    them by continuing the motion it sees without reading the instruction."""

    seconds: float = 0.0
    repeat: int = 1


@dataclass
class Corrections:
    """Training on correction rounds (`edgevla sim rollout`, `edgevla rollout`: docs/CORRECTIONS.md).
    Datasets without intervention flags are plain demonstrations: weight 1, all "positive"."""

    intervention_weight: int = 1  # DAgger: each frame the person corrected is drawn this many times
    # how many times each of the policy's own frames is drawn; 0 trains on the person's
    # corrections alone (HG-DAgger), so a weak policy does not imitate its own mistakes
    policy_weight: int = 1
    advantage: bool = False  # RECAP-style: each frame's task says whether its action was good
    bad_before_s: float = 1.0  # the policy's frames this long before a takeover count as bad


@dataclass
class Recipe:
    base: str  # checkpoint directory (edgevla or lerobot) or "preset:NAME"
    name: str = "recipe"
    memory: str = "unmeasured"  # measured peak GPU memory of this recipe, or "unmeasured"
    vlm_dir: str | None = None  # local SmolVLM config+tokenizer dir for lerobot checkpoints
    datasets: list[str] = field(default_factory=list)
    features: Features = field(default_factory=Features)
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig overrides (presets only)
    head: dict[str, Any] = field(
        default_factory=dict
    )  # action head: name (flow, diffusion, regression, bins, fast) and settings
    base_parts: str = "all"  # of a checkpoint base: "all" its weights, or only its "vlm" (state projection, expert, head fresh)
    mode: str = "lora"
    lora: Lora = field(default_factory=Lora)
    optim: Optim = field(default_factory=Optim)
    batch_size: int = 8
    grad_accum: int = 1
    gradient_checkpointing: bool = False
    precision: str = "fp32"
    steps: int | None = None  # optimizer steps; or give epochs
    epochs: float | None = None
    eval: Eval = field(default_factory=Eval)
    checkpoint_interval: int = 1000
    log_interval: int = 10
    seed: int = 1000
    augment: Augment = field(default_factory=Augment)
    oversample_start: OversampleStart = field(default_factory=OversampleStart)
    corrections: Corrections = field(default_factory=Corrections)
    device: str = "auto"  # auto (GPU if any), cpu, cuda
    num_workers: int = 0  # DataLoader worker processes
    # Decoded camera frames stay in memory up to this size; past it every sample decodes its
    # frame from the video (several times slower on a CPU box).
    frame_cache_mb: int = 4096
    cpu_threads: int = 0  # torch CPU threads (0: torch's default); 1 helps on a busy machine
    out: str = "runs/recipe"

    @property
    def preset(self) -> str | None:
        return self.base[len(PRESET_PREFIX) :] if self.base.startswith(PRESET_PREFIX) else None


def _fail(source: str, where: str, what: str) -> RecipeError:
    return RecipeError(f"{source}: {where}: {what}")


def _convert(value: Any, hint: Any, source: str, where: str) -> Any:
    """Check `value` against a type hint of the schema; build nested dataclasses."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        (hint,) = [option for option in options if option is not type(None)]
        return _convert(value, hint, source, where)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise _fail(source, where, f"expected a mapping, got {value!r}")
        return _build(hint, value, source, f"{where}.")
    if hint is Any:
        return value
    if origin is list:
        if not isinstance(value, list):
            raise _fail(source, where, f"expected a list, got {value!r}")
        (item,) = typing.get_args(hint)
        return [_convert(v, item, source, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _fail(source, where, f"expected a mapping, got {value!r}")
        key_hint, value_hint = typing.get_args(hint)
        return {
            _convert(k, key_hint, source, f"{where}.{k}"): _convert(v, value_hint, source, f"{where}.{k}")
            for k, v in value.items()
        }
    if hint is float:
        return _finite_float(value, source, where)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise _fail(source, where, f"expected {hint.__name__}, got {value!r}")
    return value


def _finite_float(value: Any, source: str, where: str) -> float:
    """An int, float or numeric string (YAML reads 1e-4, without a dot, as a string) as a finite
    float: NaN or inf would pass every range check below and break training much later."""
    number = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            number = float(value)
    if number is None:
        raise _fail(source, where, f"expected float, got {value!r}")
    if not math.isfinite(number):
        raise _fail(source, where, f"must be a finite number, got {value!r}")
    return number


def _build(cls: type, data: dict[str, Any], source: str, prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            raise _fail(source, f"{prefix}{key}", f"unknown field (known: {', '.join(sorted(known))})")
    values = {key: _convert(value, hints[key], source, f"{prefix}{key}") for key, value in data.items()}
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise _fail(source, f"{prefix}{missing[0]}", "is required")
    return cls(**values)


def _check(recipe: Recipe, source: str) -> None:
    def positive(where: str, value: float | None) -> None:
        if value is not None and value <= 0:
            raise _fail(source, where, f"must be > 0, got {value}")

    def not_negative(where: str, value: float) -> None:
        if value < 0:
            raise _fail(source, where, f"must be >= 0, got {value}")

    def fraction(where: str, value: float) -> None:
        if not 0 <= value < 1:
            raise _fail(source, where, f"must be in [0, 1), got {value}")

    if recipe.base_parts not in BASE_PARTS:
        raise _fail(source, "base_parts", f"'{recipe.base_parts}' is not one of {', '.join(BASE_PARTS)}")
    if recipe.base_parts != "all" and recipe.preset is not None:
        raise _fail(source, "base_parts", "a preset base is random: base_parts applies to a checkpoint base")
    if recipe.mode not in MODES:
        raise _fail(source, "mode", f"'{recipe.mode}' is not one of {', '.join(MODES)}")
    if recipe.precision not in PRECISIONS:
        raise _fail(source, "precision", f"'{recipe.precision}' is not one of {', '.join(PRECISIONS)}")
    if recipe.device not in ("auto", "cpu", "cuda"):
        raise _fail(source, "device", f"'{recipe.device}' is not auto, cpu or cuda")
    if (recipe.steps is None) == (recipe.epochs is None):
        raise _fail(source, "steps", "give exactly one of steps and epochs")
    for where in ("batch_size", "grad_accum", "steps", "epochs", "checkpoint_interval", "log_interval"):
        positive(where, getattr(recipe, where))
    optim = recipe.optim
    for where, value in (("lr", optim.lr), ("eps", optim.eps), ("grad_clip", optim.grad_clip)):
        positive(f"optim.{where}", value)
    positive("optim.decay_steps", optim.decay_steps)
    for where in ("weight_decay", "warmup_steps", "decay_lr"):
        not_negative(f"optim.{where}", getattr(optim, where))
    if len(optim.betas) != 2:
        raise _fail(source, "optim.betas", "needs two values")
    for i, beta in enumerate(optim.betas):
        fraction(f"optim.betas[{i}]", beta)
    positive("oversample_start.repeat", recipe.oversample_start.repeat)
    not_negative("oversample_start.seconds", recipe.oversample_start.seconds)
    positive("corrections.intervention_weight", recipe.corrections.intervention_weight)
    not_negative("corrections.policy_weight", recipe.corrections.policy_weight)
    not_negative("corrections.bad_before_s", recipe.corrections.bad_before_s)
    positive("lora.rank", recipe.lora.rank)
    positive("lora.alpha", recipe.lora.alpha)
    fraction("lora.dropout", recipe.lora.dropout)
    not_negative("eval.episodes", recipe.eval.episodes)
    not_negative("eval.interval", recipe.eval.interval)
    positive("eval.batches", recipe.eval.batches)
    for where in ("brightness", "contrast", "shift"):
        not_negative(f"augment.{where}", getattr(recipe.augment, where))
    for where in ("seed", "num_workers", "frame_cache_mb", "cpu_threads"):
        not_negative(where, getattr(recipe, where))
    if not 0 <= recipe.eval.episodes < 1 and recipe.eval.episodes != int(recipe.eval.episodes):
        raise _fail(source, "eval.episodes", "a fraction < 1 or a whole number of episodes")
    if recipe.mode == "lora" and not recipe.lora.targets:
        raise _fail(source, "lora.targets", "LoRA needs at least one target pattern")


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """data['a']['b'] = value for dotted 'a.b', creating mappings on the way."""
    *parents, last = dotted.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise RecipeError(f"override {dotted}: '{key}' is not a mapping")
    node[last] = value


def parse_override(text: str) -> tuple[str, Any]:
    """'optim.lr=3e-4' -> ('optim.lr', 3e-4); the value is read as YAML."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise RecipeError(f"override '{text}' is not KEY=VALUE (e.g. optim.lr=3e-4)")
    return key.strip(), yaml.safe_load(value)


def find_recipe(path: str | Path) -> Path:
    """`path`; or, for a relative path with no file there, the shipped recipe of that file name, so
    `--recipe recipes/smolvla-lora-8gb.yaml` works from any directory, as the README writes it."""
    path = Path(path)
    if path.is_file() or path.is_absolute():
        return path
    shipped = recipes_dir() / path.name
    return shipped if shipped.is_file() else path


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    path = find_recipe(path)
    if not path.is_file():
        shipped = ", ".join(sorted(p.name for p in recipes_dir().glob("*.yaml")))
        raise RecipeError(f"recipe {path} does not exist; the shipped ones: {shipped}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise RecipeError(f"{path}: not valid YAML ({err})".replace("\n", " ")) from err
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of fields")
    for key, value in (overrides or {}).items():
        set_path(data, key, value)
    source = f"{path}{' (with overrides)' if overrides else ''}"
    recipe = _build(Recipe, data, source)
    _check(recipe, source)
    return recipe


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    return dataclasses.asdict(recipe)
