"""The Galerkin Transformer, MgNO, FNO and DeepONet on the same regenerated 1-D Burgers data, CPU.

Data: ``problems/burgers1d.py`` (viscous Burgers, nu = 0.1, periodic on [0, 1), ``u0 -> u(., 1)``, the
FNO benchmark's GRF initial data, pseudo-spectral ETDRK4 reference), ``n_train + n_test`` samples
generated once at 1025 nodes (1024 periodic points; solved at 2048 and subsampled). Training and the
test error at 513 nodes (512 periodic points) read every second node; ``rel_l2_mean_fine`` is the
error at 1025 nodes on the same test samples. Train = the first ``n_train`` (1024, the Galerkin
Transformer's split), test = the last ``n_test`` (100).

Recipes (every row holds its ``recipe``, every number):

* **Galerkin Transformer** (Cao 2021, ex1): the paper's 1-D model (d 96, 4 Galerkin layers, 1 head,
  FFN 192, spectral regressor 48 wide with 16 modes), no dropout; Adam, OneCycle per batch (max lr
  1e-3, div 1e4, final div 1e4, pct 0.2), gradient clip 0.999, loss relative L2 + 0.1 relative H1
  seminorm (central differences), batch 8, 100 epochs: the paper's recipe unscaled except for the
  resolution (it trains at 2048 or 8192 points).
* **FNO-1D** (Li et al. 2021: 16 modes, width 64, 4 layers, no padding: periodic) trained with the
  *same* one-cycle recipe (the Galerkin Transformer paper's FNO protocol), relative L2 loss.
* **MgNO-1D** (no Burgers configuration in the reference code; ours): 4 layers, 64 channels,
  circular padding, levels down to 3 nodes (513 -> 9 nodes: 7 levels); MgNO's Darcy recipe (Adam
  with weight decay 1e-4, OneCycle per epoch with max lr 5e-4, div 2, final div 100, pct 0.2,
  ``rel_h1`` loss, batch 8), 100 epochs.
* **DeepONet** (CNN branch, ours): five stride-2 3-point convolutions (16 ... 128 channels, ReLU),
  ``Linear -> 256 -> 128``; trunk ``[1, 128, 128, 128, 128]`` ReLU; Adam lr 1e-3, cosine, batch 20,
  relative L2, 100 epochs; at 1025 nodes its branch reads every second node.

The node grid repeats the first point at x = 1 (sciml's periodic convention); every network sees the
512 (1024) distinct points and the repeated node is put back on its answer (OperatorTask's
``periodic_axes``), so FNO's FFT and MgNO's circular padding see the true period.

Run: ``python benchmarks/operators_burgers.py --threads 2``; ``--quick`` (tiny sizes, one epoch, writes
``operators_burgers.quick.json``). Resumes like the other operator benchmarks (``_operators.py``).
Writes ``benchmarks/results/operators_burgers.json`` and ``operators_burgers.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "operators_burgers.json"
METHODS = ("galerkin", "mgno", "fno", "deeponet")
ONE_CYCLE = {"div_factor": 1e4, "final_div_factor": 1e4, "pct_start": 0.2}


def recipes(resolution: int, epochs: int) -> dict[str, dict[str, Any]]:
    from operators_darcy import mgno_levels

    out = {
        "galerkin": {"model": {"ndim": 1}, "loss": "rel_l2+h1", "h1_weight": 0.1, "optimizer": "adam", "lr": 1e-3,
                     "schedule": "onecycle", "schedule_kwargs": ONE_CYCLE, "grad_clip": 0.999, "batch_size": 8,
                     "epochs": epochs},
        "fno": {"model": {"n_modes": [16], "width": 64, "n_layers": 4, "padding": 0}, "loss": "rel_l2",
                "optimizer": "adam", "lr": 1e-3, "schedule": "onecycle", "schedule_kwargs": ONE_CYCLE,
                "batch_size": 8, "epochs": epochs},
        "mgno": {"model": {"channels": 64, "n_layers": 4, "levels": mgno_levels(resolution), "ndim": 1,
                           "padding_mode": "circular"}, "loss": "rel_h1", "optimizer": "adam", "lr": 5e-4,
                 "weight_decay": 1e-4, "schedule": "onecycle", "schedule_interval": "epoch",
                 "schedule_kwargs": {"div_factor": 2.0, "final_div_factor": 100.0, "pct_start": 0.2},
                 "batch_size": 8, "epochs": epochs},
        "deeponet": {"model": {"p": 128, "channels": [16, 32, 64, 128, 128], "hidden": 256,
                               "trunk": [128, 128, 128]}, "loss": "rel_l2", "optimizer": "adam", "lr": 1e-3,
                     "schedule": "cosine", "batch_size": 20, "epochs": epochs},
    }
    # x = 1 repeats x = 0: every network sees the 512 distinct points (OperatorTask's periodic_axes)
    return {method: {**recipe, "periodic_axes": [0]} for method, recipe in out.items()}


def main(argv: list[str] | None = None) -> None:
    import _operators as ops  # torch comes with it
    from _common import results_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes at the real resolution (smoke test)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--resolution", type=int, default=513)
    parser.add_argument("--data-resolution", type=int, default=1025)
    parser.add_argument("--epochs", type=int, default=100)
    ops.add_run_arguments(parser, n_train=1024, reference_samples=20)
    args = parser.parse_args(argv)
    if args.quick:
        args.n_train, args.n_test, args.epochs, args.reference_samples = 32, 4, 1, 4
    args.out = results_path(RESULTS, args.out, args.quick)

    import numpy as np

    import sciml

    machine, bench = ops.start(args)  # runs/bench/<bench>/<row>
    problem = sciml.load_problem("burgers1d")
    n = args.n_train + args.n_test
    epochs_of = ops.parse_epochs_of(args.epochs_of, METHODS)
    # Shared settings: rows trained under other ones are discarded; recipes are per row.
    settings = {"problem": problem.describe(), "n_train": args.n_train, "n_test": args.n_test, "seed": args.seed,
                "data": f"burgers1d at {args.data_resolution} nodes, {n} samples, seed {args.seed}; train = first "
                        "n_train, test = last n_test", "resolution": args.resolution,
                "fine_resolution": args.data_resolution, "quick": args.quick,
                "infer_batch": args.infer_batch, "reference_samples": args.reference_samples}
    rows = ops.Rows(args.out, settings, ops.RUNS / bench)
    data = ops.dataset_file(problem, n, args.data_resolution, args.seed, args.workers)
    stride = ops.stride_between(args.data_resolution, args.resolution)
    test_rows = np.arange(args.n_train, n)
    train = ops.load(data, np.arange(args.n_train), stride)
    tests = {"test": ops.load(data, test_rows, stride), "fine": ops.load(data, test_rows, 1)}
    k = min(args.reference_samples, args.n_test)
    reference = ops.reference_ms_per_sample(problem, {"u0": tests["test"].x[:k, 0].double().numpy()},
                                            tests["test"].grid)
    for method in args.methods:
        recipe = recipes(args.resolution, epochs_of.get(method, args.epochs))[method]

        def make(method: str = method, recipe: dict = recipe) -> dict[str, Any]:
            row = ops.train_row(method, method, recipe, train, tests, bench=bench, seed=args.seed,
                                infer_batch=args.infer_batch)
            row.update(resolution=args.resolution, fine_resolution=args.data_resolution,
                       fine_samples="same test samples", reference_ms_per_sample=reference, reference_samples=k,
                       threads=args.threads)
            return ops.add_speedup(row)

        rows.run(method, recipe, make)
    out_rows = rows.table(lambda r: METHODS.index(r["method"]))
    notes = [f"Burgers (nu = 0.1), {args.n_train} train / {args.n_test} test at {args.resolution} nodes, fine "
             f"evaluation at {args.data_resolution} on the same samples; torch threads and CPU per row (`threads`, "
             "`cpu`).",
             "reference_ms_per_sample: sciml's float64 ETDRK4 pseudo-spectral reference as it makes data (twice "
             "finer, then strided); speedup = reference / inference, per sample, same run."]
    ops.write_results(args.out, "operators_burgers", machine, out_rows, "Operators on 1-D Burgers", settings,
                      notes, args.quick)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
