"""What a Trainer checkpoint holds, and how it is captured and applied.

Checkpoint payload (format version 1; every value plain data, loadable with ``weights_only=True``):

==================  ===========================================================================
``model``           ``state_dict`` of the trained network (``task.model``, or the whole task)
``model_prefix``    its prefix inside the task's state dict (``"model."``, or ``""``)
``task_module``     the rest of the task's parameters and buffers
``task_state``      ``task.state_for_checkpoint()`` (normalisers, sampler state)
``optimizer``       optimiser ``state_dict`` of the current phase
``scheduler``       schedule ``state_dict`` or None
``scaler``          fp16 GradScaler ``state_dict`` or None
``combiner``        combiner state (momentum of M-ConFIG) or ``{}``
``callbacks``       callback states by ``"<class>#<i>"`` (early stopping)
``step``            completed optimiser steps
``epoch``           current epoch (0-based)
``batch_in_epoch``  batches of that epoch already consumed (this rank)
``phase``           index of the current phase
``converged``       L-BFGS phases in iterations that converged early: index ->
                    ``{"steps": steps run, "iterations": iterations made}`` (they are not run again)
``sampler``         seed, epoch, batches done, batch size, shuffle: the data order to continue
``rng``             global RNG states of rank 0 (python, numpy, torch, cuda)
``rng_per_rank``    under DDP: every rank's RNG states
``rollbacks``       NaN rollbacks so far
``model_spec``      JSON string: ``{"name": registry name, "kwargs": {...}}`` or ``null``
``problem``         JSON string: ``{"name": problem name, "params": {...}}`` or ``null``
``trainer``         JSON string of the Trainer settings
``format``,         added by :func:`~sciml.train.checkpoint.save_checkpoint`
``format_version``,
``versions``
==================  ===========================================================================
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, ConfigError
from . import checkpoint as ckpt
from .phases import phase_bounds, phase_dtype, set_task_dtype

# trainer.py imports this module; ``Trainer`` below means sciml.train.trainer.Trainer (not imported back).
Trainer = Any

__all__ = ["capture_state", "apply_state", "cpu_copy", "restore"]

#: settings that change what a resumed run computes; a mismatch warns
_RESUME_SENSITIVE = ("batch_size", "seed", "shuffle", "world_size", "total_steps")


def cpu_copy(obj: Any) -> Any:
    """Deep copy with every tensor cloned to CPU (state dicts share storage with the live model)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, Mapping):
        return {k: cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(cpu_copy(v) for v in obj)
    return copy.deepcopy(obj)


def _json_spec(name: str, spec: Any) -> str:
    try:
        return json.dumps(spec, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"task.{name}: expected a JSON-serialisable dict or None, got {spec!r} ({exc})") from None


def _callback_keys(trainer: Trainer) -> list[tuple[str, Any]]:
    """``("EarlyStopping#0", cb)``...: callbacks keyed by class and rank among their class, so that
    adding or removing a stateless callback between runs does not misplace the others' states."""
    seen: dict[str, int] = {}
    out = []
    for cb in trainer.callbacks:
        name = type(cb).__name__
        out.append((f"{name}#{seen.get(name, 0)}", cb))
        seen[name] = seen.get(name, 0) + 1
    return out


def capture_state(trainer: Trainer, *, to_cpu: bool = False) -> dict[str, Any]:
    """The trainer's complete state (see the module docstring); ``to_cpu`` makes an independent copy."""
    task = trainer.task
    prefix = task.model_prefix()
    full = task.state_dict()
    state = {
        "model": {k[len(prefix):]: v for k, v in full.items() if k.startswith(prefix)},
        "model_prefix": prefix,
        "task_module": {k: v for k, v in full.items() if not k.startswith(prefix)},
        "task_state": task.state_for_checkpoint(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": None if trainer.scheduler is None else trainer.scheduler.state_dict(),
        "scaler": None if trainer.scaler is None else trainer.scaler.state_dict(),
        "combiner": trainer.combiner.state_dict(),
        "callbacks": {key: cb_state for key, cb in _callback_keys(trainer) if (cb_state := cb.state_dict())},
        "step": trainer.step,
        "epoch": trainer.epoch,
        "batch_in_epoch": trainer.batch_in_epoch,
        "phase": trainer.phase_index,
        "converged": {int(i): dict(info) for i, info in trainer.converged.items()},
        "rollbacks": trainer.rollbacks,
        "last_eval_step": trainer._last_eval_step,
        "sampler": {"seed": trainer.seed, "epoch": trainer.epoch, "batches_done": trainer.batch_in_epoch,
                    "batch_size": trainer.batch_size, "shuffle": trainer.shuffle},
        "rng": ckpt.capture_rng_state(),
        "model_spec": _json_spec("model_spec", getattr(task, "model_spec", None)),
        "problem": _json_spec("problem_spec", getattr(task, "problem_spec", None)),
        "trainer": json.dumps(trainer.settings()),
    }
    return cpu_copy(state) if to_cpu else state


def _load_task(task: Any, state: Mapping[str, Any], where: str) -> None:
    """Weights, buffers and the task's own state (points, normalisers, sampler) from ``state``."""
    try:
        full = {state["model_prefix"] + k: v for k, v in state["model"].items()}
        full.update(state["task_module"])
        task.load_state_dict(full)
    except (KeyError, RuntimeError, TypeError) as exc:
        raise CheckpointError(f"{where}: does not match the task {type(task).__name__}: {exc}") from exc
    task.load_state_for_checkpoint(state["task_state"])


def restore(task: Any, run: str | os.PathLike[str], *, map_location: Any = "cpu") -> Path:
    """Load a trained run into a task built the same way: weights and task state, no optimiser.

    For tasks that :meth:`sciml.Solver.load` cannot rebuild from the checkpoint alone (PINNs: their
    problem, network and points are Python objects of the user's script)::

        task = PINNTask(problem, MLP(2, 1, [20] * 3, "tanh"), n_interior=2000)
        restore(task, "runs/burgers_pinn")
        u = task.predict(points)

    Parameters
    ----------
    task : Task
        Built as for training (same network and point counts).
    run : path
        A run directory (its newest good checkpoint is used) or one checkpoint file.
    map_location : str or torch.device
        Where tensors are loaded (the task's own device is kept by ``load_state_dict``).

    Returns
    -------
    Path
        The checkpoint file that was loaded.

    Raises
    ------
    CheckpointError
        No checkpoint, none that loads, or one that does not fit the task.
    """
    run = Path(run)
    if run.is_dir():
        found = ckpt.load_latest(run, map_location=map_location)
        if found is None:
            raise CheckpointError(f"{run}: no checkpoint found; train with out_dir={str(run)!r} first")
        path, state = found
    else:
        path, state = run, ckpt.load_checkpoint(run, map_location=map_location)
    _load_task(task, state, str(path))
    return path


def apply_state(trainer: Trainer, state: Mapping[str, Any], *, where: str, restore_rng: bool = True) -> None:
    """Load ``state`` into the trainer: weights, task state, optimiser, schedule, position, RNGs.

    Raises
    ------
    CheckpointError
        If the state does not fit the task or the run (other architecture, missing phase...).
    """
    phase = int(state["phase"])
    if not 0 <= phase < len(trainer.phases):
        raise CheckpointError(
            f"{where}: phase {phase} does not exist in this run ({len(trainer.phases)} phases)")
    # the weights go into a task of the phase's precision (float64 after an L-BFGS phase in float64)
    set_task_dtype(trainer.task, phase_dtype(trainer.phases, phase), f"{where}: phase {phase} precision")
    _load_task(trainer.task, state, where)
    _restore_converged(trainer, state.get("converged") or {}, where)
    try:
        saved = json.loads(state.get("trainer") or "{}")
    except ValueError:
        saved = {}
    now = trainer.settings()
    changed = {k: (saved[k], now[k]) for k in _RESUME_SENSITIVE if k in saved and saved[k] != now[k]}
    if changed:
        warnings.warn(f"{where}: resuming with changed settings {changed} (saved, now); the "
                      "continuation will differ from the uninterrupted run", RuntimeWarning, stacklevel=3)
    # Build first, then load: building a schedule rewrites the lr, loading restores it.
    trainer._build_phase(phase)
    try:
        trainer.optimizer.load_state_dict(state["optimizer"])
        if trainer.scheduler is not None and state.get("scheduler") is not None:
            trainer.scheduler.load_state_dict(state["scheduler"])
        if trainer.scaler is not None and state.get("scaler") is not None:
            trainer.scaler.load_state_dict(state["scaler"])
    except (KeyError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{where}: optimiser/schedule state does not fit this run: {exc}") from exc
    trainer.combiner.load_state_dict(state.get("combiner") or {})
    saved_callbacks = dict(state.get("callbacks") or {})
    for key, cb in _callback_keys(trainer):
        if key in saved_callbacks:
            cb.load_state_dict(saved_callbacks.pop(key))
    if saved_callbacks:
        warnings.warn(f"{where}: no callback to take the saved states of {sorted(saved_callbacks)}",
                      RuntimeWarning, stacklevel=3)
    trainer.step, trainer.epoch = int(state["step"]), int(state["epoch"])
    trainer.batch_in_epoch = int(state["batch_in_epoch"])
    trainer.rollbacks = int(state.get("rollbacks", 0))
    trainer._last_eval_step = int(state.get("last_eval_step", -1))
    if restore_rng:
        per_rank = state.get("rng_per_rank")
        if per_rank and len(per_rank) == trainer.dist.world_size:
            ckpt.restore_rng_state(per_rank[trainer.dist.rank])
        else:
            ckpt.restore_rng_state(state["rng"])


def _restore_converged(trainer: Trainer, converged: Mapping[Any, Any], where: str) -> None:
    """Phases that converged before the checkpoint end where they did: the run's length follows."""
    out: dict[int, dict[str, int]] = {}
    for key, info in converged.items():
        i = int(key)
        if not (0 <= i < len(trainer.phases) and trainer.phases[i].iterations is not None):
            raise CheckpointError(f"{where}: phase {i} converged in the checkpoint, but this run's phase "
                                  f"{i} is not an L-BFGS phase in iterations; resume with the phases of "
                                  "the saved run")
        out[i] = {"steps": int(info["steps"]), "iterations": int(info["iterations"])}
    trainer.converged = out
    trainer._bounds = phase_bounds(trainer.phases, out)
    trainer.total_steps = trainer._bounds[-1]
