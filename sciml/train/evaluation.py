"""Evaluation of a Task on named data sets: exact sample-weighted means, reduced over ranks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch

from ..errors import ConfigError
from . import checkpoint as ckpt
from .device import autocast, move_to_device
from .distributed import DistInfo, all_gather_objects
from .task import Task, batch_size_of

__all__ = ["evaluate_task"]


def _metric_sums(task: Task, loader: Iterable[Any], device: torch.device,
                 amp_dtype: torch.dtype | None) -> tuple[dict[str, float], float]:
    """Per-metric sums of ``metric * batch size`` over ``loader``, and the number of samples."""
    sums: dict[str, float] = {}
    count = 0.0
    name = type(task).__name__
    for batch in loader:
        batch = move_to_device(batch, device)
        grad = torch.enable_grad() if task.metrics_need_grad else torch.no_grad()
        with grad, autocast(device, amp_dtype):
            metrics = task.metrics(batch)
        if not isinstance(metrics, Mapping):
            raise ConfigError(f"{name}.metrics: expected a dict of numbers, got {type(metrics).__name__}")
        n = batch_size_of(batch)
        for key, value in metrics.items():
            try:
                sums[str(key)] = sums.get(str(key), 0.0) + float(value) * n
            except (TypeError, ValueError):
                raise ConfigError(f"{name}.metrics[{key!r}]: expected a number, got {value!r}") from None
        count += n
    return sums, count


def evaluate_task(
    task: Task, loaders: Mapping[str, Iterable[Any]], *, device: torch.device, amp_dtype: torch.dtype | None,
    info: DistInfo,
) -> dict[str, float]:
    """``{"<set>/<metric>": mean}`` over every sample of every set, on all ranks together.

    ``task.metrics`` gives per-batch means; they are weighted by the batch sizes, and the
    per-rank sums and counts are gathered, so the result is the exact mean over the data set
    whatever the batching and sharding (the ranks' shards may differ in size). The task runs in
    eval mode, under ``no_grad`` unless ``task.metrics_need_grad``, and every global RNG is
    restored afterwards: evaluating in the middle of a run does not change its course.
    """
    rng = ckpt.capture_rng_state()
    was_training = task.training
    task.eval()
    try:
        results: dict[str, float] = {}
        for name, loader in loaders.items():
            total: dict[str, float] = {}
            n = 0.0
            for sums, count in all_gather_objects(_metric_sums(task, loader, device, amp_dtype), info):
                for key, value in sums.items():
                    total[key] = total.get(key, 0.0) + value
                n += count
            results.update({f"{name}/{key}": value / max(n, 1.0) for key, value in total.items()})
        return results
    finally:
        task.train(was_training)
        ckpt.restore_rng_state(rng)
