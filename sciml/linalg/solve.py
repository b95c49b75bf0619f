"""One entry point for linear solves, configured by small method objects.

>>> sol = solve(A, b, method=AMGPCG(), rtol=1e-8)          # doctest: +SKIP
>>> prepared = Direct().prepare(A)                           # doctest: +SKIP
>>> sols = [prepared.solve(b) for b in rhs]                  # doctest: +SKIP

:func:`solve` checks the system, sets the method up on ``A`` (timed as ``setup_seconds``), runs it
(timed as ``solve_seconds``) and returns a :class:`~sciml.linalg.solution.Solution` whose
``reason`` says why it stopped. ``throw=True`` turns a failure into an error (``NotSPDError`` for a
matrix or preconditioner shown not to be positive definite, ``DivergenceError`` otherwise);
``throw=False`` returns the Solution with ``converged=False`` and the reason, as in lineax.

Method protocol
---------------
A method is an object with these members (:class:`LinearMethod` provides the defaults and
``prepare``; subclassing it is the easy way, but :func:`solve` needs only the members):

``name: str``
    Shown in ``Solution.method`` and in error messages.
``needs_mask: bool``
    True if ``setup`` needs the boolean grid of the unknown cells (DCDM: its network sees images).
    :func:`solve` then refuses ``mask=None`` with ConfigError. Otherwise the mask, if given, is
    checked and passed on but may be ignored.
``needs_symmetric: bool`` (optional, default True)
    True if ``A`` must be symmetric: :func:`solve` then raises NotSPDError up front for a matrix
    that is not (:func:`~sciml.linalg.solution.check_symmetric`). True for every method here.
``default_maxiter(n: int) -> int`` (optional)
    The iteration limit when the caller gives none; ``10 n`` if the method has no such member
    (the CG family's default; a learned method will want its own, e.g. 100).
``setup(A, mask) -> state``
    Everything that depends on ``A`` only: a factorisation, an AMG hierarchy, a Jacobi diagonal, a
    loaded network. ``A`` is a checked float64 ``scipy.sparse.csr_matrix``; ``mask`` is a checked
    boolean grid with ``A.shape[0]`` True cells, or None. ``state`` is opaque to the driver and is
    reused for every right-hand side. Errors found here (a zero pivot, a non-positive diagonal, a bad
    setting) are raised, whatever ``throw`` says: they are facts about ``A``, known before any iteration.
``run(state, A, b, x0, rtol, maxiter, record) -> (x, iterations, reason)``
    The iteration. ``b`` and ``x0`` are checked float64 vectors (``x0`` must not be modified);
    ``rtol > 0``; ``maxiter >= 0``. ``record(x) -> float`` appends the TRUE relative residual
    ``||b - A x|| / ||b||`` of ``x`` (float64, from ``x`` itself; ``||b - A x||`` when ``b = 0``) to the
    history and returns it. The driver has already recorded ``x0`` (the history's first entry) and
    calls ``run`` only when ``x0``'s residual is above ``rtol``. The contract:

    * call ``record(x)`` after every update of ``x`` (not on ``x0``), so that the history has
      ``iterations + 1`` entries; pass a new array or a copy if ``x`` is later updated in place;
    * stop as soon as a recorded value is ``<= rtol`` (reason ``"converged"``) or after ``maxiter``
      updates (reason ``"maxiter"``);
    * never raise for a numerical outcome: return the last iterate with reason ``"not SPD: <what,
      value, iteration>"`` when a proof of indefiniteness turns up (``p^T A p <= 0``) or
      ``"breakdown: <what, iteration>"`` for anything else (a non-finite value, a stagnation);
    * ``record.residual`` holds ``b - A x`` of the last recorded ``x`` (float64, read-only; on entry,
      ``x0``'s): a method that needs the true residual anyway (DCDM) reads it there instead of paying
      a second matrix-vector product.

    ``iterations`` counts the updates of ``x`` (for :class:`Direct`: the refinement steps after the
    LU solve). The driver re-checks the returned ``x``: a claimed ``"converged"`` whose true residual
    is above ``rtol`` becomes a ``"breakdown: ..."``.

Set-up reuse
------------
``method.prepare(A, mask=None)`` runs the checks and ``setup`` once and returns a :class:`Prepared`
whose ``.solve(b, x0=None, rtol=1e-6, maxiter=None, throw=True)`` solves for any number of
right-hand sides; the first Solution carries the set-up time, the later ones ``setup_seconds=0``
(the "one matrix, many right-hand sides" regime). :func:`solve` is ``prepare`` + one ``solve``.

Grid layout
-----------
With a mask, the unknowns are its True cells numbered in C order. :func:`to_grid` and
:func:`from_grid` convert between that vector and the grid (zeros outside the mask).
"""

