"""Electrical impedance tomography of elliptical inclusions (the EIT transformer's set-up, on the unit square).

The forward model is the conductivity equation with a Neumann (current) boundary condition,

    -div(sigma grad u_l) = 0 in (0, 1)^2,    sigma du_l/dn = g_l on the boundary,   l = 1..L,

and the measurement of current pattern ``l`` is the boundary voltage ``f_l = u_l`` at every boundary
node, normalised to zero boundary mean (the Neumann-to-Dirichlet map,
:func:`sciml.numerics.conductivity.ntd`: the same finite-volume operator as the Calderon problem, the
last boundary node pinned, one sparse factorisation per sample shared by its L currents). The currents
are the trigonometric patterns ``cos(theta), sin(theta), cos(2 theta), sin(2 theta), ...`` of the
boundary nodes' angle about the centre, i.e. ``cos(l theta)`` and ``sin(l theta)`` for
``l = 1..L/2`` (:func:`~sciml.numerics.conductivity.trig_patterns`; ``ntd`` removes their small
boundary-quadrature mean, as the Neumann problem needs mean-zero currents). One sample of the inverse
problem is

* **input** ``ntd``: the ``(L, n_b)`` array of the L voltages (``n_b = 4 (n - 1)`` boundary nodes in
  counter-clockwise order from the corner (0, 0), :func:`~sciml.numerics.conductivity.boundary_order`),
  each of zero mean before noise, with multiplicative Gaussian noise ``f (1 + noise xi)`` per entry
  (``make_problem(noise=0.05)`` is 5%; the EIT-transformer paper evaluates 0, 5% and 20%, and its
  exact noise formula is not in its code, so this uses NIO's model, as :mod:`calderon` does;
  multiplicative noise leaves the mean of a noisy voltage slightly off zero);
* **output** ``chi``: the inclusion indicator at the grid nodes, 1 inside an inclusion and 0 outside
  (the EIT transformer's target, a binary image). The conductivity is
  ``sigma = sigma0 + (sigma1 - sigma0) chi`` with ``sigma0`` and ``sigma1`` in ``problem.params``
  (:func:`conductivity`).

**Conductivity.** Background ``sigma0 = 1``; ``K`` elliptical inclusions, ``K`` uniform in 1..4, of the
fixed conductivity ``sigma1 = 10`` (``make_problem(contrast=...)`` changes it; the contrast of the
EIT-transformer data is not in its code and unverified, so 10 is our choice: high enough that the
inclusions are seen clearly, one fixed value so that ``chi`` determines ``sigma``). Each ellipse has
its centre uniform in ``[0.15, 0.85]^2``, semi-axes uniform in ``[0.05, 0.2]`` and a uniform rotation
in ``[0, pi)``; ellipses may overlap (the indicator of their union is 1, so the map can have fewer
connected components than ellipses). An ellipse is kept at least ``margin = 0.05`` away from the
boundary: a centre that would let it come closer is moved inwards just far enough (along each axis,
using the ellipse's bounding box), so the conductivity is ``sigma0`` on and near the boundary where the
currents enter. Node values are the exact indicator (a node is inside the closed ellipse or not; no
smoothing), drawn by :class:`EllipticInclusions` (kind ``"elliptic_inclusions"``).

**Differences from the EIT transformer** (Guo, Cao, Chen, ICLR 2023; their data follow Fan-Bohorquez-
Ying 2019): they solve on a 201 x 201 grid and feed the network the harmonic extensions of
``f_l - Lambda_sigma0 g_l`` (their data files are not released); we store the raw boundary voltages
on the 33 x 33 data grid and provide :func:`background_voltages` (``Lambda_sigma0 g``) so that the
difference, and the harmonic-extension features, can be formed later. Their number of currents is
small (1 or 3 channels); ``measurements`` sets L (16 by default, as :mod:`calderon`). The face mean of
the coefficient is the arithmetic one of :func:`~sciml.numerics.conductivity.ntd` (with a jump in
``sigma`` either face mean is first-order accurate at the interfaces).

Data are solved on the data grid itself (``solve_stride = 1``: the measurement lives on the boundary
nodes of the grid it was computed on).

    sciml generate eit_inclusions --n 2200 --resolution 33     # 16 currents, no noise
    python -c "import sciml; p = sciml.load_problem('eit_inclusions')"
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

import numpy as np

from sciml.errors import ConfigError
from sciml.fields import Grid
from sciml.numerics.conductivity import ntd, trig_patterns
from sciml.problem import Input, InverseProblem, Problem
from sciml.spaces import Space, register_space

MEASUREMENTS = 16
NOISE = 0.0
SIGMA0 = 1.0  # background conductivity
SIGMA1 = 10.0  # conductivity of the inclusions (our choice; the paper's contrast is unverified)


def _pair(name: str, value: Any, low: float = 0.0) -> tuple[float, float]:
    """``value`` as a range ``(lo, hi)`` of finite floats with ``low <= lo <= hi``."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected a pair (lo, hi) of numbers, got {value!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and low <= lo <= hi):
        raise ConfigError(f"{name}: expected finite {low:g} <= lo <= hi, got {value!r}")
    return lo, hi


