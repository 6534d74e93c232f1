"""Where edgevla finds the data it ships (hardware definitions, calibration defaults, recipes).

The repository keeps `hardware/`, `calibration/` and `recipes/` at its top level; the wheel
installs them inside the package (`edgevla/hardware`, ... see setup.py). Both layouts are looked
up from this file's place, so any working directory works. Environment variables override the
hardware and recipe folders, so a robot with a read-only image can point elsewhere
(docs/HARDWARE.md lists them). Calibration profiles users make live outside the package, where
lerobot keeps its own (`user_calibration_dir`); the shipped ones are read-only defaults.
"""

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
# A source checkout (editable install or tests run from the repository); None when installed.
REPO_ROOT: Path | None = PACKAGE_DIR.parent if (PACKAGE_DIR.parent / "pyproject.toml").is_file() else None


def shipped(name: str) -> Path:
    """A data folder the package ships: inside the installed package, else the checkout's."""
    installed = PACKAGE_DIR / name
    if installed.is_dir() or REPO_ROOT is None:
        return installed
    return REPO_ROOT / name


def _folder(env_var: str, name: str) -> Path:
    value = os.environ.get(env_var)
    return Path(value).expanduser() if value else shipped(name)


def hardware_dir() -> Path:
    return _folder("EDGEVLA_HARDWARE_DIR", "hardware")


def calibration_dir() -> Path:
    """The shipped calibration defaults (virtual and simulated arms); read-only."""
    return shipped("calibration")


def lerobot_calibration_dir() -> Path:
    """lerobot's calibration folder, resolved as lerobot resolves it: $HF_LEROBOT_CALIBRATION,
    else $HF_LEROBOT_HOME/calibration, HF_LEROBOT_HOME defaulting to $HF_HOME/lerobot and HF_HOME
    to $XDG_CACHE_HOME/huggingface (~/.cache/huggingface)."""
    if os.environ.get("HF_LEROBOT_CALIBRATION"):
        return Path(os.environ["HF_LEROBOT_CALIBRATION"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME", "~/.cache")
    hf_home = os.environ.get("HF_HOME", os.path.join(cache, "huggingface"))
    return (
        Path(os.environ.get("HF_LEROBOT_HOME", os.path.join(hf_home, "lerobot"))).expanduser() / "calibration"
    )


def calibration_override() -> Path | None:
    """EDGEVLA_CALIBRATION_DIR: one flat folder of <id>.json profiles, read and written instead of
    lerobot's (the simulator's profiles, a robot whose home is read-only, tests)."""
    value = os.environ.get("EDGEVLA_CALIBRATION_DIR")
    return Path(value).expanduser() if value else None


def recipes_dir() -> Path:
    return _folder("EDGEVLA_RECIPES_DIR", "recipes")


def assets_dir() -> Path:
    return PACKAGE_DIR / "assets"
