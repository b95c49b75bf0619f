"""PINNTask: the physics-informed loss of any :class:`~sciml.problem.Problem`, trained by the Trainer.

From a problem's ``domain``, ``equation`` and ``conditions`` the task builds the named loss terms

* ``"pde"`` (or ``"pde_<name>"`` when the equation returns a dict): mean squared residual at the
  interior collocation points;
* one term per soft condition: ``"bc"`` (Dirichlet), ``"neumann"``, ``"periodic"``, ``"ic"``
  (initial), numbered ``"bc_2"``... when a kind repeats;
* ``"data"`` (or ``"data_<output>"``): mean squared mismatch at observation points,

so that any combiner (sum, weighted, ConFIG, ...) can combine them. In a space-time problem (one with
an :class:`~sciml.problem.Initial` condition, whose ``time_axis`` names the time coordinate) boundary
conditions hold on the lateral boundary and the initial condition on the first time.

**Hard constraints** (``hard=...``) impose conditions exactly instead: ``"periodic"`` feeds the
network ``cos(2 pi x / P), sin(2 pi x / P)`` instead of the periodic coordinate ``x``;
``"dirichlet"`` and ``"initial"`` write the output as ``A(x) + D(x) N(x)`` with ``D`` vanishing where
the conditions hold (the domain's smooth distance, DeepXDE's ``x (1 - x) y (1 - y)`` on the unit square: see
:meth:`~sciml.geometry.Domain.smooth_distance`; the lateral one times ``t - t0``) and
``A`` satisfying them; their values must then be constants, formula strings (evaluated with torch:
``Dirichlet("sin(pi*x)*y")`` with ``hard=True``) or callables that accept torch tensors.
``A`` is the condition's value evaluated *inside* the domain too: a callable that is the exact
solution (a manufactured problem's) hands the network the answer; give boundary data that equal the
solution only on the boundary. A :class:`~sciml.pinn.constraints.HardConstraint` in the list gives a
distance, lifting or whole output transform of one's own. When to prefer hard over soft: see
:mod:`sciml.pinn.constraints`.

**Points** are drawn from a :mod:`~sciml.pinn.sampling` sampler with the task's own numpy Generator
(seeded, and checkpointed with the points): fixed sets (``resample_every=None``), fresh sets every
``k`` steps, or adaptive sets (RAR, RAD) refined from the residual. ``points=`` gives fixed sets
by hand; they are validated (shape, finiteness, where they lie).

**Inverse problems**: ``unknowns`` adds trainable scalars or fields (see :mod:`sciml.pinn.inverse`)
that reach the equation through ``inputs``; ``observations`` adds the data term.

The equation receives ``inputs`` holding the problem's params (floats), its input functions at the
points (tensors ``(N,)``: numbers, formula strings or callables of the coordinates, called with one
tensor per axis, or numpy arrays if they reject tensors) and the unknowns (0-d tensors or ``(N,)``,
replacing a param of the same name). A problem without ``domain`` is sampled in the box of its grid.

**Derivatives**: the equation differentiates the network with :mod:`sciml.diff` (nested autograd,
any model). With ``derivatives="jet"`` an MLP's input derivatives are propagated forward instead
(:mod:`sciml.pinn.jet`): same equation code, same values. For a single-output network without hard
constraints the equation reads the pushed-forward derivatives directly and every point set shares one
jet pass (:mod:`sciml.pinn.jet_terms`); with ``compile=True`` that pass, the equation and the loss
terms become one ``torch.compile`` graph: about half of DeepXDE's time per Adam iteration on its
Burgers example on one CPU core (``benchmarks/pinn_vs_deepxde.py``).

Subclasses (LPINN, adversarial adaptive sampling) override the hooks :meth:`residuals`,
:meth:`pde_terms`, :meth:`condition_terms`, :meth:`data_terms`, :meth:`sample` and
:meth:`on_step_end`, or replace points with :meth:`set_points`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .._checks import as_float_array, check_positive_int
from ..errors import ConfigError, ProblemError, ShapeError, UnknownNameError
from ..problem import Dirichlet, Initial, Neumann, Periodic, Problem
from ..train.task import Task
from . import sampling
from .constraints import (
    HARD_CONSTRAINTS,
    HardConstraints,
    Values,
    custom_constraints,
    output_columns,
    parse_kinds,
    period,
)
from .evaluation import PINNEvaluation
from .inverse import UnknownField, as_unknown
from .jet import JetEngine
from .jet_terms import JetTerms
from .schedule import PointSchedule, get_sampler

__all__ = ["PINNTask", "HARD_CONSTRAINTS"]
_TERM_NAMES = {Dirichlet: "bc", Neumann: "neumann", Periodic: "periodic", Initial: "ic"}


class PINNTask(JetTerms, PointSchedule, PINNEvaluation, Task):
    """Physics-informed training of ``model`` on ``problem`` (see the module docstring).

    Parameters
    ----------
    problem : Problem
        Needs ``domain`` (a :class:`~sciml.geometry.Domain`) and ``equation``.
    model : nn.Module
        Maps points ``(N, d_in)`` to outputs ``(N, n_outputs)``; ``d_in`` is the domain's dimension
        plus one per hard periodic axis.
    inputs : mapping, optional
        Values of the problem's inputs for this instance (required for random inputs; fixed ones
        default to the problem's).
    n_interior, n_boundary, n_initial : int
        Interior points; points per boundary condition; initial points.
    sampler : str or Sampler
        ``"sobol"`` (default), ``"uniform"``, ``"halton"``, ``"hammersley"``, ``"lhs"``, ``"rar"``,
        ``"rad"`` or a Sampler; its method also draws the boundary and initial points. Scrambled
        Sobol points are the default because low-discrepancy sets trained better than i.i.d.
        uniform ones on every problem measured (``benchmarks/pinn_samplers.py``: median error 15 %
        lower on the L-shape, 30 % on DeepXDE's diffusion example; Sobol, Halton and Hammersley within
        the spread of seeds, Sobol with the best worst case), and a scrambled sequence, unlike the fixed
        Hammersley set, gives fresh points when they are redrawn (``resample_every``).
    resample_every : int, optional
        Draw fresh interior and boundary points every this many steps (1: every step).
    resample_until : int, optional
        Stop resampling and adapting after this many steps (e.g. the Adam phase's length, so
        that L-BFGS sees a fixed loss).
    hard : bool, sequence of str and HardConstraint, or HardConstraint
        Conditions imposed exactly: any of ``"dirichlet"``, ``"initial"``, ``"periodic"``;
        True for every kind the problem has; :class:`~sciml.pinn.constraints.HardConstraint`
        objects for distances, liftings or output transforms of one's own.
    observations : (x, values) or mapping of output name to (x, values), optional
        Data for the ``"data"`` term; values ``(M,)`` or ``(M, n_outputs)``.
    unknowns : mapping of str to float, Unknown or UnknownField, optional
        Trainable parameters or fields of the equation (inverse problems).
    points : mapping of str to array, optional
        Fixed point sets by term name (``"interior"``, ``"bc"``, ``"ic"``...), validated.
    reference : "auto", None or (x, u)
        Points and values for the ``rel_l2`` / ``mse`` metrics; "auto" solves the problem's
        reference on its default grid at the first evaluation (if it has both) and compares at the
        grid's nodes in the domain.
    seed : int
        Seed of the point sampler.
    dtype : torch.dtype, optional
        Dtype of the points (default: the model's parameters', else float32).
    derivatives : {"autograd", "jet"}
        How the residual differentiates the network: nested autograd (any model), or Taylor-mode
        forward propagation (:mod:`sciml.pinn.jet`; MLPs with tanh / sin activations, derivatives
        up to second order, detected from the equation and checked against autograd at
        construction).
    compile : bool or dict
        ``torch.compile`` the jet (``derivatives="jet"`` only); compilation happens at the first step
        (reported as ``compile_s`` in the run's ``timing`` event). torch keeps the compiled graphs in
        its on-disk cache (``TORCHINDUCTOR_CACHE_DIR``, by default ``/tmp/torchinductor_<user>``), so
        the first run of a network and point count pays the compilation (about a minute on a loaded
        CPU core) and later runs of the same set-up a few seconds
        (``benchmarks/pinn_deepxde_examples.py``: cold and warm ``compile_s``).
    """

    metrics_need_grad = True

    def __init__(
        self,
        problem: Problem,
        model: nn.Module,
        *,
        inputs: Mapping[str, Any] | None = None,
        n_interior: int = 2000,
        n_boundary: int = 200,
        n_initial: int = 200,
        sampler: str | sampling.Sampler = "sobol",
        resample_every: int | None = None,
        resample_until: int | None = None,
        hard: bool | Sequence[Any] | Any = (),
        observations: Any = None,
        unknowns: Mapping[str, Any] | None = None,
        points: Mapping[str, Any] | None = None,
        reference: Any = "auto",
        seed: int = 0,
        dtype: torch.dtype | None = None,
        derivatives: str = "autograd",
        compile: bool | Mapping[str, Any] = False,
    ) -> None:
        super().__init__()
        if not isinstance(problem, Problem):
            raise ConfigError(f"PINNTask: expected a sciml Problem, got {type(problem).__name__}")
        if problem.equation is None:
            raise ProblemError(f"PINNTask: problem {problem.name!r} has no equation")
        if not isinstance(model, nn.Module):
            raise ConfigError(f"PINNTask: expected an nn.Module as model, got {type(model).__name__}")
        self.problem = problem
        self.model = model
        self.domain = _domain_of(problem)
        self.dim = self.domain.ndim
        self.outputs = tuple(problem.outputs)
        self.n_interior = check_positive_int("n_interior", n_interior)
        self.n_boundary = check_positive_int("n_boundary", n_boundary)
        self.n_initial = check_positive_int("n_initial", n_initial)
        self.sampler = get_sampler(sampler)
        self.resample_every = None if resample_every is None else check_positive_int("resample_every",
                                                                                     resample_every)
        self.resample_until = None if resample_until is None else check_positive_int("resample_until",
                                                                                     resample_until)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ConfigError(f"seed: expected a non-negative int, got {seed!r}")
        self.rng = np.random.default_rng(seed)
        floats = (p.dtype for p in model.parameters() if p.is_floating_point())
        self._dtype = dtype or next(floats, torch.float32)
        self.model_spec = getattr(model, "model_spec", None)
        self.problem_spec = {"name": problem.name, "params": dict(problem.params)}
        self._step = 0
        #: names of the terms to compute; the others are returned as their last value, detached
        #: (set by :class:`ActiveTermsCallback` for combiners that differentiate one term per step)
        self.active_terms: set[str] | None = None
        self._last: dict[str, Tensor] = {}

        self.time_axis = self._find_time_axis()
        names = [a for a in "xyz"][: self.dim - (self.time_axis is not None)]
        if self.time_axis is not None:
            names.insert(self.time_axis, "t")
        self.coord_names = tuple(names)
        self._inputs = self._collect_inputs(inputs or {})
        self.values = Values(self.coord_names, self._inputs)
        self.unknowns = nn.ModuleDict({str(k): as_unknown(str(k), v) for k, v in (unknowns or {}).items()})
        clash = set(self.unknowns) & (set(self._inputs) | set(self.outputs))
        if clash:
            raise ConfigError(f"unknowns {sorted(clash)} clash with the problem's input/output names")
        if derivatives not in ("autograd", "jet"):
            raise UnknownNameError("derivatives engine", derivatives, ["autograd", "jet"])
        if compile and derivatives != "jet":
            raise ConfigError("compile=True compiles the jet; it needs derivatives='jet' (nested autograd "
                              "cannot be compiled)")

        self.hard = HardConstraints(problem.conditions, parse_kinds(hard, problem.conditions, problem.name),
                                    self.domain, self.outputs, self.time_axis, self.values,
                                    custom_constraints(hard))
        self._jet: JetEngine | None = None
        self._jet_transform: Any = None  # the output transform of a model with jet_split() (jet only)
        self._jet_direct = False  # the jet's derivatives go straight to sciml.diff (see _direct_jet)
        self._joint_compiled: Any = None  # the compiled joint jet pass (compile=True)
        self._prefetched: tuple[Any, ...] | None = None  # (x, value, first, second) of a joint jet pass
        self._conditions = self._soft_conditions()
        self._observations = self._parse_observations(observations)
        self._reference_spec = reference
        self._reference: tuple[np.ndarray, np.ndarray] | None = None
        self._fixed = set()
        for key, value in (points or {}).items():
            self.set_points(key, value)
            self._fixed.add(key)
        self._draw(initial=True)
        # a first evaluation on a few points checks the model's input and output shapes early and
        # fixes the names of the equation's terms
        self._pde_names = list(self.residuals(self._x_interior[:8].detach().requires_grad_(True)))
        if derivatives == "jet":
            self._setup_jet(compile)

    @property
    def dtype(self) -> torch.dtype:
        """Dtype of the points (and of the network): follows ``task.double()`` / ``task.to(dtype)``."""
        points = self._buffers.get("_x_interior")
        return points.dtype if points is not None else self._dtype

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any:
        """Load weights; a float64 state (saved in a float64 L-BFGS phase) turns a float32 task to float64
        first, so that resuming such a run does not round its weights to float32."""
        wide = any(isinstance(v, Tensor) and v.dtype == torch.float64 for v in state_dict.values())
        if wide and self.dtype != torch.float64:
            self.to(torch.float64)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    # -- set-up ------------------------------------------------------------------------------------
    def _find_time_axis(self) -> int | None:
        axes = {c.time_axis % self.dim for c in self.problem.conditions if isinstance(c, Initial)}
        if len(axes) > 1:
            raise ProblemError(f"problem {self.problem.name!r}: Initial conditions disagree on the time "
                               f"axis {axes}")
        return axes.pop() if axes else None

    def _collect_inputs(self, values: Mapping[str, Any]) -> dict[str, Any]:
        unknown = set(values) - set(self.problem.input_names)
        if unknown:
            raise ConfigError(f"inputs {sorted(unknown)} are not inputs of problem {self.problem.name!r}; "
                              f"expected some of {list(self.problem.input_names)}")
        out: dict[str, Any] = {}
        check = Values(self.coord_names, {})
        for inp in self.problem.inputs:
            if inp.name in values:
                out[inp.name] = values[inp.name]
            elif not inp.is_random:
                out[inp.name] = inp.value
            else:
                raise ProblemError(f"PINNTask: the random input {inp.name!r} of {self.problem.name!r} needs "
                                   "a value (a number, a formula or a callable of the coordinates) in "
                                   "inputs=")
            check.check(f"input {inp.name!r}", out[inp.name])
        return out

    def _soft_conditions(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for cond in self.problem.conditions:
            if type(cond) not in _TERM_NAMES:
                raise ProblemError(f"unknown condition {cond!r}; expected Dirichlet, Neumann, Periodic "
                                   "or Initial")
            if self.hard.is_hard(cond):
                continue
            base, i = _TERM_NAMES[type(cond)], 1
            name = base
            while name in out:
                i += 1
                name = f"{base}_{i}"
            out[name] = cond
        return out

    def _parse_observations(self, observations: Any) -> dict[str, tuple[Tensor, Tensor, list[int]]]:
        if observations is None:
            return {}
        if isinstance(observations, Mapping):
            items = [(f"data_{k}" if len(observations) > 1 else "data", [self._column(k)], v)
                     for k, v in observations.items()]
        else:
            items = [("data", list(range(len(self.outputs))), observations)]
        out = {}
        for name, cols, pair in items:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ConfigError(f"observations: expected (x, values) pairs, got {type(pair).__name__}")
            x = sampling.check_points(f"{name} points", pair[0], self.domain, "any")
            v = as_float_array(f"{name} values", pair[1])
            v = v[:, None] if v.ndim == 1 else v
            if v.shape != (len(x), len(cols)):
                raise ShapeError(f"{name} values", (len(x), len(cols)), v.shape)
            out[name] = (torch.as_tensor(x, dtype=self.dtype), torch.as_tensor(v, dtype=self.dtype), cols)
            self.register_buffer(f"_obs_x_{name}", out[name][0], persistent=False)
            self.register_buffer(f"_obs_v_{name}", out[name][1], persistent=False)
        return out

    def _column(self, name: str) -> int:
        if name not in self.outputs:
            raise ConfigError(f"observations for {name!r}, which is not an output; "
                              f"outputs are {list(self.outputs)}")
        return self.outputs.index(name)

    # -- points --------------------------------------------------------------------------------------
    @property
    def term_names(self) -> list[str]:
        """Names of the loss terms, in the order :meth:`loss_terms` returns them."""
        return [*self._pde_names, *self._conditions, *self._observations]

    def point_sets(self) -> dict[str, np.ndarray]:
        """The current collocation points by set name (``"interior"`` and the soft conditions')."""
        return {name: getattr(self, f"_x_{name}").detach().cpu().numpy().astype(np.float64)
                for name in ["interior", *self._conditions]}

    def _part(self, name: str) -> str:
        if name == "interior":
            return "interior"
        cond = self._conditions.get(name)
        if cond is None:
            raise ConfigError(f"set_points: unknown point set {name!r}; expected one of "
                              f"{['interior', *self._conditions]}")
        return "initial" if isinstance(cond, Initial) else "boundary"

    def set_points(self, name: str, x: Any) -> None:
        """Replace a point set (``"interior"`` or a soft condition's term name) after validating it."""
        part = self._part(name)
        arr = sampling.check_points(f"points[{name!r}]", x, self.domain, part, self.time_axis)
        cond = self._conditions.get(name)
        if isinstance(cond, Periodic):
            axis = cond.axis % self.dim
            lo = self.domain.bbox[0, axis]
            if not np.allclose(arr[:, axis], lo, atol=1e-9 * period(cond, self.domain)):
                raise ConfigError(f"points[{name!r}]: periodic points must lie on the face x_{axis} = {lo:g}")
        self._store(name, arr)

    def _store(self, name: str, arr: np.ndarray) -> None:
        device = next((b.device for b in self.buffers()), None) or next(
            (p.device for p in self.parameters()), torch.device("cpu"))
        x = torch.as_tensor(arr, dtype=self.dtype, device=device)
        self.register_buffer(f"_x_{name}", x, persistent=False)
        cond = self._conditions.get(name)
        if cond is None:
            return
        extra: dict[str, Tensor] = {}
        x64 = torch.as_tensor(arr, dtype=torch.float64)
        if isinstance(cond, (Dirichlet, Initial, Neumann)):
            extra["v"] = self.values(self.values.resolve(cond.value), x64)
        if isinstance(cond, Neumann):
            extra["n"] = torch.as_tensor(self.domain.boundary_normal(arr))
        if isinstance(cond, Periodic):
            partner = arr.copy()
            partner[:, cond.axis % self.dim] += period(cond, self.domain)
            extra["p"] = torch.as_tensor(partner)
        for key, value in extra.items():
            value = value.to(device=device, dtype=self.dtype)
            self.register_buffer(f"_{key}_{name}", value, persistent=False)

    def _draw(self, initial: bool = False) -> None:
        """Draw every non-fixed point set (interior with the sampler, the conditions' with its method)."""
        method = self.sampler.method
        if "interior" not in self._fixed and (initial or self.resample_every is not None):
            self._store("interior", self.sampler.sample(self.domain, self.n_interior, self.rng))
        for name, cond in self._conditions.items():
            if name in self._fixed:
                continue
            if isinstance(cond, Initial):
                x = sampling.sample_initial(self.domain, self.n_initial, self.time_axis, method, self.rng)
            elif isinstance(cond, Periodic):
                axis = cond.axis % self.dim
                lo = self.domain.bbox[0, axis]
                tol = 1e-9 * period(cond, self.domain)
                def face(p: np.ndarray, a: int = axis, lo: float = lo, tol: float = tol) -> np.ndarray:
                    return np.abs(p[:, a] - lo) <= tol

                x = sampling.sample_boundary(self.domain, self.n_boundary, method, self.rng, where=face,
                                             time_axis=self.time_axis)
            else:
                x = sampling.sample_boundary(self.domain, self.n_boundary, method, self.rng, where=cond.where,
                                             time_axis=self.time_axis)
            self._store(name, x)

    # -- evaluation of values at points -------------------------------------------------------------
    def equation_inputs(self, x: Tensor) -> dict[str, Any]:
        """What the equation gets as ``inputs`` at points ``x``: params, input values, unknowns."""
        out: dict[str, Any] = {k: v for k, v in self.problem.params.items()}
        for name, spec in self._inputs.items():
            out[name] = self.values(spec, x)
        for name, unknown in self.unknowns.items():
            out[name] = unknown(x) if isinstance(unknown, UnknownField) else unknown()
        return out

    # -- the network with its constraints ------------------------------------------------------------
    def features(self, x: Tensor) -> Tensor:
        """Network input at points ``x`` (periodic axes replaced by their cos/sin embedding if hard)."""
        return self.hard.features(x)

    def forward(self, x: Tensor, derivatives: bool = False) -> Tensor:
        """Outputs ``(N, n_outputs)`` at points ``(N, d)``, hard constraints applied.

        With ``derivatives=True`` and the jet engine, the output's derivatives with respect to ``x``
        (as autograd computes them for the equation) come from the jet.
        """
        xi = self.features(x)
        if derivatives and self._jet is not None and self._jet_direct:
            return self._direct_jet(x)
        if derivatives and self._jet is not None:
            out = self._jet.attach(xi)  # the network's output, carrying the jet's derivatives
            if self._jet_transform is not None:  # a wrapper's transform, differentiated by autograd
                out = self._jet_transform(xi, out)
        else:
            out = self.model(xi)
        if out.ndim == 1:
            out = out[:, None]
        if out.shape != (x.shape[0], len(self.outputs)):
            raise ShapeError("model output", (x.shape[0], len(self.outputs)), tuple(out.shape))
        return self.hard.apply(x, out)

    # -- loss terms (the hooks subclasses override) --------------------------------------------------
    def residuals(self, x: Tensor) -> dict[str, Tensor]:
        """Pointwise PDE residuals ``{name: (N,)}`` at points ``x`` (which must require grad)."""
        u = self(x, derivatives=True)
        res = self.problem.equation(u, x, self.equation_inputs(x))
        if isinstance(res, Mapping):
            out = {f"pde_{k}": _flat(f"equation()[{k!r}]", v, x.shape[0]) for k, v in res.items()}
        else:
            out = {"pde": _flat("equation()", res, x.shape[0])}
        return out

    def pde_terms(self, x: Tensor) -> dict[str, Tensor]:
        """Mean squared residual per equation at the interior points ``x``."""
        return {name: r.square().mean() for name, r in self.residuals(x).items()}

    def condition_terms(self, outputs: Mapping[str, Tensor] | None = None) -> dict[str, Tensor]:
        """Mean squared mismatch of every soft condition at its points.

        ``outputs`` may hold the network's outputs at the points of value conditions (Dirichlet,
        Initial), computed beforehand (see :meth:`_joint_terms`).
        """
        out = {}
        for name, cond in self._conditions.items():
            x = getattr(self, f"_x_{name}")
            if isinstance(cond, (Dirichlet, Initial)):
                cols = output_columns(cond, self.outputs)
                u = outputs[name] if outputs is not None and name in outputs else self(x)
                out[name] = (u[:, cols] - getattr(self, f"_v_{name}")[:, None]).square().mean()
            elif isinstance(cond, Neumann):
                x = x.detach().requires_grad_(True)
                u = self(x)
                normal = getattr(self, f"_n_{name}")
                parts = [((_grad(u[:, k], x) * normal).sum(1) - getattr(self, f"_v_{name}")).square()
                         for k in output_columns(cond, self.outputs)]
                out[name] = torch.stack(parts).mean()
            else:
                axis = cond.axis % self.dim
                both = torch.cat([x, getattr(self, f"_p_{name}")]).detach().requires_grad_(True)
                u = self(both)
                n = x.shape[0]
                slope = torch.stack([_grad(u[:, k], both)[:, axis] for k in range(u.shape[1])], dim=1)
                out[name] = (u[:n] - u[n:]).square().mean() + (slope[:n] - slope[n:]).square().mean()
        return out

    def data_terms(self, outputs: Mapping[str, Tensor] | None = None) -> dict[str, Tensor]:
        """Mean squared mismatch at the observation points (``outputs``: as in :meth:`condition_terms`)."""
        out = {}
        for name, (_, _, cols) in self._observations.items():
            x, v = getattr(self, f"_obs_x_{name}"), getattr(self, f"_obs_v_{name}")
            u = outputs[name] if outputs is not None and name in outputs else self(x)
            out[name] = (u[:, cols] - v).square().mean()
        return out

    def loss_terms(self, batch: Any = None) -> dict[str, Tensor]:
        """``{"pde": ..., <conditions>..., "data": ...}`` on the current points (``batch`` is unused).

        With :attr:`active_terms` set, a group of terms (the equation's, the conditions', the data's)
        none of whose names is active is not computed: its terms repeat their last values, detached.
        """
        active = self.active_terms
        out: dict[str, Tensor] = {}
        if self._jet_direct and active is None:
            out = self._joint_terms()
            self._last = {k: v.detach() for k, v in out.items()}
            return {name: out[name] for name in self.term_names}
        groups = ((self._pde_names, lambda: self.pde_terms(self._x_interior.detach().requires_grad_(True))),
                  (list(self._conditions), self.condition_terms), (list(self._observations), self.data_terms))
        for names, compute in groups:
            if not names:
                continue
            if active is None or any(n in active for n in names) or any(n not in self._last for n in names):
                out.update(compute())
            else:
                out.update({n: self._last[n] for n in names})
        self._last = {k: v.detach() for k, v in out.items()}
        return {name: out[name] for name in self.term_names}

    def unknown_values(self) -> dict[str, float]:
        """Current values of the scalar unknowns."""
        return {k: float(u().detach()) for k, u in self.unknowns.items() if not isinstance(u, UnknownField)}

    def metrics(self, batch: Any = None) -> dict[str, float]:
        """Loss terms and their sum on the current points, errors against the reference, unknowns."""
        active, self.active_terms = self.active_terms, None
        try:
            out = {k: float(v.detach()) for k, v in self.loss_terms(batch).items()}
        finally:
            self.active_terms = active
        out["loss"] = float(sum(out.values()))
        out.update(self.relative_error())
        out.update({f"param_{k}": v for k, v in self.unknown_values().items()})
        return out

    # -- checkpoint (PointSchedule saves and restores the point sets) -------------------------------
    def _point_set_names(self) -> list[str]:
        return ["interior", *self._conditions]

    def _check_point_set(self, name: str) -> None:
        self._part(name)


# -- helpers ----------------------------------------------------------------------------------------
def _domain_of(problem: Problem) -> Any:
    """The problem's Domain, or the box of its default grid when it only has a grid."""
    from ..geometry import Domain

    if problem.domain is not None:
        if not isinstance(problem.domain, Domain):
            raise ProblemError(f"problem {problem.name!r}: domain must be a sciml Domain, got "
                               f"{type(problem.domain).__name__}")
        return problem.domain
    if problem.grid is None:
        raise ProblemError(f"PINNTask: problem {problem.name!r} has neither a domain nor a grid to sample "
                           "points in")
    lo, hi = np.array(problem.grid.bounds, dtype=np.float64).T
    if len(lo) == 1:
        return Domain.interval(lo[0], hi[0])
    return Domain.rectangle(lo, hi) if len(lo) == 2 else Domain.box(lo, hi)


def _flat(what: str, value: Any, n: int) -> Tensor:
    if not isinstance(value, Tensor):
        raise ConfigError(f"{what}: expected a tensor of residuals, got {type(value).__name__}")
    if value.shape in ((n,), (n, 1)):
        return value.reshape(n)
    raise ShapeError(what, (n,), tuple(value.shape))


def _grad(u: Tensor, x: Tensor) -> Tensor:
    (g,) = torch.autograd.grad(u, x, torch.ones_like(u), create_graph=True)
    return g
