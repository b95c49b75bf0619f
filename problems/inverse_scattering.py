"""Inverse wave scattering: a piecewise-constant refractive index from the Helmholtz Dirichlet-to-Neumann map.

The forward model is the Helmholtz equation on the unit square,

    Delta u_l + omega^2 kappa u_l = 0 in (0, 1)^2,    u_l = g_l on the boundary,   l = 1..L,

at the fixed wave number ``omega = 2``, and the measurement of probe ``l`` is the outward boundary flux
``du_l/dn`` at every boundary node (:func:`sciml.numerics.conductivity.helmholtz_dtn`: the
finite-volume operator of the Calderon problem with ``a = 1`` minus ``omega^2 kappa`` times the
control-volume areas, the consistent flux, one sparse LU per sample shared by its L probes). The
probes are the trigonometric patterns ``cos(theta), sin(theta), cos(2 theta), ...`` of the boundary
nodes' angle about the centre (:func:`~sciml.numerics.conductivity.trig_patterns`). One sample of the
inverse problem is

* **input** ``dtn``: the ``(L, n_b)`` array of the L fluxes (``n_b = 4 (n - 1)`` boundary nodes in
  counter-clockwise order from the corner (0, 0)), with multiplicative Gaussian noise
  ``m (1 + noise xi)`` per entry (NIO's noise model; ``make_problem(noise=0.05)`` is 5%);
* **output** ``kappa``: the squared refractive index at the grid nodes.

**Refractive index.** ``kappa = 1 + sum_k c_k 1_{Q_k}`` over ``K`` axis-aligned squares ``Q_k``, ``K``
uniform in 1..4: side uniform in ``[0.1, 0.25]``, lower-left corner uniform such that the square lies
in ``[0.05, 0.95]^2`` (a margin of 0.05 from the boundary, where the probes act), contrast ``c_k``
uniform in ``[0.5, 1.5]``, one per square. Overlapping squares add, so ``kappa`` is 1 outside the
squares, ``1 + c_k`` in a single square (in ``[1.5, 2.5]``) and up to 7 where all four overlap. Node
values are exact (a node in the closed square or not), drawn by :class:`SquareScatterers` (kind
``"square_scatterers"``).

**Wave number, and why omega = 2 is safe.** The Dirichlet problem is ill-posed where ``omega^2`` is an
eigenvalue ``mu`` of ``-Delta v = mu kappa v`` (``v = 0`` on the boundary); below the lowest one,
``mu_1(kappa)``, the operator ``-Delta - omega^2 kappa`` is positive definite and every probe has a
unique, stably computed solution. By the Rayleigh quotient ``mu_1 >= 2 pi^2 / max kappa`` (``2 pi^2 ~
19.7`` is the Dirichlet Laplacian's lowest eigenvalue on the unit square), so ``omega^2 max kappa =
4 max kappa < 15`` already guarantees it for every sample with ``max kappa < 3.75``: every sample
without overlapping squares (``max kappa <= 2.5``) and most with two overlapping. The worst admissible
``kappa`` stacks all four squares (for a fixed ``v`` the quotient's denominator is largest when every
square sits where ``v^2`` has the most mass), each of the largest side and contrast, at the centre:
``kappa = 7`` on a centred square of side 0.25, whose ``mu_1`` is about 6.5 on the 33 x 33 grid
(tested). So ``omega^2 = 4`` is below the first resonance of every sample, by a factor of at most 0.62.
``make_problem(omega=...)`` changes it; a (near-)resonant value is refused by
:func:`~sciml.numerics.conductivity.helmholtz_dtn` when a sample hits it.

**A weak signal.** The waves are long (wavelength ``2 pi / (omega sqrt(kappa))``: 3.1 box lengths in
the background, 2 in a square of contrast 1.5), as for any wave number below the first resonance, and
the scatterers change the flux little: the median relative L2 difference between a sample's data and
those of ``kappa = 1`` (:func:`background_flux`) is about 0.34% at ``omega = 2`` (0.06% at 1, 0.56% at
2.4; it grows roughly like ``omega^2``). Multiplicative noise of 1% per entry is therefore larger than the
signal in a typical entry (averaging over the ``L n_b`` entries is what still carries information), and a
model should see the data minus :func:`background_flux`, suitably scaled. For comparison the
inclusions of :mod:`eit_inclusions` change the voltages by about 21%.

**Differences from NIO's Helmholtz tomography** (Molinaro et al., ICML 2023): its coefficient family,
wave number, boundary conditions and 70 x 70 grid with 68 points per side (20 probes) are not in the
reference code (no data generator is released); the squares, the contrast range and ``omega`` above
are our choices. ``measurements`` sets L (16 by default, as :mod:`calderon`).

Data are solved on the data grid itself (``solve_stride = 1``: the measurement lives on the boundary
nodes of the grid it was computed on).

    sciml generate inverse_scattering --n 2200 --resolution 33   # 16 probes, omega = 2, no noise
    python -c "import sciml; p = sciml.load_problem('inverse_scattering')"
"""

