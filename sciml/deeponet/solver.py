"""A trained DeepONet as a solver: new inputs in, the solution at *any* query point out.

A grid operator (:class:`~sciml.operators.solver.Solver`) answers on grids; a DeepONet's trunk takes
coordinates, so its solver answers at arbitrary points::

    solver = PointSolver.load("runs/poisson_deeponet")
    u = solver(g="sin(pi*x)*y", f=0.0)             # reads g and f at the sensors, exactly
    u(np.array([[0.3, 0.7], [0.51, 0.02]]))         # {"u": array of 2 values}
    u.on(Grid(129, ndim=2))["u"].plot()             # or a Field on any grid of the box

Inputs are read exactly where training read them (the task's :class:`~sciml.deeponet.data.Sensors`):
formula strings and Python callables are evaluated at the sensor coordinates (so a boundary
condition written as a formula is sampled at the boundary sensors, with no grid in between),
numbers are constants, arrays on the training grid are read at the sensor nodes, and Fields on
another grid are interpolated onto the training grid first. Inputs the branch does not read are
rejected (the network cannot respond to them); fixed inputs of the problem fill the gaps.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._checks import as_float_array
from ..answers import check_fixed_inputs
from ..errors import CheckpointError, ConfigError, ProblemError, ShapeError, UnknownNameError
from ..fields import Field, Grid, relative_l2
from ..problem import Problem
from ..runs import problem_from_spec, read_run, require_model_spec

__all__ = ["PointSolver", "PointQuery"]

_AXES = ("x", "y", "z")


class PointSolver:
    """Answer new instances of a problem at arbitrary points with a trained DeepONet.

    Parameters
    ----------
    task : DeepONetTask
        Trained task: the network, its sensors, output names and normalisation.
    problem : Problem
        The problem it was trained on (fixed inputs, the reference solver).
    device : str or torch.device
        Where to run the network (``"auto"``: cuda, then mps, then cpu).
    """

    def __init__(self, task: Any, problem: Problem, device: str | torch.device = "cpu") -> None:
        from ..train.device import resolve_device
        from .task import DeepONetTask

        if not isinstance(task, DeepONetTask):
            raise ConfigError(f"PointSolver: expected a DeepONetTask, got {type(task).__name__}")
        if not isinstance(problem, Problem):
            raise ConfigError(f"PointSolver: expected a Problem, got {type(problem).__name__}")
        unknown = [n for n in task.sensors.names if n not in problem.input_names]
        if unknown:
            raise ProblemError(f"PointSolver: the network reads inputs {unknown} that problem "
                               f"{problem.name!r} does not have (it has {list(problem.input_names)})")
        self.device = resolve_device(device)
        self.task = task.eval().to(self.device)
        self.problem = problem

    @classmethod
    def load(cls, run_dir: str | os.PathLike[str], device: str | torch.device = "auto") -> PointSolver:
        """Rebuild the solver from the newest good checkpoint of a DeepONet run (no pickles)."""
        return cls.from_checkpoint(*read_run(run_dir), device=device)

    @classmethod
    def from_checkpoint(cls, path: Path, state: dict[str, Any], spec: dict[str, Any] | None,
                        device: str | torch.device = "auto") -> PointSolver:
        """Rebuild from a loaded checkpoint payload (``path`` for messages, ``spec`` the model spec)."""
        from ..models import build_model
        from .task import DeepONetTask

        info = (state.get("task_state") or {}).get("deeponet")
        if info is None:
            raise CheckpointError(f"{path}: not a DeepONet checkpoint (the DeepONet task state is missing); "
                                  "use sciml.Solver.load for other runs")
        spec = require_model_spec(path, spec)
        model = build_model(spec["name"], **spec["kwargs"])
        task = DeepONetTask.from_config(model, json.loads(info))
        weights = {state["model_prefix"] + k: v for k, v in state["model"].items()}
        weights.update(state.get("task_module") or {})
        try:
            task.load_state_dict(weights)
        except RuntimeError as exc:
            raise CheckpointError(f"{path}: weights do not fit the rebuilt DeepONet: {exc}") from None
        problem = problem_from_spec(task.problem_spec or {}, path)
        return cls(task, problem, device=device)

    # -- properties ------------------------------------------------------------------------------------
    @property
    def sensors(self) -> Any:
        return self.task.sensors

    @property
    def grid(self) -> Grid:
        """The training grid (where arrays given as inputs must live)."""
        return self.task.sensors.grid

    @property
    def input_names(self) -> tuple[str, ...]:
        """The inputs the branch reads."""
        return self.task.sensors.names

    @property
    def output_names(self) -> tuple[str, ...]:
        return self.task.output_names

    # -- inputs at the sensors -----------------------------------------------------------------------
    def sensor_values(self, **inputs: Any) -> np.ndarray:
        """The branch vector ``(m,)`` for one instance, each input evaluated exactly at its sensors."""
        unknown = set(inputs) - set(self.problem.input_names)
        if unknown:
            raise UnknownNameError(f"input of problem {self.problem.name!r}", sorted(unknown)[0],
                                   self.problem.input_names)
        check_fixed_inputs(self.problem, inputs, self.grid)  # another value of a fixed input: refused
        # a fixed input given its own value is harmless; anything else the branch does not read is refused
        ignored = sorted(n for n in set(inputs) - set(self.input_names)
                         if self.problem.input(n).is_random or self.problem.input(n).variable)
        if ignored:
            raise ConfigError(f"PointSolver: the network reads only {list(self.input_names)}; it was trained "
                              f"with {ignored} fixed and cannot respond to them")
        parts = []
        for name in self.input_names:
            if name in inputs:
                value = inputs[name]
            elif not self.problem.input(name).is_random:
                value = self.problem.input(name).value
            else:
                raise ProblemError(f"PointSolver: missing input {name!r}; expected {list(self.input_names)}")
            parts.append(self._at_sensors(name, value))
        return np.concatenate(parts)

    def _at_sensors(self, name: str, value: Any) -> np.ndarray:
        from ..formula import compile_formula

        idx, coords = self.sensors.nodes[name], self.sensors.coords(name)
        if isinstance(value, Field):
            if not isinstance(value.disc, Grid):
                raise ConfigError(f"input {name!r}: a Field on a mesh cannot be read at grid sensors")
            if value.disc != self.grid:
                cubic = min(value.disc.shape) >= 4 and value.disc.ndim == self.grid.ndim
                value = value.on(self.grid, method="cubic" if cubic else "linear")
            value = value.numpy()
        if isinstance(value, str):
            value = compile_formula(value)
        if callable(value):
            args = {axis: coords[:, i] for i, axis in enumerate(_AXES[: self.grid.ndim])}
            try:
                result = value(**args)
            except TypeError:
                result = value(*args.values())
            arr = as_float_array(f"input {name!r} (at the sensors)", result)
            return np.broadcast_to(arr, (len(idx),)).astype(np.float64)
        arr = as_float_array(f"input {name!r}", value)
        if arr.ndim == 0:
            return np.full(len(idx), float(arr))
        if arr.shape == (1, *self.grid.shape):
            arr = arr[0]
        if arr.shape != self.grid.shape:
            expected = f"a number, formula, callable, Field or array of {self.grid.shape}"
            raise ShapeError(f"input {name!r}", expected, arr.shape)
        return arr[tuple(idx.T)]

    # -- answering ---------------------------------------------------------------------------------------
    def __call__(self, **inputs: Any) -> PointQuery:
        """One instance: ``solver(g="sin(pi*x)*y", f=0.0)`` -> a :class:`PointQuery` to evaluate anywhere."""
        return PointQuery(self, self.sensor_values(**inputs))

    def predict(self, sensor_values: Any, points: Any) -> dict[str, np.ndarray]:
        """Batched: branch vectors ``(B, m)`` and points ``(P, d)`` -> ``{output: (B, P)}``."""
        u = as_float_array("sensor values", sensor_values)
        if u.ndim == 1:
            u = u[None]
        if u.ndim != 2 or u.shape[1] != self.sensors.size:
            raise ShapeError("sensor values", f"(B, {self.sensors.size})", u.shape)
        x = self._points(points)
        with torch.no_grad():
            y = self.task(torch.as_tensor(u, dtype=torch.float32, device=self.device),
                          torch.as_tensor(x, dtype=torch.float32, device=self.device))
        y = y.double().cpu().numpy()
        return {name: y[:, i] for i, name in enumerate(self.output_names)}

    def _points(self, points: Any) -> np.ndarray:
        x = as_float_array("points", points)
        d = self.grid.ndim
        if x.ndim == 1 and x.shape[0] == d:
            x = x[None]
        if x.ndim != 2 or x.shape[1] != d:
            raise ShapeError("points", f"(N, {d})", x.shape)
        lo = np.array([b[0] for b in self.grid.bounds])
        hi = np.array([b[1] for b in self.grid.bounds])
        tol = 1e-9 * (hi - lo)
        if np.any(x < lo - tol) or np.any(x > hi + tol):
            warnings.warn(f"PointSolver: points outside the training box {self.grid.bounds}; the network "
                          "extrapolates there", RuntimeWarning, stacklevel=3)
        return x

    def reference(self, grid: Grid | int | None = None, **inputs: Any) -> dict[str, Field]:
        """The problem's classical solver on the same inputs (training grid by default)."""
        return self.problem.solve(grid or self.grid, **inputs)

    def error(self, grid: Grid | int | None = None, **inputs: Any) -> dict[str, float]:
        """Relative L2 error against the reference solver on ``grid`` (the training grid), per output."""
        grid = self.problem.resolve_grid(grid) if grid is not None else self.grid
        prediction = self(**inputs).on(grid)
        reference = self.reference(grid, **inputs)
        return {name: float(relative_l2(prediction[name].numpy(), reference[name].numpy()))
                for name in prediction}

    def __repr__(self) -> str:
        spec = getattr(self.task.model, "model_spec", None) or {"name": type(self.task.model).__name__}
        return (f"PointSolver(problem={self.problem.name!r}, model={spec['name']!r}, "
                f"sensors={self.sensors!r}, outputs={list(self.output_names)})")


class PointQuery:
    """One answered instance: call it on points, or sample it on a grid.

    ``query(points)`` takes ``(N, d)`` (or one point ``(d,)``) and returns ``{output: (N,)}``;
    ``query.on(grid)`` returns ``{output: Field}`` on any grid of the training box.
    """

    def __init__(self, solver: PointSolver, sensor_values: np.ndarray) -> None:
        self.solver = solver
        self.sensor_values = sensor_values

    def __call__(self, points: Any) -> dict[str, np.ndarray]:
        out = self.solver.predict(self.sensor_values, points)
        return {name: values[0] for name, values in out.items()}

    def on(self, grid: Grid) -> dict[str, Field]:
        if not isinstance(grid, Grid):
            raise ConfigError(f"PointQuery.on: expected a Grid, got {type(grid).__name__}")
        values = self(grid.points())
        return {name: Field(v.reshape(grid.shape), grid, name) for name, v in values.items()}

    def __repr__(self) -> str:
        return f"PointQuery(outputs={list(self.solver.output_names)}, sensors={self.sensor_values.size})"
