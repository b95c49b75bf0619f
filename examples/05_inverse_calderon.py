"""05 · A neural inverse operator (NIO) reads a conductivity off boundary measurements, against classical inversion.

1. load the built-in Calderon problem: a smooth random conductivity ``a`` inside the unit square is
   probed with 16 trigonometric Dirichlet patterns and the boundary fluxes ``a du/dn`` are measured
   (the Dirichlet-to-Neumann map, sciml's own finite-volume forward model);
2. make data with that forward model and train a small NIO on them, as
   ``sciml train calderon --model nio`` does;
3. measure a conductivity the network never saw (written as a formula) with 1% noise, reconstruct
   it from all 16 measurements and from every second one (NIO takes any number), and run the
   classical reconstruction a user would otherwise run (adjoint-gradient L-BFGS with Tikhonov
   regularisation, weight by the discrepancy principle) on the same data: error and time of each;
4. save a PyVista picture: NIO's reconstruction | truth | error.

Run: ``python examples/05_inverse_calderon.py [--out DIR] [--epochs E] [--n-train N]`` (about a minute
on two CPU cores; the tests run it as it is).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import sciml
from sciml.numerics.conductivity import trig_patterns
from sciml.numerics.inversion import invert_conductivity
from sciml.viz.render import compare
from sciml.workflows.inverse import train_inverse

RESOLUTION = 17  # nodes per axis: 64 boundary sensors per measurement
MODEL = {"width": 16, "n_modes": 6, "n_layers": 2, "n_basis": 32, "branch_hidden": [128], "trunk_hidden": [64, 64],
         "projection_channels": 64}
# Like the training conductivities (exp of a sine series, 1 on the boundary), but not one of them.
TRUTH = "exp(0.4*sin(pi*x)*sin(pi*y) - 0.25*sin(2*pi*x)*sin(pi*y))"


def main(out: Path, epochs: int, n_train: int) -> dict[str, float]:
    train_inverse("calderon", model="nio", model_kwargs=MODEL, n_train=n_train, n_test=64, resolution=RESOLUTION,
                  epochs=epochs, batch_size=32, lr=2e-3, out_dir=out / "run")
    summary = json.loads((out / "run" / "summary.json").read_text())
    print(f"NIO: {summary['params']:,} parameters; test relative L1 median {summary['test_rel_l1_median']:.4f} "
          f"(half of the probes: {summary['test_half_rel_l1_median']:.4f})")

    solver = sciml.Solver.load(out / "run")  # a MeasurementSolver: measurements in, a Field out
    measured = solver.measure(a=TRUTH, noise=0.01, seed=0)  # (16, 64): 16 probes, 64 boundary nodes
    truth = solver.truth(a=TRUTH)["a"]
    solver(measured)  # warm-up: the first call pays for allocations
    t0 = time.perf_counter()
    reconstruction = solver(measured)["a"]
    nio_ms = 1000 * (time.perf_counter() - t0)
    half = solver(measured[::2], patterns=range(0, 16, 2))["a"]

    def rel_l1(a: np.ndarray) -> float:
        return float(np.abs(a - truth.numpy()).mean() / np.abs(truth.numpy()).mean())

    classical = invert_conductivity(measured, trig_patterns(solver.grid, 16), solver.grid, noise_level=0.01)
    result = {"test_rel_l1_median": summary["test_rel_l1_median"], "nio": rel_l1(reconstruction.numpy()),
              "nio_half": rel_l1(half.numpy()), "classical": rel_l1(classical.a), "nio_ms": nio_ms,
              "classical_ms": 1000 * classical.seconds}
    print(f"new conductivity {TRUTH} with 1% noise, relative L1 error:")
    print(f"  NIO, 16 probes {result['nio']:.4f} in {nio_ms:.1f} ms; 8 probes {result['nio_half']:.4f}")
    print(f"  classical (alpha {classical.alpha:.2g}, {classical.iterations} L-BFGS iterations) "
          f"{result['classical']:.4f} in {result['classical_ms']:.0f} ms")

    compare(reconstruction, truth, screenshot=out / "calderon_nio.png", error=sciml.relative_l2(
        reconstruction.numpy(), truth.numpy()), titles=["a: NIO reconstruction", "a: truth", "a: absolute error"])
    print(f"wrote {out / 'calderon_nio.png'}")
    (out / "summary.json").write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("example_outputs/05"))
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--n-train", type=int, default=512)
    args = parser.parse_args()
    main(args.out, args.epochs, args.n_train)
