"""Which fixed collocation set trains a PINN best: i.i.d. uniform, Sobol, Halton or Hammersley (CPU).

The measurement behind the PINN default sampler (``PINNTask(sampler=None)``). Two problems of
``benchmarks/pinn_deepxde_examples.py``, each with a fixed point set drawn by each method, the same
network initialisation per seed, and the same Adam schedule:

* ``lshape``: ``-Laplace u = 1`` on the L-shape, soft Dirichlet condition, a ``[2] + [32] * 3 + [1]``
  tanh network, 1000 interior and 200 boundary points, 2000 Adam steps at 1e-3; error against the
  finite-difference reference on the nodes inside the domain;
* ``diffusion``: DeepXDE's 1-D diffusion example (soft boundary and initial conditions) with its
  ``[2] + [32] * 3 + [1]`` tanh network and its few points (40 interior, 20 boundary, 10 initial:
  where the placement of each point matters), 5000 Adam steps at 1e-3; error against the exact
  solution.

Rows: ``method`` (the sampler), ``example``, ``seed``, ``rel_l2``. Taylor-mode derivatives without
compilation (the ranking does not depend on how derivatives are taken).

Run: ``python benchmarks/pinn_samplers.py`` (about 15 minutes on one core; resumes after a kill);
``--quick`` for a smoke test.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

from _common import load_partial, machine_info, results_path, save_partial, write_results
from pinn_deepxde_examples import load_reference, rel_l2, sciml_problem

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "pinn_samplers.json"
SAMPLERS = ("uniform", "sobol", "halton", "hammersley")
CONFIG = {"lshape": {"hidden": [32] * 3, "interior": 1000, "boundary": 200, "initial": 1, "steps": 2000},
          "diffusion": {"hidden": [32] * 3, "interior": 40, "boundary": 20, "initial": 10, "steps": 5000}}


def run(example: str, sampler: str, seed: int, quick: bool) -> dict[str, Any]:
    import torch

    from sciml.models.mlp import MLP
    from sciml.pinn import PINNTask, pinn_phases
    from sciml.train import Trainer

    cfg = CONFIG[example]
    torch.manual_seed(seed)
    net = MLP(2, 1, hidden=cfg["hidden"], activation="tanh", init="xavier_uniform")
    task = PINNTask(sciml_problem(example), net, n_interior=cfg["interior"], n_boundary=cfg["boundary"],
                    n_initial=cfg["initial"], sampler=sampler, seed=seed, reference=None, derivatives="jet")
    steps = 100 if quick else cfg["steps"]
    Trainer(task, phases=pinn_phases(steps), seed=seed, progress="off", eval_every=10**9).fit()
    points, exact = load_reference(example)
    return {"method": sampler, "example": example, "seed": seed, "rel_l2": rel_l2(task.predict(points)[:, 0], exact)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", nargs="+", choices=list(CONFIG), default=list(CONFIG))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    out = results_path(RESULTS, args.out, args.quick)
    partial = ROOT / "runs" / "bench" / f"{out.stem}.rows.json"
    done = load_partial(partial, args, "key")
    runs: dict[str, list[dict[str, Any]]] = {"rows": list(done.values())}
    for example in args.examples:
        for seed in args.seeds:
            for sampler in SAMPLERS:
                key = f"{example}/{sampler}"
                if (key, seed) in done:
                    continue
                row = {**run(example, sampler, seed, args.quick), "key": key}
                runs["rows"].append(row)
                save_partial(partial, runs, args)
                print(f"{example:9s} {sampler:10s} seed {seed}: rel L2 {row['rel_l2']:.3e}", flush=True)
    rows = [{k: v for k, v in r.items() if k != "key"} for r in runs["rows"]]
    lines = ["| example | sampler | rel L2 median | rel L2 per seed |", "|---|---|---|---|"]
    for example in args.examples:
        for sampler in SAMPLERS:
            errs = [r["rel_l2"] for r in sorted(rows, key=lambda r: r["seed"])
                    if r["example"] == example and r["method"] == sampler]
            lines.append(f"| {example} | {sampler} | {statistics.median(errs):.3e} | "
                         f"{', '.join(f'{e:.2e}' for e in errs)} |")
    report = {"benchmark": "pinn_samplers", "machine": machine_info(args.threads),
              "settings": {"examples": {e: CONFIG[e] for e in args.examples}, "seeds": args.seeds,
                           "optimizer": "Adam, lr 1e-3", "derivatives": "jet, not compiled", "quick": args.quick},
              "rows": rows}
    write_results(out, report, "\n".join(lines) + "\n", args.quick)


if __name__ == "__main__":
    main()
