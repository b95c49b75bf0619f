"""What every linear solver of :func:`sciml.linalg.solve` returns, and the checks every one shares.

A :class:`Solution` says what was found and how: the value, whether it converged and, if it did not,
why; the iterations and the history of the *true* relative residual ``||b - A x|| / ||b||`` (float64,
recomputed from ``x``, not the recurrence's estimate); the seconds spent in set-up (factorisation,
AMG hierarchy, network loading) and in the solve itself, so that the two regimes of use (one matrix,
many right-hand sides; a new matrix every solve) can be costed separately.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import ConfigError, NonFiniteError, NotSPDError, ShapeError

__all__ = ["Solution", "check_system", "check_mask", "relative_residual", "check_symmetric"]


@dataclass
class Solution:
    """The outcome of one linear solve.

    Attributes
    ----------
    value : numpy.ndarray ``(n,)`` float64
        The approximate solution (the last iterate when not converged).
    converged : bool
        Whether the true relative residual reached ``rtol``.
    iterations : int
        Iterations taken (0 for a direct solve).
    residuals : list of float
        True relative residual ``||b - A x_k|| / ||b||`` after each iteration, starting with ``x0``'s.
    setup_seconds, solve_seconds : float
        Wall time of the set-up (factorisation, preconditioner, network) and of the iterations.
    reason : str
        ``"converged"``, or why it stopped: ``"maxiter"``, ``"breakdown: ..."``, ``"not SPD: ..."``.
    method : str
        The method's name.
    """

    value: np.ndarray
    converged: bool
    iterations: int
    residuals: list[float] = field(default_factory=list)
    setup_seconds: float = 0.0
    solve_seconds: float = 0.0
    reason: str = "converged"
    method: str = ""

    @property
    def rel_residual(self) -> float:
        """The last true relative residual."""
        return self.residuals[-1] if self.residuals else float("nan")

    def __repr__(self) -> str:
        return (f"Solution(method={self.method!r}, converged={self.converged}, iterations={self.iterations}, "
                f"rel_residual={self.rel_residual:.3g}, setup={self.setup_seconds:.3g} s, "
                f"solve={self.solve_seconds:.3g} s, reason={self.reason!r})")


def check_system(A: Any, b: Any, x0: Any = None) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """``(A as float64 CSR, b, x0)`` validated: square, shapes agree, finite; x0 defaults to zero."""
    if not sp.issparse(A):
        A = np.asarray(A)
        if A.ndim != 2:
            raise ShapeError("A", "a square matrix (scipy sparse or 2-D array)", A.shape)
        A = sp.csr_matrix(A)
    A = sp.csr_matrix(A, dtype=np.float64)
    n, m = A.shape
    if n != m or n == 0:
        raise ShapeError("A", "a non-empty square matrix", A.shape)
    if not np.isfinite(A.data).all():
        raise NonFiniteError("A: expected finite entries, got NaN or Inf")
    b = np.asarray(b, dtype=np.float64)
    if b.shape != (n,):
        raise ShapeError("b", (n,), b.shape)
    if not np.isfinite(b).all():
        raise NonFiniteError("b: expected finite entries, got NaN or Inf")
    x0 = np.zeros(n) if x0 is None else np.asarray(x0, dtype=np.float64)
    if x0.shape != (n,):
        raise ShapeError("x0", (n,), x0.shape)
    if not np.isfinite(x0).all():
        raise NonFiniteError("x0: expected finite entries, got NaN or Inf")
    return A, b, x0


def check_symmetric(A: sp.csr_matrix, rtol: float = 1e-10) -> None:
    """NotSPDError unless ``A`` equals its transpose to ``rtol`` of its largest entry."""
    diff = abs(A - A.T)
    scale = float(abs(A).max()) or 1.0
    worst = float(diff.max()) if diff.nnz else 0.0
    if worst > rtol * scale:
        raise NotSPDError(f"A: expected a symmetric matrix, got |A - A^T| up to {worst:.3g} "
                          f"(largest entry {scale:.3g})")


def check_mask(mask: Any, n: int) -> np.ndarray:
    """A boolean grid whose True cells are the ``n`` unknowns (numbered in C order over them)."""
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.ndim not in (2, 3):
        raise ConfigError(f"mask: expected a 2-D or 3-D boolean grid of the unknown cells, got dtype "
                          f"{mask.dtype} and shape {mask.shape}")
    if int(mask.sum()) != n:
        raise ShapeError("mask", f"a grid with {n} True cells (one per unknown)", f"{int(mask.sum())} True cells")
    return mask


def relative_residual(A: sp.csr_matrix, x: np.ndarray, b: np.ndarray) -> float:
    """``||b - A x|| / ||b||`` in float64 (``||b - A x||`` when ``b = 0``)."""
    norm_b = float(np.linalg.norm(b))
    r = float(np.linalg.norm(b - A @ x))
    return r / norm_b if norm_b > 0 else r
