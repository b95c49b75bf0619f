"""Poisson's equation in d dimensions with a Gaussian bump: the high-dimensional test of AAS.

    -Laplace u = f   on [-1, 1]^d,     u = u_exact on the boundary,
    u_exact(x) = exp(-10 |x|^2),       f = (20 d - 400 |x|^2) exp(-10 |x|^2)

(``Laplace exp(-a |x|^2) = (4 a^2 |x|^2 - 2 a d) exp(-a |x|^2)``). The module's ``problem`` has
``d = 5``; :func:`make_problem` builds any ``d >= 2`` (Tang et al., ICLR 2024, go up to 10). The
bump fills a ball of radius about 0.3, a fraction ``~ 0.3^d`` of the box: in 10-D uniform points
almost never see it.

A grid is out of the question in 5 or 10 dimensions, so the problem has no grid and no grid
reference; :func:`reference_points` gives random test points (half uniform in the box, half from
a normal distribution of standard deviation ``1 / sqrt(20)`` around the origin, where the solution
lives, clipped to the box) and the exact values, to pass to ``PINNTask(reference=(x, u))``.

The Dirichlet data are ``g(x) = exp(-10 (|x|^2 - max_i x_i^2 + 1))``, a callable of one array or
tensor per coordinate: on the boundary ``max_i x_i^2 = 1`` and ``g`` is the exact solution, inside
it is not (it stays below ``exp(-10)``). Giving the exact solution itself would be correct for a soft
condition but would hand a hard constraint ``u = A + D N`` (whose lifting ``A`` is the data's
callable evaluated inside) the answer.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from sciml import diff
from sciml.errors import ConfigError
from sciml.geometry import Domain
from sciml.problem import Dirichlet, Problem

A = 10.0


def exact_array(x, a=A):
    """``exp(-a |x|^2)`` at points ``x (N, d)`` (numpy array or torch tensor)."""
    r2 = (x * x).sum(-1)
    return torch.exp(-a * r2) if isinstance(x, torch.Tensor) else np.exp(-a * r2)


def source_array(x, a=A):
    """``f = -Laplace u_exact = (2 a d - 4 a^2 |x|^2) exp(-a |x|^2)`` at ``x (N, d)``."""
    d = x.shape[-1]
    r2 = (x * x).sum(-1)
    e = torch.exp(-a * r2) if isinstance(x, torch.Tensor) else np.exp(-a * r2)
    return (2 * a * d - 4 * a * a * r2) * e


def _check_dim(d):
    if isinstance(d, bool) or not isinstance(d, int) or d < 2:
        raise ConfigError(f"exponential_nd: expected an int dimension d >= 2, got {d!r}")
    return d


def reference_points(d: int = 5, n: int = 20_000, seed: int = 12345) -> tuple[np.ndarray, np.ndarray]:
    """Test points ``(n, d)`` and exact values ``(n,)``: half uniform, half near the bump (see above)."""
    d = _check_dim(d)
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ConfigError(f"reference_points: expected an int n >= 2, got {n!r}")
    rng = np.random.default_rng(seed)
    half = n // 2
    x = np.concatenate([rng.uniform(-1.0, 1.0, (half, d)),
                        np.clip(rng.normal(0.0, 1.0 / math.sqrt(2 * A), (n - half, d)), -1.0, 1.0)])
    return x, exact_array(x)


def make_problem(d: int = 5) -> Problem:
    """The problem on ``[-1, 1]^d``."""
    d = _check_dim(d)

    def equation(u, x, inputs):
        """Residual ``-Laplace u - f``."""
        return -diff.laplacian(u, x) - source_array(x, inputs["a"])

    def boundary(*coords):
        """Boundary data: the exact solution on the boundary, not inside (see the module docstring)."""
        if isinstance(coords[0], torch.Tensor):
            x = torch.stack(coords, -1)
            return torch.exp(-A * ((x * x).sum(-1) - (x * x).amax(-1) + 1))
        x = np.stack(coords, -1)
        return np.exp(-A * ((x * x).sum(-1) - (x * x).max(-1) + 1))

    domain = Domain.hypercube(-np.ones(d), np.ones(d))
    return Problem(
        name="exponential_nd" if d == 5 else f"exponential_{d}d",
        description=f"-Laplace u = f on [-1, 1]^{d}, u = exp(-10 |x|^2)",
        inputs=[],
        outputs=["u"],
        domain=domain,
        equation=equation,
        conditions=[Dirichlet(boundary)],
        params={"d": d, "a": A},
    )


problem = make_problem(5)
