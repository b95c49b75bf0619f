"""The Trainer: one training loop for every Task.

The Task says what the loss terms are; the Trainer does everything else: device, precision,
``torch.compile``, DDP under torchrun, optimiser phases (Adam then L-BFGS), schedules, gradient
clipping, the loss-term combiner, a NaN/Inf guard before every step, evaluation, early stopping,
logging, progress bars and crash-safe checkpoints from which a run resumes exactly.

A step, in order: fetch the batch (an epoch ends when its iterator is exhausted: epoch schedule,
evaluation); ``task.sample()``; :class:`~sciml.train.step.StepEngine` (forward, combiner, DDP
average, guard, optimiser); per-step schedule; ``task.on_step_end(step)``; logging, callbacks,
evaluation and checkpoint as due. A checkpoint taken after step ``s`` holds everything the rest
of the run depends on (weights, optimiser, schedule, data position, RNG streams), so a resumed run
repeats exactly what the uninterrupted one would have done.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from .._checks import check_int_at_least, check_name, check_positive_int
from ..errors import CheckpointError, ConfigError, DivergenceError
from ..optim.combine import Combiner, get_combiner
from . import checkpoint as ckpt
from .callbacks import Callback, EarlyStopping, make_early_stopping
from .device import check_precision, compile_in_place, move_to_device
from .distributed import all_gather_objects, barrier, broadcast_module, current_dist, setup_distributed
from .evaluation import evaluate_task
from .loaders import batches_per_epoch, make_eval_loaders, make_train_loader, open_epoch
from .logging import MetricsLogger, write_run_summary
from .phases import (
    LBFGSBudget,
    build_optimizer,
    build_scheduler,
    completion,
    convergence_summary,
    current_lr,
    parse_phases,
    phase_bounds,
    phase_dtype,
    run_length,
    scale_lr,
    set_task_dtype,
    step_scheduler,
)
from .progress import Progress, progress_mode
from .runinfo import RunClock, TrainResult, count_parameters
from .state import apply_state, capture_state
from .step import NonFiniteStep, StepEngine
from .task import Task, check_task

__all__ = ["Trainer", "TrainResult"]

NAN_POLICIES = ("raise", "rollback", "stop")


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
    phases : list of (optimizer, n_steps[, options]) or (optimizer, options)
        Several phases (:mod:`sciml.train.phases`), e.g. ``[("adam", 5000, {"lr": 1e-3}),
        ("lbfgs", 100, {})]``, or L-BFGS in inner iterations with a tolerance, ending early once
        converged: ``("lbfgs", {"iterations": 15000, "tolerance": 1e-10, "precision": "float64"})``.
        ``"precision"`` (any phase) converts the task to that dtype when the phase starts.
    grad_clip : float, optional
        Clip the global gradient norm (first-order optimisers).
    combiner : str or Combiner
        How loss terms make the update: ``"sum"`` (default), a ``Weighted({...})``, or any
        registered combiner.
    precision : {"fp32", "bf16", "fp16"}
        Autocast precision; fp16 uses a ``GradScaler``. Unsupported combinations raise ConfigError.
    compile : bool or dict
        ``torch.compile`` the task's model in place (a dict holds ``torch.compile`` options such
        as ``{"mode": "max-autotune"}``). Compilation happens at the first step; a platform that
        cannot compile raises ConfigError then.
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
    progress : bool, str or None
        How progress is shown (:mod:`sciml.train.progress`): None (default) a tqdm bar with the loss
        (and its terms) and the latest validation error on a terminal, a plain line every ~15 s and
        every tenth of the run elsewhere (logs, CI, pipes); True a bar; False or ``"lines"``: no bar,
        but still the plain lines (with the loss terms) on stderr; ``"off"`` nothing at all.
    num_workers : int
        DataLoader worker processes.
    callbacks : sequence of Callback
    resume : bool
        If ``out_dir`` holds checkpoints, continue from the newest good one when ``fit`` starts.
    """

    def __init__(
        self, task: Task, *, train_data: Dataset | DataLoader | None = None,
        val_data: Dataset | DataLoader | Mapping[str, Dataset | DataLoader] | None = None,
        batch_size: int = 32, val_batch_size: int | None = None, shuffle: bool = True,
        drop_last: bool = False,
        epochs: int | None = None, steps: int | None = None, optimizer: str | Callable[..., Any] = "adam",
        lr: float = 1e-3, weight_decay: float = 0.0, schedule: str | Callable[..., Any] | None = None,
        schedule_kwargs: Mapping[str, Any] | None = None, schedule_interval: str = "step",
        phases: Sequence[Any] | None = None, grad_clip: float | None = None, combiner: str | Combiner = "sum",
        precision: str = "fp32", compile: bool | Mapping[str, Any] = False,
        device: str | torch.device = "auto", seed: int = 0,
        out_dir: str | Path | None = None, checkpoint_every: int | None = None, keep_checkpoints: int = 3,
        log_every: int = 10, eval_every: int | None = None,
        early_stopping: EarlyStopping | int | Mapping[str, Any] | None = None, nan_policy: str = "raise",
        max_rollbacks: int = 3, lr_factor: float = 0.5, snapshot_every: int | None = None,
        progress: bool | str | None = None, num_workers: int = 0, callbacks: Sequence[Callback] = (),
        resume: bool = False,
    ) -> None:
        self.task = check_task(task)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.val_batch_size = check_positive_int("val_batch_size", val_batch_size or batch_size)
        self.seed = check_int_at_least("seed", seed, -(2**62))
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        check_name("schedule_interval", schedule_interval, ("step", "epoch"))
        check_name("nan_policy", nan_policy, NAN_POLICIES)
        self.schedule_interval, self.nan_policy = schedule_interval, nan_policy
        self.max_rollbacks = check_int_at_least("max_rollbacks", max_rollbacks, 0)
        if isinstance(lr_factor, bool) or not isinstance(lr_factor, (int, float)) or not 0 < lr_factor <= 1:
            raise ConfigError(f"lr_factor: expected a number in (0, 1], got {lr_factor!r}")
        self.lr_factor = float(lr_factor)
        if grad_clip is not None and (isinstance(grad_clip, bool) or not isinstance(grad_clip, (int, float))
                                      or not (math.isfinite(grad_clip) and grad_clip > 0)):
            raise ConfigError(f"grad_clip: expected None or a finite positive number, got {grad_clip!r}")
        self.grad_clip = None if grad_clip is None else float(grad_clip)
        self.log_every = check_positive_int("log_every", log_every)
        self.eval_every = None if eval_every is None else check_positive_int("eval_every", eval_every)
        self.checkpoint_every = (None if checkpoint_every is None
                                 else check_positive_int("checkpoint_every", checkpoint_every))
        self.keep_checkpoints = check_positive_int("keep_checkpoints", keep_checkpoints)
        self.snapshot_every = check_positive_int(
            "snapshot_every", snapshot_every or self.checkpoint_every or 100)
        num_workers = check_int_at_least("num_workers", num_workers, 0)
        self.progress = progress_mode(progress)
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

        # device, process group, precision, compilation
        self.dist, self.device = setup_distributed(device)
        self.task.to(self.device)
        self.precision = precision
        amp_dtype = check_precision(precision, self.device)
        self.scaler: Any = None
        if precision == "fp16":
            try:
                self.scaler = torch.amp.GradScaler(self.device.type)
            except Exception as exc:  # no scaler for this device type in this torch
                raise ConfigError(f"precision='fp16' needs a GradScaler on {self.device}: {exc}") from None
        self._amp_dtype = amp_dtype
        self.compile = compile_in_place(self.task.trained_model(), compile)
        self.params = [p for p in self.task.parameters() if p.requires_grad]
        self.engine = StepEngine(self.task, self.params, self.combiner, self.dist, self.device, amp_dtype,
                                 self.scaler, self.grad_clip, compiled=self.compile)

        # data
        self._train_loader, self._sampler = make_train_loader(
            train_data, batch_size=self.batch_size, shuffle=self.shuffle, drop_last=self.drop_last,
            seed=self.seed, num_workers=num_workers, info=self.dist, device=self.device)
        self._val_data = val_data
        self._val_loaders = make_eval_loaders(val_data, batch_size=self.val_batch_size,
                                              num_workers=num_workers, info=self.dist, device=self.device)
        self.steps_per_epoch = batches_per_epoch(self._train_loader, self._sampler)
        if schedule_interval == "epoch" and self._train_loader is None:
            raise ConfigError("schedule_interval='epoch' needs train_data (a run without data has no epochs)")

        # length of the run and its phases
        steps = run_length(phases, steps, epochs, self.steps_per_epoch)
        self.phases = parse_phases(phases, optimizer=optimizer, steps=steps, lr=lr, weight_decay=weight_decay,
                                   schedule=schedule, schedule_kwargs=schedule_kwargs)
        if self.scaler is not None and any(p.is_lbfgs for p in self.phases):
            raise ConfigError("precision='fp16' cannot be combined with L-BFGS (a GradScaler cannot drive a "
                              "closure-based optimiser); use 'bf16' or 'fp32'")
        #: phases (L-BFGS in iterations) that converged: index -> {"steps": run, "iterations": made}
        self.converged: dict[int, dict[str, int]] = {}
        self._bounds = phase_bounds(self.phases, self.converged)
        self.total_steps = self._bounds[-1]

        # loop state
        self.step = self.epoch = self.batch_in_epoch = self.rollbacks = 0
        self.amp_skipped = 0  # fp16 steps skipped by the GradScaler (in this process)
        self.phase_index = -1
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: Any = None
        self._closure_based = False
        self._budget: LBFGSBudget | None = None
        self.last_metrics: dict[str, float] = {}
        self._iter: Any = None
        self._stop: tuple[str, str] | None = None
        self._snapshot: dict[str, Any] | None = None
        self._resumed = False
        self._last_eval_step = -1
        self._last_ckpt: Path | None = None
        self._last_ckpt_step = -1
        self._window: list[list[float]] = []
        self._step_lr = float("nan")
        self._t0 = time.perf_counter()
        self.clock = RunClock()
        self._progress: Progress | None = None
        writes = self.out_dir is not None and self.dist.is_main
        log_path = self.out_dir / "metrics.jsonl" if writes else None
        self.logger = MetricsLogger(log_path)

    # -- public API ---------------------------------------------------------------------------
    @property
    def history(self) -> list[dict[str, Any]]:
        """All records logged so far (train, val, events)."""
        return self.logger.records

    def request_stop(self, reason: str, message: str = "") -> None:
        """Ask the loop to stop after the current step (callbacks use it; decide alike on all ranks)."""
        self._stop = (str(reason), str(message))

    def settings(self) -> dict[str, Any]:
        """The run's settings as JSON-able data (written to ``config.json`` and into checkpoints)."""
        return {
            "task": type(self.task).__name__, "batch_size": self.batch_size, "seed": self.seed,
            "shuffle": self.shuffle, "drop_last": self.drop_last, "total_steps": self.total_steps,
            "world_size": self.dist.world_size, "precision": self.precision, "combiner": repr(self.combiner),
            "phases": [p.describe() for p in self.phases],
            "schedule_interval": self.schedule_interval, "grad_clip": self.grad_clip,
            "nan_policy": self.nan_policy, "device": str(self.device), "compile": self.compile,
        }

    def resume(self, path: str | Path | None = None) -> Trainer:
        """Load a checkpoint file, or the newest good checkpoint of a run directory (default: out_dir).

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
        apply_state(self, state, where=str(path))
        self._iter, self._window, self._stop = None, [], None
        self._last_ckpt, self._last_ckpt_step = path, self.step
        self.logger.truncate_after(self.step)
        self._log_event("resume", checkpoint=path.name)
        self._resumed = True
        return self

    def fit(self) -> TrainResult:
        """Train until the run's length, early stopping, a stop request or divergence.

        Returns
        -------
        TrainResult

        Raises
        ------
        DivergenceError
            A loss term or gradient was NaN/Inf and ``nan_policy`` is ``"raise"``, or the
            rollbacks are used up; the weights are those before the failing step.
        CheckpointError
            ``resume=True`` and the run directory's checkpoints are all unreadable.
        ConfigError
            ``out_dir`` holds another run's checkpoints (without ``resume=True``), the task's
            terms or metrics break the contract, or ``compile=True`` fails on this platform.
        """
        progress = self._progress = None
        try:
            self._t0 = time.perf_counter()
            if self.resume_requested and not self._resumed and ckpt.list_checkpoints(self.out_dir):
                self.resume(self.out_dir)
            if not self._resumed:
                self._start_fresh()
            self._ensure_phase()
            if self.nan_policy == "rollback":
                self._snapshot = capture_state(self, to_cpu=True)
            for cb in self.callbacks:
                cb.on_fit_start(self)
            progress = self._progress = Progress(self.total_steps, self.step, self.progress, self.dist.is_main)
            self.clock.start(self.step)
            if self._resumed:
                progress.message(f"resuming from step {self.step}/{self.total_steps} "
                                 f"(checkpoint {self._last_ckpt})")
            while self.step < self.total_steps and self._stop is None:
                self._ensure_phase()
                if self.nan_policy == "rollback" and self.step % self.snapshot_every == 0:
                    self._snapshot = capture_state(self, to_cpu=True)
                batch = self._next_batch()
                if self._stop is not None:
                    break
                if not self.task.training:  # after an evaluation; train() walks every submodule
                    self.task.train()
                self.task.sample()
                if self._budget is not None:  # this L-BFGS step's share of the phase's iterations
                    self._budget.before_step(self._bounds[self.phase_index + 1] - self.step)
                try:
                    values = self.engine.step(batch, self.optimizer, self._closure_based)
                except NonFiniteStep as bad:
                    if self._handle_divergence(bad):
                        progress.update(self.step)  # the run went back to the snapshot
                        continue
                    break
                self._after_step(values)
                progress.update(self.step, values[-1], dict(zip(self.engine.term_names, values)))
            return self._finish()
        finally:
            if progress is not None:
                progress.close()
            self._progress = None

    def evaluate(self, val_data: Any = None) -> dict[str, float]:
        """Metrics on the validation sets (or on ``val_data``), averaged over all samples and ranks.

        Runs in eval mode under ``no_grad`` (unless ``task.metrics_need_grad``) and leaves every
        global RNG as it found it, so evaluating does not change the course of training.
        """
        info = current_dist() if self.dist.is_distributed else self.dist
        if val_data is None and info.world_size != self.dist.world_size:
            val_data = self._val_data  # the process group was shut down: evaluate everything here
        loaders = self._val_loaders if val_data is None else make_eval_loaders(
            val_data, batch_size=self.val_batch_size, num_workers=0, info=info, device=self.device)
        if not loaders:
            if self._train_loader is not None:
                return {}
            loaders = {"val": [None]}  # self-sampling task: one call to metrics(None)
        return evaluate_task(self.task, loaders, device=self.device, amp_dtype=self._amp_dtype, info=info)

    # -- the loop's pieces --------------------------------------------------------------------
    def _start_fresh(self) -> None:
        if self.out_dir is not None and ckpt.list_checkpoints(self.out_dir):
            raise ConfigError(f"out_dir {self.out_dir} holds checkpoints of another run; pass resume=True to "
                              "continue it, or use a new directory")
        self.logger.truncate_after(-1)  # a fresh run starts a fresh log
        broadcast_module(self.task, self.dist)  # all ranks start from rank 0's weights
        ckpt.seed_everything(self.seed + self.dist.rank)
        self._log_event("start", total_steps=self.total_steps, world_size=self.dist.world_size,
                        params=count_parameters(self.params))
        if self.out_dir is not None and self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            config = json.dumps(self.settings(), indent=1).encode()
            ckpt.atomic_write_bytes(self.out_dir / "config.json", config)

    def _handle_divergence(self, bad: NonFiniteStep) -> bool:
        """Apply nan_policy to a guarded step; True to go on, False to stop."""
        where = f"at step {self.step + 1} (phase {self.phase_index}: {self.phases[self.phase_index].name})"
        self._log_event("nonfinite", what=bad.what, detail=bad.detail)
        if self.nan_policy == "raise":
            raise DivergenceError(f"non-finite {bad.what} {where}: {bad.detail}; the weights were not "
                                  "updated (nan_policy='rollback' retries with a smaller learning rate)")
        if self.nan_policy == "stop":
            self.request_stop("diverged", f"non-finite {bad.what} {where}: {bad.detail}")
            return False
        if self.rollbacks >= self.max_rollbacks:
            raise DivergenceError(f"non-finite {bad.what} {where}: {bad.detail}; giving up after "
                                  f"{self.rollbacks} rollbacks (max_rollbacks={self.max_rollbacks})")
        failed_step = self.step + 1
        # Weights, optimiser, schedule and data position go back; the RNG streams do not, so the
        # retry draws fresh samples / dropout masks.
        apply_state(self, self._snapshot, where="rollback snapshot", restore_rng=False)
        self._iter, self._window = None, []
        if self._last_ckpt_step > self.step:  # the checkpoint step will be reached again, differently
            self._last_ckpt_step = -1
        scale_lr(self.optimizer, self.scheduler, self.lr_factor)
        self.rollbacks += 1
        self._snapshot = capture_state(self, to_cpu=True)  # a second rollback compounds the reduction
        self._log_event("rollback", failed_step=failed_step, to_step=self.step, lr=current_lr(self.optimizer),
                        rollbacks=self.rollbacks)
        return True

    def _after_step(self, values: list[float]) -> None:
        self.step += 1
        if self._budget is not None and self._budget.after_step():
            self._phase_converged()
        self._step_lr = current_lr(self.optimizer)  # the lr this step used, logged below
        if self.engine.skipped:
            self.amp_skipped += 1
        elif self.schedule_interval == "step":  # the schedule counts applied updates
            step_scheduler(self.scheduler)
        self.task.on_step_end(self.step)
        self._window.append(values)
        if self.step % self.log_every == 0 or self.step == self.total_steps:
            self._log_train()
        if self.callbacks:
            logs = {"loss": values[-1], **{f"loss/{n}": v for n, v in zip(self.engine.term_names, values)}}
            for cb in self.callbacks:
                cb.on_step_end(self, self.step, logs)
        every = self.eval_every
        if every is None and self._train_loader is None:
            every = max(1, self.total_steps // 10)
        if every is not None and self.step % every == 0:
            self._run_eval()
        if self.checkpoint_every is not None and self.step % self.checkpoint_every == 0:
            self._save()

    def _next_batch(self) -> Any:
        if self._train_loader is None:
            return None
        while True:
            if self._iter is None:
                self._iter = open_epoch(self._train_loader, self._sampler, epoch=self.epoch,
                                        skip_batches=self.batch_in_epoch, batch_size=self.batch_size,
                                        seed=self.seed)
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

    def _ensure_phase(self) -> None:
        i = self.phase_index
        if self.optimizer is not None and self._bounds[i] <= self.step < self._bounds[i + 1]:
            return  # the usual case, checked before every step
        index = len(self.phases) - 1
        for i in range(len(self.phases)):
            if self.step < self._bounds[i + 1]:
                index = i
                break
        if index == self.phase_index and self.optimizer is not None:
            return
        self._build_phase(index)
        if self.step > 0:
            self._log_event("phase", phase=index, optimizer=self.phases[index].name)

    def _build_phase(self, index: int) -> None:
        phase = self.phases[index]
        self.phase_index = index
        set_task_dtype(self.task, phase_dtype(self.phases, index), f"phase {index} ({phase.name}) precision")
        self.optimizer = build_optimizer(phase, self.params)
        # L-BFGS needs a closure; decided by type, so a factory returning one is handled too
        self._closure_based = isinstance(self.optimizer, torch.optim.LBFGS)
        if self._closure_based and self.scaler is not None:
            raise ConfigError("precision='fp16' cannot be combined with L-BFGS (a GradScaler cannot drive a "
                              "closure-based optimiser); use 'bf16' or 'fp32'")
        n_updates = phase.steps
        if self.schedule_interval == "epoch" and self.steps_per_epoch:
            n_updates = math.ceil(phase.steps / self.steps_per_epoch)
        self.scheduler = build_scheduler(phase, self.optimizer, n_updates)
        self._budget = LBFGSBudget(phase, self.optimizer) if phase.iterations is not None else None

    def _phase_converged(self) -> None:
        """The L-BFGS phase in iterations converged at this step: it ends here, the run gets shorter."""
        i = self.phase_index
        self.converged[i] = {"steps": self.step - self._bounds[i], "iterations": self._budget.used}
        self._bounds = phase_bounds(self.phases, self.converged)
        self.total_steps = self._bounds[-1]
        self._log_event("converged", phase=i, budget=self.phases[i].iterations, **self.converged[i])
        if self._progress is not None:
            self._progress.set_total(self.total_steps)
            self._progress.message(convergence_summary(self.phases, {i: self.converged[i]}))

    def _run_eval(self) -> None:
        if self._last_eval_step == self.step or (not self._val_loaders and self._train_loader is not None):
            return
        self._last_eval_step = self.step
        with self.clock.paused():
            self.last_metrics = self.evaluate()
        self.logger.log({"kind": "val", "step": self.step, "epoch": self.epoch, "time": self._elapsed(),
                         **self.last_metrics})
        if self._progress is not None:
            self._progress.set_validation(self.last_metrics)
        for cb in self.callbacks:
            cb.on_evaluate(self, self.step, self.last_metrics)

    def _log_train(self) -> None:
        if not self._window:
            return
        n = len(self._window)
        means = [sum(col) / n for col in zip(*self._window)]
        self._window = []
        record = {"kind": "train", "step": self.step, "epoch": self.epoch, "time": self._elapsed(),
                  "phase": self.phase_index, "lr": self._step_lr, "loss": means[-1]}
        record.update({f"loss/{name}": v for name, v in zip(self.engine.term_names, means)})
        if self.scaler is not None:
            record["amp_skipped"] = self.amp_skipped
        self.logger.log(record)

    def _log_event(self, event: str, **details: Any) -> None:
        self.logger.log({"kind": "event", "step": self.step, "epoch": self.epoch, "time": self._elapsed(),
                         "event": event, **details})

    def _elapsed(self) -> float:
        return round(time.perf_counter() - self._t0, 4)

    def _save(self) -> None:
        if self.out_dir is None or self._last_ckpt_step == self.step:
            return
        with self.clock.paused():
            state = capture_state(self)
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
        reason, message = self._stop or completion(self.phases, self.converged)
        timing = self.clock.stop(self.step, self.steps_per_epoch)
        self._log_train()
        self._run_eval()
        if reason != "completed":
            self._log_event("stop", reason=reason, message=message)
        self._save()
        params = count_parameters(self.params)
        self._log_event("timing", params=params, **timing, **self.engine.timing())
        metrics = dict(self.last_metrics)
        train = [r for r in self.history if r.get("kind") == "train"]
        if train:
            metrics["train/loss"] = float(train[-1]["loss"])
        epochs = self.step / self.steps_per_epoch if self.steps_per_epoch else None
        result = TrainResult(reason=reason, steps=self.step, epochs=epochs, metrics=metrics,
                             history=list(self.history), out_dir=self.out_dir, checkpoint=self._last_ckpt,
                             rollbacks=self.rollbacks, wall_time=self._elapsed(), message=message, params=params,
                             s_per_epoch=timing["s_per_epoch"], train_seconds=timing["train_seconds"])
        if self.out_dir is not None and self.dist.is_main:
            write_run_summary(self.out_dir, result)
        for cb in self.callbacks:
            cb.on_fit_end(self, result)
        barrier(self.dist)  # rank 0's files are complete when any rank returns
        return result
