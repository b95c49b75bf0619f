"""The Trainer: one training loop for every Task.

The Task says what the loss terms are; the Trainer does everything else: device, precision,
``torch.compile``, DDP under torchrun, optimiser phases (Adam then L-BFGS), schedules, gradient
clipping, the loss-term combiner, a NaN/Inf guard before every step, evaluation, early stopping,
logging, progress bars and crash-safe checkpoints from which a run resumes exactly.

One step, in order: ``task.sample()``; forward under autocast; ``combiner(terms, params)`` sets
``p.grad``; under DDP the gradients and the terms are averaged over ranks in one all-reduce; every
term (and, outside fp16, every gradient) is checked for finiteness *before* the optimiser touches
the weights; fp16 gradients are unscaled; clipping; optimiser step; per-step schedule; then
``task.on_step_end(step)``, logging, evaluation and checkpointing as due.
"""

from __future__ import annotations

import copy
import json
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from .._checks import check_name, check_positive_int
from ..errors import CheckpointError, ConfigError, DivergenceError
from ..optim.combine import Combiner, check_terms, get_combiner
from . import checkpoint as ckpt
from .callbacks import Callback, EarlyStopping, make_early_stopping
from .device import autocast, check_precision, move_to_device
from .distributed import (
    DistInfo,
    all_gather_objects,
    all_reduce_mean,
    average_gradients,
    broadcast_module,
    current_dist,
    setup_distributed,
    teardown_distributed,
)
from .loaders import batches_per_epoch, make_eval_loaders, make_train_loader, open_epoch
from .logging import MetricsLogger, make_progress, plot_history
from .phases import build_optimizer, build_scheduler, current_lr, parse_phases, scale_lr, step_scheduler
from .task import Task, batch_size_of, check_task

__all__ = ["Trainer", "TrainResult"]

NAN_POLICIES = ("raise", "rollback", "stop")


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns.

    ``reason`` is ``"completed"``, ``"early_stopped"``, ``"diverged"`` (``nan_policy="stop"``) or a
    reason given by a callback through ``trainer.request_stop``.
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


