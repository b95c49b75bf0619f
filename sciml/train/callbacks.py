"""Callbacks: small objects the Trainer calls at fixed points of a run.

Hooks are called on every rank (so that collective decisions stay in step); a callback that
writes files should check ``trainer.dist.is_main``. A callback with state that must survive a
resume (early stopping's best value) implements ``state_dict``/``load_state_dict``; the Trainer
stores it in checkpoints. A callback stops the run with ``trainer.request_stop(reason)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .._checks import check_name, check_positive_int
from ..errors import ConfigError

# The Trainer calls these hooks with itself and imports this module, so its classes are not imported
# back: in the annotations below ``Trainer`` is sciml.train.trainer.Trainer, ``TrainResult`` its result.
Trainer = Any
TrainResult = Any

__all__ = ["Callback", "EarlyStopping", "make_early_stopping"]


class Callback:
    """Base class; override the hooks you need (all default to doing nothing)."""

    def on_fit_start(self, trainer: Trainer) -> None:
        """Called once when :meth:`Trainer.fit` starts (after a resume has been applied)."""

    def on_step_end(self, trainer: Trainer, step: int, logs: Mapping[str, float]) -> None:
        """Called after every optimiser step; ``logs`` holds ``loss`` and ``loss/<term>``."""

    def on_evaluate(self, trainer: Trainer, step: int, metrics: Mapping[str, float]) -> None:
        """Called after every evaluation with the reduced metrics (``<set>/<metric>``)."""

    def on_checkpoint(self, trainer: Trainer, path: Any) -> None:
        """Called after a checkpoint was written (rank 0 only knows the path; others get None)."""

    def on_fit_end(self, trainer: Trainer, result: TrainResult) -> None:
        """Called once at the end of :meth:`Trainer.fit`."""

    def state_dict(self) -> dict[str, Any]:
        """State to store in checkpoints (plain data)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""


class EarlyStopping(Callback):
    """Stop when a validation metric has not improved for ``patience`` evaluations.

    Parameters
    ----------
    metric : str, optional
        Key of the evaluation results, e.g. ``"val/rel_l2"``. By default the first key of the
        first evaluation (the first metric of the first validation set).
    patience : int
        Number of evaluations without improvement after which the run stops.
    mode : {"min", "max"}
        Whether smaller or larger is better.
    min_delta : float
        Smallest change that counts as an improvement.
    """

    def __init__(
        self, metric: str | None = None, patience: int = 5, mode: str = "min", min_delta: float = 0.0
    ) -> None:
        if metric is not None and not isinstance(metric, str):
            raise ConfigError(f"EarlyStopping metric: expected a metric name, got {metric!r}")
        check_name("early-stopping mode", mode, ("min", "max"))
        min_delta = float(min_delta)
        if not (math.isfinite(min_delta) and min_delta >= 0):
            raise ConfigError(f"EarlyStopping min_delta: expected a finite value >= 0, got {min_delta}")
        self.metric = metric
        self.patience = check_positive_int("EarlyStopping patience", patience)
        self.mode = mode
        self.min_delta = min_delta
        self.best: float | None = None
        self.best_step: int | None = None
        self.wait = 0

    def _improved(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_evaluate(self, trainer: Trainer, step: int, metrics: Mapping[str, float]) -> None:
        if not metrics:
            return
        if self.metric is None:
            self.metric = next(iter(metrics))
        if self.metric not in metrics:
            raise ConfigError(
                f"EarlyStopping: metric {self.metric!r} is not among the evaluation results {sorted(metrics)}"
            )
        value = float(metrics[self.metric])
        if self._improved(value):
            self.best, self.best_step, self.wait = value, step, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            trainer.request_stop(
                "early_stopped",
                f"{self.metric} did not improve for {self.wait} evaluations (best {self.best} at step "
                f"{self.best_step})",
            )

    def state_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "best": self.best, "best_step": self.best_step, "wait": self.wait}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.metric = state.get("metric", self.metric)
        self.best = state.get("best")
        self.best_step = state.get("best_step")
        self.wait = int(state.get("wait", 0))

    def __repr__(self) -> str:
        return f"EarlyStopping(metric={self.metric!r}, patience={self.patience}, mode={self.mode!r})"


def make_early_stopping(spec: EarlyStopping | int | Mapping[str, Any] | None) -> EarlyStopping | None:
    """Build an EarlyStopping from the Trainer argument: an instance, a patience, or kwargs."""
    if spec is None or isinstance(spec, EarlyStopping):
        return spec
    if isinstance(spec, bool):
        raise ConfigError(f"early_stopping: expected None, a patience, a dict or EarlyStopping, got {spec!r}")
    if isinstance(spec, int):
        return EarlyStopping(patience=spec)
    if isinstance(spec, Mapping):
        try:
            return EarlyStopping(**spec)
        except TypeError as exc:
            raise ConfigError(f"early_stopping: bad options {dict(spec)} ({exc})") from None
    raise ConfigError(f"early_stopping: expected None, a patience, a dict or EarlyStopping, got {spec!r}")
