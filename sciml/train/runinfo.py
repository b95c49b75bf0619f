"""What a run returns (:class:`TrainResult`) and reports about its cost: parameters, seconds per epoch.

The :class:`~sciml.train.Trainer` logs both (``params`` in the ``start`` event, a ``timing`` event at
the end) and returns them in its :class:`TrainResult`. Training time is the
wall time of the training loop in this process minus the time spent evaluating and writing
checkpoints, so seconds per epoch compare models fairly whatever their evaluation schedule; after a
resume it covers the steps run since the resume.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

__all__ = ["TrainResult", "count_parameters", "RunClock"]


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns.

    ``reason`` is ``"completed"``, ``"early_stopped"``, ``"diverged"`` (``nan_policy="stop"``) or a
    reason given by a callback through ``trainer.request_stop``. ``metrics`` holds the last
    evaluation (``"<set>/<metric>"``) and ``"train/loss"`` (mean over the last log window).
    ``params`` counts the trained parameters; ``train_seconds`` and ``s_per_epoch`` time this process's
    training steps without evaluation and checkpoints (:mod:`sciml.train.runinfo`).
    """

    reason: str
    steps: int
    epochs: float | None
    metrics: dict[str, float]
    history: list[dict[str, Any]] = field(repr=False)
    out_dir: Path | None = None
    checkpoint: Path | None = None
    rollbacks: int = 0
    wall_time: float = 0.0
    message: str = ""
    params: int = 0
    s_per_epoch: float | None = None
    train_seconds: float = 0.0


def count_parameters(params: Iterable[torch.Tensor]) -> int:
    """Real numbers in ``params`` (a complex entry counts twice, as FNO's spectral weights do)."""
    return int(sum(p.numel() * (2 if p.is_complex() else 1) for p in params))


class RunClock:
    """Training seconds of a loop: :meth:`start` it, wrap what is not training in :meth:`paused`.

    >>> clock = RunClock(); clock.start(step=0)
    >>> with clock.paused():
    ...     pass  # evaluation, checkpoints
    >>> clock.stop(step=10)["steps"]
    10
    """

    def __init__(self) -> None:
        self._start: float | None = None
        self._paused = 0.0
        self._first_step = 0

    def start(self, step: int) -> None:
        self._start, self._paused, self._first_step = time.perf_counter(), 0.0, int(step)

    @contextmanager
    def paused(self) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._paused += time.perf_counter() - t0

    def stop(self, step: int, steps_per_epoch: int | None = None) -> dict[str, float | int | None]:
        """``{"train_seconds", "steps", "s_per_epoch"}`` since :meth:`start` (``s_per_epoch`` None
        without epochs or steps)."""
        seconds = 0.0 if self._start is None else time.perf_counter() - self._start - self._paused
        steps = int(step) - self._first_step
        per_epoch = None
        if steps_per_epoch and steps > 0:
            per_epoch = seconds / (steps / steps_per_epoch)
        return {"train_seconds": round(seconds, 4), "steps": steps,
                "s_per_epoch": None if per_epoch is None else round(per_epoch, 4)}
