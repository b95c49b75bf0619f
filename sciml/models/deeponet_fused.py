"""The fused DeepONet pass: forward and every weight gradient by hand, in one autograd node.

:class:`~sciml.models.deeponet.DeepONet` packs its MLP branch and trunk weights (and the output
bias) into one flat parameter; :class:`FusedDeepONet` runs the network, optionally with its loss
(MSE or the mean relative L2 error), and writes the gradient of that flat parameter directly: one
autograd node instead of one per layer, one gradient tensor, and no gradient for the data.
Activations that differentiate from their output (ReLU, tanh) run in place and keep nothing extra. The DeepONet uses this path only when
neither input needs a gradient and autocast is off; its tests compare values and gradients with
plain autograd.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

# deeponet.py imports this module; ``DeepONet`` below means sciml.models.deeponet.DeepONet (not imported back).
DeepONet = Any

__all__ = ["FusedDeepONet", "LOSSES", "PlanLayer"]

# Per packed layer the plan holds (W^T view, b view, W view, (weight chunk, bias chunk, out, in)), the
# chunks indexing ``grad.split(sizes)``.
PlanLayer = tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[int, int, int, int]]

# name -> (forward, backward(g, input, output), whether the backward needs the input). ReLU and tanh
# differentiate from their output, so their forward runs in place and keeps nothing extra.
_ACTS: dict[str, tuple[Any, Any, bool]] = {
    "relu": (torch.relu_, lambda g, z, a: torch.ops.aten.threshold_backward(g, a, 0), False),
    "tanh": (torch.tanh_, lambda g, z, a: torch.ops.aten.tanh_backward(g, a), False),
    "gelu": (F.gelu, lambda g, z, a: torch.ops.aten.gelu_backward(g, z), True),
    "silu": (F.silu, lambda g, z, a: torch.ops.aten.silu_backward(g, z), True),
    "sin": (torch.sin, lambda g, z, a: g * torch.cos(z), True),  # Sine with w0 = 1
}


def _mlp(h: torch.Tensor, layers: list[PlanLayer], act: str, last: bool, keep: list[Any]) -> torch.Tensor:
    """Forward through one packed MLP; appends every layer's input and kept pre-activation to ``keep``."""
    n, (forward, _, needs_input) = len(layers), _ACTS[act]
    for k in range(n):
        keep.append(h)
        z = torch.addmm(layers[k][1], h, layers[k][0])
        if k < n - 1 or last:
            keep.append(z if needs_input else None)
            h = forward(z)
        else:
            keep.append(None)
            h = z
    return h


def _mlp_backward(g: torch.Tensor, out: torch.Tensor, layers: list[PlanLayer], act: str, last: bool,
                  kept: list[Any], chunks: Sequence[torch.Tensor]) -> None:
    """Write one packed MLP's weight gradients into ``chunks`` given ``g = dL/d(output)``."""
    n, backward = len(layers), _ACTS[act][1]
    for k in range(n - 1, -1, -1):
        _, _, w, (wi, bi, fan_out, fan_in) = layers[k]
        h = kept[2 * k]
        if k < n - 1 or last:
            g = backward(g, kept[2 * k + 1], out)
        torch.mm(g.t(), h, out=chunks[wi].view(fan_out, fan_in))
        torch.sum(g, 0, out=chunks[bi])
        if k:
            g = torch.mm(g, w)
            out = h  # this layer's input is the previous layer's activation output


#: losses the fused pass can end with: the mean squared error, and the mean over functions of the
#: relative L2 error ``|out_i - y_i| / |y_i|`` (norms over channels and points)
LOSSES = ("mse", "rel_l2")


def _inverse_norms(model: DeepONet, target: torch.Tensor) -> torch.Tensor:
    """``1 / max(|y_i|, tiny)`` per function, cached on the model while ``target`` is unchanged.

    Full-batch training passes the same target tensor at every step. The cache holds a weak
    reference to that tensor and its version counter: another tensor (a new batch, even one the
    allocator put at the same address) or an in-place change of this one recomputes the norms.
    """
    cached = getattr(model, "_inverse_norm_cache", None)
    if cached is not None and cached[0]() is target and cached[1] == target._version:
        return cached[2]
    norms = torch.linalg.vector_norm(target, dim=tuple(range(1, target.ndim)))
    inv = 1.0 / norms.clamp_min_(torch.finfo(norms.dtype).tiny)
    model._inverse_norm_cache = (weakref.ref(target), target._version, inv)
    return inv


