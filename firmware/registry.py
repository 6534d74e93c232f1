"""The virtual arms served on this machine, listed where tools can find their ports.

A pty link can be any path (`--link /tmp/leader`), so nobody can find one by its name. While a
virtual arm serves, it keeps one small JSON file in a per-user runtime folder
($XDG_RUNTIME_DIR/edgevla/ports, else /tmp/edgevla-<uid>/ports): {"port", "device", "robot",
"pid"}. The file goes when the arm stops; the entry of a process that died without removing it
is ignored (and removed). The TUI's start screen lists these ports.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServedPort:
    port: str  # what a host opens: the link, or the pty itself
    device: str  # the pty
    robot: str
    pid: int


def registry_dir() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) / "edgevla" if runtime else Path(tempfile.gettempdir()) / f"edgevla-{os.getuid()}"
    return base / "ports"


def register(port: str, device: str, robot: str) -> Path | None:
    """Record a served port; its entry file, or None where the folder cannot be written (serving
    goes on: the list is a convenience, the port works without it)."""
    folder = registry_dir()
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if folder.stat().st_uid != os.getuid():
            return None  # someone else's folder: never write there, never trust it
        entry = folder / f"{os.getpid()}-{Path(device).name}.json"
        entry.write_text(json.dumps(asdict(ServedPort(port, device, robot, os.getpid()))))
    except OSError:
        return None
    return entry


def unregister(entry: Path | None) -> None:
    if entry is not None:
        entry.unlink(missing_ok=True)


def served_ports() -> list[ServedPort]:
    """The ports of virtual arms serving now."""
    folder = registry_dir()
    if not folder.is_dir() or folder.stat().st_uid != os.getuid():
        return []
    ports = []
    for entry in sorted(folder.glob("*.json")):
        try:
            served = ServedPort(**json.loads(entry.read_text()))
        except (OSError, ValueError, TypeError):
            continue  # half written or gone meanwhile
        if _alive(served.pid) and os.path.exists(served.port):
            ports.append(served)
        else:
            entry.unlink(missing_ok=True)
    return ports


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, and not ours to signal
    return True
