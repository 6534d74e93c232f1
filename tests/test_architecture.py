"""The layer rules of docs/ARCHITECTURE.md hold for every import in the code, lazy ones included."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "ARCHITECTURE.md"
# installed package name -> the repository folder it is built from (setup.py maps the last two)
SOURCES = {"edgevla": ROOT / "edgevla", "edgevla.firmware": ROOT / "firmware", "edgevla.tui": ROOT / "tui"}
NAME = re.compile(r"`([A-Za-z_][\w.]*)`")


@dataclass(frozen=True)
class Rule:
    importers: tuple[str, ...]
    forbidden: tuple[str, ...]
    line: int  # in the doc


@dataclass(frozen=True)
class Import:
    target: str
    line: int
    how: str  # "import", "import_module" or "-m"


def _table(section: str) -> list[tuple[int, list[str]]]:
    """(doc line, cells) of each body row of the first table under the `## section` heading."""
    rows, inside = [], False
    for number, text in enumerate(DOC.read_text().splitlines(), start=1):
        if text.startswith("## "):
            inside = text[3:].strip() == section
        elif inside and text.startswith("|") and not set(text) <= set("|- "):
            rows.append((number, [cell.strip() for cell in text.strip("|").split("|")]))
        elif inside and rows and not text.startswith("|"):
            break
    return rows[1:]  # the header row names the columns


def read_rules() -> list[Rule]:
    return [
        Rule(tuple(NAME.findall(cells[0])), tuple(NAME.findall(cells[1])), line)
        for line, cells in _table("Forbidden imports")
    ]


def _covers(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def modules() -> list[tuple[str, Path]]:
    """(module name, file) for every module of the installed package."""
    found = []
    for package, folder in SOURCES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found.append((".".join((package, *parts)), path))
    return found


def imports_of(module: str, source: str, is_package: bool = False) -> list[Import]:
    """Every module that `source` imports: statements anywhere (also inside functions), literal
    `importlib.import_module`/`__import__` names, and `-m edgevla.X` in command-line lists."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [Import(alias.name, node.lineno, "import") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = parts[: len(parts) - node.level + 1] if node.level else []  # `from ..x` climbs one
            origin = ".".join([*base, *([node.module] if node.module else [])])
            found += [Import(f"{origin}.{alias.name}", node.lineno, "import") for alias in node.names]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if called in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.append(Import(node.args[0].value, node.lineno, "import_module"))
        elif isinstance(node, ast.List | ast.Tuple):
            words = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
            for flag, name in zip(words, words[1:], strict=False):
                if flag == "-m" and isinstance(name, str) and name.startswith("edgevla."):
                    found.append(Import(name, node.lineno, "-m"))
    return found


def violations(rules: list[Rule]) -> list[str]:
    broken = []
    for module, path in modules():
        for imported in imports_of(module, path.read_text(), path.name == "__init__.py"):
            for rule in rules:
                importer = next((p for p in rule.importers if _covers(module, p)), None)
                banned = next((p for p in rule.forbidden if _covers(imported.target, p)), None)
                if importer and banned:
                    broken.append(
                        f"{path.relative_to(ROOT)}:{imported.line}: {module} imports {imported.target} "
                        f"({imported.how}); {importer} must not import {banned} "
                        f"(docs/ARCHITECTURE.md line {rule.line})"
                    )
    return broken


def test_no_module_imports_what_its_layer_forbids():
    rules = read_rules()
    assert len(rules) >= 5 and all(rule.importers and rule.forbidden for rule in rules), "table unreadable"
    broken = violations(rules)
    assert not broken, "\n".join(broken)


def test_every_package_has_its_line_in_the_doc():
    listed = {NAME.findall(cells[0])[0] for _, cells in _table("Packages")}
    present = {".".join(name.split(".")[:2]) for name, _ in modules() if name != "edgevla"}
    assert present <= listed, f"add to docs/ARCHITECTURE.md (Packages): {sorted(present - listed)}"
    for rule in read_rules():
        assert set(rule.importers) <= listed, f"line {rule.line} names a package not in Packages"


def test_lazy_dynamic_and_subprocess_imports_are_all_seen():
    source = """
from . import wire
def late():
    import torch.nn
    from ..model import checkpoint
    importlib.import_module("edgevla.export.bnb")
    subprocess.run([sys.executable, "-m", "edgevla.hosting.worker_process", "x"])
    subprocess.run([sys.executable, "-m", "edgevla", "run"])
"""
    seen = {(i.target, i.how) for i in imports_of("edgevla.runtime.loop", source)}
    assert seen == {
        ("edgevla.runtime.wire", "import"),
        ("torch.nn", "import"),
        ("edgevla.model.checkpoint", "import"),
        ("edgevla.export.bnb", "import_module"),
        ("edgevla.hosting.worker_process", "-m"),
    }
