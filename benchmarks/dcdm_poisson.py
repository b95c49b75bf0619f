"""DCDM against CG, Jacobi-PCG, AMG-PCG and the direct solver on obstacle layouts it never saw.

What it measures
----------------
Pressure-Poisson systems past random solid obstacles (``problems/poisson_obstacles.py``: 2-D ``n^2`` and
3-D ``n^3`` cells, Neumann at the obstacles, Dirichlet at the box walls) with smoke-projection right-hand
sides. The layouts come from seeds ``--layout-seed`` (5000) and ``--layout-seed + 1``, far from the seeds
the shipped network was trained, validated and evaluated on (0, 1, 1000). Every method solves the same
systems to a true relative residual of ``--rtol`` (1e-6) through :func:`sciml.linalg.solve`'s method
objects (``prepare(A, mask).solve(b)``): DCDM (``DCDM.pretrained()``, k = 2, its network in float32,
everything else in float64), CG, Jacobi-PCG, AMG-PCG (pyamg smoothed aggregation, V-cycle) and Direct
(SuperLU). Two regimes:

``fixed``
    One matrix, many right-hand sides: each of ``--layouts`` layouts is set up once (the AMG hierarchy,
    the LU factors, the Jacobi diagonal, the network's mask) and solved for ``--rhs`` right-hand sides.
    ``setup_s`` is the set-up amortised over them (``setup_once_s / rhs``).
``moving``
    A matrix that changes every solve (moving obstacles): ``--moves`` fresh layouts, one right-hand side
    each, every solve paying its method's full set-up.

A row (one method, size and regime) holds ``method``, ``n``, ``dim``, ``regime``, ``iterations`` (mean
over the solves; ``iterations_all`` lists them), ``setup_s`` and ``solve_s`` (seconds per solve, means),
``total_s``, ``rel_residual`` (mean true relative residual reached; ``rel_residual_max``), ``converged``
(every solve), ``reason`` (the first failure's), ``layouts``, ``rhs_per_layout``, ``solves``,
``unknowns``. A method that is not run at some size (``--skip``, missing 3-D weights) gets a row with
``skipped: true`` and the reason. Timing: ``time.perf_counter`` around the method's ``setup`` and ``run``
(:class:`~sciml.linalg.solve.Prepared`), on ``--threads`` threads (1), after an untimed warm-up solve of
every method. Every iterative method records the *true* relative residual ``||b - A x|| / ||b||`` after
each iteration (the ``residuals`` history of a :class:`~sciml.linalg.Solution`): one more sparse
matrix-vector product per iteration than a production CG, which needs one. DCDM uses that residual as
its next input anyway, so ``solve_s`` of CG and Jacobi-PCG is up to about twice what a lean CG would
take; for AMG-PCG the V-cycle dominates and the extra product matters little. Iteration counts are
unaffected.

Resuming
--------
Each finished solve is appended to ``runs/bench/dcdm_poisson.rows.json`` (written to a temporary file and
renamed, so a kill never leaves half of it), keyed by ``(method, n, dim, regime, settings)``; ``settings``
are the arguments that change a result (seeds, counts, tolerance, threads, iteration limits and, for
DCDM, the SHA-256 of the weights). Rerunning the same command skips every finished row and continues a
row from its last finished solve. ``--fresh`` recomputes the rows asked for. The tables list every
stored row of the current settings, so a run may be split (``--sizes 64 128`` now, ``--sizes 256 512``
later).

Run: ``OMP_NUM_THREADS=1 nohup python benchmarks/dcdm_poisson.py > runs/bench/dcdm_poisson.log 2>&1 &``
writes ``benchmarks/results/dcdm_poisson.json`` and ``.md``. ``--quick`` (2-D 32^2 and 64^2, 3-D 16^3,
one layout, two right-hand sides and two moves; under half a minute) recomputes everything and writes
``dcdm_poisson.quick.json`` and ``runs/bench/dcdm_poisson.quick.rows.json`` only. The direct solver at
64^3 is skipped by default: SuperLU took 1.8 s, 13 s and 29 s (0.25, 0.8 and 1.5 GB) to factorise
24^3, 32^3 and 40^3 layouts here, which extrapolates to 10-20 minutes and 5-7 GB per 64^3 factorisation,
five of them per run. ``--skip none`` runs it; any ``--skip`` list replaces the default one.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import machine_info, problem_module, results_path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "dcdm_poisson.json"
ROWS = ROOT / "runs" / "bench" / "dcdm_poisson.rows.json"
METHODS = ("DCDM", "CG", "JacobiPCG", "AMGPCG", "Direct")
ALIASES = {"dcdm": "DCDM", "cg": "CG", "jacobipcg": "JacobiPCG", "jacobi": "JacobiPCG", "jacobi-pcg": "JacobiPCG",
           "amgpcg": "AMGPCG", "amg": "AMGPCG", "amg-pcg": "AMGPCG", "direct": "Direct", "lu": "Direct"}
REGIMES = ("fixed", "moving")
DEFAULT_SKIP = ["Direct@64^3"]
RHS_KIND = "smoke"


# -- options ----------------------------------------------------------------------------------------
def method_name(text: str) -> str:
    """The canonical name of a method given in any case or by an alias (``amg``, ``direct`` ...)."""
    name = ALIASES.get(text.strip().lower())
    if name is None:
        raise SystemExit(f"unknown method {text!r}: expected one of {list(METHODS)} (or {sorted(ALIASES)})")
    return name


def parse_skip(values: list[str]) -> list[tuple[str, int, int | None]]:
    """``["Direct@64^3", "cg@512"]`` as ``[(method, n, dim or None for both)]``; ``none`` clears the list."""
    out = []
    for value in values:
        if value.lower() in ("none", ""):
            continue
        match = re.fullmatch(r"([A-Za-z-]+)@(\d+)(?:\^([23]))?", value.strip())
        if match is None:
            raise SystemExit(f"--skip: expected METHOD@N^D (e.g. Direct@64^3, CG@512^2) or none, got {value!r}")
        dim = int(match.group(3)) if match.group(3) else None
        out.append((method_name(match.group(1)), int(match.group(2)), dim))
    return out


def skipped_by(skip: list[tuple[str, int, int | None]], method: str, n: int, dim: int) -> str | None:
    for m, size, d in skip:
        if m == method and size == n and d in (None, dim):
            return f"skipped by --skip {m}@{size}^{dim}"
    return None


def fingerprint(path: Path) -> str:
    """The SHA-256 of a weights file (first 16 hex digits): DCDM rows of other weights are not reused."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