from __future__ import annotations

import abc
import time
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ..errors import ConfigError, DivergenceError, NotSPDError, ShapeError
from .krylov import pcg
from .solution import Solution, check_mask, check_symmetric, check_system

__all__ = ["solve", "LinearMethod", "Prepared", "CG", "JacobiPCG", "AMGPCG", "Direct", "to_grid", "from_grid"]


# --------------------------------------------------------------------------------------------
# Grid layout
# --------------------------------------------------------------------------------------------
def to_grid(x: Any, mask: Any, dtype: Any = None) -> np.ndarray:
    """The unknowns ``x`` (last axis, C order over the True cells) placed on the grid ``mask``.

    Parameters
    ----------
    x : array-like ``(..., n)``
        One vector or a batch of them; ``n`` must equal ``mask.sum()``.
    mask : bool array, 2-D or 3-D
        The unknown cells.
    dtype : numpy dtype, optional
        Of the grid (e.g. float32 to feed a network). By default a floating ``x`` keeps its dtype
        (a layout change, not arithmetic) and anything else becomes float64.

    Returns
    -------
    numpy.ndarray ``(..., *mask.shape)``
        Zeros outside the mask.
    """
    x = np.asarray(x)
    if x.ndim == 0:
        raise ShapeError("x", "(..., n) with n the number of True cells of mask", x.shape)
    mask = check_mask(mask, x.shape[-1])
    if dtype is None:
        dtype = x.dtype if x.dtype.kind == "f" else np.float64
    u = np.zeros(x.shape[:-1] + mask.shape, dtype=dtype)
    u[..., mask] = x
    return u


def from_grid(u: Any, mask: Any) -> np.ndarray:
    """The values of the grid ``u`` at the True cells of ``mask``, in C order: ``(..., n)``.

    ``u`` has shape ``(..., *mask.shape)``; values outside the mask are dropped. The inverse of
    :func:`to_grid` (``from_grid(to_grid(x, mask), mask) == x``).
    """
    mask = np.asarray(mask)
    mask = check_mask(mask, int(mask.sum()) if mask.dtype == bool else -1)
    u = np.asarray(u)
    if u.ndim < mask.ndim or u.shape[u.ndim - mask.ndim:] != mask.shape:
        raise ShapeError("u", f"(..., {', '.join(map(str, mask.shape))}) like mask", u.shape)
    return u[..., mask]


# --------------------------------------------------------------------------------------------
# The protocol's defaults and the reusable set-up
# --------------------------------------------------------------------------------------------
class _Recorder:
    """``record(x)``: appends and returns the true relative residual of ``x`` (see the protocol)."""

    def __init__(self, A: sp.csr_matrix, b: np.ndarray) -> None:
        self.A, self.b = A, b
        norm_b = float(np.linalg.norm(b))
        # b = 0: the absolute residual, as relative_residual does (every x != 0 is then measurable).
        self.scale = norm_b if norm_b > 0 else 1.0
        self.history: list[float] = []
        self.residual: np.ndarray | None = None

    def __call__(self, x: np.ndarray) -> float:
        r = self.b - self.A @ x
        rel = float(np.linalg.norm(r)) / self.scale
        self.history.append(rel)
        self.residual = r
        return rel


