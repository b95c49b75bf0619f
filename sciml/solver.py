"""The trained solver: a model, its problem and its normalisers, answering new inputs.

>>> solver = Solver.load("runs/poisson_fno")                       # doctest: +SKIP
>>> fields = solver(g="sin(pi*x)*y", f=0.0)                         # doctest: +SKIP
>>> solver.error(g="sin(pi*x)*y", f=0.0)                            # doctest: +SKIP
{'u': 0.012}

Inputs may be arrays on the training grid, numbers, Python callables or formula strings of the
coordinates, or Fields on another grid; they are validated and brought to the grid by the
problem's own :meth:`~sciml.problem.Problem.prepare_inputs`, so a boundary condition written as a
formula goes through exactly the same canonicalisation as the training data did.

``Solver.load`` is the one entry point for trained runs: a DeepONet run comes back as a
:class:`~sciml.point_solver.PointSolver` (it answers at any point, not only on grids). A PINN is a
network of the user's own script and problem; build its task again and load the run with
:func:`sciml.train.restore`.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import CheckpointError, ConfigError, ProblemError
from .fields import Field, Grid, relative_l2
from .problem import Problem, list_problems, load_problem

__all__ = ["Solver"]


class Solver:
    """Answer new instances of a problem with a trained grid operator.

    Parameters
    ----------
    task : OperatorTask
        Trained task (model + fitted normalisers + grid and channel names).
    problem : Problem
        The problem the task was trained on (for input preparation and the reference solver).
    device : str or torch.device
        Where to run the model (``"auto"``: cuda, then mps, then cpu).
    """

    def __init__(self, task: Any, problem: Problem, device: str | torch.device = "cpu") -> None:
        from .train.device import resolve_device

        if not isinstance(problem, Problem):
            raise ConfigError(f"Solver: expected a Problem, got {type(problem).__name__}")
        if tuple(task.input_names) != problem.input_names:
            raise ProblemError(
                f"Solver: the model was trained on inputs {list(task.input_names)}, "
                f"problem {problem.name!r} has {list(problem.input_names)}"
            )
        self.task = task.eval()
        self.problem = problem
        self.device = resolve_device(device)
        self.task.to(self.device)

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def load(cls, run_dir: str | os.PathLike[str], device: str | torch.device = "auto") -> Any:
        """Rebuild the solver of a run from its newest good checkpoint (no pickles involved).

        The checkpoint says what was trained: a grid operator (FNO, ...) gives a :class:`Solver`,
        a DeepONet a :class:`~sciml.point_solver.PointSolver` (answers at any point). Runs whose
        task the checkpoint cannot rebuild alone (PINNs) are refused with the way to load them.
        """
        from .models import build_model
        from .train.operator_task import OperatorTask

        path, state, spec = read_run(run_dir)
        task_state = state.get("task_state") or {}
        if "deeponet" in task_state:
            from .point_solver import PointSolver

            return PointSolver.from_checkpoint(path, state, spec, device=device)
        if "operator" not in task_state:
            try:
                kind = json.loads(state.get("trainer") or "{}").get("task", "unknown")
            except (ValueError, AttributeError):
                kind = "unknown"
            raise CheckpointError(
                f"{path}: a checkpoint of a {kind} run; Solver.load rebuilds grid operators and DeepONets. "
                "Build the task as for training and load the weights with sciml.train.restore(task, run_dir)")
        spec = require_model_spec(path, spec)
        model = build_model(spec["name"], **spec["kwargs"])
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as exc:
            raise CheckpointError(f"{path}: weights do not fit model {spec['name']!r}: {exc}") from None
        info = json.loads(task_state["operator"])
        task = OperatorTask(model, Grid.from_dict(info["grid"]), info["inputs"], info["outputs"], loss=info["loss"])
        task.load_state_for_checkpoint(task_state)
        problem = problem_from_spec(task.problem_spec, path)
        return cls(task, problem, device=device)

    # -- properties ----------------------------------------------------------------------------
    @property
    def grid(self) -> Grid:
        """The training grid (the default grid of every answer)."""
        return self.task.grid

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(self.task.input_names)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(self.task.output_names)

    # -- answering -----------------------------------------------------------------------------
    def predict(self, inputs: dict[str, Any], grid: Grid | None = None) -> dict[str, np.ndarray]:
        """Batched prediction: ``{name: (B, *grid.shape)}`` in, ``{output: (B, *grid.shape)}`` out."""
        grid = grid or self.grid
        if grid.ndim != self.grid.ndim or grid.bounds != self.grid.bounds:
            raise ConfigError(f"Solver: expected a grid on the training box {self.grid.bounds}, got {grid!r}")
        prepared = self.problem.prepare_inputs(inputs, grid)
        x = np.stack([prepared[name] for name in self.input_names], axis=1)
        with torch.no_grad():
            y = self.task(torch.as_tensor(x, dtype=torch.float32, device=self.device))
        y = y.double().cpu().numpy()
        return {name: y[:, i] for i, name in enumerate(self.output_names)}

    def __call__(self, grid: Grid | None = None, **inputs: Any) -> dict[str, Field]:
        """Answer one instance: ``solver(g="sin(pi*x)*y", f=0.0) -> {"u": Field}``.

        ``grid`` evaluates on another resolution of the training box (for discretisation-
        invariant models such as FNO); the training grid by default.
        """
        grid = grid or self.grid
        out = self.predict(inputs, grid)
        first = next(iter(out.values()))
        if first.shape[0] != 1:
            raise ConfigError(f"Solver(): expected one instance, got a batch of {first.shape[0]}; use predict()")
        return {name: Field(values[0], grid, name) for name, values in out.items()}

    def reference(self, grid: Grid | None = None, **inputs: Any) -> dict[str, Field]:
        """The classical solver on the same inputs, on the same grid (for comparison)."""
        return self.problem.solve(grid or self.grid, **inputs)

    def error(self, grid: Grid | None = None, **inputs: Any) -> dict[str, float]:
        """Relative L2 error of the prediction against the reference solver, per output."""
        prediction = self(grid, **inputs)
        reference = self.reference(grid, **inputs)
        return {name: float(relative_l2(prediction[name].numpy(), reference[name].numpy())) for name in prediction}

    def __repr__(self) -> str:
        spec = getattr(self.task.model, "model_spec", None) or {"name": type(self.task.model).__name__}
        return (
            f"Solver(problem={self.problem.name!r}, model={spec['name']!r}, grid={self.grid!r}, "
            f"inputs={list(self.input_names)}, outputs={list(self.output_names)})"
        )


def read_run(run_dir: str | os.PathLike[str]) -> tuple[Path, dict[str, Any], dict[str, Any] | None]:
    """The newest good checkpoint of a run: ``(file, payload, model spec or None)``."""
    from .train import checkpoint as ckpt

    run_dir = Path(run_dir)
    found = ckpt.load_latest(run_dir, map_location="cpu")
    if found is None:
        raise CheckpointError(f"{run_dir}: no checkpoint found; train first (`sciml train ...`)")
    path, state = found
    try:
        spec = json.loads(state.get("model_spec") or "null")
    except ValueError:
        spec = None
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not isinstance(spec.get("kwargs"), dict):
        spec = None
    return path, state, spec


def require_model_spec(path: Path, spec: dict[str, Any] | None) -> dict[str, Any]:
    """``spec``, or a CheckpointError saying why the run cannot be rebuilt without it."""
    if spec is None:
        raise CheckpointError(f"{path}: the checkpoint does not record which model to build (model_spec); "
                              "build models with sciml.build_model so that runs can be reloaded")
    return spec


def problem_from_spec(spec: dict[str, Any], where: Path) -> Problem:
    """Find the problem a checkpoint was trained on: its file if recorded, else the built-in name."""
    if not spec or not spec.get("name"):
        raise CheckpointError(f"{where}: the checkpoint does not record its problem")
    source = spec.get("path")
    if source and Path(source).is_file():
        problem = load_problem(source)
    elif spec["name"] in list_problems():
        problem = load_problem(spec["name"])
    else:
        raise ProblemError(
            f"{where}: trained on problem {spec['name']!r} (file {source!r}), which cannot be found; "
            "put its file on SCIML_PROBLEMS_PATH"
        )
    if spec.get("params") not in (None, problem.params):
        warnings.warn(
            f"problem {problem.name!r}: params differ from training ({spec['params']} then, {problem.params} now)",
            RuntimeWarning,
            stacklevel=3,
        )
    return problem