# -- what is stored between runs ----------------------------------------------------------------------
class RowStore:
    """Finished rows and the solves of unfinished ones, in one JSON file, by row key.

    Every write re-reads the file under an exclusive lock, merges, writes a temporary file and renames
    it over the old one: a kill leaves the last complete version, and two processes filling different
    rows do not lose each other's work.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @staticmethod
    def key(method: str, n: int, dim: int, regime: str, settings: dict[str, Any]) -> str:
        return json.dumps([method, n, dim, regime, settings], sort_keys=True)

    def read(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {"rows": {}, "partial": {}}
        data = json.loads(self.path.read_text())
        return {"rows": data.get("rows", {}), "partial": data.get("partial", {})}

    def row(self, key: str) -> dict[str, Any] | None:
        return self.read()["rows"].get(key)

    def solves(self, key: str) -> list[dict[str, Any]]:
        return list(self.read()["partial"].get(key, []))

    def add_solve(self, key: str, record: dict[str, Any]) -> None:
        with self._update() as data:
            data["partial"].setdefault(key, []).append(record)

    def finish(self, key: str, row: dict[str, Any]) -> None:
        with self._update() as data:
            data["rows"][key] = row
            data["partial"].pop(key, None)

    def drop(self, key: str) -> None:
        with self._update() as data:
            data["rows"].pop(key, None)
            data["partial"].pop(key, None)

    @contextlib.contextmanager
    def _update(self) -> Iterator[dict[str, Any]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                data = self.read()
                yield data
                tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
                tmp.write_text(json.dumps(data, default=str))
                os.replace(tmp, self.path)  # atomic: readers see the old file or the new one
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


# -- the systems --------------------------------------------------------------------------------------
class Cases:
    """The layouts, systems and right-hand sides of one grid size, the same for every method.

    Layouts are drawn with :class:`ObstacleLayout` (prefix stable: layout ``i`` does not depend on how
    many are drawn, and the same layouts appear at every size, in box units); right-hand side ``j`` of
    layout ``i`` uses the generator ``default_rng([seed, n, dim, i, j])``.
    """

    def __init__(self, po: Any, n: int, dim: int, args: argparse.Namespace) -> None:
        from sciml.fields import Grid

        self.po, self.n, self.dim = po, n, dim
        grid = Grid(n, ndim=dim)
        fixed_seed, moving_seed = args.layout_seed, args.layout_seed + 1
        self.fixed = [self._system(s, fixed_seed, i, args.rhs)
                      for i, s in enumerate(po.ObstacleLayout().draw(args.layouts, grid,
                                                                     np.random.default_rng(fixed_seed)))]
        self.moving = [self._system(s, moving_seed, i, 1)
                       for i, s in enumerate(po.ObstacleLayout().draw(args.moves, grid,
                                                                      np.random.default_rng(moving_seed)))]

    def _system(self, solid: np.ndarray, seed: int, i: int, count: int) -> tuple[Any, np.ndarray, list[np.ndarray]]:
        A, mask = self.po.obstacle_system(solid)
        rhs = [self.po.rhs(RHS_KIND, mask, np.random.default_rng([seed, self.n, self.dim, i, j])) for j in range(count)]
        return A, mask, rhs

    def of(self, regime: str) -> list[tuple[Any, np.ndarray, list[np.ndarray]]]:
        return self.fixed if regime == "fixed" else self.moving


# -- the methods --------------------------------------------------------------------------------------
class Methods:
    """The method objects, their iteration limits and row settings, and why one is unavailable."""

    def __init__(self, args: argparse.Namespace) -> None:
        from sciml.linalg.dcdm import WEIGHTS_DIR

        self.args = args
        self.weights_dir = Path(args.weights_dir) if args.weights_dir is not None else WEIGHTS_DIR
        self._dcdm: dict[int, Any] = {}

    def weights(self, dim: int) -> Path:
        return self.weights_dir / f"dcdm_{dim}d.pt"

    def unavailable(self, name: str, dim: int) -> str | None:
        """Why ``name`` cannot run in ``dim`` dimensions (None if it can)."""
        if name == "DCDM" and not (self.weights(dim).is_file() and self.weights(dim).with_suffix(".json").is_file()):
            path = self.weights(dim)
            shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path  # no machine paths in results
            return f"no {dim}-D DCDM weights ({shown} and its .json not found)"
        return None

    def settings(self, name: str, dim: int, common: dict[str, Any]) -> dict[str, Any]:
        """What keys a stored row besides ``(method, n, dim, regime)``."""
        out = dict(common)
        if name == "DCDM":
            out["maxiter"] = self.args.dcdm_maxiter
            out["weights_sha256"] = fingerprint(self.weights(dim)) if self.unavailable(name, dim) is None else None
        else:
            out["maxiter"] = self.args.maxiter  # None: the method's default (10 n; 3 refinements for Direct)
        return out

    def get(self, name: str, dim: int) -> tuple[Any, int | None]:
        """``(method object, maxiter)``; the DCDM networks are loaded once per dimension."""
        from sciml.linalg import AMGPCG, CG, Direct, JacobiPCG
        from sciml.linalg.dcdm import DCDM

        if name == "DCDM":
            if dim not in self._dcdm:
                self._dcdm[dim] = DCDM.pretrained(dim=dim, weights_dir=self.weights_dir)
            return self._dcdm[dim], self.args.dcdm_maxiter
        return {"CG": CG, "JacobiPCG": JacobiPCG, "AMGPCG": AMGPCG, "Direct": Direct}[name](), self.args.maxiter


def warm_up(po: Any, methods: Methods, names: list[str], dim: int) -> None:
    """One untimed solve of every method on a 16^d layout, so that one-off costs (imports, the first
    network call's kernel set-up, pyamg's first call) are billed to no row."""
    from sciml.fields import Grid

    solid = po.ObstacleLayout().draw(1, Grid(16, ndim=dim), np.random.default_rng(0))[0]
    A, mask = po.obstacle_system(solid)
    b = po.rhs(RHS_KIND, mask, np.random.default_rng(0))
    for name in names:
        if methods.unavailable(name, dim) is None:
            method, _ = methods.get(name, dim)
            # a few iterations are all a warm-up needs (a poor network could otherwise run to its limit)
            method.prepare(A, mask).solve(b, maxiter=5, throw=False)


# -- one row ----------------------------------------------------------------------------------------
def run_row(store: RowStore, key: str, method: Any, maxiter: int | None, cases: list[Any], label: str,
            rtol: float) -> list[dict[str, Any]]:
    """Every solve of one row, continuing from the solves stored under ``key``; returns their records.

    For the fixed regime, a layout is set up once for its right-hand sides; its first solve carries
    the set-up seconds (as :class:`~sciml.linalg.solve.Prepared` reports them) and the others none. A
    layout whose first solves were stored before a kill is set up again, and that second set-up is not
    counted.
    """
    records = store.solves(key)
    done = {(r["layout"], r["rhs"]) for r in records}
    for i, (A, mask, rhs) in enumerate(cases):
        todo = [j for j in range(len(rhs)) if (i, j) not in done]
        if not todo:
            continue
        prepared = method.prepare(A, mask)
        for j in todo:
            sol = prepared.solve(rhs[j], rtol=rtol, maxiter=maxiter, throw=False)
            record = {"layout": i, "rhs": j, "unknowns": int(A.shape[0]), "iterations": int(sol.iterations),
                      "setup_s": prepared.setup_seconds if j == 0 else 0.0, "solve_s": sol.solve_seconds,
                      "rel_residual": float(sol.rel_residual), "converged": bool(sol.converged),
                      "reason": sol.reason}
            store.add_solve(key, record)
            records.append(record)
            print(f"  [solve] {label} layout {i} rhs {j}: {record['iterations']} iterations, set-up "
                  f"{record['setup_s']:.3f} s, solve {record['solve_s']:.3f} s, residual "
                  f"{record['rel_residual']:.2e}{'' if sol.converged else ', ' + sol.reason}", flush=True)
    return sorted(records, key=lambda r: (r["layout"], r["rhs"]))


def summarise(records: list[dict[str, Any]], method: str, n: int, dim: int, regime: str,
              settings: dict[str, Any]) -> dict[str, Any]:
    """The row of a method, size and regime from its solves (means per solve)."""
    its = [r["iterations"] for r in records]
    layouts = sorted({r["layout"] for r in records})
    setup_total = sum(r["setup_s"] for r in records)
    failed = [r for r in records if not r["converged"]]
    row = {
        "method": method, "n": n, "dim": dim, "regime": regime, "skipped": False,
        "iterations": float(np.mean(its)), "iterations_max": int(max(its)), "iterations_all": its,
        # fixed: one set-up per layout shared by its right-hand sides; moving: one per solve
        "setup_s": setup_total / len(records), "solve_s": float(np.mean([r["solve_s"] for r in records])),
        "rel_residual": float(np.mean([r["rel_residual"] for r in records])),
        "rel_residual_max": float(max(r["rel_residual"] for r in records)),
        "converged": not failed, "reason": failed[0]["reason"] if failed else "",
        "layouts": len(layouts), "rhs_per_layout": len(records) // len(layouts), "solves": len(records),
        "unknowns": float(np.mean([r["unknowns"] for r in records])), "settings": settings,
    }
    row["total_s"] = row["setup_s"] + row["solve_s"]
    if regime == "fixed":
        row["setup_once_s"] = setup_total / len(layouts)
    return row


def skipped_row(method: str, n: int, dim: int, regime: str, reason: str) -> dict[str, Any]:
    return {"method": method, "n": n, "dim": dim, "regime": regime, "skipped": True, "reason": reason,
            "iterations": None, "setup_s": None, "solve_s": None, "total_s": None, "rel_residual": None,
            "converged": None}


# -- output ------------------------------------------------------------------------------------------
def order(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["dim"], row["n"], REGIMES.index(row["regime"]), METHODS.index(row["method"]))


def _num(v: Any, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def table(rows: list[dict[str, Any]]) -> list[str]:
    """The rows as a markdown table (also printed)."""
    lines = ["| method | size | regime | unknowns | layouts x rhs | iterations | setup_s | solve_s | total_s | "
             "rel_residual | converged |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["skipped"]:
            status = r["reason"]
        else:
            status = "yes" if r["converged"] else f"no: {r['reason']}"
        solves = "-" if r["skipped"] else f"{r['layouts']} x {r['rhs_per_layout']}"
        lines.append(f"| {r['method']} | {r['n']}^{r['dim']} | {r['regime']} | {_num(r.get('unknowns'), '.0f')} | "
                     f"{solves} | {_num(r['iterations'], '.1f')} | {_num(r['setup_s'], '.4f')} | "
                     f"{_num(r['solve_s'], '.4f')} | {_num(r['total_s'], '.4f')} | "
                     f"{_num(r['rel_residual'], '.2e')} | {status} |")
    return lines


def markdown(rows: list[dict[str, Any]], args: argparse.Namespace, machine: dict[str, Any]) -> str:
    lines = [
        "# DCDM against classical solvers on obstacle layouts never seen in training", "",
        f"Pressure-Poisson systems of `problems/poisson_obstacles.py` (smoke right-hand sides), layouts of seeds "
        f"{args.layout_seed} (fixed) and {args.layout_seed + 1} (moving); every method to a true relative residual "
        f"of {args.rtol:g}. Seconds per solve on {args.threads} thread(s) of a {machine['cpu']} "
        f"(load average at the start {', '.join(f'{x:.1f}' for x in machine['load_average_at_start'] or [])}).", "",
        f"* **fixed**: one matrix, {args.rhs} right-hand sides per layout, {args.layouts} layout(s); `setup_s` is the "
        "set-up amortised over the right-hand sides.",
        f"* **moving**: a fresh layout every solve ({args.moves} solves); every solve pays its set-up.",
        f"* DCDM: `DCDM.pretrained()` (k = 2, network in float32 on the CPU), at most {args.dcdm_maxiter} iterations. "
        f"CG family: at most {args.maxiter or '10 n'} iterations. Direct: SuperLU (MMD on A + A^T) plus refinement.",
        "* `iterations`: mean over the solves; `rel_residual`: mean true relative residual reached.", "",
        *table(rows), "",
        "Made by `benchmarks/dcdm_poisson.py` (its docstring says how); rows by `(method, n, dim, regime, settings)` "
        "in `runs/bench/dcdm_poisson.rows.json`.", ""]
    return "\n".join(lines)


# -- the run ------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="*", default=[64, 128, 256, 512], help="2-D grid sizes n (n^2 cells)")
    p.add_argument("--sizes-3d", type=int, nargs="*", default=[32, 64], help="3-D grid sizes n (n^3 cells)")
    p.add_argument("--methods", nargs="+", default=list(METHODS), help=f"some of {list(METHODS)}")
    p.add_argument("--regimes", nargs="+", default=list(REGIMES), choices=REGIMES)
    p.add_argument("--layouts", type=int, default=1, help="layouts of the fixed regime")
    p.add_argument("--rhs", type=int, default=4, help="right-hand sides per layout in the fixed regime")
    p.add_argument("--moves", type=int, default=4, help="solves (fresh layouts) of the moving regime")
    p.add_argument("--layout-seed", type=int, default=5000, help="fixed regime; the moving regime uses seed + 1")
    p.add_argument("--rtol", type=float, default=1e-6)
    p.add_argument("--dcdm-maxiter", type=int, default=2000, help="DCDM's iteration limit (high: a slow DCDM "
                   "still reports its count)")
    p.add_argument("--maxiter", type=int, default=None, help="the classical methods' limit (default: theirs)")
    p.add_argument("--skip", nargs="*", default=None, metavar="METHOD@N^D",
                   help=f"rows not to run, e.g. Direct@512^2 CG@64^3; replaces the default {DEFAULT_SKIP} "
                        "('none' runs everything)")
    p.add_argument("--weights-dir", type=Path, default=None,
                   help="where dcdm_2d.pt / dcdm_3d.pt lie (default: the shipped ones, DCDM.pretrained())")
    p.add_argument("--threads", type=int, default=1, help="torch and BLAS threads")
    p.add_argument("--fresh", action="store_true", help="recompute the rows asked for instead of reusing them")
    p.add_argument("--quick", action="store_true", help="a smoke test: 32^2, 64^2, 16^3, one layout")
    p.add_argument("--out", type=Path, default=None, help="results JSON (default benchmarks/results/dcdm_poisson.json)")
    p.add_argument("--rows", type=Path, default=None, help=f"stored rows (default {ROWS.relative_to(ROOT)})")
    args = p.parse_args(argv)
    args.methods = list(dict.fromkeys(method_name(m) for m in args.methods))
    args.skip = parse_skip(DEFAULT_SKIP if args.skip is None else args.skip)
    if args.quick:
        args.sizes, args.sizes_3d, args.layouts, args.rhs, args.moves = [32, 64], [16], 1, 2, 2
        args.fresh = True  # a smoke test checks that everything runs, so it reuses nothing
    for name in ("layouts", "rhs", "moves", "threads", "dcdm_maxiter"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')}: expected a positive integer, got {getattr(args, name)}")
    args.out = results_path(RESULTS, args.out, args.quick)
    if args.rows is None:
        args.rows = ROWS.with_name("dcdm_poisson.quick.rows.json") if args.quick else ROWS
    return args


def common_settings(args: argparse.Namespace) -> dict[str, Any]:
    return {"layout_seed": args.layout_seed, "layouts": args.layouts, "rhs": args.rhs, "moves": args.moves,
            "rhs_kind": RHS_KIND, "rtol": args.rtol, "threads": args.threads}


@contextlib.contextmanager
def thread_limits(threads: int) -> Iterator[None]:
    """``threads`` for torch and, where threadpoolctl is installed, for BLAS (scipy's sparse products
    are single-threaded anyway), for the duration of the run."""
    torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(threads):
        yield


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with thread_limits(args.threads):
        run(args)
    return 0


def run(args: argparse.Namespace) -> None:
    """Every row asked for (stored ones reused), then the tables of every stored row of these settings."""
    machine = machine_info(torch.get_num_threads())
    started = time.perf_counter()
    po = problem_module("poisson_obstacles")
    methods = Methods(args)
    if "DCDM" in args.methods and args.sizes and methods.unavailable("DCDM", 2):
        raise SystemExit(f"{methods.unavailable('DCDM', 2)}: the 2-D DCDM row is the point of this benchmark; "
                         "train the weights with benchmarks/dcdm_train.py, pass --weights-dir, or leave DCDM out "
                         "with --methods")
    store = RowStore(args.rows)
    common = common_settings(args)
    skipped: list[dict[str, Any]] = []
    for dim, sizes in ((2, args.sizes), (3, args.sizes_3d)):
        if not sizes:
            continue
        warm_up(po, methods, args.methods, dim)
        for n in sizes:
            cases = None  # built on first need: a size whose rows are all stored costs nothing
            for regime in args.regimes:
                for name in args.methods:
                    reason = methods.unavailable(name, dim) or skipped_by(args.skip, name, n, dim)
                    if reason:
                        skipped.append(skipped_row(name, n, dim, regime, reason))
                        print(f"[skip] {name} {n}^{dim} {regime}: {reason}", flush=True)
                        continue
                    settings = methods.settings(name, dim, common)
                    key = store.key(name, n, dim, regime, settings)
                    if args.fresh:
                        store.drop(key)
                    elif store.row(key) is not None:
                        print(f"[stored] {name} {n}^{dim} {regime}", flush=True)
                        continue
                    if cases is None:
                        t0 = time.perf_counter()
                        cases = Cases(po, n, dim, args)
                        print(f"[systems] {n}^{dim}: {args.layouts} + {args.moves} layouts in "
                              f"{time.perf_counter() - t0:.1f} s", flush=True)
                    method, maxiter = methods.get(name, dim)
                    label = f"{name} {n}^{dim} {regime}"
                    records = run_row(store, key, method, maxiter, cases.of(regime), label, args.rtol)
                    row = summarise(records, name, n, dim, regime, settings)
                    store.finish(key, row)
                    print(f"[row] {label}: {row['iterations']:.1f} iterations, {row['setup_s']:.4f} + "
                          f"{row['solve_s']:.4f} s per solve{'' if row['converged'] else ', NOT CONVERGED'}",
                          flush=True)
    rows = current_rows(store, methods, common, skipped)
    write(rows, args, machine, started)


def current_rows(store: RowStore, methods: Methods, common: dict[str, Any],
                 skipped: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every stored row of the current settings (this run's and earlier runs' at other sizes), and this
    run's skipped rows where nothing is stored; sorted by dimension, size, regime and method."""
    stored = store.read()["rows"]
    rows, seen = [], set()
    for row in stored.values():
        if row.get("settings") == methods.settings(row["method"], row["dim"], common):
            rows.append(row)
            seen.add((row["method"], row["n"], row["dim"], row["regime"]))
    rows += [r for r in skipped if (r["method"], r["n"], r["dim"], r["regime"]) not in seen]
    return sorted(rows, key=order)


def write(rows: list[dict[str, Any]], args: argparse.Namespace, machine: dict[str, Any], started: float) -> None:
    """The JSON report (``--out``), the markdown table for a full run, and the table on stdout."""
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    settings["skip"] = [f"{m}@{n}" + (f"^{d}" if d else "") for m, n, d in args.skip]
    report = {
        "benchmark": "dcdm_poisson",
        "machine": {**machine, "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
        "settings": settings, "rows": rows, "elapsed_s": round(time.perf_counter() - started, 1),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=1, default=str) + "\n")
    os.replace(tmp, args.out)
    text = markdown(rows, args, machine)
    if not args.quick:
        args.out.with_suffix(".md").write_text(text)
    print("\n" + "\n".join(table(rows)))
    print(f"\n{report['elapsed_s']:.0f} s; wrote {args.out}" + ("" if args.quick else f" and "
          f"{args.out.with_suffix('.md').name}"), flush=True)


if __name__ == "__main__":
    sys.exit(main())
