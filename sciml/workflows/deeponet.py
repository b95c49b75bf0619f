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

The defaults were measured on the Poisson problem at 33 x 33 against an FNO on the same data file
(``benchmarks/deeponet_cli.py``, table in ``benchmarks/results/deeponet_cli.md``): 1.4 % mean relative
L2 where the FNO of ``sciml train`` reaches 0.52 % and the former defaults 15 %. Three changes matter:

* torch's default initialisation (random biases) instead of Glorot with zero biases: the trunk reads
  coordinates in a box with a corner at the origin, and with zero biases every first-layer kink
  passes through that corner, so the trunk's basis stays nearly collinear (14 of 128 singular values
  above 1e-3 of the largest after training, although its span holds the solutions to 0.4 %) and the
  branch cannot reach most of it; alone this takes the error from 15 % to 4.4 %;
* a learning rate of 3e-3 (alone: 15 % -> 7.9 %);
* a linear branch (one layer, sensors -> coefficients) when the problem's reference solver is affine
  in the random inputs (:func:`is_affine`): the DeepONet is then a rank-``p`` linear operator, the
  form of the exact solution map, and a deep branch only adds a generalisation gap (3.4 % with three
  GELU layers, 1.4 % linear, with the other two changes). Problems that are not affine keep the
  three-layer branch.

More sensors (every node) and other widths do not help; a POD trunk helps more (0.31 %) but is
defined only at the nodes of its modes, and a :class:`~sciml.deeponet.solver.PointSolver` answers
anywhere, so the trunk stays an MLP.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._checks import check_positive_int
from ..errors import ConfigError, SciMLError
from ..fields import Grid
from ..problem import Problem, load_problem
from .common import RUN_FILE, OperatorRun, build_seeded_model, problem_spec, split_indices

__all__ = ["default_sensors", "is_affine", "train_deeponet"]

#: Width of the hidden layers and of the basis (``p``) of the default branch and trunk.
WIDTH = 128


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


def is_affine(problem: Problem, grid: Grid, seed: int = 0, rtol: float = 1e-6) -> bool:
    """Whether the reference solution depends affinely on the random inputs, tested on two instances.

    Solves two random instances ``a``, ``b`` and the mix ``0.25 a + 0.75 b`` (of the random inputs; a
    convex mix keeps inputs valid that must stay positive) and compares the solution of the mix with
    the same mix of the solutions. A non-affine map (a random coefficient, a nonlinear equation)
    misses by far more than ``rtol``; round-off of a direct solver stays far below it. Problems
    without a reference solver, or whose solver refuses the mix, count as not affine.
    """
    fine = problem.solve_grid(grid)
    rng = np.random.default_rng(seed)
    try:
        inputs = problem.sample_inputs(2, fine, rng)
        mixed = {name: np.concatenate([v, 0.25 * v[:1] + 0.75 * v[1:]]) if problem.input(name).is_random
                 else np.concatenate([v, v[1:]]) for name, v in inputs.items()}
        solved = problem.solve_batch(mixed, fine)
    except (SciMLError, np.linalg.LinAlgError, FloatingPointError):
        return False
    for values in solved.values():
        values = np.asarray(values, dtype=np.float64)
        miss = np.linalg.norm(values[2] - 0.25 * values[0] - 0.75 * values[1])
        if not np.isfinite(miss) or miss > rtol * (np.linalg.norm(values[0]) + np.linalg.norm(values[1])):
            return False
    return True


