"""The house rules of docs/architecture.md, checked: no import circles, imports run one way
(entry points -> families -> training -> models/numerics/data -> problem -> core -> errors), and
method families do not import each other."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from _import_graph import import_circles, import_graph

SCIML = Path(__file__).resolve().parents[1] / "sciml"

# Lowest first. A module may import modules of its own layer or of a lower one, never a higher one.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("sciml", "sciml._checks", "sciml._lazy", "sciml._progress", "sciml.errors")),
    ("core", ("sciml.grid", "sciml.formula", "sciml.diff", "sciml.fields", "sciml.geometry", "sciml.viz",
              "sciml.numerics", "sciml.spaces")),
    ("problem", ("sciml.problem",)),
    ("building blocks", ("sciml.data", "sciml.models", "sciml.optim")),
    ("training", ("sciml.train",)),
    ("families", ("sciml.runs", "sciml.answers", "sciml.operators", "sciml.deeponet", "sciml.pinn", "sciml.inverse",
                  "sciml.linalg", "sciml.meshmove")),
    ("entry points", ("sciml.workflows", "sciml.cli")),
]
FAMILIES = ("sciml.operators", "sciml.deeponet", "sciml.pinn", "sciml.inverse", "sciml.linalg", "sciml.meshmove")


def _owner(module: str, prefixes: tuple[str, ...]) -> str | None:
    """The longest prefix naming ``module`` or a package above it."""
    hits = [p for p in prefixes if module == p or module.startswith(p + ".")]
    return max(hits, key=len) if hits else None


def _layer(module: str) -> int:
    best = None
    for level, (_, prefixes) in enumerate(LAYERS):
        owner = _owner(module, prefixes)
        if owner is not None and (best is None or len(owner) > len(best[1])):
            best = (level, owner)
    assert best is not None, f"{module} is in no layer: add it to LAYERS and to docs/architecture.md"
    return best[0]


def test_no_import_circles_in_sciml():
    circles = import_circles(import_graph(SCIML))
    assert circles == [], "import circles: " + "; ".join(" -> ".join(c) for c in circles)


def test_imports_run_one_way():
    graph = import_graph(SCIML)
    upward = [f"{m} ({LAYERS[_layer(m)][0]}) imports {t} ({LAYERS[_layer(t)][0]})"
              for m, targets in sorted(graph.items()) for t in sorted(targets) if _layer(t) > _layer(m)]
    assert upward == [], "imports against the layer order:\n" + "\n".join(upward)


def test_method_families_do_not_import_each_other():
    graph = import_graph(SCIML)
    crossing = []
    for module, targets in sorted(graph.items()):
        home = _owner(module, FAMILIES)
        for target in sorted(targets):
            other = _owner(target, FAMILIES)
            if home and other and other != home:
                crossing.append(f"{module} imports {target}")
    assert crossing == [], "families importing each other:\n" + "\n".join(crossing)


def _write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root / "pkg"


@pytest.mark.parametrize("how", ["top-level", "inside a function", "type-checking only", "relative from-import"])
def test_the_detector_finds_a_planted_circle(tmp_path, how):
    back = {
        "top-level": "from pkg.a import thing\n",
        "inside a function": "def f():\n    from pkg.a import thing\n    return thing\n",
        "type-checking only": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import thing\n",
        "relative from-import": "from ..a import thing\n",
    }[how]
    pkg = _write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from .sub.b import other\nthing = 1\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/b.py": back + "other = 2\n",
        "pkg/c.py": "from . import a\n",  # imports into the circle without being part of it
    })
    circles = import_circles(import_graph(pkg))
    assert circles == [["pkg.a", "pkg.sub.b", "pkg.a"]]


def test_the_detector_passes_a_package_without_circles(tmp_path):
    pkg = _write_package(tmp_path, {
        "pkg/__init__.py": "from .a import thing\n",  # an __init__ importing its own submodule
        "pkg/a.py": "from .b import other\nthing = 1\n",
        "pkg/b.py": "import os\nother = 2\n",
    })
    graph = import_graph(pkg)
    assert graph["pkg"] == {"pkg.a"} and graph["pkg.a"] == {"pkg.b"} and graph["pkg.b"] == set()
    assert import_circles(graph) == []


def test_every_module_is_under_600_lines():
    long = {str(p.relative_to(SCIML.parent)): n for p in SCIML.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600}
    assert long == {}, f"modules over 600 lines (split them where the seams are real): {long}"
