"""Loss-term combiners: how several named loss terms become one parameter update.

A :class:`~sciml.train.Task` returns its loss as named scalar terms (``{"pde": ..., "bc": ...}``).
A combiner turns them into gradients: it computes and **sets** ``p.grad`` for every parameter and
returns the scalar objective whose gradient it set (for logging and for L-BFGS line searches).

The contract, which every combiner (also ConFIG, PCGrad, ... added later) follows so that the
Trainer never needs to know which one it runs::

    loss = combiner(terms, params, scale=1.0, reduce=None)

``terms``
    ``dict[str, Tensor]`` of scalar tensors that still carry their autograd graph.
``params``
    The list of parameters to set ``.grad`` on. A parameter that no term depends on gets
    ``grad=None`` (as after ``loss.backward()``); for one term only it counts as zero.
``scale``
    Mixed precision (fp16) loss scale. The combiner differentiates ``scale * term`` (so small fp16
    gradients do not underflow) and must leave ``p.grad`` equal to ``scale`` times the true
    combined gradient; the Trainer's ``GradScaler`` unscales it and skips the step on overflow.
    Use :func:`term_gradients` (returns *unscaled* per-term gradients) and :func:`set_gradients`
    (re-applies the scale) and this is handled for you. ``scale`` is a power of two, so scaling
    and unscaling are exact.
``reduce``
    Only for combiners with ``reduces_itself = True``. Under DDP the Trainer passes a function
    that averages a tensor over all ranks. A combiner that is *linear* in the terms (Sum,
    Weighted) leaves ``reduces_itself = False``: it sets the local gradient and the Trainer
    averages ``p.grad`` across ranks afterwards, which gives the global gradient because
    averaging commutes with a linear combination. A *nonlinear* combiner (gradient surgery:
    ConFIG, PCGrad) does not commute with averaging: it must combine the *global* per-term
    gradients, so it sets ``reduces_itself = True``, averages its per-term gradient matrix with
    ``reduce`` (``term_gradients(..., reduce=reduce)`` does it), and the Trainer then leaves
    ``p.grad`` alone.

The return value is a detached scalar: the objective whose gradient was set (the weighted sum for
:class:`Weighted`); a combiner without such an objective returns the plain sum of the terms.
Combiners with state (momentum, as in M-ConFIG) implement ``state_dict``/``load_state_dict``; the
Trainer stores it in checkpoints.

New combiners register a name with :func:`register_combiner` so that ``Trainer(combiner="name")``
finds them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from .._checks import check_name
from ..errors import ConfigError, DTypeError, ShapeError

__all__ = [
    "Combiner",
    "Sum",
    "Weighted",
    "check_terms",
    "term_gradients",
    "set_gradients",
    "register_combiner",
    "get_combiner",
    "available_combiners",
]

Reducer = Callable[[Tensor], Tensor]

_REGISTRY: dict[str, type[Combiner]] = {}


def register_combiner(name: str) -> Callable[[type[Combiner]], type[Combiner]]:
    """Class decorator: make a :class:`Combiner` subclass available as ``Trainer(combiner=name)``."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"register_combiner: expected a non-empty name, got {name!r}")

    def deco(cls: type[Combiner]) -> type[Combiner]:
        if not (isinstance(cls, type) and issubclass(cls, Combiner)):
            raise ConfigError(f"register_combiner({name!r}): expected a Combiner subclass, got {cls!r}")
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ConfigError(f"register_combiner: name {name!r} is already taken by {_REGISTRY[name]}")
        _REGISTRY[name] = cls
        cls.name = name
        return cls

    return deco


def available_combiners() -> list[str]:
    """Names accepted by :func:`get_combiner`."""
    return sorted(_REGISTRY)


def get_combiner(spec: str | Combiner | None) -> Combiner:
    """Return a combiner from a registered name, an instance (returned as is) or ``None`` (sum)."""
    if spec is None:
        return Sum()
    if isinstance(spec, Combiner):
        return spec
    if isinstance(spec, str):
        check_name("combiner", spec, _REGISTRY)
        try:
            return _REGISTRY[spec]()
        except TypeError as exc:  # a combiner that needs arguments, e.g. Weighted
            raise ConfigError(
                f"combiner {spec!r} needs arguments ({exc}); pass an instance instead, "
                f"e.g. combiner={_REGISTRY[spec].__name__}(...)"
            ) from None
    raise ConfigError(f"combiner: expected a name in {available_combiners()} or a Combiner, got {spec!r}")