from __future__ import annotations

import dataclasses
import math
from functools import partial
from typing import Any

import numpy as np

from sciml.errors import ConfigError
from sciml.fields import Grid
from sciml.numerics.conductivity import helmholtz_dtn, trig_patterns
from sciml.problem import Input, InverseProblem, Problem
from sciml.spaces import Space, register_space

MEASUREMENTS = 16
NOISE = 0.0
OMEGA = 2.0


def _pair(name: str, value: Any, low: float = 0.0) -> tuple[float, float]:
    """``value`` as a range ``(lo, hi)`` of finite floats with ``low <= lo <= hi``."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected a pair (lo, hi) of numbers, got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and low <= lo <= hi):
        raise ConfigError(f"{name}: expected finite {low:g} <= lo <= hi, got {value!r}")
    return lo, hi


@register_space
class SquareScatterers(Space):
    """``background + sum_k c_k 1_{Q_k}`` over 1 to ``max_squares`` random axis-aligned squares ``Q_k``.

    Per sample: the count ``K`` is uniform in ``min_squares..max_squares``; each square has its side
    uniform in ``side``, its lower-left corner uniform over the positions that keep the square
    ``margin`` away from the box's sides, and its own contrast ``c_k`` uniform in ``contrast``.
    Overlapping squares add their contrasts. A node belongs to a closed square or not: exact node
    values, no smoothing.

    Prefix stable: all random numbers of sample ``i`` are row ``i`` of one ``rng.random((n, 1 + 4 K))``
    draw (count, then side, corner x, corner y and contrast of every possible square).
    """

    kind = "square_scatterers"
    ndims = (2,)

    def __init__(self, max_squares: int = 4, min_squares: int = 1, side: tuple[float, float] = (0.1, 0.25),
                 contrast: tuple[float, float] = (0.5, 1.5), margin: float = 0.05,
                 background: float = 1.0) -> None:
        for name, k in (("max_squares", max_squares), ("min_squares", min_squares)):
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
                raise ConfigError(f"SquareScatterers {name}: expected an int >= 1, got {k!r}")
        if min_squares > max_squares:
            raise ConfigError(f"SquareScatterers: expected min_squares <= max_squares, got "
                              f"{min_squares} > {max_squares}")
        self.max_squares, self.min_squares = int(max_squares), int(min_squares)
        self.side = _pair("SquareScatterers side", side)
        if self.side[0] <= 0:
            raise ConfigError(f"SquareScatterers side: expected positive lengths, got {side!r}")
        self.contrast = _pair("SquareScatterers contrast", contrast, low=-math.inf)
        self.margin = _pair("SquareScatterers margin", (margin, margin))[0]
        self.background = float(background)
        if not math.isfinite(self.background):
            raise ConfigError(f"SquareScatterers background: expected a finite number, got {background!r}")

    def params(self) -> dict[str, Any]:
        return {"max_squares": self.max_squares, "min_squares": self.min_squares, "side": list(self.side),
                "contrast": list(self.contrast), "margin": self.margin, "background": self.background}

    def squares(self, n: int, grid: Grid, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The drawn squares: ``active (n, K)`` bool and ``(n, K, 4)`` rows ``x0, y0, side, contrast``.

        Uses the generator exactly as :meth:`draw` does (same seed, same squares).
        """
        K = self.max_squares
        u = rng.random((n, 1 + 4 * K))
        span = self.max_squares - self.min_squares + 1
        count = self.min_squares + np.minimum((u[:, 0] * span).astype(np.int64), span - 1)
        active = np.arange(K)[None, :] < count[:, None]
        p = u[:, 1:].reshape(n, K, 4)
        side = self.side[0] + (self.side[1] - self.side[0]) * p[..., 0]
        corners = []
        for j, (box_lo, box_hi) in enumerate(grid.bounds):
            low = box_lo + self.margin
            room = np.maximum(box_hi - self.margin - side - low, 0.0)  # 0: a box too small, square at low
            corners.append(low + room * p[..., 1 + j])
        c = self.contrast[0] + (self.contrast[1] - self.contrast[0]) * p[..., 3]
        return active, np.stack([corners[0], corners[1], side, c], axis=-1)

    def draw(self, n: int, grid: Grid, rng: np.random.Generator) -> np.ndarray:
        active, squares = self.squares(n, grid, rng)
        x, y = grid.axes
        out = np.full((n, *grid.shape), self.background)
        for i in range(n):
            for x0, y0, side, c in squares[i][active[i]]:
                in_x = (x >= x0) & (x <= x0 + side)
                in_y = (y >= y0) & (y <= y0 + side)
                out[i] += c * np.outer(in_x, in_y)
        return out


