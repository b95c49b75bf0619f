"""What ``sciml solve RUN`` runs: answer new inputs with any trained run, on any grid, against the
reference solver.

>>> solved = solve_run("runs/poisson", {"g": "sin(pi*x)*y", "f": "0"}, resolution=65)  # doctest: +SKIP
>>> solved.errors                                                                       # doctest: +SKIP
{'u': 0.011}

* grid operators (FNO, ...) answer on the training grid or on ``resolution`` nodes per axis of the
  same box (they are resolution independent: trained at 33, asked at 65);
* DeepONets answer at any point, so on any grid of the box;
* inverse operators (NIO, ...) of boundary-measurement problems: the inputs given are the *truth*
  (the unknown coefficient, e.g. ``a="1 + 0.3*sin(pi*x)*sin(pi*y)"``), measured with the problem's
  own forward model (at the training noise level, or ``noise``), reconstructed from those
  measurements and compared with the truth;
* PINNs of ``sciml train --model pinn`` (:mod:`~sciml.workflows.pinn`) evaluate their network on the
  problem's grid or on ``resolution`` nodes per axis; they solve the one instance they were trained
  for, so inputs given here must be the recorded ones. Outside a domain that is not a box (the
  cut-out of an L-shape) the answer and the reference are NaN and the error leaves those nodes out.

The answer is compared with the problem's reference solver on the same grid when the problem has one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError, FixedInputError
from ..fields import Field, Grid, relative_l2
from ..problem import Problem

__all__ = ["Solved", "solve_run", "write_plot", "write_vtu", "describe_grid"]


@dataclass
class Solved:
    """One answered instance: what ``sciml solve`` prints and draws."""

    kind: str  # "operator", "deeponet", "inverse" or "pinn"
    problem: Problem
    grid: Grid
    trained_grid: Grid | None
    prediction: dict[str, Field]
    reference: dict[str, Field] | None
    inputs: dict[str, Field] = field(default_factory=dict)
    errors: dict[str, float] = field(default_factory=dict)
    reference_label: str = "reference"  # "truth" for an inverse problem's reconstruction

    @property
    def boundary_inputs(self) -> list[str]:
        """The inputs that are boundary data (``Input(on="boundary")``)."""
        return [i.name for i in self.problem.inputs if i.on == "boundary" and i.name in self.inputs]


def solve_run(run_dir: str | os.PathLike[str], inputs: Mapping[str, Any], resolution: int | None = None,
              reference: bool = True, device: str = "auto", noise: float | None = None) -> Solved:
    """Answer ``inputs`` (numbers, formulas, arrays, Fields by input name) with the run in ``run_dir``.

    ``resolution`` asks for the answer on that many nodes per axis of the training box (the training
    grid, or for a PINN the problem's grid, by default). ``reference=False`` skips the classical solver.
    """
    from .pinn import is_pinn_run

    if is_pinn_run(run_dir):
        return _solve_pinn(run_dir, inputs, resolution, reference)
    from ..runs import load_solver

    solver = load_solver(run_dir, device=device)
    if hasattr(solver, "measure"):
        return _solve_inverse(solver, inputs, resolution, noise)
    trained = solver.grid
    grid = trained if resolution is None else Grid((resolution,) * trained.ndim, trained.bounds)
    if hasattr(solver, "sensors"):  # a DeepONet answers at points: sample it on the grid
        kind, prediction = "deeponet", solver(**inputs).on(grid)
    else:
        kind, prediction = "operator", solver(grid=grid, **inputs)
    used = getattr(prediction, "inputs", None) or _prepared(solver.problem, inputs, grid)
    ref = solver.reference(grid, **inputs) if reference and solver.problem.reference is not None else None
    return _finish(kind, solver.problem, grid, trained, dict(prediction), ref, used)


def _solve_inverse(solver: Any, inputs: Mapping[str, Any], resolution: int | None, noise: float | None) -> Solved:
    """Measure the truth ``inputs`` with the forward model, reconstruct it, compare (seeded noise)."""
    if resolution is not None and resolution != solver.grid.shape[0]:
        raise ConfigError(f"an inverse operator answers on its training grid ({describe_grid(solver.grid)}): its "
                          f"measurements live on that grid's boundary nodes; got --resolution {resolution}")
    truth = solver.truth(**inputs)
    answer = solver(solver.measure(noise=noise, seed=0, **inputs))
    solved = _finish("inverse", solver.problem, solver.grid, solver.grid, dict(answer), truth, {})
    solved.reference_label = "truth"
    return solved


def _prepared(problem: Problem, inputs: Mapping[str, Any], grid: Grid) -> dict[str, Field]:
    """The inputs on ``grid`` as the problem prepares them (boundary data harmonically extended)."""
    values = problem.prepare_inputs(dict(inputs), grid)
    return {name: Field(v[0], grid, name) for name, v in values.items()}


def _finish(kind: str, problem: Problem, grid: Grid, trained: Grid | None, prediction: dict[str, Field],
            reference: dict[str, Field] | None, inputs: dict[str, Field]) -> Solved:
    errors = {}
    if reference is not None:
        for name in prediction:
            pred, ref = prediction[name].numpy(), reference[name].numpy()
            known = np.isfinite(ref)  # a PINN's reference is NaN outside its domain (see _solve_pinn)
            errors[name] = float(relative_l2(pred[known], ref[known]))
    return Solved(kind, problem, grid, trained, prediction, reference, dict(inputs), errors)


def _solve_pinn(run_dir: str | os.PathLike[str], inputs: Mapping[str, Any], resolution: int | None,
                reference: bool) -> Solved:
    from .pinn import load_pinn, pinn_fields, pinn_grid

    task, settings = load_pinn(run_dir)
    problem = task.problem
    recorded = dict(settings["task"].get("inputs") or {})
    for name, value in inputs.items():
        problem.input(name)  # an unknown name is refused naming the problem's inputs
        if not _same_value(value, recorded.get(name, problem.input(name).value)):
            raise FixedInputError(
                f"input {name!r}: this PINN was trained for {name}={recorded.get(name, problem.input(name).value)!r} "
                f"and answers only that instance, got {value!r}; train another with `sciml train "
                f"{problem.source or problem.name} --model pinn --set {name}=...`")
    grid = pinn_grid(task, resolution)
    prediction = pinn_fields(task, grid)
    has_reference = reference and problem.reference is not None
    ref = problem.solve(grid, **recorded) if has_reference else None
    if ref is not None:  # NaN where the prediction is (outside a domain that is not a box), like it
        ref = {name: Field(np.where(np.isnan(prediction[name].numpy()), np.nan, f.numpy()), grid, name)
               for name, f in ref.items()}
    return _finish("pinn", problem, grid, None, prediction, ref, _prepared(problem, recorded, grid))


def _same_value(given: Any, recorded: Any) -> bool:
    """Whether a value given to a PINN run is the one it was trained with (numbers compared as numbers,
    formulas as text without spaces)."""
    def norm(v: Any) -> Any:
        if isinstance(v, str):
            try:
                return float(v)
            except ValueError:
                return v.replace(" ", "")
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v

    return norm(given) == norm(recorded)


def write_plot(solved: Solved, path: str | os.PathLike[str]) -> str:
    """PNG of the first output: prediction, reference and error with the inputs beside them."""
    from ..viz.render import compare

    first = next(iter(solved.prediction))
    if solved.reference is None:
        solved.prediction[first].plot(screenshot=str(path))
        return str(path)
    titles = None if solved.kind != "inverse" else \
        [f"{first}: reconstruction", f"{first}: truth", f"{first}: absolute error"]
    compare(solved.prediction[first], solved.reference[first], screenshot=str(path), inputs=solved.inputs,
            error=solved.errors.get(first), boundary_inputs=solved.boundary_inputs, titles=titles)
    return str(path)


def write_vtu(solved: Solved, path: str | os.PathLike[str]) -> str:
    """VTK file with every output's prediction (and reference and error when there is a reference)."""
    from ..viz.render import save_vtk

    fields = [Field(f.values, f.disc, f"{n}_prediction") for n, f in solved.prediction.items()]
    if solved.reference is not None:
        fields += [Field(f.values, f.disc, f"{n}_reference") for n, f in solved.reference.items()]
        fields += [Field(solved.prediction[n].numpy() - f.numpy(), f.disc, f"{n}_error")
                   for n, f in solved.reference.items()]
    grid_inputs = [f for f in solved.inputs.values() if f.disc == solved.grid]  # the inputs, beside the answer
    save_vtk(fields + grid_inputs, path, boundary=[n for n in solved.boundary_inputs if n in solved.inputs])
    return str(path)


def describe_grid(grid: Grid) -> str:
    """``"33x33"``."""
    return "x".join(map(str, grid.shape))
