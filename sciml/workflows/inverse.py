"""``sciml train calderon --model nio``: train an inverse operator on boundary measurements.

Data are made by the problem's own forward model (:func:`sciml.data.generate`: resumable, cached in the
run directory), the first ``n_train`` samples train and the last ``n_test`` test, the network learns
through :class:`~sciml.inverse.MeasurementTask` and the one :class:`~sciml.train.Trainer`, and the run
comes back with its :class:`~sciml.inverse.MeasurementSolver`.

Networks (registry names): ``nio`` (any number of measurements; randomised subsets in training),
``flat_deeponet`` (a DeepONet over all measurements flattened), ``extended_fno`` (an FNO over the
measurements' harmonic extensions stacked as channels), and ``uit`` / ``unet`` (the EIT transformer
and a plain U-Net on the extensions and their gradients: ``extended_net``); all but NIO read exactly
the trained number. A 0/1 target (``eit_inclusions``' map) trains with ``loss="bce"``.
``model="fno"`` and ``model="deeponet"`` name those two here, so that one command trains every method.

The summary reports what the NIO paper reports: the per-sample relative L1 error (median and mean),
and the relative L2; also with half of the probes (every second one) for networks that take a subset.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._checks import check_positive_int
from ..errors import ConfigError
from ..problem import InverseProblem, Problem, load_problem
from .common import OperatorRun, build_seeded_model, problem_spec

__all__ = ["train_inverse", "is_measurement_problem", "MEASUREMENT_MODELS", "default_inverse_kwargs"]

RUN_FILE = "run.json"
MEASUREMENT_MODELS = ("nio", "flat_deeponet", "extended_fno", "uit", "unet")
_IMAGE_BACKBONES = ("uit", "unet")  # built as extended_net: harmonic-extension features -> image network
_ALIASES = {"fno": "extended_fno", "deeponet": "flat_deeponet"}


def is_measurement_problem(problem: Problem) -> bool:
    """An inverse problem whose input is an array of boundary measurements (``array_shapes``)."""
    return isinstance(problem, InverseProblem) and problem.array_shapes is not None and \
        len(problem.input_names) == 1


def default_inverse_kwargs(model: str, n_measurements: int, n_sensors: int, grid_size: int,
                           out_channels: int) -> dict[str, Any]:
    """Constructor kwargs of ``model`` that follow from the data: sensors, probes, grid, channels."""
    # NIO reads each measurement with its probe's tag appended (MeasurementTask's probe_tags): 2 M values
    kwargs: dict[str, Any] = {"n_sensors": 2 * n_sensors if model == "nio" else n_sensors,
                              "out_channels": out_channels, "grid_size": grid_size}
    if model != "nio":
        kwargs["n_measurements"] = n_measurements
    if model in _IMAGE_BACKBONES:
        kwargs["backbone"] = model
    return kwargs


def train_inverse(
    problem: Problem | str,
    *,
    model: str = "nio",
    model_kwargs: dict[str, Any] | None = None,
    data: str | os.PathLike[str] | None = None,
    n_train: int = 2048,
    n_test: int = 128,
    resolution: int | None = None,
    out_dir: str | os.PathLike[str] = "runs/inverse",
    epochs: int = 50,
    batch_size: int = 32,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    schedule: str | None = "onecycle",
    loss: str | None = None,
    device: str = "auto",
    seed: int = 0,
    workers: int = 1,
    progress: bool | None = None,
    resume: bool = False,
) -> OperatorRun:
    """Generate data (unless given), train an inverse operator, evaluate it, return its solver.

    Parameters
    ----------
    problem : InverseProblem or str
        A boundary-measurement problem (``calderon``, ``eit_inclusions``, ...) or its name / file.
    model : str
        ``"nio"``, ``"flat_deeponet"`` (alias ``"deeponet"``) or ``"extended_fno"`` (alias ``"fno"``).
    model_kwargs : dict, optional
        Overrides of the network's constructor kwargs (sensor, probe and grid sizes are filled in).
    data : path, optional
        An existing dataset file of the problem; by default ``n_train + n_test`` samples are made into
        the run directory.
    n_train, n_test, resolution, out_dir, epochs, batch_size, lr, weight_decay, schedule, device, seed
        As in :func:`sciml.workflows.operator.train_operator`; ``schedule="onecycle"`` steps per batch.
    loss : {"rel_l1", "rel_l2", "bce"}, optional
        NIO trains on the relative L1 error; ``None`` picks ``"bce"`` for a 0/1 target and ``"rel_l1"``
        otherwise.
    """
    from ..data import generate
    from ..inverse import MeasurementData, MeasurementSolver, MeasurementTask
    from ..train import Trainer

    for name, value in (("n_train", n_train), ("n_test", n_test), ("epochs", epochs), ("batch_size", batch_size)):
        check_positive_int(f"train_inverse {name}", value)
    problem = load_problem(problem) if not isinstance(problem, Problem) else problem
    if not is_measurement_problem(problem):
        raise ConfigError(f"train_inverse: problem {problem.name!r} does not take boundary measurements as input "
                          "(an InverseProblem with array_shapes); grid-to-grid problems train with train_operator")
    model = _ALIASES.get(model, model)
    if model not in MEASUREMENT_MODELS:
        raise ConfigError(f"train_inverse: expected a model in {list(MEASUREMENT_MODELS)} (or fno / deeponet), "
                          f"got {model!r}")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("train_inverse: runs in one process; start it without torchrun")
    run_dir = Path(out_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    grid = problem.resolve_grid(resolution)
    if data is None:
        data = run_dir / f"data_{grid.shape[0]}.h5"
        generate(problem, n_train + n_test, grid, seed=seed, path=data, workers=workers, progress=progress)
    full = MeasurementData(data)
    if len(full) < n_train + n_test:
        raise ConfigError(f"train_inverse: {data} holds {len(full)} samples, expected n_train + n_test = "
                          f"{n_train + n_test}")
    if full.attrs.get("problem") != problem.name:
        raise ConfigError(f"train_inverse: {data} holds data of problem {full.attrs.get('problem')!r}, "
                          f"not {problem.name!r}")
    train = full.subset(np.arange(n_train))
    test = full.subset(np.arange(len(full) - n_test, len(full)))

    kwargs = default_inverse_kwargs(model, full.n_measurements, full.n_sensors, full.grid.shape[0],
                                    len(full.output_names))
    kwargs.update(model_kwargs or {})
    network = build_seeded_model("extended_net" if model in _IMAGE_BACKBONES else model, seed, **kwargs)
    if loss is None:
        binary = bool(((train.y == 0) | (train.y == 1)).all())
        loss = "bce" if binary else "rel_l1"
    task = MeasurementTask.from_dataset(network, train, loss=loss, problem=problem_spec(problem))
    settings = {"kind": "measurement", "problem": problem_spec(problem), "model": model, "model_kwargs": kwargs,
                "data": str(Path(data).resolve()), "n_train": n_train, "n_test": n_test, "epochs": epochs,
                "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay, "schedule": schedule,
                "loss": loss, "device": device, "seed": seed, "resolution": full.grid.shape[0]}
    (run_dir / RUN_FILE).write_text(json.dumps(settings, indent=2))
    steps_per_epoch = -(-n_train // batch_size)
    trainer = Trainer(task, train_data=train, val_data={"test": test}, batch_size=batch_size, epochs=epochs,
                      optimizer="adamw" if weight_decay else "adam", lr=lr, weight_decay=weight_decay,
                      schedule=schedule, device=device, seed=seed, out_dir=run_dir,
                      checkpoint_every=steps_per_epoch, eval_every=steps_per_epoch * max(1, epochs // 10),
                      progress=progress, resume=resume)
    result = trainer.fit()
    task.eval()
    errors = task.per_sample_errors(test)
    summary = {"test_rel_l1_median": float(np.median(errors["rel_l1"])),
               "test_rel_l1_mean": float(errors["rel_l1"].mean()), "test_rel_l2_mean": float(errors["rel_l2"].mean()),
               "test_rel_l2_median": float(np.median(errors["rel_l2"])), "params": result.params,
               "s_per_epoch": result.s_per_epoch, "epochs": result.epochs, "measurements": full.n_measurements}
    if task.fixed_measurements is None and full.n_measurements >= 2:
        half = list(range(0, full.n_measurements, 2))
        fewer = task.per_sample_errors(test, patterns=half)
        summary.update({"half_measurements": len(half), "test_half_rel_l1_median": float(np.median(fewer["rel_l1"])),
                        "test_half_rel_l2_mean": float(fewer["rel_l2"].mean())})
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    solver = MeasurementSolver(task, problem, device=trainer.device)
    return OperatorRun(run_dir, solver, result, errors["rel_l1"])
