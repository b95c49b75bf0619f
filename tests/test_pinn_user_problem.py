"""A PINN problem file written by a user trains from Python and from the CLI, and `sciml solve` answers it.

The file is the README's, from "Writing your own PINN problem" (read from README.md, so that the
README shows a file that works): ``-Laplace u = 1`` on an L-shaped polygon, ``u = 0`` on its boundary,
a finite-difference reference on the grid-aligned L. On a domain that is not a box the grid of the
reference has nodes outside the domain (the cut-out quadrant): errors are taken at the nodes inside
only, and the answer of ``sciml solve`` is NaN in the cut-out.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from sciml.cli import main
from sciml.problem import load_problem
from sciml.workflows import solve_run, train_pinn

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_problem_file() -> str:
    """The first Python block of the README's "Writing your own PINN problem": the problem file."""
    section = README.read_text().split("## Writing your own PINN problem", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


# A small, fast budget: a 2 x 32 tanh network, 300 Adam steps at 1e-2 on 300 interior and 200 boundary
# points (about 3 s on one CPU thread). Measured: untrained relative L2 2.76, trained 0.49.
BUDGET = {"model_kwargs": {"hidden": [32, 32]}, "n_interior": 300, "n_boundary": 200, "steps": 300, "lr": 1e-2}
CLI_BUDGET = ["--model-arg", "hidden=[32,32]", "--n-interior", "300", "--n-boundary", "200", "--steps", "300",
              "--lr", "1e-2"]
N_INSIDE = 65 * 65 - 32 * 32  # the closed L: every node but those of the open quadrant x > 0, y > 0


@pytest.fixture
def problem_file(tmp_path: Path) -> Path:
    path = tmp_path / "lshape.py"
    path.write_text(_readme_problem_file())
    return path


def _printed_error(text: str, after: str) -> float:
    match = re.search(re.escape(after) + r" ([0-9.eE+-]+)", text)
    assert match is not None, text
    return float(match.group(1))


def test_the_file_loads_and_describes_itself(problem_file, capsys):
    problem = load_problem(problem_file)
    assert problem.name == "lshape" and problem.source == str(problem_file.resolve())
    u = problem.solve()["u"].numpy()  # the reference on the default grid: zero in the cut-out and on the edges
    x, y = np.meshgrid(np.linspace(-1, 1, 65), np.linspace(-1, 1, 65), indexing="ij")
    assert np.all(u[(x >= 0) & (y >= 0)] == 0) and 0.14 < u.max() < 0.16
    assert main(["problems", str(problem_file)]) == 0
    assert "L-shape" in capsys.readouterr().out


def test_train_pinn_from_python_learns_and_scores_inside_the_domain(problem_file, tmp_path):
    untrained = train_pinn(problem_file, **{**BUDGET, "steps": 1}, out_dir=tmp_path / "untrained", progress="off")
    run = train_pinn(problem_file, **BUDGET, out_dir=tmp_path / "run", progress="off")
    assert untrained.errors["rel_l2"] > 1.5, untrained.errors
    assert run.errors["rel_l2"] < 0.7 and run.errors["rel_l2"] < 0.4 * untrained.errors["rel_l2"], run.errors
    # the error is taken at the grid's nodes in the domain only, and equals the one of task.solve's Fields
    points, values = run.task.reference_solution()
    assert len(points) == N_INSIDE and bool(run.task.domain.inside(points).all())
    problem = load_problem(problem_file)
    u = run.task.solve(problem.grid)["u"].numpy()
    ref = problem.solve()["u"].numpy()
    inside = ~np.isnan(u)
    assert inside.sum() == N_INSIDE
    expected = np.linalg.norm(u[inside] - ref[inside]) / np.linalg.norm(ref[inside])
    assert run.errors["rel_l2"] == pytest.approx(expected, rel=1e-6)
    assert json.loads((run.run_dir / "summary.json").read_text()) == run.errors


def test_train_and_solve_from_the_cli(problem_file, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(problem_file), "--model", "pinn", *CLI_BUDGET, "--out", str(run)]) == 0
    trained = _printed_error(capsys.readouterr().out, "PINN, relative L2 vs reference")
    assert trained < 0.7
    settings = json.loads((run / "run.json").read_text())
    assert settings["kind"] == "pinn" and settings["model_kwargs"]["hidden"] == [32, 32]

    png = tmp_path / "lshape.png"
    assert main(["solve", str(run), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    line = next(t for t in out.splitlines() if t.startswith("u: "))
    assert "pinn answer on 65x65" in out and "nan" not in line, out  # min and max of the nodes inside
    # the same network on the same grid: the error of `sciml solve` is the one of training
    assert _printed_error(out, "relative L2 error vs reference") == pytest.approx(trained, rel=1e-3)
    assert png.stat().st_size > 10_000
    solved = solve_run(run, {})
    u, ref = solved.prediction["u"].numpy(), solved.reference["u"].numpy()
    assert np.array_equal(np.isnan(u), np.isnan(ref)) and np.isnan(u).sum() == 65 * 65 - N_INSIDE


def test_a_file_without_reference_trains_and_solves(problem_file, tmp_path, capsys):
    bare = tmp_path / "lshape_bare.py"
    bare.write_text(problem_file.read_text().replace(", reference=reference", ""))
    assert load_problem(bare).reference is None
    run = tmp_path / "bare_run"
    assert main(["train", str(bare), "--model", "pinn", "--steps", "20", "--n-interior", "64", "--n-boundary", "32",
                 "--model-arg", "hidden=[8]", "--out", str(run)]) == 0
    assert "no reference to compare with" in capsys.readouterr().out
    png = tmp_path / "bare.png"
    assert main(["solve", str(run), "--resolution", "33", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    line = next(t for t in out.splitlines() if t.startswith("u: "))
    assert "pinn answer on 33x33" in out and "relative L2" not in line and "nan" not in line, out
    assert png.stat().st_size > 0
