"""04 · A multigrid neural operator (MgNO) learns Darcy flow; prediction, reference and error side by side.

1. load the built-in Darcy problem (-div(a grad u) = 1, u = 0 on the boundary, a in {3, 12} from a
   thresholded Gaussian random field: the FNO benchmark);
2. make data with its float64 reference solver (solved five times finer and subsampled) and train a
   small MgNO on it, exactly as ``sciml train darcy --model mgno`` does: each layer is
   ``act(V u + W u + b)`` with ``V`` a learned multigrid V-cycle;
3. answer a coefficient the model never saw (a fresh draw of the problem's random field) and compare
   with the reference made the way the training data were (``solver.reference`` would solve directly
   on the 29 x 29 grid, a few percent from the five times finer solution the data hold);
4. save a PyVista picture: prediction | reference | error, and the coefficient below.

Run: ``python examples/04_operators_darcy.py [--out DIR] [--epochs E] [--n-train N]`` (about a minute
on two idle CPU cores; the tests run it as it is).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import sciml
from sciml.fields import Field, Grid
from sciml.viz.render import compare
from sciml.workflows import train_operator

RESOLUTION = 29  # nodes per axis (solved on 141 x 141)
MODEL = {"channels": 16, "n_layers": 3, "levels": 4}  # 29 -> 15 -> 8 -> 4 nodes


def main(out: Path, epochs: int, n_train: int) -> dict[str, float]:
    problem = sciml.load_problem("darcy")

    run = train_operator(problem, model="mgno", model_kwargs=MODEL, n_train=n_train, n_test=50,
                         resolution=RESOLUTION, epochs=epochs, batch_size=10, lr=3e-3, loss="rel_h1",
                         out_dir=out / "run", workers=2)
    summary = json.loads((out / "run" / "summary.json").read_text())
    print(f"MgNO: {summary['params']:,} parameters, {summary['s_per_epoch']:.2f} s per epoch")
    print(f"test relative L2: mean {run.mean_error:.4f}, median {run.median_error:.4f}")

    # A coefficient the model never saw, and its solution made the way the training data were.
    grid = Grid(RESOLUTION, ndim=2)
    inputs, outputs = problem.make_samples(1, grid, seed=2024)
    solver = sciml.Solver.load(out / "run")
    answer = solver(a=inputs["a"][0])  # {"u": Field}; answer.inputs holds the coefficient as given
    prediction = answer["u"]
    reference = Field(outputs["u"][0], grid, "u")
    error = sciml.relative_l2(prediction.numpy(), reference.numpy())
    print(f"new coefficient: relative L2 error {error:.4f}")

    compare(prediction, reference, screenshot=out / "darcy_mgno.png", inputs=answer.inputs, error=error)
    print(f"wrote {out / 'darcy_mgno.png'}")
    result = {"test_mean": run.mean_error, "test_median": run.median_error, "new": float(error),
              "params": summary["params"], "s_per_epoch": summary["s_per_epoch"]}
    (out / "summary.json").write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("example_outputs/04"))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--n-train", type=int, default=300)
    args = parser.parse_args()
    main(args.out, args.epochs, args.n_train)
