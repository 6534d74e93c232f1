"""Keeping every file the dataset code writes or deletes inside the dataset folder.

A folder inside a dataset (`data/chunk-001`, a videos chunk, `.partial`) may be a symlink: left
by a user who moved files to another disk, or planted by someone hostile. Writing or deleting
through one that leads out of the dataset would touch files that are not the dataset's, so
every path the writer, `repair` and `record --resume` write or delete is resolved and checked
here first, and a symlink that leaves the dataset is refused with one line naming it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from edgevla.dataset.format import DatasetFormatError


class OutsideDatasetError(DatasetFormatError):
    """A path the dataset code was about to write or delete leads out of the dataset folder."""


def _leaves(root: Path, path: Path) -> bool:
    return not path.resolve().is_relative_to(root.resolve())


def _refusal(root: Path, link: Path, others: int = 0) -> OutsideDatasetError:
    more = f" (and {others} more such link(s))" if others else ""
    return OutsideDatasetError(
        f"{link} is a symlink to {os.readlink(link)}, outside the dataset {root}{more}: edgevla writes "
        "and deletes only inside a dataset, so it changed nothing; move those files into the dataset "
        "(or the whole dataset onto that disk) and remove the link"
    )


def inside(root: Path, path: Path) -> Path:
    """`path`, after checking that it stays inside `root` once every symlink on it is followed."""
    if not _leaves(root, path):
        return path
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        raise OutsideDatasetError(f"{path} is outside the dataset {root}; nothing was changed") from None
    for depth in range(1, len(parts) + 1):
        step = root.joinpath(*parts[:depth])
        if step.is_symlink() and _leaves(root, step):
            raise _refusal(root, step)
    raise OutsideDatasetError(f"{path} leads outside the dataset {root}; nothing was changed")


def escaping_links(root: Path) -> list[Path]:
    """Every symlink inside `root` that leads out of it (folders behind one are not entered)."""
    links = []
    for folder, folders, files in os.walk(root):  # os.walk does not follow symlinked folders
        for name in folders + files:
            path = Path(folder) / name
            if path.is_symlink() and _leaves(root, path):
                links.append(path)
    return sorted(links)


def refuse_escaping_links(root: Path) -> None:
    """Before a repair or resume changes anything: no symlink in the dataset may lead out of it."""
    links = escaping_links(root)
    if links:
        raise _refusal(root, links[0], len(links) - 1)


def remove(root: Path, path: Path) -> None:
    inside(root, path).unlink(missing_ok=True)


def remove_tree(root: Path, path: Path) -> None:
    """Delete the folder `path` (a symlink inside the dataset: only the link itself)."""
    inside(root, path)
    if path.is_symlink():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)  # does not follow symlinks below `path`: it unlinks them
