"""Autograd differential operators against closed forms, nesting, and training through them."""

from __future__ import annotations

import pytest
import torch

from sciml.diff import Derivatives, div, grad, hessian, jacobian, laplacian, partial
from sciml.errors import ConfigError, DTypeError, ShapeError

TOL = dict(rtol=1e-10, atol=1e-10)


def _points(*shape: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (2 * torch.rand(*shape, generator=gen, dtype=torch.float64) - 1).requires_grad_(True)


def _u3(x: torch.Tensor) -> torch.Tensor:
    """u = sin(x) y^2 + z^3."""
    return torch.sin(x[..., 0]) * x[..., 1] ** 2 + x[..., 2] ** 3


def _exact3(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient and Hessian of ``_u3``."""
    x0, x1, x2 = x.detach().unbind(-1)
    g = torch.stack([torch.cos(x0) * x1**2, 2 * torch.sin(x0) * x1, 3 * x2**2], dim=-1)
    zero = torch.zeros_like(x0)
    h = torch.stack(
        [
            torch.stack([-torch.sin(x0) * x1**2, 2 * torch.cos(x0) * x1, zero], -1),
            torch.stack([2 * torch.cos(x0) * x1, 2 * torch.sin(x0), zero], -1),
            torch.stack([zero, zero, 6 * x2], -1),
        ],
        dim=-2,
    )
    return g, h


@pytest.mark.parametrize("shape", [(50, 3), (2, 40, 3)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_scalar_operators_match_closed_forms(shape: tuple[int, ...], keepdim: bool) -> None:
    x = _points(*shape)
    u = _u3(x)
    if keepdim:
        u = u.unsqueeze(-1)
    g_exact, h_exact = _exact3(x)
    g = grad(u, x)
    h = hessian(u, x)
    lap = laplacian(u, x)
    assert g.shape == x.shape and h.shape == (*x.shape, 3) and lap.shape == x.shape[:-1]
    torch.testing.assert_close(g, g_exact, **TOL)
    torch.testing.assert_close(h, h_exact, **TOL)
    torch.testing.assert_close(h, h.transpose(-1, -2), **TOL)
    torch.testing.assert_close(lap, h_exact.diagonal(dim1=-2, dim2=-1).sum(-1), **TOL)
    x0, x1, x2 = x.detach().unbind(-1)
    torch.testing.assert_close(partial(u, x, 0), g_exact[..., 0], **TOL)
    torch.testing.assert_close(partial(u, x, 0, order=2), -torch.sin(x0) * x1**2, **TOL)
    torch.testing.assert_close(partial(u, x, (0, 1)), 2 * torch.cos(x0) * x1, **TOL)
    torch.testing.assert_close(partial(u, x, (1, 0, 1)), 2 * torch.cos(x0), **TOL)
    torch.testing.assert_close(partial(u, x, 2, order=3), torch.full_like(x2, 6.0), **TOL)
    torch.testing.assert_close(partial(u, x, 2, order=4), torch.zeros_like(x2), **TOL)


def test_vector_field_divergence_and_jacobian() -> None:
    x = _points(64, 3, seed=1)
    x0, x1, x2 = x.unbind(-1)
    v = torch.stack([x0 * x1, torch.sin(x1) * x2, torch.exp(x0 * x2)], dim=-1)
    a0, a1, a2 = x.detach().unbind(-1)
    zero = torch.zeros_like(a0)
    jac_exact = torch.stack(
        [
            torch.stack([a1, a0, zero], -1),
            torch.stack([zero, torch.cos(a1) * a2, torch.sin(a1)], -1),
            torch.stack([a2 * torch.exp(a0 * a2), zero, a0 * torch.exp(a0 * a2)], -1),
        ],
        dim=-2,
    )
    torch.testing.assert_close(jacobian(v, x), jac_exact, **TOL)
    torch.testing.assert_close(div(v, x), jac_exact.diagonal(dim1=-2, dim2=-1).sum(-1), **TOL)
    # div(grad u) is the Laplacian.
    u = _u3(x)
    torch.testing.assert_close(div(grad(u, x), x), laplacian(u, x), **TOL)
    # A 2-component output on 3-D points and a scalar as one component.
    assert jacobian(v[..., :2], x).shape == (64, 2, 3)
    torch.testing.assert_close(jacobian(u, x)[:, 0], grad(u, x), **TOL)


def test_operators_nest_biharmonic() -> None:
    x = _points(30, 2, seed=2)
    u = x[:, 0] ** 4 + x[:, 0] ** 2 * x[:, 1] ** 2 + x[:, 1] ** 4
    # Delta u = 12 x^2 + 2 y^2 + 2 x^2 + 12 y^2 = 14 (x^2 + y^2); Delta^2 u = 56.
    lap = laplacian(u, x)
    torch.testing.assert_close(lap, 14 * (x.detach() ** 2).sum(-1), **TOL)
    torch.testing.assert_close(laplacian(lap, x), torch.full_like(lap, 56.0), **TOL)


def test_linear_output_has_zero_second_derivatives() -> None:
    x = _points(10, 2, seed=3)
    u = 2 * x[:, 0] - 3 * x[:, 1]
    torch.testing.assert_close(grad(u, x), torch.tensor([2.0, -3.0], dtype=torch.float64).expand(10, 2))
    assert torch.count_nonzero(hessian(u, x)) == 0 and torch.count_nonzero(laplacian(u, x)) == 0
    # u independent of one coordinate: the derivative along it is zero, not an error.
    torch.testing.assert_close(partial(x[:, 0] ** 2, x, 1), torch.zeros(10, dtype=torch.float64))


def test_derivatives_cache_reuses_gradients() -> None:
    x = _points(20, 2, seed=4)
    d = Derivatives(_u3(torch.cat([x, x[:, :1]], dim=1)), x)
    assert d.grad is d.grad
    u_xy = d.partial(0, 1)
    assert d.partial(1, 0) is not None
    torch.testing.assert_close(d.partial(1, 0), u_xy, rtol=0, atol=0)
    assert set(d._gradients) == {(), (0,)}  # u_xy needed the gradient of u_x only
    d.laplacian()
    assert set(d._gradients) == {(), (0,), (1,)}


class _MLP(torch.nn.Module):
    def __init__(self, d: int, width: int, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(d, width),
            torch.nn.Tanh(),
            torch.nn.Linear(width, width),
            torch.nn.Tanh(),
            torch.nn.Linear(width, 1),
        ).double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def test_mlp_second_derivatives_match_functional_hessian_and_train() -> None:
    model = _MLP(2, 16, seed=5)
    x = _points(12, 2, seed=6)
    u = model(x)
    lap = laplacian(u, x)
    hess = hessian(u, x)
    # Per-point reference from torch.func (functional transforms, not the ones-vector trick).
    ref = torch.vmap(torch.func.jacrev(torch.func.jacrev(lambda p: model(p)[0])))(x.detach())
    torch.testing.assert_close(hess, ref, **TOL)
    torch.testing.assert_close(lap, ref.diagonal(dim1=-2, dim2=-1).sum(-1), **TOL)
    # Gradients of a PDE residual loss reach every parameter.
    loss = (lap + 1.0).pow(2).mean()
    loss.backward()
    for name, p in model.named_parameters():
        if name == "net.4.bias":  # the output bias does not enter the Laplacian
            assert p.grad is None
            continue
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_gradients_through_laplacian_pass_gradcheck() -> None:
    x = _points(5, 2, seed=7)
    gen = torch.Generator().manual_seed(8)
    w1 = torch.randn(2, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    b1 = torch.randn(4, generator=gen, dtype=torch.float64, requires_grad=True)
    w2 = torch.randn(4, 1, generator=gen, dtype=torch.float64, requires_grad=True)

    def residual(w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
        u = torch.tanh(x @ w1 + b1) @ w2
        return laplacian(u, x) + partial(u, x, 0)

    assert torch.autograd.gradcheck(residual, (w1, b1, w2), eps=1e-6, atol=1e-7)


def test_bad_inputs_raise_informative_errors() -> None:
    x = torch.rand(8, 2, dtype=torch.float64)
    with pytest.raises(ConfigError, match="requires_grad_"):
        grad(x.sum(-1), x)
    x.requires_grad_(True)
    u = (x**2).sum(-1)
    with pytest.raises(ShapeError, match=r"\(8,\)"):
        grad(u[:5], x)
    with pytest.raises(ShapeError):
        laplacian(torch.stack([u, u], -1), x)
    with pytest.raises(ShapeError, match="v"):
        div(torch.stack([u, u, u], -1), x)
    with pytest.raises(ShapeError, match=r"\(N, d\) or \(B, N, d\)"):
        grad(u, x.reshape(-1))
    with pytest.raises(ConfigError, match="no_grad"):
        grad(u.detach(), x)
    with pytest.raises(ConfigError, match=r"axis index in \[0, 2\)"):
        partial(u, x, 2)
    with pytest.raises(ConfigError, match="order"):
        partial(u, x, 0, order=0)
    with pytest.raises(ConfigError, match="either"):
        partial(u, x, (0, 1), order=2)
    with pytest.raises(DTypeError):
        grad(u.tolist(), x)
