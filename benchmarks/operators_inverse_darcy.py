"""Inverse Darcy (noisy u -> coefficient a on a coarse grid) with the Galerkin Transformer, FNO, MgNO, DeepONet.

Problem: ``problems/darcy_inverse.py``: the input is the Darcy solution ``u`` on ``--resolutions`` (43,
and 85) nodes per axis with relative Gaussian noise (``u + noise * rms(u) * xi``), the output the
coefficient ``a`` (3 or 12) on the 22 x 22 grid of every second node of 43 (every fourth of 85, the
Galerkin Transformer's inverse example's ratio: it maps 141 -> 36 nodes). Noise levels 0, 1% and 10%,
as in the paper. Each row states its input ``resolution``; one table holds both.

Data: the forward Darcy file of ``operators_darcy`` (85 nodes solved on 421, same seed: the same
``(a, u)`` samples and splits), strided to ``--resolution``, with the noise added by
``InverseProblem.add_noise`` from the very random streams ``sciml.data.generate(darcy_inverse, ...)``
would draw (shard by shard). At the file's own resolution each noise level is then exactly the data
``sciml generate darcy_inverse`` makes, without solving 1100 421 x 421 systems per level
(:func:`noisy_inverse_data`; ``tests/test_operator_training.py`` checks the equality); at a stride of it
the noise streams are the same and the solution is the finer solve's. Train = the first ``n_train``,
test = the last ``n_test``. ``rel_l2_mean_fine``: models trained below ``--fine`` (85) nodes given ``u``
at 85 nodes on the same test samples (the file at full resolution) with the same noise level (drawn at
85), still answering on the 22 x 22 grid; rows trained at 85 have none.

Recipes (every row holds its ``recipe``):

* **Galerkin Transformer, inverse variant** (Cao 2021, ex3: d 192, 6 Galerkin layers, 4 heads, FFN 384),
  scaled to a 2-core CPU: d 96, 4 layers, 4 heads, FFN 192 (``--paper-size`` for the paper's: about
  170 ms per sample and step on one core, 100 epochs would take five hours); attention on the 22 x 22
  output grid, point-wise decoder (the target is discontinuous), dropout 0.05 everywhere, norm eps
  1e-7; Adam, OneCycle per batch (max lr 1e-3, div 1e4, final div 1e4, pct 0.3), gradient clip 0.99,
  relative L2 loss (the paper's gamma = 0 here), batch 8; 50 epochs by default (paper 100).
* **FNO**, **MgNO**, **DeepONet**: the recipes of ``operators_darcy`` at the input resolution with the
  relative L2 loss (the coefficient has no derivative to penalise); FNO and MgNO answer on the input
  grid and are compared at the 22 x 22 nodes, DeepONet's trunk answers there directly.

There is no classical inverse solver in sciml to time: ``reference_ms_per_sample`` is null and
``forward_solve_ms_per_sample`` gives one forward solve as the data were made (a classical inversion
needs many of them).

Run: ``python benchmarks/operators_inverse_darcy.py --threads 2``; ``--quick`` (tiny sizes, one epoch,
writes ``operators_inverse_darcy.quick.json``); ``--noise 0.01``; ``--methods galerkin fno``;
``--resolutions 85``.
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


def recipes(epochs: int, resolution: int = 43, output_size: int = OUTPUT_SIZE,
            paper_size: bool = False) -> dict[str, dict[str, Any]]:
    from operators_darcy import recipes as darcy_recipes

    forward = darcy_recipes(resolution, epochs)
    size = {"d_model": 192, "n_layers": 6, "n_heads": 4, "dim_feedforward": 384} if paper_size else \
        {"d_model": 96, "n_layers": 4, "n_heads": 4, "dim_feedforward": 192}
    out = {
        "galerkin": {"model": {"ndim": 2, **size,
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
    from _common import problem_module, results_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes at the real resolution (smoke test)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.01, 0.1])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[43],
                        help="input nodes per axis (strides of the file), one set of rows each")
    parser.add_argument("--data-resolution", type=int, default=85, help="the darcy file the inputs are strided from")
    parser.add_argument("--fine", type=int, default=None, help="fine evaluation resolution of rows trained below "
                        "it (default 85, --quick 0; 0: none): the file's resolution reads the same test samples, "
                        "another makes fresh ones")
    parser.add_argument("--paper-size", action="store_true", help="the paper's Galerkin inverse model (d 192, 6 "
                        "layers) instead of the CPU-sized one")
    parser.add_argument("--epochs", type=int, default=50)
    ops.add_run_arguments(parser, n_train=1000, reference_samples=10)
    args = parser.parse_args(argv)
    if args.quick:
        args.n_train, args.n_test, args.epochs, args.reference_samples = 32, 4, 1, 2
    if args.fine is None:
        args.fine = 0 if args.quick else args.data_resolution
    args.out = results_path(RESULTS, args.out, args.quick)


    import sciml

    machine, bench = ops.start(args)  # runs/bench/<bench>/<row>
    darcy = sciml.load_problem("darcy")
    module = problem_module("darcy_inverse")
    n = args.n_train + args.n_test
    epochs_of = ops.parse_epochs_of(args.epochs_of, METHODS)
    # Shared settings: rows trained under other ones are discarded; resolutions, noise levels and
    # recipes are per row.
    settings = {"problem": module.make_problem(0.01, OUTPUT_SIZE).describe(), "output_size": OUTPUT_SIZE,
                "fine": args.fine, "n_train": args.n_train, "n_test": args.n_test,
                "seed": args.seed, "quick": args.quick, "infer_batch": args.infer_batch,
                "data": f"the darcy file at {args.data_resolution} ({n} samples, seed {args.seed}) strided to "
                        "each row's resolution, with generate()'s noise streams of darcy_inverse"}
    rows = ops.Rows(args.out, settings, ops.RUNS / bench)
    data = ops.dataset_file(darcy, n, args.data_resolution, args.seed, args.workers)
    fine_forward, fine_rows, fine_seed = None, slice(None), args.seed + 1
    if args.fine == args.data_resolution:  # the same test samples at full resolution (noise drawn there)
        fine_forward, fine_rows, fine_seed = ops.load(data, np.arange(n)), slice(args.n_train, n), args.seed
    elif args.fine:
        fine_forward = ops.load(ops.dataset_file(darcy, args.n_test, args.fine, args.seed + 1, args.workers),
                                np.arange(args.n_test))
    k = min(args.reference_samples, args.n_test)
    as_made = ops.load(data, np.arange(n - k, n))  # one forward solve as the data were made (at the file's grid)
    forward_ms = ops.reference_ms_per_sample(darcy, {"a": as_made.x[:, 0].double().numpy()}, as_made.grid)
    for res in args.resolutions:
        forward = ops.load(data, np.arange(n), ops.stride_between(args.data_resolution, res))
        fine_here = fine_forward is not None and args.fine > res
        for noise in args.noise:
            problem = module.make_problem(noise=noise, output_size=OUTPUT_SIZE)
            full = noisy_inverse_data(problem, forward, args.seed)
            train = ops.ArrayData(full.x[: args.n_train], full.y[: args.n_train], full.grid, ("u",), ("a",))
            tests = {"test": ops.ArrayData(full.x[args.n_train :], full.y[args.n_train :], full.grid, ("u",),
                                           ("a",))}
            if fine_here:
                fine = noisy_inverse_data(problem, fine_forward, fine_seed)
                tests["fine"] = ops.ArrayData(fine.x[fine_rows], fine.y[fine_rows], fine.grid, ("u",), ("a",))
            for method in args.methods:
                recipe = recipes(epochs_of.get(method, args.epochs), res, paper_size=args.paper_size)[method]
                row_id = f"{method}@{res}@noise{noise:g}"

                def make(method: str = method, recipe: dict = recipe, row_id: str = row_id, noise: float = noise,
                         train: Any = train, tests: dict = tests, res: int = res,
                         fine_here: bool = fine_here) -> dict[str, Any]:
                    row = ops.train_row(row_id, method, recipe, train, tests, bench=bench, seed=args.seed,
                                        infer_batch=args.infer_batch, output_size=OUTPUT_SIZE)
                    row.update(noise=noise, resolution=res, output_size=OUTPUT_SIZE,
                               fine_resolution=args.fine if fine_here else None,
                               fine_samples=None if not fine_here else "same test samples" if args.fine ==
                               args.data_resolution else f"{args.n_test} fresh samples, seed {args.seed + 1}",
                               reference_ms_per_sample=None, forward_solve_ms_per_sample=forward_ms,
                               threads=args.threads)
                    return ops.add_speedup(row)

                rows.run(row_id, recipe, make)
    out_rows = rows.table(lambda r: (r["noise"], r["resolution"], METHODS.index(r["method"])))
    notes = [f"Inverse Darcy: u on resolution^2 nodes with relative Gaussian noise -> a on {OUTPUT_SIZE}^2; "
             f"{args.n_train} train / {args.n_test} test; torch threads and CPU per row (`threads`, `cpu`).",
             f"No classical inverse solver is timed; one forward solve as the data were made costs "
             f"{forward_ms:.0f} ms per sample (forward_solve_ms_per_sample)."]
    ops.write_results(args.out, "operators_inverse_darcy", machine, out_rows,
                      "Inverse Darcy: coefficient from a noisy solution", settings, notes, args.quick)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
