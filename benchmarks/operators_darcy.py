"""MgNO, the Galerkin Transformer, FNO and DeepONet on the same regenerated Darcy data, CPU.

Data: ``problems/darcy.py`` (``-div(a grad u) = 1``, ``u = 0`` on the boundary, ``a`` in {3, 12} from a
thresholded GRF), ``n_train + n_test`` samples generated once at 85 x 85 (solved on 421 x 421 and
strided, as the FNO data were); the 43 x 43 rows train on every second node of the same file (solved
about ten times finer). Train = the first ``n_train`` samples, test = the last ``n_test``; every method
sees the same samples in the same splits. ``rel_l2_mean_fine``: 43 rows are evaluated at 85 on the same
test samples (the file at full resolution); 85 rows at ``--fine-top`` (169 by default) on ``n_test``
fresh samples generated there with seed ``seed + 1`` (other instances, see ``fine_samples``); each such
sample is solved on 845 x 845 nodes, minutes on a 2-core CPU, so ``--fine-top 0`` leaves it out.

Recipes, each the paper's scaled to a shared 2-core CPU (every row holds its ``recipe``, every number):

* **FNO** (Li et al. 2021): 12 x 12 modes, width 32, 4 layers, 8 points of zero padding; Adam (L2
  weight decay 1e-4, as the reference's Adam), lr 1e-3, batch 20, relative L2 loss, step schedule
  halving the lr every fifth of the run (the paper: 500 epochs, halving every 100; here 100 / 20).
* **MgNO** (He, Liu, Xu 2024): 4 layers, 24 channels, zero padding, levels down to a 3-node grid
  (5 at 43, 6 at 85), pre-smoothing 1, ..., 1, 2; Adam (weight decay 1e-4), OneCycle per epoch
  (max lr 5e-4, div 2, final div 100, pct 0.2), batch 8, loss ``rel_h1`` (relative L2 plus the
  relative H1 norm by finite differences; the reference uses an FFT pseudo-H1 alone); 500 epochs in
  the paper, 100 here.
* **Galerkin Transformer** (Cao 2021): the paper's 2-D model (d 128, 6 Galerkin layers, 4 heads, FFN
  256, spectral regressor 32 wide with 12 modes), attention on every third node (43 -> 15, 85 -> 29),
  dropout 0.05 (encoder, FFN, downsampler), norm eps 1e-7; Adam, OneCycle per batch (max lr 1e-3,
  div 1e4, final div 1e4, pct 0.3), gradient clip 0.99, loss relative L2 + 0.5 relative H1 seminorm
  (central differences), batch 8 (the README's commands use 4), 100 epochs as in the paper.
* **DeepONet** (Lu et al. 2022's CNN-branch variant, configuration ours): branch = four stride-2
  3x3 convolutions (16, 32, 64, 128 channels, ReLU) and ``Linear -> 256 -> 128``; trunk MLP
  ``[2, 128, 128, 128, 128]`` ReLU; Adam lr 1e-3, cosine decay per step, batch 20, relative L2 loss,
  100 epochs. Not discretisation invariant: at the finer resolution its branch reads the training
  sensors (every second node) and its trunk answers at every fine node.

``--epochs 100 50`` gives the epochs of every method at each of ``--resolutions 43 85``;
``--epochs-of galerkin=30`` overrides one method's (each row stores its recipe).

Run: ``python benchmarks/operators_darcy.py --threads 2`` (full: hours, see the JSON's timings);
``--quick`` (tiny sizes at the real resolutions, one epoch; writes ``operators_darcy.quick.json``);
``--methods mgno fno``. Killed runs resume (finished rows from ``runs/bench/operators_darcy.rows.json``, a
row in training from its checkpoint); later runs add rows to the same table. Writes ``benchmarks/results/operators_darcy.json`` and ``operators_darcy.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "operators_darcy.json"
METHODS = ("mgno", "galerkin", "fno", "deeponet")
SCALING = ("the papers train FNO and MgNO for 500 epochs and the Galerkin Transformer for 100; here every "
           "row states its epochs in its recipe (default 100 at 43, 50 at 85, --epochs-of per method), on CPU")


def mgno_levels(n: int) -> int:
    """Levels until the coarsest grid has 3 nodes per axis (43 -> 5, 85 -> 6)."""
    levels = 1
    while (n + 1) // 2 >= 3:
        n, levels = (n + 1) // 2, levels + 1
    return levels


def recipes(resolution: int, epochs: int) -> dict[str, dict[str, Any]]:
    return {
        "fno": {"model": {"n_modes": [12, 12], "width": 32, "n_layers": 4, "padding": 8}, "loss": "rel_l2",
                "optimizer": "adam", "lr": 1e-3, "weight_decay": 1e-4, "schedule": "step",
                "schedule_kwargs": {"step_size": max(1, epochs // 5), "gamma": 0.5}, "schedule_interval": "epoch",
                "batch_size": 20, "epochs": epochs},
        "mgno": {"model": {"channels": 24, "n_layers": 4, "levels": mgno_levels(resolution), "ndim": 2,
                           "padding_mode": "zeros"}, "loss": "rel_h1", "optimizer": "adam", "lr": 5e-4,
                 "weight_decay": 1e-4, "schedule": "onecycle", "schedule_interval": "epoch",
                 "schedule_kwargs": {"div_factor": 2.0, "final_div_factor": 100.0, "pct_start": 0.2},
                 "batch_size": 8, "epochs": epochs},
        "galerkin": {"model": {"ndim": 2, "stride": 3, "norm_eps": 1e-7, "dropout": 0.05,
                               "downsampler_dropout": 0.05}, "loss": "rel_l2+h1", "h1_weight": 0.5,
                     "optimizer": "adam", "lr": 1e-3, "schedule": "onecycle",
                     "schedule_kwargs": {"div_factor": 1e4, "final_div_factor": 1e4, "pct_start": 0.3},
                     "grad_clip": 0.99, "batch_size": 8, "epochs": epochs},
        "deeponet": {"model": {"p": 128, "channels": [16, 32, 64, 128], "hidden": 256, "trunk": [128, 128, 128]},
                     "loss": "rel_l2", "optimizer": "adam", "lr": 1e-3, "schedule": "cosine", "batch_size": 20,
                     "epochs": epochs},
    }


def main(argv: list[str] | None = None) -> None:
    import _operators as ops  # torch comes with it
    from _common import results_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes at the real resolutions (smoke test)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[43, 85])
    parser.add_argument("--epochs", type=int, nargs="+", default=[100, 50], help="one per resolution")
    parser.add_argument("--data-resolution", type=int, default=85, help="the file every resolution is strided from")
    parser.add_argument("--fine-top", type=int, default=None, help="fine evaluation of rows trained at the data "
                        "resolution (default 169, --quick 0; 0: none)")
    ops.add_run_arguments(parser, n_train=1000, reference_samples=10)
    args = parser.parse_args(argv)
    if args.quick:
        args.n_train, args.n_test, args.epochs, args.reference_samples = 32, 4, [1], 2
    if args.fine_top is None:
        args.fine_top = 0 if args.quick else 169
    if len(args.epochs) == 1:
        args.epochs = args.epochs * len(args.resolutions)
    if len(args.epochs) != len(args.resolutions):
        parser.error("--epochs: give one value, or one per resolution")
    args.out = results_path(RESULTS, args.out, args.quick)

    import numpy as np

    import sciml

    machine, bench = ops.start(args)  # runs/bench/<bench>/<row>
    problem = sciml.load_problem("darcy")
    n = args.n_train + args.n_test
    epochs_of = ops.parse_epochs_of(args.epochs_of, METHODS)
    # Shared settings: rows trained under other ones are discarded. Resolutions, methods, recipes and
    # the fine evaluation (``fine_resolution``; --fine-top 0 skips the costly 169 file) are per row, so
    # the table can grow run by run.
    settings = {"problem": problem.describe(), "n_train": args.n_train, "n_test": args.n_test, "seed": args.seed,
                "data": f"darcy at {args.data_resolution} (solved at {problem.solve_grid(problem.resolve_grid(args.data_resolution)).shape[0]}), "
                        f"{n} samples, seed {args.seed}; train = first n_train, test = last n_test",
                "quick": args.quick, "infer_batch": args.infer_batch, "reference_samples": args.reference_samples}
    rows = ops.Rows(args.out, settings, ops.RUNS / bench)
    data = ops.dataset_file(problem, n, args.data_resolution, args.seed, args.workers)
    test_rows = np.arange(args.n_train, n)
    fine_top = None
    if args.fine_top and args.data_resolution in args.resolutions:
        path = ops.dataset_file(problem, args.n_test, args.fine_top, args.seed + 1, args.workers)
        fine_top = ops.load(path, np.arange(args.n_test))
    for res, epochs in zip(args.resolutions, args.epochs):
        stride = ops.stride_between(args.data_resolution, res)
        train = ops.load(data, np.arange(args.n_train), stride)
        tests = {"test": ops.load(data, test_rows, stride)}
        fine_res, same = None, None
        if res != args.data_resolution and (args.data_resolution - 1) % (2 * (res - 1)) == 0:
            fine_res, same = 2 * res - 1, True
            tests["fine"] = ops.load(data, test_rows, stride // 2)
        elif res == args.data_resolution and fine_top is not None:
            fine_res, same, tests["fine"] = args.fine_top, False, fine_top
        k = min(args.reference_samples, args.n_test)
        ref = {"ms": None}

        def reference(ref: dict = ref, test: Any = tests["test"], k: int = k) -> float:
            if ref["ms"] is None:
                ref["ms"] = ops.reference_ms_per_sample(problem, {"a": test.x[:k, 0].double().numpy()}, test.grid)
            return ref["ms"]

        for method in args.methods:
            recipe = recipes(res, epochs_of.get(method, epochs))[method]
            row_id = f"{method}@{res}"

            def make(method: str = method, recipe: dict = recipe, row_id: str = row_id, res: int = res,
                     train: Any = train, tests: dict = tests, fine_res: Any = fine_res, same: Any = same,
                     reference: Any = reference, k: int = k) -> dict[str, Any]:
                row = ops.train_row(row_id, method, recipe, train, tests, bench=bench, seed=args.seed,
                                    infer_batch=args.infer_batch)
                row.update(resolution=res, fine_resolution=fine_res, fine_samples=None if same is None else
                           ("same test samples" if same else f"{args.n_test} fresh samples, seed {args.seed + 1}"),
                           reference_ms_per_sample=reference(), reference_samples=k, threads=args.threads)
                return ops.add_speedup(row)

            rows.run(row_id, recipe, make)
    out_rows = rows.table(lambda r: (r["resolution"], METHODS.index(r["method"])))
    notes = [f"Darcy, {args.n_train} train / {args.n_test} test, data generated by sciml at {args.data_resolution} "
             f"(lower resolutions strided from it); torch threads and CPU per row (`threads`, `cpu`).",
             "reference_ms_per_sample: sciml's float64 FD reference as it makes data (solve grid 5x finer, "
             "then strided); speedup = reference / inference, both per sample in the same run."]
    ops.write_results(args.out, "operators_darcy", machine, out_rows, "Operators on Darcy flow",
                      {**settings, "scaling": SCALING}, notes, args.quick)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