def check_terms(terms: Any, owner: str = "loss_terms") -> list[str]:
    """Check that ``terms`` is a non-empty ``dict[str, scalar float Tensor]``; return its names."""
    if not isinstance(terms, Mapping) or len(terms) == 0:
        raise ConfigError(f"{owner}: expected a non-empty dict of named scalar tensors, got {terms!r}")
    names = []
    for key, value in terms.items():
        if not isinstance(key, str):
            raise ConfigError(f"{owner}: expected string term names, got {key!r}")
        if not isinstance(value, Tensor):
            raise DTypeError(f"{owner}[{key!r}]: expected a scalar torch.Tensor, got {type(value).__name__}")
        if value.numel() != 1:
            raise ShapeError(f"{owner}[{key!r}]", "() (a scalar; reduce the term with .mean())", value.shape)
        if not value.is_floating_point():
            raise DTypeError(f"{owner}[{key!r}]: expected a floating point tensor, got {value.dtype}")
        names.append(key)
    return names


def _check_params(params: Sequence[Tensor]) -> list[Tensor]:
    params = list(params)
    if not params:
        raise ConfigError("combiner: expected at least one parameter to set gradients on, got none")
    return params


def _check_scale(scale: float) -> float:
    scale = float(scale)
    if not (math.isfinite(scale) and scale > 0):
        raise ConfigError(f"combiner: expected a finite positive loss scale, got {scale}")
    return scale


def _differentiable(terms: Mapping[str, Tensor]) -> bool:
    return any(t.requires_grad for t in terms.values())


def _as_scalar(term: Tensor) -> Tensor:
    """A term as a 0-d tensor, lifted from half precision so that sums do not lose digits."""
    if term.ndim:  # a 0-d term as it is: a reshape would add a view node to every backward pass
        term = term.reshape(())
    return term.float() if term.dtype in (torch.float16, torch.bfloat16) else term


def _grad_dtype(params: Sequence[Tensor]) -> torch.dtype:
    return torch.float64 if any(p.dtype == torch.float64 for p in params) else torch.float32


def term_gradients(
    terms: Mapping[str, Tensor],
    params: Sequence[Tensor],
    *,
    scale: float = 1.0,
    reduce: Reducer | None = None,
) -> tuple[Tensor, list[bool]]:
    """Per-term gradients as a ``(n_terms, n_params_total)`` matrix.

    Each row is the flattened gradient of one term with respect to all ``params`` (in order),
    in float64 if any parameter is float64, else float32,
    computed with :func:`torch.autograd.grad` on ``scale * term`` and divided by ``scale``, so
    the rows are true (unscaled) gradients; a parameter a term does not depend on contributes
    zeros to that row. With ``reduce`` (DDP) the matrix is averaged over ranks.

    Returns
    -------
    grads : Tensor
        The gradient matrix, on the device of the first parameter.
    used : list of bool
        Per parameter: whether any term depends on it (on this rank). Pass it to
        :func:`set_gradients` so untouched parameters keep ``grad=None``.
    """
    params = _check_params(params)
    scale = _check_scale(scale)
    names = check_terms(terms)
    sizes = [p.numel() for p in params]
    device, dtype = params[0].device, _grad_dtype(params)
    rows = []
    used = [False] * len(params)
    for k, name in enumerate(names):
        term = terms[name]
        if not term.requires_grad:
            rows.append(torch.zeros(sum(sizes), device=device, dtype=dtype))
            continue
        # retain_graph: the terms usually share one forward pass, and later rows need it.
        grads = torch.autograd.grad(
            _as_scalar(term) * scale, params, retain_graph=k < len(names) - 1, allow_unused=True
        )
        parts = []
        for i, (g, n) in enumerate(zip(grads, sizes)):
            if g is None:
                parts.append(torch.zeros(n, device=device, dtype=dtype))
            else:
                used[i] = True
                parts.append(g.reshape(-1).to(device=device, dtype=dtype))
        rows.append(torch.cat(parts) / scale)
    matrix = torch.stack(rows)
    if reduce is not None:
        matrix = reduce(matrix)
    return matrix, used


def set_gradients(
    flat: Tensor, params: Sequence[Tensor], *, scale: float = 1.0, used: Sequence[bool] | None = None
) -> None:
    """Write the flat gradient vector ``flat`` (unscaled) into ``p.grad``, times ``scale``.

    Parameters listed as unused in ``used`` get ``grad=None``.
    """
    params = _check_params(params)
    scale = _check_scale(scale)
    total = sum(p.numel() for p in params)
    if flat.ndim != 1 or flat.numel() != total:
        raise ShapeError("set_gradients flat gradient", (total,), flat.shape)
    offset = 0
    for i, p in enumerate(params):
        n = p.numel()
        if used is not None and not used[i]:
            p.grad = None
        else:
            p.grad = (flat[offset : offset + n] * scale).view_as(p).to(p.dtype).clone()
        offset += n