class FusedDeepONet(torch.autograd.Function):
    """The whole DeepONet (and optionally its loss) with a hand-written backward for the flat weights.

    ``apply(u, x, flat, model, target, loss)``: with ``target`` None the output ``(N, C, P)``,
    otherwise the scalar ``loss`` (one of :data:`LOSSES`) of the output against ``target``.
    """

    @staticmethod
    def forward(ctx: Any, u: torch.Tensor, x: torch.Tensor, flat: torch.Tensor, model: DeepONet,
                target: torch.Tensor | None, loss: str = "mse") -> torch.Tensor:
        branch, trunk, _ = model._views()
        kept_b: list[list[Any]] = [[] for _ in branch]
        kept_t: list[list[Any]] = [[] for _ in trunk]
        bs = [_mlp(u, net, model.activation, False, kept) for net, kept in zip(branch, kept_b)]
        xs = x if x.ndim == 2 else x.reshape(-1, x.shape[-1])
        ts = [_mlp(xs, net, model.trunk_activation, model.trunk_last_activation, kept)
              for net, kept in zip(trunk, kept_t)]
        bias = model._bias_offset
        ctx.simple = model.strategy == "single" and x.ndim == 2  # (N, p) x (p, P): one matrix product
        if ctx.simple:
            b, t = bs[0], ts[0]
            out = torch.mm(b, t.t()) if bias is None else torch.addmm(flat.detach()[bias:], b, t.t())
            out = out.unsqueeze(1)
        else:
            b, t = model._assemble(bs, ts, u.shape[0], x)
            out = model._merge(b, t, x.ndim)
            if bias is not None:
                out += flat.detach()[bias:, None]
        ctx.model, ctx.x_ndim, ctx.kept, ctx.outs, ctx.bt = model, x.ndim, (kept_b, kept_t), (bs, ts), (b, t)
        ctx.save_for_backward(flat)
        if target is None:
            return out
        residual = out.sub_(target)  # kept for the backward
        ctx.residual = residual
        if loss == "mse":
            flat_r = residual.reshape(-1)
            ctx.coef = None
            return torch.dot(flat_r, flat_r) / flat_r.numel()
        if loss != "rel_l2":
            raise ValueError(f"FusedDeepONet: unknown loss {loss!r}; expected one of {LOSSES}")
        inv_y = _inverse_norms(model, target)
        r_norm = torch.linalg.vector_norm(residual, dim=(1, 2))
        loss_value = torch.dot(r_norm, inv_y) / r_norm.numel()
        # d(mean_i |r_i| / |y_i|)/d(r_i) = r_i / (N |r_i| |y_i|); a zero residual has the zero subgradient
        # (the entries it multiplies are zero), as torch's vector_norm gives
        ctx.coef = inv_y / r_norm.clamp_min_(torch.finfo(r_norm.dtype).tiny).mul_(r_norm.numel())
        return loss_value

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        (flat,) = ctx.saved_tensors
        model: DeepONet = ctx.model
        branch, trunk, sizes = model._views()
        residual = getattr(ctx, "residual", None)
        if residual is not None:
            if ctx.coef is None:  # d(mean r^2)/d(out) = 2 r / n
                grad_out = residual * (grad_out * (2.0 / residual.numel()))
            else:
                grad_out = residual * ctx.coef.mul_(grad_out).view(-1, 1, 1)
            ctx.residual = ctx.coef = None
        grad = torch.empty_like(flat)
        chunks = grad.split(sizes)
        if model._bias_offset is not None:
            torch.sum(grad_out, (0, 2), out=chunks[-1])
        b, t = ctx.bt
        if ctx.simple:
            g2 = grad_out[:, 0]
            gbs, gts = [torch.mm(g2, t)], [torch.mm(g2.t(), b)]
        else:
            gbs, gts = model._split_grads(*model._merge_backward(grad_out, b, t, ctx.x_ndim))
        (kept_b, kept_t), (bs, ts) = ctx.kept, ctx.outs
        for net, g, out, kept in zip(trunk, gts, ts, kept_t):
            _mlp_backward(g, out, net, model.trunk_activation, model.trunk_last_activation, kept, chunks)
        for net, g, out, kept in zip(branch, gbs, bs, kept_b):
            _mlp_backward(g, out, net, model.activation, False, kept, chunks)
        ctx.kept = ctx.outs = ctx.bt = None
        return None, None, grad, None, None, None
