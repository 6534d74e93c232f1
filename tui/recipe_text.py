"""Validate and save a recipe edited in the UI, with the train package's own validator."""

from __future__ import annotations

import tempfile
from pathlib import Path

from edgevla.train.recipe import Recipe, RecipeError, load_recipe


def check_recipe_text(text: str, name: str, dataset: str = "", out: str = "") -> Recipe:
    """The recipe `text` (YAML) as `edgevla train --dataset DATASET --out OUT` would load it;
    a RecipeError (one line, naming the field) when it does not validate."""
    overrides = {}
    if dataset:
        overrides["datasets"] = [dataset]
    if out:
        overrides["out"] = out
    with tempfile.TemporaryDirectory(prefix="edgevla-recipe-") as folder:
        path = Path(folder) / f"{name}.yaml"
        path.write_text(text)
        try:
            return load_recipe(path, overrides)
        except RecipeError as err:  # name the recipe the user edits, not the temporary file
            raise RecipeError(str(err).replace(str(path), name)) from None


def save_recipe_text(text: str, path: Path) -> Path:
    """Write the edited recipe next to the run (atomically), for `edgevla train --recipe`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path
