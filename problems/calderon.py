"""Calderon's problem: a conductivity from its Dirichlet-to-Neumann map (NIO's "Calderon-trig" set-up).

The forward model is the conductivity equation on the unit square,

    -div(a grad u_l) = 0 in (0, 1)^2,    u_l = g_l on the boundary,   l = 1..L,

and the measurement of probe ``l`` is the outward boundary flux ``a du_l/dn`` at every boundary node
(:func:`sciml.numerics.conductivity.dtn`: the consistent finite-volume flux, second order, one sparse
factorisation per sample shared by its L probes). The probes are the trigonometric patterns
``cos(theta), sin(theta), cos(2 theta), ...`` of the boundary nodes' angle about the centre
(:func:`~sciml.numerics.conductivity.trig_patterns`). One sample of the inverse problem is

* **input** ``dtn``: the ``(L, n_b)`` array of the L fluxes (``n_b = 4 (n - 1)`` boundary nodes in
  counter-clockwise order from the corner (0, 0)), with multiplicative Gaussian noise
  ``m (1 + noise xi)`` per entry (NIO's noise model; ``make_problem(noise=0.05)`` is 5%);
* **output** ``a``: the conductivity at the grid nodes.

**Conductivity.** ``a = exp(s)`` with ``s`` a random sine series (``TrigSeries``: 3 x 3 terms
``sin(pi j x) sin(pi k y)``, uniform coefficients in [-1, 1] weighted by ``0.35 / |(j, k)|``), smooth
and equal to 1 on the boundary, as the Calderon-trig coefficients of the NIO paper are smooth
trigonometric fields (their exact family and their 70 x 70 grid with 68 points per side are not in
the reference code: a difference of set-up). Values lie within ``exp(+-1.18)`` and mostly in [0.6, 1.7].

Data are solved on the data grid itself (``solve_stride = 1``: the measurement lives on the boundary
nodes of the grid it was computed on).

    sciml generate calderon --n 2200 --resolution 33           # 16 probes, no noise
    python -c "import sciml; p = sciml.load_problem('calderon')"
"""

from __future__ import annotations

import dataclasses
from functools import partial

import numpy as np

from sciml.fields import Grid
from sciml.numerics.conductivity import dtn, trig_patterns
from sciml.problem import Input, InverseProblem, Problem
from sciml.spaces import LogNormal, TrigSeries

MEASUREMENTS = 16
NOISE = 0.0


def measurement_shapes(measurements: int, grid: Grid) -> dict[str, tuple[int, int]]:
    """The flux of every probe at every boundary node: ``(L, 4 (n - 1))`` on an ``n x n`` grid."""
    n_boundary = 2 * (grid.shape[0] - 1) + 2 * (grid.shape[1] - 1)
    return {"dtn": (measurements, n_boundary)}


def reference(inputs, grid, params):
    """The Dirichlet-to-Neumann data of every conductivity: ``(B, L, n_b)``, float64."""
    patterns = trig_patterns(grid, params["measurements"])
    return {"dtn": dtn(np.asarray(inputs["a"], dtype=np.float64), grid, patterns)}


def observe(inputs, outputs, grid, params):
    """What is measured is the flux itself (noise is added by the InverseProblem)."""
    return {"dtn": outputs["dtn"]}


def make_forward(measurements: int = MEASUREMENTS) -> Problem:
    """The forward map ``a -> DtN data`` with ``measurements`` trigonometric probes."""
    conductivity = LogNormal(TrigSeries(n_terms=3, decay=1.0, amplitude=0.35, basis="sine",
                                        distribution="uniform"))
    return Problem(
        name="calderon_forward",
        inputs=[Input("a", space=conductivity, description="conductivity, 1 on the boundary")],
        outputs=["dtn"],
        grid=Grid(33, ndim=2),
        reference=reference,
        observe=observe,
        params={"measurements": int(measurements)},
        array_shapes=partial(measurement_shapes, int(measurements)),
        description=f"conductivity -> Dirichlet-to-Neumann data of {measurements} trigonometric probes",
    )


def make_problem(noise: float = NOISE, measurements: int = MEASUREMENTS) -> Problem:
    """The inverse problem: DtN data with multiplicative ``noise`` -> the conductivity ``a``."""
    inverse = InverseProblem.from_forward(make_forward(measurements), "a", ["dtn"], name="calderon", noise=noise,
                                          noise_model="multiplicative")
    return dataclasses.replace(inverse, description=f"Calderon: {inverse.description}")


problem = make_problem()
