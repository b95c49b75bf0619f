"""sciml.linalg.solve: one entry point, method objects, true-residual histories, lineax-style failures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

from sciml.errors import ConfigError, DivergenceError, NonFiniteError, NotSPDError, ShapeError
from sciml.linalg import AMGPCG, CG, Direct, JacobiPCG, LinearMethod, Solution, from_grid, solve, to_grid
from sciml.linalg.solution import relative_residual

REPO = Path(__file__).resolve().parents[1]
METHODS = [CG, JacobiPCG, AMGPCG, Direct]
ITERATIVE = [CG, JacobiPCG, AMGPCG]


def laplacian(n: int, h2: bool = True) -> sp.csr_matrix:
    """The 5-point Dirichlet ``-Delta_h`` on the n x n interior nodes of the unit square."""
    T = sp.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1])
    eye = sp.identity(n)
    A = sp.kron(eye, T) + sp.kron(T, eye)
    return (A * (n + 1) ** 2 if h2 else A).tocsr()


def rhs(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n)


@pytest.fixture(scope="module")
def lap24():
    return laplacian(24)


# ----------------------------------------------------------------------------------- accuracy
@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("scaled", [False, True], ids=["laplacian", "diag-scaled"])
def test_every_method_solves_and_agrees_with_spsolve(method, scaled, lap24):
    A = lap24
    if scaled:  # D A D with a random positive D: still SPD, far worse conditioned, unequal diagonal
        d = sp.diags(np.exp(np.random.default_rng(1).uniform(-1.5, 1.5, A.shape[0])))
        A = (d @ A @ d).tocsr()
    b = rhs(A.shape[0])
    sol = solve(A, b, method=method(), rtol=1e-8)
    assert isinstance(sol, Solution) and sol.converged and sol.reason == "converged"
    assert sol.method == method.__name__ and sol.value.dtype == np.float64
    assert relative_residual(A, sol.value, b) <= 1e-8
    exact = spsolve(A.tocsc(), b)
    assert np.linalg.norm(sol.value - exact) <= 1e-4 * np.linalg.norm(exact)
    assert sol.setup_seconds >= 0 and sol.solve_seconds > 0


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.__name__)
def test_history_starts_at_x0_is_per_iteration_and_ends_below_rtol(method, lap24):
    b = rhs(lap24.shape[0])
    x0 = rhs(lap24.shape[0], seed=5)
    sol = solve(lap24, b, method=method(), rtol=1e-8, x0=x0)
    assert sol.residuals[0] == pytest.approx(relative_residual(lap24, x0, b), rel=1e-12)
    assert sol.residuals[-1] <= 1e-8 and sol.residuals[-1] == relative_residual(lap24, sol.value, b)
    # Krylov methods record x0 and every update; Direct records x0, the LU solution and each refinement.
    extra = 2 if method is Direct else 1
    assert len(sol.residuals) == sol.iterations + extra


def test_default_method_is_cg_and_trivial_systems_take_no_iteration(lap24):
    n = lap24.shape[0]
    assert solve(lap24, rhs(n)).method == "CG"
    zero = solve(lap24, np.zeros(n))  # b = 0: x0 = 0 is exact
    assert zero.converged and zero.iterations == 0 and not zero.value.any()
    exact = spsolve(lap24.tocsc(), rhs(n))
    again = solve(lap24, lap24 @ exact, x0=exact)
    assert again.converged and again.iterations == 0 and again.residuals == [again.residuals[0]]


# --------------------------------------------------------------------------- iteration counts
def test_cg_iterations_grow_linearly_with_grid_size():
    its = {n: solve(laplacian(n), rhs(n * n), method=CG(), rtol=1e-8).iterations for n in (32, 64)}
    assert 1.5 <= its[64] / its[32] <= 2.6, its


def test_amg_needs_far_fewer_iterations_than_cg():
    A, b = laplacian(64), rhs(64 * 64)
    cg = solve(A, b, method=CG(), rtol=1e-8)
    amg = solve(A, b, method=AMGPCG(), rtol=1e-8)
    assert amg.iterations * 8 <= cg.iterations, (amg.iterations, cg.iterations)
    assert amg.iterations <= 20


@pytest.mark.parametrize("method", ITERATIVE, ids=lambda m: m.__name__)
def test_scaling_a_and_b_changes_nothing(method):
    A, b = laplacian(32, h2=False), rhs(32 * 32)
    base = solve(A, b, method=method(), rtol=1e-8)
    for factor in (1e-4, 1e4, float((32 + 1) ** 2)):  # the last one: with h^2 against without
        scaled = solve(A * factor, b * factor, method=method(), rtol=1e-8)
        assert scaled.iterations == base.iterations
        np.testing.assert_allclose(scaled.value, base.value, rtol=1e-6, atol=1e-9 * np.abs(base.value).max())


# ------------------------------------------------------------------------------------ failures
@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.__name__)
def test_non_symmetric_matrix_is_refused_up_front(method, lap24):
    A = lap24 + sp.diags(np.ones(lap24.shape[0] - 1), 1)
    for throw in (True, False):  # not a numerical outcome: raised whatever throw says
        with pytest.raises(NotSPDError, match="symmetric"):
            solve(A, rhs(A.shape[0]), method=method(), throw=throw)


def test_indefinite_matrix_breaks_cg_down(lap24):
    n = lap24.shape[0]
    A = (lap24 - 1.2 * lap24.diagonal().mean() * sp.identity(n)).tocsr()  # symmetric, mostly negative
    b = rhs(n)
    with pytest.raises(NotSPDError, match=r"p\^T A p = .* <= 0 at iteration 1"):
        solve(A, b, method=CG())
    sol = solve(A, b, method=CG(), throw=False)
    assert not sol.converged and sol.reason.startswith("not SPD: p^T A p")
    assert sol.iterations == 0 and len(sol.residuals) == 1
    # Jacobi's set-up already sees it: an SPD matrix has a positive diagonal.
    with pytest.raises(NotSPDError, match=r"positive diagonal \(an SPD matrix has one\), got A\[0, 0\]"):
        solve(A, b, method=JacobiPCG(), throw=False)


def test_indefinite_breakdown_later_names_its_iteration():
    A = sp.diags([1.0, 2.0, 3.0, -0.5]).tocsr()
    sol = solve(A, np.ones(4), method=CG(), throw=False)
    assert sol.reason.startswith("not SPD") and "at iteration" in sol.reason
    with pytest.raises(NotSPDError, match="iteration"):
        solve(A, np.ones(4), method=CG())


def test_singular_matrix_is_refused_by_direct():
    A = sp.csr_matrix(np.array([[1.0, 1.0], [1.0, 1.0]]))
    with pytest.raises(NotSPDError, match="singular"):
        solve(A, np.ones(2), method=Direct())


@pytest.mark.parametrize("method", ITERATIVE, ids=lambda m: m.__name__)
def test_maxiter_raises_or_returns_the_last_iterate(method, lap24):
    b = rhs(lap24.shape[0])
    with pytest.raises(DivergenceError, match=r"after 2 iterations at true relative residual .*maxiter"):
        solve(lap24, b, method=method(), rtol=1e-14, maxiter=2)
    with pytest.raises(DivergenceError) as info:
        solve(lap24, b, method=method(), rtol=1e-14, maxiter=2)
    assert info.value.solution.reason == "maxiter"  # the last iterate travels with the error
    sol = solve(lap24, b, method=method(), rtol=1e-14, maxiter=2, throw=False)
    assert not sol.converged and sol.reason == "maxiter" and sol.iterations == 2
    assert len(sol.residuals) == 3 and sol.residuals[-1] < sol.residuals[0]


def test_default_maxiter_is_ten_n():
    assert CG().default_maxiter(7) == JacobiPCG().default_maxiter(7) == AMGPCG().default_maxiter(7) == 70
    assert Direct().default_maxiter(7) == 3


def test_bad_inputs_name_expected_and_got(lap24):
    n = lap24.shape[0]
    b = rhs(n)
    with pytest.raises(NonFiniteError, match="b: expected finite"):
        solve(lap24, np.where(np.arange(n) == 3, np.nan, b))
    with pytest.raises(ShapeError, match=rf"b: expected shape \({n},\), got \({n + 1},\)"):
        solve(lap24, np.ones(n + 1))
    with pytest.raises(ShapeError, match=r"x0: expected shape"):
        solve(lap24, b, x0=np.zeros(3))
    with pytest.raises(ShapeError, match=r"A: expected shape a non-empty square matrix, got \(3, 4\)"):
        solve(np.ones((3, 4)), np.ones(3))
    with pytest.raises(ShapeError, match=rf"mask: expected shape a grid with {n} True cells.*got 9 True cells"):
        solve(lap24, b, mask=np.ones((3, 3), dtype=bool))
    with pytest.raises(ConfigError, match="boolean grid"):
        solve(lap24, b, mask=np.ones((24, 24)))
    for bad in (0, -1e-3, float("nan"), "1e-6"):
        with pytest.raises(ConfigError, match="rtol"):
            solve(lap24, b, rtol=bad)
    for bad in (-1, 2.5, True):
        with pytest.raises(ConfigError, match="maxiter"):
            solve(lap24, b, maxiter=bad)
    with pytest.raises(ConfigError, match="solve protocol"):
        solve(lap24, b, method="cg")


def test_a_good_mask_is_accepted_by_classical_methods(lap24):
    sol = solve(lap24, rhs(lap24.shape[0]), method=JacobiPCG(), mask=np.ones((24, 24), dtype=bool))
    assert sol.converged


def test_method_constructors_reject_bad_settings():
    with pytest.raises(ConfigError, match="cycle"):
        AMGPCG(cycle="X")
    with pytest.raises(ConfigError, match="unknown pyamg settings"):
        AMGPCG(max_level=3)
    with pytest.raises(ConfigError, match="max_coarse: expected an integer >= 1, got 0"):
        AMGPCG(max_coarse=0)
    with pytest.raises(ConfigError, match="symmetry"):
        AMGPCG(symmetry="nonsymmetric")
    with pytest.raises(ConfigError, match="ordering"):
        Direct(ordering="AMD")
    with pytest.raises(TypeError):
        CG(1e-6)
    with pytest.raises(ConfigError, match="pyamg refused"):  # a value only pyamg can judge
        solve(laplacian(8), np.ones(64), method=AMGPCG(strength="no-such-strength"))
    assert repr(AMGPCG(max_coarse=4)) == "AMGPCG(cycle='V', max_coarse=4)"


# --------------------------------------------------------------------------------- set-up reuse
class CountingDirect(Direct):
    setups = 0

    def setup(self, A, mask):
        type(self).setups += 1
        return super().setup(A, mask)


@pytest.mark.parametrize("method", [CountingDirect, AMGPCG], ids=["Direct", "AMGPCG"])
def test_prepare_reuses_the_setup_across_right_hand_sides(method, lap24):
    CountingDirect.setups = 0
    prepared = method().prepare(lap24)
    sols = [prepared.solve(rhs(lap24.shape[0], seed=s), rtol=1e-10) for s in range(3)]
    assert all(s.converged for s in sols)
    assert sols[0].setup_seconds > 0 and sols[1].setup_seconds == sols[2].setup_seconds == 0.0
    assert sols[0].setup_seconds == prepared.setup_seconds
    if method is CountingDirect:
        assert CountingDirect.setups == 1
    for s, seed in zip(sols, range(3)):
        assert relative_residual(lap24, s.value, rhs(lap24.shape[0], seed=seed)) <= 1e-10


# ------------------------------------------------------------------------------ the protocol
class Richardson(LinearMethod):
    """A protocol follower outside the module: damped Jacobi sweeps, reading record.residual."""

    name = "Richardson"
    needs_mask = True

    def __init__(self, lie: bool = False) -> None:
        self.lie = lie

    def setup(self, A, mask):
        self.mask_seen = mask
        return 0.8 / A.diagonal()

    def run(self, state, A, b, x0, rtol, maxiter, record):
        x = x0.copy()
        rel = np.inf  # the driver recorded x0 (above rtol, or run would not be called)
        for k in range(1, maxiter + 1):
            if rel <= rtol or self.lie:
                return x, k - 1, "converged"
            x = x + state * record.residual  # the true residual, without a second matvec
            rel = record(x)
        return x, maxiter, "converged" if rel <= rtol else "maxiter"


def test_a_method_following_the_protocol_runs_through_solve():
    A, mask = laplacian(6), np.ones((6, 6), dtype=bool)
    mask_method = Richardson()
    with pytest.raises(ConfigError, match="Richardson needs the boolean grid"):
        solve(A, np.ones(36), method=mask_method)
    sol = solve(A, np.ones(36), method=mask_method, mask=mask, rtol=1e-6)
    assert sol.converged and sol.method == "Richardson" and mask_method.mask_seen is not None
    assert len(sol.residuals) == sol.iterations + 1 and sol.residuals[-1] <= 1e-6
    # A false claim of convergence is caught by the driver's own residual check.
    lied = solve(A, np.ones(36), method=Richardson(lie=True), mask=mask, throw=False)
    assert not lied.converged and lied.reason.startswith("breakdown: Richardson reported convergence")
    with pytest.raises(DivergenceError, match="reported convergence"):
        solve(A, np.ones(36), method=Richardson(lie=True), mask=mask)


def test_a_plain_object_with_the_required_members_is_enough():
    class Bare:  # no LinearMethod, no default_maxiter, no needs_symmetric
        name, needs_mask = "bare", False

        def setup(self, A, mask):
            return None

        def run(self, state, A, b, x0, rtol, maxiter, record):
            self.maxiter = maxiter
            x = spsolve(A.tocsc(), b)
            record(x)
            return x, 1, "converged"

    bare = Bare()
    sol = solve(laplacian(5), np.ones(25), method=bare)
    assert sol.converged and bare.maxiter == 250 and len(sol.residuals) == 2


# ----------------------------------------------------------------------------------- grid layout
def test_to_grid_from_grid_round_trip():
    rng = np.random.default_rng(3)
    for shape in ((5, 7), (3, 4, 5)):
        mask = rng.uniform(size=shape) < 0.6
        x = rng.standard_normal(int(mask.sum()))
        u = to_grid(x, mask)
        assert u.shape == shape and u.dtype == np.float64 and not u[~mask].any()
        np.testing.assert_array_equal(from_grid(u, mask), x)
        np.testing.assert_array_equal(u[mask], x)  # C order over the True cells
        batch = rng.standard_normal((2, int(mask.sum())))
        np.testing.assert_array_equal(from_grid(to_grid(batch, mask), mask), batch)
    mask = np.ones((2, 3), dtype=bool)
    assert to_grid(np.arange(6), mask).dtype == np.float64
    assert to_grid(np.arange(6.0), mask, np.float32).dtype == np.float32
    with pytest.raises(ShapeError, match="mask"):
        to_grid(np.ones(5), mask)
    with pytest.raises(ShapeError, match=r"u: expected shape \(\.\.\., 2, 3\)"):
        from_grid(np.ones((3, 2)), mask)
    with pytest.raises(ConfigError, match="boolean grid"):
        from_grid(np.ones((2, 3)), np.ones((2, 3)))


def test_importing_sciml_linalg_does_not_import_pyamg():
    code = "import sys, sciml.linalg; print('pyamg' in sys.modules, sciml.linalg.solve.__name__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         env={"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "solve"]
