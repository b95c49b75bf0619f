"""A built wheel holds every sciml subpackage, the built-in problem files (package discovery in
setup.py finds them by itself; nothing is listed by hand) and the shipped weights (package data)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_every_subpackage_and_the_problem_files(tmp_path):
    # Build from a copy, so that the checkout gets no build/ or egg-info folders.
    src = tmp_path / "src"
    for name in ("sciml", "problems"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    out = tmp_path / "wheel"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = out.glob("sciml-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    packages = sorted(str(p.parent.relative_to(ROOT)) for p in (ROOT / "sciml").rglob("__init__.py"))
    assert "sciml/deeponet" in packages and "sciml/workflows" in packages  # the walk itself works
    missing = [p for p in packages if f"{p}/__init__.py" not in names]
    assert missing == [], f"subpackages missing from the wheel: {missing}"
    modules = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "sciml").rglob("*.py"))
    assert [m for m in modules if m not in names] == []

    problems = sorted(p.name for p in (ROOT / "problems").glob("*.py"))
    assert "darcy.py" in problems
    missing = [p for p in problems if f"sciml/_problems/{p}" not in names]
    assert missing == [], f"problem files missing from the wheel: {missing}"
    assert not any(n.startswith(("tests/", "benchmarks/", "problems/")) for n in names)

    # Shipped weights (DCDM.pretrained, DMM.pretrained): every file of every weights folder, as package data.
    shipped = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "sciml").rglob("weights/*") if p.is_file())
    assert {"sciml/linalg/weights/dcdm_2d.pt", "sciml/linalg/weights/dcdm_2d.json"} <= set(shipped)
    assert [w for w in shipped if w not in names] == [], "shipped weights missing from the wheel"
