"""Taylor-mode derivatives of MLPs: the PINN residual without nested backward passes.

Nested autograd (the default, and DeepXDE's way) differentiates the network with respect to its input
by a backward pass, then differentiates that backward pass again for second derivatives, and the loss
is then differentiated a third time with respect to the weights. For a multilayer perceptron the
derivatives with respect to the input can instead be pushed *forward* through the layers together
with the values: for ``h = s(z)``, ``z = W a + b``,

.. math::

    z_i = W a_i, \\quad z_{ij} = W a_{ij}, \\qquad
    h_i = s'(z)\\, z_i, \\quad h_{ij} = s''(z)\\, z_i z_j + s'(z)\\, z_{ij},

one extra "stream" per first derivative ``d/dx_i`` and per second derivative ``d2/dx_i dx_j`` the
equation uses, all streams of a layer sharing one matrix product. The weights' gradient is then a single
backward pass through this forward computation, which ``torch.compile`` can fuse.

:class:`JetEngine` computes the streams and hands them to the equation without changing how the
equation is written: :meth:`JetEngine.attach` returns the network output as a tensor whose autograd
derivatives with respect to the input *are* the precomputed streams (two small custom autograd
functions), so ``sciml.diff.partial(u, x, 0, 0)`` returns ``u_xx`` from the jet. Which streams an
equation needs is detected once (:meth:`JetEngine.detect`): the residual is evaluated with every first
and second derivative available and the ones it does not depend on are dropped. Third derivatives are
not available; :class:`~sciml.pinn.PINNTask` checks the jet's residual against nested autograd once
and refuses the jet when they differ.

Supported networks: :class:`sciml.models.mlp.MLP` (and ``nn.Sequential`` of ``nn.Linear`` and
activation modules) with ``tanh`` or ``sin`` activations, no layer norm. ``tanh`` is evaluated as
``2 sigmoid(2 z) - 1``, several times faster on CPU and equal to it to float32 round-off. A model
that wraps such a network in an output transform (a hard constraint written as a module,
:class:`sciml.pinn.hard.HardConstrained`) says so with ``jet_split() -> (network, transform)``
(:func:`split_model`): the jet propagates through the network and autograd applies the transform.
Other models raise :class:`UnsupportedModel`, on which :class:`~sciml.pinn.PINNTask` warns and
uses nested autograd.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ConfigError

__all__ = ["JetEngine", "UnsupportedModel", "split_model"]


class UnsupportedModel(ConfigError):
    """The jet cannot propagate through this model (a PINNTask then falls back to nested autograd)."""


def split_model(model: nn.Module) -> tuple[nn.Module, Callable[[Tensor, Tensor], Tensor] | None]:
    """``(network, transform)``: the part the jet propagates through and the output transform after it
    (``transform(x, out)``; None for a plain network). Models declare a split with ``jet_split()``."""
    split = getattr(model, "jet_split", None)
    if not callable(split):
        return model, None
    parts = split()
    if not (isinstance(parts, tuple) and len(parts) == 2 and isinstance(parts[0], nn.Module)
            and callable(parts[1])):
        raise UnsupportedModel(f"{type(model).__name__}.jet_split(): expected (nn.Module, callable), got {parts!r}")
    return parts


def _activation(module: nn.Module) -> Callable[[Tensor], tuple[Tensor, Tensor, Tensor]] | None:
    """``s -> (s(z), s'(z), s''(z))`` for the activations the jet supports, else None."""
    if isinstance(module, nn.Tanh):
        def tanh(z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            s = torch.sigmoid(2 * z) * 2 - 1
            s1 = 1 - s * s
            return s, s1, -2 * s * s1
        return tanh
    if type(module).__name__ == "Sine" and hasattr(module, "w0"):
        w0 = float(module.w0)

        def sine(z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            s, c = torch.sin(w0 * z), torch.cos(w0 * z)
            return s, w0 * c, -(w0 * w0) * s
        return sine
    return None


def _unpack(model: nn.Module) -> tuple[list[nn.Linear], Callable[[Tensor], tuple[Tensor, Tensor, Tensor]]]:
    from ..models.mlp import MLP

    # only sciml's MLP is known to be its .net and nothing more; another module with a .net may
    # transform its output, and the jet would silently leave that out
    seq = model.net if isinstance(model, MLP) else model
    if not isinstance(seq, nn.Sequential):
        raise UnsupportedModel(f"derivatives='jet' needs an MLP (nn.Sequential of Linear and activation layers, "
                               f"or a model with jet_split()), got {type(model).__name__}")
    linears: list[nn.Linear] = []
    acts: list[nn.Module] = []
    for module in seq:
        if isinstance(module, nn.Linear):
            if len(linears) != len(acts):
                raise UnsupportedModel("derivatives='jet': expected Linear and activation layers to alternate")
            linears.append(module)
        elif _activation(module) is not None:
            if len(acts) != len(linears) - 1:
                raise UnsupportedModel("derivatives='jet': expected Linear and activation layers to alternate")
            acts.append(module)
        else:
            raise UnsupportedModel(f"derivatives='jet' supports tanh and sin activations between Linear layers, "
                                   f"got {type(module).__name__}")
    if not linears or len(acts) != len(linears) - 1:
        raise UnsupportedModel("derivatives='jet': the network must start and end with a Linear layer")
    if len({(type(a), getattr(a, "w0", None)) for a in acts}) > 1:
        raise UnsupportedModel("derivatives='jet': all hidden layers must use the same activation")
    act = _activation(acts[0]) if acts else None
    return linears, act or (lambda z: (z, torch.ones_like(z), torch.zeros_like(z)))


def _x_grad(n: int, d: int, columns: dict[int, Tensor], like: Tensor) -> Tensor:
    """Stack per-axis columns ``(N,)`` into ``(N, d)``, zeros for the axes not given."""
    zero = like.new_zeros(n)
    return torch.stack([columns.get(i, zero) for i in range(d)], dim=1)


class _Derivative(torch.autograd.Function):
    """``du/dx_i`` from the jet; its own derivative in ``x_j`` is the jet's ``d2u/dx_i dx_j``.

    ``apply(x, others, raw, *second)``: ``raw`` ``(N, k)`` is ``du/dx_i`` and ``second`` the available
    entries ``d2u/dx_i dx_j`` ``(N, k)``, one per axis ``j`` in ``others``; the others count as zero.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, others: tuple[int, ...], raw: Tensor, *second: Tensor) -> Tensor:
        ctx.save_for_backward(*second)
        ctx.others, ctx.shape = others, tuple(x.shape)
        return raw.clone()

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Any, ...]:
        second = ctx.saved_tensors
        n, d = ctx.shape
        columns = {j: (g * h).sum(1) for j, h in zip(ctx.others, second)}
        return (_x_grad(n, d, columns, g), None, g) + (None,) * len(second)


class _Value(torch.autograd.Function):
    """The network output ``(N, k)``; its derivative in ``x_i`` is the jet's ``du/dx_i``.

    ``apply(x, axes, value, *first)``: ``first`` are :class:`_Derivative` outputs, one per axis in
    ``axes``; the derivatives along the other axes count as zero.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, axes: tuple[int, ...], value: Tensor, *first: Tensor) -> Tensor:
        ctx.save_for_backward(*first)
        ctx.axes, ctx.shape = axes, tuple(x.shape)
        return value.clone()

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Any, ...]:
        first = ctx.saved_tensors
        n, d = ctx.shape
        columns = {i: (g * q).sum(1) for i, q in zip(ctx.axes, first)}
        return (_x_grad(n, d, columns, g), None, g) + (None,) * len(first)


class JetEngine:
    """Values and input derivatives (first and second order) of an MLP, by forward propagation.

    Parameters
    ----------
    model : nn.Module
        An MLP (see the module docstring); its parameters are used live, not copied.
    compile : bool or dict
        ``torch.compile`` the propagation (a dict holds compile options). The first call compiles
        (seconds); a change of the number of points recompiles.
    """

    def __init__(self, model: nn.Module, compile: bool | Mapping[str, Any] = False) -> None:
        self.linears, self.act = _unpack(model)
        self.d_in = self.linears[0].in_features
        self.k = self.linears[-1].out_features
        self.first: list[int] = []
        self.second: list[tuple[int, int]] = []
        self._recorded: list[Any] | None = None  # detection: the jet outputs of the last attach()
        self._compiled: Any = None
        if compile:
            options = dict(compile) if isinstance(compile, Mapping) else {}
            options.setdefault("dynamic", False)
            try:
                self._compiled = torch.compile(self._propagate, **options)
            except (TypeError, RuntimeError) as exc:
                raise ConfigError(f"jet compile={compile!r}: torch.compile refused ({exc})") from None
        self.configure(range(self.d_in), itertools.combinations_with_replacement(range(self.d_in), 2))

    def configure(self, first: Sequence[int] | Any, second: Sequence[tuple[int, int]] | Any) -> None:
        """Set the derivative streams: first-derivative axes and (i <= j) second-derivative pairs."""
        pairs = sorted({(min(i, j), max(i, j)) for i, j in second})
        axes = sorted(set(first) | {i for p in pairs for i in p})
        for i in axes:
            if not 0 <= i < self.d_in:
                raise ConfigError(f"jet: derivative axis {i} out of range for {self.d_in} network inputs")
        self.first, self.second = axes, pairs
        # positions of each pair's axes among the first-derivative streams
        self._pairs = [(axes.index(i), axes.index(j)) for i, j in pairs]

    def _propagate(self, xi: Tensor) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """Value ``(N, k)`` and the first- and second-derivative streams (lists of ``(N, k)``).

        The layout is feature-major: a stream is ``(width, N)`` and a layer's streams are stacked as
        ``(width, S, N)``, so one matrix product ``W @ (width, S * N)`` serves them all and the
        element-wise work runs along the long, contiguous point axis (vectorised; with the point-major
        layout it ran along the 20-wide feature axis, twice as slow here). Streams are separated with
        ``unbind``, whose backward is a single ``stack``, rather than by slicing, whose backward fills
        a zero buffer per slice.
        """
        n = xi.shape[0]
        first = self.linears[0]
        bias = first.bias[:, None] if first.bias is not None else None
        # pre-activation (width, N)
        z = torch.addmm(bias, first.weight, xi.t()) if bias is not None else first.weight @ xi.t()
        # derivatives of the first pre-activation: constant columns of the weight, broadcast over points
        z1: list[Tensor] = [first.weight[:, i : i + 1] for i in self.first]
        z2: list[Tensor | None] = [None] * len(self._pairs)
        for layer in self.linears[1:]:
            s, s1, s2 = self.act(z)
            h1 = [s1 * q for q in z1]
            h2 = []
            for m, (a, b) in enumerate(self._pairs):
                term = s2 * z1[a] * z1[b]
                previous = z2[m]
                h2.append(term if previous is None else term + s1 * previous)
            stacked = torch.stack([s, *h1, *h2], dim=1)  # (width, S, N)
            width, n_streams = stacked.shape[0], stacked.shape[1]
            if layer.out_features == 1:  # a product with one row: a fused multiply-and-sum is cheaper
                out = (stacked * layer.weight[0][:, None, None]).sum(0, keepdim=True)
            else:
                out = (layer.weight @ stacked.view(width, n_streams * n)).view(-1, n_streams, n)
            z, *rest = out.unbind(1)
            if layer.bias is not None:
                z = z + layer.bias[:, None]
            z1, z2 = list(rest[: len(self.first)]), list(rest[len(self.first) :])
        if len(self.linears) == 1:  # a single affine map: constant gradient, no curvature
            return z.t(), [q.t().expand(n, -1) for q in z1], [z.new_zeros(n, z.shape[0]) for _ in self._pairs]
        return z.t(), [q.t() for q in z1], [q.t() for q in z2 if q is not None]

    def derivatives(self, xi: Tensor) -> tuple[Tensor, dict[int, Tensor], dict[tuple[int, int], Tensor]]:
        """Value ``(N, k)`` and the configured derivatives at network inputs ``xi``.

        Returns ``(value, {i: du/dx_i}, {(i, j): d2u/dx_i dx_j})`` (``i <= j``), each ``(N, k)``.
        ``xi`` is treated as data (its own graph, if any, is not followed).
        """
        run = self._compiled or self._propagate
        value, first, second = run(xi.detach())
        return value, dict(zip(self.first, first)), dict(zip(self.second, second))

    def attach(self, xi: Tensor) -> Tensor:
        """The network output ``(N, k)`` at ``xi``, whose autograd derivatives in ``xi`` come from the jet."""
        value, first, second = self.derivatives(xi)
        if self._recorded is not None:  # detection: make the jet's outputs leaves to measure their use
            first = {i: v.detach().requires_grad_(True) for i, v in first.items()}
            second = {p: v.detach().requires_grad_(True) for p, v in second.items()}
            self._recorded[:] = [first, second]
        slopes = []
        for i, raw in first.items():
            row = {(b if a == i else a): v for (a, b), v in second.items() if i in (a, b)}
            slopes.append(_Derivative.apply(xi, tuple(row), raw, *row.values()))
        return _Value.apply(xi, tuple(first), value, *slopes)

    def detect(self, residual: Callable[[], Tensor]) -> tuple[list[int], list[tuple[int, int]]]:
        """Find the derivatives ``residual()`` uses, with every stream on; configure and return them.

        ``residual`` evaluates the residual (any shape) through :meth:`attach` once. A derivative is
        used when the residual's (randomly weighted) sum has a non-zero gradient with respect to it.
        """
        self.configure(range(self.d_in), itertools.combinations_with_replacement(range(self.d_in), 2))
        self._recorded = []
        try:
            r = residual()
            if not self._recorded:
                raise ConfigError("jet: the residual did not evaluate the network through the jet")
            first, second = self._recorded
        finally:
            self._recorded = None
        if not r.requires_grad:  # an equation that does not involve the network's derivatives
            self.configure([], [])
            return [], []
        weights = torch.rand(r.shape, generator=torch.Generator().manual_seed(0), dtype=r.dtype) + 0.5
        keys = [*first, *second]
        grads = torch.autograd.grad((r * weights.to(r.device)).sum(), [*first.values(), *second.values()],
                                    allow_unused=True, materialize_grads=True)
        used = [k for k, g in zip(keys, grads) if bool(g.abs().sum() > 0)]
        self.configure([k for k in used if isinstance(k, int)], [k for k in used if isinstance(k, tuple)])
        return self.first, self.second

    def __repr__(self) -> str:
        return (f"JetEngine(layers={len(self.linears)}, first={self.first}, second={self.second}, "
                f"compiled={self._compiled is not None})")
