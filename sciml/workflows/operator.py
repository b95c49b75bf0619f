"""Train a grid operator (FNO, and every model trained like it) on a problem, end to end.

This is what ``sciml train`` runs, and the shortest way to do the same from Python:

>>> run = train_operator("poisson", model="fno", n_train=800, n_test=100, resolution=33,
...                      epochs=20, out_dir="runs/poisson")                     # doctest: +SKIP
>>> run.solver(g="sin(pi*x)*y", f=0.0)["u"].plot()                              # doctest: +SKIP

A run directory holds ``run.json`` (every setting needed to rebuild the run), the dataset split,
checkpoints, ``metrics.jsonl`` and ``loss_curve.png``; ``resume_operator(run_dir)`` continues a run
that was killed from its newest good checkpoint (:mod:`sciml.workflows.resume`).

``summary.json`` holds the test error (mean and median of the per-sample relative L2), the number of
trained parameters, seconds per epoch of training (without evaluation and checkpoints), and the error
on every evaluation set ``test@N`` (``test@N/rel_l2_mean``, ``..._median``).

Several resolutions: train at one resolution, report the error at others with ``eval_resolutions``.
``test@N`` is, in this order of preference, (1) the same test samples read from the data file at
full resolution when the training grid is a stride of the file's (``data`` made at 85, ``resolution=43``
trains on every second node and ``eval_resolutions=[85]`` tests the same instances at 85), (2) the same
test samples at a stride of the file, or (3) ``n_test`` fresh samples of the problem generated at N
into ``data_N_test.h5`` with seed ``eval_seed`` (default ``seed + 1``, independent of the training
streams); these are other instances of the same distribution, so the error differs from the training
resolution's also by sampling (``summary.json`` says which kind each set is).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._checks import check_positive_int
from ..errors import ConfigError
from ..fields import Grid
from ..problem import Problem, load_problem
from .common import RUN_FILE, OperatorRun, build_seeded_model, problem_spec, split_indices

__all__ = ["train_operator", "default_model_kwargs"]

def default_model_kwargs(model: str, problem: Problem, grid: Grid) -> dict[str, Any]:
    """Constructor kwargs of ``model`` that follow from the problem: channel counts, dimension."""
    n_in, n_out = len(problem.input_names), len(problem.outputs)
    if model == "fno":
        modes = min(12, (min(grid.shape) - 1) // 2)
        return {"in_channels": n_in, "out_channels": n_out, "n_modes": [modes] * grid.ndim}
    if model == "mgno":
        # Levels halve the nodes per axis (rounding up): floor(log2 n) - 1 of them, at most 5, keep
        # a coarsest grid of at least 4 nodes (43 -> 22 -> 11 -> 6). Zero padding suits the
        # Dirichlet problems this trains on by default; `--model-arg padding_mode=...` changes it.
        levels = max(1, min(5, min(grid.shape).bit_length() - 2))
        return {"in_channels": n_in, "out_channels": n_out, "ndim": grid.ndim, "levels": levels}
    if model == "galerkin":  # the paper's configuration for the grid's dimension (see models/galerkin.py)
        size = getattr(problem, "output_size", None)
        if size is not None:  # the inverse variant: point-wise decoder, attention on the output grid
            return {"in_channels": n_in, "out_channels": n_out, "ndim": grid.ndim, "decoder": "pointwise",
                    "coarse": size, "out_size": size}
        return {"in_channels": n_in, "out_channels": n_out, "ndim": grid.ndim}
    return {"in_channels": n_in, "out_channels": n_out}


def train_operator(
    problem: Problem | str,
    *,
    model: str = "fno",
    model_kwargs: dict[str, Any] | None = None,
    data: str | os.PathLike[str] | None = None,
    n_train: int = 1000,
    n_test: int = 100,
    resolution: int | None = None,
    out_dir: str | os.PathLike[str] = "runs/run",
    epochs: int = 50,
    batch_size: int = 20,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    schedule: str | None = "onecycle",
    loss: str = "rel_l2",
    h1_weight: float | None = None,
    schedule_kwargs: dict[str, Any] | None = None,
    schedule_interval: str | None = None,
    grad_clip: float | None = None,
    eval_resolutions: Sequence[int] | None = None,
    eval_seed: int | None = None,
    device: str = "auto",
    precision: str = "fp32",
    compile: bool = False,
    seed: int = 0,
    workers: int = 1,
    checkpoint_every: int | None = None,
    progress: bool | None = None,
    resume: bool = False,
) -> OperatorRun:
    """Generate data (unless given), train a grid operator, evaluate it, return a Solver.

    Parameters
    ----------
    problem : Problem or str
        A Problem, a built-in name or a path to a problem file.
    model : str
        Registry name (``sciml.models.list_models()``).
    model_kwargs : dict, optional
        Overrides of the model's constructor kwargs (channel counts are filled in).
    data : path, optional
        An existing dataset file; by default ``n_train + n_test`` samples are generated into the
        run directory with the problem's reference solver (resumable, reused when present).
    n_train, n_test : int
        Split sizes; the test split is the last ``n_test`` samples of the file.
    resolution : int, optional
        Nodes per axis (the problem's default grid otherwise). With ``data`` on a finer grid of which
        this is a stride, training reads every ``(n_file - 1) / (resolution - 1)``-th node.
    out_dir : path
        Run directory.
    epochs, batch_size, lr, weight_decay, schedule, loss, device, precision, compile, seed
        Training settings (see :class:`~sciml.train.Trainer`); ``loss`` one of
        :class:`~sciml.operators.OperatorTask`'s.
    h1_weight : float, optional
        Weight of the H1 term of ``loss="rel_h1"`` or ``"rel_l2+h1"`` (default 1).
    schedule_kwargs, schedule_interval, grad_clip : optional
        Passed to the Trainer: e.g. ``schedule="onecycle", schedule_kwargs={"div_factor": 1e4,
        "final_div_factor": 1e4, "pct_start": 0.3}`` (stepped per batch, the default interval, or
        ``schedule_interval="epoch"``), and a gradient-norm clip.
    eval_resolutions : sequence of int, optional
        Also report the error at these resolutions (``test@N``; see the module docstring).
    eval_seed : int, optional
        Seed of generated evaluation sets (default ``seed + 1``).
    workers : int
        Processes for data generation.
    checkpoint_every : int, optional
        Steps between checkpoints (default: once per epoch).
    progress : bool, optional
        Progress bars (default: only on a terminal).
    resume : bool
        Continue from the newest good checkpoint in ``out_dir`` if there is one; settings among
        ``resolution, h1_weight, schedule_kwargs, schedule_interval, grad_clip, eval_resolutions,
        eval_seed`` left at None are then taken from the run's ``run.json``.
    """
    from torch.utils.data import DataLoader

    from ..data import GridDataset, generate
    from ..operators.solver import Solver
    from ..operators.task import OperatorTask, periodic_node_axes
    from ..train import Trainer
    from ..train.distributed import barrier, setup_distributed

    for name, value in (("n_train", n_train), ("n_test", n_test), ("epochs", epochs), ("batch_size", batch_size)):
        check_positive_int(f"train_operator {name}", value)
    from ..models import get_model_class
    from ..models.deeponet import DeepONet

    if issubclass(get_model_class(model), DeepONet):
        raise ConfigError(f"train_operator: {model!r} answers at query points, not on grids; train it with "
                          "sciml.workflows.train_deeponet (`sciml train PROBLEM --model deeponet`) or a "
                          "DeepONetTask of your own (examples/03_deeponet_antiderivative.py)")
    problem = load_problem(problem) if not isinstance(problem, Problem) else problem
    run_dir = Path(out_dir)
    extra = {"h1_weight": h1_weight, "schedule_kwargs": schedule_kwargs, "schedule_interval": schedule_interval,
             "grad_clip": grad_clip, "eval_resolutions": eval_resolutions, "eval_seed": eval_seed}
    if resume and (run_dir / RUN_FILE).is_file():  # what the caller leaves unset continues as recorded
        recorded = json.loads((run_dir / RUN_FILE).read_text())
        extra = {k: recorded.get(k) if v is None else v for k, v in extra.items()}
        resolution = recorded.get("resolution") if resolution is None else resolution
    extra["eval_resolutions"] = [check_positive_int("eval_resolutions", n) for n in extra["eval_resolutions"] or []]
    output_size = getattr(problem, "output_size", None)
    # Under torchrun every rank runs this function: join the group first so that only rank 0
    # generates data and writes files while the others wait at a barrier.
    dist_info, _ = setup_distributed(device)
    if dist_info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    grid = problem.resolve_grid(resolution)

    if data is None:
        data = run_dir / f"data_{grid.shape[0]}.h5"
        if dist_info.is_main:
            generate(problem, n_train + n_test, grid, seed=seed, path=data, workers=workers, progress=progress)
        barrier(dist_info)
    data = Path(data)
    full = GridDataset(data)
    train_indices, test_indices = split_indices(len(full), n_train, n_test, f"train_operator: {data}")
    stride = _stride(full.grid.shape, grid.shape, f"train_operator: data {data}") if resolution is not None else 1
    train = GridDataset(data, indices=train_indices, stride=stride)
    test = GridDataset(data, indices=test_indices, stride=stride)
    # Validation on the training resolution and, where the grid allows, on every second node:
    # a discretisation-invariant operator should do about as well on both.
    val = {f"test@{test.grid.shape[0]}": test}
    if all((n - 1) % 2 == 0 and n > 8 for n in test.grid.shape) and _fits(output_size, (test.grid.shape[0] - 1) // 2 + 1):
        coarse = GridDataset(data, indices=test_indices, stride=2 * stride)
        val[f"test@{coarse.grid.shape[0]}"] = coarse
    kinds = {f"test@{test.grid.shape[0]}": "test split of the data file"}
    for n_eval in extra["eval_resolutions"]:
        if not _fits(output_size, n_eval):
            raise ConfigError(f"train_operator: eval resolution {n_eval} does not hold the output grid of "
                              f"{output_size} nodes per axis (expected k * {output_size - 1} + 1 nodes)")
        name = f"test@{n_eval}"
        if n_eval == test.grid.shape[0]:
            continue
        if all(n > 1 and (n - 1) % (n_eval - 1) == 0 for n in full.grid.shape):  # same samples, from the file
            val[name] = GridDataset(data, indices=test_indices, stride=(full.grid.shape[0] - 1) // (n_eval - 1))
            kinds[name] = "the same test samples, read from the data file at this resolution"
            continue
        eval_grid = problem.resolve_grid(n_eval)
        path = run_dir / f"data_{n_eval}_test.h5"
        test_seed = seed + 1 if extra["eval_seed"] is None else extra["eval_seed"]
        if dist_info.is_main:
            generate(problem, n_test, eval_grid, seed=test_seed, path=path, workers=workers, progress=progress)
        barrier(dist_info)
        val[name] = GridDataset(path)
        kinds[name] = f"{n_test} fresh samples generated at this resolution with seed {test_seed} ({path.name})"

    kwargs = default_model_kwargs(model, problem, train.grid)
    kwargs.update(model_kwargs or {})
    network = build_seeded_model(model, seed, **kwargs)
    h1 = 1.0 if extra["h1_weight"] is None else extra["h1_weight"]
    task = OperatorTask.from_dataset(network, train, loss=loss, problem=problem_spec(problem), h1_weight=h1,
                                     output_size=output_size, periodic_axes=periodic_node_axes(problem, train.grid))
    settings = {
        "problem": problem_spec(problem), "model": model, "model_kwargs": kwargs, "data": str(data.resolve()),
        "n_train": n_train, "n_test": n_test, "epochs": epochs, "batch_size": batch_size, "lr": lr,
        "weight_decay": weight_decay, "schedule": schedule, "loss": loss, "device": device,
        "precision": precision, "compile": compile, "seed": seed, "checkpoint_every": checkpoint_every,
        "resolution": test.grid.shape[0], **extra,
    }
    if dist_info.is_main:
        (run_dir / RUN_FILE).write_text(json.dumps(settings, indent=2))

    steps_per_epoch = -(-n_train // batch_size)
    trainer = Trainer(
        task, train_data=train, val_data=val, batch_size=batch_size, epochs=epochs,
        optimizer="adamw" if weight_decay else "adam", lr=lr, weight_decay=weight_decay, schedule=schedule,
        schedule_kwargs=extra["schedule_kwargs"], schedule_interval=extra["schedule_interval"] or "step",
        grad_clip=extra["grad_clip"], precision=precision, compile=compile, device=device, seed=seed, out_dir=run_dir,
        checkpoint_every=checkpoint_every or steps_per_epoch, eval_every=steps_per_epoch * max(1, epochs // 10),
        progress=progress, resume=resume,
    )
    result = trainer.fit()
    solver = Solver(task, problem, device=trainer.device)
    errors = task.per_sample_errors(DataLoader(test, batch_size=batch_size))
    summary = {"test_rel_l2_mean": float(errors.mean()), "test_rel_l2_median": float(np.median(errors)),
               "params": result.params, "s_per_epoch": result.s_per_epoch, "epochs": result.epochs,
               "train_seconds": result.train_seconds, "resolution": test.grid.shape[0]}
    for name, dataset in val.items():
        errs = errors if dataset is test else task.per_sample_errors(DataLoader(dataset, batch_size=batch_size))
        summary[f"{name}/rel_l2_mean"], summary[f"{name}/rel_l2_median"] = float(errs.mean()), float(np.median(errs))
    summary["eval_sets"] = {name: kinds.get(name, "the test split at a stride") for name in val}
    if result.s_per_epoch is None and resume and (run_dir / "summary.json").is_file():  # nothing left to train
        summary["s_per_epoch"] = json.loads((run_dir / "summary.json").read_text()).get("s_per_epoch")
    if dist_info.is_main:
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return OperatorRun(run_dir, solver, result, errors)


def _stride(fine: tuple[int, ...], coarse: tuple[int, ...], what: str) -> int:
    """The stride that reads grid ``coarse`` from grid ``fine`` (same box), or a ConfigError."""
    strides = {(f - 1) // (c - 1) if c > 1 and (f - 1) % (c - 1) == 0 else None for f, c in zip(fine, coarse)}
    if len(fine) != len(coarse) or len(strides) != 1 or None in strides:
        raise ConfigError(f"{what} lies on a {list(fine)} grid; the training grid {list(coarse)} is not a stride "
                          "of it (expected n_file - 1 to be a multiple of resolution - 1)")
    return strides.pop()


def _fits(output_size: int | None, n: int) -> bool:
    """Whether a grid of ``n`` nodes per axis holds the output grid (its nodes are a stride of it)."""
    return output_size is None or n == output_size or (n > output_size and (n - 1) % (output_size - 1) == 0)
