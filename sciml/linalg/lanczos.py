"""Lanczos tridiagonalisation, Ritz pairs and the DCDM training right-hand sides.

The deep conjugate-direction method (DCDM) trains its network on right-hand sides built from Ritz
vectors of the system matrix, biased towards the low end of the spectrum, because those are the
error components that conjugate gradients resolves last. The reference recipe is:

1. start Lanczos from ``v0 = A g`` with ``g ~ N(0, I)``, so that the start (and with it the whole
   Krylov space) lies in ``range(A)`` and a singular (pure Neumann) matrix never yields null-space
   Ritz vectors;
2. run ``m`` steps, eigen-decompose the tridiagonal ``T`` and form the Ritz vectors ``W S``;
3. drop Ritz values below ``1e-8`` of the largest;
4. draw ``b = sum_i c_i q_i`` with ``c_i ~ 9 N(0, 1)`` for the lowest ``cut`` Ritz vectors and
   ``c_i ~ N(0, 1)`` for the rest, normalised to unit 2-norm.

Unlike the reference, :func:`lanczos` re-orthogonalises every new basis vector against all earlier
ones (two classical Gram-Schmidt passes, "twice is enough"). Without it the basis loses
orthogonality as soon as the first Ritz values converge and ``T`` grows spurious copies ("ghost"
Ritz pairs) of converged eigenvalues, so that the low-mode weighting above counts some modes many
times over. Full re-orthogonalisation costs ``O(n m^2)`` flops and ``n m`` floats of memory.

Everything here is float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from ..errors import ConfigError, NonFiniteError, NotSPDError, ShapeError
from .solution import check_symmetric

__all__ = ["lanczos", "ritz_pairs", "training_rhs", "DROP_BELOW", "BREAKDOWN"]

DROP_BELOW = 1e-8
"""Ritz values below this fraction of the largest are dropped (null space and round-off)."""

BREAKDOWN = 1e-10
"""``beta_j`` below this fraction of the running estimate of ``||T||`` means an invariant subspace."""

_INDEFINITE = 1e-10  # a Ritz value below -_INDEFINITE * max|theta| proves A indefinite


def _order(A: Any) -> int:
    """The order ``n`` of a square operator (sparse, dense or LinearOperator)."""
    shape = getattr(A, "shape", None)
    if shape is None or len(shape) != 2 or shape[0] != shape[1] or shape[0] == 0:
        raise ShapeError("A", "a non-empty square matrix or operator (n, n)", shape)
    return int(shape[0])


def _matvec(A: Any, x: np.ndarray) -> np.ndarray:
    """``A @ x`` as a flat float64 vector (sparse matrices, arrays and LinearOperators alike)."""
    return np.asarray(A @ x, dtype=np.float64).reshape(-1)


def lanczos(A: Any, v0: Any, m: int, *,
            reorthogonalize: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``m`` steps of the symmetric Lanczos process: ``A W = W T + beta_m w_{m+1} e_m^T``.

    Parameters
    ----------
    A : scipy.sparse matrix, numpy.ndarray or scipy.sparse.linalg.LinearOperator, shape (n, n)
        Symmetric operator (only products ``A @ x`` are used; symmetry is not checked here).
    v0 : array_like, shape (n,)
        Start vector (any non-zero scale).
    m : int
        Number of steps (positive). A Krylov space has at most ``n`` dimensions, so ``m`` is capped
        at ``n``.
    reorthogonalize : bool
        Re-orthogonalise each new vector against the whole basis (two Gram-Schmidt passes). Only
        switch it off to reproduce the plain three-term recurrence of the reference and its ghosts.

    Returns
    -------
    alpha : numpy.ndarray, shape (k,)
        Diagonal of ``T``.
    beta : numpy.ndarray, shape (k - 1,)
        Off-diagonal of ``T``.
    W : numpy.ndarray, shape (n, k)
        Lanczos basis (orthonormal columns with re-orthogonalisation).

    ``k = m`` unless the Krylov space became invariant earlier (``beta_j`` below ``BREAKDOWN`` times
    the running estimate of ``||T||``): then what was built so far, ``k < m`` steps, is returned, and
    the eigenvalues of ``T`` are exact eigenvalues of ``A``.

    Raises
    ------
    ShapeError
        ``A`` not square or ``v0`` not of length ``n``.
    ConfigError
        ``m`` not a positive integer.
    NonFiniteError
        ``v0`` or a product ``A @ w`` not finite, or ``v0`` zero.
    """
    n = _order(A)
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
        raise ConfigError(f"lanczos: expected a positive integer number of steps m, got {m!r}")
    m = min(int(m), n)
    v = np.asarray(v0, dtype=np.float64)
    if v.shape != (n,):
        raise ShapeError("lanczos v0", (n,), v.shape)
    if not np.isfinite(v).all():
        raise NonFiniteError("lanczos v0: expected finite entries, got NaN or Inf")
    norm = float(np.linalg.norm(v))
    if norm == 0.0:
        raise NonFiniteError("lanczos v0: expected a non-zero start vector, got the zero vector")

    # The basis is kept as rows so that the projections W^T z read contiguous memory.
    basis = np.empty((m, n))
    alpha = np.empty(m)
    beta = np.empty(max(m - 1, 0))
    basis[0] = v / norm
    scale = 0.0  # running estimate of ||T||: max over rows of |alpha_j| + beta_j + beta_{j-1}
    for j in range(m):
        z = _matvec(A, basis[j])
        if z.shape != (n,) or not np.isfinite(z).all():
            raise NonFiniteError(f"lanczos: A @ w_{j} is not a finite vector of length {n}")
        alpha[j] = basis[j] @ z
        if j == m - 1:
            break  # alpha_{m-1} was all that was missing
        z -= alpha[j] * basis[j]
        if j > 0:
            z -= beta[j - 1] * basis[j - 1]
        if reorthogonalize:
            # Two passes: one classical Gram-Schmidt pass leaves an error of about eps * cond of the
            # projection; the second brings it to round-off ("twice is enough", Kahan/Parlett).
            for _ in range(2):
                z -= basis[: j + 1].T @ (basis[: j + 1] @ z)
        b = float(np.linalg.norm(z))
        scale = max(scale, abs(alpha[j]) + b + (beta[j - 1] if j > 0 else 0.0))
        if b <= BREAKDOWN * scale:
            # Invariant subspace: T is exactly A restricted to span(W), nothing more to find from v0.
            return alpha[: j + 1].copy(), beta[:j].copy(), basis[: j + 1].T.copy()
        beta[j] = b
        basis[j + 1] = z / b
    return alpha, beta, basis.T


