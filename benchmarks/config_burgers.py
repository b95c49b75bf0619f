"""Loss combiners on the Burgers PINN at equal CPU time: sum (Adam), PCGrad, ConFIG and M-ConFIG.

The PINN is DeepXDE's Burgers example (``problems/burgers1d_pinn.py``: ``nu = 0.01 / pi`` on
``[-1, 1] x [0, 0.99]``, ``u0 = -sin(pi x)``) with soft constraints, so the loss has three terms
(``pde``, ``bc``, ``ic``) that the combiners weigh against each other. The network is DeepXDE's
(``[2] + [20] * 3 + [1]``, tanh, Glorot normal); 2540 interior, 80 boundary and 160 initial points
are drawn afresh at every step by Latin hypercube sampling, so every method sees new points and the
comparison is about the update directions, not about fitting a fixed point set. The learning rate
follows the ConFIG paper's recipe (``tum-pbs/ConFIG``, ``experiments/PINN``: cosine from 1e-3 to 1e-4,
fresh LHS points every epoch), with the cosine running over the CPU-time budget instead of a number
of epochs, so that every method ends its schedule when its budget ends.

* ``sum``: the plain sum of the terms, Adam;
* ``pcgrad``: PCGrad (Yu et al. 2020), Adam;
* ``config``: ConFIG (Liu et al. 2025), Adam;
* ``mconfig``: M-ConFIG, one term's gradient per step, SGD (its update carries Adam's
  normalisation), and the task computes only the term being differentiated
  (:class:`~sciml.pinn.ActiveTermsCallback`), which makes a step about three times cheaper.

Every run gets the same budget of process CPU time (``--budget`` seconds, one thread) and stops at the
first step that reaches it, so methods with cheaper steps take more of them. Differences from the
paper's set-up: DeepXDE's smaller network and point counts (the paper: 5 x 50 tanh, 10 000 interior
and 250 + 250 condition points, 30 000 epochs on a GPU) and t in [0, 0.99]. The error is the mean
squared error (and relative L2) against the exact Cole-Hopf solution on DeepXDE's 256 x 100 grid.
Runs are separate processes, interleaved by seed (sum, pcgrad, config, mconfig for seed 0, then
seed 1, ...), so that load from other processes falls on all methods alike.

Run: ``python benchmarks/config_burgers.py`` (about ``20 * budget`` CPU seconds); ``--budget 20 --seeds 0 --out /tmp/cb.json``
for a quick check. Writes ``benchmarks/results/config_burgers.json`` (rows) and ``.md`` (the table).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import load_partial, machine_info, save_partial, write_results

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "config_burgers.json"
METHODS = ("sum", "pcgrad", "config", "mconfig")
LR_START, LR_END = 1e-3, 1e-4  # the ConFIG paper's cosine schedule


def run(method: str, seed: int, budget: float, threads: int) -> dict[str, Any]:
    """One training run of ``method`` until ``budget`` seconds of process CPU time are spent."""
    import torch

    torch.set_num_threads(threads)
    from sciml.models.mlp import MLP
    from sciml.optim import ConFIG, MConFIG, PCGrad, Sum
    from sciml.pinn import ActiveTermsCallback, PINNTask
    from sciml.problem import load_problem
    from sciml.train import Callback, Trainer

    class Budget(Callback):
        """Stops at the CPU-time budget; the learning rate follows a cosine over the budget."""

        def on_fit_start(self, trainer: Any) -> None:
            self.start = time.process_time()
            self.wall = time.perf_counter()

        def on_step_end(self, trainer: Any, step: int, logs: Any) -> None:
            spent = time.process_time() - self.start
            lr = LR_END + 0.5 * (LR_START - LR_END) * (1 + math.cos(math.pi * min(spent / budget, 1.0)))
            for group in trainer.optimizer.param_groups:
                group["lr"] = lr
            if spent >= budget:
                self.steps = step
                self.cpu = time.process_time() - self.start
                self.wall = time.perf_counter() - self.wall
                trainer.request_stop("budget", f"{budget} s of CPU time")

    torch.manual_seed(seed)
    problem = load_problem("burgers1d_pinn")
    net = MLP(2, 1, hidden=[20] * 3, activation="tanh", init="xavier_normal")
    task = PINNTask(problem, net, n_interior=2540, n_boundary=80, n_initial=160, sampler="lhs", resample_every=1,
                    seed=seed)
    conflicts: list[float] = []

    class RecordingConFIG(ConFIG):
        """ConFIG that also records the smallest cosine between two terms' gradients at every step: whether
        the terms conflict at all (a negative cosine) decides whether ConFIG's direction differs from the sum's."""

        def combine(self, terms: Any, params: Any, *, scale: float, reduce: Any) -> Any:
            # ConFIG.combine with the cosines taken from the same gradients (one backward pass per term,
            # as in the plain ConFIG: the CPU budget stays comparable)
            from sciml.optim.combine import set_gradients, term_gradients
            from sciml.optim.config import config_direction

            grads, used = term_gradients(terms, params, scale=scale, reduce=reduce)
            units = grads / torch.linalg.vector_norm(grads, dim=1, keepdim=True).clamp_min(1e-30)
            cos = (units @ units.T).masked_fill(torch.eye(len(grads), dtype=torch.bool), 1.0)
            conflicts.append(float(cos.min()))
            set_gradients(config_direction(grads), params, scale=scale, used=used)
            return sum(t.detach() for t in terms.values())

    combiner = {"sum": Sum(), "pcgrad": PCGrad(), "config": RecordingConFIG(), "mconfig": MConFIG()}[method]
    budget_cb = Budget()
    callbacks: list[Any] = [budget_cb]
    if method == "mconfig":
        callbacks.append(ActiveTermsCallback())
    optimizer = "sgd" if method == "mconfig" else "adam"
    trainer = Trainer(task, steps=10**8, optimizer=optimizer, lr=LR_START, combiner=combiner, seed=seed,
                      callbacks=callbacks, progress=False, log_every=500, eval_every=10**9)
    result = trainer.fit()
    errors = task.relative_error()
    return {"method": method, "seed": seed, "threads": torch.get_num_threads(), "steps": budget_cb.steps,
            "cpu_seconds": budget_cb.cpu, "wall_seconds": budget_cb.wall,
            "ms_per_step": 1e3 * budget_cb.cpu / budget_cb.steps,
            "test_mse": errors["mse"], "rel_l2": errors["rel_l2"], "stop": result.reason,
            "final_terms": {k: float(v.detach()) for k, v in task.loss_terms().items()},
            **({"conflict_fraction": sum(c < 0 for c in conflicts) / len(conflicts),
                "min_cosine_median": statistics.median(conflicts)} if conflicts else {})}


def _spawn(method: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", method, "--seeds", str(seed), "--budget", str(args.budget),
           "--threads", str(args.threads)]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{method} seed {seed} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=120.0, help="CPU seconds per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--resume", action="store_true", help="reuse the runs of an interrupted benchmark")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run(args.worker, args.seeds[0], args.budget, args.threads)))
        return
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in args.methods}
    partial = args.out.with_suffix(".partial.json")
    done = load_partial(partial, args, "method") if args.resume else {}
    for seed in args.seeds:
        for method in args.methods:
            r = done.get((method, seed)) or _spawn(method, seed, args)
            runs[method].append(r)
            save_partial(partial, runs, args)
            print(f"{method:8s} seed {seed}: {r['steps']} steps ({r['ms_per_step']:.2f} ms/step), test MSE "
                  f"{r['test_mse']:.3e}, rel L2 {r['rel_l2']:.3e}", flush=True)
    rows = [r for rs in runs.values() for r in rs]
    sums = {r["seed"]: r["test_mse"] for r in runs.get("sum", [])}
    for r in rows:
        r["mse_over_sum"] = r["test_mse"] / sums[r["seed"]] if r["seed"] in sums else None
    lines = ["| method | seeds | steps (median) | ms / step (median) | test MSE (median) | MSE / sum per seed | "
             "MSE / sum (median) | rel L2 (median) | terms conflicting (median share of steps) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for method, rs in runs.items():
        ratios = [r["mse_over_sum"] for r in rs if r["mse_over_sum"] is not None]
        conflict = [r["conflict_fraction"] for r in rs if "conflict_fraction" in r]
        lines.append(f"| {method} | {len(rs)} | {statistics.median(r['steps'] for r in rs):.0f} | "
                     f"{statistics.median(r['ms_per_step'] for r in rs):.2f} | "
                     f"{statistics.median(r['test_mse'] for r in rs):.2e} | "
                     f"{', '.join(f'{x:.2f}' for x in ratios)} | "
                     f"{statistics.median(ratios) if ratios else float('nan'):.2f} | "
                     f"{statistics.median(r['rel_l2'] for r in rs):.2e} | "
                     f"{f'{statistics.median(conflict):.2f}' if conflict else '-'} |")
    table = "\n".join(lines) + "\n"
    report = {
        "benchmark": "config_burgers",
        "problem": "burgers1d_pinn (DeepXDE's Burgers example), soft constraints: terms pde, bc, ic",
        "settings": {"network": "[2] + [20] * 3 + [1], tanh, Glorot normal",
                     "points": "2540 interior, 80 boundary, 160 initial, Latin hypercube, redrawn every step",
                     "learning_rate": "cosine 1e-3 -> 1e-4 over the CPU-time budget",
                     "optimizers": {"sum": "adam", "pcgrad": "adam", "config": "adam",
                                    "mconfig": "sgd (Adam-normalised update), one term per step"},
                     "budget_cpu_seconds": args.budget, "seeds": args.seeds, "threads": args.threads,
                     "test": "MSE and relative L2 against Cole-Hopf on the 256 x 100 grid",
                     "conflict": "config rows: share of steps where two terms' gradients have a negative cosine"},
        "machine": {**machine_info(args.threads), "loadavg_end": os.getloadavg()},
        "rows": rows,
    }
    write_results(args.out, report, table, quick=False)
    print(f"{len(args.seeds)} seeds, {args.budget:g} CPU seconds per run, {args.threads} thread(s)")


if __name__ == "__main__":
    main()
