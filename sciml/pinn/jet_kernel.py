"""The jet of an MLP as one autograd node with a hand-written backward pass.

:mod:`sciml.pinn.jet` pushes first and second input derivatives forward through a multilayer
perceptron ("streams"); left to autograd, every element-wise product of that propagation becomes a
node of the graph, and the weights' gradient walks back through about a hundred small nodes per
step, each with its own dispatch and temporary. This module computes the same streams in one
:class:`torch.autograd.Function` whose backward is derived by hand, so a training step of a PINN costs
a few matrix products and a few fused element-wise passes per layer.

For a hidden layer ``h = s(z)``, ``z = W a + b``, with streams ``z_i = W a_i`` (first derivatives along
the axes ``i`` the equation uses) and ``z_m = W a_m`` (second derivatives along the pairs ``m = (i, j)``),

.. math::

    h_i = s' z_i, \\qquad h_m = s' z_m + s'' z_i z_j .

Given the output gradients ``g, g_i, g_m`` of ``h, h_i, h_m`` the chain rule gives

.. math::

    \\bar z_m = s' g_m, \\qquad
    \\bar z_i = s' g_i + s'' \\sum_{m \\ni i} g_m z_{\\text{other}(m, i)}, \\qquad
    \\bar z = s' g + s'' \\Big(\\sum_i g_i z_i + \\sum_m g_m z_m\\Big) + s''' \\sum_m g_m z_i z_j,

(a pair ``(i, i)`` contributes twice to ``\\bar z_i``), then ``dW = [\\bar z; \\bar z_i; \\bar z_m] [a; a_i; a_m]^T``
(one product over all streams), ``db = sum \\bar z`` and ``\\bar a = W^T [\\bar z; \\bar z_i; \\bar z_m]``.
In the first layer the input streams are constants (``a_i = e_i``, ``a_m = 0``), so ``dW[:, i]`` gains the
point sum of ``\\bar z_i``. The input points are data: no gradient flows to them.

Layout: feature-major, a layer's streams stacked as ``(width, S, N)`` so one matrix product serves all
``S`` streams and element-wise work runs along the long point axis. Tests compare every gradient with
autograd through :meth:`sciml.pinn.jet.JetEngine._propagate` (float64, to round-off).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = ["ACTIVATIONS", "jet_streams"]

#: ``z -> (s, s', s'', s''')`` by activation name
Activation = Callable[[Tensor], tuple[Tensor, Tensor, Tensor, Tensor]]


def _tanh(z: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    # 2 sigmoid(2 z) - 1 equals tanh to round-off and runs several times faster on CPU
    s = torch.sigmoid(2 * z).mul_(2).sub_(1)
    s1 = 1 - s * s
    s2 = -2 * s * s1
    s3 = s1 * (6 * s * s - 2)  # d/dz (-2 s s') = -2 s'^2 - 2 s s'' = s' (4 s^2 - 2 s') = s' (6 s^2 - 2)
    return s, s1, s2, s3


def _sine(w0: float) -> Activation:
    def sine(z: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        s, c = torch.sin(w0 * z), torch.cos(w0 * z)
        return s, w0 * c, -(w0 * w0) * s, -(w0 * w0 * w0) * c
    return sine


def _identity(z: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    one = torch.ones_like(z)
    zero = torch.zeros_like(z)
    return z, one, zero, zero


ACTIVATIONS: dict[str, Callable[..., Activation]] = {"tanh": lambda: _tanh, "sin": _sine,
                                                     "identity": lambda: _identity}


def _hidden_forward(z: Tensor, act: Activation, n_first: int, pairs: Sequence[tuple[int, int]]) -> Tensor:
    """Streams of ``h = s(z)`` from the pre-activation streams ``z`` ``(w, S, N)``."""
    s, s1, s2, _ = act(z[:, 0])
    out = [s]
    out.extend(s1 * z[:, 1 + i] for i in range(n_first))
    for m, (a, b) in enumerate(pairs):
        out.append(s1 * z[:, 1 + n_first + m] + s2 * z[:, 1 + a] * z[:, 1 + b])
    return torch.stack(out, dim=1)


def _hidden_backward(z: Tensor, g: Tensor, act: Activation, n_first: int,
                     pairs: Sequence[tuple[int, int]]) -> Tensor:
    """Gradient with respect to the pre-activation streams ``z`` given that of the activation streams."""
    _, s1, s2, s3 = act(z[:, 0])
    first = [z[:, 1 + i] for i in range(n_first)]
    g_first = [g[:, 1 + i] for i in range(n_first)]
    g_pairs = [g[:, 1 + n_first + m] for m in range(len(pairs))]
    # sum over streams of g_stream * z_stream, the coefficient of s'' in the value's gradient
    curvature = (g[:, 1:] * z[:, 1:]).sum(1)
    gz = s1 * g[:, 0] + s2 * curvature
    if pairs:
        products = sum(gm * first[a] * first[b] for gm, (a, b) in zip(g_pairs, pairs))
        gz = gz + s3 * products
    out = [gz]
    for i in range(n_first):
        gi = s1 * g_first[i]
        for gm, (a, b) in zip(g_pairs, pairs):
            if a == i:
                gi = gi + s2 * gm * first[b]
            if b == i:
                gi = gi + s2 * gm * first[a]
        out.append(gi)
    out.extend(s1 * gm for gm in g_pairs)
    return torch.stack(out, dim=1)


class _JetMLP(torch.autograd.Function):
    """``apply(xi, spec, *params)`` -> value and derivative streams, stacked ``(k, S, N)``.

    ``spec = (act, first_axes, pairs, n_layers, has_bias)``; ``params`` are the weights and biases in
    layer order (biases omitted when ``has_bias`` is False).
    """

    @staticmethod
    def forward(ctx: Any, xi: Tensor, spec: tuple[Any, ...], *params: Tensor) -> Tensor:
        act, axes, pairs, n_layers, has_bias = spec
        weights = params[0::2] if has_bias else params
        biases = params[1::2] if has_bias else (None,) * n_layers
        n = xi.shape[0]
        w0 = weights[0]
        z0 = w0 @ xi.t()
        if biases[0] is not None:
            z0 = z0 + biases[0][:, None]
        # the first layer's derivative streams are constant columns of its weight
        z = torch.stack([z0, *(w0[:, i : i + 1].expand(-1, n) for i in axes),
                         *(z0.new_zeros(()).expand_as(z0) for _ in pairs)], dim=1)
        saved_a: list[Tensor] = []
        saved_z: list[Tensor] = [z]
        for layer in range(1, n_layers):
            a = _hidden_forward(z, act, len(axes), pairs)
            w = weights[layer]
            width, n_streams = a.shape[0], a.shape[1]
            z = (w @ a.view(width, n_streams * n)).view(-1, n_streams, n)
            if biases[layer] is not None:
                z[:, 0] += biases[layer][:, None]
            saved_a.append(a)
            saved_z.append(z)
        ctx.spec = spec
        ctx.save_for_backward(xi, *params, *saved_a, *saved_z[:-1])
        return z

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Any, ...]:
        act, axes, pairs, n_layers, has_bias = ctx.spec
        saved = ctx.saved_tensors
        n_params = n_layers * (2 if has_bias else 1)
        xi, params = saved[0], saved[1 : 1 + n_params]
        activations = saved[1 + n_params : n_params + n_layers]
        pre = saved[n_params + n_layers :]
        weights = params[0::2] if has_bias else params
        n = xi.shape[0]
        grads: list[Tensor | None] = [None] * n_params
        g = grad
        for layer in range(n_layers - 1, 0, -1):
            w, a = weights[layer], activations[layer - 1]
            width, n_streams = a.shape[0], a.shape[1]
            g_flat = g.reshape(g.shape[0], n_streams * n)
            grad_w = g_flat @ a.view(width, n_streams * n).t()
            grad_b = g[:, 0].sum(1) if has_bias else None
            g_a = (w.t() @ g_flat).view(width, n_streams, n)
            g = _hidden_backward(pre[layer - 1], g_a, act, len(axes), pairs)
            if has_bias:
                grads[2 * layer], grads[2 * layer + 1] = grad_w, grad_b
            else:
                grads[layer] = grad_w
        grad_w0 = g[:, 0] @ xi
        if axes:
            # dW[:, i] gains the point sums of the first-derivative streams (a_i = e_i)
            sums = g[:, 1 : 1 + len(axes)].sum(2)
            grad_w0 = grad_w0.index_add(1, torch.as_tensor(axes, device=g.device), sums)
        if has_bias:
            grads[0], grads[1] = grad_w0, g[:, 0].sum(1)
        else:
            grads[0] = grad_w0
        return (None, None, *grads)


def jet_streams(xi: Tensor, weights: Sequence[Tensor], biases: Sequence[Tensor | None], act: Activation,
                first: Sequence[int], pairs: Sequence[tuple[int, int]]) -> Tensor:
    """Value and derivative streams of an MLP at the points ``xi`` ``(N, d)``.

    Parameters
    ----------
    xi : Tensor
        Network inputs ``(N, d)``; treated as data (detached).
    weights, biases : sequences of Tensor
        The layers' parameters (``W`` is ``(out, in)``); biases all None or all given.
    act : callable
        ``z -> (s, s', s'', s''')`` of the hidden activation (see :data:`ACTIVATIONS`).
    first : sequence of int
        Axes of the first-derivative streams.
    pairs : sequence of (int, int)
        Second-derivative streams, as positions ``(p, q)`` in ``first`` of the two axes.

    Returns
    -------
    Tensor
        ``(k, S, N)``: stream 0 is the value, then ``len(first)`` first derivatives, then the pairs.
    """
    has_bias = biases[0] is not None
    if any((b is None) == has_bias for b in biases):
        raise ValueError("jet_streams: biases must be all None or all tensors")
    params: list[Tensor] = []
    for w, b in zip(weights, biases):
        params.append(w)
        if has_bias:
            params.append(b)  # type: ignore[arg-type]
    spec = (act, tuple(first), tuple(pairs), len(weights), has_bias)
    return _JetMLP.apply(xi.detach(), spec, *params)
