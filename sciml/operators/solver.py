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
:class:`~sciml.deeponet.solver.PointSolver` (it answers at any point, not only on grids). A PINN is a
network of the user's own script and problem; build its task again and load the run with
:func:`sciml.train.restore`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..answers import Answer, check_distribution, check_fixed_inputs
from ..errors import CheckpointError, ConfigError, ProblemError
from ..fields import Field, Grid, relative_l2
from ..problem import Problem
from ..runs import load_solver, problem_from_spec, require_model_spec
from .task import OperatorTask

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
    impose_boundary : bool
        Set the answer's nodes on Dirichlet boundaries to the given boundary data exactly (the
        network only approximates data the problem knows exactly).

    Notes
    -----
    The solver knows what it was trained on: another value for an input the problem fixes raises
    :class:`~sciml.errors.FixedInputError`, and inputs outside the training data (the task's
    :class:`~sciml.data.profile.TrainingProfile`) give an
    :class:`~sciml.errors.OutOfDistributionWarning`; the :class:`~sciml.answers.Answer` carries the
    flag (``answer.out_of_distribution``).
    """

    def __init__(self, task: Any, problem: Problem, device: str | torch.device = "cpu",
                 impose_boundary: bool = True) -> None:
        from ..train.device import resolve_device

        if not isinstance(problem, Problem):
            raise ConfigError(f"Solver: expected a Problem, got {type(problem).__name__}")
        if tuple(task.input_names) != problem.input_names:
            raise ProblemError(
                f"Solver: the model was trained on inputs {list(task.input_names)}, "
                f"problem {problem.name!r} has {list(problem.input_names)}"
            )
        self.task = task.eval()
        self.problem = problem
        self.impose_boundary = bool(impose_boundary)
        self.device = resolve_device(device)
        self.task.to(self.device)

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def load(cls, run_dir: str | os.PathLike[str], device: str | torch.device = "auto") -> Any:
        """Rebuild the solver of any trained run from its newest good checkpoint (no pickles involved).

        The checkpoint says what was trained: a grid operator (FNO, ...) gives a :class:`Solver`,
        a DeepONet a :class:`~sciml.deeponet.solver.PointSolver` (answers at any point); see
        :func:`sciml.runs.load_solver`. Runs whose task the checkpoint cannot rebuild alone (PINNs)
        are refused with the way to load them.
        """
        return load_solver(run_dir, device=device)

    @classmethod
    def from_checkpoint(cls, path: Path, state: dict[str, Any], spec: dict[str, Any] | None,
                        device: str | torch.device = "auto") -> Solver:
        """Rebuild from a loaded checkpoint payload of a grid-operator run (``path`` for messages)."""
        from ..models import build_model

        task_state = state.get("task_state") or {}
        if "operator" not in task_state:
            raise CheckpointError(f"{path}: not a grid-operator checkpoint (the operator task state is missing); "
                                  "use sciml.Solver.load, which picks the solver that fits the run")
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

    def output_grid(self, grid: Grid | None = None) -> Grid:
        """Where the answer lives for inputs on ``grid``: ``grid`` itself, or the coarser grid of the
        task's ``output_size`` nodes per axis over the same box (an unknown identified on fewer nodes)."""
        grid = grid or self.grid
        size = getattr(self.task, "output_size", None)
        return grid if size is None else Grid(tuple(size), grid.bounds)

    # -- answering -----------------------------------------------------------------------------
    def predict(self, inputs: dict[str, Any], grid: Grid | None = None) -> dict[str, np.ndarray]:
        """Batched prediction: ``{name: (B, *grid.shape)}`` in, ``{output: (B, *grid.shape)}`` out.

        Raises FixedInputError for another value of a fixed input; warns
        (OutOfDistributionWarning) for inputs outside the training data.
        """
        return self._answer(inputs, grid, stacklevel=4)[0]

    def __call__(self, grid: Grid | None = None, **inputs: Any) -> Answer:
        """Answer one instance: ``solver(g="sin(pi*x)*y", f=0.0) -> {"u": Field}`` (an :class:`Answer`).

        ``grid`` evaluates on another resolution of the training box (for discretisation-
        invariant models such as FNO); the training grid by default.
        """
        grid = grid or self.grid
        out, prepared, messages = self._answer(inputs, grid, stacklevel=4)
        first = next(iter(out.values()))
        if first.shape[0] != 1:
            raise ConfigError(f"Solver(): expected one instance, got a batch of {first.shape[0]}; use predict()")
        out_grid = self.output_grid(grid)
        return Answer({name: Field(values[0], out_grid, name) for name, values in out.items()},
                      inputs={name: Field(v[0], grid, name) for name, v in prepared.items()}, warnings=messages)

    def _answer(self, inputs: dict[str, Any], grid: Grid | None, stacklevel: int
                ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[str]]:
        grid = grid or self.grid
        if not isinstance(grid, Grid) or grid.ndim != self.grid.ndim or grid.bounds != self.grid.bounds:
            raise ConfigError(f"Solver: expected a grid on the training box {self.grid.bounds}, got {grid!r}")
        check_fixed_inputs(self.problem, inputs, grid)
        prepared = self.problem.prepare_inputs(inputs, grid)
        messages = check_distribution(getattr(self.task, "profile", None), prepared, grid, stacklevel=stacklevel + 1)
        x = np.stack([prepared[name] for name in self.input_names], axis=1)
        with torch.no_grad():
            y = self.task(torch.as_tensor(x, dtype=torch.float32, device=self.device))
            if getattr(self.task, "output_size", None) is not None:  # an unknown sought on a coarser grid
                y = self.task.on_output_grid(y, "model output")
        y = y.double().cpu().numpy()
        out = {name: y[:, i] for i, name in enumerate(self.output_names)}
        if self.impose_boundary:
            for name, mask, values in self.problem.dirichlet_nodes(grid, prepared):
                if name in out:
                    out[name][:, mask] = np.broadcast_to(values, out[name].shape)[:, mask]
        return out, prepared, messages

    def reference(self, grid: Grid | None = None, **inputs: Any) -> dict[str, Field]:
        """The classical solver on the same inputs, on the same grid (for comparison)."""
        return self.problem.solve(grid or self.grid, **inputs)

    def error(self, grid: Grid | None = None, **inputs: Any) -> dict[str, float]:
        """Relative L2 error of the prediction against the reference solver, per output."""
        prediction = self(grid, **inputs)
        reference = self.reference(grid, **inputs)
        return {name: float(relative_l2(prediction[name].numpy(), reference[name].on(prediction[name].disc).numpy()))
                for name in prediction}

    def __repr__(self) -> str:
        spec = getattr(self.task.model, "model_spec", None) or {"name": type(self.task.model).__name__}
        return (
            f"Solver(problem={self.problem.name!r}, model={spec['name']!r}, grid={self.grid!r}, "
            f"inputs={list(self.input_names)}, outputs={list(self.output_names)})"
        )
