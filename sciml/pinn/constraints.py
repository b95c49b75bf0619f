"""Values at collocation points and hard constraints of a PINN.

:class:`Values` evaluates what problems and users give as input functions and condition values
(numbers, formula strings, callables of the coordinates) at torch point sets. Formulas are evaluated
with torch (:func:`sciml.formula.compile_formula` with ``backend="torch"``), so autograd differentiates
them like torch code. Callables are called with one tensor per coordinate axis; a callable that
rejects tensors (numpy code) is called with numpy arrays instead, and remembered as such: its values
are then constants for autograd.

:class:`HardConstraints` makes a network satisfy conditions exactly:

* periodicity along an axis of period ``P``: the coordinate is replaced by ``cos(2 pi x / P)`` and
  ``sin(2 pi x / P)`` in the network's input (:meth:`HardConstraints.features`);
* Dirichlet and initial conditions: the output becomes ``A(x) + D(x) N(x)``
  (:meth:`HardConstraints.apply`) with, for an output with Dirichlet value ``g`` and initial value
  ``u0`` at time ``t0``: ``A = u0(x) + g(x, t) - g(x, t0)`` and ``D = (t - t0) phi(x)``, where ``phi``
  is the domain's smooth distance (:meth:`sciml.geometry.Domain.smooth_distance`: products of one
  factor per boundary piece, of maximum ``(w / 4)^min(d, 2)``; of the spatial cross-section in space-time, which must then
  be a box). With only one of the two conditions the other factor is dropped. The values are
  differentiated by the equation, so they must be constants, formula strings
  (``Dirichlet("sin(pi*x)*y")``) or torch-capable callables, and ``u0`` and ``g`` must agree on the
  boundary at ``t0``; both are checked;
* anything else: a :class:`HardConstraint` in ``hard=[...]`` gives a distance and a value of one's
  own (``u = value + distance * N``, also for Dirichlet conditions on part of the boundary) or a
  whole output transform ``u = transform(x, N)``. It is checked on boundary points: the constrained
  output must equal the replaced conditions' values there whatever the network gives.

**Hard or soft?** A hard constraint removes the boundary terms from the loss, so there is nothing
to balance and the boundary values hold to round-off; prefer it for Dirichlet and initial data
given by formulas on boxes, disks, polygons and their CSG combinations, and for periodicity. Keep
conditions soft when their values are numpy-only or noisy data, for Neumann and Robin conditions
(a distance function does not impose them), on domains whose distance function is poor (thin
slits, many nearly touching pieces) and when the lifting ``A`` would be the exact solution itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError, ProblemError, ShapeError
from ..problem import Dirichlet, Initial, Periodic
from . import sampling
from .hard import HardConstraint

__all__ = ["Values", "HardConstraint", "HardConstraints", "HARD_CONSTRAINTS"]

HARD_CONSTRAINTS = ("dirichlet", "initial", "periodic")
_KINDS = {Dirichlet: "dirichlet", Initial: "initial", Periodic: "periodic"}


class Values:
    """Evaluates numbers, formulas, input names and callables of the coordinates at points.

    Parameters
    ----------
    coord_names : sequence of str
        Names of the coordinate axes, in order (``("x", "t")``): used by formulas.
    inputs : mapping
        The problem's input values by name; a condition value naming an input is that input's value.
    """

    def __init__(self, coord_names: Sequence[str], inputs: Mapping[str, Any]) -> None:
        self.coord_names = tuple(coord_names)
        self.inputs = dict(inputs)
        self._modes: dict[int, str] = {}  # id(callable) -> "torch" | "numpy"
        self._formulas: dict[str, Any] = {}

    def check(self, what: str, value: Any) -> None:
        """Raise ConfigError unless ``value`` can be evaluated at arbitrary points."""
        if isinstance(value, str):
            if value not in self.inputs:
                self._formula(value)  # raises on bad syntax or names
        elif isinstance(value, bool) or not (isinstance(value, (int, float)) or callable(value)):
            raise ConfigError(f"{what}: expected a number, a formula string or a callable of the coordinates "
                              f"{self.coord_names}, got {type(value).__name__} (arrays on a grid cannot be "
                              "evaluated at arbitrary points)")

    def resolve(self, value: Any) -> Any:
        """A condition value: the named input's value, or the value itself (checked)."""
        if isinstance(value, str) and value in self.inputs:
            return self.inputs[value]
        self.check("condition value", value)
        return value

    def _formula(self, text: str) -> Any:
        fn = self._formulas.get(text)
        if fn is None:
            from ..formula import compile_formula

            fn = self._formulas[text] = compile_formula(text, self.coord_names, backend="torch")
        return fn

    def __call__(self, spec: Any, x: Tensor) -> Tensor:
        """``spec`` at points ``x`` ``(N, d)``, as a tensor ``(N,)`` of ``x``'s dtype and device."""
        n = x.shape[0]
        if isinstance(spec, (int, float)):
            return torch.full((n,), float(spec), dtype=x.dtype, device=x.device)
        if isinstance(spec, str):  # torch functions of the columns: differentiable, on x's device and dtype
            out = self._formula(spec)(**{k: x[:, i] for i, k in enumerate(self.coord_names)})
            return as_column(out, n, x, f"formula {spec!r}")
        cols = [x[:, i] for i in range(x.shape[1])]
        name = getattr(spec, "__name__", type(spec).__name__)
        mode = self._modes.get(id(spec))
        if mode != "numpy":
            try:
                out = spec(*cols)
            except Exception:
                if mode == "torch":
                    raise
                out = None
            if isinstance(out, Tensor) or (isinstance(out, (int, float)) and not isinstance(out, bool)):
                self._modes[id(spec)] = "torch"
                return as_column(out, n, x, name)
            self._modes[id(spec)] = "numpy"
        arrays = [c.detach().cpu().numpy() for c in cols]
        return as_column(spec(*arrays), n, x, name)

    def differentiable(self, spec: Any, x: Tensor) -> bool:
        """Whether ``spec``'s values at ``x`` (which requires grad) carry gradients (or are constant)."""
        if spec is None or isinstance(spec, (int, float, str)):  # formulas evaluate with torch
            return True
        return self(spec, x).requires_grad