class LinearMethod(abc.ABC):
    """Base of the method objects: the protocol's defaults and :meth:`prepare`.

    Subclasses set ``name`` (and ``needs_mask`` / ``needs_symmetric`` when they differ), validate
    their settings in ``__init__`` (ConfigError) and implement :meth:`setup` and :meth:`run` as the
    module docstring describes.
    """

    name: ClassVar[str] = "method"
    needs_mask: ClassVar[bool] = False
    needs_symmetric: ClassVar[bool] = True

    def default_maxiter(self, n: int) -> int:
        """``10 n``: CG converges in at most ``n`` steps in exact arithmetic; 10x leaves room for rounding."""
        return 10 * n

    @abc.abstractmethod
    def setup(self, A: sp.csr_matrix, mask: np.ndarray | None) -> Any:
        """Everything that depends on ``A`` only; the returned state is reused for every ``b``."""

    @abc.abstractmethod
    def run(self, state: Any, A: sp.csr_matrix, b: np.ndarray, x0: np.ndarray, rtol: float,
            maxiter: int, record: Any) -> tuple[np.ndarray, int, str]:
        """The iteration: ``(x, iterations, reason)``, recording the true residual as it goes."""

    def prepare(self, A: Any, mask: Any = None) -> Prepared:
        """Check ``A`` (and ``mask``) and set up once for many right-hand sides."""
        return Prepared(self, A, mask)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Prepared:
    """A method set up on one matrix, solving for any number of right-hand sides.

    Attributes
    ----------
    method : the method object
    A : scipy.sparse.csr_matrix float64
    mask : numpy.ndarray of bool, or None
    state : whatever ``method.setup`` returned
    setup_seconds : float
        Wall time of ``method.setup`` alone (the checks of ``A`` before it are not counted).
    """

    def __init__(self, method: Any, A: Any, mask: Any = None) -> None:
        for member in ("name", "needs_mask", "setup", "run"):
            if not hasattr(method, member):
                raise ConfigError(f"method: expected an object with the solve protocol (name, needs_mask, "
                                  f"setup, run; see sciml.linalg.solve), got {type(method).__name__} "
                                  f"without {member!r}")
        self.method = method
        self.A = _check_matrix(A)
        n = self.A.shape[0]
        if getattr(method, "needs_symmetric", True):
            check_symmetric(self.A)
        if mask is None and method.needs_mask:
            raise ConfigError(f"mask: {method.name} needs the boolean grid of the unknown cells, got None")
        self.mask = None if mask is None else check_mask(mask, n)
        start = time.perf_counter()
        self.state = method.setup(self.A, self.mask)
        self.setup_seconds = time.perf_counter() - start
        self._setup_reported = False

    @property
    def n(self) -> int:
        """The number of unknowns."""
        return self.A.shape[0]

    def solve(self, b: Any, x0: Any = None, rtol: float = 1e-6, maxiter: int | None = None,
              throw: bool = True) -> Solution:
        """Solve ``A x = b``; see :func:`solve` for the arguments and the errors."""
        _, b, x0 = check_system(self.A, b, x0)
        rtol = _check_rtol(rtol)
        if maxiter is None:
            default = getattr(self.method, "default_maxiter", None)
            maxiter = _check_maxiter(default(self.n) if default is not None else 10 * self.n)
        else:
            maxiter = _check_maxiter(maxiter)
        record = _Recorder(self.A, b)
        start = time.perf_counter()
        # The driver records x0 so that every history starts there whatever the method does, and a
        # method never has to handle an x0 that is already good enough.
        if record(x0) <= rtol:
            x, iterations, reason = x0, 0, "converged"
        else:
            x, iterations, reason = self.method.run(self.state, self.A, b, x0, rtol, maxiter, record)
        solve_seconds = time.perf_counter() - start
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (self.n,):
            raise ShapeError(f"{self.method.name}.run's x", (self.n,), x.shape)
        # Trust nothing: the Solution's last residual is the returned x's, recomputed outside the timing.
        final = _Recorder(self.A, b)(x)
        if not record.history or record.history[-1] != final:
            record.history.append(final)
        if reason == "converged" and not final <= rtol:
            reason = (f"breakdown: {self.method.name} reported convergence but the true relative residual "
                      f"is {final:.3g} > rtol {rtol:.3g}")
        setup_seconds = 0.0 if self._setup_reported else self.setup_seconds
        self._setup_reported = True
        sol = Solution(value=x, converged=reason == "converged", iterations=int(iterations),
                       residuals=record.history, setup_seconds=setup_seconds, solve_seconds=solve_seconds,
                       reason=reason, method=self.method.name)
        if throw and not sol.converged:
            _raise(sol, rtol)
        return sol

    def __repr__(self) -> str:
        return f"Prepared({self.method!r}, n={self.n}, setup={self.setup_seconds:.3g} s)"