@register_space
class EllipticInclusions(Space):
    """Piecewise-constant fields: ``background`` with ``value`` inside 1 to ``max_inclusions`` random ellipses.

    Per sample: the count ``K`` is uniform in ``min_inclusions..max_inclusions``; each ellipse has its
    centre uniform in ``centres^2`` (box coordinates), semi-axes uniform in ``semi_axes`` (drawn
    independently) and rotation uniform in ``[0, pi)``. A centre is then moved inwards, along each
    axis, just far enough that the ellipse's bounding box keeps ``margin`` from the box's sides
    (with the defaults a centre stays in ``[0.15, 0.85]``). A node gets ``value`` when it lies in the
    closed ellipse ``(u / a)^2 + (v / b)^2 <= 1`` (``u, v`` the node's coordinates in the ellipse's
    frame) of at least one inclusion, ``background`` otherwise: exact node values, no smoothing.
    With the defaults (``value=1``, ``background=0``) a sample is the inclusion indicator.

    Prefix stable: all random numbers of sample ``i`` are row ``i`` of one ``rng.random((n, 1 + 5 K))``
    draw (count, then centre x, centre y, two semi-axes and angle of every possible inclusion).
    """

    kind = "elliptic_inclusions"
    ndims = (2,)

    def __init__(self, max_inclusions: int = 4, min_inclusions: int = 1,
                 centres: tuple[float, float] = (0.15, 0.85), semi_axes: tuple[float, float] = (0.05, 0.2),
                 margin: float = 0.05, value: float = 1.0, background: float = 0.0) -> None:
        for name, k in (("max_inclusions", max_inclusions), ("min_inclusions", min_inclusions)):
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
                raise ConfigError(f"EllipticInclusions {name}: expected an int >= 1, got {k!r}")
        if min_inclusions > max_inclusions:
            raise ConfigError(f"EllipticInclusions: expected min_inclusions <= max_inclusions, got "
                              f"{min_inclusions} > {max_inclusions}")
        self.max_inclusions, self.min_inclusions = int(max_inclusions), int(min_inclusions)
        self.centres = _pair("EllipticInclusions centres", centres, low=-np.inf)
        self.semi_axes = _pair("EllipticInclusions semi_axes", semi_axes)
        if self.semi_axes[0] <= 0:
            raise ConfigError(f"EllipticInclusions semi_axes: expected positive lengths, got {semi_axes!r}")
        self.margin = _pair("EllipticInclusions margin", (margin, margin))[0]
        self.value, self.background = float(value), float(background)
        if not (np.isfinite(self.value) and np.isfinite(self.background)):
            raise ConfigError(f"EllipticInclusions: expected finite value and background, got {value!r}, {background!r}")

    def params(self) -> dict[str, Any]:
        return {"max_inclusions": self.max_inclusions, "min_inclusions": self.min_inclusions,
                "centres": list(self.centres), "semi_axes": list(self.semi_axes), "margin": self.margin,
                "value": self.value, "background": self.background}

    def ellipses(self, n: int, grid: Grid, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The drawn ellipses: ``active (n, K)`` bool and ``(n, K, 5)`` rows ``cx, cy, a, b, angle``.

        Uses the generator exactly as :meth:`draw` does (same seed, same ellipses).
        """
        K = self.max_inclusions
        u = rng.random((n, 1 + 5 * K))
        span = self.max_inclusions - self.min_inclusions + 1
        count = self.min_inclusions + np.minimum((u[:, 0] * span).astype(np.int64), span - 1)
        active = np.arange(K)[None, :] < count[:, None]
        p = u[:, 1:].reshape(n, K, 5)
        lo, hi = self.centres
        cx, cy = lo + (hi - lo) * p[..., 0], lo + (hi - lo) * p[..., 1]
        a_lo, a_hi = self.semi_axes
        a, b = a_lo + (a_hi - a_lo) * p[..., 2], a_lo + (a_hi - a_lo) * p[..., 3]
        angle = np.pi * p[..., 4]
        c, s = np.cos(angle), np.sin(angle)
        # Half-widths of the rotated ellipse's bounding box; keep it margin away from the box's sides.
        extent = (np.sqrt((a * c) ** 2 + (b * s) ** 2), np.sqrt((a * s) ** 2 + (b * c) ** 2))
        moved = []
        for centre, half, (box_lo, box_hi) in zip((cx, cy), extent, grid.bounds):
            low, high = box_lo + self.margin + half, box_hi - self.margin - half
            mid = 0.5 * (box_lo + box_hi)  # a box too small for the ellipse: centre it
            moved.append(np.clip(centre, np.minimum(low, mid), np.maximum(high, mid)))
        return active, np.stack([moved[0], moved[1], a, b, angle], axis=-1)

    def draw(self, n: int, grid: Grid, rng: np.random.Generator) -> np.ndarray:
        active, shapes = self.ellipses(n, grid, rng)
        x, y = np.meshgrid(*grid.axes, indexing="ij")
        inside = np.zeros((n, *grid.shape), dtype=bool)
        for i in range(n):
            for cx, cy, a, b, angle in shapes[i][active[i]]:
                c, s = np.cos(angle), np.sin(angle)
                u = (x - cx) * c + (y - cy) * s
                v = -(x - cx) * s + (y - cy) * c
                inside[i] |= (u / a) ** 2 + (v / b) ** 2 <= 1.0
        return np.where(inside, self.value, self.background)


def conductivity(chi: Any, sigma0: float = SIGMA0, sigma1: float = SIGMA1) -> np.ndarray:
    """``sigma = sigma0 + (sigma1 - sigma0) chi``: the conductivity of an indicator map (any shape)."""
    return sigma0 + (sigma1 - sigma0) * np.asarray(chi, dtype=np.float64)


def background_voltages(grid: Grid, measurements: int = MEASUREMENTS, sigma0: float = SIGMA0) -> np.ndarray:
    """``Lambda_sigma0 g``: the voltages ``(L, n_b)`` of the constant conductivity ``sigma0`` (no inclusion).

    Subtracted from the data (``ntd - background_voltages(grid, L)``) it leaves the inclusions'
    signature, the quantity the EIT transformer's harmonic-extension features are built from.
    """
    return ntd(float(sigma0), grid, trig_patterns(grid, measurements))


def measurement_shapes(measurements: int, grid: Grid) -> dict[str, tuple[int, int]]:
    """The voltage of every current at every boundary node: ``(L, 4 (n - 1))`` on an ``n x n`` grid."""
    n_boundary = 2 * (grid.shape[0] - 1) + 2 * (grid.shape[1] - 1)
    return {"ntd": (measurements, n_boundary)}


def reference(inputs, grid, params):
    """The Neumann-to-Dirichlet data of every indicator map: ``(B, L, n_b)``, float64."""
    sigma = conductivity(inputs["chi"], params["sigma0"], params["sigma1"])
    return {"ntd": ntd(sigma, grid, trig_patterns(grid, params["measurements"]))}


def observe(inputs, outputs, grid, params):
    """What is measured is the voltage itself (noise is added by the InverseProblem)."""
    return {"ntd": outputs["ntd"]}


def make_forward(measurements: int = MEASUREMENTS, contrast: float = SIGMA1) -> Problem:
    """The forward map ``chi -> NtD voltages`` of ``measurements`` trigonometric currents.

    ``contrast`` is the inclusions' conductivity ``sigma1`` (the background is ``sigma0 = 1``).
    """
    contrast = float(contrast)
    if not (np.isfinite(contrast) and contrast > 0):
        raise ConfigError(f"eit_inclusions contrast: expected a finite conductivity > 0, got {contrast!r}")
    return Problem(
        name="eit_inclusions_forward",
        inputs=[Input("chi", space=EllipticInclusions(),
                      description="inclusion indicator (1 inside, 0 outside); sigma = sigma0 + (sigma1 - sigma0) chi")],
        outputs=["ntd"],
        grid=Grid(33, ndim=2),
        reference=reference,
        observe=observe,
        params={"measurements": int(measurements), "sigma0": SIGMA0, "sigma1": contrast},
        solve_stride=1,
        array_shapes=partial(measurement_shapes, int(measurements)),
        description=(f"inclusion map -> Neumann-to-Dirichlet voltages of {measurements} trigonometric "
                     f"currents (sigma {SIGMA0:g} / {contrast:g})"),
    )


def make_problem(noise: float = NOISE, measurements: int = MEASUREMENTS, contrast: float = SIGMA1) -> Problem:
    """The inverse problem: voltages with multiplicative ``noise`` -> the inclusion indicator ``chi``."""
    inverse = InverseProblem.from_forward(make_forward(measurements, contrast), "chi", ["ntd"],
                                          name="eit_inclusions", noise=noise, noise_model="multiplicative")
    return dataclasses.replace(inverse, description=f"EIT with elliptical inclusions: {inverse.description}")


problem = make_problem()
