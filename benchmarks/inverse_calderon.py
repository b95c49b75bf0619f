"""Neural inverse operators against each other and against classical inversion, on data made by sciml.

Calderon (default, ``problems/calderon.py``): the Dirichlet-to-Neumann data of 16 trigonometric probes
on a 33 x 33 grid -> the smooth conductivity. Methods: **NIO**, the NIO paper's **DeepONet** on the
flattened measurements (``flat_deeponet``), an **FNO** on the measurements' harmonic extensions
(``extended_fno``), a plain **U-Net** on the same features (``unet`` through ``extended_net``), and the
**classical inversion** (:func:`sciml.numerics.inversion.invert_conductivity`: adjoint gradients,
Tikhonov, L-BFGS-B, the regularisation weight by Morozov's discrepancy principle with tau = 1.1 at the
test noise level, at 0% noise at a 0.1% floor: the data are the model's own, an inverse crime).

Every network trains once on noise-free data (``n_train``, default 2048, the issue's minimum; the NIO
paper uses 4096) and is evaluated on the ``n_test`` last samples with multiplicative noise
``m (1 + eps xi)`` at 0, 1, 5 and 10% (fixed noise draws, the same for every method) and, for NIO,
also with half of the probes (every second one; the other networks read exactly 16 and refuse fewer).
The classical inversion runs on the first ``--classical-samples`` test samples at every noise level.

Rows: ``method``, ``noise``, ``measurements`` (used at test time), ``rel_l1_median``, ``rel_l1_mean``,
``rel_l2_mean`` (per sample; relative L1 = mean|p - a| / mean|a|, the NIO paper's metric),
``ms_per_reconstruction`` (networks: the test set in batches of 64, best of three; classical: the mean
wall time of one inversion), ``samples``, ``params``, ``s_per_epoch``, ``epochs``.

Recipes (``recipes()``; every row holds its ``recipe``): Adam, one-cycle per batch (max lr 1e-3), batch
32, ``--epochs`` (default 100; the NIO paper: 100 epochs with early stopping on a 10%-noise validation
set), loss relative L1 for every network. NIO: MLP branch (256, 256), trunk 4 x 128, p = 50, FNO width
32, 12 modes, 2 layers, trainable lift (the reference leaves it at its random initialisation; the
``nio_frozen_lift`` method measures that choice).

``--problem eit_inclusions`` is ``benchmarks/inverse_eit.py``'s set-up (its own methods and noise levels).

Run: ``python benchmarks/inverse_calderon.py`` (full: about an hour per network on 2 cores);
``--quick`` (tiny, one epoch; writes ``inverse_calderon.quick.json``). Resumes like the operator
benchmarks: finished rows in ``runs/bench/<name>.rows.json``, a network killed in training from its
checkpoint.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "inverse_calderon.json"
METHODS = ("nio", "nio_frozen_lift", "flat_deeponet", "extended_fno", "unet", "classical")
NOISE = (0.0, 0.01, 0.05, 0.1)


def recipes(epochs: int, loss: str | None = "rel_l1") -> dict[str, dict[str, Any]]:
    """Every method's recipe; ``loss=None`` lets the workflow pick (``bce`` for a 0/1 map)."""
    common = {"optimizer": "adam", "lr": 1e-3, "schedule": "onecycle", "batch_size": 32, "epochs": epochs,
              "loss": loss}
    nio = {"branch": "mlp", "branch_hidden": [256, 256], "trunk_hidden": [128] * 4, "n_basis": 50, "width": 32,
           "n_modes": 12, "n_layers": 2}
    return {
        "nio": {**common, "model": "nio", "kwargs": nio},
        "nio_frozen_lift": {**common, "model": "nio", "kwargs": {**nio, "train_lift": False}},
        "flat_deeponet": {**common, "model": "flat_deeponet", "kwargs": {}},
        "extended_fno": {**common, "model": "extended_fno", "kwargs": {"width": 32, "n_modes": 12, "n_layers": 4}},
        "unet": {**common, "model": "unet", "kwargs": {"backbone_kwargs": {"dim": 16, "levels": 3, "input_size": 32}}},
        "uit": {**common, "model": "uit", "kwargs": {"backbone_kwargs": {"dim": 16, "levels": 3, "input_size": 32}}},
    }