def _raise(sol: Solution, rtol: float) -> None:
    where = (f"{sol.method}: stopped after {sol.iterations} iterations at true relative residual "
             f"{sol.rel_residual:.3g} (rtol {rtol:.3g})")
    hint = "; pass throw=False to get the Solution with the last iterate"
    if sol.reason.startswith("not SPD"):
        error: Exception = NotSPDError(f"{where}: {sol.reason}{hint}")
    elif sol.reason == "maxiter":
        error = DivergenceError(f"{where}: not converged within maxiter{hint}")
    else:
        error = DivergenceError(f"{where}: {sol.reason}{hint}")
    error.solution = sol  # type: ignore[attr-defined]  # the caller may still want the iterate
    raise error


def _check_matrix(A: Any) -> sp.csr_matrix:
    """``A`` as a checked float64 CSR matrix (square, finite), through the same check as ``(A, b)``."""
    shape = A.shape if sp.issparse(A) else np.shape(A)
    n = int(shape[0]) if len(shape) >= 1 else 0
    return check_system(A, np.zeros(n))[0]


def _check_rtol(rtol: Any) -> float:
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float, np.floating, np.integer)):
        raise ConfigError(f"rtol: expected a positive number, got {rtol!r}")
    rtol = float(rtol)
    if not (np.isfinite(rtol) and rtol > 0):
        raise ConfigError(f"rtol: expected a finite number > 0, got {rtol}")
    return rtol


def _check_maxiter(maxiter: Any) -> int:
    if isinstance(maxiter, bool) or not isinstance(maxiter, (int, np.integer)) or maxiter < 0:
        raise ConfigError(f"maxiter: expected an integer >= 0 (or None for the method's default), got {maxiter!r}")
    return int(maxiter)


# --------------------------------------------------------------------------------------------
# The methods
# --------------------------------------------------------------------------------------------
class CG(LinearMethod):
    """Conjugate gradients, unpreconditioned. No set-up; default ``maxiter`` ``10 n``."""

    name = "CG"

    def setup(self, A: sp.csr_matrix, mask: np.ndarray | None) -> None:
        return None

    def run(self, state: Any, A: sp.csr_matrix, b: np.ndarray, x0: np.ndarray, rtol: float,
            maxiter: int, record: Any) -> tuple[np.ndarray, int, str]:
        return pcg(A, b, x0, rtol, maxiter, record)


class JacobiPCG(LinearMethod):
    """CG preconditioned by the inverse diagonal of ``A``.

    Set-up takes the diagonal and raises NotSPDError if an entry is not positive (an SPD matrix has
    a positive diagonal, so this is a proof). Default ``maxiter`` ``10 n``. On a constant-coefficient
    Laplacian it changes nothing but the cost; it pays off where the coefficient varies.
    """

    name = "JacobiPCG"

    def setup(self, A: sp.csr_matrix, mask: np.ndarray | None) -> np.ndarray:
        d = A.diagonal()
        bad = np.flatnonzero(~(d > 0))
        if bad.size:
            i = int(bad[0])
            raise NotSPDError(f"A: expected a positive diagonal (an SPD matrix has one), got A[{i}, {i}] = "
                              f"{d[i]:.6g} ({bad.size} non-positive diagonal entries)")
        return 1.0 / d

    def run(self, state: np.ndarray, A: sp.csr_matrix, b: np.ndarray, x0: np.ndarray, rtol: float,
            maxiter: int, record: Any) -> tuple[np.ndarray, int, str]:
        inv_d = state
        return pcg(A, b, x0, rtol, maxiter, record, precond=lambda r: inv_d * r)


# Keyword arguments of pyamg.smoothed_aggregation_solver (pyamg 5) that make sense for an SPD matrix;
# checked at construction so that a typo fails before the (possibly long) set-up.
_AMG_KEYS = frozenset({"B", "BH", "symmetry", "strength", "aggregate", "smooth", "presmoother", "postsmoother",
                       "improve_candidates", "max_levels", "max_coarse", "diagonal_dominance", "keep",
                       "coarse_solver"})
_AMG_CYCLES = ("V", "W", "F", "AMLI")