def _grad_of(objective: Tensor, params: list[Tensor], scale: float) -> None:
    """Set ``p.grad`` to the gradient of ``scale * objective`` (one backward pass)."""
    if not objective.requires_grad:
        raise ConfigError(
            "combiner: no loss term requires grad; the task's loss_terms must depend on the parameters"
        )
    # Without a loss scale (fp32/bf16) skip the extra multiply node: it is measurable per step
    # on the tiny full-batch problems (DeepONet, PINNs) where the graph itself is small.
    grads = torch.autograd.grad(objective * scale if scale != 1.0 else objective, params, allow_unused=True)
    for p, g in zip(params, grads):
        p.grad = g  # autograd.grad without create_graph returns tensors without history


class Combiner:
    """Base class of loss-term combiners; see the module docstring for the contract.

    Subclasses implement :meth:`combine`; ``__call__`` checks the inputs first.
    """

    name: str = "combiner"
    #: True for nonlinear combiners that average per-term gradients over ranks themselves.
    reduces_itself: bool = False

    def __call__(
        self,
        terms: Mapping[str, Tensor],
        params: Sequence[Tensor],
        *,
        scale: float = 1.0,
        reduce: Reducer | None = None,
    ) -> Tensor:
        check_terms(terms)
        params = _check_params(params)
        scale = _check_scale(scale)
        if not _differentiable(terms):
            raise ConfigError(
                f"{type(self).__name__}: none of the terms {list(terms)} requires grad; "
                "loss_terms must be computed from the trained parameters"
            )
        loss = self.combine(terms, params, scale=scale, reduce=reduce if self.reduces_itself else None)
        loss = loss.detach()
        return loss if loss.ndim == 0 else loss.reshape(())

    def combine(
        self, terms: Mapping[str, Tensor], params: list[Tensor], *, scale: float, reduce: Reducer | None
    ) -> Tensor:
        """Set ``p.grad`` for ``params`` and return the (undetached is fine) combined scalar."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """State to checkpoint (momentum buffers...); plain combiners have none."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        if state:
            raise ConfigError(f"{type(self).__name__} has no state, got keys {sorted(state)}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


@register_combiner("sum")
class Sum(Combiner):
    """Plain sum of the terms: one backward pass of ``sum(terms.values())``."""

    def combine(
        self, terms: Mapping[str, Tensor], params: list[Tensor], *, scale: float, reduce: Reducer | None
    ) -> Tensor:
        values = [_as_scalar(t) for t in terms.values()]
        total = values[0]
        for v in values[1:]:
            total = total + v
        _grad_of(total, params, scale)
        return total


@register_combiner("weighted")
class Weighted(Combiner):
    """Fixed weighted sum ``sum_k w_k * term_k``.

    Parameters
    ----------
    weights : mapping of str to float
        Non-negative finite weight per term name.
    default : float, optional
        Weight of terms not listed in ``weights``. By default every term must be listed, so a
        misspelt name fails loudly instead of silently getting weight 1.
    """

    def __init__(self, weights: Mapping[str, float], default: float | None = None) -> None:
        if not isinstance(weights, Mapping) or not weights:
            raise ConfigError(f"Weighted: expected a non-empty dict of term weights, got {weights!r}")
        self.weights = {}
        for key, w in weights.items():
            w = float(w)
            if not (math.isfinite(w) and w >= 0):
                raise ConfigError(f"Weighted: weight of {key!r} must be finite and >= 0, got {w}")
            self.weights[str(key)] = w
        if default is not None:
            default = float(default)
            if not (math.isfinite(default) and default >= 0):
                raise ConfigError(f"Weighted: default weight must be finite and >= 0, got {default}")
        self.default = default

    def combine(
        self, terms: Mapping[str, Tensor], params: list[Tensor], *, scale: float, reduce: Reducer | None
    ) -> Tensor:
        unknown = sorted(set(self.weights) - set(terms))
        if unknown:
            raise ConfigError(
                f"Weighted: weights given for {unknown} but the task's terms are {sorted(terms)}"
            )
        parts = []
        for key, term in terms.items():
            w = self.weights.get(key, self.default)
            if w is None:
                raise ConfigError(
                    f"Weighted: no weight for term {key!r}; expected weights for {sorted(terms)} "
                    f"or a default, got weights for {sorted(self.weights)}"
                )
            parts.append(_as_scalar(term) * w)
        total = parts[0]
        for part in parts[1:]:
            total = total + part
        _grad_of(total, params, scale)
        return total

    def __repr__(self) -> str:
        return f"Weighted({self.weights}, default={self.default})"
