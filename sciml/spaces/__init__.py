"""Random input function spaces: the distributions that PDE inputs are drawn from.

Every space samples ``n`` functions on the nodes of a :class:`~sciml.fields.Grid` at once and returns a
float64 array of shape ``(n, *grid.shape)``. Sampling is seeded (an int or a ``np.random.Generator``)
and *prefix stable*: the first ``k`` of ``n`` samples equal the ``k`` samples drawn with the same seed
(up to round-off from how BLAS blocks the batch), because the noise of sample ``i`` is always the
``i``-th block of one ``standard_normal((n, ...))`` draw. Composed spaces keep this: a sum or product
gives each random part its own child generator (``rng.spawn``), a transformation maps one draw.

Spaces are plain parameter records: ``to_dict()`` gives ``{"kind": ..., **kwargs}`` (JSON-safe, stored
in datasets and checkpoints) and :func:`space_from_dict` rebuilds the space. Factorisations that only
depend on the grid (Cholesky factors, spectral multipliers) are cached per grid on the instance.

Spaces
------
GRF             Gaussian field, covariance ``sigma^2 (-Laplace + tau^2)^(-alpha)``, Neumann or periodic.
ThresholdedGRF  two-valued field ``hi``/``lo`` from the sign of a GRF (FNO's Darcy coefficient).
RBFGRF          Gaussian process with the squared-exponential kernel (DeepONet's input space).
BoundaryGRF     smooth random Dirichlet data, continuous around the corners of a box.
TrigSeries      random sine / cosine / Fourier series with algebraically decaying amplitudes.
Fixed           one deterministic function: a constant, an expression string, a callable or an array.

Composed (:mod:`~sciml.spaces.compose`), each serialising with its parts:

Transformed     a function of the values, ``Transformed(GRF(), "exp(u)")`` (a formula of u, x, y, z, or f(u)).
LogNormal       ``exp`` of a space: ``LogNormal(GRF())``, a positive coefficient.
Tanh            ``a + b * tanh(u)``: a smooth coefficient between ``a - |b|`` and ``a + |b|``.
Thresholded     ``hi`` where a space's sample is ``>= threshold``, ``lo`` elsewhere (two-phase media).
Sum, Product    ``space1 + space2``, ``space * 2.0``, ``space1 * space2``, ``-space``, ``space / 2``;
                each random part draws independently.

Your own space: subclass :class:`Space`, implement ``draw(n, grid, rng)`` and ``params()`` and
decorate it with :func:`register_space` (the contract is in the :class:`Space` docstring).

One module per kind of space: :mod:`~sciml.spaces.base` (the :class:`Space` contract and registry),
:mod:`~sciml.spaces.grf`, :mod:`~sciml.spaces.boundary`, :mod:`~sciml.spaces.series`,
:mod:`~sciml.spaces.compose`.
"""

from __future__ import annotations

from .base import Space, register_space, space_from_dict
from .boundary import BoundaryGRF, boundary_indices
from .compose import LogNormal, Product, Sum, Tanh, Thresholded, Transformed
from .grf import GRF, RBFGRF, ThresholdedGRF
from .series import Fixed, TrigSeries

__all__ = [
    "Space", "GRF", "ThresholdedGRF", "RBFGRF", "BoundaryGRF", "TrigSeries", "Fixed",
    "Transformed", "LogNormal", "Tanh", "Thresholded", "Sum", "Product",
    "boundary_indices", "register_space", "space_from_dict",
]
