"""Inverse Darcy (noisy u -> coefficient a on a coarse grid) with the Galerkin Transformer, FNO, MgNO, DeepONet.

Problem: ``problems/darcy_inverse.py``: the input is the Darcy solution ``u`` on 85 x 85 nodes with
relative Gaussian noise (``u + noise * rms(u) * xi``), the output the coefficient ``a`` (3 or 12) on the
22 x 22 grid of every fourth node (the Galerkin Transformer's inverse example maps 141 -> 36 nodes,
also a stride of four-ish). Noise levels 0, 1% and 10%, as in the paper.

Data: the forward Darcy file of ``operators_darcy`` (same seed: the same ``(a, u)`` samples and splits),
with the noise added by ``InverseProblem.add_noise`` from the very random streams
``sciml.data.generate(darcy_inverse, ...)`` would draw (shard by shard), so each noise level trains on
exactly the data ``sciml generate darcy_inverse`` makes without solving 1100 421 x 421 systems per level
(:func:`noisy_inverse_data`; ``tests/test_operator_training.py`` checks the equality). Train = the first
``n_train``, test = the last ``n_test``. ``rel_l2_mean_fine``: the same models given ``u`` at
``--fine`` (169) nodes with the same noise level, on ``n_test`` fresh samples (seed ``seed + 1``),
still answering on the 22 x 22 grid.

Recipes (``settings.recipes``):

* **Galerkin Transformer, inverse variant** (Cao 2021, ex3): d 192, 6 Galerkin layers, 4 heads, FFN 384,
  attention on the 22 x 22 output grid, point-wise decoder (the target is discontinuous), dropout
  0.05 everywhere, norm eps 1e-7; Adam, OneCycle per batch (max lr 1e-3, div 1e4, final div 1e4,
  pct 0.3), gradient clip 0.99, relative L2 loss (the paper's gamma = 0 here), batch 8, 100 epochs.
* **FNO**, **MgNO**, **DeepONet**: the recipes of ``operators_darcy`` at 85 with the relative L2 loss
  (the coefficient has no derivative to penalise); FNO and MgNO answer on the 85-node grid and are
  compared at the 22 x 22 nodes, DeepONet's trunk answers there directly.

There is no classical inverse solver in sciml to time: ``reference_ms_per_sample`` is null and
``forward_solve_ms_per_sample`` gives one forward solve as the data were made (a classical inversion
needs many of them).

Run: ``python benchmarks/operators_inverse_darcy.py --threads 2``; ``--quick`` (tiny sizes, one epoch,
writes ``operators_inverse_darcy.quick.json``); ``--noise 0.01``; ``--methods galerkin fno``.
Writes ``benchmarks/results/operators_inverse_darcy.json`` and ``operators_inverse_darcy.md``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "operators_inverse_darcy.json"
METHODS = ("galerkin", "fno", "mgno", "deeponet")
OUTPUT_SIZE = 22


def recipes(epochs: int, output_size: int = OUTPUT_SIZE) -> dict[str, dict[str, Any]]:
    from operators_darcy import recipes as darcy_recipes

    forward = darcy_recipes(85, epochs)
    out = {
        "galerkin": {"model": {"ndim": 2, "d_model": 192, "n_layers": 6, "n_heads": 4, "dim_feedforward": 384,
                               "decoder": "pointwise", "coarse": output_size, "out_size": output_size,
                               "dropout": 0.05, "downsampler_dropout": 0.05, "upsampler_dropout": 0.05,
                               "decoder_dropout": 0.05, "norm_eps": 1e-7},
                     "loss": "rel_l2", "optimizer": "adam", "lr": 1e-3, "schedule": "onecycle",
                     "schedule_kwargs": {"div_factor": 1e4, "final_div_factor": 1e4, "pct_start": 0.3},
                     "grad_clip": 0.99, "batch_size": 8, "epochs": epochs},
    }
    for method in ("fno", "mgno", "deeponet"):
        out[method] = {**forward[method], "loss": "rel_l2"}
    return out


def noisy_inverse_data(problem: Any, forward: Any, seed: int, shard_size: int | None = None) -> Any:
    """``forward`` (an ArrayData of darcy samples ``a -> u``, rows 0... of a file made with ``seed``)
    as inverse samples ``u + noise -> a``, with the noise ``generate(problem, ..., seed)`` would draw.

    ``generate`` gives shard ``k`` the generator ``shard_rng(seed, k)``; ``InverseProblem.make_samples``
    lets the forward problem spawn one child per input from it, then draws the noise from the next child.
    """
    import _operators as ops

    from sciml.data import DEFAULT_SHARD_SIZE
    from sciml.data.shards import shard_rng

    size = shard_size or DEFAULT_SHARD_SIZE
    u = forward.y[:, 0].double().numpy()
    noisy = np.empty_like(u)
    for k in range(math.ceil(len(u) / size)):
        rows = slice(k * size, min(len(u), (k + 1) * size))
        rng = shard_rng(seed, k)
        rng.spawn(len(problem.forward.inputs))  # what the forward sampling takes
        noisy[rows] = problem.add_noise({"u": u[rows]}, rng.spawn(1)[0])["u"]
    return ops.ArrayData(noisy[:, None], forward.x, forward.grid, ("u",), ("a",), forward.attrs)


def main(argv: list[str] | None = None) -> None:
    import _operators as ops  # torch comes with it
    from _common import machine_info, problem_module, results_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes at the real resolution (smoke test)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.01, 0.1])
    parser.add_argument("--resolution", type=int, default=85)
    parser.add_argument("--fine", type=int, default=None, help="fine evaluation resolution (default 169, --quick 0; "
                        "0: none)")
    parser.add_argument("--epochs", type=int, default=100)
    ops.add_run_arguments(parser, n_train=1000, reference_samples=10)
    args = parser.parse_args(argv)
    if args.quick:
        args.n_train, args.n_test, args.epochs, args.reference_samples = 32, 4, 1, 2
    if args.fine is None:
        args.fine = 0 if args.quick else 169
    args.out = results_path(RESULTS, args.out, args.quick)

    import torch

    import sciml

    torch.set_num_threads(args.threads)
    machine = machine_info(torch.get_num_threads())
    darcy = sciml.load_problem("darcy")
    module = problem_module("darcy_inverse")
    bench = args.out.stem  # training directories: runs/bench/<results file stem>/<row>
    n = args.n_train + args.n_test
    settings = {"problem": module.make_problem(0.01, OUTPUT_SIZE).describe(), "noise": args.noise,
                "output_size": OUTPUT_SIZE, "resolution": args.resolution, "fine": args.fine,
                "n_train": args.n_train, "n_test": args.n_test, "seed": args.seed, "threads": args.threads,
                "quick": args.quick, "infer_batch": args.infer_batch, "recipes": recipes(args.epochs),
                "data": f"the darcy file at {args.resolution} ({n} samples, seed {args.seed}) with generate()'s "
                        "noise streams of darcy_inverse"}
    rows = ops.Rows(args.out, settings, ops.RUNS / bench)
    data = ops.dataset_file(darcy, n, args.resolution, args.seed, args.workers)
    forward = ops.load(data, np.arange(n))
    fine_forward = None
    if args.fine:
        fine_forward = ops.load(ops.dataset_file(darcy, args.n_test, args.fine, args.seed + 1, args.workers),
                                np.arange(args.n_test))
    k = min(args.reference_samples, args.n_test)
    forward_ms = ops.reference_ms_per_sample(darcy, {"a": forward.x[-k:, 0].double().numpy()}, forward.grid)
    out_rows = []
    for noise in args.noise:
        problem = module.make_problem(noise=noise, output_size=OUTPUT_SIZE)
        full = noisy_inverse_data(problem, forward, args.seed)
        train = ops.ArrayData(full.x[: args.n_train], full.y[: args.n_train], full.grid, ("u",), ("a",))
        tests = {"test": ops.ArrayData(full.x[args.n_train :], full.y[args.n_train :], full.grid, ("u",), ("a",))}
        if fine_forward is not None:
            tests["fine"] = noisy_inverse_data(problem, fine_forward, args.seed + 1)
        for method in args.methods:
            recipe = recipes(args.epochs)[method]
            row_id = f"{method}@noise{noise:g}"

            def make(method: str = method, recipe: dict = recipe, row_id: str = row_id, noise: float = noise,
                     train: Any = train, tests: dict = tests) -> dict[str, Any]:
                row = ops.train_row(row_id, method, recipe, train, tests, bench=bench, seed=args.seed,
                                    infer_batch=args.infer_batch, output_size=OUTPUT_SIZE)
                row.update(noise=noise, resolution=args.resolution, output_size=OUTPUT_SIZE,
                           fine_resolution=args.fine or None,
                           fine_samples=f"{args.n_test} fresh samples, seed {args.seed + 1}" if args.fine else None,
                           reference_ms_per_sample=None, forward_solve_ms_per_sample=forward_ms)
                return ops.add_speedup(row)

            out_rows.append(rows.run(row_id, make))
    notes = [f"Inverse Darcy: u on {args.resolution}^2 with relative Gaussian noise -> a on {OUTPUT_SIZE}^2; "
             f"{args.n_train} train / {args.n_test} test; {args.threads} torch threads on {machine['cpu']}.",
             f"No classical inverse solver is timed; one forward solve as the data were made costs "
             f"{forward_ms:.0f} ms per sample (forward_solve_ms_per_sample)."]
    ops.write_results(args.out, "operators_inverse_darcy", machine, settings, out_rows,
                      "Inverse Darcy: coefficient from a noisy solution", notes, args.quick)
    rows.finish()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
