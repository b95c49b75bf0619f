"""Trained runs on disk: the newest good checkpoint, the problem it was trained on, and the solver
that answers it.

:func:`load_solver` is what ``sciml.Solver.load`` calls. Each family that answers new inputs after
training registers its solver class in :data:`SOLVER_KINDS` under the key its task writes into the
checkpoint's ``task_state``; the class is imported only when a run of that kind is loaded (the same
lazy name -> module table as the model registry), so this module sits below every family.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from importlib import import_module
from pathlib import Path
from typing import Any

from .errors import CheckpointError, ProblemError
from .problem import InverseProblem, Problem, list_problems, load_problem

__all__ = ["SOLVER_KINDS", "load_solver", "read_run", "require_model_spec", "problem_from_spec"]

# task_state key written by a family's task -> "module:Class" of the solver that answers its runs.
# The class provides ``from_checkpoint(path, state, spec, device)``.
SOLVER_KINDS: dict[str, str] = {
    "operator": "sciml.operators.solver:Solver",
    "deeponet": "sciml.deeponet.solver:PointSolver",
    "measurement": "sciml.inverse.solver:MeasurementSolver",
    "dmm": "sciml.meshmove.dmm:DMM",
}


def load_solver(run_dir: str | os.PathLike[str], device: Any = "auto") -> Any:
    """The solver of a trained run, of the class that fits what the run trained.

    Raises
    ------
    CheckpointError
        No checkpoint, or a run no solver answers (PINNs: rebuild the task and use
        :func:`sciml.train.restore`).
    """
    path, state, spec = read_run(run_dir)
    task_state = state.get("task_state") or {}
    for key, target in SOLVER_KINDS.items():
        if key in task_state:
            module, name = target.split(":")
            return getattr(import_module(module), name).from_checkpoint(path, state, spec, device=device)
    try:
        kind = json.loads(state.get("trainer") or "{}").get("task", "unknown")
    except (ValueError, AttributeError):
        kind = "unknown"
    raise CheckpointError(
        f"{path}: a checkpoint of a {kind} run; Solver.load rebuilds the runs of {sorted(SOLVER_KINDS)} tasks. "
        "Build the task as for training and load the weights with sciml.train.restore(task, run_dir)")


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
    params = spec.get("params")
    if isinstance(problem, InverseProblem) and isinstance(params, dict) and params != problem.params and \
            {k: v for k, v in params.items() if k != "noise"} == {k: v for k, v in problem.params.items() if k != "noise"}:
        # the same inverse problem trained at another noise level (make_problem(noise=...)): that level
        return dataclasses.replace(problem, noise=float(params["noise"]), params=dict(params))
    if params not in (None, problem.params):
        warnings.warn(
            f"problem {problem.name!r}: params differ from training ({spec['params']} then, {problem.params} now)",
            RuntimeWarning,
            stacklevel=3,
        )
    return problem
