"""Poisson's equation with one or two sharp peaks, the 2-D test of adversarial adaptive sampling.

    -Laplace u = f   on [-1, 1]^2,     u = u_exact on the boundary,
    u_exact(x) = sum_c exp(-k |x - c|^2),    k = 1000,

with one peak at ``c = (0.5, 0.5)`` (``peaks=1``, the module's ``problem``) or a second one at
``(-0.5, -0.5)`` (``peaks=2``, ``two_peaks``); Tang et al. (ICLR 2024) use both. The source is the
manufactured ``f = -Laplace u_exact = sum_c (4 k - 4 k^2 |x - c|^2) exp(-k |x - c|^2)`` (in 2-D,
``Laplace exp(-k |x|^2) = (4 k^2 |x|^2 - 2 d k) exp(-k |x|^2)``), computed in the equation from the
point coordinates. Each peak has a width of about ``1 / sqrt(2 k) = 0.022``: a uniform set of a few
thousand points puts only a handful of points on it, which is why adaptive sampling matters here.

The reference is the exact solution on the default 201 x 201 grid (spacing 0.01). The Dirichlet data
are zero: on the boundary the exact solution is below ``exp(-k / 4) < 1e-108`` for the default ``k``
(and below ``exp(-k / 4)`` in general). Zero data (rather than the exact solution as a callable) also
keep a hard constraint ``u = A + D N`` honest: PINNTask's lifting ``A`` is the data's callable
evaluated inside the domain, and the exact solution there would hand the network the answer.
:func:`make_problem` builds other variants (number of peaks, sharpness ``k``).
"""

from __future__ import annotations

import numpy as np
import torch

from sciml import diff
from sciml.errors import ConfigError
from sciml.fields import Grid
from sciml.geometry import Domain
from sciml.problem import Dirichlet, Problem

CENTERS = ((0.5, 0.5), (-0.5, -0.5))


def _terms(x, y, k, peaks):
    """``[(|x - c|^2, exp(-k |x - c|^2)) per peak]`` for numpy arrays or torch tensors."""
    exp = torch.exp if isinstance(x, torch.Tensor) else np.exp
    out = []
    for cx, cy in CENTERS[:peaks]:
        r2 = (x - cx) ** 2 + (y - cy) ** 2
        out.append((r2, exp(-k * r2)))
    return out


def exact(x, y, k=1000.0, peaks=1):
    """The exact solution at coordinates ``x, y`` (numpy arrays or torch tensors)."""
    return sum(e for _, e in _terms(x, y, k, peaks))


def source(x, y, k=1000.0, peaks=1):
    """``f = -Laplace u_exact`` at ``x, y`` (numpy arrays or torch tensors)."""
    return sum((4 * k - 4 * k * k * r2) * e for r2, e in _terms(x, y, k, peaks))


def make_problem(peaks: int = 1, k: float = 1000.0) -> Problem:
    """The peak problem with ``peaks`` (1 or 2) peaks of sharpness ``k`` (> 0)."""
    if peaks not in (1, 2) or isinstance(peaks, bool):
        raise ConfigError(f"peak2d: expected peaks = 1 or 2, got {peaks!r}")
    k = float(k)
    if not np.isfinite(k) or k <= 0:
        raise ConfigError(f"peak2d: expected a finite sharpness k > 0, got {k!r}")

    def equation(u, x, inputs):
        """Residual ``-Laplace u - f``."""
        f = source(x[:, 0], x[:, 1], inputs["k"], int(inputs["peaks"]))
        return -diff.laplacian(u, x) - f

    def reference(inputs, grid, params):
        """The exact solution on ``grid``, ``(B, nx, ny)`` with B = 1 (the problem has no inputs)."""
        batch = next((np.shape(v)[0] for v in inputs.values()), 1)
        x, y = np.meshgrid(*grid.axes, indexing="ij")
        u = exact(x, y, params["k"], int(params["peaks"]))
        return {"u": np.broadcast_to(u, (batch, *grid.shape)).copy()}

    name = "peak2d" if peaks == 1 else "peak2d_two"
    return Problem(
        name=name,
        description=f"-Laplace u = f on [-1, 1]^2, u = sum of {peaks} peak(s) exp(-{k:g} |x - c|^2)",
        inputs=[],
        outputs=["u"],
        grid=Grid((201, 201), bounds=((-1.0, 1.0), (-1.0, 1.0))),
        domain=Domain.rectangle([-1.0, -1.0], [1.0, 1.0]),
        equation=equation,
        conditions=[Dirichlet(0.0)],
        reference=reference,
        params={"peaks": peaks, "k": k},
    )


problem = make_problem(1)
two_peaks = make_problem(2)
