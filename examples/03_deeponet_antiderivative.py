"""03 · DeepONet learns the antiderivative operator, then answers new functions at any point.

The first benchmark of the DeepONet paper (Lu et al. 2021), at its sizes:

1. load the built-in problem ``ds/dx = u, s(0) = 0`` (``u`` a Gaussian process, length scale 0.2) and
   make 150 training and 1000 test functions with its exact reference solution;
2. read each ``u`` at 100 sensors (the branch input) and ``s`` at the same 100 points (the
   Cartesian-product layout: every function at the same points);
3. train the paper's unstacked DeepONet (branch [100, 40, 40], trunk [1, 40, 40], ReLU, Glorot
   normal) with full-batch Adam (lr 1e-3) through the Trainer, on the mean per-function relative L2
   error (``--loss mse`` for the paper's MSE: MSE weights each function by its squared norm, so the
   functions with small integrals, whose relative errors dominate the reported mean, are fitted
   least; 1.6 % against 2.4 % over ten seeds, ``benchmarks/deeponet_paper.py``);
4. report the test error the way the paper does (MSE and mean relative L2), then ask the trained
   solver about functions that were never in the data, at points between the sensors.

Run: ``python examples/03_deeponet_antiderivative.py [--out DIR] [--steps 10000] [--loss mse]``
(about 15 seconds on one CPU core with the defaults).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import sciml
from sciml.deeponet import DeepONetTask, Sensors, make_deeponet_data
from sciml.deeponet.solver import PointSolver
from sciml.models import build_model
from sciml.train import Trainer


def main(out: Path, steps: int, seed: int = 0, loss: str = "rel_l2") -> dict:
    torch.manual_seed(seed)
    problem = sciml.load_problem("antiderivative")
    sensors = Sensors.grid_nodes(problem.grid, "u")  # the 100 nodes of the default grid
    started = time.perf_counter()
    train = make_deeponet_data(problem, 150, sensors, seed=seed)
    test = make_deeponet_data(problem, 1000, sensors, seed=seed + 1)
    print(f"data: u {tuple(train.u.shape)}, x {tuple(train.x.shape)}, s {tuple(train.y.shape)} "
          f"({train.layout} layout) in {time.perf_counter() - started:.1f} s")

    model = build_model("deeponet", branch=[100, 40, 40], trunk=[1, 40, 40], activation="relu",
                        init="xavier_normal")
    task = DeepONetTask(model, sensors, problem.outputs, train=train, problem=problem, loss=loss)
    # full-batch Adam (torch's fused kernel), evaluating the test set five times during the run
    trainer = Trainer(task, phases=[("adam", steps, {"lr": 1e-3, "fused": True})],
                      val_data={"test": test.loader()}, eval_every=max(1, steps // 5), log_every=500,
                      seed=seed, device="cpu", out_dir=out / "run")
    started = time.perf_counter()
    result = trainer.fit()
    seconds = time.perf_counter() - started
    metrics = task.evaluate(test)
    print(f"trained {steps} full-batch steps ({loss} loss) in {seconds:.1f} s ({1e3 * seconds / steps:.2f} ms/step)")
    print(f"test MSE {metrics['mse']:.3e}, mean relative L2 {metrics['rel_l2_mean']:.4f} "
          f"(median {metrics['rel_l2_median']:.4f})")

    # New inputs, as formulas, at points that are not sensors; the exact antiderivatives for comparison.
    solver = PointSolver.load(out / "run", device="cpu")
    points = np.linspace(0.0, 1.0, 37)[:, None]
    cases = {"cos(2*pi*x)": np.sin(2 * np.pi * points[:, 0]) / (2 * np.pi),
             "x": points[:, 0] ** 2 / 2,
             "exp(-x)*sin(3*x)": None}
    errors = {}
    for formula, exact in cases.items():
        predicted = solver(u=formula)(points)["s"]
        if exact is None:  # no closed form at hand: the problem's exact spline integral on a fine grid
            exact = solver.reference(grid=sciml.Grid(901), u=formula)["s"].numpy()[::25]
        errors[formula] = float(np.linalg.norm(predicted - exact) / np.linalg.norm(exact))
        print(f"u = {formula:18s} relative L2 error of s at 37 points: {errors[formula]:.4f}")

    summary = {"steps": steps, "loss": loss, "seconds": seconds, "test_mse": metrics["mse"],
               "test_rel_l2_mean": metrics["rel_l2_mean"], "test_rel_l2_median": metrics["rel_l2_median"],
               "new_functions": errors, "train_loss": result.metrics.get("train/loss")}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("example_outputs/03"))
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--loss", choices=("rel_l2", "mse"), default="rel_l2",
                        help="training loss: mean relative L2 (default) or the paper's MSE")
    args = parser.parse_args()
    torch.set_num_threads(1)  # tiny matrices: one thread is the fastest
    main(args.out, args.steps, args.seed, args.loss)
