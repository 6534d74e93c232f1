"""Where edgevla finds its data folders (hardware definitions, calibration profiles, recipes).

A source checkout keeps them at the repository root; environment variables override each one
so an installed package or a robot with a read-only image can point elsewhere.
"""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _folder(env_var: str, default: Path) -> Path:
    value = os.environ.get(env_var)
    return Path(value).expanduser() if value else default


def hardware_dir() -> Path:
    return _folder("EDGEVLA_HARDWARE_DIR", REPO_ROOT / "hardware")


def calibration_dir() -> Path:
    return _folder("EDGEVLA_CALIBRATION_DIR", REPO_ROOT / "calibration")


def recipes_dir() -> Path:
    return _folder("EDGEVLA_RECIPES_DIR", REPO_ROOT / "recipes")
