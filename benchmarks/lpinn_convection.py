"""Plain PINN against Lagrangian PINN (Mojgani et al. 2023) on fast periodic transport, CPU.

Cases (``problems/convection.py`` and ``problems/burgers_periodic.py``):

* convection(-diffusion) ``u_t + c u_x = nu u_xx`` on ``[0, 2 pi) x [0, 1]``, ``u0 = sin x``, for
  ``c in {10, 30, 50}`` and ``nu in {0, 0.01}`` (Krishnapriyan et al. 2021: the plain PINN fails from
  ``c = 20-30`` on);
* viscous Burgers ``u_t + u u_x = 0.01 u_xx`` on ``[0, 2 pi) x [0, 0.5]``, ``u0 = sin x + C``, for
  ``C in {0, 10}`` (the drift ``C`` adds fast transport to the nonlinearity).

Both methods get the same settings: two hard constraints (periodicity by the ``cos, sin`` embedding of
``x``, the initial condition by ``u0 + t N``), tanh MLPs ``[3] + [50] * 4 + [1]`` with Glorot-normal
weights (the LPINN has two of them, one per branch, so twice the parameters: that is the method),
the same 512 uniform collocation points (fixed), Adam at ``lr = 1e-3`` for 400 steps, then 10
L-BFGS steps of at most 20 iterations each in float64 (``pinn_phases`` + ``PrecisionSwitch``).
The paper trains much longer (tens of thousands of iterations, more points): the budget here is cut
so that the whole table (8 cases x 3 seeds x 2 methods) takes about 25 minutes on one quiet core.
The LPINN's characteristic branch starts from the identity map (zero last layer; see
:mod:`sciml.pinn.lpinn`), its speed scale is ``|c|`` or ``max |u0|``, and its prediction is
interpolated back to the Eulerian grid by periodic cubic splines of 1024 characteristics per time.

The error is the relative L2 norm on the problems' default Eulerian grid (256 x 101 nodes) against the
exact solution (convection) or the Cole-Hopf reference (Burgers), the same for both methods. Runs
are sequential in one process, one torch thread; each run's wall-clock time includes its L-BFGS
phase. Results are written after every run (``"complete": false`` until the end), so an interrupted
benchmark leaves what it measured.

The "centred" error divides by the norm of ``u - mean(u)`` instead of ``u``: with the drift
``C = 10`` the plain relative error is divided by a norm that the constant dominates (the two agree
for the convection cases, whose mean is zero).

Run: ``python benchmarks/lpinn_convection.py`` (full table), ``--quick`` (two cases, one seed, a
short run), ``--seeds 0 1``, ``--cases c30_nu0 burgers_C10``; ``--table`` prints the table of the
stored JSON. Writes ``benchmarks/results/lpinn_convection.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from _common import machine_info, problem_module, results_path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "lpinn_convection.json"

CASES: dict[str, tuple[str, dict[str, float]]] = {
    **{f"c{c}_nu{nu:g}": ("convection", {"c": float(c), "nu": nu}) for nu in (0.0, 0.01) for c in (10, 30, 50)},
    "burgers_C0": ("burgers_periodic", {"C": 0.0}),
    "burgers_C10": ("burgers_periodic", {"C": 10.0}),
}
QUICK_CASES = ("c30_nu0", "burgers_C10")
METHODS = ("pinn", "lpinn")


def settings(quick: bool) -> dict[str, Any]:
    """Training settings shared by both methods."""
    return {
        "hidden": [50, 50, 50, 50], "activation": "tanh", "init": "xavier_normal",
        "n_interior": 256 if quick else 512, "sampler": "uniform (fixed)",
        "adam_steps": 100 if quick else 400, "adam_lr": 1e-3,
        "lbfgs_steps": 3 if quick else 10, "lbfgs_max_iter": 20, "lbfgs_dtype": "float64",
        "hard": ["periodic", "initial"], "lpinn_n_lagrangian": 1024, "lpinn_interpolation": "cubic",
        "eval_grid": [256, 101],
        "reduced_vs_paper": "fewer points and iterations than Mojgani et al. (2023), to fit ~25 min on one core",
    }


def make_problem(case: str) -> tuple[Any, str]:
    """The problem of a case (from its file's factory) and the LPINN speed ('c' or 'state')."""
    name, params = CASES[case]
    return problem_module(name).make_problem(**params), ("c" if name == "convection" else "state")


def run_one(case: str, method: str, seed: int, cfg: dict[str, Any]) -> dict[str, Any]:
    """Train one method on one case with one seed; return its error, time and final loss terms."""
    import numpy as np
    import torch

    from sciml.models.mlp import MLP
    from sciml.pinn import PINNTask, PrecisionSwitch, pinn_phases
    from sciml.pinn.lpinn import LagrangianPINNTask
    from sciml.train import Trainer

    problem, speed = make_problem(case)
    torch.manual_seed(seed)
    start = time.perf_counter()
    if method == "pinn":
        net = MLP(3, 1, cfg["hidden"], cfg["activation"], init=cfg["init"])
        task: Any = PINNTask(problem, net, n_interior=cfg["n_interior"], hard=cfg["hard"], seed=seed)
    else:
        task = LagrangianPINNTask(problem, speed=speed, hidden=cfg["hidden"], activation=cfg["activation"],
                                  n_interior=cfg["n_interior"], n_lagrangian=cfg["lpinn_n_lagrangian"],
                                  interpolation=cfg["lpinn_interpolation"], seed=seed)
    phases = pinn_phases(cfg["adam_steps"], cfg["lbfgs_steps"], lr=cfg["adam_lr"], max_iter=cfg["lbfgs_max_iter"])
    trainer = Trainer(task, phases=phases, callbacks=[PrecisionSwitch(cfg["adam_steps"])], progress=False,
                      eval_every=10**9, log_every=10**9, seed=seed, nan_policy="stop")
    result = trainer.fit()
    train_s = time.perf_counter() - start
    metrics = task.metrics()
    # the error relative to the fluctuation u - mean(u) as well: with the drift C = 10 the plain
    # relative error is divided by a norm that the constant C dominates
    points, exact = task.reference_solution()
    err = np.linalg.norm(task.predict(points) - exact)
    centred = float(err / np.linalg.norm(exact - exact.mean()))
    return {"case": case, "method": method, "seed": seed, "rel_l2": metrics.get("rel_l2", float("nan")),
            "rel_l2_centred": centred,
            "time_s": round(train_s, 2), "stop_reason": getattr(result, "reason", None),
            "final": {k: v for k, v in metrics.items() if k != "rel_l2"},
            "parameters": sum(p.numel() for p in task.parameters())}


def summarise(runs: list[dict[str, Any]], cases: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for case in cases:
        row: dict[str, Any] = {}
        for method in METHODS:
            sel = [r for r in runs if r["case"] == case and r["method"] == method]
            if sel:
                errs = [r["rel_l2"] for r in sel]
                row[method] = {"rel_l2_mean": statistics.fmean(errs), "rel_l2_max": max(errs),
                               "rel_l2_centred_mean": statistics.fmean(r["rel_l2_centred"] for r in sel),
                               "rel_l2_min": min(errs), "time_s_mean": statistics.fmean(r["time_s"] for r in sel),
                               "seeds": len(sel)}
        out[case] = row
    return out


def table(summary: dict[str, Any]) -> str:
    """Markdown table: mean [min, max] relative L2 per method, the centred error, mean seconds per run."""
    lines = ["| case | PINN rel L2 mean [min, max] | LPINN rel L2 mean [min, max] | PINN / LPINN centred rel L2 "
             "| PINN s | LPINN s |", "|---|---|---|---|---|---|"]
    for case, row in summary.items():
        cells = []
        for method in METHODS:
            r = row.get(method)
            cells.append("-" if r is None else
                         f"{r['rel_l2_mean']:.3g} [{r['rel_l2_min']:.3g}, {r['rel_l2_max']:.3g}]")
        centred = " / ".join(f"{row[m]['rel_l2_centred_mean']:.3g}" if m in row else "-" for m in METHODS)
        times = [f"{row[m]['time_s_mean']:.0f}" if m in row else "-" for m in METHODS]
        lines.append(f"| {case} | {cells[0]} | {cells[1]} | {centred} | {times[0]} | {times[1]} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two cases, one seed, short training")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds (default 0 1 2; quick: 0)")
    parser.add_argument("--cases", nargs="+", default=None, choices=sorted(CASES), help="cases to run")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON to write (default: results/lpinn_convection.json; with --quick lpinn_convection.quick.json)")
    parser.add_argument("--table", action="store_true", help="only print the table of the JSON at --out")
    args = parser.parse_args(argv)
    args.out = results_path(RESULTS, args.out, args.quick)
    if args.table:
        print(table(json.loads(args.out.read_text())["summary"]))
        return 0
    import torch

    torch.set_num_threads(args.threads)
    cases = args.cases or (list(QUICK_CASES) if args.quick else list(CASES))
    seeds = args.seeds if args.seeds is not None else ([0] if args.quick else [0, 1, 2])
    cfg = settings(args.quick)
    record: dict[str, Any] = {"benchmark": "lpinn_convection", "settings": cfg, "machine": machine_info(args.threads),
                              "cases": {c: {"problem": CASES[c][0], "params": CASES[c][1]} for c in cases},
                              "seeds": seeds, "runs": [], "complete": False}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # one-time costs (the geometry backend's import, scipy's quadrature rules) outside the timed runs
    from sciml.pinn.sampling import sample_interior

    sample_interior(make_problem(cases[0])[0].domain, 8)
    start = time.perf_counter()
    for seed in seeds:  # seeds outermost: an interrupted run still covers every case
        for case in cases:
            for method in args.methods:
                run = run_one(case, method, seed, cfg)
                record["runs"].append(run)
                print(f"{case:>12} {method:>5} seed {seed}: rel L2 {run['rel_l2']:.3e} in {run['time_s']:.1f} s",
                      flush=True)
                record["summary"] = summarise(record["runs"], cases)
                record["elapsed_s"] = round(time.perf_counter() - start, 1)
                args.out.write_text(json.dumps(record, indent=1))
    record["complete"] = True
    record["machine"]["load_average_at_end"] = list(os.getloadavg())
    args.out.write_text(json.dumps(record, indent=1))
    print(table(record["summary"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
