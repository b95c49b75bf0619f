"""sciml's PINN against DeepXDE (PyTorch backend) on DeepXDE's own Burgers example, CPU.

The example is ``examples/pinn_forward/Burgers.py`` of DeepXDE: ``u_t + u u_x = (0.01 / pi) u_xx`` on
``[-1, 1] x [0, 0.99]``, ``u(x, 0) = -sin(pi x)``, ``u(+-1, t) = 0``; a ``[2] + [20] * 3 + [1]`` tanh
network with Glorot-normal weights; 2540 interior, 80 boundary and 160 initial points; Adam with
learning rate 1e-3 for 15000 iterations, then L-BFGS. Both sides train exactly that:

* **DeepXDE** runs the example's code (its default point distribution, Hammersley), then its L-BFGS
  with its default options (up to 15000 iterations, history 100). In the PyTorch backend that
  L-BFGS stops after a few iterations (its loop treats ``torch.optim.LBFGS`` returning early as
  convergence), which is part of what is measured.
* **sciml** trains ``PINNTask(load_problem("burgers1d_pinn"), MLP(2, 1, [20] * 3, "tanh",
  "xavier_normal"))`` on the same points (the Hammersley set, ``sampler="hammersley"``, fixed; the
  residual is taken on the 2540 interior points, DeepXDE also takes it on its 240 boundary and initial
  points) through the Trainer: ``pinn_phases(15000, 750, max_iter=20)``, i.e. Adam, then 15000 L-BFGS
  iterations (strong Wolfe, history 50) in float64 (``PrecisionSwitch``: in float32 the line search
  works at the rounding level of this stiff loss and stalls, which is DeepXDE's early stop).
  Variants (``--libraries``): ``sciml-jet`` (the default), Taylor-mode derivatives compiled by
  ``torch.compile`` (``derivatives="jet", compile=True``: the equation reads the derivatives the jet
  pushed forward, and all point sets share one jet pass; its first step includes the compilation,
  reported separately); ``sciml``, nested autograd like DeepXDE; ``sciml-rad``, nested autograd with
  the points redistributed by RAD (Wu et al. 2023) every 1000 Adam steps.

Each run is a separate process with the same thread count (``torch.set_num_threads``), so the
libraries never share an interpreter; runs alternate (DeepXDE seed 0, sciml-jet seed 0, ...,
DeepXDE seed 1, ...) so that load from other processes falls on all alike. Reported: seconds per
Adam iteration (wall clock and process CPU time, timing only the Adam loop), L-BFGS iterations and seconds,
and the relative L2 error on DeepXDE's 256 x 100 reference grid, whose values are computed here by
the Cole-Hopf transform (``sciml.numerics.burgers``) instead of being downloaded.

Run: ``python benchmarks/pinn_vs_deepxde.py`` (about half an hour on one core; ``--libraries deepxde
sciml-jet sciml sciml-rad`` for all variants); ``--adam 500 --lbfgs 100 --seeds 0`` for a quick check. Writes ``benchmarks/results/pinn_vs_deepxde.json``.
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
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import load_partial, save_partial

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "pinn_vs_deepxde.json"
NU = 0.01 / math.pi
LIBRARIES = ("deepxde", "sciml", "sciml-jet", "sciml-rad")


def reference_grid() -> tuple[Any, Any]:
    """DeepXDE's Burgers.npz grid (256 x, 100 t) as points ``(25600, 2)`` and exact values."""
    import numpy as np

    from sciml.numerics.burgers import burgers_grid_solution

    x, t, u = burgers_grid_solution(NU)
    xx, tt = np.meshgrid(x, t, indexing="ij")
    return np.stack([xx.ravel(), tt.ravel()], 1), u.ravel()


def rel_l2(pred: Any, exact: Any) -> float:
    import numpy as np

    pred = np.asarray(pred, dtype=np.float64).reshape(-1)
    return float(np.linalg.norm(pred - exact) / np.linalg.norm(exact))


