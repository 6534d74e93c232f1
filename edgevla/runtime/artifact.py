"""The exported policy artifact (ART): a directory the torch-free runtime runs from.

    ART/manifest.json     format, shapes, cameras, graphs, head, quantization facts, sha256 of every file
    ART/context.onnx      System 2: images, image_masks, tokens, token_mask -> context K/V, context_mask
    ART/state.onnx        System 1, per chunk: state + context -> expert_k, expert_v, prefix_mask
    ART/head.onnx         one step of the action head (flow: x_t, time_emb + that cache -> velocity)
    ART/tokenizer.json    the checkpoint's tokenizer (Hugging Face `tokenizers` format)
    ART/stats.npz         MEAN_STD statistics: state.mean/std, action.mean/std (absent = identity)
(+ `*.onnx.data` external weights when a graph is over protobuf's 2 GB limit.)

Reading verifies sizes and hashes before anything is parsed, so a truncated copy or a file
edited after export is one clear error instead of a crash deep inside ONNX Runtime. Every file
the runtime reads must be in the manifest's hash list and inside ART, and the manifest's numbers
must be sane and agree with the shapes the graphs declare (`check_graph_shapes`): a hand-edited
or hostile manifest is refused at load, naming the field, instead of failing on every inference.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from edgevla.errors import EdgevlaError
from edgevla.policy_io import PolicyIO
from edgevla.runtime.head_loops import LOOPS

MANIFEST = "manifest.json"
FORMAT = "edgevla-onnx"
# 2: the prefix split into context + state graphs, and an action head named in the manifest
FORMAT_VERSION = 2
GRAPHS = ("context", "state", "head")
TOKENIZER = "tokenizer.json"
STATS = "stats.npz"
FUSION_RECORD = "fusion.json"  # written by `export onnx --optimize` (edgevla.export.fusion)
HEAD_FILE_KEYS = ("tokenizer",)
# what each head's loop reads from manifest.head, and of what kind (checked at load)
HEAD_FIELDS = {
    "diffusion": {"train_timesteps": "int"},
    "bins": {"bins": "int", "decode": "str", "low": "range", "high": "range"},
    "fast": {
        "tokenizer": "str",
        "scale": "number",
        "vocab_size": "int",
        "min_token": "whole",
        "max_token": "whole",
        "max_tokens": "int",
        "action_dim": "int",
        "cache_shape": "shape",
    },
}  # entries of manifest.head that name a file the head's loop reads


@dataclass
class Manifest:
    """Everything the runtime needs besides the files themselves; the I/O shapes are stored flat
    under PolicyIO's field names (`io` reads them back)."""

    name: str
    precision: str  # fp32, fp16, int8-dynamic, int8-static
    cameras: list[str]
    camera_shapes: list[list[int]]  # (H, W) the training data had; informative (any size is letterboxed)
    empty_cameras: int
    resize: int
    state_dim: int
    action_dim: int
    max_state_dim: int
    max_action_dim: int
    chunk_size: int
    num_steps: int
    max_tokens: int  # language width of the prefix graph (>= the checkpoint's tokenizer max length)
    expert_hidden_size: int  # width of the time embedding fed to a flow head's graph
    min_period: float
    max_period: float
    fps: float | None = None
    task_suffix: str = ""  # appended to every instruction (advantage-conditioned policies)
    opset: int = 18
    graphs: dict[str, str] = field(default_factory=lambda: {g: f"{g}.onnx" for g in GRAPHS})
    head: dict[str, Any] = field(default_factory=lambda: {"name": "flow"})  # what the head's loop needs
    quantization: dict[str, Any] = field(default_factory=dict)  # method + initializer counts
    source: str = ""  # the checkpoint it was exported from
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {"sha256", "bytes"}
    format: str = FORMAT
    version: int = FORMAT_VERSION

    @property
    def io(self) -> PolicyIO:
        """The inputs and outputs the graphs were exported for (stored flat, under PolicyIO's names)."""
        return PolicyIO(**{f.name: getattr(self, f.name) for f in fields(PolicyIO)})

    @classmethod
    def from_dict(cls, data: Any, where: Path) -> Manifest:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise EdgevlaError(f"{where}: format '{found}' is not an edgevla ONNX artifact")
        version = data.get("version", 0)
        if not isinstance(version, int) or isinstance(version, bool):
            raise EdgevlaError(f"{where}: version {version!r} is not a whole number; export it again")
        if version > FORMAT_VERSION:
            raise EdgevlaError(
                f"{where}: artifact version {data['version']} is newer than this edgevla reads"
            )
        if version < FORMAT_VERSION:
            raise EdgevlaError(
                f"{where}: artifact version {version} predates the split prefix graphs; export it again "
                f"from its checkpoint ({data.get('source') or 'the policy directory'}) with `edgevla export onnx`"
            )
        known = set(cls.__dataclass_fields__)
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as err:
            raise EdgevlaError(f"{where}: manifest is incomplete ({err}); export it again") from err


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_artifact(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def write_manifest(art: str | Path, manifest: Manifest) -> Path:
    """Hash every file in ART (except the manifest) into `manifest.files` and write it."""
    art = Path(art)
    files = sorted(p for p in art.rglob("*") if p.is_file() and p.name != MANIFEST)
    manifest.files = {
        str(p.relative_to(art)): {"sha256": sha256_of(p), "bytes": p.stat().st_size} for p in files
    }
    for graph in manifest.graphs.values():
        if graph not in manifest.files:
            raise EdgevlaError(f"{art}: graph {graph} was not written")
    path = art / MANIFEST
    path.write_text(json.dumps(asdict(manifest), indent=1))
    return path


def read_artifact(art: str | Path, verify: bool = True) -> Manifest:
    """The manifest of ART, after checking that every listed file is there, whole and unchanged."""
    art = Path(art)
    path = art / MANIFEST
    if not path.is_file():
        raise EdgevlaError(
            f"{art} is not an exported artifact ({MANIFEST} missing): run `edgevla export onnx`"
        )
    try:
        manifest = Manifest.from_dict(json.loads(path.read_text()), path)
    except json.JSONDecodeError as err:
        raise EdgevlaError(f"{path} is not valid JSON ({err.msg} at line {err.lineno})") from err
    if not verify:
        return manifest
    check_fields(manifest, path)
    check_hash_list(manifest, art)
    for name, facts in manifest.files.items():
        file = art / name
        if not file.is_file():
            raise EdgevlaError(f"{file} is missing: the artifact is incomplete; copy or export it again")
        size = file.stat().st_size
        if size != facts["bytes"]:
            raise EdgevlaError(
                f"{file} has {size} bytes, the manifest says {facts['bytes']}: truncated or replaced; "
                "copy or export it again"
            )
        if sha256_of(file) != facts["sha256"]:
            raise EdgevlaError(
                f"{file} does not match its sha256 in {MANIFEST}: modified or corrupt; copy or export it again"
            )
    return manifest


_POSITIVE_INTS = (
    "resize",
    "state_dim",
    "action_dim",
    "max_state_dim",
    "max_action_dim",
    "chunk_size",
    "num_steps",
    "max_tokens",
    "expert_hidden_size",
)


def check_fields(manifest: Manifest, where: Path) -> None:
    """The manifest's numbers and names are of the right type and range (a field is named)."""

    def bad(name: str, what: str) -> EdgevlaError:
        return EdgevlaError(f"{where}: {name} {what}; export the artifact again")

    def is_int(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    def is_number(value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)

    for name in _POSITIVE_INTS:
        value = getattr(manifest, name)
        if not is_int(value) or value <= 0:
            raise bad(name, f"is {value!r}, not a whole number > 0")
    if not is_int(manifest.empty_cameras) or manifest.empty_cameras < 0:
        raise bad("empty_cameras", f"is {manifest.empty_cameras!r}, not a whole number >= 0")
    cameras = manifest.cameras
    if not isinstance(cameras, list) or not all(isinstance(c, str) and c for c in cameras):
        raise bad("cameras", f"is {cameras!r}, not a list of camera names")
    if len(set(cameras)) != len(cameras) or len(cameras) + manifest.empty_cameras == 0:
        raise bad("cameras", f"{cameras!r} must be distinct names, and at least one image slot")
    for dim, largest in (("state_dim", "max_state_dim"), ("action_dim", "max_action_dim")):
        if getattr(manifest, dim) > getattr(manifest, largest):
            raise bad(dim, f"{getattr(manifest, dim)} is larger than {largest} {getattr(manifest, largest)}")
    for name in ("min_period", "max_period"):
        value = getattr(manifest, name)
        if not is_number(value) or value <= 0:
            raise bad(name, f"is {value!r}, not a number > 0")
    if manifest.fps is not None and (not is_number(manifest.fps) or manifest.fps <= 0):
        raise bad("fps", f"is {manifest.fps!r}, not a number > 0")
    if not isinstance(manifest.name, str):
        raise bad("name", f"is {manifest.name!r}, not a string")
    if not isinstance(manifest.graphs, dict) or not set(GRAPHS) <= set(manifest.graphs):
        raise bad("graphs", f"is {manifest.graphs!r}, not one file for each of {', '.join(GRAPHS)}")
    if not isinstance(manifest.head, dict) or not isinstance(manifest.head.get("name"), str):
        raise bad("head", f"is {manifest.head!r}, not the action head's name and settings")
    for key, kind in HEAD_FIELDS.get(manifest.head["name"], {}).items():
        value = manifest.head.get(key)
        fine = {
            "int": is_int(value) and value > 0,
            "whole": is_int(value),
            "number": is_number(value) and value > 0,
            "str": isinstance(value, str) and bool(value),
            "range": isinstance(value, list)
            and len(value) == manifest.action_dim
            and all(map(is_number, value)),
            "shape": isinstance(value, list) and len(value) == 5 and all(is_int(v) and v > 0 for v in value),
        }[kind]
        if not fine:
            raise bad(f"head.{key}", f"is {value!r}, not a valid {kind} for the {manifest.head['name']} head")
    if not isinstance(manifest.files, dict) or not all(
        isinstance(facts, dict) and isinstance(facts.get("sha256"), str) and is_int(facts.get("bytes"))
        for facts in manifest.files.values()
    ):
        raise bad("files", "is not a list of files with their sha256 and bytes")


def _inside(art: Path, name: Any) -> bool:
    if not isinstance(name, str) or not name or Path(name).is_absolute():
        return False
    return (art / name).resolve().is_relative_to(art.resolve())


def check_hash_list(manifest: Manifest, art: Path) -> None:
    """Every file the runtime reads lies inside ART and is in the manifest's hash list, so none is
    read unverified: the graphs and the tokenizer always, the stats and external graph weights
    (`*.data`) when present."""
    where = art / MANIFEST
    for name in manifest.files:
        if not _inside(art, name):
            raise EdgevlaError(
                f"{where}: files lists {name!r}, which is outside the artifact; export it again"
            )
    for graph, name in manifest.graphs.items():
        if not _inside(art, name):
            raise EdgevlaError(f"{where}: graphs.{graph} is {name!r}, outside the artifact; export it again")
        if name not in manifest.files:
            raise EdgevlaError(
                f"{where}: graphs.{graph} {name!r} is not in the manifest's hash list (files); export it again"
            )
    head_files = [manifest.head[key] for key in HEAD_FILE_KEYS if key in manifest.head]
    for name in head_files:
        if not _inside(art, name) or name not in manifest.files:
            raise EdgevlaError(
                f"{where}: the head's file {name!r} is outside the artifact or not in its hash list (files); "
                "export it again"
            )
    if TOKENIZER not in manifest.files:
        raise EdgevlaError(
            f"{where}: {TOKENIZER} is not in the manifest's hash list (files); export it again"
        )
    present = [STATS] if (art / STATS).exists() else []
    present += sorted(p.name for p in art.glob("*.data"))
    for name in present:
        if name not in manifest.files:
            raise EdgevlaError(
                f"{where}: {art / name} is not in the manifest's hash list (files), so it cannot be "
                "verified; export the artifact again"
            )


def check_graph_shapes(manifest: Manifest, where: Path, declared: dict[str, dict[str, list[Any]]]) -> None:
    """The manifest's fields agree with the input/output shapes the graphs declare.

    `declared`: graph -> tensor name -> shape (ints; a str or None for a dynamic axis), as ONNX
    Runtime reports them for the graph's inputs and outputs."""
    slots = (len(manifest.cameras) + manifest.empty_cameras, "cameras + empty_cameras")
    resize = (manifest.resize, "resize")
    tokens = (manifest.max_tokens, "max_tokens")
    chunk = [(manifest.chunk_size, "chunk_size"), (manifest.max_action_dim, "max_action_dim")]
    expected = {  # graph -> tensor -> the fields behind each axis after the batch axis (None: any)
        "context": {
            "images": [slots, None, resize, resize],
            "image_masks": [slots],
            "tokens": [tokens],
            "token_mask": [tokens],
        },
        "state": {"state": [(manifest.max_state_dim, "max_state_dim")]},
        "head": {"expert_k": [None] * 4, "expert_v": [None] * 4, "prefix_mask": [None]},
    }
    loop = LOOPS.get(manifest.head.get("name"))  # an unknown head is refused when its loop is made
    if loop is not None:
        expected["head"] |= loop.graph_tensors(chunk, manifest.head, manifest.expert_hidden_size)
    for graph, tensors in expected.items():
        for tensor, axes in tensors.items():
            shape = declared.get(graph, {}).get(tensor)
            if shape is None:
                raise EdgevlaError(
                    f"{manifest.graphs[graph]} has no tensor '{tensor}': not an edgevla {graph} graph; "
                    "export the artifact again"
                )
            if len(shape) != len(axes) + 1:
                raise EdgevlaError(
                    f"{manifest.graphs[graph]} declares '{tensor}' of shape {shape}, edgevla expects "
                    f"{len(axes) + 1} axes; export the artifact again"
                )
            for axis, size in zip(shape[1:], axes, strict=True):
                if size is not None and isinstance(axis, int) and axis != size[0]:
                    raise EdgevlaError(
                        f"{where}: {size[1]} says {size[0]}, but {manifest.graphs[graph]} declares '{tensor}' "
                        f"of shape {shape}: the manifest does not belong to these graphs; export it again"
                    )