class AMGPCG(LinearMethod):
    """CG preconditioned by one cycle of pyamg's smoothed-aggregation multigrid.

    Parameters
    ----------
    cycle : {"V", "W", "F", "AMLI"}
        The multigrid cycle applied as the preconditioner (pyamg's default smoothers are symmetric
        Gauss-Seidel sweeps, so the V-cycle is an SPD preconditioner, as CG requires).
    **pyamg_kwargs
        Passed to :func:`pyamg.smoothed_aggregation_solver` (``strength``, ``smooth``,
        ``presmoother``, ``max_levels``, ``max_coarse``, ...). ``symmetry`` may be ``"hermitian"``
        (default) or ``"symmetric"``: CG needs a symmetric matrix.

    Notes
    -----
    The hierarchy is built in ``setup`` (timed as ``setup_seconds``). pyamg is imported by the
    constructor and ``setup``, never by ``import sciml.linalg``. Default ``maxiter`` ``10 n``.
    """

    name = "AMGPCG"

    def __init__(self, cycle: str = "V", **pyamg_kwargs: Any) -> None:
        if cycle not in _AMG_CYCLES:
            raise ConfigError(f"cycle: expected one of {list(_AMG_CYCLES)}, got {cycle!r}")
        unknown = sorted(set(pyamg_kwargs) - _AMG_KEYS)
        if unknown:
            raise ConfigError(f"AMGPCG: unknown pyamg settings {unknown}; expected some of {sorted(_AMG_KEYS)}")
        for key in ("max_levels", "max_coarse"):
            value = pyamg_kwargs.get(key, 1)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"{key}: expected an integer >= 1, got {value!r}")
        if pyamg_kwargs.get("symmetry", "hermitian") not in ("hermitian", "symmetric"):
            raise ConfigError(f"symmetry: expected 'hermitian' or 'symmetric' (CG needs a symmetric A), "
                              f"got {pyamg_kwargs['symmetry']!r}")
        self.cycle = cycle
        self.pyamg_kwargs = dict(pyamg_kwargs)
        # Imported here too (not only in setup) so that a missing pyamg fails at construction and the
        # one-off import (~0.2 s) is not billed to the first setup_seconds.
        _import_pyamg()

    def setup(self, A: sp.csr_matrix, mask: np.ndarray | None) -> Any:
        pyamg = _import_pyamg()
        try:
            hierarchy = pyamg.smoothed_aggregation_solver(A, **self.pyamg_kwargs)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"AMGPCG: pyamg refused the settings {self.pyamg_kwargs}: {exc}") from exc
        return hierarchy.aspreconditioner(cycle=self.cycle)

    def run(self, state: Any, A: sp.csr_matrix, b: np.ndarray, x0: np.ndarray, rtol: float,
            maxiter: int, record: Any) -> tuple[np.ndarray, int, str]:
        M = state
        return pcg(A, b, x0, rtol, maxiter, record, precond=lambda r: np.asarray(M @ r, dtype=np.float64))

    def __repr__(self) -> str:
        args = [f"cycle={self.cycle!r}", *(f"{k}={v!r}" for k, v in self.pyamg_kwargs.items())]
        return f"AMGPCG({', '.join(args)})"


def _import_pyamg() -> Any:
    """pyamg, or an ImportError that says how to get it (it is not imported with sciml)."""
    try:
        import pyamg
    except ImportError as exc:
        raise ImportError("AMGPCG needs pyamg (a dependency of sciml): pip install pyamg") from exc
    return pyamg


_ORDERINGS = ("MMD_AT_PLUS_A", "COLAMD", "MMD_ATA", "NATURAL")


