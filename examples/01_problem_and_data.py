"""01 · Define a problem, make a small dataset with its reference solver, look at one pair.

A Problem is defined once, in plain Python: its random inputs with the spaces that sample them,
its outputs, its PDE residual (for PINNs) and its classical reference solver (for data). Here we
write one from scratch: a variable-coefficient diffusion problem -div(a grad u) = f with a smooth
log-normal coefficient, then make an HDF5 dataset in parallel and save a PyVista picture of one
input/output pair. The built-in problems in ``problems/`` are written the same way.

Run: ``python examples/01_problem_and_data.py [--out DIR]`` (about a minute on a CPU).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import sciml
from sciml.data import GridDataset, generate
from sciml.fields import Field, Grid
from sciml.numerics.fd import solve_elliptic
from sciml.problem import Dirichlet, Input, Problem
from sciml.spaces import GRF


class LogNormal(GRF):
    """exp of a Gaussian random field: a smooth, strictly positive coefficient."""

    def sample(self, n, grid, seed):
        return np.exp(super().sample(n, grid, seed))


def reference(inputs, grid, params):
    # One sparse factorisation per coefficient sample, all in float64.
    return {"u": solve_elliptic(inputs["a"], params["f"], 0.0, grid)}


problem = Problem(
    name="lognormal_diffusion",
    description="-div(a grad u) = 1 on the unit square, u = 0 on the boundary, a log-normal",
    inputs=[Input("a", LogNormal(alpha=2.5, tau=4.0), description="diffusivity exp(GRF)")],
    outputs=["u"],
    grid=Grid(65, ndim=2),
    conditions=[Dirichlet(0.0)],
    reference=reference,
    params={"f": 1.0},
)


def main(out: Path) -> dict[str, float]:
    out.mkdir(parents=True, exist_ok=True)
    # 1. Our own problem: 32 samples on a 65 x 65 grid, two worker processes.
    path = generate(problem, n=32, grid=65, seed=0, path=out / "lognormal.h5", workers=2, overwrite=True)
    data = GridDataset(path)
    sample = data[0]
    print(f"dataset {path.name}: {len(data)} samples, inputs {data.input_names}, outputs {data.output_names}, grid {data.grid}")

    # 2. A built-in problem works the same way: the FNO Darcy benchmark, solved at 421, kept at 85.
    darcy = sciml.load_problem("darcy")
    a, u = darcy.make_samples(2, Grid(85, ndim=2), seed=1)
    print(f"darcy: a=12 fraction {np.mean(a['a'] == 12):.2f}, max u {u['u'].max():.4f}")

    # 3. Look at one input/output pair with PyVista (off-screen) and keep it as VTK too.
    grid = data.grid
    a_field = Field(sample["x"][0].numpy(), grid, "a")
    u_field = Field(sample["y"][0].numpy(), grid, "u")
    from sciml.viz.render import plot, save_vtk

    picture = plot([a_field, u_field], screenshot=out / "pair.png", titles=["coefficient a", "solution u"])
    save_vtk([a_field, u_field], out / "pair.vti")
    print(f"wrote {picture} and {out / 'pair.vti'}")
    return {"u_max": float(u_field.numpy().max()), "a_min": float(a_field.numpy().min())}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("example_outputs/01"))
    main(parser.parse_args().out)
