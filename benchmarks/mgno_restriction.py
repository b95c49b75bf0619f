"""MgNO's V-cycle restricting ``f`` (the reference) or the residual ``f - A u`` (multigrid's textbook choice).

Classical multigrid restricts the residual of the current iterate, so that the coarse grid solves for
the correction; the MgNO reference code restricts the right-hand side ``f`` itself and lets the
learned smoothers sort it out. ``MgNO(restrict_residual=True)`` does the former, with one more
learned ``A`` per restriction. This compares both with everything else equal: the MgNO recipe of
``operators_darcy`` (4 layers, 24 channels, 5 levels at 43, Adam with weight decay 1e-4, OneCycle
per epoch, ``rel_h1`` loss, batch 8) on the same Darcy data at 43 x 43 (the 85-node file of
``operators_darcy``, strided), with fewer samples and epochs than that benchmark (``--n-train 250
--epochs 30`` by default, about three minutes a run on one core) and several seeds (the seed draws
the initial weights and the batch order; the data are the same).

Rows: one per variant and seed, with ``params``, ``s_per_epoch``, ``epochs``, ``rel_l2_mean``,
``rel_l2_median``; then one ``mean over seeds`` row per variant.

Run: ``python benchmarks/mgno_restriction.py`` (``--seeds 0 1 2``; ``--quick``: tiny, one epoch). Resumes
like the operator benchmarks. Writes ``benchmarks/results/mgno_restriction.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "mgno_restriction.json"
VARIANTS = {"restrict f": False, "restrict residual": True}


def main(argv: list[str] | None = None) -> None:
    import _operators as ops
    from _common import results_path
    from operators_darcy import recipes

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one epoch (smoke test)")
    parser.add_argument("--resolution", type=int, default=43)
    parser.add_argument("--data-resolution", type=int, default=85)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ops.add_run_arguments(parser, n_train=250)
    args = parser.parse_args(argv)
    if args.quick:
        args.n_train, args.n_test, args.epochs, args.seeds = 32, 4, 1, [0]
    args.out = results_path(RESULTS, args.out, args.quick)

    import numpy as np

    import sciml

    machine, bench = ops.start(args)  # runs/bench/<bench>/<row>
    problem = sciml.load_problem("darcy")
    # The data file of operators_darcy (1000 + 100 samples at 85): the first n_train train, the last
    # n_test test, so the test samples are that benchmark's.
    n_file = 32 + 4 if args.quick else 1100
    if args.n_train + args.n_test > n_file:
        raise SystemExit(f"--n-train + --n-test: at most {n_file} (the operators_darcy file)")
    settings = {"problem": problem.describe(), "n_train": args.n_train, "n_test": args.n_test,
                "data": f"darcy at {args.data_resolution}, {n_file} samples, seed 0, strided to {args.resolution}; "
                        f"train = first n_train, test = last n_test", "quick": args.quick}
    rows = ops.Rows(args.out, settings, ops.RUNS / bench)
    data = ops.dataset_file(problem, n_file, args.data_resolution, 0, args.workers)
    stride = ops.stride_between(args.data_resolution, args.resolution)
    train = ops.load(data, np.arange(args.n_train), stride)
    tests = {"test": ops.load(data, np.arange(n_file - args.n_test, n_file), stride)}
    for seed in args.seeds:  # seed by seed, so that a cut-short run has both variants of the first seeds
        for variant, residual in VARIANTS.items():
            recipe = recipes(args.resolution, args.epochs)["mgno"]
            recipe["model"] = {**recipe["model"], "restrict_residual": residual}
            row_id = f"{variant.replace(' ', '_')}@seed{seed}"

            def make(variant: str = variant, recipe: dict = recipe, row_id: str = row_id,
                     seed: int = seed) -> dict[str, Any]:
                row = ops.train_row(row_id, "mgno", recipe, train, tests, bench=bench, seed=seed,
                                    infer_batch=args.infer_batch)
                return {**row, "method": f"mgno, {variant}", "seed": seed, "threads": args.threads}

            rows.run(row_id, recipe, make)
    table = rows.table(lambda r: (r["seed"], r["method"]))
    for variant in VARIANTS:
        done = [r for r in table if r["method"] == f"mgno, {variant}"]
        if done:
            table.append({"method": f"mgno, {variant}: mean over {len(done)} seed(s)",
                          **{k: float(np.mean([r[k] for r in done])) for k in ("rel_l2_mean", "rel_l2_median")},
                          "params": done[0]["params"], "epochs": done[0]["epochs"],
                          "s_per_epoch": float(np.mean([r["s_per_epoch"] for r in done if r["s_per_epoch"]]))})
    notes = [f"Darcy at {args.resolution}, {args.n_train} train / {args.n_test} test, {args.epochs} epochs, "
             f"seeds {args.seeds}; torch threads per row in `threads`, on {machine['cpu']}."]
    ops.write_results(args.out, "mgno_restriction", machine, table, "MgNO: restricting f or the residual",
                      settings, notes, args.quick)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
