"""The numbered examples run as a user runs them, and show what they promise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, out: Path, *args: str, timeout: int = 1800) -> str:  # generous: a busy CI machine
    # One intra-op thread: the examples' networks are small, and two threads on a busy 2-core
    # machine stall on every small matrix product.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), "--out", str(out), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
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


def test_02_quickstart(tmp_path):
    # A smaller version of the quickstart (the full one is `sciml quickstart`, about a minute:
    # 1000 samples at 17 x 17, 8 epochs): 200 samples at 17 x 17, 6 epochs. Untrained the error is about 1; trained about 5% in
    # distribution and 10% on the new boundary condition.
    stdout = _run("02_quickstart.py", tmp_path, "--epochs", "6", "--n-train", "200", "--resolution", "17")
    test_error = float(stdout.split("test relative L2: mean ")[1].split(",")[0])
    new_error = float(stdout.split("relative L2 error ")[1].split()[0])
    assert test_error < 0.1 and new_error < 0.2, stdout
    assert (tmp_path / "quickstart.png").stat().st_size > 10_000
    assert (tmp_path / "prediction.vtu").is_file()


def test_04_operators_darcy(tmp_path):
    # As the user runs it (about a minute): 300 samples at 29 x 29, 20 epochs of a 99k-parameter MgNO.
    # Untrained the error is about 1; trained about 3% on the test split and on the new coefficient.
    stdout = _run("04_operators_darcy.py", tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["test_mean"] < 0.08 and summary["new"] < 0.1, stdout
    assert summary["params"] > 0 and summary["s_per_epoch"] > 0
    assert (tmp_path / "darcy_mgno.png").stat().st_size > 10_000


def test_05_inverse_calderon(tmp_path):
    # As the user runs it (about a minute): 512 Calderon samples at 17 x 17, 25 epochs of a 94k-parameter
    # NIO. Measured (torch 2.13 CPU): test relative L1 6.0% (the training mean field: 7.8%), 6.3% with
    # half of the probes; the new conductivity 7.7% by NIO, 4.8% by the classical inversion, which takes
    # about ten times longer.
    stdout = _run("05_inverse_calderon.py", tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["test_rel_l1_median"] < 0.07 and summary["nio"] < 0.12, stdout
    assert summary["nio_half"] < 1.25 * summary["nio"] and summary["classical"] < 0.1
    assert summary["classical_ms"] > summary["nio_ms"]
    assert (tmp_path / "calderon_nio.png").stat().st_size > 10_000


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "examples").glob("[0-9][0-9]_*.py")))
def test_every_example_has_a_test(script):
    here = Path(__file__).name
    runners = [p for p in (ROOT / "tests").glob("test_*.py") if p.name != here and script in p.read_text()]
    tested = {name for name in globals() if name.startswith("test_")}
    assert f"test_{script[:-3]}" in tested or runners, f"examples/{script} is not run by a test"


def test_08_pinn_lpinn_config(tmp_path):
    # Burgers with 600 Adam steps (the example's default is 1500) keeps the run near a minute.
    stdout = _run("08_pinn_lpinn_config.py", tmp_path, "--steps", "600")
    summary = json.loads((tmp_path / "summary.json").read_text())
    conv = summary["convection"]
    assert conv["pinn"]["rel_l2"] > 0.5, stdout  # the failure mode of the plain PINN at c = 30
    assert conv["lpinn"]["rel_l2"] < 1e-2, stdout  # fixed by the characteristics
    cosines = list(summary["burgers"]["config_cosines"].values())
    assert min(cosines) > 0 and max(cosines) - min(cosines) < 1e-3 * max(cosines), cosines  # conflict-free
    for name in ("sum", "config"):
        assert summary["burgers"][name]["rel_l2"] < 0.9, stdout  # learning happened (untrained: ~1)
    assert (tmp_path / "convection.png").stat().st_size > 20_000


def test_09_pinn_lshape(tmp_path):
    # As the user runs it (about a minute on one thread): DeepXDE's L-shape Poisson problem written as a
    # Problem, a 3 x 32 tanh PINN with a soft Dirichlet condition, 300 Adam + 100 L-BFGS steps. Measured
    # (torch 2.13 CPU): relative L2 2.3% against finite differences (seeds 1, 2: 4.0%, 4.3%); after the
    # Adam steps alone about 50%, untrained about 100% or more. The finite differences move by 0.08% from
    # 129 to 257 nodes.
    stdout = _run("09_pinn_lshape.py", tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["rel_l2"] < 0.08, stdout  # learning happened, L-BFGS included
    printed = float(stdout.split("relative L2 error ")[1].split()[0])
    assert abs(printed - summary["rel_l2"]) < 1e-4 and not summary["hard"]
    assert summary["fd_change_129_257"] < 2e-3  # the reference is converged well below the PINN's error
    assert (tmp_path / "lshape.png").stat().st_size > 20_000
