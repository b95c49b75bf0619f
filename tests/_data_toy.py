"""A cheap problem file for the dataset tests, and a script that generates from it.

As a problem file (``sciml.load_problem(path)``) it defines ``problem``: two random inputs drawn
from a small sine-series space, one fixed input, and a batched reference made of a few Jacobi
sweeps and a cumulative sum, solved on a grid twice as fine (``solve_stride=2``).

As a script, ``python _data_toy.py OUT N SHARD_SIZE SEED LOG [WORKERS]`` generates ``OUT`` from it and
appends one line ``done total`` to ``LOG`` after every shard, so that a test can kill it mid-way.
``SCIML_TOY_SLEEP`` (seconds) slows the reference down; ``SCIML_TOY_HOLD_AT`` (samples) makes the script
stop there until it is killed, so that a test can kill it mid-way without a race.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from sciml.fields import Grid
from sciml.problem import Input, Problem


class SineSeries:
    """Random ``offset + sum_k c_k prod_d sin(k pi x_d)`` with ``c_k ~ N(0, scale^2 / k^2)``."""

    def __init__(self, modes: int = 3, scale: float = 1.0, offset: float = 0.0) -> None:
        self.modes, self.scale, self.offset = modes, scale, offset

    def sample(self, n: int, grid: Grid, rng: np.random.Generator) -> np.ndarray:
        k = np.arange(1, self.modes + 1)
        coef = rng.normal(size=(n, self.modes)) * self.scale / k
        out = np.full((n, *grid.shape), self.offset)
        for j, kj in enumerate(k):
            basis = np.ones(grid.shape)
            for axis_coords in grid.coord_arrays().values():
                basis = basis * np.sin(kj * np.pi * axis_coords)
            out += coef[:, j].reshape(-1, *([1] * grid.ndim)) * basis
        return out

    def to_dict(self) -> dict:
        return {"kind": "sine_series", "modes": self.modes, "scale": self.scale, "offset": self.offset}


def jacobi(f: np.ndarray, grid: Grid, sweeps: int) -> np.ndarray:
    """``sweeps`` Jacobi iterations for -Laplace u = f, u = 0 on the boundary, from u = 0 (batched)."""
    h2 = grid.spacing[0] ** 2
    u = np.zeros_like(f)
    inner = (slice(None),) + (slice(1, -1),) * grid.ndim
    for _ in range(sweeps):
        total = np.zeros_like(u[inner])
        for axis in range(1, grid.ndim + 1):
            for shift in (-1, 1):
                total += np.roll(u, shift, axis=axis)[inner]
        new = np.zeros_like(u)
        new[inner] = (total + h2 * f[inner]) / (2 * grid.ndim)
        u = new
    return u


def reference(inputs: dict, grid: Grid, params: dict) -> dict:
    delay = float(os.environ.get("SCIML_TOY_SLEEP", "0"))
    if delay:
        time.sleep(delay)
    return {
        "u": jacobi(inputs["a"] * inputs["f"], grid, params["sweeps"]),
        "v": np.cumsum(inputs["a"], axis=-1) * inputs["c"] * params["scale"],
    }


problem = Problem(
    name="toy",
    inputs=[
        Input("a", SineSeries(3, 0.5, offset=1.0), description="coefficient"),
        Input("f", SineSeries(4, 2.0), description="source"),
        Input("c", value=2.0, description="fixed factor"),
    ],
    outputs=["u", "v"],
    grid=Grid(9, ndim=2),
    reference=reference,
    params={"sweeps": 4, "scale": 0.25},
    solve_stride=2,
    description="test problem: Jacobi sweeps and a cumulative sum",
)


if __name__ == "__main__":
    from sciml.data import generate

    out, n, shard_size, seed, log = sys.argv[1:6]
    workers = int(sys.argv[6]) if len(sys.argv) > 6 else 1

    def report(done: int, total: int) -> None:
        with open(log, "a") as fh:
            fh.write(f"{done} {total}\n")
        if done >= int(os.environ.get("SCIML_TOY_HOLD_AT", total + 1)):
            while True:  # hold here until the test's SIGKILL: no race with the remaining shards
                time.sleep(3600)

    generate(__file__, int(n), seed=int(seed), path=out, shard_size=int(shard_size), progress=report,
             workers=workers)
