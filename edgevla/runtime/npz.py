"""Reading .npz files of plain arrays (observations, stats, replays): never unpickled, and a
truncated or overwritten file is one line naming it instead of a zipfile traceback."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from edgevla.errors import EdgevlaError, first_line


def read_npz(path: str | Path, what: str = ".npz of plain arrays") -> dict[str, np.ndarray]:
    """Every array of the .npz at `path`; `what` names the kind of file in the error."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise EdgevlaError(f"{path} is not a readable {what} ({first_line(err)})") from err
