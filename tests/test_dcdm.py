"""DCDM: the network (shapes, masks, size, registry), the scale-invariant loss over mixed systems, the
conjugate-direction iteration (identity network = CG, exact inverse = one step, breakdowns) and a tiny
training run that beats CG."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
from torch.utils.data import DataLoader

from sciml.errors import CheckpointError, ConfigError, NotSPDError, ShapeError
from sciml.linalg import CG, from_grid, solve, to_grid
from sciml.linalg.dcdm import DCDM, SPAN_BREAKDOWN, DCDMLoss, DCDMTask, dcdm_dataset, save_weights
from sciml.models import build_model, list_models, model_from_spec
from sciml.models.dcdm_net import DCDMNet


# -- small systems -----------------------------------------------------------------------------------
def laplacian(mask: np.ndarray) -> sp.csr_matrix:
    """Cell-centred 5/7-point Laplacian over ``mask``'s True cells (C order): Dirichlet at the domain's
    walls (ghost value 0 on the face: coefficient 2), Neumann at faces shared with solid cells."""
    index = -np.ones(mask.shape, dtype=np.int64)
    index[mask] = np.arange(int(mask.sum()))
    rows, cols, vals = [], [], []
    diag = np.zeros(int(mask.sum()))
    for cell in zip(*np.nonzero(mask)):
        i = index[cell]
        for axis in range(mask.ndim):
            for step in (-1, 1):
                nb = list(cell)
                nb[axis] += step
                if not 0 <= nb[axis] < mask.shape[axis]:
                    diag[i] += 2.0  # Dirichlet wall half a cell away
                elif mask[tuple(nb)]:
                    diag[i] += 1.0
                    rows.append(i)
                    cols.append(index[tuple(nb)])
                    vals.append(-1.0)
    n = len(diag)
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, n)) + sp.diags(diag).tocsr()


def square_system(n: int) -> tuple[sp.csr_matrix, np.ndarray]:
    mask = np.ones((n, n), dtype=bool)
    return laplacian(mask), mask


def obstacle_system(shape: tuple[int, ...], box: tuple[slice, ...]) -> tuple[sp.csr_matrix, np.ndarray]:
    mask = np.ones(shape, dtype=bool)
    mask[box] = False
    return laplacian(mask), mask


def cg_iterates(A: sp.csr_matrix, b: np.ndarray, steps: int) -> list[np.ndarray]:
    """Textbook CG from x0 = 0: the iterates x_1 ... x_steps."""
    x, r = np.zeros_like(b), b.copy()
    p, rr = r.copy(), r @ r
    out = []
    for _ in range(steps):
        Ap = A @ p
        alpha = rr / (p @ Ap)
        x = x + alpha * p
        r = r - alpha * Ap
        rr_new = r @ r
        p = r + rr_new / rr * p
        rr = rr_new
        out.append(x)
    return out


class Recorder:
    """A ``record`` of the solve protocol that also keeps every iterate."""

    def __init__(self, A, b):
        self.A, self.b, self.iterates, self.history = A, b, [], []
        self.residual = b.copy()  # x0 = 0's residual, as the driver leaves it

    def __call__(self, x):
        self.iterates.append(x.copy())
        self.residual = self.b - self.A @ x
        self.history.append(float(np.linalg.norm(self.residual) / np.linalg.norm(self.b)))
        return self.history[-1]


def dcdm_iterates(method: DCDM, A, b, mask=None, steps=10):
    """Run the method-object protocol by hand from x0 = 0 and return its iterates."""
    record = Recorder(A, b)
    method.run(method.setup(A, mask), A, b, np.zeros_like(b), 1e-14, steps, record)
    return record.iterates


# -- the network -----------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(16, 16), (17, 12), (9, 1), (1, 1), (8, 7, 5), (6, 6, 6)])
def test_network_keeps_any_grid_shape_and_zeroes_solid_cells(shape):
    torch.manual_seed(0)
    net = DCDMNet(ndim=len(shape), channels=4, blocks_before=1, blocks_coarse=1, blocks_after=1)
    mask = torch.rand(2, 1, *shape) > 0.3
    out = net(torch.randn(2, 1, *shape) * mask, mask.float())
    assert out.shape == (2, 1, *shape) and out.dtype == torch.float32
    assert torch.all(out[~mask] == 0)
    assert torch.isfinite(out).all()


def test_network_upsampling_puts_each_coarse_cell_on_its_two_fine_cells():
    # With no pairs, a zero stem bias and an identity-like stem, the output's coarse part is
    # fine + upsample(avgpool(fine)); on odd axes the last coarse cell must average one cell only.
    net = DCDMNet(ndim=2, channels=1, mask_channel=False, blocks_before=0, blocks_coarse=0, blocks_after=0)
    with torch.no_grad():
        net.stem.weight.zero_()
        net.stem.weight[0, 0, 1, 1] = 1.0
        net.stem.bias.zero_()
        net.head.weight.fill_(1.0)
        net.head.bias.zero_()
    x = torch.arange(15.0).reshape(1, 1, 5, 3)
    out = net(x)[0, 0].detach()
    fine = x[0, 0].numpy()
    expected = np.empty_like(fine)
    for i in range(5):
        for j in range(3):
            block = fine[2 * (i // 2):2 * (i // 2) + 2, 2 * (j // 2):2 * (j // 2) + 2]
            expected[i, j] = fine[i, j] + block.mean()
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6)


def test_default_2d_network_size_and_registry_round_trip():
    assert "dcdm_net" in list_models()
    torch.manual_seed(1)
    net = build_model("dcdm_net", ndim=2)
    count = sum(p.numel() for p in net.parameters())
    assert count == 32_801  # 3x3 convs, 16 channels: stem(2->16) + 14 x (16->16) + head(16->1)
    assert count * 4 / 1024 < 300  # a few hundred KB at most in float32
    assert net.model_spec == {"name": "dcdm_net", "kwargs": {"ndim": 2}}
    assert sum(p.numel() for p in build_model("dcdm_net", ndim=3, mask_channel=False).parameters()) == 97_457
    again = model_from_spec(net.model_spec)
    again.load_state_dict(net.state_dict())
    b, mask = torch.randn(3, 1, 11, 14), (torch.rand(3, 1, 11, 14) > 0.2).float()
    torch.testing.assert_close(again(b, mask), net(b, mask))


def test_network_rejects_bad_inputs():
    net = DCDMNet(ndim=2, channels=2)
    with pytest.raises(ShapeError):
        net(torch.randn(2, 2, 8, 8))
    with pytest.raises(ShapeError):
        net(torch.randn(2, 1, 8, 8, 8))
    with pytest.raises(ShapeError):
        net(torch.randn(2, 1, 8, 8), torch.ones(2, 1, 8, 7))
    with pytest.raises(ConfigError):
        DCDMNet(ndim=1)
    with pytest.raises(ConfigError):
        DCDMNet(blocks_coarse=-1)


# -- the loss ---------------------------------------------------------------------------------------
def _mixed_systems():
    shape = (9, 8)
    full = np.ones(shape, dtype=bool)
    return [obstacle_system(shape, (slice(2, 5), slice(3, 6))),
            obstacle_system(shape, (slice(5, 8), slice(0, 2))),
            (laplacian(full), full)]


def test_loss_matches_numpy_over_a_batch_of_mixed_systems_and_ignores_the_output_scale():
    systems = _mixed_systems()
    rng = np.random.default_rng(0)
    rhs = [rng.standard_normal((3, A.shape[0])) for A, _ in systems]
    data = dcdm_dataset(systems, rhs)
    gen = torch.Generator().manual_seed(0)
    shuffled = DataLoader(data, batch_size=len(data), shuffle=True, generator=gen)
    batch = next(iter(shuffled))
    assert batch["b"].shape == (9, 1, 9, 8) and batch["system"].dtype == torch.long
    assert len(set(batch["system"].tolist())) == 3
    torch.manual_seed(0)
    net = DCDMNet(ndim=2, channels=4, blocks_before=1, blocks_coarse=1, blocks_after=1)
    loss = DCDMLoss(data)
    q = net(batch["b"], batch["mask"]).detach()
    got = loss(q, batch["b"], batch["system"])
    for i, k in enumerate(batch["system"].tolist()):  # the same loss in float64 numpy, sample by sample
        A, mask = systems[k]
        qi = from_grid(q[i, 0].numpy().astype(np.float64), mask)
        bi = from_grid(batch["b"][i, 0].numpy().astype(np.float64), mask)
        np.testing.assert_allclose(np.linalg.norm(bi), 1.0, rtol=1e-6)
        alpha = (qi @ bi) / (qi @ (A @ qi))
        expected = np.linalg.norm(bi - alpha * (A @ qi)) ** 2 / (bi @ bi)
        np.testing.assert_allclose(float(got[i]), expected, rtol=1e-4)
    torch.testing.assert_close(loss(7.3 * q, batch["b"], batch["system"]), got, rtol=1e-5, atol=1e-7)
    # The exact solution as q leaves nothing of b.
    exact = torch.zeros_like(q)
    for i, k in enumerate(batch["system"].tolist()):
        A, mask = systems[k]
        x = spla.spsolve(A.tocsc(), from_grid(batch["b"][i, 0].numpy().astype(np.float64), mask))
        exact[i, 0] = torch.from_numpy(to_grid(x, mask, np.float32))
    assert float(loss(exact, batch["b"], batch["system"]).max()) < 1e-8


def test_task_loss_terms_backpropagate_and_reject_bad_batches():
    systems = _mixed_systems()[:2]
    data = dcdm_dataset(systems, [np.random.default_rng(k).standard_normal((2, A.shape[0]))
                                  for k, (A, _) in enumerate(systems)])
    net = build_model("dcdm_net", ndim=2, channels=4, blocks_before=1, blocks_coarse=1, blocks_after=1)
    task = DCDMTask(net, data)
    assert task.model_spec == net.model_spec and task.trained_model() is net
    terms = task.loss_terms(next(iter(DataLoader(data, batch_size=4))))
    assert set(terms) == {"dcdm"} and terms["dcdm"].ndim == 0
    terms["dcdm"].backward()
    assert all(p.grad is not None for p in net.parameters())
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the Trainer's bf16: the loss stays float32
        low = task.loss_terms(next(iter(DataLoader(data, batch_size=4))))["dcdm"]
    assert low.dtype == torch.float32
    low.backward()
    with pytest.raises(ConfigError):
        task.loss_terms({"b": torch.zeros(1, 1, 9, 8)})
    with pytest.raises(ShapeError):
        DCDMTask(build_model("dcdm_net", ndim=3, channels=2), data)


def test_dataset_reads_grid_shaped_right_hand_sides_and_checks_them():
    A, mask = obstacle_system((6, 5), (slice(1, 3), slice(1, 3)))
    v = np.random.default_rng(0).standard_normal((2, A.shape[0]))
    grids = np.stack([to_grid(x, mask) for x in v]) + 5.0 * ~mask  # solid cells are not read
    a, b = dcdm_dataset([(A, mask)], [v], normalize=False), dcdm_dataset((A, mask), grids, normalize=False)
    torch.testing.assert_close(a[1]["b"], b[1]["b"])
    assert torch.all(a[0]["b"][0][torch.from_numpy(~mask)] == 0)
    with pytest.raises(ShapeError):
        dcdm_dataset([(A, mask)], [v[:, :-1]])
    with pytest.raises(ConfigError):
        dcdm_dataset([(A, mask)], [np.zeros((1, A.shape[0]))])
    with pytest.raises(ShapeError):
        dcdm_dataset([(A, mask), square_system(4)], [v, np.ones((1, 16))])


# -- the iteration ------------------------------------------------------------------------------------
def test_identity_network_reproduces_cg_iterates():
    A, mask = square_system(12)
    b = np.random.default_rng(3).standard_normal(A.shape[0])
    iterates = dcdm_iterates(DCDM(network=lambda r: r), A, b, steps=10)
    assert len(iterates) == 10
    for x_dcdm, x_cg in zip(iterates, cg_iterates(A, b, 10)):
        assert np.linalg.norm(x_dcdm - x_cg) <= 1e-8 * np.linalg.norm(x_cg)
    # The same through the grid path, with the identity as a torch module on the masked grid.
    net = _GridIdentity()
    grid_iterates = dcdm_iterates(DCDM(net), A, b, mask=mask, steps=3)
    for x_dcdm, x_cg in zip(grid_iterates, cg_iterates(A, b, 3)):  # float32 network: 1e-6
        assert np.linalg.norm(x_dcdm - x_cg) <= 1e-5 * np.linalg.norm(x_cg)


class _GridIdentity(torch.nn.Module):
    ndim = 2

    def forward(self, r: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return r * mask


def test_exact_inverse_network_converges_in_one_iteration():
    A, mask = obstacle_system((10, 9), (slice(3, 6), slice(2, 4)))
    b = np.random.default_rng(4).standard_normal(A.shape[0])
    lu = spla.splu(A.tocsc())
    sol = solve(A, b, method=DCDM(network=lu.solve), mask=mask, rtol=1e-10)
    assert (sol.iterations, sol.reason, sol.method) == (1, "converged", "DCDM")
    assert len(sol.residuals) == 2 and sol.residuals[-1] < 1e-12
    np.testing.assert_allclose(sol.value, lu.solve(b), rtol=1e-10)


def test_indefinite_matrix_raises_not_spd():
    A = (square_system(8)[0] - 6.0 * sp.identity(64)).tocsr()  # symmetric, eigenvalues in (-6, 2)
    b = np.random.default_rng(5).standard_normal(64)
    with pytest.raises(NotSPDError, match="not positive definite"):
        solve(A, b, method=DCDM(network=lambda r: r))
    sol = solve(A, b, method=DCDM(network=lambda r: r), throw=False)
    assert not sol.converged and sol.reason.startswith("not SPD: q^T A q")


def test_a_direction_in_the_span_of_the_previous_ones_is_a_breakdown():
    A, _ = square_system(6)
    b = np.random.default_rng(6).standard_normal(36)
    c = np.random.default_rng(7).standard_normal(36)
    sol = solve(A, b, method=DCDM(network=lambda r: c.copy()), throw=False)
    assert sol.iterations == 1 and sol.reason.startswith(SPAN_BREAKDOWN)
    sol = solve(A, b, method=DCDM(network=lambda r: 0 * r), throw=False)
    assert sol.iterations == 0 and sol.reason.startswith("breakdown: the network returned a zero direction")


def test_method_object_checks_its_inputs():
    A, mask = square_system(5)
    net = DCDMNet(ndim=2, channels=2)
    assert DCDM(net).needs_mask and not DCDM(network=lambda r: r).needs_mask
    assert DCDM(net).default_maxiter(1000) == 10_000  # as CG: the reference's 100 is too few past 64^2
    with pytest.raises(ConfigError, match="mask"):
        solve(A, np.ones(25), method=DCDM(net))
    with pytest.raises(ConfigError):
        DCDM(net).setup(A, None)
    with pytest.raises(ShapeError):
        DCDM(net).setup(A, np.ones((5, 4), bool))
    with pytest.raises(ConfigError):
        DCDM()
    with pytest.raises(ConfigError):
        DCDM(net, network=lambda r: r)
    with pytest.raises(ConfigError):
        DCDM(net, k=-1)
    with pytest.raises(NotSPDError):  # the driver refuses a non-symmetric matrix before any iteration
        solve(sp.csr_matrix(np.triu(np.ones((3, 3)))), np.ones(3), method=DCDM(network=lambda r: r))


def test_pretrained_weights_missing_and_round_trip(tmp_path):
    with pytest.raises(CheckpointError, match="benchmarks/dcdm_train.py"):
        DCDM.pretrained(dim=2, weights_dir=tmp_path)
    torch.manual_seed(2)
    net = build_model("dcdm_net", ndim=2, channels=4, blocks_before=1, blocks_coarse=1, blocks_after=1)
    save_weights(net, tmp_path / "dcdm_2d.pt", {"steps": 0})
    method = DCDM.pretrained(dim=2, weights_dir=tmp_path)
    assert method.model.pretrained_metadata["steps"] == 0
    b, mask = torch.randn(1, 1, 7, 6), torch.ones(1, 1, 7, 6)
    torch.testing.assert_close(method.model(b, mask), net(b, mask))


# -- a tiny training run -------------------------------------------------------------------------------
def test_tiny_training_lowers_the_loss_and_beats_cg():
    """Measured (CPU, seeds as below): the loss falls from 1.02 to 0.0127 in 150 Adam steps, and the
    trained DCDM needs 12 iterations to reach 1e-6 on a fresh right-hand side where CG needs 42."""
    torch.manual_seed(0)
    A, mask = square_system(16)
    rng = np.random.default_rng(0)
    data = dcdm_dataset([(A, mask)], [rng.standard_normal((100, A.shape[0]))])
    net = build_model("dcdm_net", ndim=2)
    task = DCDMTask(net, data)
    full = next(iter(DataLoader(data, batch_size=len(data))))
    with torch.no_grad():
        before = float(task.loss_terms(full)["dcdm"])
    opt = torch.optim.Adam(task.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(150):
        rows = torch.randint(len(data), (10,), generator=gen)
        loss = task.loss_terms({key: value[rows] for key, value in full.items()})["dcdm"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = float(task.loss_terms(full)["dcdm"])
    assert after < 0.1 * before, (before, after)
    b = np.random.default_rng(123).standard_normal(A.shape[0])
    sol = solve(A, b, method=DCDM(net), mask=mask, rtol=1e-6)
    n_cg = solve(A, b, method=CG(), rtol=1e-6).iterations
    assert sol.converged and sol.rel_residual <= 1e-6
    it = sol.iterations
    assert it < n_cg, (it, n_cg)
    print(f"tiny DCDM: loss {before:.3g} -> {after:.3g}; iterations to 1e-6: DCDM {it}, CG {n_cg}")


def test_energy_loss_is_the_relative_a_norm_error_of_the_solution():
    """kind="energy": ||q - x||_A^2 / ||x||_A^2 with x = A^{-1} b stored by dcdm_dataset(with_solutions=True);
    zero for the exact solution, not invariant to scaling q (unlike the one-step loss)."""
    A, mask = square_system(6)
    rng = np.random.default_rng(0)
    data = dcdm_dataset([(A, mask)], [rng.standard_normal((3, A.shape[0]))], with_solutions=True)
    batch = {k: torch.stack([data[i][k] for i in range(3)]) for k in ("b", "x", "mask", "system")}
    x = batch["x"][:, 0][:, mask].double().numpy()
    np.testing.assert_allclose(A @ x.T, batch["b"][:, 0][:, mask].double().numpy().T, atol=1e-5)
    loss = DCDMLoss([(A, mask)], kind="energy")
    exact = loss(batch["x"], batch["b"], batch["system"], batch["x"])
    assert float(exact.abs().max()) < 1e-6
    half = loss(0.5 * batch["x"], batch["b"], batch["system"], batch["x"])
    torch.testing.assert_close(half, torch.full((3,), 0.25), rtol=1e-4, atol=1e-5)
    with pytest.raises(ConfigError, match="solutions x"):
        loss(batch["x"], batch["b"], batch["system"])
    with pytest.raises(ConfigError, match="kind"):
        DCDMLoss([(A, mask)], kind="ritz")
    task = DCDMTask(DCDMNet(ndim=2, channels=2), data, loss="energy")
    assert set(task.loss_terms(batch)) == {"energy"}
