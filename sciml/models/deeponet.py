"""DeepONet: branch and trunk networks whose dot product approximates an operator (Lu et al. 2021).

For an input function ``u`` read at ``m`` sensors and a query point ``x`` in ``d`` dimensions,

.. math::  G(u)(x) \\approx \\sum_{k=1}^{p} b_k(u(x_1), \\dots, u(x_m))\\, t_k(x) + b_0,

where the **branch** network gives the coefficients ``b_k``, the **trunk** network the basis
functions ``t_k`` (its last layer is followed by the activation, as in the paper and in DeepXDE),
and ``b_0`` is a trainable output bias, one per output.

Forms: *unstacked* (one branch with ``p`` outputs, the default); *stacked* (``p`` scalar branch
networks, the paper's first form, run as one batched product per layer, :class:`StackedMLP`); a
*POD trunk* (fixed POD modes of the training outputs plus their mean, Lu et al. 2022, fitted with
:meth:`DeepONet.fit_pod`, defined only at the points of its modes); user modules for branch or trunk
(e.g. a CNN reading grid inputs).

Several outputs (``n_outputs > 1``), by ``strategy``: ``"independent"`` (a branch and a trunk per
output), ``"split_branch"`` (the branch gives ``n_outputs * p`` coefficients in groups, one shared
trunk of ``p``), ``"split_trunk"`` (one branch of ``p``, a trunk of ``n_outputs * p`` split per output),
``"split_both"`` (both give ``p``, split into ``n_outputs`` groups of ``p / n_outputs``).

Data layouts
------------
``model(u, x)`` with ``u`` of shape ``(N, m)`` (or ``(N, *branch_shape)``) and

* ``x`` of shape ``(P, d)``: the **Cartesian product** layout, every function at the same ``P``
  points, one matrix product; returns ``(N, n_outputs, P)``;
* ``x`` of shape ``(N, P, d)``: every function at its own ``P`` points; returns ``(N, n_outputs, P)``.
  The paper's **pointwise triplets** are ``P = 1``; :meth:`DeepONet.pointwise` takes them as
  ``(N, d)`` and returns ``(N, n_outputs)``.

Sensor counts, coordinate dimensions and batch sizes are checked on every call: a wrong sensor
count is a :class:`~sciml.errors.ShapeError`, never a broadcast.

Speed
-----
With MLP branch and trunk given as widths (unstacked), all weights and the output bias live in one
flat parameter, and a fused autograd function (:mod:`sciml.models.deeponet_fused`) computes the
forward pass and every weight gradient by hand: one autograd node instead of one per layer, one
gradient tensor (one fused Adam update, one NaN check), no gradient for the data; :meth:`DeepONet.mse`
and :meth:`DeepONet.relative_l2` fuse their loss into the same node. When ``u`` or ``x`` requires
grad (derivatives for physics-informed losses, which the hand-written backward does not provide),
under autocast, or with ``fused=False``, the same weights go through plain autograd; both paths give
the same values and gradients (tested).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_name, check_positive_int
from ..errors import ConfigError, ShapeError
from .deeponet_fused import FusedDeepONet, PlanLayer
from .mlp import ACTIVATIONS, INITS, MLP, _init_linear
from .registry import register

__all__ = ["DeepONet", "StackedMLP", "STRATEGIES"]

STRATEGIES = ("single", "independent", "split_branch", "split_trunk", "split_both")

# A packed layer: (weight offset, bias offset, fan_in, fan_out) in the flat parameter.
Net = tuple[tuple[int, int, int, int], ...]


def relative_l2_per_function(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``|pred_i - target_i| / |target_i|`` per function ``i``, norms over outputs and points: ``(N,)``."""
    diff = torch.linalg.vector_norm(pred - target, dim=(1, 2))
    ref = torch.linalg.vector_norm(target, dim=(1, 2))
    return diff / ref.clamp_min(torch.finfo(ref.dtype).tiny)


def _widths(name: str, value: Any, minimum: int = 2) -> list[int]:
    if isinstance(value, (int, str)) or not isinstance(value, Sequence) or len(value) < minimum:
        raise ConfigError(f"DeepONet {name}: expected a list of at least {minimum} layer widths "
                          f"[inputs, hidden..., outputs], got {value!r}")
    return [check_positive_int(f"DeepONet {name}[{i}]", w) for i, w in enumerate(value)]


