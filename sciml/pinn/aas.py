"""Adversarial adaptive sampling (AAS; Tang, Zhai, Wan & Yang, ICLR 2024).

The PINN and a density ``p`` of collocation points play a min-max game

    min_u max_p  J(u, p) = int r(x; u)^2 p(x) dx - beta int |grad p(x)|^2 dx,

the network ``u`` lowering the squared residual where the points are, the density moving the points
to where the residual is large. The H^1 semi-norm penalty (our reading of the paper's regulariser)
keeps ``p`` from collapsing onto the largest residual: for fixed ``u`` (and ``p`` > 0) the maximiser
solves ``-2 beta Lap p = r^2 - c`` with Neumann data, so that ``max_p J`` is the mean of ``r^2`` plus
``1 / (4 beta)`` times the squared H^{-1} norm of ``r^2 - mean r^2``, a linearised Wasserstein-2
distance between the residual-induced distribution and the uniform one. The paper's density is
KRnet, a normalising flow with bounded support.

This module provides

* :class:`BoundedFlow`: a normalising flow on a box with an exact density. Points of the unit cube go
  through an element-wise monotone rational-quadratic spline (Durkan et al. 2019) and coupling layers
  whose splines on one half of the coordinates are conditioned on the other half (the coupling
  structure of KRnet, with splines that map ``[0, 1]`` onto itself instead of KRnet's affine maps and
  final logistic squashing), then the unit cube is mapped affinely onto the box. The base density is
  uniform, so with the zero-initialised output layers the flow starts as the uniform distribution.
* :class:`AAS`: a :class:`~sciml.pinn.sampling.Sampler` that, every ``every`` PDE steps, runs
  ``ascent_steps`` steps of Adam *ascent* of ``J`` over the flow's weights (``u`` fixed) and redraws
  the interior collocation points from the flow. The PDE steps in between are those of the plain
  :class:`~sciml.pinn.PINNTask`: the mean squared residual on points drawn from ``p`` is the Monte
  Carlo estimate of ``int r^2 p``.

**Estimator.** Samplers receive the residual as a numpy function of points (no gradient with respect
to ``x``), so ``J`` is estimated by importance sampling on sets of ``n_candidates`` points
``x_i ~ q``, the mixture ``(1 - eta) p_old + eta U`` of the flow when the set is drawn and the uniform
density (``eta = uniform_fraction``, which bounds the weights ``p / q <= p / (eta U)``); a stage
draws ``rounds`` fresh sets and shares its ascent steps between them::

    J(p) ~ mean_i [ r~(x_i)^2 p(x_i) - beta |grad p(x_i)|^2 ] / q(x_i).

Densities and gradients are those of the unit cube (``y = (x - lo) / (hi - lo)``) and the squared
residual is divided by its uniform mean, ``r~^2 = r^2 / E_U[r^2]``, so that ``beta`` does not depend
on the size of the box or the scale of the residual: the uniform density has ``J = 1``.
``grad p = p grad log p`` is differentiated through the flow's inverse (double back-propagation).
The new points are drawn from the same mixture, so that a fraction ``eta`` of them stays uniform.
Each round keeps the best iterate of its ascent (on its own set): once the density is sharp, Adam
can overshoot into a density with a large penalty, and the points would then be drawn from a density
worse than the one the round started from. On a single set the flow can also fit the set's noise
(high ``J`` on the set, low residual on fresh points: ``residual_ratio`` in :attr:`AAS.history`
tells), which fresh sets prevent.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import as_float_array, check_positive_int
from ..errors import ConfigError, NonFiniteError, ShapeError
from .sampling import ResidualFn, Sampler, _box

__all__ = ["BoundedFlow", "AAS"]

_MIN_WIDTH = 1e-3  # smallest bin width / height of a spline (as a fraction of [0, 1])
_MIN_SLOPE = 1e-3  # smallest derivative at a knot
_SLOPE_SHIFT = math.log(math.expm1(1.0 - _MIN_SLOPE))  # softplus(0 + shift) + min = 1: identity at zero


def _finite_positive(name: str, value: Any, allow_zero: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ConfigError(f"{name}: expected a finite number {'>=' if allow_zero else '>'} 0, got {value!r}")
    return v


# -- monotone rational-quadratic splines on [0, 1] ----------------------------------------------------
def _spline_params(raw: Tensor, n_bins: int) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Knots and slopes from unconstrained ``raw (..., 3K + 1)``: x-knots, y-knots, widths, heights, slopes."""
    w_raw, h_raw, d_raw = raw[..., :n_bins], raw[..., n_bins : 2 * n_bins], raw[..., 2 * n_bins :]
    widths = _MIN_WIDTH + (1 - _MIN_WIDTH * n_bins) * torch.softmax(w_raw, dim=-1)
    heights = _MIN_WIDTH + (1 - _MIN_WIDTH * n_bins) * torch.softmax(h_raw, dim=-1)
    slopes = _MIN_SLOPE + F.softplus(d_raw + _SLOPE_SHIFT)
    xk = F.pad(torch.cumsum(widths, dim=-1), (1, 0))
    yk = F.pad(torch.cumsum(heights, dim=-1), (1, 0))
    # the last knot is 1 up to rounding; pin it so that the spline maps [0, 1] exactly onto [0, 1]
    xk = torch.cat([xk[..., :-1], torch.ones_like(xk[..., -1:])], dim=-1)
    yk = torch.cat([yk[..., :-1], torch.ones_like(yk[..., -1:])], dim=-1)
    return xk, yk, xk[..., 1:] - xk[..., :-1], yk[..., 1:] - yk[..., :-1], slopes


