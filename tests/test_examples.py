"""The numbered examples run as a user runs them, and show what they promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, out: Path, timeout: int = 300) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_01_problem_and_data(tmp_path):
    stdout = _run("01_problem_and_data.py", tmp_path)
    assert "32 samples" in stdout
    assert (tmp_path / "pair.png").stat().st_size > 10_000
    assert (tmp_path / "pair.vti").is_file()
    frac = float(stdout.split("a=12 fraction ")[1].split(",")[0])
    u_max = float(stdout.split("max u ")[1].split()[0])
    assert 0.3 < frac < 0.7 and 5e-3 < u_max < 3e-2  # the FNO Darcy benchmark's statistics


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "examples").glob("[0-9][0-9]_*.py")))
def test_every_example_has_a_test(script):
    tested = {name for name in globals() if name.startswith("test_")}
    assert f"test_{script[:-3]}" in tested, f"examples/{script} is not run by a test"
