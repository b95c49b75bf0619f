"""The Task contract: what a training method must provide to the :class:`~sciml.train.Trainer`.

A Task is an :class:`torch.nn.Module` that owns the trained network (and anything else with
parameters or buffers) and knows how to turn a batch into named loss terms. Everything else
(device, precision, optimiser, DDP, checkpoints, logging) is the Trainer's job, so the same Task
trains on a laptop CPU or under ``torchrun`` without changes.

Required
--------
``loss_terms(batch) -> dict[str, Tensor]``
    Named scalar loss terms (``{"data": mse}`` or ``{"pde": r, "bc": b, "ic": i}``), each a
    0-d float tensor with its autograd graph. The Trainer's combiner (Sum, Weighted, ConFIG...)
    decides how they make one update. Terms should be *means* over the batch, so that the DDP
    average over ranks equals the mean over the global batch.

Optional
--------
``metrics(batch) -> dict[str, float]``
    Evaluation numbers for one batch, each a mean over the batch (the Trainer weights batches
    by their size, so the result is a mean over the data set). Runs in eval mode under
    ``torch.no_grad()`` unless the class sets ``metrics_need_grad = True`` (PINN residuals).
    The default evaluates ``loss_terms`` and reports every term and their sum ``loss``.
``sample()``
    Called before every training step. Self-sampling tasks (PINNs) draw their collocation
    points here, from the global torch / numpy RNGs (which the Trainer seeds, checkpoints and
    restores) or from a generator they checkpoint themselves. Without training data the batch
    passed to ``loss_terms`` is ``None``.
``on_step_end(step)``
    Called after every optimiser step with the number of completed steps (adaptive samplers).
``state_for_checkpoint() -> dict`` / ``load_state_for_checkpoint(state)``
    Extra state that is not a parameter or buffer (fitted normalisers, sampler state). It must
    be loadable with ``torch.load(weights_only=True)``: tensors, numbers, strings, lists, tuples
    and dicts of those.

Attributes the checkpoint records
---------------------------------
``model``
    The network being trained, an ``nn.Module`` registered as a submodule of the Task. The
    checkpoint stores its ``state_dict`` on its own (key ``"model"``) so that a Solver can
    rebuild it from ``model_spec`` without the Task; with ``compile=True`` it is the module the
    Trainer compiles. Without ``model`` the whole Task is treated as the model.
``model_spec``
    ``{"name": <registry name>, "kwargs": {...}}``, JSON-serialisable, or ``None``.
``problem_spec``
    ``{"name": <problem name>, "params": {...}}``, JSON-serialisable, or ``None``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ConfigError

__all__ = ["Task", "batch_size_of", "check_task"]


class Task(nn.Module):
    """Base class of every trainable method (operator learning, PINNs, learned solvers...).

    Subclasses call ``super().__init__()``, register their network(s) as attributes and
    implement :meth:`loss_terms`. See the module docstring for the full contract.

    Examples
    --------
    >>> class Regression(Task):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.model = nn.Linear(3, 1)
    ...     def loss_terms(self, batch):
    ...         x, y = batch
    ...         return {"mse": ((self.model(x) - y) ** 2).mean()}
    """

    #: Run :meth:`metrics` with autograd enabled (needed when metrics differentiate the model).
    metrics_need_grad: bool = False
    #: Registry name and constructor kwargs of ``model`` (stored in checkpoints), or None.
    model_spec: dict[str, Any] | None = None
    #: Problem name and parameters (stored in checkpoints), or None.
    problem_spec: dict[str, Any] | None = None

    def loss_terms(self, batch: Any) -> dict[str, Tensor]:
        """Named scalar loss terms for one batch (``None`` for self-sampling tasks)."""
        raise NotImplementedError(f"{type(self).__name__} must implement loss_terms(batch)")

    def metrics(self, batch: Any) -> dict[str, float]:
        """Evaluation metrics for one batch; by default the loss terms and their sum."""
        terms = self.loss_terms(batch)
        out = {name: float(value.detach().float()) for name, value in terms.items()}
        out["loss"] = float(sum(out.values()))
        return out

    def sample(self) -> None:
        """Hook called before every step; self-sampling tasks draw their points here."""

    def on_step_end(self, step: int) -> None:
        """Hook called after every optimiser step with the number of completed steps."""

    def state_for_checkpoint(self) -> dict[str, Any]:
        """Extra state (normalisers, sampler state) to store in checkpoints."""
        return {}

    def load_state_for_checkpoint(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_for_checkpoint` returned."""
        if state:
            raise ConfigError(
                f"{type(self).__name__}: the checkpoint holds extra task state {sorted(state)} but the "
                "task does not implement load_state_for_checkpoint()"
            )

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[None]:
        """Eval mode (dropout off, a measurement-sampling model on all its inputs) and ``no_grad``
        for the block, then the mode the task was in: errors computed right after training are the
        trained model's, not one dropout draw's."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.train(was_training)

    # -- helpers used by the Trainer --------------------------------------------------------
    def trained_model(self) -> nn.Module:
        """The network being trained: ``self.model`` if it is a submodule, else the Task itself."""
        model = getattr(self, "model", None)
        if model is None:
            return self
        if not isinstance(model, nn.Module):
            raise ConfigError(
                f"{type(self).__name__}.model: expected an nn.Module, got {type(model).__name__}"
            )
        if not any(m is model for m in self.children()):
            raise ConfigError(
                f"{type(self).__name__}.model is not a registered submodule; assign it as an attribute "
                "after super().__init__() so that it moves with the task and is checkpointed"
            )
        return model

    def model_prefix(self) -> str:
        """State-dict prefix of :meth:`trained_model` inside the task ('' for the task itself)."""
        model = self.trained_model()
        if model is self:
            return ""
        for name, child in self.named_children():
            if child is model:
                return name + "."
        raise ConfigError(f"{type(self).__name__}: cannot locate the model among the submodules")


def batch_size_of(batch: Any) -> int:
    """Number of samples in a batch: the leading size of its first tensor (1 for ``None``).

    Batches may be tensors, or (nested) tuples, lists and dicts of tensors.
    """
    if batch is None:
        return 1
    if isinstance(batch, Tensor):
        return int(batch.shape[0]) if batch.ndim > 0 else 1
    if isinstance(batch, dict):
        items = list(batch.values())
    elif isinstance(batch, (list, tuple)):
        items = list(batch)
    else:
        return 1
    for item in items:
        if isinstance(item, (Tensor, dict, list, tuple)):
            return batch_size_of(item)
    return 1


def check_task(task: Any) -> Task:
    """Raise ConfigError unless ``task`` is a :class:`Task` with trainable parameters."""
    if not isinstance(task, Task):
        raise ConfigError(
            f"Trainer: expected a sciml.train.Task (an nn.Module with loss_terms(batch)), "
            f"got {type(task).__name__}"
        )
    if not any(p.requires_grad for p in task.parameters()):
        raise ConfigError(f"Trainer: the task {type(task).__name__} has no trainable parameters")
    task.trained_model()  # validates ``model`` early
    return task