class StackedMLP(nn.Module):
    """``n_nets`` independent scalar-output MLPs, evaluated as one batched product per layer.

    Maps ``(N, in_features)`` to ``(N, n_nets)``; column ``k`` is network ``k``. Layer ``l`` holds one
    ``(n_nets, fan_in, fan_out)`` weight, so the stacked DeepONet costs one ``torch.baddbmm`` per
    layer instead of ``n_nets`` small products. Each network is initialised as an ``nn.Linear`` stack.
    """

    def __init__(self, widths: Sequence[int], n_nets: int, activation: str = "relu",
                 init: str = "xavier_normal") -> None:
        super().__init__()
        self.widths = _widths("stacked branch", widths)
        if self.widths[-1] != 1:
            raise ConfigError(f"StackedMLP: every stacked network has one output, got widths {self.widths}")
        self.n_nets = check_positive_int("StackedMLP n_nets", n_nets)
        check_name("activation", activation, ACTIVATIONS)
        check_name("init", init, INITS)
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        for fan_in, fan_out in zip(self.widths[:-1], self.widths[1:]):
            layers = [nn.Linear(fan_in, fan_out) for _ in range(self.n_nets)]
            for layer in layers:
                _init_linear(layer, init, activation)
            self.weights.append(nn.Parameter(torch.stack([la.weight.detach().T for la in layers])))
            self.biases.append(nn.Parameter(torch.stack([la.bias.detach()[None] for la in layers])))
        self.act = ACTIVATIONS[activation]()

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        h = u.unsqueeze(0).expand(self.n_nets, *u.shape)  # (K, N, m), a view
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = self.act(h)
        return h[..., 0].T  # (N, K)


