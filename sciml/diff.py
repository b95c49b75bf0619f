"""Autograd differential operators for physics-informed losses.

All operators act on point sets ``x`` of shape ``(N, d)`` or ``(B, N, d)`` that require grad, and on
outputs computed *pointwise* from them: ``u[n]`` may depend on ``x[n]`` only. That is what lets one
backward pass with a vector of ones return every point's derivative at once; networks mixing points
(batch normalisation, attention across points) break this assumption and need per-point Jacobians.

Every derivative is taken with ``create_graph=True``, so results can be differentiated again
(nested operators, higher orders) and trained through (gradients reach the network's parameters).

For several derivatives of the same output build a :class:`Derivatives` once: it computes the
gradient a single time and each second-derivative row at most once, e.g. a heat-equation residual::

    d = Derivatives(u, xt)                     # xt: (N, 2) points (x, t), u = net(xt)
    residual = d.partial(1) - nu * d.partial(0, 0)

costs two backward passes, the same as by hand. Mixed partials are cached in sorted index order,
assuming the output is smooth enough for them to commute.

An output may carry derivatives computed another way (e.g. pushed forward through the network,
:mod:`sciml.pinn.jet`): :func:`with_derivatives` attaches them, and :class:`Derivatives` returns them
instead of differentiating, so an equation written with this module runs unchanged and without
backward passes.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from .errors import ConfigError, DTypeError, ShapeError

__all__ = ["Derivatives", "grad", "jacobian", "div", "laplacian", "hessian", "partial", "with_derivatives"]

_KNOWN = "_sciml_known_derivatives"  # attribute of an output tensor: (points, {sorted index: partial})


def with_derivatives(u: Tensor, x: Tensor, known: dict[tuple[int, ...], Tensor]) -> Tensor:
    """Mark ``u`` (a scalar output at the points ``x``) with some of its partial derivatives.

    ``known`` maps sorted axis tuples (``(1,)`` for ``u_t``, ``(0, 0)`` for ``u_xx``) to tensors of the
    point shape ``x.shape[:-1]``. :class:`Derivatives` of ``u`` with respect to this very ``x`` returns
    them as they are; partials not in ``known`` still come from autograd, so they are only right if
    ``u``'s graph also carries them. Returns ``u`` itself.
    """
    points = tuple(x.shape[:-1])
    for index, value in known.items():
        if tuple(sorted(index)) != tuple(index) or tuple(value.shape) != points:
            raise ShapeError(f"with_derivatives: partial {index}", points, tuple(value.shape))
    setattr(u, _KNOWN, (x, dict(known)))
    return u


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------
def _check_x(x: Any) -> Tensor:
    if not isinstance(x, Tensor):
        raise DTypeError(f"x: expected a torch.Tensor of points, got {type(x).__name__}")
    if x.ndim not in (2, 3) or x.shape[-1] < 1:
        raise ShapeError("x", "(N, d) or (B, N, d)", x.shape)
    if not x.is_floating_point():
        raise DTypeError(f"x: expected a floating point tensor, got {x.dtype}")
    if not x.requires_grad:
        raise ConfigError(
            "x: expected a tensor that requires grad, got requires_grad=False; call "
            "x.requires_grad_(True) before evaluating the network on x"
        )
    return x


def _check_output(name: str, u: Any, x: Tensor, components: int | None) -> Tensor:
    """``u`` as shape ``(*x.shape[:-1], k)``; ``components`` fixes ``k`` (None: any, 1: scalar)."""
    if not isinstance(u, Tensor):
        raise DTypeError(f"{name}: expected a torch.Tensor, got {type(u).__name__}")
    points = tuple(x.shape[:-1])
    shape = tuple(u.shape)
    if shape == points:
        u = u.unsqueeze(-1)
    elif len(shape) != len(points) + 1 or shape[:-1] != points:
        k = "k" if components is None else components
        raise ShapeError(name, f"{points} or (*{points}, {k}) matching x of shape {tuple(x.shape)}", shape)
    if components is not None and u.shape[-1] != components:
        raise ShapeError(name, (*points, components), shape)
    if not u.requires_grad:
        raise ConfigError(
            f"{name}: expected an output computed from x with autograd on, got a tensor that does not "
            "require grad (was it computed under torch.no_grad() or detached?)"
        )
    return u


def _check_axis(i: Any, d: int) -> int:
    try:
        axis = operator.index(i)  # ints, numpy integers, 0-d integer tensors
    except TypeError:
        axis = None
    if isinstance(i, bool) or axis is None or not 0 <= axis < d:
        raise ConfigError(f"partial: expected an axis index in [0, {d}), got {i!r}")
    return axis


def _d(y: Tensor, x: Tensor) -> Tensor:
    """Pointwise gradient of the per-point scalar ``y`` (shape ``x.shape[:-1]``): shape ``x.shape``."""
    if not y.requires_grad:
        # A derivative of something already constant in x (e.g. the gradient of a linear map
        # without trainable parameters): all further derivatives are zero.
        return torch.zeros_like(x)
    (g,) = torch.autograd.grad(
        y, x, grad_outputs=torch.ones_like(y), create_graph=True, allow_unused=True, materialize_grads=True
    )
    return g


# --------------------------------------------------------------------------------------------
# Cached derivatives of one scalar output
# --------------------------------------------------------------------------------------------
class Derivatives:
    """Derivatives of one scalar output ``u(x)``, each computed at most once.

    Parameters
    ----------
    u : Tensor, shape ``(N,)``, ``(N, 1)``, ``(B, N)`` or ``(B, N, 1)``
        Output computed pointwise from ``x``.
    x : Tensor, shape ``(N, d)`` or ``(B, N, d)``, requires grad

    Notes
    -----
    Partial derivatives are returned with the point shape ``x.shape[:-1]``; the gradient and
    Hessian add one or two trailing axes of size ``d``.
    """

    def __init__(self, u: Tensor, x: Tensor) -> None:
        self.x = _check_x(x)
        known = getattr(u, _KNOWN, None)
        self.u = _check_output("u", u, self.x, components=1)[..., 0]
        self.dim = int(x.shape[-1])
        #: partials attached by :func:`with_derivatives` for these very points
        self._known: dict[tuple[int, ...], Tensor] = known[1] if known is not None and known[0] is x else {}
        # sorted multi-index of a partial derivative -> gradient of that partial (shape x.shape)
        self._gradients: dict[tuple[int, ...], Tensor] = {}

    def _gradient_of(self, index: tuple[int, ...]) -> Tensor:
        cached = self._gradients.get(index)
        if cached is None:
            cached = _d(self._partial(index), self.x)
            self._gradients[index] = cached
        return cached

    def _partial(self, index: tuple[int, ...]) -> Tensor:
        if not index:
            return self.u
        known = self._known.get(index)
        if known is not None:
            return known
        return self._gradient_of(index[:-1])[..., index[-1]]

    @property
    def grad(self) -> Tensor:
        """``du/dx``, shape ``x.shape``."""
        if all((i,) in self._known for i in range(self.dim)):
            return torch.stack([self._known[(i,)] for i in range(self.dim)], dim=-1)
        return self._gradient_of(())

    def partial(self, *index: int) -> Tensor:
        """``d^k u / dx_{i1} ... dx_{ik}`` for ``index = (i1, ..., ik)``, e.g. ``partial(0, 0)`` = u_xx."""
        if not index:
            raise ConfigError("partial: expected at least one axis index, got none")
        key = tuple(sorted(_check_axis(i, self.dim) for i in index))
        return self._partial(key)

    def hessian(self) -> Tensor:
        """Second derivatives, shape ``(*x.shape[:-1], d, d)``; one backward pass per dimension."""
        rows = [torch.stack([self._partial(tuple(sorted((i, j)))) for j in range(self.dim)], dim=-1)
                for i in range(self.dim)]
        return torch.stack(rows, dim=-2)

    def laplacian(self) -> Tensor:
        """Sum of the pure second derivatives, shape ``x.shape[:-1]``; one backward pass per dimension."""
        return sum(self._partial((i, i)) for i in range(self.dim))  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# Functional interface
# --------------------------------------------------------------------------------------------
def grad(u: Tensor, x: Tensor) -> Tensor:
    """Gradient of a scalar output: ``(N,)``/``(N, 1)`` over ``(N, d)`` points -> ``(N, d)``."""
    return Derivatives(u, x).grad


def jacobian(u: Tensor, x: Tensor) -> Tensor:
    """Jacobian of a ``k``-component output: ``(N, k)`` over ``(N, d)`` points -> ``(N, k, d)``.

    A scalar output ``(N,)`` counts as ``k = 1``. One backward pass per component.
    """
    x = _check_x(x)
    u = _check_output("u", u, x, components=None)
    return torch.stack([_d(u[..., j], x) for j in range(u.shape[-1])], dim=-2)


def div(v: Tensor, x: Tensor) -> Tensor:
    """Divergence of a vector field ``v`` of shape ``x.shape`` (``(N, d)``) -> ``(N,)``."""
    x = _check_x(x)
    v = _check_output("v", v, x, components=int(x.shape[-1]))
    return sum(_d(v[..., i], x)[..., i] for i in range(v.shape[-1]))  # type: ignore[return-value]


def laplacian(u: Tensor, x: Tensor) -> Tensor:
    """Laplacian of a scalar output -> ``(N,)``; ``d`` backward passes through the gradient."""
    return Derivatives(u, x).laplacian()


def hessian(u: Tensor, x: Tensor) -> Tensor:
    """Hessian of a scalar output -> ``(N, d, d)`` (symmetric up to round-off)."""
    return Derivatives(u, x).hessian()


def partial(u: Tensor, x: Tensor, i: int | Sequence[int], order: int = 1) -> Tensor:
    """A partial derivative of a scalar output, shape ``x.shape[:-1]``.

    Parameters
    ----------
    u, x : Tensor
        Output ``(N,)``/``(N, 1)`` and points ``(N, d)`` (or with a leading batch axis).
    i : int or sequence of int
        Axis to differentiate along (``order`` times), or the axes of a mixed derivative,
        e.g. ``(0, 1)`` for ``u_xy``.
    order : int
        Number of derivatives along ``i`` when ``i`` is an int; must be 1 with a sequence.

    Examples
    --------
    With points ``xt = (x, t)`` and ``u = net(xt)``::

        u_t = partial(u, xt, 1)
        u_xx = partial(u, xt, 0, order=2)
    """
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise ConfigError(f"partial: expected a positive integer order, got {order!r}")
    if isinstance(i, (Sequence, Tensor)) and not isinstance(i, str) and getattr(i, "ndim", 1) == 1:
        if order != 1:
            raise ConfigError(
                f"partial: give either a sequence of axes or an order, got i={i!r}, order={order}"
            )
        index = tuple(i)
    else:
        index = (i,) * order
    return Derivatives(u, x).partial(*index)
