"""Lagrangian PINNs (Mojgani, Balajewicz & Hassanzadeh, CMAME 2023) for periodic 1-D transport.

For ``u_t + a u_x = nu u_xx`` with a speed ``a`` that is a constant ``c`` (convection, convection-
diffusion) or the state ``u`` itself (viscous Burgers), a plain PINN in the Eulerian frame fails once
the transport is fast (``c = 30, 50``: relative L2 error above 0.5; Krishnapriyan et al. 2021). The
Lagrangian PINN solves the same problem along the characteristics, which follow the direction in which
information travels: with ``x0`` the foot of a characteristic at the initial time,

.. math::

    \\frac{\\partial X}{\\partial t}(x_0, t) = a, \\qquad
    \\frac{\\partial U}{\\partial t}(x_0, t) = \\nu\\, u_{xx}, \\qquad X(x_0, t_0) = x_0, \\quad
    U(x_0, t_0) = u_0(x_0),

where ``u(X(x0, t), t) = U(x0, t)``. Two independent networks (two *branches*) take ``(x0, t)``: one
gives the characteristic curves ``X``, the other the state ``U`` on them. The Eulerian derivatives
come from the full chain rule through the map ``x0 -> X`` at fixed time,

.. math::

    u_x = U_{x_0} / X_{x_0}, \\qquad u_{xx} = \\partial_{x_0}\\!\\left(U_{x_0} / X_{x_0}\\right) / X_{x_0},

so that characteristics that converge (Burgers) or spread are handled, not only the constant-speed
case ``X_{x0} = 1``.

**Parametrisation.** ``X = x0 + (t - t0) S N_X`` and ``U = u0(x0) + (t - t0) N_U`` with hard initial
conditions (the default), or ``X = x0 + S N_X`` and ``U = N_U`` with the initial conditions as the soft
terms ``"ic_characteristics"`` and ``"ic"``. ``S`` is a speed scale (``|c|``, or ``max |u0|`` for
Burgers, at least 1) so that the network outputs are of order one: without it an Adam run at
``lr = 1e-3`` would need tens of thousands of steps just to grow an output bias to ``c = 50``. For the
same reason the characteristic residual is divided by ``S``. The spatial input enters as
``cos(2 pi x0 / L), sin(2 pi x0 / L)`` (period ``L``), the time as ``(t - t0) / (T - t0)``; both
branches are then periodic in ``x0`` by construction, and so is the displacement ``X - x0``.

**Loss terms**: ``"pde_characteristics"`` (mean squared ``(X_t - a) / S``), ``"pde_state"`` (mean
squared ``U_t - nu u_xx``) at the interior points ``(x0, t)``, plus the soft initial terms.

**Conditioning.** Where ``dX/dx0`` reaches 0 the map folds and ``u_xx`` is singular. The default
characteristic branch therefore starts from the identity map (its last layer is zero), and the
Adam learning rate should stay moderate (1e-3 works for ``c = 50``; 3e-3 folded the map within a
few hundred steps in one of our runs with ``nu = 0.01``): ``S`` multiplies every update of ``X``.

**Evaluation.** The prediction ``(X, U)`` on ``n_lagrangian`` feet ``x0`` at a time is brought back
to the Eulerian frame by wrapping ``X`` into the period, sorting, and interpolating ``U`` at the
Eulerian abscissae with a periodic cubic spline (:func:`lagrangian_to_eulerian`), time by time. The
metrics ``rel_l2`` and ``mse`` are thus measured on the same Eulerian grid as those of
:class:`~sciml.pinn.PINNTask`; ``min_jacobian`` is the smallest ``dX/dx0`` seen there (a value near or
below 0 means crossing characteristics, where the map cannot be inverted).

Only periodic problems in one space dimension are supported: on an interval with inflow boundaries,
the characteristics entering through the boundary would need a second family of feet ``(x_b, t0)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .._checks import as_float_array, check_positive_int
from ..errors import ConfigError, ProblemError, ShapeError, UnknownNameError
from ..fields import Grid
from ..problem import Initial, Periodic, Problem
from ..train.task import Task
from . import sampling
from .constraints import Values, period
from .evaluation import PINNEvaluation
from .schedule import PointSchedule, get_sampler
from .task import _domain_of

__all__ = ["LagrangianPINNTask", "lagrangian_to_eulerian"]
_CHUNK = 16384  # points per forward pass when predicting


class LagrangianPINNTask(PointSchedule, PINNEvaluation, Task):
    """Lagrangian PINN of a periodic 1-D transport problem (see the module docstring).

    Parameters
    ----------
    problem : Problem
        A space-time problem on ``[lo, lo + L] x [t0, T]`` with a :class:`~sciml.problem.Periodic`
        condition on the space axis and an :class:`~sciml.problem.Initial` condition (the time axis).
    characteristic_model, state_model : nn.Module, optional
        The two branches, mapping features ``(N, 3)`` (``cos, sin`` of the phase of ``x0`` and the
        scaled time) to ``(N, 1)``; by default MLPs with ``hidden`` and ``activation`` (Glorot-normal
        weights; the characteristic branch's last layer starts at zero, i.e. at ``X = x0``).
    speed : "state", float or str
        The transport speed: ``"state"`` (Burgers, ``dX/dt = U``), a number, or the name of a param
        of the problem holding a constant speed (default ``"c"``).
    nu : float or str
        Viscosity ``>= 0``, or the name of the problem's param (default ``"nu"``).
    hidden, activation : sequence of int, str
        Widths and non-linearity of the default branches.
    n_interior, n_initial : int
        Collocation points ``(x0, t)``; initial points (used by the soft initial terms only).
    sampler : str or Sampler
        Distribution of the interior points (as for :class:`~sciml.pinn.PINNTask`, adaptive ones
        included).
    resample_every, resample_until : int, optional
        Fresh interior points every this many steps, until this step.
    hard_initial : bool
        Impose ``X(x0, t0) = x0`` and ``U(x0, t0) = u0(x0)`` exactly (default) or as loss terms.
    speed_scale : "auto" or float
        ``S`` above; "auto" is ``max(|c|, 1)`` or ``max(max |u0|, 1)``.
    n_lagrangian : int
        Feet ``x0`` per time used to interpolate back to an Eulerian grid.
    interpolation : {"cubic", "linear"}
        Periodic interpolation in :func:`lagrangian_to_eulerian`.
    points : mapping, optional
        Fixed ``"interior"`` and/or ``"initial"`` point sets ``(N, 2)`` in the problem's coordinate
        order, validated.
    reference : "auto", None or (x, u)
        Eulerian points ``(P, 2)`` and values ``(P,)`` or ``(P, 1)`` for the error metrics; "auto"
        evaluates the problem's reference on its default grid.
    seed : int
        Seed of the point sampler and of the default branches' initial weights.
    dtype : torch.dtype, optional
        Dtype of the points and the default branches (float32 by default).

    Examples
    --------
    >>> from sciml import load_problem
    >>> from sciml.pinn import PrecisionSwitch, pinn_phases
    >>> from sciml.train import Trainer
    >>> task = LagrangianPINNTask(load_problem("convection"), n_interior=512)  # c = 30, nu = 0
    >>> Trainer(task, phases=pinn_phases(400, 10), callbacks=[PrecisionSwitch(400)]).fit()  # doctest: +SKIP
    >>> task.metrics()["rel_l2"]  # doctest: +SKIP
    0.003...
    >>> burgers = LagrangianPINNTask(load_problem("burgers_periodic"), speed="state")  # dX/dt = U
    """

    metrics_need_grad = True
    #: accepted for :class:`~sciml.pinn.ActiveTermsCallback`; every term is computed at every step,
    #: since both residuals come out of the same derivative pass
    active_terms: set[str] | None = None

    def __init__(
        self,
        problem: Problem,
        characteristic_model: nn.Module | None = None,
        state_model: nn.Module | None = None,
        *,
        speed: str | float = "c",
        nu: str | float = "nu",
        hidden: Sequence[int] = (50, 50, 50, 50),
        activation: str = "tanh",
        n_interior: int = 2000,
        n_initial: int = 256,
        sampler: str | sampling.Sampler = "uniform",
        resample_every: int | None = None,
        resample_until: int | None = None,
        hard_initial: bool = True,
        speed_scale: str | float = "auto",
        n_lagrangian: int = 1024,
        interpolation: str = "cubic",
        points: Mapping[str, Any] | None = None,
        reference: Any = "auto",
        seed: int = 0,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(problem, Problem):
            raise ConfigError(f"LagrangianPINNTask: expected a sciml Problem, got {type(problem).__name__}")
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ConfigError(f"seed: expected a non-negative int, got {seed!r}")
        if not isinstance(hard_initial, bool):
            raise ConfigError(f"hard_initial: expected a bool, got {hard_initial!r}")
        if interpolation not in ("cubic", "linear"):
            raise UnknownNameError("interpolation", interpolation, ["cubic", "linear"])
        self.problem = problem
        self.domain = _domain_of(problem)
        self._setup_axes()
        self.outputs = tuple(problem.outputs)
        if len(self.outputs) != 1:
            raise ProblemError(f"LagrangianPINNTask: expected a problem with one output (the transported "
                               f"state), got {list(self.outputs)}")
        self.n_interior = check_positive_int("n_interior", n_interior)
        self.n_initial = check_positive_int("n_initial", n_initial)
        self.n_lagrangian = check_positive_int("n_lagrangian", n_lagrangian)
        if self.n_lagrangian < 8:
            raise ConfigError(f"n_lagrangian: expected at least 8 feet per time, got {n_lagrangian}")
        self.sampler = get_sampler(sampler)
        self.resample_every = None if resample_every is None else check_positive_int("resample_every",
                                                                                     resample_every)
        self.resample_until = None if resample_until is None else check_positive_int("resample_until",
                                                                                     resample_until)
        self.hard_initial, self.interpolation = hard_initial, interpolation
        self.rng = np.random.default_rng(seed)
        self.values = Values(self.coord_names, {})
        self._u0 = self._initial_value()
        self.speed, self.nu = self._parse_speed(speed), self._parse_nu(nu)
        self.speed_scale = self._parse_scale(speed_scale)

        self._dtype = dtype or torch.float32
        if characteristic_model is None or state_model is None:
            from ..models.mlp import MLP

            gen_state = torch.random.get_rng_state()
            torch.manual_seed(seed)  # the default branches' weights follow the task's seed
            try:
                if characteristic_model is None:
                    characteristic_model = MLP(3, 1, hidden, activation, init="xavier_normal")
                    # start from the identity map X = x0: a random last layer makes dX/dx0 = 1 + t S N_x0
                    # change sign for S = 50, and u_xx divides by it
                    last = characteristic_model.net[-1]
                    nn.init.zeros_(last.weight)
                    nn.init.zeros_(last.bias)
                if state_model is None:
                    state_model = MLP(3, 1, hidden, activation, init="xavier_normal")
            finally:
                torch.random.set_rng_state(gen_state)
        for name, m in (("characteristic_model", characteristic_model), ("state_model", state_model)):
            if not isinstance(m, nn.Module):
                raise ConfigError(f"{name}: expected an nn.Module, got {type(m).__name__}")
        #: the two branches, trained together (the Trainer's ``model``)
        self.model = nn.ModuleDict({"characteristic": characteristic_model, "state": state_model})
        self.model.to(self._dtype)
        self.model_spec = None  # two branches: rebuilt by constructing the task, not from the registry
        self.problem_spec = {"name": problem.name, "params": dict(problem.params)}
        self._step = 0
        self._fixed: set[str] = set()
        for key, value in (points or {}).items():
            self.set_points(key, value)
            self._fixed.add(key)
        self._draw(initial=True)
        self._reference_spec = reference
        self._reference: tuple[np.ndarray, np.ndarray] | None = None
        # one evaluation on a few points checks the branches' shapes now rather than at step 1
        self.residuals(self._x_interior[:4].detach().requires_grad_(True))

    # -- set-up ------------------------------------------------------------------------------------
    def _setup_axes(self) -> None:
        if self.domain.ndim != 2:
            raise ProblemError(f"LagrangianPINNTask: expected a space-time problem in 1-D (2 coordinates), "
                               f"got {self.domain.ndim}")
        initial = [c for c in self.problem.conditions if isinstance(c, Initial)]
        if len(initial) != 1:
            raise ProblemError(f"LagrangianPINNTask: expected one Initial condition in {self.problem.name!r}, "
                               f"got {len(initial)}")
        self.t_axis = initial[0].time_axis % 2
        self.x_axis = 1 - self.t_axis
        periodic = [c for c in self.problem.conditions
                    if isinstance(c, Periodic) and c.axis % 2 == self.x_axis]
        if not periodic:
            raise ProblemError(f"LagrangianPINNTask: problem {self.problem.name!r} needs a Periodic condition "
                               "on its space axis (inflow boundaries are not supported)")
        self.period = period(periodic[0], self.domain)
        box = np.asarray(self.domain.bbox, dtype=np.float64)
        self.x_lo = float(box[0, self.x_axis])
        self.t0, self.t1 = float(box[0, self.t_axis]), float(box[1, self.t_axis])
        names = ["x", "x"]
        names[self.t_axis] = "t"
        self.coord_names = tuple(names)
        self._initial_cond = initial[0]

    def _initial_value(self) -> Any:
        value = self._initial_cond.value
        self.values.check("initial value", value)
        if isinstance(value, str):
            raise ConfigError("LagrangianPINNTask: the initial value must be a number or a callable of "
                              f"the coordinates (it is differentiated), got the formula {value!r}")
        if self.hard_initial:
            probe = torch.zeros(3, 2, dtype=torch.float64)
            probe[:, self.x_axis] = torch.tensor([0.1, 0.7, 1.3], dtype=torch.float64)
            if not self.values.differentiable(value, probe.requires_grad_(True)):
                raise ConfigError("hard_initial=True: the initial value must accept torch tensors (it is "
                                  "differentiated in x0); use torch functions or hard_initial=False")
        return value

    def _param(self, what: str, value: Any) -> float:
        if isinstance(value, str):
            if value not in self.problem.params:
                raise ProblemError(f"LagrangianPINNTask {what}={value!r}: problem {self.problem.name!r} has no "
                                   f"such param; params are {sorted(self.problem.params)}")
            value = self.problem.params[value]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"LagrangianPINNTask {what}: expected a finite number, got {value!r}")
        return float(value)

    def _parse_speed(self, speed: Any) -> float | None:
        """None for the state speed (Burgers), else the constant speed."""
        if isinstance(speed, str) and speed == "state":
            return None
        return self._param("speed", speed)

    def _parse_nu(self, nu: Any) -> float:
        value = self._param("nu", nu)
        if value < 0:
            raise ConfigError(f"LagrangianPINNTask nu: expected a viscosity >= 0, got {value}")
        return value

    def _parse_scale(self, scale: Any) -> float:
        if isinstance(scale, str) and scale == "auto":
            if self.speed is not None:
                return max(abs(self.speed), 1.0)
            x = torch.zeros(257, 2, dtype=torch.float64)
            x[:, self.x_axis] = self.x_lo + torch.linspace(0.0, self.period, 257, dtype=torch.float64)
            x[:, self.t_axis] = self.t0
            return max(float(self.values(self._u0, x).abs().max()), 1.0)
        value = self._param("speed_scale", scale)
        if value <= 0:
            raise ConfigError(f"LagrangianPINNTask speed_scale: expected 'auto' or a number > 0, got {scale!r}")
        return value

    @property
    def dtype(self) -> torch.dtype:
        """Dtype of the points (follows ``task.double()``, e.g. the float64 switch before L-BFGS)."""
        points = self._buffers.get("_x_interior")
        return points.dtype if points is not None else self._dtype

    @property
    def term_names(self) -> list[str]:
        names = ["pde_characteristics", "pde_state"]
        return names if self.hard_initial else [*names, "ic_characteristics", "ic"]

    # -- points --------------------------------------------------------------------------------------
    def set_points(self, name: str, x: Any) -> None:
        """Replace the ``"interior"`` or ``"initial"`` point set by ``x`` ``(N, 2)`` (validated)."""
        if name not in ("interior", "initial"):
            raise UnknownNameError("LPINN point set", name, ["interior", "initial"])
        part = "interior" if name == "interior" else "initial"
        arr = sampling.check_points(f"points[{name!r}]", x, self.domain, part, time_axis=self.t_axis)
        self._store(name, arr)

    def _store(self, name: str, arr: np.ndarray) -> None:
        old = self._buffers.get(f"_x_{name}")
        device = old.device if old is not None else torch.device("cpu")
        dtype = old.dtype if old is not None else self._dtype
        self.register_buffer(f"_x_{name}", torch.as_tensor(arr, dtype=dtype, device=device), persistent=False)

    def _draw(self, initial: bool = False) -> None:
        if "interior" not in self._fixed and (initial or self.resample_every is not None):
            self._store("interior", self.sampler.sample(self.domain, self.n_interior, self.rng))
        if "initial" not in self._fixed and (initial or self.resample_every is not None):
            self._store("initial", sampling.sample_initial(self.domain, self.n_initial, self.t_axis,
                                                           self.sampler.method, self.rng))

    def point_sets(self) -> dict[str, np.ndarray]:
        """The current point sets as float64 numpy arrays."""
        return {k: getattr(self, f"_x_{k}").detach().double().cpu().numpy() for k in ("interior", "initial")}

    # -- the two branches ------------------------------------------------------------------------------
    def features(self, x: Tensor) -> Tensor:
        """Branch input ``(N, 3)``: ``cos, sin`` of ``2 pi (x0 - lo) / L`` and ``(t - t0) / (T - t0)``."""
        phase = (2.0 * math.pi / self.period) * (x[:, self.x_axis] - self.x_lo)
        tau = (x[:, self.t_axis] - self.t0) / (self.t1 - self.t0)
        return torch.stack([torch.cos(phase), torch.sin(phase), tau], dim=1)

    def _branch(self, name: str, feats: Tensor) -> Tensor:
        out = self.model[name](feats)
        if out.shape not in ((feats.shape[0],), (feats.shape[0], 1)):
            raise ShapeError(f"{name} branch output", (feats.shape[0], 1), tuple(out.shape))
        return out.reshape(-1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Characteristic positions ``X`` and states ``U``, each ``(N,)``, at feet and times ``x`` ``(N, 2)``."""
        if x.ndim != 2 or x.shape[1] != 2:
            raise ShapeError("LPINN points", ("N", 2), tuple(x.shape))
        feats = self.features(x)
        x0, elapsed = x[:, self.x_axis], x[:, self.t_axis] - self.t0
        nx, nu = self._branch("characteristic", feats), self._branch("state", feats)
        if self.hard_initial:
            return x0 + elapsed * self.speed_scale * nx, self.values(self._u0, x) + elapsed * nu
        return x0 + self.speed_scale * nx, nu

    def eulerian_derivatives(self, x: Tensor) -> dict[str, Tensor]:
        """``X, U, X_t, U_t, X_x0`` and the Eulerian ``u_x`` (and ``u_xx`` if ``nu > 0``) at ``x``.

        ``x`` must require grad; the results keep their graphs (they are the residuals' ingredients).
        """
        big_x, big_u = self(x)
        gx = _grad(big_x, x)
        gu = _grad(big_u, x)
        jac = gx[:, self.x_axis]
        out = {"X": big_x, "U": big_u, "X_t": gx[:, self.t_axis], "U_t": gu[:, self.t_axis], "X_x0": jac,
               "u_x": gu[:, self.x_axis] / jac}
        if self.nu > 0:
            out["u_xx"] = _grad(out["u_x"], x)[:, self.x_axis] / jac
        return out

    # -- loss terms ----------------------------------------------------------------------------------
    def residuals(self, x: Tensor) -> dict[str, Tensor]:
        """Pointwise residuals ``{"pde_characteristics", "pde_state"}`` ``(N,)`` at ``x`` (requires grad)."""
        d = self.eulerian_derivatives(x)
        speed = d["U"] if self.speed is None else self.speed
        state = d["U_t"] - self.nu * d["u_xx"] if self.nu > 0 else d["U_t"]
        return {"pde_characteristics": (d["X_t"] - speed) / self.speed_scale, "pde_state": state}

    def loss_terms(self, batch: Any = None) -> dict[str, Tensor]:
        """Mean squared residuals at the interior points, plus the soft initial terms (``batch`` unused)."""
        x = self._x_interior.detach().requires_grad_(True)
        out = {k: r.square().mean() for k, r in self.residuals(x).items()}
        if not self.hard_initial:
            x0 = self._x_initial
            big_x, big_u = self(x0)
            out["ic_characteristics"] = ((big_x - x0[:, self.x_axis]) / self.speed_scale).square().mean()
            out["ic"] = (big_u - self.values(self._u0, x0)).square().mean()
        return out

    # -- evaluation ----------------------------------------------------------------------------------
    def pointwise_residual(self, x: Any) -> np.ndarray:
        """``sqrt(sum_k r_k^2)`` at numpy points ``(N, 2)`` (for adaptive samplers), float64."""
        arr = self._points("x", x)
        out = []
        with torch.enable_grad():
            for lo in range(0, len(arr), _CHUNK):
                xt = self._tensor(arr[lo : lo + _CHUNK]).requires_grad_(True)
                total = sum(r.detach().square() for r in self.residuals(xt).values())
                out.append(total.sqrt().double().cpu().numpy())
        return np.concatenate(out)

    def predict_lagrangian(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """``X`` and ``U`` ``(N,)`` float64 at feet and times ``x`` ``(N, 2)`` (numpy)."""
        arr = self._points("x", x)
        xs, us = [], []
        with torch.no_grad():
            for lo in range(0, len(arr), _CHUNK):
                big_x, big_u = self(self._tensor(arr[lo : lo + _CHUNK]))
                xs.append(big_x.double().cpu().numpy())
                us.append(big_u.double().cpu().numpy())
        return np.concatenate(xs), np.concatenate(us)

    def feet(self) -> np.ndarray:
        """The ``n_lagrangian`` feet ``x0`` (uniform over one period, end excluded) used by :meth:`predict`."""
        return self.x_lo + self.period * np.arange(self.n_lagrangian) / self.n_lagrangian

    def predict(self, x: Any) -> np.ndarray:
        """Eulerian prediction ``(N, 1)`` at points ``(N, 2)``: characteristics interpolated per time.

        Each distinct time among the points costs ``n_lagrangian`` evaluations of both branches: meant
        for points on grids (a few hundred times), not for scattered points.
        """
        arr = self._points("x", x)
        out = np.empty((len(arr), 1))
        feet = self.feet()
        times, where = np.unique(arr[:, self.t_axis], return_inverse=True)
        lag = np.empty((len(times) * len(feet), 2))
        lag[:, self.x_axis] = np.tile(feet, len(times))
        lag[:, self.t_axis] = np.repeat(times, len(feet))
        big_x, big_u = self.predict_lagrangian(lag)
        big_x, big_u = big_x.reshape(len(times), -1), big_u.reshape(len(times), -1)
        self._last_jacobian = float(np.min(np.diff(big_x, axis=1)) / (feet[1] - feet[0]))
        for k in range(len(times)):
            rows = np.flatnonzero(where == k)
            out[rows, 0] = lagrangian_to_eulerian(big_x[k], big_u[k], arr[rows, self.x_axis], self.period,
                                                  self.x_lo, self.interpolation)
        return out

    def predict_grid(self, grid: Grid) -> np.ndarray:
        """Eulerian prediction on ``grid`` (its axes ordered as the problem's coordinates), ``grid.shape``."""
        if not isinstance(grid, Grid) or grid.ndim != 2:
            raise ConfigError(f"predict_grid: expected a 2-D sciml Grid, got {grid!r}")
        return self.predict(grid.points()).reshape(grid.shape)

    def _make_reference(self, spec: Any) -> tuple[np.ndarray, np.ndarray] | None:
        if isinstance(spec, str) and spec == "auto":
            problem = self.problem
            if problem.reference is None or problem.grid is None or problem.grid.ndim != 2:
                return None
            data = problem.solve_batch(problem.prepare_inputs({}, problem.grid), problem.grid) \
                if problem.inputs else problem.reference({}, problem.grid, dict(problem.params))
            values = as_float_array("reference", data[self.outputs[0]]).reshape(-1, 1)
            return problem.grid.points(), values
        if isinstance(spec, (tuple, list)) and len(spec) == 2:
            x = sampling.check_points("reference points", spec[0], self.domain, "any")
            u = as_float_array("reference values", spec[1])
            u = u[:, None] if u.ndim == 1 else u
            if u.shape != (len(x), 1):
                raise ShapeError("reference values", (len(x), 1), u.shape)
            return x, u
        raise ConfigError(f"reference: expected 'auto', None or (x, u), got {type(spec).__name__}")

    def relative_error(self) -> dict[str, float]:
        """``{"rel_l2", "mse", "min_jacobian"}`` on the reference's Eulerian points (empty without one)."""
        out = super().relative_error()
        if out:
            out["min_jacobian"] = self._last_jacobian  # set by predict(), which the errors called
        return out

    def metrics(self, batch: Any = None) -> dict[str, float]:
        """Loss terms and their sum on the current points, and the errors against the reference."""
        out = {k: float(v.detach()) for k, v in self.loss_terms(batch).items()}
        out["loss"] = float(sum(out.values()))
        out.update(self.relative_error())
        return out

    def _points(self, name: str, x: Any) -> np.ndarray:
        arr = as_float_array(name, x)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ShapeError(name, ("N", 2), arr.shape)
        return arr

    def _tensor(self, arr: np.ndarray) -> Tensor:
        return torch.as_tensor(arr, dtype=self.dtype, device=self._x_interior.device)

    # -- checkpoint (PointSchedule saves and restores the point sets) -------------------------------
    def _point_set_names(self) -> list[str]:
        return ["interior", "initial"]

    def _check_point_set(self, name: str) -> None:
        if name not in ("interior", "initial"):
            raise UnknownNameError("LPINN point set", name, ["interior", "initial"])


def lagrangian_to_eulerian(
    positions: Any, values: Any, x: Any, period: float, origin: float = 0.0, method: str = "cubic"
) -> np.ndarray:
    """Interpolate values carried by particles at ``positions`` to the Eulerian abscissae ``x``, periodically.

    Parameters
    ----------
    positions, values : array_like ``(n,)``
        Particle positions (any real numbers: they are wrapped into ``[origin, origin + period)``) and
        the values they carry, at one time.
    x : array_like ``(m,)``
        Where to evaluate (wrapped the same way).
    period, origin : float
        The periodic cell ``[origin, origin + period)``.
    method : {"cubic", "linear"}
        Periodic cubic spline, or piecewise linear. With coincident wrapped positions (a folded map)
        the duplicates are dropped and the cubic spline falls back to linear.

    Returns
    -------
    ndarray ``(m,)`` float64
    """
    pos, val, xq = (as_float_array(n, a) for n, a in (("positions", positions), ("values", values), ("x", x)))
    if pos.ndim != 1 or pos.shape != val.shape:
        raise ShapeError("positions and values", "two (n,) arrays", (pos.shape, val.shape))
    if xq.ndim != 1:
        raise ShapeError("x", ("m",), xq.shape)
    if len(pos) < 4:
        raise ConfigError(f"lagrangian_to_eulerian: expected at least 4 particles, got {len(pos)}")
    if method not in ("cubic", "linear"):
        raise UnknownNameError("interpolation", method, ["cubic", "linear"])
    if not (isinstance(period, (int, float)) and math.isfinite(period) and period > 0):
        raise ConfigError(f"lagrangian_to_eulerian: expected a period > 0, got {period!r}")
    wrapped = origin + np.mod(pos - origin, period)
    order = np.argsort(wrapped, kind="stable")
    wrapped, val = wrapped[order], val[order]
    keep = np.concatenate([[True], np.diff(wrapped) > 1e-12 * period])
    wrapped, val = wrapped[keep], val[keep]
    xw = origin + np.mod(xq - origin, period)
    # close the cell: the first particle again, one period on (np.mod can round to exactly the period)
    if wrapped[-1] >= wrapped[0] + period * (1 - 1e-12):
        wrapped, val = wrapped[:-1], val[:-1]
    ext_x = np.append(wrapped, wrapped[0] + period)
    ext_v = np.append(val, val[0])
    if method == "cubic" and len(wrapped) >= 4 and len(wrapped) == len(pos):
        from scipy.interpolate import CubicSpline

        spline = CubicSpline(ext_x, ext_v, bc_type="periodic")
        # points left of the first particle lie one period on, in the spline's range
        return spline(np.where(xw < ext_x[0], xw + period, xw))
    return np.interp(xw, ext_x, ext_v, period=period)


def _grad(y: Tensor, x: Tensor) -> Tensor:
    (g,) = torch.autograd.grad(y, x, torch.ones_like(y), create_graph=True)
    return g
