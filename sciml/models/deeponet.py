"""DeepONet: branch and trunk networks whose dot product approximates an operator (Lu et al. 2021).

For an input function ``u`` read at ``m`` sensors and a query point ``x`` in ``d`` dimensions,

.. math::  G(u)(x) \\approx \\sum_{k=1}^{p} b_k(u(x_1), \\dots, u(x_m))\\, t_k(x) + b_0,

where the **branch** network gives the coefficients ``b_k`` and the **trunk** network the basis
functions ``t_k`` (the trunk's last layer is followed by the activation, as in the paper and in
DeepXDE, since its outputs are basis functions), and ``b_0`` is a trainable output bias.

Forms
-----
* *unstacked* (default): one branch network with ``p`` outputs;
* *stacked*: ``p`` independent branch networks with one output each (the paper's first form),
  evaluated together as one batched matrix product per layer;
* *POD trunk*: the trunk is replaced by fixed POD modes of the training outputs (plus their mean),
  fitted with :meth:`DeepONet.fit_pod` (Lu et al. 2022); it only knows the points of its modes.

Several outputs (``n_outputs > 1``), by ``strategy``:

* ``"independent"``: one branch and one trunk per output;
* ``"split_branch"``: the branch gives ``n_outputs * p`` coefficients, split into groups, one per
  output, all dotted with one shared trunk of ``p`` functions;
* ``"split_trunk"``: one branch of ``p`` coefficients, a trunk of ``n_outputs * p`` functions split
  per output;
* ``"split_both"``: both give ``p`` values, split into ``n_outputs`` groups of ``p / n_outputs``.

Data layouts
------------
``model(u, x)`` with ``u`` of shape ``(N, m)`` (or ``(N, *branch_shape)`` for a user module) and

* ``x`` of shape ``(P, d)``: the **Cartesian product** layout, every function evaluated at the
  same ``P`` points with one einsum; returns ``(N, n_outputs, P)``;
* ``x`` of shape ``(N, P, d)``: every function at its own ``P`` points; returns ``(N, n_outputs, P)``.
  The **pointwise triplets** of the paper (one query point per function) are ``P = 1``, and
  :meth:`DeepONet.pointwise` takes them as ``(N, d)`` and returns ``(N, n_outputs)``.

Sensor counts, coordinate dimensions and batch sizes are checked on every call: a wrong sensor
count is a :class:`~sciml.errors.ShapeError`, never a broadcast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .._checks import check_name, check_positive_int
from ..errors import ConfigError, ShapeError
from .mlp import ACTIVATIONS, INITS, MLP
from .registry import register

__all__ = ["DeepONet", "StackedMLP", "STRATEGIES"]

STRATEGIES = ("single", "independent", "split_branch", "split_trunk", "split_both")


def _widths(name: str, value: Any, minimum: int = 2) -> list[int]:
    if isinstance(value, (int, str)) or not isinstance(value, Sequence) or len(value) < minimum:
        raise ConfigError(f"DeepONet {name}: expected a list of at least {minimum} layer widths "
                          f"[inputs, hidden..., outputs], got {value!r}")
    return [check_positive_int(f"DeepONet {name}[{i}]", w) for i, w in enumerate(value)]


class StackedMLP(nn.Module):
    """``n_nets`` independent MLPs with scalar outputs, evaluated as one batched product per layer.

    Maps ``(N, in_features)`` to ``(N, n_nets)``: column ``k`` is the output of network ``k``. The
    weights of layer ``l`` are one ``(n_nets, fan_in, fan_out)`` tensor, so the stacked DeepONet
    costs one ``torch.baddbmm`` per layer instead of ``n_nets`` small matrix products. Each
    network is initialised on its own, exactly as ``n_nets`` separate ``nn.Linear`` stacks would be.
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
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(self.widths[:-1], self.widths[1:]):
            w = torch.empty(self.n_nets, fan_in, fan_out)
            b = torch.zeros(self.n_nets, 1, fan_out)
            for k in range(self.n_nets):  # the same law as an nn.Linear(fan_in, fan_out) per network
                layer = nn.Linear(fan_in, fan_out)
                if init == "xavier_normal":
                    nn.init.xavier_normal_(layer.weight)
                elif init == "xavier_uniform":
                    nn.init.xavier_uniform_(layer.weight)
                elif init in ("kaiming_uniform", "kaiming_normal"):
                    fn = nn.init.kaiming_uniform_ if init == "kaiming_uniform" else nn.init.kaiming_normal_
                    fn(layer.weight, nonlinearity="relu")
                w[k] = layer.weight.detach().T
                if init == "default":
                    b[k, 0] = layer.bias.detach()
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(b))
        self.act = ACTIVATIONS[activation]()

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        h = u.unsqueeze(0).expand(self.n_nets, *u.shape)  # (K, N, m) view, no copy
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
        ``(N, *branch_shape)`` to ``(N, p_b)`` (e.g. a CNN reading grid inputs; then ``branch_shape``
        is required and the model is not buildable from the registry).
    trunk : list of int or nn.Module or None
        Widths ``[d, hidden..., p_t]`` of the trunk MLP (``d`` coordinates), a module mapping
        ``(..., d)`` to ``(..., p_t)`` (then ``coord_dim`` is required), or None with ``pod_modes``.
    n_outputs : int
        Number of output functions.
    strategy : str, optional
        ``"single"`` (one output), ``"independent"``, ``"split_branch"``, ``"split_trunk"`` or
        ``"split_both"``; default ``"single"`` for one output, ``"independent"`` otherwise.
    stacked : bool
        ``p`` branch networks with one output each (``branch`` widths then end in ``p`` as usual).
    activation : str
        Non-linearity of both networks (``"relu"``, ``"tanh"``, ``"gelu"``, ``"silu"``, ``"sin"``).
    trunk_activation : str, optional
        Overrides ``activation`` for the trunk.
    trunk_last_activation : bool
        Apply the trunk's activation to its outputs (the paper's and DeepXDE's choice).
    bias : bool
        Trainable output bias ``b_0`` (one per output).
    init : str
        Weight initialisation of every layer (default Glorot normal with zero biases, the paper's).
    branch_shape : list of int, optional
        Shape of one branch input for a module branch (``m`` is its product).
    coord_dim : int, optional
        Coordinate dimension for a module or POD trunk.
    pod_modes : int, optional
        Use a POD trunk of this many modes per output (``trunk`` must be None); fit it with
        :meth:`fit_pod` before training.
    pod_points : int, optional
        Number of points of the POD modes (required with ``pod_modes``).
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
    ) -> None:
        super().__init__()
        self.n_outputs = check_positive_int("DeepONet n_outputs", n_outputs)
        strategy = strategy or ("single" if self.n_outputs == 1 else "independent")
        check_name("DeepONet strategy", strategy, STRATEGIES)
        if (strategy == "single") != (self.n_outputs == 1):
            raise ConfigError(f"DeepONet: strategy {strategy!r} does not fit n_outputs={self.n_outputs}; "
                              "use 'single' for one output and a multi-output strategy otherwise")
        check_name("activation", activation, ACTIVATIONS)
        trunk_activation = trunk_activation or activation
        check_name("trunk activation", trunk_activation, ACTIVATIONS)
        check_name("init", init, INITS)
        for flag, value in (("stacked", stacked), ("bias", bias), ("trunk_last_activation", trunk_last_activation)):
            if not isinstance(value, bool):
                raise ConfigError(f"DeepONet {flag}: expected a bool, got {value!r}")
        self.strategy, self.stacked = strategy, stacked
        self.pod = pod_modes is not None
        copies = self.n_outputs if strategy == "independent" else 1

        # -- branch ------------------------------------------------------------------------------
        if isinstance(branch, nn.Module):
            if stacked:
                raise ConfigError("DeepONet: stacked=True builds its own branch networks; give widths")
            if branch_shape is None:
                raise ConfigError("DeepONet: a module branch needs branch_shape (the shape of one input)")
            self.branch_shape = tuple(check_positive_int("branch_shape", s) for s in branch_shape)
            if copies > 1:
                raise ConfigError("DeepONet: strategy 'independent' needs branch widths (it builds one branch "
                                  "per output); use a split strategy with a module branch")
            self.branches = nn.ModuleList([branch])
            p_branch = None  # known after the first call only; checked then
        else:
            widths = _widths("branch", branch)
            if branch_shape is not None and math.prod(branch_shape) != widths[0]:
                raise ConfigError(f"DeepONet: branch_shape {list(branch_shape)} has {math.prod(branch_shape)} "
                                  f"values, the branch reads {widths[0]}")
            self.branch_shape = tuple(branch_shape) if branch_shape is not None else (widths[0],)
            if stacked:
                nets = [StackedMLP([*widths[:-1], 1], widths[-1], activation, init) for _ in range(copies)]
            else:
                nets = [MLP(widths[0], widths[-1], widths[1:-1], activation, init=init) for _ in range(copies)]
            self.branches = nn.ModuleList(nets)
            p_branch = widths[-1]
        self.n_sensors = math.prod(self.branch_shape)

        # -- trunk -------------------------------------------------------------------------------
        if self.pod:
            if trunk is not None:
                raise ConfigError("DeepONet: give either trunk or pod_modes, not both")
            if strategy not in ("single", "split_branch"):
                raise ConfigError(f"DeepONet: a POD trunk has one basis per output and needs strategy "
                                  f"'single' or 'split_branch', got {strategy!r}")
            k = check_positive_int("pod_modes", pod_modes)
            n_pts = check_positive_int("pod_points", pod_points)
            self.coord_dim = check_positive_int("coord_dim (POD)", coord_dim)
            self.register_buffer("pod_basis", torch.zeros(self.n_outputs, n_pts, k))
            self.register_buffer("pod_mean", torch.zeros(self.n_outputs, n_pts))
            self.register_buffer("pod_coords", torch.zeros(n_pts, self.coord_dim))
            self.trunks = nn.ModuleList()
            p_trunk = k
        elif isinstance(trunk, nn.Module):
            if copies > 1:
                raise ConfigError("DeepONet: strategy 'independent' needs trunk widths; use a split strategy")
            self.coord_dim = check_positive_int("coord_dim", coord_dim)
            self.trunks = nn.ModuleList([trunk])
            p_trunk = None
        else:
            if trunk is None:
                raise ConfigError("DeepONet: give trunk widths [d, hidden..., p] (or pod_modes)")
            widths = _widths("trunk", trunk)
            if coord_dim is not None and coord_dim != widths[0]:
                raise ConfigError(f"DeepONet: coord_dim={coord_dim} but the trunk reads {widths[0]} coordinates")
            self.coord_dim = widths[0]
            self.trunks = nn.ModuleList(
                [MLP(widths[0], widths[-1], widths[1:-1], trunk_activation, init=init) for _ in range(copies)])
            p_trunk = widths[-1]
        self.trunk_act = ACTIVATIONS[trunk_activation]() if trunk_last_activation and not self.pod else None
        self._check_widths(p_branch, p_trunk)
        self.bias = nn.Parameter(torch.zeros(self.n_outputs)) if bias else None

    def _check_widths(self, p_branch: int | None, p_trunk: int | None) -> None:
        """Branch and trunk output sizes must fit the strategy (checked at the first call for modules)."""
        if p_branch is None or p_trunk is None:
            return
        c, s = self.n_outputs, self.strategy
        expected = {
            "single": (p_trunk, p_trunk), "independent": (p_trunk, p_trunk),
            "split_branch": (c * p_trunk, p_trunk), "split_trunk": (p_branch, c * p_branch),
            "split_both": (p_trunk, p_branch),
        }[s]
        if (p_branch, p_trunk) != expected or (s == "split_both" and p_branch % c):
            rule = {
                "single": "equal", "independent": "equal", "split_branch": f"branch = {c} x trunk",
                "split_trunk": f"trunk = {c} x branch", "split_both": f"equal and divisible by {c}",
            }[s]
            raise ConfigError(f"DeepONet ({s}): branch gives {p_branch} and trunk {p_trunk} outputs; "
                              f"expected them {rule}")
        self.p = p_trunk if s in ("single", "independent", "split_branch") else p_branch
        if s == "split_both":
            self.p = p_branch // c

    # -- the two networks -------------------------------------------------------------------------
    def branch_features(self, u: torch.Tensor) -> torch.Tensor:
        """Branch coefficients ``(N, n_outputs, p)`` for sensor values ``(N, m)`` or ``(N, *branch_shape)``."""
        if u.ndim == 2 and u.shape[1] == self.n_sensors:
            flat = u
        elif tuple(u.shape[1:]) == self.branch_shape and u.ndim == len(self.branch_shape) + 1:
            flat = u.reshape(u.shape[0], self.n_sensors)
        else:
            raise ShapeError("DeepONet branch input (sensor values)",
                             f"(N, {self.n_sensors}) or (N, *{self.branch_shape})", tuple(u.shape))
        if len(self.branches) > 1:  # independent: one branch per output
            return torch.stack([net(flat) for net in self.branches], dim=1)
        net = self.branches[0]
        out = net(flat if isinstance(net, (MLP, StackedMLP)) else flat.reshape(-1, *self.branch_shape))
        if out.ndim != 2 or out.shape[0] != u.shape[0]:
            raise ShapeError("DeepONet branch module output", f"({u.shape[0]}, p)", tuple(out.shape))
        if not hasattr(self, "p"):
            self._resolve_module_widths(branch=out.shape[1])
        c = self.n_outputs
        if self.strategy == "split_branch":
            return out.reshape(out.shape[0], c, -1)
        if self.strategy == "split_both":
            return out.reshape(out.shape[0], c, -1)
        return out.unsqueeze(1)  # single, split_trunk: (N, 1, p), broadcast over outputs

    def trunk_features(self, x: torch.Tensor) -> torch.Tensor:
        """Trunk basis ``(..., n_outputs or 1, p)`` at points ``(..., d)``."""
        if len(self.trunks) > 1:
            feats = torch.stack([self._trunk_one(net, x) for net in self.trunks], dim=-2)
            return feats
        t = self._trunk_one(self.trunks[0], x)
        if not hasattr(self, "p"):
            self._resolve_module_widths(trunk=t.shape[-1])
        if self.strategy in ("split_trunk", "split_both"):
            return t.reshape(*t.shape[:-1], self.n_outputs, -1)
        return t.unsqueeze(-2)

    def _trunk_one(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        t = net(x)
        return self.trunk_act(t) if self.trunk_act is not None else t

    def _resolve_module_widths(self, branch: int | None = None, trunk: int | None = None) -> None:
        self._pending = getattr(self, "_pending", {})
        if branch is not None:
            self._pending["branch"] = branch
        if trunk is not None:
            self._pending["trunk"] = trunk
        if "branch" in self._pending and "trunk" in self._pending:
            self._check_widths(self._pending["branch"], self._pending["trunk"])

    # -- forward -----------------------------------------------------------------------------------
    def forward(self, u: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """Evaluate the operator; see the module docstring for the layouts.

        Parameters
        ----------
        u : Tensor
            Sensor values ``(N, m)`` (or ``(N, *branch_shape)``).
        x : Tensor, optional
            Shared points ``(P, d)`` or per-function points ``(N, P, d)``; None (or the fitted
            points) for a POD trunk.

        Returns
        -------
        Tensor
            ``(N, n_outputs, P)``.
        """
        if self.pod:
            return self._forward_pod(u, x)
        if x is None:
            raise ShapeError("DeepONet query points", f"(P, {self.coord_dim}) or (N, P, {self.coord_dim})", None)
        if x.ndim not in (2, 3) or x.shape[-1] != self.coord_dim:
            raise ShapeError("DeepONet query points", f"(P, {self.coord_dim}) or (N, P, {self.coord_dim})",
                             tuple(x.shape))
        if x.ndim == 3 and x.shape[0] != u.shape[0]:
            raise ShapeError("DeepONet per-function query points", f"({u.shape[0]}, P, {self.coord_dim})",
                             tuple(x.shape))
        b = self.branch_features(u)  # (N, c_b, p) with c_b in {1, c}
        t = self.trunk_features(x)  # (P, c_t, p) or (N, P, c_t, p)
        if x.ndim == 2:
            if b.shape[1] == 1 and t.shape[1] == 1:  # one output or a shared basis: a plain matmul
                out = torch.matmul(b[:, 0], t[:, 0].T).unsqueeze(1)
            else:
                out = torch.einsum("ncp,mcp->ncm", b, t)
        else:
            out = torch.einsum("ncp,nmcp->ncm", b, t)
        if self.bias is not None:
            out = out + self.bias[:, None]
        return out

    def pointwise(self, u: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Triplet layout: function ``i`` at its one point ``x[i]``; ``(N, m), (N, d) -> (N, n_outputs)``."""
        if x.ndim != 2 or x.shape[0] != u.shape[0] or x.shape[1] != self.coord_dim:
            raise ShapeError("DeepONet pointwise query points", f"({u.shape[0]}, {self.coord_dim})", tuple(x.shape))
        if self.pod:
            raise ConfigError("DeepONet: a POD trunk is only defined at its own points; use forward(u)")
        b = self.branch_features(u)  # (N, c_b, p)
        t = self.trunk_features(x)  # (N, c_t, p)
        out = (b * t).sum(-1)
        if self.bias is not None:
            out = out + self.bias
        return out

    # -- POD trunk --------------------------------------------------------------------------------
    def _forward_pod(self, u: torch.Tensor, x: torch.Tensor | None) -> torch.Tensor:
        if x is not None and not (x.shape == self.pod_coords.shape and torch.equal(x, self.pod_coords)):
            raise ConfigError(
                f"DeepONet: a POD trunk is defined only at the {self.pod_coords.shape[0]} points of its modes; "
                f"pass x=None or exactly those points, got {tuple(x.shape)}")
        b = self.branch_features(u)  # (N, c, k)
        out = torch.einsum("nck,cmk->ncm", b, self.pod_basis) + self.pod_mean
        if self.bias is not None:
            out = out + self.bias[:, None]
        return out

    @torch.no_grad()
    def fit_pod(self, y: Any, x: Any) -> np.ndarray:
        """Fit the POD trunk to training outputs ``y`` ``(N, n_outputs, P)`` at points ``x`` ``(P, d)``.

        The modes are the leading right singular vectors of the centred outputs, scaled by
        ``sqrt(P)`` so that they have unit root-mean-square (branch coefficients then stay O(1)).
        Returns the fraction of the centred variance the kept modes explain, per output.
        """
        if not self.pod:
            raise ConfigError("DeepONet.fit_pod: the model was built without pod_modes")
        y = torch.as_tensor(np.asarray(y, dtype=np.float64) if not torch.is_tensor(y) else y.double().cpu())
        x = torch.as_tensor(np.asarray(x, dtype=np.float64) if not torch.is_tensor(x) else x.double().cpu())
        c, n_pts, k = self.pod_basis.shape
        if y.ndim != 3 or y.shape[1:] != (c, n_pts):
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
        return (f"n_sensors={self.n_sensors}, {trunk}, n_outputs={self.n_outputs}, strategy={self.strategy!r}, "
                f"stacked={self.stacked}, bias={self.bias is not None}")
