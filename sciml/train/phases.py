"""Optimisers, learning-rate schedules and training phases (e.g. Adam, then L-BFGS).

A run is a list of :class:`Phase`\\ s; each has its own optimiser and schedule and runs for a
number of optimiser steps. ``Trainer(optimizer="adam", steps=1000)`` is one phase;
``Trainer(phases=[("adam", 5000, {"lr": 1e-3}), ("lbfgs", 200, {})])`` switches from Adam to
L-BFGS after 5000 steps (the usual PINN recipe).

A phase is ``(optimizer, n_steps)``, ``(optimizer, n_steps, options)`` or ``(optimizer, options)``
where ``options`` holds the length: ``{"steps": n, ...}``, or for L-BFGS ``{"iterations": n, ...}``::

    phases = [("adam", 5000, {"lr": 1e-3}),
              ("lbfgs", {"iterations": 15000, "tolerance": 1e-10, "precision": "float64"})]

Optimiser specs: ``"adam"``, ``"adamw"``, ``"sgd"``, ``"lbfgs"``, or a callable
``factory(params, lr=..., weight_decay=..., **options) -> torch.optim.Optimizer`` (any
``torch.optim`` class works). Phase options: ``lr``, ``weight_decay``, ``schedule``,
``schedule_kwargs``, ``precision``; everything else goes to the optimiser. L-BFGS defaults to
``lr=1`` and ``line_search_fn="strong_wolfe"``; it has no weight decay, so the Trainer-level
``weight_decay`` does not apply to it.

L-BFGS steps and iterations: one L-BFGS "step" is one ``optimizer.step(closure)``, i.e. up to
``max_iter`` (default 20) inner iterations. Given ``n_steps``, a phase makes exactly that many
steps, whatever their iterations. Given ``iterations`` (the total of inner iterations, the unit of
scipy and of the PINN literature), the phase gets ``ceil(iterations / max_iter)`` steps and
:class:`LBFGSBudget` sets each step's ``max_iter`` so that the iterations add up to the budget
(the last step is trimmed; a step cut short by ``max_eval`` is made up by the next ones); and it
**ends early** once L-BFGS has converged: a step that stops before its ``max_iter`` and
``max_eval`` because the gradient or the change of loss or weights fell below the tolerances. The
Trainer then starts the next phase (or finishes with reason ``"converged"``); the steps it did not
need are dropped from the run's length, and the convergence is recorded in checkpoints so that a
resumed run does not run the phase again. ``tolerance`` (only with ``iterations``) sets
``tolerance_grad = tolerance`` (on the largest gradient entry) and ``tolerance_change =
tolerance / 100`` (on the change of the loss and of the weights in one iteration), torch's own
ratio: ``tolerance=1e-7`` gives torch's defaults, which also apply without ``tolerance``. Give
``tolerance_grad`` / ``tolerance_change`` instead to set them apart.

Precision: ``"precision"`` (or ``"dtype"``): ``"float64"`` / ``"fp64"``, ``"float32"`` /
``"fp32"`` or a floating ``torch.dtype``, in any phase. The Trainer converts the task
(``task.to(dtype)``) when the phase starts, before building its optimiser; later phases keep that
precision unless they give their own. A run resumed in or after such a phase converts the task
before loading the checkpoint, so float64 weights are not rounded. In float32 the L-BFGS line
search of a stiff loss (a PINN) soon works at the rounding level of the loss and stalls; in float64
it keeps converging. This is not the Trainer's ``precision`` (autocast of the forward pass).

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

__all__ = ["Phase", "OPTIMIZERS", "SCHEDULES", "DTYPES", "LBFGSBudget", "run_length", "parse_phases",
           "parse_dtype", "phase_bounds", "phase_dtype", "set_task_dtype", "convergence_summary", "completion",
           "build_optimizer", "build_scheduler", "scale_lr", "current_lr", "step_scheduler"]

OPTIMIZERS: dict[str, type[Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "lbfgs": torch.optim.LBFGS,
}
SCHEDULES = ("onecycle", "cosine", "step")
#: names of the ``precision`` phase option
DTYPES: dict[str, torch.dtype] = {"float64": torch.float64, "fp64": torch.float64,
                                  "float32": torch.float32, "fp32": torch.float32}
#: ``tolerance_change = tolerance * TOLERANCE_CHANGE_RATIO`` (torch's defaults: 1e-7 and 1e-9)
TOLERANCE_CHANGE_RATIO = 1e-2
_LBFGS_MAX_ITER = 20  # torch's default


@dataclass
class Phase:
    """One stretch of training with one optimiser and one schedule.

    Attributes
    ----------
    optimizer : str or callable
        Optimiser spec (see the module docstring).
    steps : int
        Optimiser steps of the phase (for a phase in ``iterations``: ``ceil(iterations / max_iter)``,
        the most it can make).
    options : dict
        Optimiser options (``lr``, ``max_iter``...).
    schedule, schedule_kwargs
        Learning-rate schedule of the phase.
    iterations : int or None
        L-BFGS only: the budget of inner iterations; the phase ends early when L-BFGS converges.
    dtype : torch.dtype or None
        Precision the task is converted to when the phase starts (None: keep the current one).
    """

    optimizer: str | Callable[..., Optimizer]
    steps: int
    options: dict[str, Any] = field(default_factory=dict)
    schedule: str | Callable[..., LRScheduler] | None = None
    schedule_kwargs: dict[str, Any] = field(default_factory=dict)
    iterations: int | None = None
    dtype: torch.dtype | None = None

    @property
    def name(self) -> str:
        if isinstance(self.optimizer, str):
            return self.optimizer
        return getattr(self.optimizer, "__name__", type(self.optimizer).__name__)

    @property
    def is_lbfgs(self) -> bool:
        return self.optimizer == "lbfgs" or self.optimizer is torch.optim.LBFGS

    def describe(self) -> dict[str, Any]:
        """The phase as JSON-able data (for ``config.json`` and checkpoints)."""
        def plain(v: Any) -> Any:
            return v if isinstance(v, (int, float, str, bool, type(None))) else repr(v)

        out = {"optimizer": self.name, "steps": self.steps, "schedule": plain(self.schedule),
               "schedule_kwargs": {k: plain(v) for k, v in self.schedule_kwargs.items()},
               "options": {k: plain(v) for k, v in self.options.items()}}
        if self.iterations is not None:
            out["iterations"] = self.iterations
        if self.dtype is not None:
            out["precision"] = str(self.dtype).removeprefix("torch.")
        return out


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
    from the data, then it is filled in later). With ``phases``: items ``(optimizer, n_steps)``,
    ``(optimizer, n_steps, options)`` or ``(optimizer, options)`` with ``"steps"`` or (L-BFGS)
    ``"iterations"`` in ``options`` (see the module docstring); Trainer-level ``lr``,
    ``weight_decay`` and ``schedule`` are defaults for first-order phases.

    Raises
    ------
    ConfigError
        A malformed item, a length given twice or not at all, a bad option value.
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
        phase = _parse_item(f"phases[{i}]", item, schedule, schedule_kwargs)
        _fill_defaults(phase, lr, weight_decay)
        out.append(phase)
    return out


def _parse_item(where: str, item: Any, schedule: Any, schedule_kwargs: dict[str, Any]) -> Phase:
    """One item of ``phases`` as a Phase (defaults of lr and weight decay not yet filled in)."""
    if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
        raise ConfigError(f"{where}: expected (optimizer, n_steps[, options]), (optimizer, "
                          f"{{'steps': n, ...}}) or ('lbfgs', {{'iterations': n, ...}}), got {item!r}")
    spec = item[0]
    _check_spec(f"{where} optimizer", spec)
    if len(item) == 2 and isinstance(item[1], Mapping):
        options, n = dict(item[1]), None
        if "steps" in options and "iterations" in options:
            raise ConfigError(f"{where}: got both steps={options['steps']!r} and iterations="
                              f"{options['iterations']!r}; give one of them")
        if "steps" not in options and "iterations" not in options:
            raise ConfigError(f"{where}: expected 'steps' or (L-BFGS) 'iterations' among the options, "
                              f"got {sorted(options)}")
        n = options.pop("steps", None)
    else:
        n = item[1]
        options_in = item[2] if len(item) == 3 else None
        if options_in is not None and not isinstance(options_in, Mapping):
            raise ConfigError(f"{where} options: expected a dict, got {options_in!r}")
        options = dict(options_in or {})
        for key in ("steps", "iterations"):
            if key in options:
                raise ConfigError(f"{where}: got both n_steps={n!r} and {key}={options[key]!r}; give the "
                                  f"length once, e.g. ({spec!r}, {{{key!r}: {options[key]!r}, ...}})")
    dtype = _pop_dtype(where, options)
    iterations = options.pop("iterations", None)
    tolerance = options.pop("tolerance", None)
    if iterations is None:
        if tolerance is not None:
            raise ConfigError(f"{where}: 'tolerance' ends an L-BFGS phase given in iterations; expected "
                              f"('lbfgs', {{'iterations': n, 'tolerance': {tolerance!r}}}), "
                              f"got n_steps={n!r}")
        n = check_positive_int(f"{where} n_steps", n)
    else:
        n = _lbfgs_length(where, spec, iterations, tolerance, options)
        iterations = int(iterations)
    phase_schedule = options.pop("schedule", None if _is_lbfgs_spec(spec) else schedule)
    _check_schedule(phase_schedule)
    phase_kwargs = dict(options.pop("schedule_kwargs", schedule_kwargs))
    return Phase(spec, n, options, phase_schedule, phase_kwargs, iterations=iterations, dtype=dtype)


def _lbfgs_length(where: str, spec: Any, iterations: Any, tolerance: Any, options: dict[str, Any]) -> int:
    """Check an L-BFGS phase given in iterations, set its options; its number of steps."""
    if not _is_lbfgs_spec(spec):
        raise ConfigError(f"{where}: 'iterations' counts L-BFGS iterations; expected optimizer 'lbfgs', "
                          f"got {spec!r} (give other optimisers 'steps')")
    iterations = check_positive_int(f"{where} iterations", iterations)
    max_iter = check_positive_int(f"{where} max_iter", options.get("max_iter", _LBFGS_MAX_ITER))
    options["max_iter"] = max_iter
    if options.get("max_eval") is not None:
        options["max_eval"] = check_positive_int(f"{where} max_eval", options["max_eval"])
    if tolerance is not None:
        given = sorted({"tolerance_grad", "tolerance_change"} & set(options))
        if given:
            raise ConfigError(f"{where}: got tolerance={tolerance!r} and {given}; give either tolerance "
                              "(tolerance_grad = tolerance, tolerance_change = tolerance / 100) or those")
        tol = _check_lr(f"{where} tolerance", tolerance)
        options["tolerance_grad"] = tol
        options["tolerance_change"] = tol * TOLERANCE_CHANGE_RATIO
    return math.ceil(iterations / max_iter)


def parse_dtype(what: str, value: Any) -> torch.dtype:
    """``"float64"``, ``"fp64"``, ``"float32"``, ``"fp32"`` or a floating torch.dtype, as a torch.dtype.

    Raises
    ------
    ConfigError
        Anything else.
    """
    if isinstance(value, torch.dtype):
        if value.is_floating_point:
            return value
        raise ConfigError(f"{what}: expected a floating-point dtype, got {value}")
    if isinstance(value, str) and value in DTYPES:
        return DTYPES[value]
    raise ConfigError(f"{what}: expected one of {list(DTYPES)} or a floating torch.dtype, got {value!r}")


def _pop_dtype(where: str, options: dict[str, Any]) -> torch.dtype | None:
    if "precision" in options and "dtype" in options:
        raise ConfigError(f"{where}: got both precision={options['precision']!r} and "
                          f"dtype={options['dtype']!r}; give one of them")
    key = "precision" if "precision" in options else "dtype"
    value = options.pop(key, None)
    return None if value is None else parse_dtype(f"{where} {key}", value)


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


# -- run length, precision and L-BFGS budgets --------------------------------------------------
def phase_bounds(phases: Sequence[Phase], converged: Mapping[int, Mapping[str, int]]) -> list[int]:
    """Step at which each phase starts, then the run's length: ``[0, end_0, end_1, ...]``.

    A phase in ``converged`` (index -> ``{"steps": steps it ran, ...}``) ended early: it counts
    the steps it ran instead of its planned ``steps``.
    """
    bounds = [0]
    for i, phase in enumerate(phases):
        bounds.append(bounds[-1] + (int(converged[i]["steps"]) if i in converged else phase.steps))
    return bounds


def phase_dtype(phases: Sequence[Phase], index: int) -> torch.dtype | None:
    """Precision in effect in phase ``index``: that of the latest phase up to it that sets one."""
    for phase in reversed(phases[: index + 1]):
        if phase.dtype is not None:
            return phase.dtype
    return None


def set_task_dtype(task: torch.nn.Module, dtype: torch.dtype | None, where: str) -> None:
    """``task.to(dtype)`` (nothing for None); parameters keep their identity, optimisers stay valid.

    The Trainer calls it when a phase starts, before building the phase's optimiser (whose state
    then holds tensors of that precision), and when resuming, before loading the weights.

    Raises
    ------
    ConfigError
        The device cannot hold ``dtype`` (MPS has no float64).
    """
    if dtype is None:
        return
    try:
        task.to(dtype)
    except (TypeError, RuntimeError) as exc:
        raise ConfigError(f"{where}: cannot convert the task to {dtype} on this device ({exc}); "
                          "remove the phase's precision option or train on another device") from None


class LBFGSBudget:
    """The iterations of an L-BFGS phase given in ``iterations``: each step's share, and convergence.

    Call :meth:`before_step` before each ``optimizer.step(closure)`` and :meth:`after_step` after
    it. The counts come from the optimiser's own state (``n_iter``, ``func_evals``: cumulative
    over the phase, since the phase builds a fresh optimiser), so they survive checkpoints and
    rollbacks with the optimiser state.

    Parameters
    ----------
    phase : Phase
        A phase with ``iterations``.
    optimizer : torch.optim.LBFGS
        The phase's optimiser, just built (its ``max_iter`` / ``max_eval`` are the phase's own).
    """

    def __init__(self, phase: Phase, optimizer: Optimizer) -> None:
        if phase.iterations is None or not isinstance(optimizer, torch.optim.LBFGS):
            raise ConfigError(f"LBFGSBudget: expected an L-BFGS phase given in iterations and its "
                              f"torch.optim.LBFGS, got {phase.name!r} with {type(optimizer).__name__}")
        self.iterations = phase.iterations
        self.optimizer = optimizer
        group = optimizer.param_groups[0]
        self.max_iter, self.max_eval = int(group["max_iter"]), int(group["max_eval"])
        self.converged = False
        self._start: tuple[int, int] = (0, 0)
        self._limits: tuple[int, int] = (self.max_iter, self.max_eval)

    def _state(self) -> Mapping[str, Any]:
        return self.optimizer.state.get(self.optimizer.param_groups[0]["params"][0], {})

    @property
    def used(self) -> int:
        """Inner iterations made in this phase so far."""
        return int(self._state().get("n_iter", 0))

    def before_step(self, steps_left: int) -> None:
        """Set this step's ``max_iter``: the phase's own, less at the end of the budget, more when
        earlier steps stopped short at ``max_eval`` and ``steps_left`` steps cannot make up for it."""
        left = max(0, self.iterations - self.used)
        steps_left = max(1, int(steps_left))
        n = max(1, min(self.max_iter, left), left - (steps_left - 1) * self.max_iter)
        group = self.optimizer.param_groups[0]
        group["max_iter"] = n
        group["max_eval"] = max(self.max_eval, math.ceil(self.max_eval * n / self.max_iter))
        self._limits = (n, group["max_eval"])
        self._start = (self.used, int(self._state().get("func_evals", 0)))

    def after_step(self) -> bool:
        """Whether the step just made shows convergence: it stopped before its ``max_iter`` and
        ``max_eval`` (the gradient, or the change of loss or weights, fell below the tolerances)."""
        state = self._state()
        iters = int(state.get("n_iter", 0)) - self._start[0]
        evals = int(state.get("func_evals", 0)) - self._start[1]
        self.converged = iters < self._limits[0] and evals < self._limits[1]
        return self.converged


def convergence_summary(phases: Sequence[Phase], converged: Mapping[int, Mapping[str, int]]) -> str:
    """One sentence per phase that ended early, e.g. ``"phase 1 (lbfgs) converged after 412 of 15000
    iterations (41 steps)"``; empty when none did."""
    return "; ".join(
        f"phase {i} ({phases[i].name}) converged after {info['iterations']} of {phases[i].iterations} "
        f"iterations ({info['steps']} steps)" for i, info in sorted(converged.items()))


def completion(phases: Sequence[Phase], converged: Mapping[int, Mapping[str, int]]) -> tuple[str, str]:
    """``(reason, message)`` of a run that went to its end: ``"converged"`` when its last phase did
    (L-BFGS met its tolerance before its budget), else ``"completed"``; the message names the phases
    that converged."""
    reason = "converged" if len(phases) - 1 in converged else "completed"
    return reason, convergence_summary(phases, converged)
