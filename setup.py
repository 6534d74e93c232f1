"""Package layout: the repository keeps `firmware/`, `tui/`, `hardware/`, `calibration/` and
`recipes/` at the top level, and the installed project has one namespace, so each is mapped under
`edgevla` here (metadata and dependencies live in pyproject.toml).

A sub-package added under any of these folders is found without editing this file.
"""

from setuptools import find_packages, setup

# Python code kept beside edgevla/ in the repository, installed as edgevla.<name>.
CODE = ("firmware", "tui")
# Data folders, installed as edgevla/<name>/ and found by edgevla.paths.
DATA = {
    "hardware": ["**/*.yaml"],
    "calibration": ["**/*.json"],
    "recipes": ["*.yaml"],
}

packages = find_packages(include=["edgevla", "edgevla.*"])
package_dir = {"edgevla": "edgevla"}
for top in CODE:
    for name in find_packages(include=[top, f"{top}.*"]):
        packages.append(f"edgevla.{name}")
    package_dir[f"edgevla.{top}"] = top
for top in DATA:
    packages.append(f"edgevla.{top}")
    package_dir[f"edgevla.{top}"] = top

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={
        "edgevla.assets": ["*.json", "small-reach/*.md", "small-reach/onnx-int8/*"],
        "edgevla.tui": ["styles/*.tcss"],
        **{f"edgevla.{top}": globs for top, globs in DATA.items()},
    },
)