def train_deeponet(
    problem: Problem | str,
    *,
    model_kwargs: dict[str, Any] | None = None,
    n_train: int = 1000,
    n_test: int = 100,
    resolution: int | None = None,
    max_sensors: int = 128,
    data: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] = "runs/deeponet",
    steps: int = 5000,
    lr: float = 3e-3,
    loss: str = "rel_l2",
    linear_branch: bool | None = None,
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
        Overrides of the DeepONet's constructor kwargs (default: a trunk of three layers of 128 and
        a branch of three (or, see ``linear_branch``, one), GELU, torch's default initialisation;
        ``branch``/``trunk`` widths must start with the sensor count and the dimension).
    n_train, n_test : int
        Training and test functions (drawn from independent seeds, or read from ``data``).
    resolution : int, optional
        Nodes per axis of the data grid (the problem's default grid otherwise).
    max_sensors : int
        At most this many sensors per input (:func:`default_sensors`).
    data : path, optional
        An existing dataset file (``sciml generate``, or the ``data_N.h5`` of a ``sciml train`` run):
        train on its first ``n_train`` samples and test on its last ``n_test``, the split
        :func:`~sciml.workflows.operator.train_operator` uses, so that a DeepONet and a grid operator
        can be compared on the same instances. By default fresh data are drawn (not stored).
    out_dir : path
        Run directory (``run.json``, checkpoints, ``metrics.jsonl``, ``summary.json``).
    steps, lr, loss, device, seed
        Full-batch Adam steps with a cosine decay from ``lr``; ``loss`` ``"rel_l2"`` or ``"mse"``.
    normalize : bool
        Standardise each input's sensor values and each output with training statistics (inputs of
        very different scales, such as a boundary value and a source, otherwise train poorly).
    linear_branch : bool, optional
        A branch of one linear layer (sensors -> ``p`` coefficients) instead of three GELU layers;
        by default linear exactly when :func:`is_affine` finds the problem affine.
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
    run_dir = Path(out_dir)
    if resume and data is None and (run_dir / RUN_FILE).is_file():  # a run made from a file resumes on it
        data = json.loads((run_dir / RUN_FILE).read_text()).get("data")
    if data is not None:
        data = Path(data).resolve()
        grid, sensors, train, test = _file_data(problem, data, n_train, n_test, resolution, max_sensors)
    else:
        grid = problem.resolve_grid(resolution)
        sensors = default_sensors(problem, grid, max_sensors)
        train = make_deeponet_data(problem, n_train, sensors, seed=seed)
        test = make_deeponet_data(problem, n_test, sensors, seed=seed + 10_000)  # a stream of its own
    run_dir.mkdir(parents=True, exist_ok=True)

    if linear_branch is None:
        linear_branch = is_affine(problem, grid, seed)
    # an affine map needs no hidden branch layer: the DeepONet is then a rank-p linear operator
    branch = [sensors.size, WIDTH] if linear_branch else [sensors.size, WIDTH, WIDTH, WIDTH]
    # torch's default init draws the biases at random; Glorot with zero biases puts every first-layer
    # kink of the trunk through the coordinates' origin (a corner of the box): a collinear basis
    kwargs: dict[str, Any] = {"branch": branch, "trunk": [grid.ndim, WIDTH, WIDTH, WIDTH],
                              "n_outputs": len(problem.outputs), "activation": "gelu", "init": "default"}
    kwargs.update(model_kwargs or {})
    network = build_seeded_model("deeponet", seed, **kwargs)
    task = DeepONetTask(network, sensors, problem.outputs, train=train, loss=loss, normalize=normalize,
                        problem=problem)
    settings = {"kind": "deeponet", "problem": problem_spec(problem), "model": "deeponet", "model_kwargs": kwargs,
                "n_train": n_train, "n_test": n_test, "resolution": grid.shape[0], "max_sensors": max_sensors,
                "data": None if data is None else str(data),
                "steps": steps, "lr": lr, "loss": loss, "normalize": normalize, "linear_branch": linear_branch,
                "device": device, "seed": seed,
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


def _file_data(problem: Problem, path: Path, n_train: int, n_test: int, resolution: int | None,
               max_sensors: int) -> tuple[Grid, Any, Any, Any]:
    """Grid, default sensors and the train/test DeepONet data read from a dataset file.

    The split is :func:`~sciml.workflows.common.split_indices` (first ``n_train``, last ``n_test``
    samples), as in :func:`~sciml.workflows.operator.train_operator`; ``resolution`` reads every k-th
    node of a finer file, as there.
    """
    from ..data.dataset import load_arrays
    from ..data.hdf5 import open_dataset_file
    from ..deeponet.data import DeepONetData
    from .operator import _stride

    info = open_dataset_file(path)
    if info.problem != problem.name:
        raise ConfigError(f"train_deeponet: {path} holds data of problem {info.problem!r}, not {problem.name!r}")
    train_indices, test_indices = split_indices(info.n, n_train, n_test, f"train_deeponet: {path}")
    stride = 1 if resolution is None else _stride(info.grid.shape, problem.resolve_grid(resolution).shape,
                                                  f"train_deeponet: data {path}")
    grid = info.grid.subsample(stride)
    sensors = default_sensors(problem, grid, max_sensors)
    points = grid.points()  # the Cartesian layout at every node, as make_deeponet_data's default

    def split(indices: np.ndarray) -> DeepONetData:
        import torch

        arrays = load_arrays(path, inputs=list(sensors.names), outputs=list(problem.outputs), stride=stride,
                             indices=indices, dtype=np.float64)
        u = sensors.read({name: arrays.x[:, i] for i, name in enumerate(arrays.input_names)})
        y = arrays.y.reshape(len(indices), len(arrays.output_names), -1)
        return DeepONetData(torch.as_tensor(u, dtype=torch.float32), torch.as_tensor(points, dtype=torch.float32),
                            torch.as_tensor(y, dtype=torch.float32))

    return grid, sensors, split(train_indices), split(test_indices)
