"""Train a grid operator (FNO, and every model trained like it) on a problem, end to end.

This is what ``sciml train`` runs, and the shortest way to do the same from Python:

>>> run = train_operator("poisson", model="fno", n_train=800, n_test=100, resolution=33,
...                      epochs=20, out_dir="runs/poisson")                     # doctest: +SKIP
>>> run.solver(g="sin(pi*x)*y", f=0.0)["u"].plot()                              # doctest: +SKIP

A run directory holds ``run.json`` (every setting needed to rebuild the run), the dataset split,
checkpoints, ``metrics.jsonl`` and ``loss_curve.png``; ``resume_operator(run_dir)`` continues a run
that was killed from its newest good checkpoint (:mod:`sciml.workflows.resume`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._checks import check_positive_int
from ..errors import ConfigError
from ..fields import Grid
from ..problem import Problem, load_problem
from .common import RUN_FILE, OperatorRun, build_seeded_model, problem_spec

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
        Nodes per axis (the problem's default grid otherwise).
    out_dir : path
        Run directory.
    epochs, batch_size, lr, weight_decay, schedule, loss, device, precision, compile, seed
        Training settings (see :class:`~sciml.train.Trainer`).
    workers : int
        Processes for data generation.
    checkpoint_every : int, optional
        Steps between checkpoints (default: once per epoch).
    progress : bool, optional
        Progress bars (default: only on a terminal).
    resume : bool
        Continue from the newest good checkpoint in ``out_dir`` if there is one.
    """
    from torch.utils.data import DataLoader

    from ..data import GridDataset, generate
    from ..operators.solver import Solver
    from ..operators.task import OperatorTask
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
    if len(full) < n_train + n_test:
        raise ConfigError(f"train_operator: {data} holds {len(full)} samples, expected n_train + n_test = {n_train + n_test}")
    train = GridDataset(data, indices=np.arange(n_train))
    test_indices = np.arange(len(full) - n_test, len(full))
    test = GridDataset(data, indices=test_indices)
    # Validation on the training resolution and, where the grid allows, on every second node:
    # a discretisation-invariant operator should do about as well on both.
    val = {f"test@{test.grid.shape[0]}": test}
    if all((n - 1) % 2 == 0 and n > 8 for n in test.grid.shape):
        coarse = GridDataset(data, indices=test_indices, stride=2)
        val[f"test@{coarse.grid.shape[0]}"] = coarse

    kwargs = default_model_kwargs(model, problem, train.grid)
    kwargs.update(model_kwargs or {})
    network = build_seeded_model(model, seed, **kwargs)
    task = OperatorTask.from_dataset(network, train, loss=loss, problem=problem_spec(problem))
    settings = {
        "problem": problem_spec(problem), "model": model, "model_kwargs": kwargs, "data": str(data.resolve()),
        "n_train": n_train, "n_test": n_test, "epochs": epochs, "batch_size": batch_size, "lr": lr,
        "weight_decay": weight_decay, "schedule": schedule, "loss": loss, "device": device,
        "precision": precision, "compile": compile, "seed": seed, "checkpoint_every": checkpoint_every,
    }
    if dist_info.is_main:
        (run_dir / RUN_FILE).write_text(json.dumps(settings, indent=2))

    steps_per_epoch = -(-n_train // batch_size)
    trainer = Trainer(
        task, train_data=train, val_data=val, batch_size=batch_size, epochs=epochs,
        optimizer="adamw" if weight_decay else "adam", lr=lr, weight_decay=weight_decay, schedule=schedule,
        precision=precision, compile=compile, device=device, seed=seed, out_dir=run_dir,
        checkpoint_every=checkpoint_every or steps_per_epoch, eval_every=steps_per_epoch * max(1, epochs // 10),
        progress=progress, resume=resume,
    )
    result = trainer.fit()
    solver = Solver(task, problem, device=trainer.device)
    errors = task.per_sample_errors(DataLoader(test, batch_size=batch_size))
    summary = {"test_rel_l2_mean": float(errors.mean()), "test_rel_l2_median": float(np.median(errors))}
    if dist_info.is_main:
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return OperatorRun(run_dir, solver, result, errors)
