"""Training: the Task contract, the Trainer, checkpoints and their helpers.

::

    from sciml.train import Trainer
    result = Trainer(task, train_data=ds, val_data={"64": val64}, epochs=10, out_dir="runs/a").fit()

See :mod:`sciml.train.task` for what a Task provides, :mod:`sciml.train.trainer` for the loop,
:mod:`sciml.train.checkpoint` for the on-disk format and :mod:`sciml.train.distributed` for DDP.
"""

from __future__ import annotations

from .callbacks import Callback, EarlyStopping
from .checkpoint import (
    capture_rng_state,
    find_resumable,
    list_checkpoints,
    load_checkpoint,
    load_latest,
    restore_rng_state,
    save_checkpoint,
    seed_everything,
)
from .device import move_to_device, resolve_device
from .logging import plot_history, read_history
from .state import restore
from .task import Task
from .trainer import Trainer, TrainResult

__all__ = [
    "Callback",
    "EarlyStopping",
    "Task",
    "TrainResult",
    "Trainer",
    "capture_rng_state",
    "find_resumable",
    "list_checkpoints",
    "load_checkpoint",
    "load_latest",
    "move_to_device",
    "plot_history",
    "read_history",
    "resolve_device",
    "restore",
    "restore_rng_state",
    "save_checkpoint",
    "seed_everything",
]

