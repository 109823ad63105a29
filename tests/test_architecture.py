"""The import graph runs one way: a module imports only modules listed before it in LAYERS (or its own package).

LAYERS is docs/architecture.md's map, lowest first. A module not named here fails the test: a new module must be
given its place.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("newsletter", "subscribers", "tasks", "templates")
LAYERS = [
    ("foundation", ["newsletter.errors", "newsletter.clock", "newsletter.batching", "newsletter.log",
                    "newsletter.config", "newsletter.sink", "templates"]),
    ("storage", ["newsletter.models", "newsletter.db", "newsletter.migrations"]),
    ("links", ["subscribers.tokens", "newsletter.links"]),
    ("subscribers", ["subscribers.profiles", "subscribers.consent", "subscribers.transfer"]),
    ("papers", ["newsletter.ingest", "newsletter.ranking"]),
    ("email", ["newsletter.render", "newsletter.compose", "newsletter.delivery", "newsletter.notices"]),
    ("editions", ["newsletter.editions", "newsletter.edition_control", "newsletter.dispatch", "newsletter.stats",
                  "newsletter.retention"]),
    ("jobs", ["newsletter.jobs", "newsletter.demo", "newsletter.doctor"]),
    ("interfaces", ["tasks", "newsletter.cli", "newsletter.web", "newsletter.__main__"]),
]
ORDER = [entry for _, entries in LAYERS for entry in entries]


def place_of(module: str) -> int:
    """The position in ORDER of the entry that holds `module`."""
    for position, entry in enumerate(ORDER):
        if module == entry or module.startswith(entry + "."):
            return position
    raise AssertionError(f"{module} has no place: add it to LAYERS and to docs/architecture.md")


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imports_of(path: Path) -> set[str]:
    """Every project module `path` imports, at the top or inside a function (`from newsletter import db` counts
    as newsletter.db)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(f"{node.module}.{alias.name}" if node.module in PACKAGES else node.module
                         for alias in node.names)
    return {name for name in found if name.split(".")[0] in PACKAGES}


def test_no_import_runs_back_up():
    upward = []
    for module, path in sorted(project_modules().items()):
        if module in PACKAGES:  # the packages' own __init__ files
            continue
        own = place_of(module)
        for imported in sorted(imports_of(path)):
            if imported in PACKAGES:
                continue
            other = place_of(imported)
            if other > own:
                upward.append(f"{module} ({ORDER[own]}) imports {imported} ({ORDER[other]})")
    assert upward == [], "imports that run back up:\n" + "\n".join(upward)


def test_ranking_knows_nothing_of_the_web():
    for module, path in project_modules().items():
        if module.startswith("newsletter.ranking"):
            assert not {i for i in imports_of(path) if i.startswith(("newsletter.web", "newsletter.links",
                                                                        "subscribers.tokens"))}, module
