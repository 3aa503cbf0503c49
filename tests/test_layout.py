"""The README's Layout section names every module of the repository, so it cannot drift from the tree."""

from __future__ import annotations

import re

from helpers import ROOT as REPO


def _layout_section() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return readme.split("## Layout", 1)[1].split("\n## ", 1)[0]


def test_readme_layout_names_every_module_and_folder():
    layout = _layout_section()
    named = set(re.findall(r"[\w./-]+", layout))
    missing = []
    for folder in ("gatys", "hub", "reproduction", "benchmarks", "training", "spaces", "tests", "docs"):
        if f"{folder}/" not in layout:
            missing.append(f"{folder}/")
    for folder in ("gatys", "hub", "reproduction", "benchmarks", "training"):
        for path in sorted((REPO / folder).glob("*.py")):
            if path.name == "__init__.py" and folder != "gatys":
                continue
            if path.name not in named and f"{folder}/{path.name}" not in named:
                missing.append(f"{folder}/{path.name}")
    assert not missing, f"README Layout does not name: {', '.join(missing)}"


def test_readme_layout_names_nothing_that_is_gone():
    for name in re.findall(r"\b(\w+\.py)\b", _layout_section()):
        assert list(REPO.glob(f"*/{name}")) or (REPO / name).exists(), f"README Layout names {name}, not in the tree"
