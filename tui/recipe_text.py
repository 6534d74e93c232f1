"""Validate and save a recipe edited in the UI, with the train package's own validator; read and
write its `corrections:` section (docs/CORRECTIONS.md) in the text, the rest left as written."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from edgevla.train.recipe import Recipe, RecipeError, load_recipe

# The training modes of a correction round (docs/CORRECTIONS.md): the key of the screen's choice.
PLAIN, DAGGER, HG_DAGGER, ADVANTAGE = "plain", "dagger", "hg-dagger", "advantage"
DEFAULT_WEIGHT = 3  # the docs' and the correction experiment's intervention_weight
_TOP_KEY = re.compile(r"^corrections\s*:")


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


def corrections_section(text: str) -> dict[str, Any] | None:
    """The recipe's `corrections:` mapping, {} when it is empty, None when the recipe has none (or
    the text is not a YAML mapping: the validator says why)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    if not isinstance(data, dict) or "corrections" not in data:
        return None
    section = data["corrections"]
    return section if isinstance(section, dict) else {}


def corrections_mode(text: str) -> str | None:
    """Which mode the recipe's section asks for: advantage conditioning, HG-DAgger (the policy's own
    frames left out), DAgger (corrected frames weighted), or plain (no section, or one that changes
    nothing); None if it cannot be read."""
    section = corrections_section(text)
    if section is None:
        return PLAIN if _readable(text) else None
    if section.get("advantage") is True:
        return ADVANTAGE
    if section.get("policy_weight") == 0:
        return HG_DAGGER
    weight = section.get("intervention_weight", 1)
    return DAGGER if isinstance(weight, int) and weight > 1 else PLAIN


def with_corrections_mode(text: str, mode: str) -> str:
    """`text` with its `corrections:` section written for `mode` (dropped for plain), where it was or
    at the end. Other fields of the section (bad_before_s, weights other than HG-DAgger's 0) are kept; every other
    line stays as it was."""
    if corrections_mode(text) == mode:
        return text
    section = dict(corrections_section(text) or {})
    lines, at = _without_section(text.splitlines())
    if mode != PLAIN:
        weight = section.get("intervention_weight")
        section["intervention_weight"] = weight if isinstance(weight, int) and weight > 1 else DEFAULT_WEIGHT
        section["advantage"] = mode == ADVANTAGE
        if mode == HG_DAGGER:
            section["policy_weight"] = 0
        elif section.get("policy_weight") == 0:  # the other modes train on the policy's frames
            del section["policy_weight"]
        block = yaml.safe_dump({"corrections": section}, sort_keys=False).splitlines()
        lines[at:at] = block
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines) + "\n"


def _readable(text: str) -> bool:
    try:
        return isinstance(yaml.safe_load(text), dict)
    except yaml.YAMLError:
        return False


def _without_section(lines: list[str]) -> tuple[list[str], int]:
    """The lines without the top-level `corrections:` block (its key line and the indented or blank
    lines under it, up to the next line at column 0), and where it was (else the end)."""
    kept, at, inside = [], None, False
    for line in lines:
        if _TOP_KEY.match(line):
            inside, at = True, len(kept)
            continue
        if inside and (not line.strip() or line[0] in " \t"):
            continue
        inside = False
        kept.append(line)
    if at is None:
        while kept and not kept[-1].strip():
            kept.pop()
        at = len(kept)
    return kept, at