def _probe_symmetry(A: Any, n: int, rng: np.random.Generator) -> None:
    """Raise NotSPDError unless ``A`` is symmetric: exactly for matrices, by a random probe otherwise."""
    if sp.issparse(A):
        check_symmetric(sp.csr_matrix(A, dtype=np.float64))
        return
    if isinstance(A, np.ndarray):
        worst = float(np.max(np.abs(A - A.T)))
        scale = float(np.max(np.abs(A))) or 1.0
        if worst > 1e-10 * scale:
            raise NotSPDError(f"A: expected a symmetric matrix, got |A - A^T| up to {worst:.3g} "
                              f"(largest entry {scale:.3g})")
        return
    # A LinearOperator: x^T A y = y^T A x for random x, y costs two products and catches any
    # non-symmetric operator with probability one.
    x, y = rng.standard_normal(n), rng.standard_normal(n)
    Ax, Ay = _matvec(A, x), _matvec(A, y)
    left, right = float(x @ Ay), float(y @ Ax)
    size = float(np.linalg.norm(x) * np.linalg.norm(Ay) + np.linalg.norm(y) * np.linalg.norm(Ax)) or 1.0
    if abs(left - right) > 1e-10 * size:
        raise NotSPDError(f"A: expected a symmetric operator, got x^T A y = {left:.6g} "
                          f"but y^T A x = {right:.6g}")