# -- one run of each library (in its own process) --------------------------------------------------
def run_deepxde(seed: int, adam: int, lbfgs: int, threads: int) -> dict[str, Any]:
    os.environ["DDE_BACKEND"] = "pytorch"
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    import deepxde as dde

    dde.config.set_random_seed(seed)

    def pde(x, y):
        dy_x = dde.grad.jacobian(y, x, i=0, j=0)
        dy_t = dde.grad.jacobian(y, x, i=0, j=1)
        dy_xx = dde.grad.hessian(y, x, i=0, j=0)
        return dy_t + y * dy_x - NU * dy_xx

    geomtime = dde.geometry.GeometryXTime(dde.geometry.Interval(-1, 1), dde.geometry.TimeDomain(0, 0.99))
    bc = dde.icbc.DirichletBC(geomtime, lambda x: 0, lambda _, on_boundary: on_boundary)
    ic = dde.icbc.IC(geomtime, lambda x: -np.sin(np.pi * x[:, 0:1]), lambda _, on_initial: on_initial)
    data = dde.data.TimePDE(geomtime, pde, [bc, ic], num_domain=2540, num_boundary=80, num_initial=160)
    net = dde.nn.FNN([2] + [20] * 3 + [1], "tanh", "Glorot normal")
    model = dde.Model(data, net)
    points, exact = reference_grid()
    model.compile("adam", lr=1e-3)
    wall, cpu = time.perf_counter(), time.process_time()
    model.train(iterations=adam, display_every=1000, verbose=0)
    adam_wall, adam_cpu = time.perf_counter() - wall, time.process_time() - cpu
    after_adam = rel_l2(model.predict(points), exact)
    dde.optimizers.set_LBFGS_options(maxiter=lbfgs)
    model.compile("L-BFGS")
    wall = time.perf_counter()
    model.train(verbose=0)
    lbfgs_wall = time.perf_counter() - wall
    iterations = int(model.opt.state_dict()["state"][0]["n_iter"])
    return {"library": "deepxde", "version": dde.__version__, "seed": seed,
            "threads": torch.get_num_threads(), "adam_iterations": adam,
            "adam_s_per_it_wall": adam_wall / adam, "adam_s_per_it_cpu": adam_cpu / adam,
            "lbfgs_iterations": iterations, "lbfgs_seconds": lbfgs_wall,
            "rel_l2_after_adam": after_adam, "rel_l2": rel_l2(model.predict(points), exact),
            "points": {"pde": int(len(data.train_x_all)), "bc": 80, "ic": 160, "distribution": "Hammersley"}}


