"""Training recipes for PINNs: Adam then L-BFGS phases, the float64 switch, one term per step.

* :func:`pinn_phases`: Trainer phases for Adam followed by an L-BFGS that really iterates, in
  optimiser steps or (``lbfgs_iterations=``) in inner iterations with a tolerance and float64;
* :class:`PrecisionSwitch`: convert the task to float64 at the end of the Adam phase, so that L-BFGS
  keeps converging instead of stalling at float32 rounding (superseded by the phases' ``precision``
  option, which ``pinn_phases(..., lbfgs_iterations=...)`` sets);
* :class:`ActiveTermsCallback`: let a combiner that differentiates one term per step (M-ConFIG) tell
  the task which term to compute.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .._checks import check_positive_int
from ..errors import ConfigError
from ..train.callbacks import Callback
from ..train.phases import parse_dtype

__all__ = ["pinn_phases", "PrecisionSwitch", "ActiveTermsCallback"]


def pinn_phases(
    adam_steps: int, lbfgs_steps: int = 0, *, lr: float = 1e-3, max_iter: int = 20, history_size: int = 50,
    lbfgs_iterations: int | None = None, lbfgs_tolerance: float | None = None,
    lbfgs_precision: str | torch.dtype | None = None,
) -> list[tuple[Any, ...]]:
    """Trainer phases for the usual PINN recipe: Adam, then L-BFGS that really runs.

    Two ways to size the L-BFGS phase:

    * ``lbfgs_iterations=n`` (recommended): ``n`` inner L-BFGS iterations in all, in float64, ending
      early once converged (the gradient or the change of loss or weights below ``lbfgs_tolerance``,
      default 1e-12: ``tolerance_grad=1e-12``, ``tolerance_change=1e-14``; see
      :mod:`sciml.train.phases`). The task is converted to ``lbfgs_precision`` (default
      ``"float64"``) when the phase starts; no :class:`PrecisionSwitch` is needed::

          Trainer(task, phases=pinn_phases(5000, lbfgs_iterations=15000)).fit()

    * ``lbfgs_steps`` (the older form, kept as it was): that many optimiser steps of ``max_iter``
      iterations each, whatever the convergence, with ``tolerance_grad=1e-12`` and
      ``tolerance_change=1e-15``, in the task's precision unless ``lbfgs_precision`` is given (or a
      :class:`PrecisionSwitch` callback converts it)::

          Trainer(task, phases=pinn_phases(5000, 750), callbacks=[PrecisionSwitch(5000)]).fit()

    L-BFGS uses a strong Wolfe line search, ``history_size`` pairs, ``max_iter`` iterations per step
    and up to ``4 * max_iter`` evaluations; unlike DeepXDE's PyTorch backend it does not stop after a
    few iterations. In float32 the line search reaches the rounding level of the loss after a few
    iterations on stiff PINN losses (Burgers), in float64 it does not. Adam uses the fused
    implementation where torch has one for CPU tensors.

    Parameters
    ----------
    adam_steps : int
        Adam steps.
    lbfgs_steps : int
        L-BFGS optimiser steps (0: none); not together with ``lbfgs_iterations``.
    lr : float
        Adam's learning rate.
    max_iter, history_size : int
        L-BFGS iterations per optimiser step, and its memory.
    lbfgs_iterations : int, optional
        Budget of inner L-BFGS iterations (the phase makes ``ceil(n / max_iter)`` steps at most).
    lbfgs_tolerance : float, optional
        Tolerance of the ``lbfgs_iterations`` form (default 1e-12).
    lbfgs_precision : str or torch.dtype, optional
        Precision of the L-BFGS phase: ``"float64"`` (default of the ``lbfgs_iterations`` form),
        ``"float32"`` or a floating torch.dtype. The ``lbfgs_steps`` form keeps the task's without it.

    Returns
    -------
    list of tuple
        ``[("adam", adam_steps, {...}), ("lbfgs", ...)]`` for ``Trainer(phases=...)``.

    Raises
    ------
    ConfigError
        Non-positive counts, both ``lbfgs_steps`` and ``lbfgs_iterations``, a tolerance without
        ``lbfgs_iterations``, an unknown precision.
    """
    adam_steps = check_positive_int("adam_steps", adam_steps)
    phases: list[tuple[Any, ...]] = [("adam", adam_steps, {"lr": float(lr), **_fused()})]
    if lbfgs_iterations is not None and lbfgs_steps:
        raise ConfigError(f"pinn_phases: got lbfgs_steps={lbfgs_steps!r} and lbfgs_iterations="
                          f"{lbfgs_iterations!r}; give one of them (lbfgs_iterations counts inner "
                          "iterations and ends when converged)")
    if lbfgs_tolerance is not None and lbfgs_iterations is None:
        raise ConfigError(f"pinn_phases: lbfgs_tolerance={lbfgs_tolerance!r} needs lbfgs_iterations=... (the "
                          "lbfgs_steps form runs all its steps); expected lbfgs_iterations, got none")
    max_iter = check_positive_int("max_iter", max_iter)
    options: dict[str, Any] = {
        "lr": 1.0, "max_iter": max_iter, "max_eval": 4 * max_iter,
        "history_size": check_positive_int("history_size", history_size), "line_search_fn": "strong_wolfe"}
    if lbfgs_iterations is not None:
        precision = "float64" if lbfgs_precision is None else lbfgs_precision
        options.update(iterations=check_positive_int("lbfgs_iterations", lbfgs_iterations),
                       tolerance=1e-12 if lbfgs_tolerance is None else lbfgs_tolerance,
                       precision=parse_dtype("lbfgs_precision", precision))
        phases.append(("lbfgs", options))
    elif lbfgs_steps:
        options.update(tolerance_grad=1e-12, tolerance_change=1e-15)
        if lbfgs_precision is not None:
            options["precision"] = parse_dtype("lbfgs_precision", lbfgs_precision)
        phases.append(("lbfgs", check_positive_int("lbfgs_steps", lbfgs_steps), options))
    elif lbfgs_precision is not None:
        raise ConfigError(f"pinn_phases: lbfgs_precision={lbfgs_precision!r} but no L-BFGS phase; expected "
                          "lbfgs_iterations=... or lbfgs_steps > 0")
    return phases


def _fused() -> dict[str, bool]:
    try:
        torch.optim.Adam([nn.Parameter(torch.zeros(1))], fused=True)
    except (RuntimeError, TypeError, ValueError):  # a torch without fused CPU Adam
        return {}
    return {"fused": True}


class ActiveTermsCallback(Callback):
    """Before every step, tell the task which terms the combiner will differentiate.

    For combiners with ``next_terms(names)`` (M-ConFIG: one term per step) the task then skips
    computing the others, which is where M-ConFIG saves its time. Harmless with other combiners.
    """

    def on_fit_start(self, trainer: Any) -> None:
        self._update(trainer)

    def on_step_end(self, trainer: Any, step: int, logs: Mapping[str, float]) -> None:
        self._update(trainer)

    @staticmethod
    def _update(trainer: Any) -> None:
        task = trainer.task
        if not hasattr(task, "active_terms"):
            raise ConfigError(f"ActiveTermsCallback: {type(task).__name__} has no active_terms to set")
        select = getattr(trainer.combiner, "next_terms", None)
        task.active_terms = None if select is None else set(select(task.term_names))


class PrecisionSwitch(Callback):
    """Convert the task to ``dtype`` (float64 by default) after ``step`` steps, e.g. before L-BFGS.

    Kept for existing scripts; prefer the ``precision`` option of a phase, which needs no step number
    and also works when an earlier phase ends early: ``("lbfgs", {"iterations": 15000, "precision":
    "float64"})``, as :func:`pinn_phases` with ``lbfgs_iterations=`` builds it (then leave this
    callback out). It counts planned steps, so it cannot follow an L-BFGS phase in iterations that
    converged early.

    In float32 the L-BFGS line search of a PINN soon works at the rounding level of the loss (the
    loss is a mean over thousands of squared residuals and the landscape is stiff near fronts): it
    stops improving after a few iterations, which is the stall of DeepXDE's PyTorch backend. In
    float64 it keeps converging. ``step`` must be the end of a phase (the optimiser of the next
    phase is then built on the converted weights); checkpoints of the converted run reload in
    float64 (:meth:`PINNTask.load_state_dict`).
    """

    def __init__(self, step: int, dtype: torch.dtype = torch.float64) -> None:
        self.step = check_positive_int("PrecisionSwitch step", step)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ConfigError(f"PrecisionSwitch dtype: expected a floating torch.dtype, got {dtype!r}")
        self.dtype = dtype

    def on_fit_start(self, trainer: Any) -> None:
        ends, total = [], 0
        for phase in trainer.phases[:-1]:
            total += phase.steps
            ends.append(total)
        if self.step not in ends:
            raise ConfigError(f"PrecisionSwitch(step={self.step}): expected the end of a phase, "
                              f"one of {ends}")
        if trainer.step >= self.step:  # a resumed run past the switch
            trainer.task.to(self.dtype)

    def on_step_end(self, trainer: Any, step: int, logs: Mapping[str, float]) -> None:
        if step == self.step:
            trainer.task.to(self.dtype)
