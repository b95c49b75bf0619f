"""Optimisers, learning-rate schedules and training phases (e.g. Adam, then L-BFGS).

A run is a list of :class:`Phase`\\ s; each has its own optimiser and schedule and runs for a
number of optimiser steps. ``Trainer(optimizer="adam", steps=1000)`` is one phase;
``Trainer(phases=[("adam", 5000, {"lr": 1e-3}), ("lbfgs", 200, {})])`` switches from Adam to
L-BFGS after 5000 steps (the usual PINN recipe).

Optimiser specs: ``"adam"``, ``"adamw"``, ``"sgd"``, ``"lbfgs"``, or a callable
``factory(params, lr=..., weight_decay=..., **options) -> torch.optim.Optimizer`` (any
``torch.optim`` class works). Phase options: ``lr``, ``weight_decay``, ``schedule``,
``schedule_kwargs``; everything else goes to the optimiser. L-BFGS defaults to ``lr=1`` and
``line_search_fn="strong_wolfe"``; it has no weight decay, so the Trainer-level ``weight_decay``
does not apply to it. One L-BFGS "step" is one ``optimizer.step(closure)``, i.e. up to
``max_iter`` (default 20) inner iterations.

Schedules: ``"onecycle"`` (OneCycleLR with ``max_lr`` = the phase's lr), ``"cosine"``
(CosineAnnealingLR to ``eta_min``, default 0), ``"step"`` (StepLR, default ``step_size`` a third
of the phase and ``gamma=0.1``), or a callable ``factory(optimizer, n_updates) -> LRScheduler``.
They span the phase: ``n_updates`` is the phase's steps, or its epochs when the Trainer steps
schedules per epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, OneCycleLR, StepLR

from .._checks import check_name, check_positive_int
from ..errors import ConfigError

__all__ = ["Phase", "OPTIMIZERS", "SCHEDULES", "run_length", "parse_phases", "build_optimizer", "build_scheduler",
           "scale_lr", "current_lr", "step_scheduler"]

OPTIMIZERS: dict[str, type[Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "lbfgs": torch.optim.LBFGS,
}
SCHEDULES = ("onecycle", "cosine", "step")


@dataclass
class Phase:
    """One stretch of training with one optimiser and one schedule."""

    optimizer: str | Callable[..., Optimizer]
    steps: int
    options: dict[str, Any] = field(default_factory=dict)
    schedule: str | Callable[..., LRScheduler] | None = None
    schedule_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        if isinstance(self.optimizer, str):
            return self.optimizer
        return getattr(self.optimizer, "__name__", type(self.optimizer).__name__)

    @property
    def is_lbfgs(self) -> bool:
        return self.optimizer == "lbfgs" or self.optimizer is torch.optim.LBFGS


def _check_lr(name: str, value: Any) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected a positive number, got {value!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{name}: expected a finite positive number, got {value}")
    return value


def _check_spec(what: str, spec: Any) -> None:
    if isinstance(spec, str):
        check_name("optimizer", spec, OPTIMIZERS)
    elif not callable(spec):
        raise ConfigError(
            f"{what}: expected one of {sorted(OPTIMIZERS)} or an optimizer factory, got {spec!r}")


def _check_schedule(schedule: Any) -> None:
    if schedule is None or callable(schedule):
        return
    if isinstance(schedule, str):
        check_name("schedule", schedule, SCHEDULES)
        return
    raise ConfigError(f"schedule: expected None, one of {list(SCHEDULES)} or a factory, got {schedule!r}")


def run_length(phases: Sequence[Any] | None, steps: int | None, epochs: int | None,
               steps_per_epoch: int | None) -> int | None:
    """Steps of a run without ``phases`` (from ``steps`` or ``epochs``); None when ``phases`` give it.

    Exactly one of ``phases``, ``steps`` and ``epochs``; ``epochs`` needs sized training data.
    """
    if phases is not None and (steps is not None or epochs is not None):
        raise ConfigError("give either phases (each with its steps) or steps/epochs, not both")
    if steps is not None and epochs is not None:
        raise ConfigError(f"give either steps or epochs, not both (got steps={steps}, epochs={epochs})")
    if phases is not None:
        return None
    if steps is None and epochs is None:
        raise ConfigError("the run needs a length: steps=..., epochs=... or phases=[...]")
    if epochs is not None:
        epochs = check_positive_int("epochs", epochs)
        if steps_per_epoch is None:
            raise ConfigError("epochs needs sized training data (a Dataset with __len__); use steps")
        steps = epochs * steps_per_epoch
    return check_positive_int("steps", steps)


def parse_phases(
    phases: Sequence[Any] | None,
    *,
    optimizer: str | Callable[..., Optimizer],
    steps: int | None,
    lr: float,
    weight_decay: float,
    schedule: str | Callable[..., LRScheduler] | None,
    schedule_kwargs: Mapping[str, Any] | None,
) -> list[Phase]:
    """Turn the Trainer's optimisation arguments into a list of phases.

    Without ``phases``: one phase of ``steps`` steps (``steps`` may be None when it is only known
    from the data, then it is filled in later). With ``phases``: tuples
    ``(optimizer, n_steps)`` or ``(optimizer, n_steps, options)``; Trainer-level ``lr``,
    ``weight_decay`` and ``schedule`` are defaults for first-order phases.
    """
    lr = _check_lr("lr", lr)
    weight_decay = float(weight_decay)
    if not (math.isfinite(weight_decay) and weight_decay >= 0):
        raise ConfigError(f"weight_decay: expected a finite value >= 0, got {weight_decay}")
    _check_schedule(schedule)
    schedule_kwargs = dict(schedule_kwargs or {})
    if phases is None:
        _check_spec("optimizer", optimizer)
        phase = Phase(optimizer, steps or 0, {}, schedule, schedule_kwargs)
        _fill_defaults(phase, lr, weight_decay)
        return [phase]
    if not isinstance(phases, Sequence) or isinstance(phases, str) or len(phases) == 0:
        raise ConfigError(
            f"phases: expected a non-empty list of (optimizer, n_steps[, options]), got {phases!r}")
    out = []
    for i, item in enumerate(phases):
        if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
            raise ConfigError(f"phases[{i}]: expected (optimizer, n_steps[, options]), got {item!r}")
        spec, n = item[0], item[1]
        options = dict(item[2]) if len(item) == 3 and item[2] is not None else {}
        if len(item) == 3 and item[2] is not None and not isinstance(item[2], Mapping):
            raise ConfigError(f"phases[{i}] options: expected a dict, got {item[2]!r}")
        _check_spec(f"phases[{i}] optimizer", spec)
        n = check_positive_int(f"phases[{i}] n_steps", n)
        phase_schedule = options.pop("schedule", None if _is_lbfgs_spec(spec) else schedule)
        _check_schedule(phase_schedule)
        phase_kwargs = dict(options.pop("schedule_kwargs", schedule_kwargs))
        phase = Phase(spec, n, options, phase_schedule, phase_kwargs)
        _fill_defaults(phase, lr, weight_decay)
        out.append(phase)
    return out


def _is_lbfgs_spec(spec: Any) -> bool:
    return spec == "lbfgs" or spec is torch.optim.LBFGS


def _fill_defaults(phase: Phase, lr: float, weight_decay: float) -> None:
    opts = phase.options
    if phase.is_lbfgs:
        if opts.get("weight_decay"):
            raise ConfigError("L-BFGS has no weight_decay; remove it from the phase options")
        opts.pop("weight_decay", None)
        opts["lr"] = _check_lr("L-BFGS lr", opts.get("lr", 1.0))
        opts.setdefault("line_search_fn", "strong_wolfe")
        return
    opts["lr"] = _check_lr("phase lr", opts.get("lr", lr))
    opts.setdefault("weight_decay", weight_decay)


def build_optimizer(phase: Phase, params: Sequence[torch.nn.Parameter]) -> Optimizer:
    """Instantiate the phase's optimiser on ``params``."""
    factory = OPTIMIZERS[phase.optimizer] if isinstance(phase.optimizer, str) else phase.optimizer
    params = list(params)
    options = dict(phase.options)
    if phase.optimizer in ("adam", "adamw") and "fused" not in options and "foreach" not in options:
        # The fused kernel updates every parameter in one launch (5x faster steps for small
        # models on CPU); it needs floating-point parameters on CPU or CUDA.
        if all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params):
            options["fused"] = True
    try:
        optimizer = factory(params, **options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"optimizer {phase.name!r} with options {phase.options}: {exc}") from None
    if not isinstance(optimizer, Optimizer):
        raise ConfigError(f"optimizer factory {phase.name!r}: expected a torch.optim.Optimizer, got "
                          f"{type(optimizer).__name__}")
    return optimizer


