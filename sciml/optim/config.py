"""Conflict-free combiners: ConFIG, M-ConFIG (Liu et al., ICLR 2025) and the PCGrad baseline.

The loss terms of a PINN (residual, boundary, initial, data) often pull the weights in conflicting
directions: the gradient of one term has a negative component along another's, so a step on their
sum can increase one of them. ConFIG picks instead the update ``g_c`` whose cosine with every term's
gradient ``g_i`` is the same and positive:

1. unit gradients ``u_i = g_i / |g_i|`` (a term with zero gradient gives a zero row);
2. direction: the least-squares, minimum-norm solution ``d`` of ``U d = 1`` (rows ``u_i``), i.e.
   ``d = pinv(U) 1``; when the gradients are linearly independent ``u_i . d = 1`` for every ``i``,
   so all cosines are equal and positive;
3. length: the sum of the projections of the gradients, ``|g_c| = sum_i g_i . d / |d|``.

M-ConFIG differentiates *one* term per step (cycling through them), keeps a momentum of each term's
gradient, applies ConFIG to the bias-corrected momenta and rescales the result by a second moment
estimated from the change of the combined momentum (the "pseudo-momentum" of the reference
implementation), i.e. it already contains Adam's normalisation: train it with ``optimizer="sgd"``
and Adam's learning rate. One gradient per step instead of one per term makes a step several times
cheaper; a task that skips the terms not needed makes it cheaper still (see
:class:`sciml.pinn.ActiveTermsCallback`).

PCGrad (Yu et al. 2020) projects each gradient off the others it conflicts with and sums them; the
order of the projections is the terms' order (deterministic, as in the ``conflictfree`` package).

All three are nonlinear in the gradients, so under DDP they combine the *global* per-term gradients
(``reduces_itself = True``; see :mod:`sciml.optim.combine`). Parameters that a term does not depend on
contribute zeros to that term's gradient. The operators :func:`config_direction` and
:func:`pcgrad_direction` act on a gradient matrix and are usable on their own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from ..errors import ConfigError, DTypeError, ShapeError
from .combine import Combiner, Reducer, _as_scalar, register_combiner, set_gradients, term_gradients

__all__ = ["ConFIG", "MConFIG", "PCGrad", "config_direction", "pcgrad_direction"]


def _check_matrix(grads: Any) -> Tensor:
    if not isinstance(grads, Tensor):
        raise DTypeError(f"gradient matrix: expected a torch.Tensor, got {type(grads).__name__}")
    if grads.ndim != 2 or grads.shape[0] < 1:
        raise ShapeError("gradient matrix", "(n_terms, n_params)", tuple(grads.shape))
    if not grads.is_floating_point():
        raise DTypeError(f"gradient matrix: expected a floating point tensor, got {grads.dtype}")
    return grads


def config_direction(grads: Tensor) -> Tensor:
    """The ConFIG update of the gradient matrix ``grads`` ``(m, n)`` (rows are the terms' gradients).

    Returns the vector ``g_c`` ``(n,)``: direction ``pinv(U) 1`` of the unit rows ``U``, length
    ``sum_i g_i . g_c / |g_c|``. Zero rows are ignored; all-zero input gives a zero update.
    """
    grads = _check_matrix(grads)
    norms = torch.linalg.vector_norm(grads, dim=1, keepdim=True)
    units = torch.where(norms > 0, grads / norms.clamp_min(torch.finfo(grads.dtype).tiny), 0.0)
    # pinv(U) 1 through the thin SVD: robust to dependent gradients (rank-deficient U) and available
    # on every device, unlike the LAPACK least-squares drivers.
    w, s, vh = torch.linalg.svd(units, full_matrices=False)
    cutoff = s.max() * max(units.shape) * torch.finfo(grads.dtype).eps if s.numel() else s.new_zeros(())
    s_inv = torch.where(s > cutoff, 1.0 / s.clamp_min(torch.finfo(grads.dtype).tiny), 0.0)
    direction = vh.transpose(0, 1) @ (s_inv * (w.transpose(0, 1) @ torch.ones_like(norms[:, 0])))
    size = torch.linalg.vector_norm(direction)
    if not size > 0:
        return torch.zeros_like(grads[0])
    unit = direction / size
    return (grads @ unit).sum() * unit


def pcgrad_direction(grads: Tensor) -> Tensor:
    """PCGrad: each row projected off the (original) rows it conflicts with, in order, then summed."""
    grads = _check_matrix(grads)
    sq = (grads * grads).sum(dim=1)
    out = grads.clone()
    m = grads.shape[0]
    for i in range(m):
        for j in range(m):
            if i == j or not sq[j] > 0:
                continue
            dot = out[i] @ grads[j]
            if dot < 0:
                out[i] = out[i] - (dot / sq[j]) * grads[j]
    return out.sum(dim=0)


def _total(terms: Mapping[str, Tensor]) -> Tensor:
    values = [_as_scalar(t).detach() for t in terms.values()]
    total = values[0]
    for v in values[1:]:
        total = total + v
    return total


@register_combiner("config")
class ConFIG(Combiner):
    """Conflict-free inverse gradients: one gradient per term, combined by :func:`config_direction`."""

    reduces_itself = True

    def combine(
        self, terms: Mapping[str, Tensor], params: list[Tensor], *, scale: float, reduce: Reducer | None
    ) -> Tensor:
        grads, used = term_gradients(terms, params, scale=scale, reduce=reduce)
        set_gradients(config_direction(grads), params, scale=scale, used=used)
        return _total(terms)


@register_combiner("pcgrad")
class PCGrad(Combiner):
    """Projecting conflicting gradients (Yu et al. 2020), combined by :func:`pcgrad_direction`."""

    reduces_itself = True

    def combine(
        self, terms: Mapping[str, Tensor], params: list[Tensor], *, scale: float, reduce: Reducer | None
    ) -> Tensor:
        grads, used = term_gradients(terms, params, scale=scale, reduce=reduce)
        set_gradients(pcgrad_direction(grads), params, scale=scale, used=used)
        return _total(terms)


@register_combiner("mconfig")
class MConFIG(Combiner):
    """Momentum ConFIG: one term's gradient per step, per-term momenta, ConFIG, Adam-like scaling.

    Parameters
    ----------
    beta1, beta2 : float
        Decay rates of the per-term first moments and of the shared second moment.
    eps : float
        Added to the square root of the second moment.

    Notes
    -----
    Step ``k`` (counting from 0) differentiates term ``k mod m`` only. Until every term has been
    differentiated once the update is zero (the optimiser makes no move). The update already
    carries Adam's normalisation: use ``optimizer="sgd"`` with Adam's learning rate.
    """

    reduces_itself = True

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        for name, value in (("beta1", beta1), ("beta2", beta2)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ConfigError(f"MConFIG {name}: expected a number in [0, 1), got {value!r}")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not (math.isfinite(eps) and eps > 0):
            raise ConfigError(f"MConFIG eps: expected a finite number > 0, got {eps!r}")
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.reset()

    def reset(self) -> None:
        """Forget the momenta (a fresh start)."""
        self.names: list[str] = []
        self.momenta: Tensor | None = None  # (m, n) first moments, rows in term order
        self.counts: list[int] = []
        self.second: Tensor | None = None
        self.combined: Tensor | None = None  # previous bias-scaled combined momentum ("fake_m")
        self.steps = 0  # updates made with every term initialised
        self.calls = 0  # calls so far: picks the term

    def next_terms(self, names: Sequence[str]) -> list[str]:
        """The term(s) the next call differentiates (a task may skip computing the others)."""
        names = list(names)
        if not names:
            raise ConfigError("MConFIG.next_terms: expected the task's term names, got none")
        return [names[self.calls % len(names)]]

    def combine(
        self, terms: Mapping[str, Tensor], params: list[Tensor], *, scale: float, reduce: Reducer | None
    ) -> Tensor:
        names = list(terms)
        if self.names and names != self.names:
            raise ConfigError(f"MConFIG: the terms changed from {self.names} to {names}; "
                              "momenta are per term")
        index = self.calls % len(names)
        picked = names[index]
        grad, used = term_gradients({picked: terms[picked]}, params, scale=scale, reduce=reduce)
        grad = grad[0]
        if self.momenta is None:
            self.names = names
            self.momenta = grad.new_zeros((len(names), grad.numel()))
            self.counts = [0] * len(names)
            self.second = grad.new_zeros(grad.numel())
            self.combined = grad.new_zeros(grad.numel())
        elif self.momenta.shape[1] != grad.numel():
            raise ShapeError("MConFIG gradient", (self.momenta.shape[1],), tuple(grad.shape))
        else:
            self._to(grad)
        self.calls += 1
        self.momenta[index] = self.beta1 * self.momenta[index] + (1 - self.beta1) * grad
        self.counts[index] += 1
        if min(self.counts) == 0:
            update = torch.zeros_like(grad)
        else:
            self.steps += 1
            t = self.steps
            corrections = grad.new_tensor([1 - self.beta1**c for c in self.counts])
            combined = config_direction(self.momenta / corrections[:, None])
            scaled = combined * (1 - self.beta1**t)
            pseudo_grad = (scaled - self.beta1 * self.combined) / (1 - self.beta1)
            self.combined = scaled
            self.second = self.beta2 * self.second + (1 - self.beta2) * pseudo_grad**2
            update = combined / ((self.second / (1 - self.beta2**t)).sqrt() + self.eps)
        # During the warm-up (zero update) parameters the picked term does not reach keep grad=None.
        set_gradients(update, params, scale=scale, used=None if self.steps else used)
        return _total(terms)

    def state_dict(self) -> dict[str, Any]:
        """Momenta, counters and the second moment (tensors and ints)."""
        if self.momenta is None:
            return {"calls": self.calls}
        return {"names": list(self.names), "momenta": self.momenta.detach().cpu(),
                "counts": list(self.counts), "second": self.second.detach().cpu(),
                "combined": self.combined.detach().cpu(), "steps": self.steps, "calls": self.calls}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (tensors are moved to the device at the next call's dtype)."""
        self.reset()
        if not state:
            return
        self.calls = int(state["calls"])
        if "momenta" in state:
            self.names = list(state["names"])
            self.momenta = state["momenta"].clone()
            self.counts = [int(c) for c in state["counts"]]
            self.second, self.combined = state["second"].clone(), state["combined"].clone()
            self.steps = int(state["steps"])

    def _to(self, like: Tensor) -> None:
        for key in ("momenta", "second", "combined"):
            value = getattr(self, key)
            if value is not None and (value.device != like.device or value.dtype != like.dtype):
                setattr(self, key, value.to(device=like.device, dtype=like.dtype))

    def __repr__(self) -> str:
        return f"MConFIG(beta1={self.beta1}, beta2={self.beta2}, eps={self.eps})"