def noisy(m: Any, level: float, seed: int) -> Any:
    """The test measurements with multiplicative noise ``m (1 + level xi)`` (one fixed draw per level)."""
    import torch

    if level == 0:
        return m
    gen = torch.Generator().manual_seed(seed + int(round(level * 1e4)))
    return m * (1 + level * torch.randn(m.shape, generator=gen, dtype=m.dtype))


def network_rows(method: str, recipe: dict[str, Any], data_path: Path, args: Any, bench: str,
                 noise_levels: tuple[float, ...]) -> list[dict[str, Any]]:
    """Train one network (resumable) and evaluate it at every noise level (and with half the probes)."""
    import _operators as ops
    import torch

    from sciml.inverse import MeasurementData
    from sciml.workflows.inverse import train_inverse

    run = train_inverse(args.problem, model=recipe["model"], model_kwargs=recipe["kwargs"], data=data_path,
                        n_train=args.n_train, n_test=args.n_test, epochs=recipe["epochs"],
                        batch_size=recipe["batch_size"], lr=recipe["lr"], schedule=recipe["schedule"],
                        loss=recipe["loss"], device="cpu", seed=args.seed, out_dir=ops.RUNS / bench / method,
                        progress=None, resume=True)
    task = run.solver.task.eval()
    full = MeasurementData(data_path)
    test = full.subset(np.arange(len(full) - args.n_test, len(full)))
    subsets = [None] + ([list(range(0, full.n_measurements, 2))] if task.fixed_measurements is None else [])
    rows = []
    for level in noise_levels:
        data = test.subset(np.arange(len(test)))
        data.m = noisy(test.m, level, args.seed)
        for patterns in subsets:
            errors = task.per_sample_errors(data, patterns=patterns)
            m = data.m if patterns is None else data.m[:, patterns]
            rows.append({"method": method, "noise": level, "measurements": m.shape[1],
                         "rel_l1_median": float(np.median(errors["rel_l1"])),
                         "rel_l1_mean": float(errors["rel_l1"].mean()), "rel_l2_mean": float(errors["rel_l2"].mean()),
                         "ms_per_reconstruction": _infer_ms(task, m, patterns), "samples": len(data),
                         "params": run.result.params, "s_per_epoch": run.result.s_per_epoch,
                         "epochs": run.result.epochs, "threads": torch.get_num_threads()})
    return rows


def _infer_ms(task: Any, m: Any, patterns: Any, batch: int = 64) -> float:
    import torch

    with torch.no_grad():
        task(m[:batch], patterns)
        best = math.inf
        for _ in range(3):
            t0 = time.perf_counter()
            for i in range(0, len(m), batch):
                task(m[i:i + batch], patterns)
            best = min(best, time.perf_counter() - t0)
    return 1000 * best / len(m)


def classical_rows(data_path: Path, args: Any, noise_levels: tuple[float, ...]) -> list[dict[str, Any]]:
    """The adjoint L-BFGS inversion on the first test samples, at every noise level."""
    import torch

    from sciml.inverse import MeasurementData, relative_l1_per_sample
    from sciml.numerics.conductivity import trig_patterns
    from sciml.numerics.inversion import invert_conductivity

    full = MeasurementData(data_path)
    test = full.subset(np.arange(len(full) - args.n_test, len(full)))
    k = min(args.classical_samples, len(test))
    patterns = trig_patterns(full.grid, full.n_measurements)
    rows = []
    for level in noise_levels:
        m = noisy(test.m.double(), level, args.seed)[:k].numpy()
        results = [invert_conductivity(m[i], patterns, full.grid, noise_level=max(level, 1e-3)) for i in range(k)]
        a = torch.as_tensor(np.stack([r.a for r in results]))[:, None]
        truth = test.y[:k].double()
        l1 = relative_l1_per_sample(a, truth).numpy()
        l2 = ((a - truth).flatten(1).norm(dim=1) / truth.flatten(1).norm(dim=1)).numpy()
        rows.append({"method": "classical", "noise": level, "measurements": full.n_measurements,
                     "rel_l1_median": float(np.median(l1)), "rel_l1_mean": float(l1.mean()),
                     "rel_l2_mean": float(l2.mean()),
                     "ms_per_reconstruction": 1000 * float(np.mean([r.seconds for r in results])), "samples": k,
                     "alpha_median": float(np.median([r.alpha for r in results])),
                     "reasons": sorted({r.reason.split(":")[0] for r in results}), "threads": 1})
    return rows