def build_scheduler(phase: Phase, optimizer: Optimizer, n_updates: int) -> LRScheduler | None:
    """The phase's schedule over ``n_updates`` scheduler steps, or None."""
    if phase.schedule is None:
        return None
    n_updates = max(1, int(n_updates))
    kw = dict(phase.schedule_kwargs)
    try:
        if callable(phase.schedule):
            scheduler = phase.schedule(optimizer, n_updates)
            if not isinstance(scheduler, LRScheduler):
                raise ConfigError(
                    f"schedule factory: expected an LRScheduler, got {type(scheduler).__name__}")
            return scheduler
        if phase.schedule == "onecycle":
            has_momentum = all("momentum" in g or "betas" in g for g in optimizer.param_groups)
            kw.setdefault("cycle_momentum", has_momentum)
            return OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups],
                              total_steps=n_updates, **kw)
        if phase.schedule == "cosine":
            return CosineAnnealingLR(optimizer, T_max=n_updates, **kw)
        kw.setdefault("step_size", max(1, n_updates // 3))
        kw.setdefault("gamma", 0.1)
        return StepLR(optimizer, **kw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"schedule {phase.schedule!r} with options {phase.schedule_kwargs}: {exc}") from None


def step_scheduler(scheduler: LRScheduler | None) -> None:
    """Advance a schedule; a OneCycle schedule that is complete stays at its final value."""
    if scheduler is None:
        return
    if isinstance(scheduler, OneCycleLR) and scheduler.last_epoch >= scheduler.total_steps:
        return
    scheduler.step()


def scale_lr(optimizer: Optimizer, scheduler: LRScheduler | None, factor: float) -> None:
    """Multiply the learning rate by ``factor`` now and for the rest of the schedule.

    Besides each group's ``lr`` this scales what schedules recompute the lr from: the groups'
    ``initial_lr`` / ``max_lr`` / ``min_lr`` (OneCycle), the scheduler's ``base_lrs`` and
    ``eta_min`` (cosine), so the reduction is not undone at the next scheduler step.
    """
    for group in optimizer.param_groups:
        for key in ("lr", "initial_lr", "max_lr", "min_lr"):
            if key in group and isinstance(group[key], (int, float)):
                group[key] = group[key] * factor
    if scheduler is not None:
        if hasattr(scheduler, "base_lrs"):
            scheduler.base_lrs = [lr * factor for lr in scheduler.base_lrs]
        if isinstance(getattr(scheduler, "eta_min", None), (int, float)):
            scheduler.eta_min = scheduler.eta_min * factor


def current_lr(optimizer: Optimizer) -> float:
    """Learning rate of the first parameter group."""
    return float(optimizer.param_groups[0]["lr"])