def _cpu_copy(obj: Any) -> Any:
    """Deep copy with every tensor cloned to CPU (state dicts share storage with the live model)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, Mapping):
        return {k: _cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu_copy(v) for v in obj)
    return copy.deepcopy(obj)


def _json_spec(name: str, spec: Any) -> str:
    try:
        return json.dumps(spec, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"task.{name}: expected a JSON-serialisable dict or None, got {spec!r} ({exc})") from None


class Trainer:
    """Train a :class:`~sciml.train.Task`.

    Parameters
    ----------
    task : Task
        What to train (owns the model and defines ``loss_terms``).
    train_data : Dataset, DataLoader or None
        Training samples; None for tasks that draw their own points in ``sample()``.
    val_data : Dataset, DataLoader, dict of them, or None
        Validation sets, reported as ``"<name>/<metric>"`` (a bare set is named ``"val"``).
        Without data at all, evaluation calls ``task.metrics(None)``.
    batch_size, val_batch_size : int
        Per-rank batch sizes (under DDP the global batch is ``world_size * batch_size``).
    shuffle, drop_last : bool
        Training order: a permutation seeded by ``(seed, epoch)``; drop the last partial batch.
    epochs, steps : int
        Length of the run (exactly one of them, unless ``phases`` gives it). ``epochs`` needs
        sized training data.
    optimizer : str or callable
        ``"adam"``, ``"adamw"``, ``"sgd"``, ``"lbfgs"`` or ``factory(params, lr=, weight_decay=, ...)``.
    lr, weight_decay : float
        Defaults for the (first-order) phases.
    schedule : None, "onecycle", "cosine", "step" or callable; schedule_kwargs : dict
        Learning-rate schedule over each phase, stepped per ``schedule_interval`` ("step" or
        "epoch").
    phases : list of (optimizer, n_steps[, options])
        Several phases, e.g. ``[("adam", 5000, {"lr": 1e-3}), ("lbfgs", 100, {})]``.
    grad_clip : float, optional
        Clip the global gradient norm (first-order optimisers).
    combiner : str or Combiner
        How loss terms make the update: ``"sum"`` (default), a ``Weighted({...})``, or any
        registered combiner.
    precision : {"fp32", "bf16", "fp16"}
        Autocast precision; fp16 uses a ``GradScaler``. Unsupported combinations raise ConfigError.
    compile : bool
        ``torch.compile`` the task's model (in place); a platform that cannot compile raises
        ConfigError at the first step.
    device : str
        ``"auto"`` (CUDA, then MPS, then CPU), or an explicit device. Under torchrun:
        ``cuda:LOCAL_RANK`` or CPU.
    seed : int
        Seeds python/numpy/torch at the start of a fresh run (``seed + rank`` under DDP, after
        rank 0's weights are broadcast) and the data order.
    out_dir : path, optional
        Run directory (rank 0 writes ``metrics.jsonl``, ``config.json``, ``result.json``,
        ``loss_curve.png`` and checkpoints). Without it nothing is written.
    checkpoint_every : int, optional
        Steps between checkpoints; a final checkpoint is always written when ``out_dir`` is set.
    keep_checkpoints : int
        Newest checkpoints kept on disk.
    log_every : int
        Steps between train records (means over the window).
    eval_every : int, optional
        Steps between evaluations. Default: at the end of every epoch when training on data,
        otherwise ten times per run. Always once at the end.
    early_stopping : EarlyStopping, int (patience), dict or None
        Stop when a validation metric stops improving.
    nan_policy : {"raise", "rollback", "stop"}
        On a non-finite loss term or gradient (weights untouched): raise DivergenceError; or
        restore the last good in-memory snapshot, multiply the lr by ``lr_factor`` and continue
        (at most ``max_rollbacks`` times, then DivergenceError); or stop with reason "diverged".
    snapshot_every : int, optional
        Steps between in-memory rollback snapshots (default ``checkpoint_every`` or 100).
    progress : bool or None
        tqdm bar; None shows it only when stderr is a terminal.
    num_workers : int
        DataLoader worker processes.
    callbacks : sequence of Callback
    resume : bool
        If ``out_dir`` holds checkpoints, continue from the newest good one when ``fit`` starts.
    """

    def __init__(
        self, task: Task, *, train_data: Dataset | DataLoader | None = None,
        val_data: Dataset | DataLoader | Mapping[str, Dataset | DataLoader] | None = None,
        batch_size: int = 32, val_batch_size: int | None = None, shuffle: bool = True, drop_last: bool = False,
        epochs: int | None = None, steps: int | None = None, optimizer: str | Callable[..., Any] = "adam",
        lr: float = 1e-3, weight_decay: float = 0.0, schedule: str | Callable[..., Any] | None = None,
        schedule_kwargs: Mapping[str, Any] | None = None, schedule_interval: str = "step",
        phases: Sequence[Any] | None = None, grad_clip: float | None = None, combiner: str | Combiner = "sum",
        precision: str = "fp32", compile: bool = False, device: str | torch.device = "auto", seed: int = 0,
        out_dir: str | Path | None = None, checkpoint_every: int | None = None, keep_checkpoints: int = 3,
        log_every: int = 50, eval_every: int | None = None,
        early_stopping: EarlyStopping | int | Mapping[str, Any] | None = None, nan_policy: str = "raise",
        max_rollbacks: int = 3, lr_factor: float = 0.5, snapshot_every: int | None = None,
        progress: bool | None = None, num_workers: int = 0, callbacks: Sequence[Callback] = (),
        resume: bool = False,
    ) -> None:
        self.task = check_task(task)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.val_batch_size = check_positive_int("val_batch_size", val_batch_size or batch_size)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"seed: expected an int, got {seed!r}")
        self.seed, self.shuffle, self.drop_last = seed, bool(shuffle), bool(drop_last)
        check_name("schedule_interval", schedule_interval, ("step", "epoch"))
        check_name("nan_policy", nan_policy, NAN_POLICIES)
        self.schedule_interval, self.nan_policy = schedule_interval, nan_policy
        if isinstance(max_rollbacks, bool) or not isinstance(max_rollbacks, int) or max_rollbacks < 0:
            raise ConfigError(f"max_rollbacks: expected an int >= 0, got {max_rollbacks!r}")
        self.max_rollbacks = max_rollbacks
        self.lr_factor = float(lr_factor)
        if not 0 < self.lr_factor <= 1:
            raise ConfigError(f"lr_factor: expected a number in (0, 1], got {lr_factor!r}")
        if grad_clip is not None and not (math.isfinite(float(grad_clip)) and float(grad_clip) > 0):
            raise ConfigError(f"grad_clip: expected None or a finite positive number, got {grad_clip!r}")
        self.grad_clip = None if grad_clip is None else float(grad_clip)
        self.log_every = check_positive_int("log_every", log_every)
        self.eval_every = None if eval_every is None else check_positive_int("eval_every", eval_every)
        self.checkpoint_every = None if checkpoint_every is None else check_positive_int(
            "checkpoint_every", checkpoint_every)
        self.keep_checkpoints = check_positive_int("keep_checkpoints", keep_checkpoints)
        self.snapshot_every = check_positive_int(
            "snapshot_every", snapshot_every or self.checkpoint_every or 100)
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ConfigError(f"num_workers: expected an int >= 0, got {num_workers!r}")
        if progress is not None and not isinstance(progress, bool):
            raise ConfigError(f"progress: expected None, True or False, got {progress!r}")
        self.progress = progress
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.resume_requested = bool(resume)
        if resume and self.out_dir is None:
            raise ConfigError("resume=True needs out_dir (the run directory to resume from)")
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise ConfigError(f"callbacks: expected Callback instances, got {type(cb).__name__}")
        self.callbacks: list[Callback] = list(callbacks)
        stopper = make_early_stopping(early_stopping)
        if stopper is not None:
            if val_data is None and train_data is not None:
                raise ConfigError("early_stopping needs val_data to watch a validation metric")
            self.callbacks.append(stopper)
        self.combiner = get_combiner(combiner)

        # device, process group, precision
        self.dist, self.device = setup_distributed(device)
        self.task.to(self.device)
        self.precision = precision
        self._amp_dtype = check_precision(precision, self.device)
        self.scaler: torch.amp.GradScaler | None = None
        if precision == "fp16":
            try:
                self.scaler = torch.amp.GradScaler(self.device.type)
            except Exception as exc:  # platform without a scaler for this device
                raise ConfigError(f"precision='fp16' needs a GradScaler on {self.device}: {exc}") from None
        self.compile = bool(compile)
        if self.compile:
            self.task.trained_model().compile()
        self._compiled_ok = not self.compile
        self._params = [p for p in self.task.parameters() if p.requires_grad]

        # data
        self._train_loader, self._sampler = make_train_loader(
            train_data, batch_size=self.batch_size, shuffle=self.shuffle, drop_last=self.drop_last,
            seed=self.seed, num_workers=num_workers, info=self.dist, device=self.device)
        self._val_data = val_data
        self._val_loaders = make_eval_loaders(val_data, batch_size=self.val_batch_size, num_workers=num_workers,
                                              info=self.dist, device=self.device)
        self.steps_per_epoch = batches_per_epoch(self._train_loader, self._sampler)

        # length of the run and its phases
        if phases is not None and (steps is not None or epochs is not None):
            raise ConfigError("give either phases (each with its steps) or steps/epochs, not both")
        if steps is not None and epochs is not None:
            raise ConfigError(f"give either steps or epochs, not both (got steps={steps}, epochs={epochs})")
        if phases is None:
            if steps is None and epochs is None:
                raise ConfigError("the run needs a length: steps=..., epochs=... or phases=[...]")
            if epochs is not None:
                epochs = check_positive_int("epochs", epochs)
                if self.steps_per_epoch is None:
                    raise ConfigError("epochs needs sized training data (a Dataset with __len__); use steps")
                steps = epochs * self.steps_per_epoch
            steps = check_positive_int("steps", steps)
        self.phases = parse_phases(phases, optimizer=optimizer, steps=steps, lr=lr, weight_decay=weight_decay,
                                   schedule=schedule, schedule_kwargs=schedule_kwargs)
        if self.scaler is not None and any(p.is_lbfgs for p in self.phases):
            raise ConfigError("precision='fp16' cannot be combined with L-BFGS (a GradScaler cannot drive a "
                              "closure-based optimiser); use 'bf16' or 'fp32'")
        self._bounds = [0]
        for phase in self.phases:
            self._bounds.append(self._bounds[-1] + phase.steps)
        self.total_steps = self._bounds[-1]
        self._default_eval_every = max(1, self.total_steps // 10)

        # loop state
        self.step = self.epoch = self.batch_in_epoch = 0
        self.phase_index = -1
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: Any = None
        self.rollbacks = 0
        self._iter: Any = None
        self._stop: tuple[str, str] | None = None
        self._snapshot: dict[str, Any] | None = None
        self._resumed = False
        self._last_eval_step = -1
        self._last_ckpt: Path | None = None
        self._last_ckpt_step = -1
        self._window: list[list[float]] = []
        self._term_names: list[str] = []
        self.last_metrics: dict[str, float] = {}
        self._t0 = time.perf_counter()
        path = self.out_dir / "metrics.jsonl" if (self.out_dir is not None and self.dist.is_main) else None
        self.logger = MetricsLogger(path)

    # -- public API ---------------------------------------------------------------------------
    @property
    def history(self) -> list[dict[str, Any]]:
        """All records logged so far (train, val, events)."""
        return self.logger.records

    def request_stop(self, reason: str, message: str = "") -> None:
        """Ask the loop to stop after the current step (used by callbacks)."""
        self._stop = (str(reason), str(message))

    def resume(self, path: str | Path | None = None) -> Trainer:
        """Load the state of a checkpoint file, or of the newest good checkpoint of a run directory.

        Returns ``self``, so ``Trainer(task, ...).resume(run_dir).fit()`` continues the run.
        """
        path = Path(path) if path is not None else self.out_dir
        if path is None:
            raise ConfigError("resume: give a checkpoint file or run directory, or set out_dir")
        if path.is_dir():
            found = ckpt.load_latest(path, map_location="cpu")
            if found is None:
                raise CheckpointError(f"{path}: no checkpoint to resume from")
            path, state = found
        else:
            state = ckpt.load_checkpoint(path, map_location="cpu")
        self._load_state(state, where=str(path))
        self._last_ckpt, self._last_ckpt_step = path, self.step
        self.logger.truncate_after(self.step)
        self._log_event("resume", checkpoint=path.name)
        self._resumed = True
        return self

    def fit(self) -> TrainResult:
        """Train until the run's length, early stopping, a stop request or divergence."""
        progress = None
        try:
            self._t0 = time.perf_counter()
            if self.resume_requested and not self._resumed and ckpt.list_checkpoints(self.out_dir):
                self.resume(self.out_dir)
            if not self._resumed:
                if self.out_dir is not None and ckpt.list_checkpoints(self.out_dir):
                    raise ConfigError(
                        f"out_dir {self.out_dir} holds checkpoints of another run; pass resume=True to continue "
                        "it, or use a new directory")
                self.logger.truncate_after(-1)  # a fresh run starts a fresh log
                broadcast_module(self.task, self.dist)
                ckpt.seed_everything(self.seed + self.dist.rank)
                self._log_event("start", total_steps=self.total_steps, world_size=self.dist.world_size)
                self._write_config()
            self._ensure_phase()
            if self.nan_policy == "rollback":
                self._snapshot = self._capture(copy_to_cpu=True)
            for cb in self.callbacks:
                cb.on_fit_start(self)
            progress = make_progress(self.total_steps, self.step, self.progress, self.dist.is_main)
            while self.step < self.total_steps and self._stop is None:
                self._ensure_phase()
                if self.nan_policy == "rollback" and self.step % self.snapshot_every == 0 and self.step > 0:
                    self._snapshot = self._capture(copy_to_cpu=True)
                batch = self._next_batch()
                if self._stop is not None:
                    break
                self.task.train()
                self.task.sample()
                try:
                    values = self._step(batch)
                except _NonFinite as bad:
                    if self._handle_divergence(bad):
                        continue
                    break
                self._after_step(values)
                progress.update(1)
                if self.step % self.log_every == 0:
                    progress.set_postfix(loss=f"{values[-1]:.3e}")
            return self._finish()
        except BaseException:
            teardown_distributed(self.dist, barrier=False)
            raise
        finally:
            if progress is not None:
                progress.close()

    def evaluate(self, val_data: Any = None) -> dict[str, float]:
        """Metrics on the validation sets (or on ``val_data``), averaged over all samples and ranks.

        Runs in eval mode under ``no_grad`` (unless ``task.metrics_need_grad``) and leaves every
        global RNG exactly as it found it, so evaluating does not change the training run.
        """
        info = current_dist() if self.dist.is_distributed else self.dist
        if val_data is None and info.world_size != self.dist.world_size:
            val_data = self._val_data  # the process group is gone: evaluate everything here
        loaders = self._val_loaders if val_data is None else make_eval_loaders(
            val_data, batch_size=self.val_batch_size, num_workers=0, info=info, device=self.device)
        rng = ckpt.capture_rng_state()
        was_training = self.task.training
        self.task.eval()
        try:
            if not loaders:
                if self._train_loader is not None:
                    return {}
                loaders = {"val": [None]}  # self-sampling task: one call to metrics(None)
            results = {}
            for name, loader in loaders.items():
                sums, count = self._metric_sums(loader)
                for part_sums, part_count in all_gather_objects((sums, count), info)[1:]:
                    for k, v in part_sums.items():
                        sums[k] = sums.get(k, 0.0) + v
                    count += part_count
                results.update({f"{name}/{k}": v / max(count, 1) for k, v in sums.items()})
            return results
        finally:
            self.task.train(was_training)
            ckpt.restore_rng_state(rng)

    def _handle_divergence(self, bad: _NonFinite) -> bool:
        """Apply nan_policy; True to continue the loop, False to stop."""
        where = f"at step {self.step + 1} (phase {self.phase_index}: {self.phases[self.phase_index].name})"
        self._log_event("nonfinite", what=bad.what, detail=bad.detail)
        if self.nan_policy == "raise":
            raise DivergenceError(f"non-finite {bad.what} {where}: {bad.detail}; the weights were not updated "
                                  "(nan_policy='rollback' retries with a smaller learning rate)")
        if self.nan_policy == "stop":
            self.request_stop("diverged", f"non-finite {bad.what} {where}: {bad.detail}")
            return False
        if self.rollbacks >= self.max_rollbacks:
            raise DivergenceError(f"non-finite {bad.what} {where}: {bad.detail}; giving up after "
                                  f"{self.rollbacks} rollbacks (max_rollbacks={self.max_rollbacks})")
        failed_step = self.step + 1
        self._load_state(self._snapshot, where="rollback snapshot", restore_rng=False)
        scale_lr(self.optimizer, self.scheduler, self.lr_factor)
        self.rollbacks += 1
        self._snapshot = self._capture(copy_to_cpu=True)  # later rollbacks compound the reduction
        self._log_event("rollback", failed_step=failed_step, to_step=self.step, lr=current_lr(self.optimizer),
                        rollbacks=self.rollbacks)
        return True

    def _after_step(self, values: list[float]) -> None:
        self.step += 1
        if self.schedule_interval == "step":
            step_scheduler(self.scheduler)
        self.task.on_step_end(self.step)
        self._window.append(values)
        logs = {"loss": values[-1], **{f"loss/{n}": v for n, v in zip(self._term_names, values)}}
        if self.step % self.log_every == 0 or self.step == self.total_steps:
            self._log_train()
        for cb in self.callbacks:
            cb.on_step_end(self, self.step, logs)
        every = self.eval_every or (None if self._train_loader is not None else self._default_eval_every)
        if every is not None and self.step % every == 0:
            self._run_eval()
        if self.checkpoint_every is not None and self.step % self.checkpoint_every == 0:
            self._save()

    # -- data and epochs ----------------------------------------------------------------------
    def _next_batch(self) -> Any:
        if self._train_loader is None:
            return None
        while True:
            if self._iter is None:
                self._iter = open_epoch(self._train_loader, self._sampler, epoch=self.epoch,
                                        skip_batches=self.batch_in_epoch, batch_size=self.batch_size, seed=self.seed)
            try:
                batch = next(self._iter)
            except StopIteration:
                self._iter = None
                if self.batch_in_epoch == 0:
                    raise ConfigError(f"train_data produced no batch in epoch {self.epoch}") from None
                self._end_epoch()
                if self._stop is not None:
                    return None
                continue
            self.batch_in_epoch += 1
            return move_to_device(batch, self.device)

    def _end_epoch(self) -> None:
        self.epoch += 1
        self.batch_in_epoch = 0
        if self.schedule_interval == "epoch":
            step_scheduler(self.scheduler)
        if self.eval_every is None:
            self._run_eval()

    # -- phases -------------------------------------------------------------------------------
    def _phase_at(self, step: int) -> int:
        for i in range(len(self.phases)):
            if step < self._bounds[i + 1]:
                return i
        return len(self.phases) - 1

    def _ensure_phase(self) -> None:
        index = self._phase_at(self.step)
        if index == self.phase_index and self.optimizer is not None:
            return
        self._build_phase(index)
        if self.step > 0:
            self._log_event("phase", phase=index, optimizer=self.phases[index].name)

    def _build_phase(self, index: int) -> None:
        phase = self.phases[index]
        self.phase_index = index
        self.optimizer = build_optimizer(phase, self._params)
        n_updates = phase.steps
        if self.schedule_interval == "epoch" and self.steps_per_epoch:
            n_updates = math.ceil(phase.steps / self.steps_per_epoch)
        self.scheduler = build_scheduler(phase, self.optimizer, n_updates)

    # -- evaluation, logging, checkpoints -----------------------------------------------------
    def _metric_sums(self, loader: Any) -> tuple[dict[str, float], float]:
        sums: dict[str, float] = {}
        count = 0.0
        grad = torch.enable_grad() if getattr(self.task, "metrics_need_grad", False) else torch.no_grad()
        for batch in loader:
            batch = move_to_device(batch, self.device)
            with grad, autocast(self.device, self._amp_dtype):
                metrics = self.task.metrics(batch)
            if not isinstance(metrics, Mapping):
                raise ConfigError(f"{type(self.task).__name__}.metrics: expected a dict of numbers, got {metrics!r}")
            n = batch_size_of(batch)
            for k, v in metrics.items():
                try:
                    sums[str(k)] = sums.get(str(k), 0.0) + float(v) * n
                except (TypeError, ValueError):
                    raise ConfigError(f"{type(self.task).__name__}.metrics[{k!r}]: expected a number, got {v!r}") from None
            count += n
        return sums, count

    def _run_eval(self) -> None:
        if self._last_eval_step == self.step or (not self._val_loaders and self._train_loader is not None):
            return
        self._last_eval_step = self.step
        self.last_metrics = self.evaluate()
        self.logger.log({"kind": "val", "step": self.step, "epoch": self.epoch, "time": self._elapsed(),
                         **self.last_metrics})
        for cb in self.callbacks:
            cb.on_evaluate(self, self.step, self.last_metrics)

    def _log_train(self) -> None:
        if not self._window:
            return
        n = len(self._window)
        means = [sum(col) / n for col in zip(*self._window)]
        self._window = []
        record = {"kind": "train", "step": self.step, "epoch": self.epoch, "time": self._elapsed(),
                  "phase": self.phase_index, "lr": current_lr(self.optimizer), "loss": means[-1]}
        record.update({f"loss/{name}": v for name, v in zip(self._term_names, means)})
        self.logger.log(record)

    def _log_event(self, event: str, **details: Any) -> None:
        self.logger.log({"kind": "event", "step": self.step, "epoch": self.epoch, "time": self._elapsed(),
                         "event": event, **details})

    def _elapsed(self) -> float:
        return round(time.perf_counter() - self._t0, 4)

    def _config(self) -> dict[str, Any]:
        return {"task": type(self.task).__name__, "batch_size": self.batch_size, "seed": self.seed,
                "shuffle": self.shuffle, "drop_last": self.drop_last, "total_steps": self.total_steps,
                "world_size": self.dist.world_size, "precision": self.precision, "combiner": repr(self.combiner),
                "phases": [{"optimizer": p.name, "steps": p.steps, "options": {k: repr(v) if not isinstance(
                    v, (int, float, str, bool, type(None))) else v for k, v in p.options.items()},
                    "schedule": p.schedule if isinstance(p.schedule, (str, type(None))) else repr(p.schedule)}
                    for p in self.phases],
                "schedule_interval": self.schedule_interval, "grad_clip": self.grad_clip,
                "nan_policy": self.nan_policy, "device": str(self.device), "compile": self.compile}

    def _write_config(self) -> None:
        if self.out_dir is not None and self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            ckpt.atomic_write_bytes(self.out_dir / "config.json", json.dumps(self._config(), indent=1).encode())

    def _capture(self, copy_to_cpu: bool = False) -> dict[str, Any]:
        """The complete training state (what a checkpoint holds), as plain data."""
        prefix = self.task.model_prefix()
        full = self.task.state_dict()
        model = {k[len(prefix):]: v for k, v in full.items() if k.startswith(prefix)}
        rest = {k: v for k, v in full.items() if not k.startswith(prefix)}
        state = {
            "model": model, "model_prefix": prefix, "task_module": rest,
            "task_state": self.task.state_for_checkpoint(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "scaler": None if self.scaler is None else self.scaler.state_dict(),
            "combiner": self.combiner.state_dict(),
            "callbacks": [cb.state_dict() for cb in self.callbacks],
            "step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
            "phase": self.phase_index, "rollbacks": self.rollbacks, "last_eval_step": self._last_eval_step,
            "sampler": {"seed": self.seed, "epoch": self.epoch, "batches_done": self.batch_in_epoch,
                        "batch_size": self.batch_size, "shuffle": self.shuffle},
            "rng": ckpt.capture_rng_state(),
            "model_spec": _json_spec("model_spec", getattr(self.task, "model_spec", None)),
            "problem": _json_spec("problem_spec", getattr(self.task, "problem_spec", None)),
            "trainer": json.dumps(self._config()),
        }
        return _cpu_copy(state) if copy_to_cpu else state

    def _load_state(self, state: Mapping[str, Any], *, where: str, restore_rng: bool = True) -> None:
        try:
            full = {state["model_prefix"] + k: v for k, v in state["model"].items()}
            full.update(state["task_module"])
            self.task.load_state_dict(full)
        except (KeyError, RuntimeError) as exc:
            raise CheckpointError(f"{where}: does not match the task {type(self.task).__name__}: {exc}") from exc
        self.task.load_state_for_checkpoint(state["task_state"])
        saved = json.loads(state.get("trainer", "{}"))
        changed = {k: (saved[k], v) for k, v in self._config().items()
                   if k in ("batch_size", "seed", "shuffle", "world_size", "total_steps") and k in saved and saved[k] != v}
        if changed:
            warnings.warn(f"{where}: resuming with changed settings {changed} (saved, now); the continuation is "
                          "not the uninterrupted run", RuntimeWarning, stacklevel=3)
        phase = int(state["phase"])
        if not 0 <= phase < len(self.phases):
            raise CheckpointError(f"{where}: phase {phase} does not exist in this run ({len(self.phases)} phases)")
        self._build_phase(phase)
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None and state.get("scheduler") is not None:
                self.scheduler.load_state_dict(state["scheduler"])
            if self.scaler is not None and state.get("scaler") is not None:
                self.scaler.load_state_dict(state["scaler"])
        except (KeyError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"{where}: optimiser/schedule state does not fit this run: {exc}") from exc
        self.combiner.load_state_dict(state.get("combiner") or {})
        saved_cbs = state.get("callbacks") or []
        if len(saved_cbs) == len(self.callbacks):
            for cb, cb_state in zip(self.callbacks, saved_cbs):
                cb.load_state_dict(cb_state)
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self.rollbacks = int(state.get("rollbacks", 0))
        self._last_eval_step = int(state.get("last_eval_step", -1))
        self._iter, self._window, self._stop = None, [], None
        if restore_rng:
            rngs = state.get("rng_per_rank")
            if rngs and len(rngs) == self.dist.world_size:
                ckpt.restore_rng_state(rngs[self.dist.rank])
            else:
                ckpt.restore_rng_state(state["rng"])

    def _save(self) -> None:
        if self.out_dir is None or self._last_ckpt_step == self.step:
            return
        state = self._capture()
        if self.dist.is_distributed:  # every rank's RNG, so each continues its own stream
            state["rng_per_rank"] = all_gather_objects(state["rng"], self.dist)
        path = None
        if self.dist.is_main:
            path = ckpt.save_checkpoint(self.out_dir, state, step=self.step, keep=self.keep_checkpoints)
            self._last_ckpt = path
        self._last_ckpt_step = self.step
        for cb in self.callbacks:
            cb.on_checkpoint(self, path)

    def _finish(self) -> TrainResult:
        reason, message = self._stop or ("completed", "")
        self._log_train()
        self._run_eval()
        if reason != "completed":
            self._log_event("stop", reason=reason, message=message)
        self._save()
        metrics = dict(self.last_metrics)
        train = [r for r in self.history if r.get("kind") == "train"]
        if train:
            metrics["train/loss"] = float(train[-1]["loss"])
        epochs = self.step / self.steps_per_epoch if self.steps_per_epoch else None
        result = TrainResult(reason=reason, steps=self.step, epochs=epochs, metrics=metrics,
                             history=list(self.history), out_dir=self.out_dir, checkpoint=self._last_ckpt,
                             rollbacks=self.rollbacks, wall_time=self._elapsed(), message=message)
        if self.out_dir is not None and self.dist.is_main:
            summary = {"reason": reason, "message": message, "steps": self.step, "epochs": epochs,
                       "metrics": metrics, "rollbacks": self.rollbacks, "wall_time": result.wall_time,
                       "checkpoint": None if self._last_ckpt is None else self._last_ckpt.name}
            ckpt.atomic_write_bytes(self.out_dir / "result.json", json.dumps(summary, indent=1).encode())
            try:
                plot_history(self.out_dir / "metrics.jsonl", self.out_dir / "loss_curve.png")
            except ImportError as exc:  # matplotlib is optional for training
                warnings.warn(f"loss_curve.png not written: {exc}", RuntimeWarning, stacklevel=2)
        for cb in self.callbacks:
            cb.on_fit_end(self, result)
        teardown_distributed(self.dist)
        return result