def run_sciml(seed: int, adam: int, lbfgs: int, threads: int, variant: str = "sciml") -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    from sciml.models.mlp import MLP
    from sciml.pinn import RAD, PINNTask, PrecisionSwitch, pinn_phases
    from sciml.problem import load_problem
    from sciml.train import Callback, Trainer

    class Clock(Callback):
        """Times the Adam phase: from the first step to the last Adam step."""

        def on_fit_start(self, trainer: Any) -> None:
            self.start = (time.perf_counter(), time.process_time())

        def on_step_end(self, trainer: Any, step: int, logs: Any) -> None:
            if step == 1:  # the first step includes torch.compile's compilation (jet engine)
                self.first = (time.perf_counter(), time.process_time())
            if step == adam:
                self.adam = (time.perf_counter() - self.start[0], time.process_time() - self.start[1])
                self.after_adam = rel_l2(task.predict(points)[:, 0], exact)
                self.lbfgs_start = time.perf_counter()

        def on_fit_end(self, trainer: Any, result: Any) -> None:
            self.lbfgs_seconds = time.perf_counter() - self.lbfgs_start

    torch.manual_seed(seed)
    problem = load_problem("burgers1d_pinn")
    net = MLP(2, 1, hidden=[20] * 3, activation="tanh", init="xavier_normal")
    options: dict[str, Any] = {"sampler": "hammersley"}  # DeepXDE's training distribution
    if variant == "sciml-jet":
        options.update(derivatives="jet", compile=True)
    elif variant == "sciml-rad":  # the same number of points, moved to the residual every 1000 steps
        options = {"sampler": RAD(every=1000, n_candidates=50_000), "resample_until": adam}
    task = PINNTask(problem, net, n_interior=2540, n_boundary=80, n_initial=160, seed=seed, reference=None,
                    **options)
    points, exact = reference_grid()
    clock = Clock()
    max_iter = 20
    steps = max(1, lbfgs // max_iter)
    trainer = Trainer(task, phases=pinn_phases(adam, steps, max_iter=max_iter), seed=seed,
                      callbacks=[clock, PrecisionSwitch(adam)], progress=False, log_every=1000,
                      eval_every=10**9)
    trainer.fit()
    iterations = int(trainer.optimizer.state[trainer.params[0]]["n_iter"])
    first_step = clock.first[0] - clock.start[0]
    steady = [(clock.adam[i] - (clock.first[i] - clock.start[i])) / max(adam - 1, 1) for i in (0, 1)]
    return {"library": variant, "seed": seed, "threads": torch.get_num_threads(),
            "engine": "jet, torch.compile" if variant == "sciml-jet" else "nested autograd",
            "sampler": "RAD(every=1000, n_candidates=50000)" if variant == "sciml-rad" else "Hammersley, fixed",
            "lbfgs_dtype": "float64", "adam_iterations": adam,
            "adam_s_per_it_wall": clock.adam[0] / adam, "adam_s_per_it_cpu": clock.adam[1] / adam,
            "first_step_seconds": first_step, "adam_s_per_it_wall_after_first": steady[0],
            "adam_s_per_it_cpu_after_first": steady[1],
            "lbfgs_iterations": iterations, "lbfgs_seconds": clock.lbfgs_seconds,
            "rel_l2_after_adam": clock.after_adam, "rel_l2": rel_l2(task.predict(points)[:, 0], exact),
            "points": {"pde": 2540, "bc": 80, "ic": 160}}


# -- driver ----------------------------------------------------------------------------------------
def _spawn(library: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", library, "--seeds", str(seed), "--adam", str(args.adam),
           "--lbfgs", str(args.lbfgs), "--threads", str(args.threads)]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{library} seed {seed} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _summary(runs: list[dict[str, Any]], key: str) -> dict[str, float]:
    values = [r[key] for r in runs]
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adam", type=int, default=15000, help="Adam iterations (DeepXDE's example: 15000)")
    parser.add_argument("--lbfgs", type=int, default=15000, help="L-BFGS iterations (DeepXDE's default)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1,
                        help="seeds run at the same time (each seed still runs its libraries one after another)")
    parser.add_argument("--libraries", nargs="+", choices=LIBRARIES, default=["deepxde", "sciml-jet"],
                        help="what to run (DeepXDE is always the reference and runs first)")
    parser.add_argument("--worker", choices=LIBRARIES, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--resume", action="store_true", help="reuse the runs of an interrupted benchmark")
    args = parser.parse_args()
    if args.worker:
        if args.worker == "deepxde":
            result = run_deepxde(args.seeds[0], args.adam, args.lbfgs, args.threads)
        else:
            result = run_sciml(args.seeds[0], args.adam, args.lbfgs, args.threads, variant=args.worker)
        print(json.dumps(result))
        return
    import torch

    load_start = os.getloadavg()
    libraries = ["deepxde", *[lib for lib in args.libraries if lib != "deepxde"]]
    runs: dict[str, list[dict[str, Any]]] = {lib: [] for lib in libraries}
    partial = args.out.with_suffix(".partial.json")
    done = load_partial(partial, args, "library") if args.resume else {}
    lock = threading.Lock()

    def one_seed(seed: int) -> None:
        for library in libraries:
            result = done.get((library, seed)) or _spawn(library, seed, args)
            with lock:
                runs[library].append(result)
                save_partial(partial, runs, args)
                print(f"{library:8s} seed {seed}: {1e3 * result['adam_s_per_it_wall']:.2f} ms/it (wall), "
                      f"{1e3 * result['adam_s_per_it_cpu']:.2f} ms/it (cpu), "
                      f"L-BFGS {result['lbfgs_iterations']} it, rel L2 {result['rel_l2']:.2e}", flush=True)

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        list(pool.map(one_seed, args.seeds))
    for library in libraries:
        runs[library].sort(key=lambda r: r["seed"])
    keys = ("adam_s_per_it_wall", "adam_s_per_it_cpu", "lbfgs_iterations", "lbfgs_seconds",
            "rel_l2_after_adam", "rel_l2")
    summary = {lib: {k: _summary(r, k) for k in keys} for lib, r in runs.items()}
    ratio = {lib: {k: summary[lib][k]["mean"] / summary["deepxde"][k]["mean"]
                   for k in ("adam_s_per_it_wall", "adam_s_per_it_cpu")} for lib in libraries[1:]}
    report = {
        "benchmark": "pinn_vs_deepxde",
        "problem": "Burgers 1-D, DeepXDE examples/pinn_forward/Burgers.py",
        "settings": {"network": "[2] + [20] * 3 + [1], tanh, Glorot normal", "adam_lr": 1e-3,
                     "adam_iterations": args.adam, "lbfgs_iterations_asked": args.lbfgs, "seeds": args.seeds,
                     "threads": args.threads,
                     "points": "2540 interior, 80 boundary, 160 initial (Hammersley, fixed, both libraries)",
                     "reference": "Cole-Hopf (Gauss-Hermite, 200 nodes, float64) on 256 x 100 grid"},
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "torch": torch.__version__, "python": platform.python_version(),
                    "loadavg_start": load_start, "loadavg_end": os.getloadavg()},
        "runs": runs, "summary": summary, "sciml_over_deepxde": ratio,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print("\n| library | ms / Adam it (wall) | excl. 1st step | ms / Adam it (cpu) | L-BFGS it | L-BFGS s | "
          "rel L2 after Adam | final rel L2 (mean ± std) | max |")
    print("|---|---|---|---|---|---|---|---|---|")
    for lib in libraries:
        s = summary[lib]
        after = statistics.fmean(r.get("adam_s_per_it_wall_after_first", r["adam_s_per_it_wall"])
                                 for r in runs[lib])
        print(f"| {lib} | {1e3 * s['adam_s_per_it_wall']['mean']:.2f} | {1e3 * after:.2f} | "
              f"{1e3 * s['adam_s_per_it_cpu']['mean']:.2f} | {s['lbfgs_iterations']['mean']:.0f} | "
              f"{s['lbfgs_seconds']['mean']:.0f} | {s['rel_l2_after_adam']['mean']:.2e} | "
              f"{s['rel_l2']['mean']:.2e} ± {s['rel_l2']['std']:.1e} | {s['rel_l2']['max']:.2e} |")
    for lib, r in ratio.items():
        print(f"{lib} / DeepXDE seconds per Adam iteration: {r['adam_s_per_it_wall']:.2f} (wall), "
              f"{r['adam_s_per_it_cpu']:.2f} (cpu)")
    jet = runs.get("sciml-jet")
    if not jet:
        return
    first = statistics.fmean(r["first_step_seconds"] for r in jet)
    after = statistics.fmean(r["adam_s_per_it_wall_after_first"] for r in jet)
    print(f"sciml-jet: first step (compilation) {first:.1f} s, then {1e3 * after:.2f} ms/it (wall); "
          f"{len(args.seeds)} seeds, {args.threads} thread(s); written to {args.out}")


if __name__ == "__main__":
    main()