def _spline(v: Tensor, raw: Tensor, n_bins: int, inverse: bool) -> tuple[Tensor, Tensor]:
    """Apply the spline (or its inverse) element-wise to ``v (..., m)`` in [0, 1]; log |dv'/dv| per element.

    ``raw`` has shape ``(..., m, 3K + 1)`` (broadcast over the leading axes).
    """
    xk, yk, widths, heights, slopes = _spline_params(raw, n_bins)
    knots = yk if inverse else xk
    v = v.clamp(0.0, 1.0)
    # bin of every value: the number of inner knots at or below it
    idx = (v[..., None] >= knots[..., 1:-1]).sum(-1, keepdim=True)

    def pick(t: Tensor) -> Tensor:
        return torch.gather(t.expand(*idx.shape[:-1], t.shape[-1]), -1, idx)[..., 0]

    x0, y0, w, h = pick(xk), pick(yk), pick(widths), pick(heights)
    d0, d1 = pick(slopes), pick(slopes[..., 1:])
    s = h / w
    if inverse:
        dy = v - y0
        a = h * (s - d0) + dy * (d1 + d0 - 2 * s)
        b = h * d0 - dy * (d1 + d0 - 2 * s)
        c = -s * dy
        # the root in [0, 1] of a xi^2 + b xi + c, in the form that is stable when a -> 0
        xi = (2 * c) / (-b - torch.sqrt((b * b - 4 * a * c).clamp_min(0.0)))
        xi = xi.clamp(0.0, 1.0)
        out = x0 + xi * w
    else:
        xi = (v - x0) / w
        out = y0 + h * (s * xi * xi + d0 * xi * (1 - xi)) / (s + (d1 + d0 - 2 * s) * xi * (1 - xi))
    one = xi * (1 - xi)
    den = s + (d1 + d0 - 2 * s) * one
    logdet = 2 * torch.log(s) + torch.log(d1 * xi * xi + 2 * s * one + d0 * (1 - xi) ** 2) - 2 * torch.log(den)
    return out.clamp(0.0, 1.0), (-logdet if inverse else logdet)


