"""Train a DeepONet on any problem in one call: default sensors, data, training, a point solver.

What ``sciml train PROBLEM --model deeponet`` runs::

    run = train_deeponet("poisson", n_train=1000, steps=5000, out_dir="runs/poisson_deeponet")
    run.solver(g="sin(pi*x)*y", f=0.0)(points)          # a PointSolver: any query point

The branch reads every random input of the problem at :func:`default_sensors` (inputs defined on
the boundary at boundary nodes in perimeter order, the others on a strided lattice of grid nodes,
at most ``max_sensors`` per input); the trunk reads the grid's coordinates. Training is full-batch
Adam on the Cartesian-product layout (every function at every grid node) with the mean relative L2
loss and a cosine learning-rate decay; the test error is the mean per-function relative L2 on
``n_test`` new functions, as the operator papers report it. For other sensors, layouts or losses
build a :class:`~sciml.deeponet.task.DeepONetTask` yourself (``examples/03``).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._checks import check_positive_int
from ..errors import ConfigError
from ..fields import Grid
from ..problem import Problem, load_problem
from .common import RUN_FILE, OperatorRun, build_seeded_model, problem_spec

__all__ = ["default_sensors", "train_deeponet"]


def default_sensors(problem: Problem, grid: Grid, max_sensors: int = 128) -> Any:
    """Sensors for every random input of ``problem`` on ``grid``, at most ``max_sensors`` per input.

    Boundary inputs (``Input(on="boundary")``) are read at every k-th boundary node, the others at
    every s-th node along each axis, with the smallest k or s that keeps within the limit.
    """
    from ..deeponet.data import Sensors
    from ..spaces import boundary_indices

    check_positive_int("default_sensors max_sensors", max_sensors)
    sensors = None
    for name in problem.input_names:
        entry = problem.input(name)
        if not entry.is_random:
            continue  # fixed inputs are not read: the solver fills them in
        if getattr(entry, "on", None) == "boundary":
            every = math.ceil(len(boundary_indices(grid)[0]) / max_sensors)
            part = Sensors.boundary(grid, name, every)
        else:
            stride = 1
            while math.prod(math.ceil(n / stride) for n in grid.shape) > max_sensors:
                stride += 1
            part = Sensors.grid_nodes(grid, name, stride)
        sensors = part if sensors is None else sensors + part
    if sensors is None:
        raise ConfigError(f"default_sensors: problem {problem.name!r} has no random input for the branch to read")
    return sensors


def train_deeponet(
    problem: Problem | str,
    *,
    model_kwargs: dict[str, Any] | None = None,
    n_train: int = 1000,
    n_test: int = 100,
    resolution: int | None = None,
    max_sensors: int = 128,
    out_dir: str | os.PathLike[str] = "runs/deeponet",
    steps: int = 5000,
    lr: float = 1e-3,
    loss: str = "rel_l2",
    normalize: bool = True,
    device: str = "auto",
    seed: int = 0,
    checkpoint_every: int | None = None,
    progress: bool | None = None,
    resume: bool = False,
) -> OperatorRun:
    """Make data with the problem's reference solver, train a DeepONet, evaluate it, return its solver.

    Parameters
    ----------
    problem : Problem or str
        A Problem, a built-in name or a path to a problem file.
    model_kwargs : dict, optional
        Overrides of the DeepONet's constructor kwargs (default: branch and trunk of three hidden
        layers of 128, GELU; ``branch``/``trunk`` widths must start with the sensor count and the
        dimension).
    n_train, n_test : int
        Training and test functions (drawn from independent seeds).
    resolution : int, optional
        Nodes per axis of the data grid (the problem's default grid otherwise).
    max_sensors : int
        At most this many sensors per input (:func:`default_sensors`).
    out_dir : path
        Run directory (``run.json``, checkpoints, ``metrics.jsonl``, ``summary.json``).
    steps, lr, loss, device, seed
        Full-batch Adam steps with a cosine decay from ``lr``; ``loss`` ``"rel_l2"`` or ``"mse"``.
    normalize : bool
        Standardise each input's sensor values and each output with training statistics (inputs of
        very different scales, such as a boundary value and a source, otherwise train poorly).
    checkpoint_every : int, optional
        Steps between checkpoints (default: ten per run).
    progress : bool, optional
        Progress bar (default: only on a terminal).
    resume : bool
        Continue from the newest good checkpoint in ``out_dir`` if there is one.
    """
    from ..deeponet.data import make_deeponet_data
    from ..deeponet.solver import PointSolver
    from ..deeponet.task import DeepONetTask
    from ..train import Trainer

    for name, value in (("n_train", n_train), ("n_test", n_test), ("steps", steps)):
        check_positive_int(f"train_deeponet {name}", value)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # every rank would hold and train on the whole full-batch set: no data parallelism to gain
        raise ConfigError("train_deeponet: full-batch DeepONet training runs in one process; start it without torchrun")
    problem = load_problem(problem) if not isinstance(problem, Problem) else problem
    grid = problem.resolve_grid(resolution)
    sensors = default_sensors(problem, grid, max_sensors)
    run_dir = Path(out_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    train = make_deeponet_data(problem, n_train, sensors, seed=seed)
    test = make_deeponet_data(problem, n_test, sensors, seed=seed + 10_000)  # a stream of its own

    kwargs: dict[str, Any] = {"branch": [sensors.size, 128, 128, 128], "trunk": [grid.ndim, 128, 128, 128],
                              "n_outputs": len(problem.outputs), "activation": "gelu"}
    kwargs.update(model_kwargs or {})
    network = build_seeded_model("deeponet", seed, **kwargs)
    task = DeepONetTask(network, sensors, problem.outputs, train=train, loss=loss, normalize=normalize,
                        problem=problem)
    settings = {"kind": "deeponet", "problem": problem_spec(problem), "model": "deeponet", "model_kwargs": kwargs,
                "n_train": n_train, "n_test": n_test, "resolution": grid.shape[0], "max_sensors": max_sensors,
                "steps": steps, "lr": lr, "loss": loss, "normalize": normalize, "device": device, "seed": seed,
                "checkpoint_every": checkpoint_every}
    (run_dir / RUN_FILE).write_text(json.dumps(settings, indent=2))
    trainer = Trainer(task, phases=[("adam", steps, {"lr": lr, "schedule": "cosine"})],
                      val_data={"test": test.loader()}, eval_every=max(1, steps // 10), device=device,
                      seed=seed, out_dir=run_dir, checkpoint_every=checkpoint_every or max(1, steps // 10),
                      progress=progress, resume=resume)
    result = trainer.fit()
    errors = np.asarray(task.evaluate(test)["rel_l2"], dtype=np.float64)
    summary = {"test_rel_l2_mean": float(errors.mean()), "test_rel_l2_median": float(np.median(errors)),
               "sensors": sensors.size}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return OperatorRun(run_dir, PointSolver(task, problem, device=trainer.device), result, errors)
