"""Training recipes for PINNs: Adam then L-BFGS phases, the float64 switch, one term per step.

* :func:`pinn_phases`: Trainer phases for Adam followed by an L-BFGS that really iterates;
* :class:`PrecisionSwitch`: convert the task to float64 at the end of the Adam phase, so that L-BFGS
  keeps converging instead of stalling at float32 rounding;
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

__all__ = ["pinn_phases", "PrecisionSwitch", "ActiveTermsCallback"]


def pinn_phases(
    adam_steps: int, lbfgs_steps: int = 0, *, lr: float = 1e-3, max_iter: int = 20, history_size: int = 50
) -> list[tuple[str, int, dict[str, Any]]]:
    """Trainer phases for the usual PINN recipe: Adam, then L-BFGS that really runs.

    Each of the ``lbfgs_steps`` L-BFGS steps makes ``max_iter`` iterations (strong Wolfe line search,
    ``history_size`` pairs, up to ``4 * max_iter`` evaluations); the tolerances are set so that it stops
    only when the loss or the weights stop changing, not after a few iterations as in DeepXDE's
    PyTorch backend. Give the Trainer ``callbacks=[PrecisionSwitch(adam_steps)]`` as well: in float32
    the line search reaches the rounding level of the loss after a few iterations on stiff PINN
    losses (Burgers), in float64 it does not. Adam uses the fused implementation where torch has
    one for CPU tensors.
    """
    adam_steps = check_positive_int("adam_steps", adam_steps)
    phases: list[tuple[str, int, dict[str, Any]]] = [("adam", adam_steps, {"lr": float(lr), **_fused()})]
    if lbfgs_steps:
        phases.append(("lbfgs", check_positive_int("lbfgs_steps", lbfgs_steps), {
            "lr": 1.0, "max_iter": check_positive_int("max_iter", max_iter),
            "max_eval": 4 * max_iter, "history_size": check_positive_int("history_size", history_size),
            "tolerance_grad": 1e-12, "tolerance_change": 1e-15, "line_search_fn": "strong_wolfe"}))
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