class HardConstraints:
    """The exactly imposed conditions of a PINN (see the module docstring).

    Parameters
    ----------
    conditions : sequence
        The problem's conditions.
    kinds : set of str
        Which kinds to impose exactly with the built-in constructions (a subset of
        :data:`HARD_CONSTRAINTS`).
    domain : Domain
    outputs : sequence of str
    time_axis : int or None
    values : Values
    custom : sequence of HardConstraint
        Constraints of one's own (see :class:`HardConstraint`).
    """

    def __init__(self, conditions: Sequence[Any], kinds: frozenset[str], domain: Any, outputs: Sequence[str],
                 time_axis: int | None, values: Values, custom: Sequence[HardConstraint] = ()) -> None:
        self.kinds, self.domain, self.outputs = kinds, domain, tuple(outputs)
        self.time_axis, self.values = time_axis, values
        self.dim = domain.ndim
        self.periodic = [(c.axis % self.dim, period(c, domain)) for c in conditions
                         if isinstance(c, Periodic) and "periodic" in kinds]
        self.lifts: dict[int, tuple[Any, Any]] = {}  # output column -> (dirichlet value, initial value)
        for kind, cls in (("dirichlet", Dirichlet), ("initial", Initial)):
            if kind not in kinds:
                continue
            for cond in (c for c in conditions if isinstance(c, cls)):
                if kind == "dirichlet" and cond.where is not None:
                    raise ConfigError("hard Dirichlet constraints need the condition on the whole (lateral) "
                                      "boundary (where=None); impose partial ones softly, or exactly with "
                                      "HardConstraint(distance=...) vanishing where the condition holds")
                for k in output_columns(cond, self.outputs):
                    pair = list(self.lifts.get(k, (None, None)))
                    slot = 0 if kind == "dirichlet" else 1
                    if pair[slot] is not None:
                        raise ConfigError(f"two {kind} conditions for output {self.outputs[k]!r}")
                    pair[slot] = values.resolve(cond.value)
                    self.lifts[k] = (pair[0], pair[1])
        self.spatial = None
        if time_axis is not None and any(g is not None for g, _ in self.lifts.values()):
            self.spatial = self._spatial_domain()
        probe = torch.as_tensor(domain.sample_interior(4, seed=0), dtype=torch.float64).requires_grad_(True)
        for k, (g, u0) in self.lifts.items():
            for spec in (g, u0):
                self._check_differentiable(f"hard constraints for {self.outputs[k]!r}: the condition value", spec,
                                           probe)
            if g is not None and u0 is not None:
                self._check_compatible(k, g, u0)
        self.transform: Callable[[Tensor, Tensor], Tensor] | None = None
        self.custom: dict[int, tuple[Any, Any]] = {}  # output column -> (distance, value)
        self.replaced: dict[int, set[str]] = {}  # output column -> kinds made exact by custom constraints
        self._add_custom(conditions, custom, probe)

    # -- constraints of one's own --------------------------------------------------------------------
    def _check_differentiable(self, what: str, spec: Any, probe: Tensor) -> None:
        if not self.values.differentiable(spec, probe):
            raise ConfigError(f"{what} {spec!r} must be a constant or a callable that accepts torch tensors "
                              "(the equation differentiates it) or a formula string; numpy callables can only "
                              "be imposed softly")

    def _add_custom(self, conditions: Sequence[Any], custom: Sequence[HardConstraint], probe: Tensor) -> None:
        for hc in custom:
            cols = list(range(len(self.outputs))) if hc.output is None else output_columns(hc, self.outputs)
            own = [c for c in conditions if isinstance(c, (Dirichlet, Initial))
                   and set(output_columns(c, self.outputs)) & set(cols)]
            if hc.replaces is None:
                replaces = {"dirichlet"} if any(isinstance(c, Dirichlet) for c in own) else set()
            else:
                replaces = set(hc.replaces)
                for kind in replaces:
                    if not any(kind_of(c) == kind for c in own):
                        raise ConfigError(f"{hc!r}: replaces {kind!r}, but no {kind} condition applies to "
                                          f"{[self.outputs[k] for k in cols]}; expected replaces=() or a problem "
                                          "with such a condition")
            for k in cols:
                taken = [kind for kind in ("dirichlet", "initial") if kind in self.kinds and k in self.lifts]
                if k in self.custom or k in self.replaced or (self.transform is not None) or taken:
                    raise ConfigError(f"two hard value constraints for output {self.outputs[k]!r} "
                                      f"({hc!r} and {'hard=' + str(taken) if taken else 'another HardConstraint'}); "
                                      "expected one per output (write a combined one with transform=)")
                self.replaced[k] = replaces
            if hc.transform is not None:
                if self.custom:
                    raise ConfigError("HardConstraint(transform=...) transforms every output; it cannot be combined "
                                      "with other value constraints")
                self.transform = hc.transform
                continue
            distance = None if hc.distance is None else self.values.resolve(hc.distance)
            if hc.value is not None:
                value = self.values.resolve(hc.value)
            else:
                dirichlet = [c for c in own if isinstance(c, Dirichlet)]
                value = self.values.resolve(dirichlet[0].value) if dirichlet else 0.0
                if len(dirichlet) > 1:
                    raise ConfigError(f"{hc!r}: {len(dirichlet)} Dirichlet conditions apply; give value= (a "
                                      "lifting that meets all of them)")
            for what, spec in (("distance", distance), ("value", value)):
                if spec is not None:
                    self._check_differentiable(f"{hc!r}: the {what}", spec, probe)
            for k in cols:
                self.custom[k] = (distance, value)
            if distance is None and self.time_axis is not None and self.spatial is None:
                # the built-in distance of the lateral boundary: the box's would also vanish at the
                # first and last times, pinning the output there
                self.spatial = self._spatial_domain()
        if custom:
            self._check_custom(conditions)

    def _check_custom(self, conditions: Sequence[Any]) -> None:
        """The constrained outputs meet the replaced conditions on their points, whatever the network."""
        for cond in conditions:
            cols = [k for k in output_columns(cond, self.outputs) if kind_of(cond) in self.replaced.get(k, ())]
            if not cols:
                continue
            if isinstance(cond, Initial):
                x = sampling.sample_initial(self.domain, 64, self.time_axis, "uniform", 1)
            else:
                x = sampling.sample_boundary(self.domain, 64, "uniform", 1, where=cond.where,
                                             time_axis=self.time_axis)
            xt = torch.as_tensor(x, dtype=torch.float64)
            target = self.values(self.values.resolve(cond.value), xt)
            gen = torch.Generator().manual_seed(0)
            for _ in range(2):  # two random network outputs: the constraint must not depend on them
                out = torch.randn(len(x), len(self.outputs), generator=gen, dtype=torch.float64)
                with torch.no_grad():
                    got = self.apply(xt, out)
                gap = float((got[:, cols] - target[:, None]).abs().max())
                if not gap <= 1e-6 * (1.0 + float(target.abs().max())):
                    names = [self.outputs[k] for k in cols]
                    raise ConfigError(f"hard constraint for {names}: on the points of {cond!r} the constrained "
                                      f"output differs from the condition's value by up to {gap:.3g} (expected "
                                      "0: the distance must vanish there and the value equal the condition's)")

    def is_hard(self, cond: Any) -> bool:
        """Whether ``cond`` is imposed exactly (and so left out of the loss)."""
        kind = kind_of(cond)
        if kind is None:
            return False
        if kind in self.kinds:
            return True
        cols = output_columns(cond, self.outputs)
        covered = [k for k in cols if kind in self.replaced.get(k, ())]
        if covered and len(covered) != len(cols):
            raise ConfigError(f"{cond!r} applies to {[self.outputs[k] for k in cols]} but a HardConstraint replaces "
                              f"it for {[self.outputs[k] for k in covered]} only; give output=None or split the "
                              "condition per output")
        return bool(covered)

    @property
    def transforms_output(self) -> bool:
        """Whether the network's output is changed (lifted, multiplied or transformed) at all."""
        return bool(self.lifts or self.custom or self.transform is not None)

    @property
    def n_features(self) -> int:
        """Number of network inputs: the dimension plus one per periodic axis."""
        return self.dim + len(self.periodic)

    def _spatial_domain(self) -> Any:
        from ..geometry import Domain

        box = self.domain.bbox
        probe = box[0] + np.random.default_rng(0).random((512, self.dim)) * (box[1] - box[0])
        if not self.domain.inside(probe).all():
            raise ConfigError("hard Dirichlet constraints in space-time need a box-shaped domain (a spatial "
                              "box times the time interval); impose them softly on other domains")
        lo, hi = np.delete(box, self.time_axis, axis=1)
        return (Domain.interval(lo[0], hi[0]) if len(lo) == 1 else
                Domain.rectangle(lo, hi) if len(lo) == 2 else Domain.hypercube(lo, hi))

    def _check_compatible(self, k: int, g: Any, u0: Any) -> None:
        x = sampling.sample_boundary(self.domain, 64, "uniform", 1, time_axis=self.time_axis)
        x[:, self.time_axis] = self.domain.bbox[0, self.time_axis]
        xt = torch.as_tensor(x, dtype=torch.float64)
        a, b = self.values(g, xt), self.values(u0, xt)
        if not torch.allclose(a, b, rtol=1e-6, atol=1e-6):
            gap = float((a - b).abs().max())
            raise ConfigError(f"hard constraints for {self.outputs[k]!r}: the initial value and the boundary "
                              f"value disagree at the first time (max gap {gap:.3g}); they cannot both hold "
                              "exactly")

    def features(self, x: Tensor) -> Tensor:
        """Network input at points ``x``: periodic axes replaced by their cos/sin embedding."""
        if not self.periodic:
            return x
        embedded = dict(self.periodic)
        cols = []
        for i in range(self.dim):
            if i in embedded:
                angle = (2 * math.pi / embedded[i]) * x[:, i : i + 1]
                cols += [torch.cos(angle), torch.sin(angle)]
            else:
                cols.append(x[:, i : i + 1])
        return torch.cat(cols, dim=1)

    def apply(self, x: Tensor, out: Tensor) -> Tensor:
        """Network outputs ``(N, k)`` at ``x`` turned into ``A + D * out`` for the constrained columns
        (or into ``transform(x, out)``)."""
        if self.transform is not None:
            res = self.transform(x, out)
            if not isinstance(res, Tensor) or tuple(res.shape) != tuple(out.shape):
                got = tuple(res.shape) if isinstance(res, Tensor) else type(res).__name__
                raise ShapeError("HardConstraint transform(x, out)", tuple(out.shape), got)
            return res
        if not self.lifts and not self.custom:
            return out
        cols = list(out.unbind(1))
        for k, (g, u0) in self.lifts.items():
            lift: Tensor | float = 0.0
            factor: Tensor | float = 1.0
            if u0 is not None:
                t0 = float(self.domain.bbox[0, self.time_axis])
                lift = self.values(u0, x)
                factor = x[:, self.time_axis] - t0
            if g is not None:
                lift = lift + self.values(g, x)
                if u0 is not None:
                    lift = lift - self.values(g, _at_time(x, self.time_axis, t0))
                space = x if self.spatial is None else _drop(x, self.time_axis)
                factor = factor * (self.spatial or self.domain).smooth_distance(space)
            cols[k] = lift + factor * cols[k]
        for k, (distance, value) in self.custom.items():
            if distance is not None:
                d = self.values(distance, x)
            elif self.spatial is not None:
                d = self.spatial.smooth_distance(_drop(x, self.time_axis))
            else:
                d = self.domain.smooth_distance(x)
            cols[k] = self.values(value, x) + d * cols[k]
        return torch.stack(cols, dim=1)


