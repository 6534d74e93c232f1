"""Turn a `--policy` argument into a Policy: a replay file, an exported artifact or a checkpoint.

Replays and ONNX artifacts are torch-free; a checkpoint imports the torch model lazily, so the
robot side never pays for torch unless it runs the torch model itself.
"""

from __future__ import annotations

from pathlib import Path

from edgevla.errors import EdgevlaError
from edgevla.runtime.policy import Policy


def is_remote(source: str) -> bool:
    return source.startswith(("ws://", "wss://"))


def local_source(source: str) -> Path:
    """The path of a local `--policy`; one line when nothing is there (said before a worker
    process starts, so no other message wraps it)."""
    path = Path(source)
    if not path.exists():
        kind = "file" if path.suffix == ".npz" else "folder"
        raise EdgevlaError(
            f"--policy {source}: no such {kind}; give a checkpoint or artifact folder, a replay .npz "
            "or ws://HOST:PORT"
        )
    return path


def load_policy(source: str, threads: int = 0) -> Policy:
    """Load a local policy (`ws://` URLs are connected by the caller, see `workers.open_policy`).

    `threads`: ONNX Runtime's intra-op threads for an artifact (0: its default, one per core).
    """
    if is_remote(source):
        raise EdgevlaError(f"'{source}' is a server address, not a local policy")
    path = local_source(source)
    if path.suffix == ".npz":
        from edgevla.runtime.replay import ReplayPolicy

        return ReplayPolicy.load(path)
    if path.is_dir():
        from edgevla.runtime.loader import open_policy  # ART: torch-free; a checkpoint imports torch

        return open_policy(path, threads=threads)
    raise EdgevlaError(
        f"--policy '{source}': not a replay .npz, an exported artifact or a checkpoint directory"
    )
