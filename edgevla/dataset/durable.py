"""Writing files so that a crash or power loss leaves either the old file or the new one.

Every file is written under a temporary name in the same folder, flushed, fsynced, renamed over
its final name, and the folder is fsynced so the rename itself survives power loss. OS errors
(disk full, read-only file system, permissions) become one `DatasetWriteError` line. Every path
is checked to stay inside the dataset folder `root` first (`confine.inside`).
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from edgevla.dataset.confine import inside
from edgevla.errors import EdgevlaError

TMP_SUFFIX = ".edgevla-tmp"


class DatasetWriteError(EdgevlaError):
    """The dataset could not be written; episodes saved before stay intact."""

    exit_code = 3


def describe_os_error(err: OSError) -> str:
    if err.errno == errno.ENOSPC:
        return "disk full (no space left on device)"
    if err.errno == errno.EROFS:
        return "read-only file system"
    return err.strerror or str(err)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_folder(root: Path, folder: Path) -> None:
    """Create `folder` and the folders above it, each durably (fsynced in its parent)."""
    if inside(root, folder).is_dir():
        return
    make_folder(root, folder.parent)
    folder.mkdir(exist_ok=True)
    fsync_dir(folder.parent)


def publish(root: Path, tmp: Path, final: Path) -> None:
    """fsync `tmp`, rename it to `final`, fsync the folder: `final` is now durable."""
    inside(root, tmp)
    make_folder(root, inside(root, final).parent)
    fsync_file(tmp)
    os.replace(tmp, final)
    fsync_dir(final.parent)


def write_durably(root: Path, path: Path, write: Callable[[Path], None]) -> None:
    """Run `write(tmp_path)` and publish the result at `path` atomically."""
    tmp = inside(root, path.with_name(path.name + TMP_SUFFIX))
    try:
        make_folder(root, path.parent)
        write(tmp)
        publish(root, tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise DatasetWriteError(f"cannot write {path}: {describe_os_error(err)}") from err


def write_json(root: Path, path: Path, data: dict) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w") as file:
            json.dump(data, file, indent=4)
            file.write("\n")

    write_durably(root, path, write)


def write_parquet(root: Path, path: Path, table: pa.Table) -> None:
    write_durably(root, path, lambda tmp: pq.write_table(table, tmp))