def parse_kinds(
    hard: bool | Sequence[Any] | HardConstraint | None, conditions: Sequence[Any], problem_name: str
) -> frozenset[str]:
    """The set of built-in hard constraint kinds from ``hard=`` (True: every kind the problem has).

    :class:`HardConstraint` items of ``hard`` are skipped (see :func:`custom_constraints`).
    """
    present = {_KINDS[type(c)] for c in conditions if type(c) in _KINDS}
    if hard is True:
        return frozenset(present)
    if hard is False or hard is None or isinstance(hard, HardConstraint):
        return frozenset()
    if isinstance(hard, str) or not isinstance(hard, Sequence):
        raise ConfigError(f"hard: expected a bool or a list of {list(HARD_CONSTRAINTS)} and HardConstraint "
                          f"objects, got {hard!r}")
    kinds = [k for k in hard if not isinstance(k, HardConstraint)]
    for kind in kinds:
        if kind not in HARD_CONSTRAINTS:
            raise ConfigError(f"hard: unknown constraint {kind!r}; expected some of {list(HARD_CONSTRAINTS)} or "
                              "a HardConstraint")
        if kind not in present:
            raise ConfigError(f"hard: {kind!r} requested but problem {problem_name!r} has no such condition")
    return frozenset(kinds)


def custom_constraints(hard: Any) -> list[HardConstraint]:
    """The :class:`HardConstraint` objects in ``hard=`` (one alone, or items of a list)."""
    if isinstance(hard, HardConstraint):
        return [hard]
    if isinstance(hard, Sequence) and not isinstance(hard, str):
        return [k for k in hard if isinstance(k, HardConstraint)]
    return []


