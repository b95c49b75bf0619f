"""Inverse PINN: the viscosity of Burgers' equation from 1% noisy observations (Raissi et al. 2019).

The problem is DeepXDE's Burgers example (``problems/burgers1d_pinn.py``, true ``nu = 0.01 / pi``).
Observations: ``--n-obs`` points drawn uniformly in ``[-1, 1] x [0, 0.99]`` with the exact Cole-Hopf
values plus Gaussian noise of 1% of their standard deviation (``noisy_observations(noise=0.01)``, the
noise convention of Raissi et al.). The PINN keeps the boundary and initial conditions as soft terms
and adds the data term; the viscosity is a trainable :class:`~sciml.pinn.Unknown` (kept positive,
initial guess 0.01, i.e. 3.1x the truth) that enters the equation through its ``inputs``.

Training: a [2] + [20] * 4 + [1] tanh network (Glorot normal), 2540 interior / 80 boundary /
160 initial Hammersley points, Adam (lr 1e-3) then L-BFGS in float64 (``pinn_phases`` and
``PrecisionSwitch``), Taylor-mode derivatives compiled by ``torch.compile``. Raissi et al. instead
fit the data alone (no condition terms, 2000 observations, nine tanh layers of 20, L-BFGS only) and
identify the coefficient of ``u u_x`` as well; with 1% noise they report ``nu = 0.0032098`` (0.84%
from the truth 0.0031831).

Run: ``python benchmarks/inverse_burgers.py --jobs 3`` (3 seeds, about ten minutes each on one core); writes
``benchmarks/results/inverse_burgers.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "inverse_burgers.json"
NU = 0.01 / math.pi


def run(seed: int, adam: int, lbfgs: int, n_obs: int, noise: float, threads: int) -> dict[str, Any]:
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    from sciml.models.mlp import MLP
    from sciml.numerics.burgers import cole_hopf
    from sciml.pinn import PINNTask, PrecisionSwitch, Unknown, noisy_observations, pinn_phases
    from sciml.problem import load_problem
    from sciml.train import Trainer

    rng = np.random.default_rng(1000 + seed)
    x = np.stack([rng.uniform(-1, 1, n_obs), rng.uniform(0, 0.99, n_obs)], 1)
    observations = noisy_observations(x, cole_hopf(x[:, 0], x[:, 1], NU), noise=noise, seed=rng)
    torch.manual_seed(seed)
    task = PINNTask(load_problem("burgers1d_pinn"),
                    MLP(2, 1, hidden=[20] * 4, activation="tanh", init="xavier_normal"),
                    n_interior=2540, n_boundary=80, n_initial=160, sampler="hammersley",
                    observations=observations, unknowns={"nu": Unknown(0.01, positive=True)},
                    derivatives="jet", compile=True, seed=seed)
    started = time.perf_counter()
    Trainer(task, phases=pinn_phases(adam, max(1, lbfgs // 20), max_iter=20), callbacks=[PrecisionSwitch(adam)],
            seed=seed, progress=False, log_every=10**9, eval_every=10**9).fit()
    found = task.unknown_values()["nu"]
    return {"seed": seed, "nu_true": NU, "nu_found": found, "relative_error": abs(found - NU) / NU,
            "rel_l2_u": task.relative_error()["rel_l2"], "seconds": time.perf_counter() - started,
            "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--adam", type=int, default=8000)
    parser.add_argument("--lbfgs", type=int, default=15000, help="L-BFGS iterations")
    parser.add_argument("--n-obs", type=int, default=2000)
    parser.add_argument("--noise", type=float, default=0.01)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1, help="seeds run at the same time (one process each)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run(args.seeds[0], args.adam, args.lbfgs, args.n_obs, args.noise, args.threads)))
        return
    runs = []
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    pending = list(args.seeds)
    while pending:
        batch, pending = pending[: args.jobs], pending[args.jobs :]
        procs = {seed: subprocess.Popen(
            [sys.executable, __file__, "--worker", "--seeds", str(seed), "--adam", str(args.adam),
             "--lbfgs", str(args.lbfgs), "--n-obs", str(args.n_obs), "--noise", str(args.noise),
             "--threads", str(args.threads)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            for seed in batch}
        for seed, proc in procs.items():
            stdout, stderr = proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"seed {seed} failed:\n{stderr[-4000:]}")
            runs.append(json.loads(stdout.strip().splitlines()[-1]))
            r = runs[-1]
            print(f"seed {seed}: nu = {r['nu_found']:.6f} (true {NU:.6f}), error {100 * r['relative_error']:.2f}%, "
                  f"u rel L2 {r['rel_l2_u']:.2e}, {r['seconds']:.0f} s", flush=True)
    errors = [r["relative_error"] for r in runs]
    import torch

    report = {
        "benchmark": "inverse_burgers",
        "settings": {k: v for k, v in vars(args).items() if k not in ("worker", "out")},
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "torch": torch.__version__, "python": platform.python_version(),
                    "loadavg_end": os.getloadavg()},
        "runs": runs,
        "summary": {"nu_relative_error_mean": statistics.fmean(errors), "nu_relative_error_max": max(errors)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, default=str))
    print("\n| seed | nu found | error on nu | u rel L2 | s |\n|---|---|---|---|---|")
    for r in runs:
        print(f"| {r['seed']} | {r['nu_found']:.6f} | {100 * r['relative_error']:.2f}% | {r['rel_l2_u']:.2e} | "
              f"{r['seconds']:.0f} |")
    print(f"\ntrue nu = {NU:.6f}; mean error {100 * statistics.fmean(errors):.2f}%, max {100 * max(errors):.2f}%; "
          f"{args.noise:.0%} noise, {args.n_obs} observations; written to {args.out}")


if __name__ == "__main__":
    main()