class _Coupling(nn.Module):
    """Spline of the coordinates ``mask`` conditioned on the others (an MLP of them gives the knots)."""

    def __init__(self, mask: np.ndarray, n_bins: int, hidden: int, depth: int) -> None:
        super().__init__()
        self.register_buffer("cond_idx", torch.as_tensor(np.flatnonzero(~mask)), persistent=False)
        self.register_buffer("out_idx", torch.as_tensor(np.flatnonzero(mask)), persistent=False)
        self.n_bins = n_bins
        n_in, n_out = int((~mask).sum()), int(mask.sum())
        layers: list[nn.Module] = []
        width = n_in
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.Tanh()]
            width = hidden
        last = nn.Linear(width, n_out * (3 * n_bins + 1))
        layers.append(last)
        self.net = nn.Sequential(*layers)
        self.n_out = n_out
        self._last = last

    def forward(self, y: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        cond = y[:, self.cond_idx]
        # centre the conditioning coordinates: tanh layers then start in their linear range
        raw = self.net(2 * cond - 1).reshape(len(y), self.n_out, 3 * self.n_bins + 1)
        out, logdet = _spline(y[:, self.out_idx], raw, self.n_bins, inverse)
        y = y.index_copy(1, self.out_idx, out)
        return y, logdet.sum(-1)


class BoundedFlow(nn.Module):
    """Normalising flow with support the box ``[lo, hi]`` and an exact density (see the module docstring).

    Parameters
    ----------
    lo, hi : sequence of float
        Corners of the box (``d >= 1`` coordinates, ``lo < hi``).
    n_couplings : int
        Coupling layers after the element-wise spline; they alternate which half of the coordinates
        they transform (in 1-D there are none: the element-wise spline is the whole flow).
    n_bins : int
        Bins of every rational-quadratic spline.
    hidden, depth : int
        Width and number of hidden layers of the conditioners.
    seed : int
        Seed of the initial weights (the output layers start at zero: the flow starts uniform).
    dtype : torch.dtype
        float64 by default: the importance weights are ratios of densities.
    """

    def __init__(self, lo: Any, hi: Any, *, n_couplings: int = 4, n_bins: int = 16, hidden: int = 32,
                 depth: int = 2, seed: int = 0, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        lo_, hi_ = as_float_array("BoundedFlow lo", lo).reshape(-1), as_float_array("BoundedFlow hi", hi).reshape(-1)
        if lo_.shape != hi_.shape or lo_.size == 0:
            raise ShapeError("BoundedFlow lo/hi", ("d",), (lo_.shape, hi_.shape))
        if np.any(hi_ <= lo_):
            raise ConfigError(f"BoundedFlow: expected lo < hi on every axis, got lo={lo_}, hi={hi_}")
        if not isinstance(n_couplings, int) or isinstance(n_couplings, bool) or n_couplings < 0:
            raise ConfigError(f"BoundedFlow n_couplings: expected an int >= 0, got {n_couplings!r}")
        self.n_bins = check_positive_int("BoundedFlow n_bins", n_bins)
        hidden = check_positive_int("BoundedFlow hidden", hidden)
        depth = check_positive_int("BoundedFlow depth", depth)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ConfigError(f"BoundedFlow seed: expected a non-negative int, got {seed!r}")
        if dtype not in (torch.float32, torch.float64):
            raise ConfigError(f"BoundedFlow dtype: expected torch.float32 or torch.float64, got {dtype!r}")
        self.dim = len(lo_)
        self.register_buffer("lo", torch.as_tensor(lo_, dtype=dtype))
        self.register_buffer("hi", torch.as_tensor(hi_, dtype=dtype))
        self.elementwise = nn.Parameter(torch.zeros(self.dim, 3 * self.n_bins + 1, dtype=dtype))
        couplings = []
        if self.dim > 1:
            for k in range(n_couplings):
                mask = (np.arange(self.dim) + k) % 2 == 0  # even, then odd coordinates, ...
                couplings.append(_Coupling(mask, self.n_bins, hidden, depth))
        self.couplings = nn.ModuleList(couplings)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for layer in self.couplings:
                for m in layer.net:
                    if isinstance(m, nn.Linear):
                        bound = math.sqrt(6.0 / (m.in_features + m.out_features))  # Glorot
                        m.weight.uniform_(-bound, bound, generator=gen)
                        m.bias.zero_()
                layer._last.weight.zero_()  # identity splines: the flow starts uniform
        self.to(dtype)

    @property
    def log_volume(self) -> Tensor:
        """Log of the box's volume (the uniform density is ``exp(-log_volume)``)."""
        return torch.log(self.hi - self.lo).sum()

    def _unit_forward(self, u: Tensor) -> Tensor:
        y, _ = _spline(u, self.elementwise, self.n_bins, inverse=False)
        for layer in self.couplings:
            y, _ = layer(y, inverse=False)
        return y

    def unit_log_prob(self, y: Tensor) -> Tensor:
        """Log-density ``(N,)`` of the flow on the unit cube at ``y (N, d)`` in ``[0, 1]^d``."""
        total = torch.zeros(len(y), dtype=y.dtype, device=y.device)
        for layer in reversed(self.couplings):
            y, logdet = layer(y, inverse=True)
            total = total + logdet
        _, logdet = _spline(y, self.elementwise, self.n_bins, inverse=True)
        return total + logdet.sum(-1)  # the base density is 1 on the cube

    def _check_points(self, x: Any) -> Tensor:
        t = torch.as_tensor(x, dtype=self.lo.dtype, device=self.lo.device)
        if t.ndim != 2 or t.shape[1] != self.dim:
            raise ShapeError("BoundedFlow points", ("N", self.dim), tuple(t.shape))
        if not bool(torch.isfinite(t).all()):
            raise NonFiniteError("BoundedFlow points: expected finite coordinates, got NaN or Inf")
        return t

    def log_prob(self, x: Any) -> Tensor:
        """Exact log-density ``(N,)`` at points ``x (N, d)`` of the box (``-inf`` outside it).

        Differentiable with respect to the flow's weights and to ``x``.
        """
        x = self._check_points(x)
        y = (x - self.lo) / (self.hi - self.lo)
        inside = ((y >= 0) & (y <= 1)).all(1)
        out = self.unit_log_prob(y.clamp(0.0, 1.0)) - self.log_volume
        return torch.where(inside, out, torch.full_like(out, -math.inf))

    def sample(self, n: int, seed: Any = None) -> Tensor:
        """``n`` points ``(n, d)`` of the box drawn from the flow (no gradient).

        ``seed``: an int, a numpy Generator or a torch Generator (default: torch's global RNG).
        """
        n = check_positive_int("BoundedFlow.sample n", n)
        if isinstance(seed, np.random.Generator):
            u = torch.as_tensor(seed.random((n, self.dim)), dtype=self.lo.dtype, device=self.lo.device)
        else:
            if seed is None or isinstance(seed, torch.Generator):
                gen = seed
            elif isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0:
                gen = torch.Generator().manual_seed(seed)
            else:
                raise ConfigError(f"BoundedFlow.sample seed: expected None, an int >= 0 or a Generator, got "
                                  f"{seed!r}")
            u = torch.rand(n, self.dim, generator=gen, dtype=self.lo.dtype).to(self.lo.device)
        with torch.no_grad():
            y = self._unit_forward(u)
        return self.lo + y * (self.hi - self.lo)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, n_couplings={len(self.couplings)}, n_bins={self.n_bins}"


# -- the adversarial sampler ----------------------------------------------------------------------------
class AAS(Sampler):
    """Adversarial adaptive sampling of the interior points (see the module docstring).

    Parameters
    ----------
    every : int
        PDE steps between two adversarial stages (flow ascent, then new points).
    ascent_steps : int
        Adam steps of the flow per stage.
    beta : float
        Weight of the H^1 penalty ``int |grad p|^2`` (unit-cube coordinates, residual normalised
        to uniform mean 1); larger keeps ``p`` closer to uniform.
    lr : float
        Adam learning rate of the flow.
    n_candidates : int
        Points of each importance-sampling set.
    rounds : int
        Fresh importance-sampling sets per stage (drawn from the current flow's mixture), the ascent
        steps shared between them. More than one keeps the flow from fitting the noise of one set
        (in 5-D, 1000 points put only a dozen where the residual is large).
    uniform_fraction : float
        Weight ``eta`` of the uniform density in the proposal and in the new points, in ``(0, 1]``.
    flow : dict, optional
        Keyword arguments of :class:`BoundedFlow` (``n_couplings``, ``n_bins``, ``hidden``, ``depth``).
    seed : int
        Seed of the flow's initial weights (the points use the PINN's numpy Generator).

    Attributes
    ----------
    flow : BoundedFlow or None
        Built at the first call, on the domain's box.
    history : list of dict
        One record per stage: ``step``, ``objective`` before and after the ascent (estimate of ``J``
        on the stage's set), ``penalty`` (its H^1 part, after), ``residual_ratio`` (mean of ``r^2``
        on the new points over its uniform mean).

    Notes
    -----
    The flow, its optimiser and the history travel in the PINN's checkpoints
    (:meth:`state_for_checkpoint`), so a resumed run continues the same adversarial game.
    """

    adaptive = True

    def __init__(self, every: int = 500, *, ascent_steps: int = 100, beta: float = 1e-3, lr: float = 3e-3,
                 n_candidates: int = 4000, rounds: int = 1, uniform_fraction: float = 0.1,
                 flow: dict[str, Any] | None = None, seed: int = 0) -> None:
        super().__init__("uniform")
        self.every = check_positive_int("AAS every", every)
        self.ascent_steps = check_positive_int("AAS ascent_steps", ascent_steps)
        self.beta = _finite_positive("AAS beta", beta, allow_zero=True)
        self.lr = _finite_positive("AAS lr", lr)
        self.n_candidates = check_positive_int("AAS n_candidates", n_candidates)
        self.rounds = check_positive_int("AAS rounds", rounds)
        if self.rounds > self.ascent_steps:
            raise ConfigError(f"AAS: rounds ({rounds}) cannot exceed ascent_steps ({ascent_steps})")
        eta = _finite_positive("AAS uniform_fraction", uniform_fraction)
        if eta > 1:
            raise ConfigError(f"AAS uniform_fraction: expected a number in (0, 1], got {uniform_fraction!r}")
        self.uniform_fraction = eta
        if flow is not None and not isinstance(flow, dict):
            raise ConfigError(f"AAS flow: expected a dict of BoundedFlow options, got {type(flow).__name__}")
        self.flow_options = dict(flow or {})
        unknown = set(self.flow_options) - {"n_couplings", "n_bins", "hidden", "depth"}
        if unknown:
            raise ConfigError(f"AAS flow: unknown options {sorted(unknown)}; expected some of "
                              "['n_couplings', 'n_bins', 'hidden', 'depth']")
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ConfigError(f"AAS seed: expected a non-negative int, got {seed!r}")
        self.seed = seed
        self.flow: BoundedFlow | None = None
        self._optimizer: torch.optim.Optimizer | None = None
        self.history: list[dict[str, float]] = []

    # -- flow and mixture ----------------------------------------------------------------------------
    def _flow_for(self, domain: Any) -> BoundedFlow:
        from .sampling import _check_domain

        _check_domain(domain)
        box = _box(domain)
        if box is None:
            raise ConfigError(f"AAS: the flow's support is a box; expected an interval, rectangle or box "
                              f"domain, got {domain!r}")
        if self.flow is None:
            self.flow = BoundedFlow(box[0], box[1], seed=self.seed, **self.flow_options)
            self._optimizer = torch.optim.Adam(self.flow.parameters(), lr=self.lr)
        elif self.flow.dim != domain.ndim or not np.allclose(self.flow.lo.cpu().numpy(), box[0]) or \
                not np.allclose(self.flow.hi.cpu().numpy(), box[1]):
            raise ConfigError(f"AAS: this sampler's flow lives on the box {self.flow.lo.tolist()} - "
                              f"{self.flow.hi.tolist()}, got the domain {domain!r}; use one AAS per PINN")
        return self.flow

    def _mixture(self, flow: BoundedFlow, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` points of ``(1 - eta) p + eta U`` (the component of each point drawn first)."""
        uniform = rng.random(n) < self.uniform_fraction
        x = np.empty((n, flow.dim))
        lo, hi = flow.lo.cpu().numpy(), flow.hi.cpu().numpy()
        n_u = int(uniform.sum())
        x[uniform] = lo + rng.random((n_u, flow.dim)) * (hi - lo)
        if n_u < n:
            x[~uniform] = flow.sample(n - n_u, rng).cpu().numpy()
        return np.clip(x, lo, hi)

    def _unit_mixture_log_density(self, flow: BoundedFlow, y: Tensor) -> Tensor:
        with torch.no_grad():
            logp = flow.unit_log_prob(y)
        eta = self.uniform_fraction
        return torch.logaddexp(math.log1p(-eta) + logp if eta < 1 else torch.full_like(logp, -math.inf),
                               torch.full_like(logp, math.log(eta)))

    def sample(self, domain: Any, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` interior points: uniform before the first stage, then from the flow's mixture."""
        if self.flow is None:
            return super().sample(domain, n, rng)
        return self._mixture(self._flow_for(domain), check_positive_int("n", n), rng)

    # -- one adversarial stage ------------------------------------------------------------------------
    def objective(self, flow: BoundedFlow, y: Tensor, weight: Tensor, log_q: Tensor) -> tuple[Tensor, Tensor]:
        """Importance-sampling estimates of ``J`` and of its penalty on unit-cube points ``y ~ q``.

        ``weight`` is the normalised squared residual ``r~^2`` at ``y``, ``log_q`` the log-density of
        the proposal on the unit cube.
        """
        y = y.detach().requires_grad_(True)
        logp = flow.unit_log_prob(y)
        (score,) = torch.autograd.grad(logp.sum(), y, create_graph=True)
        p = torch.exp(logp)
        inv_q = torch.exp(-log_q)
        # |grad p|^2 = p^2 |grad log p|^2
        penalty = (p * p * score.square().sum(1) * inv_q).mean()
        gain = (weight * p * inv_q).mean()
        return gain - self.beta * penalty, penalty

    def _candidates(self, step: int, flow: BoundedFlow, residual: ResidualFn,
                    rng: np.random.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """A fresh importance-sampling set: unit-cube points, their ``r^2`` and proposal log-density."""
        x = self._mixture(flow, self.n_candidates, rng)
        r = np.abs(np.asarray(residual(x), dtype=np.float64)).reshape(-1)
        if r.shape != (len(x),):
            raise ShapeError("AAS residual(points)", (len(x),), r.shape)
        if not np.all(np.isfinite(r)):
            raise NonFiniteError(f"AAS at step {step}: the residual is not finite on the candidate points")
        lo, hi = flow.lo, flow.hi
        y = (torch.as_tensor(x, dtype=lo.dtype, device=lo.device) - lo) / (hi - lo)
        return y, torch.as_tensor(r * r, dtype=lo.dtype, device=lo.device), self._unit_mixture_log_density(flow, y)

    def _ascend(self, flow: BoundedFlow, y: Tensor, weight: Tensor, log_q: Tensor, steps: int) -> tuple[float, float]:
        """``steps`` Adam ascent steps on one set, keeping the best iterate; ``J`` before and after."""
        optimizer = self._optimizer
        if optimizer is None:
            raise ConfigError("AAS: the flow's optimiser is missing (call adapt through a PINN)")
        with torch.enable_grad():
            # Adam can overshoot once the density is sharp (the penalty grows like p^2): keep the best
            # iterate, so that the ascent never returns a density worse for J than the one it started from
            best, best_state, start = -math.inf, None, math.nan
            for k in range(steps):
                optimizer.zero_grad(set_to_none=True)
                value, _ = self.objective(flow, y, weight, log_q)
                current = float(value.detach())
                start = current if k == 0 else start
                if current > best:
                    best, best_state = current, {n: v.detach().clone() for n, v in flow.state_dict().items()}
                (-value).backward()
                optimizer.step()
            value, _ = self.objective(flow, y, weight, log_q)
            if not float(value.detach()) > best and best_state is not None:
                flow.load_state_dict(best_state)
                value, _ = self.objective(flow, y, weight, log_q)
        return start, float(value.detach())

    def adapt(self, step: int, points: np.ndarray, residual: ResidualFn, domain: Any,
              rng: np.random.Generator) -> np.ndarray | None:
        """After every ``every`` steps: ascend ``J`` over the flow, then redraw ``len(points)`` points."""
        if step % self.every:
            return None
        flow = self._flow_for(domain)
        scale = 0.0
        start = end = math.nan
        for k in range(self.rounds):
            y, r2, log_q = self._candidates(step, flow, residual, rng)
            if k == 0:
                # normalise r^2 by its uniform mean (importance estimate with the same proposal); later
                # rounds keep this scale, so that their objectives are comparable
                scale = float((r2 * torch.exp(-log_q)).mean())
                if not scale > 0:  # a residual that vanishes everywhere: nothing to adapt to
                    return None
            steps = self.ascent_steps // self.rounds + (k < self.ascent_steps % self.rounds)
            before, end = self._ascend(flow, y, r2 / scale, log_q, steps)
            start = before if k == 0 else start
        if not (math.isfinite(end) and all(bool(torch.isfinite(p).all()) for p in flow.parameters())):
            raise NonFiniteError(f"AAS at step {step}: the flow's ascent diverged (objective {end}); "
                                 "lower lr or raise beta")
        _, penalty = self.objective(flow, y, r2 / scale, log_q)
        new = self._mixture(flow, len(points), rng)
        ratio = float(np.mean(residual(new) ** 2)) / scale if len(new) else float("nan")
        self.history.append({"step": float(step), "objective_before": start, "objective": end,
                             "penalty": float(penalty.detach()), "residual_ratio": ratio})
        return new

    # -- checkpoint ----------------------------------------------------------------------------------
    def state_for_checkpoint(self) -> dict[str, Any]:
        """The flow's weights, its Adam state and the history (empty before the first stage)."""
        if self.flow is None or self._optimizer is None:
            return {}
        return {"flow": {k: v.detach().cpu() for k, v in self.flow.state_dict().items()},
                "optimizer": self._optimizer.state_dict(), "history": json.dumps(self.history)}

    def load_state_for_checkpoint(self, state: dict[str, Any], domain: Any) -> None:
        """Rebuild the flow on ``domain`` and restore :meth:`state_for_checkpoint`."""
        if not state:  # saved before the first stage: a uniform start, as in the original run
            self.flow, self._optimizer, self.history = None, None, []
            return
        missing = {"flow", "optimizer", "history"} - set(state)
        if missing:
            raise ConfigError(f"AAS checkpoint state lacks {sorted(missing)}")
        self.flow = self._optimizer = None
        flow = self._flow_for(domain)
        try:
            flow.load_state_dict(state["flow"])
            self._optimizer.load_state_dict(state["optimizer"])  # type: ignore[union-attr]
        except (RuntimeError, ValueError, KeyError) as exc:
            self.flow = self._optimizer = None
            raise ConfigError(f"AAS checkpoint state does not fit this sampler's flow "
                              f"{self.flow_options or 'defaults'}: {exc}") from None
        self.history = json.loads(state["history"])

    def __repr__(self) -> str:
        return (f"AAS(every={self.every}, ascent_steps={self.ascent_steps}, beta={self.beta}, lr={self.lr}, "
                f"n_candidates={self.n_candidates}, rounds={self.rounds}, uniform_fraction={self.uniform_fraction})")