def kind_of(cond: Any) -> str | None:
    """``"dirichlet"``, ``"initial"``, ``"periodic"`` (the kinds that can be hard) or None."""
    return _KINDS.get(type(cond))


def period(cond: Periodic, domain: Any) -> float:
    """The period of a Periodic condition: its own, or the domain's extent along the axis."""
    lo, hi = domain.bbox[:, cond.axis % domain.ndim]
    value = float(cond.period) if cond.period is not None else float(hi - lo)
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"Periodic(axis={cond.axis}): expected a positive period, got {value}")
    return value


def output_columns(cond: Any, outputs: Sequence[str]) -> list[int]:
    """Output columns a condition applies to (all of them when it names none)."""
    name = getattr(cond, "output", None)
    if name is None:
        return list(range(len(outputs)))
    if name not in outputs:
        raise ProblemError(f"condition {cond!r} names output {name!r}; outputs are {list(outputs)}")
    return [list(outputs).index(name)]


def as_column(value: Any, n: int, like: Tensor, what: str) -> Tensor:
    """A value per point as a tensor ``(N,)`` like ``like`` (scalars are broadcast)."""
    if isinstance(value, Tensor):
        out = value.to(dtype=like.dtype, device=like.device)
    else:
        out = torch.as_tensor(np.asarray(value, dtype=np.float64), dtype=like.dtype, device=like.device)
    if out.ndim == 0:
        out = out.expand(n)
    elif out.ndim == 2 and out.shape[1] == 1:
        out = out[:, 0]
    if out.shape != (n,):
        raise ShapeError(f"value of {what} at {n} points", (n,), tuple(out.shape))
    return out


def _drop(x: Tensor, axis: int) -> Tensor:
    return torch.cat([x[:, :axis], x[:, axis + 1 :]], dim=1)


def _at_time(x: Tensor, axis: int, t0: float) -> Tensor:
    out = x.clone()
    out[:, axis] = t0
    return out