@register("deeponet")
class DeepONet(nn.Module):
    """Deep operator network (see the module docstring for the forms, strategies and layouts).

    Parameters
    ----------
    branch : list of int or nn.Module
        Widths ``[m, hidden..., p_b]`` of the branch MLP (``m`` sensors), or a module mapping
        ``(N, *branch_shape)`` to ``(N, p_b)`` (e.g. a CNN on grid inputs; then ``branch_shape`` is
        required and the model cannot be rebuilt from the registry).
    trunk : list of int or nn.Module or None
        Widths ``[d, hidden..., p_t]`` of the trunk MLP (``d`` coordinates), a module mapping
        ``(M, d)`` to ``(M, p_t)`` (then ``coord_dim`` is required), or None with ``pod_modes``.
    n_outputs : int
        Number of output functions.
    strategy : str, optional
        ``"single"``, ``"independent"``, ``"split_branch"``, ``"split_trunk"`` or ``"split_both"``;
        default ``"single"`` for one output, ``"independent"`` otherwise.
    stacked : bool
        ``p`` branch networks of one output each (``branch`` widths end in ``p`` as usual).
    activation : str
        Non-linearity (``"relu"``, ``"tanh"``, ``"gelu"``, ``"silu"``, ``"sin"``) of the branch, and of
        the trunk unless ``trunk_activation`` is given.
    trunk_last_activation : bool
        Apply the trunk's activation to its outputs (the paper's and DeepXDE's choice).
    bias : bool
        Trainable output bias ``b_0`` (one per output, initialised to zero).
    init : str
        Weight initialisation of every layer (default Glorot normal with zero biases, the paper's).
    branch_shape, coord_dim : optional
        Shape of one branch input for a module branch (``m`` is its product); coordinate dimension
        for a module or POD trunk.
    pod_modes, pod_points : int, optional
        A POD trunk of ``pod_modes`` modes per output on ``pod_points`` points (``trunk=None``);
        fit it with :meth:`fit_pod` before training.
    fused : bool
        Use the fused forward/backward when possible (MLP branch and trunk given as widths).
    """

    def __init__(
        self,
        branch: Sequence[int] | nn.Module,
        trunk: Sequence[int] | nn.Module | None = None,
        n_outputs: int = 1,
        strategy: str | None = None,
        stacked: bool = False,
        activation: str = "relu",
        trunk_activation: str | None = None,
        trunk_last_activation: bool = True,
        bias: bool = True,
        init: str = "xavier_normal",
        branch_shape: Sequence[int] | None = None,
        coord_dim: int | None = None,
        pod_modes: int | None = None,
        pod_points: int | None = None,
        fused: bool = True,
    ) -> None:
        super().__init__()
        self.n_outputs = c = check_positive_int("DeepONet n_outputs", n_outputs)
        strategy = strategy or ("single" if c == 1 else "independent")
        check_name("DeepONet strategy", strategy, STRATEGIES)
        if (strategy == "single") != (c == 1):
            raise ConfigError(f"DeepONet: strategy {strategy!r} does not fit n_outputs={c}; use 'single' for "
                              "one output and a multi-output strategy otherwise")
        check_name("activation", activation, ACTIVATIONS)
        self.trunk_activation = trunk_activation or activation
        check_name("trunk activation", self.trunk_activation, ACTIVATIONS)
        check_name("init", init, INITS)
        flags = {"stacked": stacked, "bias": bias, "fused": fused}
        for flag, value in {**flags, "trunk_last_activation": trunk_last_activation}.items():
            if not isinstance(value, bool):
                raise ConfigError(f"DeepONet {flag}: expected a bool, got {value!r}")
        self.strategy, self.stacked, self.activation = strategy, stacked, activation
        self.trunk_last_activation, self.fused = trunk_last_activation, fused
        self.pod = pod_modes is not None
        copies = c if strategy == "independent" else 1
        if copies > 1 and (isinstance(branch, nn.Module) or isinstance(trunk, nn.Module)):
            raise ConfigError("DeepONet: strategy 'independent' builds one branch and trunk per output from "
                              "widths; use a split strategy with a module branch or trunk")
        if self.pod and trunk is not None:
            raise ConfigError("DeepONet: give either trunk or pod_modes, not both")

        # -- sizes and the branch --------------------------------------------------------------------
        p_branch = p_trunk = None
        if isinstance(branch, nn.Module):
            if stacked:
                raise ConfigError("DeepONet: stacked=True builds its own branch networks; give widths")
            if branch_shape is None:
                raise ConfigError("DeepONet: a module branch needs branch_shape (the shape of one input)")
            self.branch_shape = tuple(check_positive_int("branch_shape", s) for s in branch_shape)
            branch_widths = None
        else:
            branch_widths = _widths("branch", branch)
            if branch_shape is not None and math.prod(branch_shape) != branch_widths[0]:
                raise ConfigError(f"DeepONet: branch_shape {list(branch_shape)} holds "
                                  f"{math.prod(branch_shape)} values, the branch reads {branch_widths[0]}")
            self.branch_shape = tuple(branch_shape) if branch_shape is not None else (branch_widths[0],)
            p_branch = branch_widths[-1]
        self.n_sensors = math.prod(self.branch_shape)
        if self.pod:
            if strategy not in ("single", "split_branch"):
                raise ConfigError(f"DeepONet: a POD trunk has one basis per output; use strategy 'single' or "
                                  f"'split_branch', got {strategy!r}")
            k = check_positive_int("pod_modes", pod_modes)
            n_pts = check_positive_int("pod_points", pod_points)
            self.coord_dim = check_positive_int("coord_dim (POD)", coord_dim)
            self.register_buffer("pod_basis", torch.zeros(c, n_pts, k))
            self.register_buffer("pod_mean", torch.zeros(c, n_pts))
            self.register_buffer("pod_coords", torch.zeros(n_pts, self.coord_dim))
            p_trunk, trunk_widths = k, None
        elif isinstance(trunk, nn.Module):
            self.coord_dim, trunk_widths = check_positive_int("coord_dim", coord_dim), None
        else:
            if trunk is None:
                raise ConfigError("DeepONet: give trunk widths [d, hidden..., p] (or pod_modes)")
            trunk_widths = _widths("trunk", trunk)
            if coord_dim is not None and coord_dim != trunk_widths[0]:
                raise ConfigError(f"DeepONet: coord_dim={coord_dim} but the trunk reads {trunk_widths[0]} "
                                  "coordinates")
            self.coord_dim, p_trunk = trunk_widths[0], trunk_widths[-1]
        self.p = self._check_widths(p_branch, p_trunk)

        # -- parameters: one flat vector (widths, unstacked) or modules ------------------------------------
        self.packed = branch_widths is not None and trunk_widths is not None and not stacked
        self._bias_offset: int | None = None
        self._view_key: Any = None
        if self.packed:
            self._pack(branch_widths, trunk_widths, copies, init, bias)
            self.branches = self.trunks = None
        else:
            self._branch_nets = self._trunk_nets = ()
            bw, tw = branch_widths, trunk_widths
            if isinstance(branch, nn.Module):
                nets = [branch]
            elif stacked:
                nets = [StackedMLP([*bw[:-1], 1], bw[-1], activation, init) for _ in range(copies)]
            else:
                nets = [MLP(bw[0], bw[-1], bw[1:-1], activation, init=init) for _ in range(copies)]
            self.branches = nn.ModuleList(nets)
            if isinstance(trunk, nn.Module):
                nets = [trunk]
            elif tw is not None:
                nets = [MLP(tw[0], tw[-1], tw[1:-1], self.trunk_activation, init=init) for _ in range(copies)]
            else:
                nets = []  # POD
            self.trunks = nn.ModuleList(nets)
            self.output_bias = nn.Parameter(torch.zeros(c)) if bias else None
        self._trunk_act = ACTIVATIONS[self.trunk_activation]()

    # -- construction helpers ------------------------------------------------------------------------
    def _check_widths(self, p_branch: int | None, p_trunk: int | None) -> int | None:
        """Output sizes must fit the strategy; returns ``p`` per output (None until a module is called)."""
        if p_branch is None or p_trunk is None:
            return None
        c, s = self.n_outputs, self.strategy
        ok = {"single": p_branch == p_trunk, "independent": p_branch == p_trunk,
              "split_branch": p_branch == c * p_trunk, "split_trunk": p_trunk == c * p_branch,
              "split_both": p_branch == p_trunk and p_branch % c == 0}[s]
        if not ok:
            rule = {"single": "equal", "independent": "equal", "split_branch": f"branch = {c} x trunk",
                    "split_trunk": f"trunk = {c} x branch", "split_both": f"equal and divisible by {c}"}[s]
            raise ConfigError(f"DeepONet ({s}): branch gives {p_branch} and trunk {p_trunk} outputs; "
                              f"expected them {rule}")
        return {"split_branch": p_trunk, "split_trunk": p_branch, "split_both": p_branch // c}.get(s, p_trunk)

    def _pack(self, branch_widths: list[int], trunk_widths: list[int], copies: int, init: str,
              bias: bool) -> None:
        offset, chunks = 0, []

        def net(widths: list[int], act: str) -> Net:
            nonlocal offset
            layers = []
            for fan_in, fan_out in zip(widths[:-1], widths[1:]):
                linear = nn.Linear(fan_in, fan_out)  # the same initial law as an nn.Linear stack
                _init_linear(linear, init, act)
                chunks.extend([linear.weight.detach().reshape(-1), linear.bias.detach()])
                layers.append((offset, offset + fan_in * fan_out, fan_in, fan_out))
                offset += fan_in * fan_out + fan_out
            return tuple(layers)

        self._branch_nets = tuple(net(branch_widths, self.activation) for _ in range(copies))
        self._trunk_nets = tuple(net(trunk_widths, self.trunk_activation) for _ in range(copies))
        if bias:
            self._bias_offset = offset
            chunks.append(torch.zeros(self.n_outputs))
        self.weights = nn.Parameter(torch.cat(chunks))

    def _views(self) -> tuple[list[list[PlanLayer]], list[list[PlanLayer]], list[int]]:
        """The fused path's plan: per-net layer views of the flat weights and the gradient chunk sizes.

        Cached while the weights keep their storage (optimiser steps update them in place); moving
        or re-typing the model gives new storage and a new plan.
        """
        flat = self.weights
        key = (flat.data_ptr(), flat.dtype, flat.device, flat.shape)
        if self._view_key != key:
            data = flat.detach()
            sizes: list[int] = []

            def layer(w: int, b: int, i: int, o: int) -> PlanLayer:
                weight = data[w:w + i * o].view(o, i)
                sizes.extend([i * o, o])
                return weight.t(), data[b:b + o], weight, (len(sizes) - 2, len(sizes) - 1, o, i)

            branch = [[layer(*la) for la in net] for net in self._branch_nets]
            trunk = [[layer(*la) for la in net] for net in self._trunk_nets]
            if self._bias_offset is not None:
                sizes.append(self.n_outputs)
            self._view_cache = (branch, trunk, sizes)
            self._view_key = key
        return self._view_cache

    def linear_layers(self) -> dict[str, list[list[tuple[torch.Tensor, torch.Tensor]]]]:
        """``{"branch": [[(W, b), ...] per net], "trunk": [...]}``: tracked views of the packed weights."""
        if not self.packed:
            raise ConfigError("DeepONet.linear_layers: only MLP branch and trunk given as widths are packed")
        flat = self.weights
        return {name: [[(flat[w:w + i * o].view(o, i), flat[b:b + o]) for w, b, i, o in net] for net in nets]
                for name, nets in (("branch", self._branch_nets), ("trunk", self._trunk_nets))}

    @property
    def bias(self) -> torch.Tensor | None:
        """The output bias ``b_0`` (one per output), or None."""
        if not self.packed:
            return self.output_bias
        start = self._bias_offset
        return None if start is None else self.weights[start:start + self.n_outputs]

    # -- the two networks -----------------------------------------------------------------------------
    def _flat_u(self, u: torch.Tensor) -> torch.Tensor:
        if u.ndim == 2 and u.shape[1] == self.n_sensors:
            return u
        if u.ndim == len(self.branch_shape) + 1 and tuple(u.shape[1:]) == self.branch_shape:
            return u.reshape(u.shape[0], self.n_sensors)
        raise ShapeError("DeepONet branch input (sensor values)",
                         f"(N, {self.n_sensors}) or (N, *{self.branch_shape})", tuple(u.shape))

    def _outputs(self, u: torch.Tensor, xs: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Branch and trunk outputs through autograd (packed weights as tracked views, or modules)."""
        if self.packed:
            layers = self.linear_layers()

            def run(h: torch.Tensor, net: list, act: str, last: bool) -> torch.Tensor:
                fn = ACTIVATIONS[act]()
                for k, (w, b) in enumerate(net):
                    h = F.linear(h, w, b)
                    h = fn(h) if k < len(net) - 1 or last else h
                return h

            bs = [run(u, net, self.activation, False) for net in layers["branch"]]
            ts = [run(xs, net, self.trunk_activation, self.trunk_last_activation) for net in layers["trunk"]]
            return bs, ts
        bs = []
        for net in self.branches:
            arg = u if isinstance(net, (MLP, StackedMLP)) else u.reshape(-1, *self.branch_shape)
            out = net(arg)
            if out.ndim != 2 or out.shape[0] != u.shape[0]:
                raise ShapeError("DeepONet branch module output", f"({u.shape[0]}, p)", tuple(out.shape))
            bs.append(out)
        ts = []
        for net in self.trunks:
            out = net(xs)
            if out.ndim != 2 or out.shape[0] != xs.shape[0]:
                raise ShapeError("DeepONet trunk module output", f"({xs.shape[0]}, p)", tuple(out.shape))
            ts.append(self._trunk_act(out) if self.trunk_last_activation else out)
        if self.p is None:  # a module's width is known from its first output
            self.p = self._check_widths(bs[0].shape[1], ts[0].shape[1])
        return bs, ts

    def _assemble(self, bs: list[torch.Tensor], ts: list[torch.Tensor], n: int,
                  x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Branch ``(N, c_b, p)`` and trunk ``(P, c_t, p)`` or ``(N, P, c_t, p)``; ``c_b, c_t`` in {1, C}."""
        c, s = self.n_outputs, self.strategy
        if s == "independent":
            b, t = torch.stack(bs, 1), torch.stack(ts, 1)
        else:
            b, t = bs[0], ts[0]
            b = b.view(n, c, -1) if s in ("split_branch", "split_both") else b.unsqueeze(1)
            t = t.view(t.shape[0], c, -1) if s in ("split_trunk", "split_both") else t.unsqueeze(1)
        if x.ndim == 3:
            t = t.view(n, x.shape[1], t.shape[1], t.shape[2])
        return b, t

    @staticmethod
    def _merge(b: torch.Tensor, t: torch.Tensor, x_ndim: int) -> torch.Tensor:
        if x_ndim == 2:
            if b.shape[1] == 1 and t.shape[1] == 1:  # one output or a shared basis: one matrix product
                return torch.mm(b[:, 0], t[:, 0].t()).unsqueeze(1)
            return torch.einsum("ncp,mcp->ncm", b, t)
        return torch.einsum("ncp,nmcp->ncm", b, t)

    @staticmethod
    def _merge_backward(g: torch.Tensor, b: torch.Tensor, t: torch.Tensor,
                        x_ndim: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Gradients of :meth:`_merge` for ``b`` and ``t``, summed over broadcast output axes.

        (The fused path handles one output with shared points itself, as two matrix products.)
        """
        if x_ndim == 2:
            gb = torch.einsum("ncm,mcp->ncp" if b.shape[1] > 1 else "ncm,mcp->np", g, t)
            gt = torch.einsum("ncm,ncp->mcp" if t.shape[1] > 1 else "ncm,ncp->mp", g, b)
        else:
            gb = torch.einsum("ncm,nmcp->ncp" if b.shape[1] > 1 else "ncm,nmcp->np", g, t)
            gt = torch.einsum("ncm,ncp->nmcp" if t.shape[-2] > 1 else "ncm,ncp->nmp", g, b)
        return gb.reshape(b.shape), gt.reshape(t.shape)

    def _split_grads(self, gb: torch.Tensor, gt: torch.Tensor) -> tuple[list[torch.Tensor], ...]:
        """Per-network output gradients from the gradients of the assembled ``b`` and ``t``."""
        gt = gt.reshape(-1, gt.shape[-2], gt.shape[-1])
        if self.strategy == "independent":
            return [gb[:, k] for k in range(self.n_outputs)], [gt[:, k] for k in range(self.n_outputs)]
        return [gb.reshape(gb.shape[0], -1)], [gt.reshape(gt.shape[0], -1)]

    # -- forward --------------------------------------------------------------------------------------
    def forward(self, u: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """Evaluate the operator: ``u (N, m)``, ``x (P, d)`` or ``(N, P, d)`` -> ``(N, n_outputs, P)``.

        ``x`` is None (or exactly the fitted points) for a POD trunk.
        """
        u = self._flat_u(u)
        if self.pod:
            return self._forward_pod(u, x)
        d = self._check_points(u, x)
        if self._can_fuse(u, x):
            return FusedDeepONet.apply(u, x, self.weights, self, None, "mse")
        bs, ts = self._outputs(u, x.reshape(-1, d))
        b, t = self._assemble(bs, ts, u.shape[0], x)
        out = self._merge(b, t, x.ndim)
        bias = self.bias
        return out if bias is None else out + bias[:, None]

    def _check_points(self, u: torch.Tensor, x: torch.Tensor | None) -> int:
        d, n = self.coord_dim, u.shape[0]
        if x is None or x.ndim not in (2, 3) or x.shape[-1] != d or (x.ndim == 3 and x.shape[0] != n):
            raise ShapeError("DeepONet query points", f"(P, {d}) or ({n}, P, {d})",
                             None if x is None else tuple(x.shape))
        return d

    def _can_fuse(self, u: torch.Tensor, x: torch.Tensor) -> bool:
        # The hand-written backward gives weight gradients only: inputs that need gradients (PDE
        # residuals through the trunk) and autocast (mixed dtypes) take the autograd path.
        return (self.packed and self.fused and not (u.requires_grad or x.requires_grad)
                and not torch.is_autocast_enabled(u.device.type))

    def mse(self, u: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean squared error of ``self(u, x)`` against ``y (N, n_outputs, P)``, fused with the forward.

        Equal to ``F.mse_loss(self(u, x), y)``; on the fused path the loss and its gradient are
        part of the same autograd node, which saves two kernels and a node per step.
        """
        return self._loss(u, x, y, "mse")

    def relative_l2(self, u: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean over functions of ``|self(u, x)_i - y_i| / |y_i|`` (norms over outputs and points), fused.

        The loss that matches the error the operator papers report; on the fused path its gradient
        is written by the same autograd node as the network's.
        """
        return self._loss(u, x, y, "rel_l2")

    def _loss(self, u: torch.Tensor, x: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
        u = self._flat_u(u)
        if not self.pod:
            self._check_points(u, x)
            expected = (u.shape[0], self.n_outputs, x.shape[-2])
            if not isinstance(y, torch.Tensor) or tuple(y.shape) != expected:
                raise ShapeError("DeepONet targets", expected, tuple(getattr(y, "shape", ())))
            if self._can_fuse(u, x) and not y.requires_grad:
                return FusedDeepONet.apply(u, x, self.weights, self, y, kind)
        pred = self(u, x)
        if self.pod and pred.shape != getattr(y, "shape", None):  # the other forms were checked above
            raise ShapeError("DeepONet targets", tuple(pred.shape), tuple(getattr(y, "shape", ())))
        return F.mse_loss(pred, y) if kind == "mse" else relative_l2_per_function(pred, y).mean()

    def pointwise(self, u: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Triplet layout: function ``i`` at its one point ``x[i]``; ``(N, m), (N, d) -> (N, n_outputs)``."""
        if x.ndim != 2 or x.shape[0] != u.shape[0] or x.shape[1] != self.coord_dim:
            raise ShapeError("DeepONet pointwise query points", f"({u.shape[0]}, {self.coord_dim})",
                             tuple(x.shape))
        if self.pod:
            raise ConfigError("DeepONet: a POD trunk is only defined at its own points; use forward(u)")
        return self(u, x.unsqueeze(1))[:, :, 0]

    # -- POD trunk ------------------------------------------------------------------------------------
    def _forward_pod(self, u: torch.Tensor, x: torch.Tensor | None) -> torch.Tensor:
        if x is not None and not (x.shape == self.pod_coords.shape and torch.equal(x, self.pod_coords)):
            raise ConfigError(f"DeepONet: a POD trunk is defined only at the {self.pod_coords.shape[0]} "
                              f"points of its modes; pass x=None or those points, got {tuple(x.shape)}")
        (b,), _ = self._outputs(u, u[:0, :0])
        b = b.view(u.shape[0], self.n_outputs, -1)
        out = torch.einsum("nck,cmk->ncm", b, self.pod_basis) + self.pod_mean
        return out if self.output_bias is None else out + self.output_bias[:, None]

    @torch.no_grad()
    def fit_pod(self, y: Any, x: Any) -> np.ndarray:
        """Fit the POD trunk to training outputs ``y (N, n_outputs, P)`` at points ``x (P, d)``.

        The modes are the leading right singular vectors of the centred outputs, scaled by
        ``sqrt(P)`` to unit root-mean-square so that the branch's coefficients stay O(1). Returns the
        fraction of the centred variance the kept modes explain, per output.
        """
        if not self.pod:
            raise ConfigError("DeepONet.fit_pod: the model was built without pod_modes")
        y = torch.as_tensor(y).detach().double().cpu()
        x = torch.as_tensor(x).detach().double().cpu()
        c, n_pts, k = self.pod_basis.shape
        if y.ndim != 3 or tuple(y.shape[1:]) != (c, n_pts):
            raise ShapeError("fit_pod outputs", f"(N, {c}, {n_pts})", tuple(y.shape))
        if tuple(x.shape) != (n_pts, self.coord_dim):
            raise ShapeError("fit_pod points", (n_pts, self.coord_dim), tuple(x.shape))
        if y.shape[0] < k:
            raise ConfigError(f"fit_pod: {k} modes need at least {k} training functions, got {y.shape[0]}")
        explained = np.zeros(c)
        for i in range(c):
            mean = y[:, i].mean(0)
            _, s, vh = torch.linalg.svd(y[:, i] - mean, full_matrices=False)
            self.pod_basis[i] = (vh[:k].T * math.sqrt(n_pts)).to(self.pod_basis)
            self.pod_mean[i] = mean.to(self.pod_mean)
            explained[i] = float((s[:k] ** 2).sum() / (s**2).sum().clamp_min(1e-300))
        self.pod_coords.copy_(x.to(self.pod_coords))
        return explained

    def extra_repr(self) -> str:
        trunk = f"pod_modes={self.pod_basis.shape[-1]}" if self.pod else f"coord_dim={self.coord_dim}"
        return (f"n_sensors={self.n_sensors}, {trunk}, n_outputs={self.n_outputs}, "
                f"strategy={self.strategy!r}, stacked={self.stacked}, packed={self.packed}")