def ritz_pairs(A: Any, m: int, rng: np.random.Generator, start_in_range: bool = True,
               reorthogonalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Ritz values and vectors of a symmetric positive (semi-)definite ``A`` from ``m`` Lanczos steps.

    Parameters
    ----------
    A : scipy.sparse matrix, numpy.ndarray or LinearOperator, shape (n, n)
    m : int
        Lanczos steps (capped at ``n``; fewer are taken if the Krylov space becomes invariant).
    rng : numpy.random.Generator
        Draws the start ``g ~ N(0, I)`` (and the symmetry probe of a LinearOperator).
    start_in_range : bool
        Start from ``v0 = A g`` (in ``range(A)``, as the reference does) rather than from ``g``.
    reorthogonalize : bool
        Passed on to :func:`lanczos`.

    Returns
    -------
    values : numpy.ndarray, shape (k,)
        Ritz values in ascending order, those below ``DROP_BELOW`` times the largest dropped.
    vectors : numpy.ndarray, shape (n, k)
        The matching Ritz vectors (orthonormal columns).

    Raises
    ------
    NotSPDError
        ``A`` is not symmetric (checked exactly for matrices, by a random probe for operators), or a
        Ritz value lies below ``-1e-10`` times the largest in magnitude (``A`` is indefinite).
    """
    if not isinstance(rng, np.random.Generator):
        raise ConfigError(f"ritz_pairs: expected a numpy Generator as rng, got {type(rng).__name__}")
    n = _order(A)
    _probe_symmetry(A, n, rng)
    g = rng.standard_normal(n)
    v0 = _matvec(A, g) if start_in_range else g
    if not np.any(v0):
        raise NotSPDError("ritz_pairs: A @ g is zero for a random g, so A is the zero matrix; expected SPD")
    alpha, beta, W = lanczos(A, v0, m, reorthogonalize=reorthogonalize)
    if alpha.size == 1:
        theta, S = alpha.copy(), np.ones((1, 1))
    else:
        theta, S = scipy.linalg.eigh_tridiagonal(alpha, beta)  # ascending
    top = float(np.max(np.abs(theta)))
    if theta[0] < -_INDEFINITE * top:
        raise NotSPDError(f"ritz_pairs: expected a positive (semi-)definite A, got the Ritz value "
                          f"{theta[0]:.6g} (largest magnitude {top:.6g}): A is indefinite")
    keep = theta >= DROP_BELOW * top
    return theta[keep], W @ S[:, keep]


def training_rhs(A: Any, n_rhs: int, rng: np.random.Generator, m: int = 200, low_fraction: float = 0.55,
                 low_weight: float = 9.0, cut: int | None = None,
                 ritz: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """DCDM training right-hand sides: random unit combinations of Ritz vectors biased to low modes.

    Each row is ``b = sum_i c_i q_i / ||.||`` over the Ritz vectors ``q_i`` of :func:`ritz_pairs`
    (ascending Ritz values), with ``c_i ~ low_weight * N(0, 1)`` for the lowest ``cut`` of them and
    ``c_i ~ N(0, 1)`` for the others.

    Parameters
    ----------
    A : scipy.sparse matrix, numpy.ndarray or LinearOperator, shape (n, n)
        Symmetric positive (semi-)definite.
    n_rhs : int
        Number of right-hand sides.
    rng : numpy.random.Generator
        Draws the Lanczos start and the coefficients.
    m : int
        Lanczos steps (the reference uses 10,000 at 64^3; capped at ``n``).
    low_fraction : float
        Fraction of ``m`` counted as "low" when ``cut`` is not given: the reference's
        ``cut = m / 2 + theta`` with ``theta = 500`` at ``m = 10,000`` is ``0.55 m`` (half plus 5%).
    low_weight : float
        Standard deviation of the low-mode coefficients (9 in the reference).
    cut : int, optional
        Number of lowest Ritz vectors that get ``low_weight``; default ``round(low_fraction * m)``
        (``round(low_fraction * k)`` for ``k`` given Ritz vectors), capped at the number kept.
    ritz : (values, vectors), optional
        Precomputed :func:`ritz_pairs` output, to draw several batches from one Lanczos run.

    Returns
    -------
    numpy.ndarray, shape (n_rhs, n)
        float64, each row of unit 2-norm.
    """
    if isinstance(n_rhs, bool) or not isinstance(n_rhs, (int, np.integer)) or n_rhs < 1:
        raise ConfigError(f"training_rhs: expected a positive integer n_rhs, got {n_rhs!r}")
    if not (np.isfinite(low_weight) and low_weight > 0):
        raise ConfigError(f"training_rhs: expected a positive finite low_weight, got {low_weight!r}")
    if not 0.0 <= float(low_fraction) <= 1.0:
        raise ConfigError(f"training_rhs: expected low_fraction in [0, 1], got {low_fraction!r}")
    if ritz is None:
        values, vectors = ritz_pairs(A, m, rng)
    else:
        values, vectors = (np.asarray(r, dtype=np.float64) for r in ritz)
        n = _order(A)
        if vectors.ndim != 2 or vectors.shape[0] != n or values.shape != (vectors.shape[1],):
            raise ShapeError("training_rhs ritz (values, vectors)", f"((k,), ({n}, k))",
                             (values.shape, vectors.shape))
    k = vectors.shape[1]
    if cut is None:  # a fraction of the steps taken, as in the reference (of the vectors given, with ritz)
        steps = min(int(m), _order(A)) if ritz is None else k
        cut = int(round(float(low_fraction) * steps))
    elif isinstance(cut, bool) or not isinstance(cut, (int, np.integer)) or cut < 0:
        raise ConfigError(f"training_rhs: expected a non-negative integer cut, got {cut!r}")
    cut = min(int(cut), k)
    weights = np.ones(k)
    weights[:cut] = float(low_weight)
    coefficients = rng.standard_normal((int(n_rhs), k)) * weights
    b = coefficients @ vectors.T
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    return b
