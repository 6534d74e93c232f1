"""The exported policy artifact (ART): a directory the torch-free runtime runs from.

    ART/manifest.json     format, shapes, cameras, graphs, quantization facts, sha256 of every file
    ART/prefix.onnx       encode_prefix: images, image_masks, tokens, token_mask, state -> prefix K/V
    ART/denoise.onnx      one Euler step: x_t, time_emb, prefix K/V, prefix_mask -> velocity
    ART/tokenizer.json    the checkpoint's tokenizer (Hugging Face `tokenizers` format)
    ART/stats.npz         MEAN_STD statistics: state.mean/std, action.mean/std (absent = identity)
(+ `*.onnx.data` external weights when a graph is over protobuf's 2 GB limit.)

Reading verifies sizes and hashes before anything is parsed, so a truncated copy or a file
edited after export is one clear error instead of a crash deep inside ONNX Runtime.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from edgevla.errors import EdgevlaError
from edgevla.policy_io import PolicyIO

MANIFEST = "manifest.json"
FORMAT = "edgevla-onnx"
FORMAT_VERSION = 1
GRAPHS = ("prefix", "denoise")


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
    expert_hidden_size: int  # width of the time embedding fed to the denoise graph
    min_period: float
    max_period: float
    fps: float | None = None
    opset: int = 18
    graphs: dict[str, str] = field(default_factory=lambda: {g: f"{g}.onnx" for g in GRAPHS})
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
    def from_dict(cls, data: dict[str, Any], where: Path) -> Manifest:
        if data.get("format") != FORMAT:
            raise EdgevlaError(f"{where}: format '{data.get('format')}' is not an edgevla ONNX artifact")
        if int(data.get("version", 0)) > FORMAT_VERSION:
            raise EdgevlaError(
                f"{where}: artifact version {data['version']} is newer than this edgevla reads"
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
