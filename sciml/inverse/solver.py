"""The trained inverse solver: boundary measurements in, the coefficient inside out, as Fields.

>>> solver = sciml.Solver.load("runs/calderon_nio")                      # doctest: +SKIP
>>> m = solver.measure(a="1 + 0.5*sin(pi*x)*sin(pi*y)", noise=0.01)      # the forward model, (L, M)
>>> answer = solver(m)                                                   # {"a": Field}
>>> answer = solver(m[::2], patterns=range(0, 16, 2))                    # half of the probes (NIO)

:meth:`MeasurementSolver.measure` runs the problem's own forward model (the same as made the training
data) on a coefficient given as a formula, a callable, an array or a Field, with the problem's noise
model, so a reconstruction can be checked against the truth (:meth:`MeasurementSolver.error`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..answers import Answer
from ..errors import CheckpointError, ConfigError, OutOfDistributionWarning, ProblemError
from ..fields import Field, Grid
from ..problem import InverseProblem, Problem
from ..runs import problem_from_spec, read_run, require_model_spec
from .task import MeasurementTask, _relative_l2_per_sample, relative_l1_per_sample

__all__ = ["MeasurementSolver"]


class MeasurementSolver:
    """Answer boundary measurements with a trained inverse operator (NIO or a baseline).

    Parameters
    ----------
    task : MeasurementTask
        The trained task: network, measurement normalisation, output decoding, training profile.
    problem : InverseProblem
        The problem it was trained on (its forward model makes measurements for :meth:`measure`).
    device : str or torch.device
    """

    def __init__(self, task: MeasurementTask, problem: Problem, device: str | torch.device = "cpu") -> None:
        from ..train.device import resolve_device

        if not isinstance(task, MeasurementTask):
            raise ConfigError(f"MeasurementSolver: expected a MeasurementTask, got {type(task).__name__}")
        if not isinstance(problem, InverseProblem):
            raise ConfigError(f"MeasurementSolver: expected an InverseProblem, got {type(problem).__name__}")
        if problem.input_names != (task.measurement_name,):
            raise ProblemError(f"MeasurementSolver: the network reads {task.measurement_name!r}, problem "
                               f"{problem.name!r} measures {list(problem.input_names)}")
        self.device = resolve_device(device)
        self.task = task.eval().to(self.device)
        self.problem = problem

    @classmethod
    def load(cls, run_dir: str | os.PathLike[str], device: str | torch.device = "auto") -> MeasurementSolver:
        """Rebuild the solver from the newest good checkpoint of an inverse run (no pickles)."""
        return cls.from_checkpoint(*read_run(run_dir), device=device)

    @classmethod
    def from_checkpoint(cls, path: Path, state: dict[str, Any], spec: dict[str, Any] | None,
                        device: str | torch.device = "auto") -> MeasurementSolver:
        """Rebuild from a loaded checkpoint payload (``path`` for messages, ``spec`` the model spec)."""
        from ..models import build_model

        task_state = state.get("task_state") or {}
        if "measurement" not in task_state:
            raise CheckpointError(f"{path}: not an inverse-operator checkpoint; use sciml.Solver.load")
        spec = require_model_spec(path, spec)
        model = build_model(spec["name"], **spec["kwargs"])
        task = MeasurementTask.from_config(model, json.loads(task_state["measurement"]))
        weights = {state["model_prefix"] + k: v for k, v in state["model"].items()}
        weights.update(state.get("task_module") or {})
        try:
            task.load_state_dict(weights)
        except RuntimeError as exc:
            raise CheckpointError(f"{path}: weights do not fit the rebuilt {spec['name']!r} task: {exc}") from None
        task.load_state_for_checkpoint(task_state)
        return cls(task, problem_from_spec(task.problem_spec, path), device=device)

    # -- properties ------------------------------------------------------------------------------------
    @property
    def grid(self) -> Grid:
        """The grid of the coefficient (whose boundary nodes the measurements live on)."""
        return self.task.grid

    @property
    def n_patterns(self) -> int:
        """L: the probes of the training data (a subset may be given, see :meth:`__call__`)."""
        return self.task.n_patterns

    @property
    def output_names(self) -> tuple[str, ...]:
        return self.task.output_names

    # -- answering -------------------------------------------------------------------------------------
    def predict(self, measurements: Any, patterns: Any = None) -> dict[str, np.ndarray]:
        """Batched: ``(B, L', M)`` measurements to ``{output: (B, *grid.shape)}``; warns out of distribution."""
        return self._answer(measurements, patterns, stacklevel=3)[0]

    def __call__(self, measurements: Any = None, patterns: Any = None, **named: Any) -> Answer:
        """One sample's ``(L', M)`` measurements (or by the problem's name: ``solver(dtn=m)``) to
        ``{output: Field}``. ``patterns`` says which training probes the rows are when fewer than all
        are given (NIO only; the other networks read a fixed number)."""
        if named:
            unknown = set(named) - {self.task.measurement_name}
            if unknown or measurements is not None:
                raise ConfigError(f"MeasurementSolver: expected the measurements positionally or as "
                                  f"{self.task.measurement_name}=..., got {sorted(named)}")
            measurements = named[self.task.measurement_name]
        if measurements is None:
            raise ConfigError(f"MeasurementSolver: expected measurements ({self.task.measurement_name}: an "
                              f"(L, {self.task.n_sensors}) array), got none")
        arr = np.asarray(measurements, dtype=np.float64)
        if arr.ndim != 2:
            raise ConfigError(f"MeasurementSolver(): expected one sample's (L, {self.task.n_sensors}) "
                              f"measurements, got shape {arr.shape}; use predict() for a batch")
        out, messages = self._answer(arr[None], patterns, stacklevel=3)
        return Answer({name: Field(values[0], self.grid, name) for name, values in out.items()}, warnings=messages)

    def _answer(self, measurements: Any, patterns: Any, stacklevel: int) -> tuple[dict[str, np.ndarray], list[str]]:
        arr = np.asarray(measurements, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise ConfigError(f"{self.task.measurement_name}: expected finite measurements, got NaN or Inf")
        m = torch.as_tensor(arr, dtype=torch.float32, device=self.device)
        m, index = self.task.check_measurements(m, patterns)
        messages = [] if self.task.profile is None else self.task.profile.check(self.task.encode(m, index))
        for message in messages:
            warnings.warn(OutOfDistributionWarning(message + "; the answer is an extrapolation and may be far off"),
                          stacklevel=stacklevel + 1)
        with torch.no_grad():
            y = self.task(m, index).double().cpu().numpy()
        return {name: y[:, i] for i, name in enumerate(self.output_names)}, messages

    # -- the forward model -----------------------------------------------------------------------------
    def measure(self, noise: float | None = None, seed: int | None = None, **coefficient: Any) -> np.ndarray:
        """The ``(L, M)`` measurements of one coefficient (``a="1 + x*y"``, an array, a Field...) by the
        problem's forward model, with the problem's noise model at level ``noise`` (the training
        data's level by default; ``seed`` for the noise draw)."""
        problem = self.problem
        forward = problem.forward
        if forward is None:
            raise ProblemError(f"problem {problem.name!r} has no forward model to measure with")
        if set(coefficient) != {problem.unknown}:
            raise ConfigError(f"measure: expected the coefficient as {problem.unknown}=..., got {sorted(coefficient)}")
        prepared = forward.prepare_inputs(coefficient, self.grid)
        outputs = forward.solve_batch(prepared, self.grid)
        measured = forward.observe(prepared, outputs, self.grid, dict(forward.params))
        level = problem.noise if noise is None else float(noise)
        noisy = dataclasses.replace(problem, noise=level).add_noise(measured, np.random.default_rng(seed))
        return noisy[self.task.measurement_name][0]

    def truth(self, **coefficient: Any) -> dict[str, Field]:
        """The coefficient as the forward model saw it, on the grid (what a reconstruction is compared with)."""
        forward = self.problem.forward
        prepared = forward.prepare_inputs(coefficient, self.grid)
        return {name: Field(prepared[name][0], self.grid, name) for name in self.output_names}

    def error(self, noise: float | None = None, seed: int | None = None, patterns: Any = None,
              **coefficient: Any) -> dict[str, float]:
        """Relative L1 and L2 of the reconstruction of ``coefficient`` from its own (noisy) measurements."""
        m = self.measure(noise=noise, seed=seed, **coefficient)
        if patterns is not None:
            m = m[np.asarray(patterns)]
        answer = self(m, patterns=patterns)
        truth = self.truth(**coefficient)
        p = torch.as_tensor(np.stack([answer[n].numpy() for n in self.output_names]))[None]
        t = torch.as_tensor(np.stack([truth[n].numpy() for n in self.output_names]))[None]
        return {"rel_l1": float(relative_l1_per_sample(p, t)[0]), "rel_l2": float(_relative_l2_per_sample(p, t)[0])}

    def __repr__(self) -> str:
        spec = self.task.model_spec or {"name": type(self.task.model).__name__}
        return (f"MeasurementSolver(problem={self.problem.name!r}, model={spec['name']!r}, grid={self.grid!r}, "
                f"measurements={self.task.measurement_name}: {self.n_patterns} x {self.task.n_sensors})")
