"""The README's map of the code ("How it is built") names every package and module of the product, and nothing that
is not there: the map cannot drift from the tree."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
TOP = ("watcher", "classifiers")


def _map() -> dict[str, set[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## How it is built", 1)[1].split("```", 2)[1]
    named: dict[str, set[str]] = {top: set() for top in TOP}
    current = None
    for line in block.splitlines():
        if re.match(r"^\S+/", line):
            current = line.split("/")[0]
            continue
        match = re.match(r"^\s+(\S+)", line)
        if current in named and match:
            named[current].add(match.group(1).rstrip("/"))
    return named


def _tree(top: str) -> set[str]:
    base = ROOT / top
    names = {p.name for p in base.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    names |= {p.stem for p in base.glob("*.py") if p.stem not in {"__init__", "__main__"}}
    return names


def test_the_readme_map_names_every_package_and_module() -> None:
    named = _map()
    for top in TOP:
        assert _tree(top) - named[top] == set(), f"{top}/: in the tree, missing from the README's map"


def test_the_readme_map_names_nothing_that_is_not_there() -> None:
    named = _map()
    for top in TOP:
        extra = {n for n in named[top] - _tree(top) if not (ROOT / top / n).exists()}
        assert extra == set(), f"{top}/: in the README's map, not in the tree"


def test_each_room_of_the_map_lists_its_modules() -> None:
    """A sub-package's line in the map names its modules (e.g. ``daemon/  schedule, instance, ...``)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8").split("## How it is built", 1)[1].split("```", 2)[1]
    for top in TOP:
        for package in (p for p in (ROOT / top).iterdir() if (p / "__init__.py").exists()):
            line = next(ln for ln in text.splitlines() if re.match(rf"^\s+{package.name}/", ln))
            for module in package.glob("*.py"):
                if module.stem in {"__init__", "__main__"} or package.name in {"cli", "sources", "config"}:
                    continue
                assert module.stem in line, f"{top}/{package.name}/{module.name} is not named in the README's map"


DOCS = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_docs_name_only_files_and_modules_that_exist() -> None:
    """A path (`watcher/search/similar.py`) or a dotted module (`watcher.search.similar.similar_items`) written in
    backticks in the README or docs/ is there: a move or a rename that forgets the docs fails here."""
    missing = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for path in re.findall(r"`((?:watcher|classifiers|store|tools|benchmarks|tests)/[^`\s:#(]*)", text):
            if not (ROOT / path).exists():
                missing.append(f"{doc.name}: {path}")
        for dotted in re.findall(r"`((?:watcher|classifiers|store)(?:\.[A-Za-z_]\w*)+)", text):
            if not _resolves(dotted):
                missing.append(f"{doc.name}: {dotted}")
    assert missing == [], "named in the docs, not in the tree: " + ", ".join(missing)


def _resolves(dotted: str) -> bool:
    """``a.b.c.name.attr``: the longest importable module prefix, then attributes."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:n]))
        except ImportError:
            continue
        for name in parts[n:]:
            if not hasattr(target, name):
                return False
            target = getattr(target, name)
        return True
    return False
