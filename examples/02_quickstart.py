"""02 · The quickstart in Python: train an operator, answer a new boundary condition, look at it.

The same story as ``sciml quickstart``, written out step by step:

1. load the built-in Poisson problem (-Laplace u = f, u = g on the boundary; g and f random);
2. make a dataset with its float64 reference solver and train a Fourier neural operator on it;
3. call the trained solver on a boundary condition that was not in the data, written as a formula;
4. compare with the reference solver and save a picture (prediction | reference | error, with the
   inputs g and f below) and a VTK file holding answer, reference and inputs.

Run: ``python examples/02_quickstart.py [--out DIR] [--epochs E] [--n-train N] [--resolution R]``
(about a minute with the defaults, ``SETTINGS`` of ``sciml quickstart``, on two CPU cores; the tests
run a smaller version).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import sciml
from sciml.viz.render import compare, save_vtk
from sciml.workflows import train_operator
from sciml.workflows.quickstart import NEW_BOUNDARY, NEW_SOURCE, SETTINGS


def main(out: Path, epochs: int, n_train: int, resolution: int) -> float:
    problem = sciml.load_problem("poisson")

    # Data + training: generate() runs inside train_operator, cached in the run directory.
    run = train_operator(
        problem,
        model="fno",
        model_kwargs=SETTINGS["model_kwargs"],
        n_train=n_train,
        n_test=SETTINGS["n_test"],
        resolution=resolution,
        epochs=epochs,
        batch_size=SETTINGS["batch_size"],
        lr=SETTINGS["lr"],
        out_dir=out / "run",
    )
    print(f"test relative L2: mean {run.mean_error:.4f}, median {run.median_error:.4f}")

    # A new boundary condition and source, as formulas of the coordinates.
    solver = sciml.Solver.load(out / "run")  # the same solver, rebuilt from the checkpoint alone
    answer = solver(g=NEW_BOUNDARY, f=NEW_SOURCE)  # {"u": Field}, and .inputs: what the model was given
    prediction = answer["u"]
    reference = solver.reference(g=NEW_BOUNDARY, f=NEW_SOURCE)["u"]
    error = sciml.relative_l2(prediction.numpy(), reference.numpy())
    print(f"new boundary condition g = {NEW_BOUNDARY}: relative L2 error {error:.4f}")

    # The picture: prediction | reference | error (relative L2 in its title), and below it the
    # inputs as the solver saw them: g along the boundary (a boundary input), f as a field.
    inputs = answer.inputs
    on_boundary = [i.name for i in problem.inputs if i.on == "boundary"]
    compare(prediction, reference, screenshot=out / "quickstart.png", inputs=inputs, error=error,
            boundary_inputs=on_boundary)
    save_vtk([prediction, sciml.Field(reference.numpy(), reference.disc, "u_reference"), *inputs.values()],
             out / "prediction.vtu", boundary=on_boundary)
    print(f"wrote {out / 'quickstart.png'} and {out / 'prediction.vtu'} (answer, reference and inputs)")
    return float(error)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("example_outputs/02"))
    parser.add_argument("--epochs", type=int, default=SETTINGS["epochs"])
    parser.add_argument("--n-train", type=int, default=SETTINGS["n_train"])
    parser.add_argument("--resolution", type=int, default=SETTINGS["resolution"])
    args = parser.parse_args()
    main(args.out, args.epochs, args.n_train, args.resolution)
