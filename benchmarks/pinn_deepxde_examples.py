"""DeepXDE's own documented PINN examples, written in sciml as a DeepXDE user would, against DeepXDE (CPU).

Three examples of ``deepxde/examples/pinn_forward`` at their documented network, points and schedule:

* ``lshape`` (``Poisson_Lshape.py``): ``-u_xx - u_yy = 1`` on the L-shape
  ``[-1, 1]^2 minus (0, 1]^2``, ``u = 0`` on the boundary; a ``[2] + [50] * 4 + [1]`` tanh network
  (Glorot uniform), 1200 interior and 120 boundary points, Adam at 1e-3 for 50000 iterations, then
  L-BFGS. No exact solution: the reference is this package's second-order finite differences on the
  grid-aligned L-shape (:func:`sciml.numerics.solve_poisson_masked`, 257 x 257 nodes), and the error
  is taken on the 129 x 129 nodes inside the domain.
* ``helmholtz`` (``Helmholtz_Dirichlet_2d.py`` with its hard constraint): ``-Laplace u - k0^2 u = f``
  on the unit square, ``k0 = 4 pi``, exact ``u = sin(k0 x) sin(k0 y)``, ``u = 0`` imposed exactly; a
  ``[2] + [150] * 3 + [1]`` sine network, 400 interior points (DeepXDE adds 80 boundary points to the
  residual), 5000 Adam iterations at 1e-3, no L-BFGS. DeepXDE's output transform is
  ``x (1 - x) y (1 - y) N``. sciml runs it twice: ``sciml`` is the built-in ``hard=True`` (the
  domain's smooth distance: on the unit square the same product) and ``sciml-hand`` is DeepXDE's transform written as a
  :class:`~sciml.pinn.HardConstraint` (``transform=``), the issue's "hand-written product".
* ``diffusion`` (``diffusion_1d.py``, time-dependent): ``y_t = y_xx - e^{-t} (sin(pi x) - pi^2
  sin(pi x))`` on ``[-1, 1] x [0, 1]``, ``y(x, 0) = sin(pi x)``, ``y(+-1, t) = 0``, exact
  ``e^{-t} sin(pi x)``; a ``[2] + [32] * 3 + [1]`` tanh network, 40 interior, 20 boundary and 10
  initial points, 10000 Adam iterations at 1e-3.

Both libraries get DeepXDE's default point distribution (Hammersley, fixed) and the same network
initialisation. sciml takes its fast path (``derivatives="jet", compile=True``: Taylor-mode
derivatives in one compiled graph); its first step includes the compilation, reported as ``compile_s``
(the first step's time minus a steady step). sciml's L-BFGS (``lshape`` only) runs in float64 with
DeepXDE's budget (15000 iterations) and tolerances (gradient 1e-8): in float32 the line search stalls
at the rounding level of the loss, which is where DeepXDE's L-BFGS stops early.

Every run is its own process with the same thread count, and the libraries alternate per seed so that
outside load falls on all alike. Rows: ``method``, ``example``, ``seed``, ``s_per_iter`` (steady Adam
seconds per iteration, wall), ``compile_s``, ``total_s`` (the whole training, wall), ``rel_l2``
(relative L2 error on the reference grid), ``lbfgs_iterations``.

Run: ``python benchmarks/pinn_deepxde_examples.py --jobs 2`` (about 45 minutes on two cores; resumes after a
kill);
``--quick`` for a smoke test (short schedules, one seed, not committed).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import load_partial, machine_info, results_path, save_partial, write_results

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "pinn_deepxde_examples.json"
L_SHAPE = [[0, 0], [1, 0], [1, -1], [-1, -1], [-1, 1], [0, 1]]
K0 = 4 * math.pi
EXAMPLES = {  # network, activation, initialiser, points, Adam iterations, L-BFGS iterations
    "lshape": {"hidden": [50] * 4, "activation": "tanh", "points": {"interior": 1200, "boundary": 120},
               "adam": 50000, "lbfgs": 15000, "methods": ["deepxde", "sciml"]},
    "helmholtz": {"hidden": [150] * 3, "activation": "sin", "points": {"interior": 400, "boundary": 80},
                  "adam": 5000, "lbfgs": 0, "methods": ["deepxde", "sciml", "sciml-hand"]},
    "diffusion": {"hidden": [32] * 3, "activation": "tanh", "points": {"interior": 40, "boundary": 20, "initial": 10},
                  "adam": 10000, "lbfgs": 0, "methods": ["deepxde", "sciml"]},
}


# -- references ------------------------------------------------------------------------------------
def reference(example: str) -> tuple[Any, Any]:
    """Points ``(M, 2)`` and reference values ``(M,)`` of ``example`` (float64)."""
    import numpy as np

    if example == "lshape":
        from sciml.fields import Grid
        from sciml.geometry import Domain
        from sciml.numerics import interior_mask, solve_poisson_masked

        fine = Grid((257, 257), bounds=[(-1, 1), (-1, 1)])
        u = solve_poisson_masked(1.0, interior_mask(fine, Domain.polygon(L_SHAPE)), fine)[::2, ::2]
        grid = Grid((129, 129), bounds=[(-1, 1), (-1, 1)])
        mask = interior_mask(grid, Domain.polygon(L_SHAPE))
        return grid.points()[mask.ravel()], u[mask]
    axes = [np.linspace(0, 1, 101)] * 2 if example == "helmholtz" else [np.linspace(-1, 1, 101), np.linspace(0, 1, 101)]
    x, y = (a.ravel() for a in np.meshgrid(*axes, indexing="ij"))
    exact = np.sin(K0 * x) * np.sin(K0 * y) if example == "helmholtz" else np.exp(-y) * np.sin(np.pi * x)
    return np.stack([x, y], 1), exact


def reference_file(example: str) -> Path:
    """The reference of ``example``, computed once by the driver (so DeepXDE's process never imports sciml)."""
    path = ROOT / "runs" / "bench" / f"pinn_deepxde_examples.{example}.npz"
    if not path.is_file():
        import numpy as np

        points, values = reference(example)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(tmp, points=points, values=values)
        tmp.replace(path)
    return path


def load_reference(example: str) -> tuple[Any, Any]:
    import numpy as np

    with np.load(reference_file(example)) as data:
        return data["points"], data["values"]


def rel_l2(pred: Any, exact: Any) -> float:
    import numpy as np

    pred = np.asarray(pred, dtype=np.float64).reshape(-1)
    return float(np.linalg.norm(pred - exact) / np.linalg.norm(exact))


# -- DeepXDE ---------------------------------------------------------------------------------------
def run_deepxde(example: str, seed: int, adam: int, lbfgs: int, threads: int) -> dict[str, Any]:
    os.environ["DDE_BACKEND"] = "pytorch"
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    import deepxde as dde

    dde.config.set_random_seed(seed)
    cfg = EXAMPLES[example]
    sin = torch.sin
    if example == "lshape":
        def pde(x, y):
            return -dde.grad.hessian(y, x, i=0, j=0) - dde.grad.hessian(y, x, i=1, j=1) - 1

        geom = dde.geometry.Polygon(L_SHAPE)
        bc = dde.icbc.DirichletBC(geom, lambda x: 0, lambda _, on_boundary: on_boundary)
        data = dde.data.PDE(geom, pde, bc, num_domain=1200, num_boundary=120, num_test=1500)
        # DeepXDE 1.15's Polygon draws its boundary points in float64, which the float32 network of
        # the PyTorch backend rejects ("mat1 and mat2 must have the same dtype"): the example does
        # not run as published. Cast the point sets to float32, the example's intended precision.
        for name in ("train_x_all", "train_x_bc", "train_x", "test_x"):
            setattr(data, name, getattr(data, name).astype(np.float32))
        net = dde.nn.FNN([2] + cfg["hidden"] + [1], "tanh", "Glorot uniform")
    elif example == "helmholtz":
        def pde(x, y):
            f = K0 ** 2 * sin(K0 * x[:, 0:1]) * sin(K0 * x[:, 1:2])
            return -dde.grad.hessian(y, x, i=0, j=0) - dde.grad.hessian(y, x, i=1, j=1) - K0 ** 2 * y - f

        def solution(x):
            return np.sin(K0 * x[:, 0:1]) * np.sin(K0 * x[:, 1:2])

        geom = dde.geometry.Rectangle([0, 0], [1, 1])
        data = dde.data.PDE(geom, pde, [], num_domain=400, num_boundary=80, solution=solution, num_test=3600)
        net = dde.nn.FNN([2] + cfg["hidden"] + [1], "sin", "Glorot uniform")
        net.apply_output_transform(lambda x, y: x[:, 0:1] * (1 - x[:, 0:1]) * x[:, 1:2] * (1 - x[:, 1:2]) * y)
    else:
        def pde(x, y):
            source = torch.exp(-x[:, 1:]) * (sin(np.pi * x[:, 0:1]) - np.pi ** 2 * sin(np.pi * x[:, 0:1]))
            return dde.grad.jacobian(y, x, j=1) - dde.grad.hessian(y, x, j=0) + source

        def solution(x):
            return np.sin(np.pi * x[:, 0:1]) * np.exp(-x[:, 1:])

        geomtime = dde.geometry.GeometryXTime(dde.geometry.Interval(-1, 1), dde.geometry.TimeDomain(0, 1))
        bc = dde.icbc.DirichletBC(geomtime, solution, lambda _, on_boundary: on_boundary)
        ic = dde.icbc.IC(geomtime, solution, lambda _, on_initial: on_initial)
        data = dde.data.TimePDE(geomtime, pde, [bc, ic], num_domain=40, num_boundary=20, num_initial=10,
                                solution=solution, num_test=10000)
        net = dde.nn.FNN([2] + cfg["hidden"] + [1], "tanh", "Glorot uniform")
    model = dde.Model(data, net)
    points, exact = load_reference(example)
    points = points.astype(np.float32)
    start = time.perf_counter()
    model.compile("adam", lr=1e-3)
    model.train(iterations=adam, display_every=1000, verbose=0)
    adam_s = time.perf_counter() - start
    iterations = 0
    if lbfgs:
        dde.optimizers.set_LBFGS_options(maxiter=lbfgs)
        model.compile("L-BFGS")
        model.train(verbose=0)
        iterations = int(model.opt.state_dict()["state"][0]["n_iter"])
    total = time.perf_counter() - start
    return {"method": "deepxde", "example": example, "seed": seed, "version": dde.__version__,
            "s_per_iter": adam_s / adam, "compile_s": 0.0, "total_s": total, "lbfgs_iterations": iterations,
            "rel_l2": rel_l2(model.predict(points), exact)}


# -- sciml -----------------------------------------------------------------------------------------
def sciml_problem(example: str) -> Any:
    """The example as a sciml Problem, written as a user would."""
    import torch

    from sciml import diff
    from sciml.geometry import Domain
    from sciml.problem import Dirichlet, Initial, Problem

    if example == "lshape":
        return Problem(name="lshape", description="-Laplace u = 1 on the L-shape, u = 0 on its boundary",
                       inputs=[], outputs=["u"], domain=Domain.polygon(L_SHAPE),
                       equation=lambda u, x, inputs: -diff.laplacian(u, x) - 1.0, conditions=[Dirichlet(0.0)])
    if example == "helmholtz":
        def helmholtz(u, x, inputs):
            f = K0 ** 2 * torch.sin(K0 * x[:, 0]) * torch.sin(K0 * x[:, 1])
            return -diff.laplacian(u, x) - K0 ** 2 * u[:, 0] - f

        return Problem(name="helmholtz", description="-Laplace u - k0^2 u = f on the unit square, k0 = 4 pi",
                       inputs=[], outputs=["u"], domain=Domain.rectangle([0, 0], [1, 1]), equation=helmholtz,
                       conditions=[Dirichlet(0.0)])

    def diffusion(u, x, inputs):
        d = diff.Derivatives(u, x)
        s = torch.sin(math.pi * x[:, 0])
        return d.partial(1) - d.partial(0, 0) + torch.exp(-x[:, 1]) * (s - math.pi ** 2 * s)

    def exact(x, t):
        if isinstance(x, torch.Tensor):
            return torch.exp(-t) * torch.sin(math.pi * x)
        import numpy as np

        return np.exp(-t) * np.sin(np.pi * x)

    return Problem(name="diffusion", description="y_t = y_xx - e^-t (sin(pi x) - pi^2 sin(pi x)), DeepXDE",
                   inputs=[], outputs=["u"], domain=Domain.rectangle([-1, 0], [1, 1]), equation=diffusion,
                   conditions=[Dirichlet(exact), Initial(exact, time_axis=1)])


def run_sciml(example: str, seed: int, adam: int, lbfgs: int, threads: int, method: str) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    from sciml.models.mlp import MLP
    from sciml.pinn import HardConstraint, PINNTask, pinn_phases
    from sciml.train import Callback, Trainer

    class Clock(Callback):
        """Wall time at the start, after the first step (compilation) and at the end of the Adam phase."""

        def on_fit_start(self, trainer: Any) -> None:
            self.start = time.perf_counter()

        def on_step_end(self, trainer: Any, step: int, logs: Any) -> None:
            if step in (1, 2):
                setattr(self, f"step{step}", time.perf_counter())
            if step == adam:
                self.adam = time.perf_counter()

    cfg = EXAMPLES[example]
    torch.manual_seed(seed)
    net = MLP(2, 1, hidden=cfg["hidden"], activation=cfg["activation"], init="xavier_uniform")
    points = cfg["points"]
    options: dict[str, Any] = {}
    if example == "helmholtz":
        options["hard"] = True if method == "sciml" else [HardConstraint(
            transform=lambda x, out: (x[:, 0:1] * (1 - x[:, 0:1]) * x[:, 1:2] * (1 - x[:, 1:2])) * out)]
    task = PINNTask(sciml_problem(example), net, n_interior=points["interior"],
                    n_boundary=points.get("boundary", 1), n_initial=points.get("initial", 1), sampler="hammersley",
                    seed=seed, reference=None, derivatives="jet", compile=True, **options)
    clock = Clock()
    # DeepXDE's L-BFGS budget (maxiter 15000) and gradient tolerance (gtol 1e-8), in float64
    phases = pinn_phases(adam, lbfgs_iterations=lbfgs, lbfgs_tolerance=1e-8, history_size=100) if lbfgs \
        else pinn_phases(adam)
    trainer = Trainer(task, phases=phases, seed=seed, callbacks=[clock], progress="off", log_every=1000,
                      eval_every=10**9)
    trainer.fit()
    total = time.perf_counter() - clock.start
    steady = (clock.adam - clock.step2) / max(adam - 2, 1)
    iterations = int(trainer.optimizer.state[trainer.params[0]].get("n_iter", 0)) if lbfgs else 0
    ref_points, exact = load_reference(example)
    return {"method": method, "example": example, "seed": seed, "s_per_iter": steady,
            "compile_cache": os.environ.get("SCIML_BENCH_CACHE_STATE", "user's"),
            "compile_s": max(0.0, clock.step1 - clock.start - steady), "total_s": total,
            "lbfgs_iterations": iterations, "rel_l2": rel_l2(task.predict(ref_points)[:, 0], exact)}


# -- driver ----------------------------------------------------------------------------------------
def _spawn(example: str, method: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    adam, lbfgs = _schedule(example, args)
    cmd = [sys.executable, __file__, "--worker", example, method, "--seeds", str(seed), "--threads", str(args.threads),
           "--adam-lbfgs", str(adam), str(lbfgs)]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if method != "deepxde":
        # torch.compile's on-disk cache, one per example and method: emptied before the first seed, so
        # that seed pays the cold compilation a first-time user pays and the later seeds the warm one
        # every later run pays (the cache persists across processes).
        cache = ROOT / "runs" / "bench" / "pinn_deepxde_examples.inductor" / f"{example}-{method}"
        cold = seed == args.seeds[0]
        if cold:
            shutil.rmtree(cache, ignore_errors=True)
        env.update(TORCHINDUCTOR_CACHE_DIR=str(cache), SCIML_BENCH_CACHE_STATE="cold" if cold else "warm")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{example} {method} seed {seed} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _schedule(example: str, args: argparse.Namespace) -> tuple[int, int]:
    cfg = EXAMPLES[example]
    if args.quick:
        return max(50, cfg["adam"] // 100), min(cfg["lbfgs"], 100)
    return cfg["adam"], cfg["lbfgs"]


def _table(rows: list[dict[str, Any]]) -> str:
    lines = ["| example | method | seeds | s / Adam iteration (median) | compile s (cold; warm median) | "
             "total s (median) | rel L2 (median) | rel L2 per seed | L-BFGS iterations |",
             "|---|---|---|---|---|---|---|---|---|"]
    for example in EXAMPLES:
        for method in EXAMPLES[example]["methods"]:
            runs = [r for r in rows if r["example"] == example and r["method"] == method]
            if not runs:
                continue
            med = {k: statistics.median(r[k] for r in runs) for k in ("s_per_iter", "total_s", "rel_l2")}
            cold = [r["compile_s"] for r in runs if r.get("compile_cache") == "cold"]
            warm = [r["compile_s"] for r in runs if r.get("compile_cache") == "warm"]
            compile_text = "-" if method == "deepxde" else \
                f"{cold[0] if cold else float('nan'):.1f}; {statistics.median(warm) if warm else float('nan'):.1f}"
            per_seed = ", ".join(f"{r['rel_l2']:.2e}" for r in runs)
            lbfgs = ", ".join(str(r["lbfgs_iterations"]) for r in runs)
            lines.append(f"| {example} | {method} | {len(runs)} | {1e3 * med['s_per_iter']:.2f} ms | "
                         f"{compile_text} | {med['total_s']:.0f} | {med['rel_l2']:.2e} | {per_seed} | {lbfgs} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", nargs="+", choices=list(EXAMPLES), default=list(EXAMPLES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1, help="(example, method) series run at the same time")
    parser.add_argument("--quick", action="store_true", help="short schedules, for a smoke test (not committed)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--worker", nargs=2, metavar=("EXAMPLE", "METHOD"), help=argparse.SUPPRESS)
    parser.add_argument("--adam-lbfgs", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        example, method = args.worker
        adam, lbfgs = args.adam_lbfgs
        if method == "deepxde":
            result = run_deepxde(example, args.seeds[0], adam, lbfgs, args.threads)
        else:
            result = run_sciml(example, args.seeds[0], adam, lbfgs, args.threads, method)
        print(json.dumps(result))
        return
    out = results_path(RESULTS, args.out, args.quick)
    partial = ROOT / "runs" / "bench" / f"{out.stem}.rows.json"
    done = load_partial(partial, args, "key")
    for example in args.examples:
        reference_file(example)
    runs: dict[str, list[dict[str, Any]]] = {"rows": list(done.values())}
    lock = threading.Lock()

    def one_unit(unit: tuple[str, str]) -> None:
        """Every seed of one example and method, in order (the first seed compiles cold)."""
        example, method = unit
        key = f"{example}/{method}"
        for seed in args.seeds:
            if (key, seed) in done:
                continue
            row = _spawn(example, method, seed, args)
            row["key"] = key
            with lock:
                runs["rows"].append(row)
                save_partial(partial, runs, args)
            print(f"{example:9s} {method:10s} seed {seed}: {1e3 * row['s_per_iter']:.2f} ms/it, compile "
                  f"{row['compile_s']:.1f} s, total {row['total_s']:.0f} s, rel L2 {row['rel_l2']:.2e}", flush=True)

    # Units in the order of their cost (the L-shape's 50000 Adam iterations first), so that --jobs 2 ends
    # about together; the libraries then run side by side and share the machine's load alike.
    units = [(e, m) for e in args.examples for m in EXAMPLES[e]["methods"]]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        list(pool.map(one_unit, units))
    rows = sorted(runs["rows"], key=lambda r: (list(EXAMPLES).index(r["example"]), r["method"], r["seed"]))
    table = _table(rows)
    report = {"benchmark": "pinn_deepxde_examples", "machine": machine_info(args.threads),
              "settings": {"examples": {e: {**EXAMPLES[e], "adam": _schedule(e, args)[0],
                                            "lbfgs": _schedule(e, args)[1]} for e in args.examples},
                           "seeds": args.seeds, "threads": args.threads, "quick": args.quick,
                           "points": "Hammersley, fixed, both libraries",
                           "sciml": "derivatives='jet', compile=True; L-BFGS in float64 (history 100, gtol 1e-8)"},
              "rows": [{k: v for k, v in r.items() if k != "key"} for r in rows]}
    write_results(out, report, table, args.quick)


if __name__ == "__main__":
    main()