class Direct(LinearMethod):
    """Sparse LU (SuperLU, :func:`scipy.sparse.linalg.splu`), then iterative refinement if needed.

    Parameters
    ----------
    ordering : {"MMD_AT_PLUS_A", "COLAMD", "MMD_ATA", "NATURAL"}
        SuperLU's column ordering; minimum degree on ``A + A^T`` suits symmetric matrices.

    Notes
    -----
    The factorisation is the set-up (a singular matrix raises NotSPDError there). After ``x0``'s
    residual (recorded by the driver) a solve records the LU solution's; while the residual is above ``rtol`` it refines
    (``x += LU^{-1} (b - A x)``) at most ``maxiter`` times (default 3), and ``iterations`` counts
    those refinement steps (usually 0). LU with pivoting does not check definiteness: a symmetric
    indefinite nonsingular matrix is solved, not refused.
    """

    name = "Direct"

    def __init__(self, ordering: str = "MMD_AT_PLUS_A") -> None:
        if ordering not in _ORDERINGS:
            raise ConfigError(f"ordering: expected one of {list(_ORDERINGS)}, got {ordering!r}")
        self.ordering = ordering

    def default_maxiter(self, n: int) -> int:
        """3 refinement steps: each gains about what the factorisation's rounding lost, so more rarely helps."""
        return 3

    def setup(self, A: sp.csr_matrix, mask: np.ndarray | None) -> Any:
        from scipy.sparse.linalg import splu

        try:
            return splu(A.tocsc(), permc_spec=self.ordering)
        except RuntimeError as exc:  # SuperLU: "Factor is exactly singular"
            raise NotSPDError(f"A: expected a nonsingular matrix, got a singular LU factor ({exc})") from exc

    def run(self, state: Any, A: sp.csr_matrix, b: np.ndarray, x0: np.ndarray, rtol: float,
            maxiter: int, record: Any) -> tuple[np.ndarray, int, str]:
        lu = state
        x = lu.solve(b)
        rel = record(x)
        steps = 0
        while np.isfinite(rel) and rel > rtol and steps < maxiter:
            x = x + lu.solve(record.residual)
            rel = record(x)
            steps += 1
        if not np.isfinite(rel):
            return x, steps, "breakdown: non-finite solution from the LU factor (A is numerically singular)"
        return x, steps, "converged" if rel <= rtol else "maxiter"

    def __repr__(self) -> str:
        return f"Direct(ordering={self.ordering!r})"


# --------------------------------------------------------------------------------------------
# The entry point
# --------------------------------------------------------------------------------------------
def solve(
    A: Any,
    b: Any,
    method: Any = None,
    rtol: float = 1e-6,
    maxiter: int | None = None,
    mask: Any = None,
    x0: Any = None,
    throw: bool = True,
) -> Solution:
    """Solve ``A x = b`` for a symmetric positive definite sparse ``A``.

    Parameters
    ----------
    A : scipy sparse matrix or 2-D array ``(n, n)``
        Converted to float64 CSR; must be finite, square and (for every method here) symmetric.
    b : array-like ``(n,)``
        Finite right-hand side.
    method : method object, optional
        :class:`CG` (default), :class:`JacobiPCG`, :class:`AMGPCG`, :class:`Direct`, or any object
        following the protocol of this module (DCDM in :mod:`sciml.linalg.dcdm`).
    rtol : float
        Stop once the true ``||b - A x|| / ||b|| <= rtol``. Relative to ``||b||``, so scaling ``A``
        and ``b`` by a positive factor (with or without ``h^2``) changes nothing.
    maxiter : int, optional
        Iteration limit; default ``method.default_maxiter(n)`` (``10 n`` for the CG family and for a
        method without ``default_maxiter``, 3 refinement steps for :class:`Direct`).
    mask : bool array, optional
        The grid of the unknown cells (``n`` True cells, unknowns in C order). Checked when given;
        needed by methods with ``needs_mask`` (DCDM), ignored by the classical ones.
    x0 : array-like ``(n,)``, optional
        First iterate; zeros by default.
    throw : bool
        On failure, raise (True) or return the Solution with ``converged=False`` and the reason.

    Returns
    -------
    Solution
        Value, convergence flag, iterations, true-residual history (from ``x0``'s), set-up and solve
        seconds, reason.

    Raises
    ------
    ShapeError, NonFiniteError
        ``A`` not square, ``b``/``x0``/``mask`` of the wrong shape, NaN or Inf in the inputs.
    ConfigError
        Bad ``rtol``, ``maxiter``, ``mask`` or method settings.
    NotSPDError
        ``A`` not symmetric (always, checked first); with ``throw=True``, a breakdown proving ``A``
        (or the preconditioner) not positive definite (reason ``"not SPD: ..."``).
    DivergenceError
        With ``throw=True``: ``maxiter`` reached or another breakdown; the message gives the residual
        reached and the iterations.
    """
    method = CG() if method is None else method
    # Check the cheap arguments before the (possibly long) set-up, so a wrong b fails at once.
    A, b, x0 = check_system(A, b, x0)
    rtol = _check_rtol(rtol)
    if maxiter is not None:
        _check_maxiter(maxiter)
    return Prepared(method, A, mask).solve(b, x0=x0, rtol=rtol, maxiter=maxiter, throw=throw)
