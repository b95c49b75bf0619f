"""Conjugate gradients, plain and preconditioned, written out in float64.

Written here rather than taken from :func:`scipy.sparse.linalg.cg` so that two things are ours:

* the stopping rule and the history use the *true* relative residual ``||b - A x|| / ||b||``,
  recomputed from ``x`` by the caller's ``record`` (one extra matrix-vector product per iteration),
  not the recurrence's estimate, which drifts from the truth once rounding errors accumulate;
* the breakdown checks: ``p^T A p <= 0`` proves that ``A`` is not positive definite, and
  ``r^T M^{-1} r <= 0`` for ``r != 0`` proves that the preconditioner is not. Both are reported as a
  reason (``"not SPD: ..."``) naming the iteration and the value, and the caller decides whether
  to raise.

These functions follow the ``run`` part of the method protocol of :mod:`sciml.linalg.solve`: they
return ``(x, iterations, reason)`` and never raise for a numerical outcome.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

__all__ = ["pcg"]


def pcg(
    A: sp.csr_matrix,
    b: np.ndarray,
    x0: np.ndarray,
    rtol: float,
    maxiter: int,
    record: Callable[[np.ndarray], float],
    precond: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, int, str]:
    """Preconditioned conjugate gradients for a symmetric positive definite ``A``.

    Parameters
    ----------
    A : scipy.sparse.csr_matrix ``(n, n)`` float64
        The matrix; assumed symmetric (the caller checks it), positive definiteness is checked on the way.
    b, x0 : numpy.ndarray ``(n,)`` float64
        Right-hand side and first iterate (``x0`` is not modified).
    rtol : float
        Stop once the true relative residual returned by ``record`` is ``<= rtol``.
    maxiter : int
        Most updates of ``x``.
    record : callable
        ``record(x) -> float`` appends the true relative residual of ``x`` to the history and returns it;
        called after every update (the driver has recorded ``x0``), so the history has
        ``iterations + 1`` entries.
    precond : callable, optional
        ``z = precond(r)`` applies an SPD approximation of ``A^{-1}``; ``None`` is plain CG (``z = r``).

    Returns
    -------
    x : numpy.ndarray ``(n,)``
        The last iterate.
    iterations : int
        Updates of ``x`` made.
    reason : str
        ``"converged"``; ``"maxiter"``; ``"not SPD: ..."`` (``p^T A p <= 0``, or ``r^T M^{-1} r <= 0``);
        ``"breakdown: ..."`` (a non-finite residual, or a recurrence residual that vanished while the
        true residual is still above ``rtol``).
    """
    x = np.array(x0, dtype=np.float64, copy=True)
    r = b - A @ x
    if not np.any(r):  # x0 is exact (the driver, having recorded x0, does not even call us then)
        return x, 0, "converged"
    z = r if precond is None else precond(r)
    rz = float(r @ z)
    reason = _check_rz(rz, r, 0, precond is not None)
    if reason:
        return x, 0, reason
    # For plain CG z is r itself; copying p keeps the in-place update of r from changing p.
    p = np.array(z, dtype=np.float64, copy=True)
    for k in range(1, maxiter + 1):
        Ap = A @ p
        pAp = float(p @ Ap)
        if not np.isfinite(pAp):
            return x, k - 1, f"breakdown: p^T A p = {pAp} at iteration {k}"
        if pAp <= 0.0:
            # p != 0 here (rz > 0 guarantees it), so a non-positive curvature is a proof, not a rounding accident.
            return x, k - 1, f"not SPD: p^T A p = {pAp:.6g} <= 0 at iteration {k} (A is not positive definite)"
        alpha = rz / pAp
        x += alpha * p
        r -= alpha * Ap
        rel = record(x)
        if rel <= rtol:
            return x, k, "converged"
        if not np.isfinite(rel):
            return x, k, f"breakdown: non-finite residual at iteration {k}"
        z = r if precond is None else precond(r)
        rz_new = float(r @ z)
        reason = _check_rz(rz_new, r, k, precond is not None)
        if reason:
            return x, k, reason
        beta = rz_new / rz
        rz = rz_new
        # p <- z + beta p, in place: one allocation fewer per iteration on large grids.
        p *= beta
        p += z
    return x, maxiter, "maxiter"


def _check_rz(rz: float, r: np.ndarray, k: int, preconditioned: bool) -> str:
    """Why ``r^T z`` cannot continue the iteration (``""`` when it can)."""
    if rz > 0.0 and np.isfinite(rz):
        return ""
    if not np.isfinite(rz):
        return f"breakdown: r^T M^-1 r = {rz} after iteration {k}"
    if not np.any(r):
        # The recurrence thinks it is done while the true residual (checked just before) is not:
        # rounding has separated the two, and CG cannot make further progress from here.
        return f"breakdown: the recurrence residual vanished after iteration {k} above rtol"
    if preconditioned:
        return (f"not SPD: r^T M^-1 r = {rz:.6g} <= 0 after iteration {k} "
                f"(the preconditioner M is not positive definite)")
    return f"breakdown: r^T r = {rz:.6g} after iteration {k}"  # underflow of a nonzero residual
