"""Train a PINN on one instance of a problem and answer with it later, from its run directory alone.

What ``sciml train PROBLEM --model pinn --set g="sin(pi*x)*y" --set f=0`` runs::

    run = train_pinn("poisson", inputs={"g": "sin(pi*x)*y", "f": 0.0}, hard=True, steps=2000)
    run.task.predict(points)                       # the network (hard constraints applied)
    task, settings = load_pinn("runs/poisson_pinn")  # rebuilt from run.json + the newest checkpoint

A PINN solves the one instance it is trained for: every random input of the problem needs a value
(a number or a formula string, so that the run can record it). The network is the registry's MLP
(tanh, three hidden layers of 64 by default; ``model_kwargs`` overrides). The run writes ``run.json``
with ``"kind": "pinn"`` and everything the task was built from (problem file, inputs, model kwargs,
hard constraints, point counts, seed), so :func:`load_pinn` builds the same task and loads the
weights with :func:`sciml.train.restore`; a PINN trained in a script of one's own is reloaded the same
way by building its task and calling ``restore`` (its network and points are the script's objects).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._checks import check_positive_int
from ..errors import CheckpointError, ConfigError
from ..fields import Field, Grid
from ..problem import Periodic, Problem, load_problem
from ..runs import problem_from_spec
from .common import RUN_FILE, build_seeded_model, problem_spec

__all__ = ["PINNRun", "train_pinn", "load_pinn", "is_pinn_run", "pinn_fields", "pinn_grid"]


@dataclass
class PINNRun:
    """What :func:`train_pinn` returns: the run directory, the trained task, the training result and
    the relative error against the problem's reference (``{}`` without one)."""

    run_dir: Path
    task: Any
    result: Any
    errors: dict[str, float]


def _input_values(problem: Problem, inputs: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in (inputs or {}).items():
        problem.input(name)  # raises UnknownNameError naming the problem's inputs
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass  # a formula
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(f"train_pinn: input {name!r} must be a number or a formula string (the run records "
                              f"it), got {type(value).__name__}")
        out[name] = value
    return out


def _n_features(problem: Problem, hard: Any) -> int:
    from ..pinn.constraints import parse_kinds

    ndim = problem.domain.ndim if problem.domain is not None else (problem.grid.ndim if problem.grid else 0)
    kinds = parse_kinds(hard, problem.conditions, problem.name)
    periodic = sum(isinstance(c, Periodic) for c in problem.conditions) if "periodic" in kinds else 0
    return ndim + periodic


def _build_task(problem: Problem, model: Any, task_kwargs: dict[str, Any]) -> Any:
    from ..pinn import PINNTask

    kwargs = dict(task_kwargs)
    hard = kwargs.pop("hard")
    return PINNTask(problem, model, hard=hard if isinstance(hard, bool) else list(hard), **kwargs)


def train_pinn(
    problem: Problem | str,
    *,
    inputs: dict[str, Any] | None = None,
    model_kwargs: dict[str, Any] | None = None,
    hard: bool | list[str] = False,
    n_interior: int = 1000,
    n_boundary: int = 200,
    n_initial: int = 200,
    steps: int = 5000,
    lr: float = 1e-3,
    device: str = "auto",
    seed: int = 0,
    out_dir: str | os.PathLike[str] = "runs/pinn",
    progress: bool | None = None,
) -> PINNRun:
    """Train a :class:`~sciml.pinn.PINNTask` on one instance of ``problem`` and record how to rebuild it.

    Parameters
    ----------
    problem : Problem or str
        A Problem with an ``equation``, a built-in name or a path to a problem file.
    inputs : dict
        A number or a formula string for every random input (fixed ones may be left out).
    model_kwargs : dict, optional
        Overrides of the MLP's kwargs (``hidden``, ``activation``, ...).
    hard : bool or list of str
        Conditions imposed exactly (see :class:`~sciml.pinn.PINNTask`); formulas are fine.
    n_interior, n_boundary, n_initial : int
        Collocation points.
    steps, lr, device, seed, out_dir, progress
        Adam steps at a constant ``lr``; the run directory gets ``run.json``, checkpoints,
        ``metrics.jsonl`` and ``summary.json``.
    """
    from ..train import Trainer

    check_positive_int("train_pinn steps", steps)
    problem = load_problem(problem) if not isinstance(problem, Problem) else problem
    values = _input_values(problem, inputs)
    kwargs: dict[str, Any] = {"in_features": _n_features(problem, hard), "out_features": len(problem.outputs),
                              "hidden": [64, 64, 64], "activation": "tanh"}
    kwargs.update(model_kwargs or {})
    task_kwargs = {"inputs": values, "hard": hard if isinstance(hard, bool) else list(hard),
                   "n_interior": n_interior, "n_boundary": n_boundary, "n_initial": n_initial, "seed": seed}
    task = _build_task(problem, build_seeded_model("mlp", seed, **kwargs), task_kwargs)
    run_dir = Path(out_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    settings = {"kind": "pinn", "problem": problem_spec(problem), "model": "mlp", "model_kwargs": kwargs,
                "task": task_kwargs, "steps": steps, "lr": lr, "device": device, "seed": seed}
    (run_dir / RUN_FILE).write_text(json.dumps(settings, indent=2))
    trainer = Trainer(task, steps=steps, lr=lr, device=device, seed=seed, out_dir=run_dir, progress=progress)
    result = trainer.fit()
    errors = task.relative_error()
    (run_dir / "summary.json").write_text(json.dumps(errors, indent=2))
    return PINNRun(run_dir, task, result, errors)


def is_pinn_run(run_dir: str | os.PathLike[str]) -> bool:
    """Whether ``run_dir`` was written by :func:`train_pinn` (its ``run.json`` says ``"kind": "pinn"``)."""
    path = Path(run_dir) / RUN_FILE
    try:
        return json.loads(path.read_text()).get("kind") == "pinn"
    except (OSError, ValueError, AttributeError):
        return False


def load_pinn(run_dir: str | os.PathLike[str], device: str = "cpu") -> tuple[Any, dict[str, Any]]:
    """The task of a :func:`train_pinn` run, rebuilt and loaded from its newest good checkpoint,
    and the run's recorded settings."""
    from ..models import build_model
    from ..train import restore

    run_dir = Path(run_dir)
    if not is_pinn_run(run_dir):
        raise CheckpointError(f"{run_dir}: not a PINN run of `sciml train --model pinn` (no run.json with "
                              "kind 'pinn'); build the task as for training and use sciml.train.restore")
    settings = json.loads((run_dir / RUN_FILE).read_text())
    problem = problem_from_spec(settings["problem"], run_dir)
    task = _build_task(problem, build_model(settings["model"], **settings["model_kwargs"]), settings["task"])
    restore(task, run_dir)
    return task.to(device).eval(), settings


def pinn_grid(task: Any, resolution: int | None = None) -> Grid:
    """Where to show a PINN: the problem's default grid, or ``resolution`` nodes per axis of its box."""
    grid = task.problem.grid
    if grid is not None and resolution is None:
        return grid
    bounds = grid.bounds if grid is not None else tuple(map(tuple, np.asarray(task.domain.bbox, float).T))
    return Grid((resolution or 65,) * len(bounds), bounds)


def pinn_fields(task: Any, grid: Grid) -> dict[str, Field]:
    """The network's outputs at the nodes of ``grid`` (hard constraints applied), as Fields; NaN outside
    a domain that is not a box (:meth:`~sciml.pinn.task.PINNTask.solve`)."""
    return task.solve(grid)
