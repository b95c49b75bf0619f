"""``sciml quickstart``: the whole story on an embedded default, in about three minutes on a CPU.

1. Take the built-in Poisson problem, whose Dirichlet data g and source f are both random.
2. Make a dataset of it with the package's own float64 reference solver.
3. Train a Fourier neural operator on it (CPU, about two minutes; a GPU is used when present).
4. Solve for a boundary condition that was not in the data, given as a formula.
5. Compare with the reference solver (relative L2) and write a picture of prediction, reference
   and error, and a VTK file to open in ParaView.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["quickstart", "NEW_BOUNDARY", "NEW_SOURCE", "SETTINGS"]

#: The new boundary condition and source the trained solver answers (not in the training data).
NEW_BOUNDARY = "sin(pi*x)*y + 0.5*cos(2*pi*y)*x"
NEW_SOURCE = "10*sin(pi*x)*sin(2*pi*y)"

#: Problem size and training settings, chosen to take about two minutes of training on 2 CPU cores.
SETTINGS: dict[str, Any] = {
    "resolution": 33,
    "n_train": 1000,
    "n_test": 100,
    "epochs": 16,
    "batch_size": 20,
    "lr": 3e-3,
    "model_kwargs": {"n_modes": [12, 12], "width": 32, "n_layers": 4, "padding": 0.25},
}


def quickstart(
    out_dir: str | os.PathLike[str] = "quickstart_out",
    epochs: int | None = None,
    seed: int = 0,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Run the quickstart and return its numbers (also written to ``out_dir/quickstart.json``)."""
    from ..problem import load_problem
    from ..viz.render import compare, save_vtk
    from .operator import train_operator

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    problem = load_problem("poisson")
    s = dict(SETTINGS, epochs=epochs or SETTINGS["epochs"])
    print(f"[1/4] problem {problem.name!r}: {problem.description}")

    started = time.perf_counter()
    run = train_operator(
        problem,
        model="fno",
        model_kwargs=s["model_kwargs"],
        n_train=s["n_train"],
        n_test=s["n_test"],
        resolution=s["resolution"],
        out_dir=out / "run",
        epochs=s["epochs"],
        batch_size=s["batch_size"],
        lr=s["lr"],
        seed=seed,
        progress=progress,
    )
    trained = time.perf_counter()
    print(
        f"[2/4] trained FNO on {s['n_train']} samples at {s['resolution']}x{s['resolution']} "
        f"in {trained - started:.0f} s; test relative L2 mean {run.mean_error:.4f}, median {run.median_error:.4f}"
    )

    solver = run.solver
    new = {"g": NEW_BOUNDARY, "f": NEW_SOURCE}
    prediction = solver(**new)["u"]
    reference = solver.reference(**new)["u"]
    error = float(((prediction.numpy() - reference.numpy()) ** 2).sum() ** 0.5 / (reference.numpy() ** 2).sum() ** 0.5)
    print(f"[3/4] new boundary condition g = {NEW_BOUNDARY}, source f = {NEW_SOURCE}")
    print(f"      relative L2 error against the reference solver: {error:.4f} ({100 * error:.2f}%)")

    from ..fields import Field

    # The inputs as the solver saw them (g as its harmonic extension; drawn along the boundary).
    inputs = {k: Field(v[0], prediction.disc, k) for k, v in problem.prepare_inputs(new, prediction.disc).items()}
    on_boundary = [i.name for i in problem.inputs if i.on == "boundary"]
    png = compare(prediction, reference, screenshot=out / "quickstart.png", inputs=inputs, error=error,
                  boundary_inputs=on_boundary)
    vtu = save_vtk(
        [
            Field(prediction.numpy(), prediction.disc, "prediction"),
            Field(reference.numpy(), reference.disc, "reference"),
            Field(prediction.numpy() - reference.numpy(), prediction.disc, "error"),
            *inputs.values(),
        ],
        out / "quickstart.vtu",
        boundary=on_boundary,
    )
    print(f"[4/4] wrote {png} (prediction | reference | error, the inputs below) and {vtu} (with the inputs)")
    summary = {
        "new_boundary": NEW_BOUNDARY,
        "new_source": NEW_SOURCE,
        "relative_l2_new_condition": error,
        "test_rel_l2_mean": run.mean_error,
        "test_rel_l2_median": run.median_error,
        "seconds_total": time.perf_counter() - started,
        "seconds_data_and_training": trained - started,
        "settings": s,
        "run_dir": str(run.run_dir),
        "png": str(png),
    }
    (out / "quickstart.json").write_text(json.dumps(summary, indent=2))
    return summary