def background_flux(grid: Grid, measurements: int = MEASUREMENTS, omega: float = OMEGA) -> np.ndarray:
    """The data ``(L, n_b)`` of ``kappa = 1`` (no scatterer): subtracted from a sample, the scatterers' signature."""
    return helmholtz_dtn(1.0, grid, trig_patterns(grid, measurements), float(omega))


def measurement_shapes(measurements: int, grid: Grid) -> dict[str, tuple[int, int]]:
    """The flux of every probe at every boundary node: ``(L, 4 (n - 1))`` on an ``n x n`` grid."""
    n_boundary = 2 * (grid.shape[0] - 1) + 2 * (grid.shape[1] - 1)
    return {"dtn": (measurements, n_boundary)}


def reference(inputs, grid, params):
    """The Helmholtz Dirichlet-to-Neumann data of every index ``kappa``: ``(B, L, n_b)``, float64."""
    patterns = trig_patterns(grid, params["measurements"])
    return {"dtn": helmholtz_dtn(np.asarray(inputs["kappa"], dtype=np.float64), grid, patterns, params["omega"])}


def observe(inputs, outputs, grid, params):
    """What is measured is the flux itself (noise is added by the InverseProblem)."""
    return {"dtn": outputs["dtn"]}


def make_forward(measurements: int = MEASUREMENTS, omega: float = OMEGA) -> Problem:
    """The forward map ``kappa -> Helmholtz DtN data`` of ``measurements`` trigonometric probes at ``omega``."""
    if isinstance(omega, bool) or not isinstance(omega, (int, float)) or not (math.isfinite(omega) and omega >= 0):
        raise ConfigError(f"inverse_scattering omega: expected a finite number >= 0, got {omega!r}")
    return Problem(
        name="inverse_scattering_forward",
        inputs=[Input("kappa", space=SquareScatterers(),
                      description="squared refractive index: 1 plus 1 to 4 squares of contrast 0.5..1.5")],
        outputs=["dtn"],
        grid=Grid(33, ndim=2),
        reference=reference,
        observe=observe,
        params={"measurements": int(measurements), "omega": float(omega)},
        solve_stride=1,
        array_shapes=partial(measurement_shapes, int(measurements)),
        description=(f"refractive index -> Helmholtz Dirichlet-to-Neumann data of {measurements} "
                     f"trigonometric probes at omega = {float(omega):g}"),
    )


def make_problem(noise: float = NOISE, measurements: int = MEASUREMENTS, omega: float = OMEGA) -> Problem:
    """The inverse problem: Helmholtz DtN data with multiplicative ``noise`` -> the index ``kappa``."""
    inverse = InverseProblem.from_forward(make_forward(measurements, omega), "kappa", ["dtn"],
                                          name="inverse_scattering", noise=noise, noise_model="multiplicative")
    return dataclasses.replace(inverse, description=f"Inverse scattering: {inverse.description}")


problem = make_problem()