def main(argv: list[str] | None = None, problem: str = "calderon", results: Path = RESULTS,
         methods: tuple[str, ...] = METHODS, noise_levels: tuple[float, ...] = NOISE, loss: str | None = "rel_l1",
         description: str | None = None) -> None:
    import _operators as ops
    from _common import results_path

    parser = argparse.ArgumentParser(description=description or __doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one epoch (smoke test)")
    parser.add_argument("--problem", default=problem)
    parser.add_argument("--methods", nargs="+", default=list(methods), choices=list(METHODS) + ["uit"])
    parser.add_argument("--noise", type=float, nargs="+", default=list(noise_levels))
    parser.add_argument("--resolution", type=int, default=33)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--classical-samples", type=int, default=10)
    ops.add_run_arguments(parser, n_train=2048)
    args = parser.parse_args(argv)
    if args.quick:
        args.n_train, args.n_test, args.epochs, args.classical_samples, args.resolution = 64, 8, 1, 2, 17
    args.out = results_path(results, args.out, args.quick)

    import sciml
    from sciml.data import generate
    from sciml.fields import Grid

    machine, bench = ops.start(args)
    prob = sciml.load_problem(args.problem)
    n = args.n_train + args.n_test
    grid = Grid(args.resolution, ndim=2)
    settings = {"problem": prob.describe(), "n_train": args.n_train, "n_test": args.n_test, "seed": args.seed,
                "resolution": args.resolution, "quick": args.quick,
                "data": f"{args.problem} at {args.resolution}, {n} samples, seed {args.seed}, noise-free; "
                        "test noise drawn per level with a fixed seed"}
    rows = ops.Rows(args.out, settings, ops.RUNS / bench)
    data_path = ops.RUNS / "data" / f"{args.problem}_{args.resolution}_n{n}_seed{args.seed}.h5"
    generate(prob, n, grid, seed=args.seed, path=data_path, workers=args.workers, progress=None)
    epochs_of = ops.parse_epochs_of(args.epochs_of, list(METHODS) + ["uit"])
    noise = tuple(args.noise)
    for method in args.methods:
        if method == "classical":
            recipe = {"method": "classical", "samples": args.classical_samples, "noise": list(noise)}
            rows.run(method, recipe, lambda recipe=recipe: {"method": "classical", "results":
                                                            classical_rows(data_path, args, noise)})
            continue
        recipe = recipes(epochs_of.get(method, args.epochs), loss)[method]
        recipe = {**recipe, "noise": list(noise)}
        rows.run(method, recipe, lambda method=method, recipe=recipe: {
            "method": method, "results": network_rows(method, recipe, data_path, args, bench, noise)})
    order = {m: i for i, m in enumerate(list(METHODS) + ["uit"])}
    table = [r for stored in rows.table(lambda s: order.get(s["method"], 99)) for r in stored["results"]]
    table.sort(key=lambda r: (r["noise"], -r["measurements"], order.get(r["method"], 99)))
    notes = [f"{args.problem} at {args.resolution}^2, {args.n_train} train / {args.n_test} test, networks trained "
             f"noise-free and tested with multiplicative noise; {machine['cpu']}."]
    ops.write_results(args.out, results.stem, machine, table, f"Inverse operators on {args.problem}", settings,
                      notes, args.quick)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
