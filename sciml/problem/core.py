"""The Problem contract: inputs with their spaces, outputs, conditions, the reference solver.

See :mod:`sciml.problem` for the overview.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._checks import as_float_array, check_finite, check_positive_int
from ..errors import ArgumentValueError, ConfigError, ProblemError, ShapeError, UnknownNameError
from ..fields import Field, Grid

__all__ = ["Input", "Dirichlet", "Neumann", "Periodic", "Initial", "Problem"]

Value = float | str | Callable[..., Any]
"""A condition value: a constant, the name of an input, or a callable of the coordinates."""


@dataclass(frozen=True)
class Input:
    """A named input function of a problem.

    Parameters
    ----------
    name : str
        Keyword under which the input is passed (``solver(g=...)``) and stored in datasets.
    space : sciml.spaces.Space, optional
        Random space that samples the input; None for a fixed input.
    value : float or callable, optional
        Fixed value (constant or ``f(x, y, ...)``) when ``space`` is None.
    on : {"domain", "boundary"}
        ``"boundary"`` inputs only matter on the boundary nodes; on a grid they are stored as their
        discrete harmonic extension so that a neural operator sees one canonical smooth field for
        each boundary datum (any interior values a user passes are replaced).
    description : str
        One line for ``sciml problems``.
    variable : bool
        For a fixed input: a trained solver may be given other values of it (it then warns that
        the answer is an extrapolation). By default a trained solver refuses another value of a
        fixed input, since the model never saw one.
    """

    name: str
    space: Any = None
    value: Any = None
    on: str = "domain"
    description: str = ""
    variable: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ConfigError(f"Input: expected an identifier as name, got {self.name!r}")
        if self.on not in ("domain", "boundary"):
            raise UnknownNameError("input location", self.on, ["domain", "boundary"])
        if (self.space is None) == (self.value is None):
            raise ConfigError(f"Input {self.name!r}: give exactly one of space (random) or value (fixed)")

    @property
    def is_random(self) -> bool:
        return self.space is not None


@dataclass(frozen=True)
class Dirichlet:
    """``u = value`` on the part of the boundary where ``where(x)`` is True (all of it by default)."""

    value: Value = 0.0
    where: Callable[[np.ndarray], np.ndarray] | None = None
    output: str | None = None


@dataclass(frozen=True)
class Neumann:
    """``du/dn = value`` on the part of the boundary where ``where(x)`` is True."""

    value: Value = 0.0
    where: Callable[[np.ndarray], np.ndarray] | None = None
    output: str | None = None


@dataclass(frozen=True)
class Periodic:
    """Periodicity along coordinate axis ``axis`` with the given period."""

    axis: int = 0
    period: float | None = None


@dataclass(frozen=True)
class Initial:
    """``u(x, t0) = value`` where the time coordinate is axis ``time_axis`` of the points."""

    value: Value = 0.0
    time_axis: int = -1
    output: str | None = None


ReferenceFn = Callable[[dict[str, np.ndarray], Grid, dict[str, Any]], dict[str, np.ndarray]]


@dataclass
class Problem:
    """A family of PDE instances (see the module docstring).

    Parameters
    ----------
    name : str
        Short identifier (the problem file's stem for built-in problems).
    inputs : sequence of Input
    outputs : sequence of str
    grid : Grid, optional
        The default discretisation (used by ``sciml generate`` without ``--resolution``).
    domain : sciml.geometry.Domain, optional
        Continuous geometry for point sampling (PINNs).
    equation : callable, optional
        ``equation(u, x, inputs) -> Tensor | dict[str, Tensor]``: the PDE residual at points ``x``
        (torch, built with :mod:`sciml.diff`), ``inputs`` holding the input values at ``x``.
    conditions : sequence
        Dirichlet / Neumann / Periodic / Initial conditions.
    reference : callable, optional
        ``reference(inputs, grid, params) -> {output: array}``, batched: every input and output array
        has shape ``(B, *grid.shape)``; float64.
    system : callable, optional
        ``system(inputs, grid, params) -> (A, b)`` for one sample: the SPD linear system.
    observe : callable, optional
        ``observe(inputs, outputs, grid, params) -> {measurement: array}`` (batched), for inverse problems.
    params : dict
        Plain numbers recorded in datasets and checkpoints.
    solve_stride : int
        Data are made by solving on a grid ``solve_stride`` times finer and subsampling, as in the
        FNO Darcy benchmark (solving directly on the coarse grid differs by about 0.7%).
    description : str
    array_shapes : callable, optional
        ``array_shapes(grid) -> {name: shape}`` for inputs or outputs that are not one field on the
        grid, e.g. boundary measurements ``(L, n_boundary)`` (L patterns, one value per boundary
        node). ``make_samples`` returns those as ``(B, *shape)`` and datasets store them so; every
        other name is a field, ``(B, *grid.shape)``, stored as ``(B, 1, *grid.shape)``.
    """

    name: str
    inputs: Sequence[Input]
    outputs: Sequence[str]
    grid: Grid | None = None
    domain: Any = None
    equation: Callable[..., Any] | None = None
    conditions: Sequence[Any] = ()
    reference: ReferenceFn | None = None
    system: Callable[..., Any] | None = None
    observe: Callable[..., Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    solve_stride: int = 1
    description: str = ""
    array_shapes: Callable[[Grid], Mapping[str, Sequence[int]]] | None = None
    source: str | None = field(default=None, repr=False, compare=False)
    """The file the problem was loaded from (set by :func:`load_problem`), recorded in checkpoints."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ProblemError(f"Problem: expected a non-empty name, got {self.name!r}")
        self.inputs = tuple(self.inputs)
        self.outputs = tuple(self.outputs)
        if not self.outputs:
            raise ProblemError(f"Problem {self.name!r}: expected at least one output name")
        names = [i.name for i in self.inputs] + list(self.outputs)
        if len(set(names)) != len(names):
            raise ProblemError(f"Problem {self.name!r}: input and output names must be unique, got {names}")
        for inp in self.inputs:
            if not isinstance(inp, Input):
                raise ProblemError(f"Problem {self.name!r}: inputs must be Input objects, got {type(inp).__name__}")
        self.solve_stride = check_positive_int("solve_stride", self.solve_stride)
        try:
            json.dumps(self.params)
        except TypeError as exc:
            raise ProblemError(f"Problem {self.name!r}: params must be JSON numbers/strings ({exc})") from None
        if self.grid is not None and not isinstance(self.grid, Grid):
            raise ProblemError(f"Problem {self.name!r}: grid must be a Grid, got {type(self.grid).__name__}")

    # -- introspection ------------------------------------------------------------------------
    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.inputs)

    @property
    def random_inputs(self) -> tuple[Input, ...]:
        return tuple(i for i in self.inputs if i.is_random)

    def input(self, name: str) -> Input:
        for inp in self.inputs:
            if inp.name == name:
                return inp
        raise UnknownNameError(f"input of problem {self.name!r}", name, self.input_names)

    def fingerprint(self) -> str:
        """A short hash of the problem's name, inputs' spaces and params, stored in datasets."""
        spec = {
            "name": self.name,
            "params": self.params,
            "inputs": {i.name: (i.space.to_dict() if i.is_random else repr(i.value)) for i in self.inputs},
            "outputs": list(self.outputs),
            "solve_stride": self.solve_stride,
        }
        return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary used by ``sciml problems`` and stored in datasets/checkpoints."""
        return {
            "name": self.name,
            "description": self.description,
            "inputs": {
                i.name: {
                    "space": i.space.to_dict() if i.is_random else None,
                    "fixed": None if i.is_random else repr(i.value),
                    "on": i.on,
                    "description": i.description,
                }
                for i in self.inputs
            },
            "outputs": list(self.outputs),
            "params": self.params,
            "default_grid": self.grid.to_dict() if self.grid is not None else None,
            "solve_stride": self.solve_stride,
            "has": [k for k in ("equation", "reference", "system", "observe") if getattr(self, k) is not None],
        }

    # -- grids ---------------------------------------------------------------------------------
    def array_shape(self, name: str, grid: Grid) -> tuple[int, ...] | None:
        """Per-sample shape of ``name`` on ``grid`` if it is not a field on the grid (None if it is)."""
        shapes = self.array_shapes(grid) if self.array_shapes is not None else {}
        return None if name not in shapes else tuple(int(k) for k in shapes[name])

    def solve_grid(self, grid: Grid) -> Grid:
        """The finer grid on which data for ``grid`` are solved (``grid`` itself if stride 1)."""
        s = self.solve_stride
        return Grid(tuple((n - 1) * s + 1 for n in grid.shape), grid.bounds)

    def resolve_grid(self, grid: Grid | int | None) -> Grid:
        """A Grid from a Grid, a resolution (nodes per axis of the default grid's box) or None."""
        if isinstance(grid, Grid):
            return grid
        if self.grid is None:
            raise ProblemError(f"Problem {self.name!r} has no default grid; pass a Grid")
        if grid is None:
            return self.grid
        n = check_positive_int("resolution", grid)
        return Grid((n,) * self.grid.ndim, self.grid.bounds)

    # -- inputs --------------------------------------------------------------------------------
    def sample_inputs(self, n: int, grid: Grid, seed: int | np.random.Generator) -> dict[str, np.ndarray]:
        """Draw ``n`` instances of every input on ``grid``: ``{name: (n, *grid.shape)}`` float64.

        Each random input gets its own child generator so that adding an input to a problem does
        not change the samples of the others.
        """
        n = check_positive_int("n", n)
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        children = rng.spawn(len(self.inputs))
        raw: dict[str, np.ndarray] = {}
        for inp, child in zip(self.inputs, children):
            if inp.is_random:
                raw[inp.name] = np.asarray(inp.space.sample(n, grid, child), dtype=np.float64)
            else:
                raw[inp.name] = np.broadcast_to(_evaluate(inp.value, grid, inp.name), (n, *grid.shape)).copy()
        return self._canonical(raw, grid)

    def prepare_inputs(self, values: Mapping[str, Any], grid: Grid, fill_fixed: bool = True) -> dict[str, np.ndarray]:
        """Validate user inputs and bring them to ``{name: (B, *grid.shape)}`` float64.

        Each value may be an array on ``grid`` (with or without the batch axis), a number, a
        callable of the coordinates (``lambda x, y: ...``), a formula string (``"sin(pi*x)*y"``) or
        a :class:`~sciml.fields.Field` on another grid (resampled). Fixed inputs not given are
        filled in; random inputs must all be given.
        """
        unknown = set(values) - set(self.input_names)
        if unknown:
            raise UnknownNameError(f"input of problem {self.name!r}", sorted(unknown)[0], self.input_names)
        out: dict[str, np.ndarray] = {}
        for inp in self.inputs:
            if inp.name in values:
                arr = _evaluate(values[inp.name], grid, inp.name)
            elif not inp.is_random and fill_fixed:
                arr = _evaluate(inp.value, grid, inp.name)
            else:
                missing = [i.name for i in self.inputs if i.is_random and i.name not in values]
                raise ProblemError(f"problem {self.name!r}: missing input(s) {missing}; expected {list(self.input_names)}")
            out[inp.name] = arr if arr.ndim == grid.ndim + 1 else arr[None]
        batch = {v.shape[0] for v in out.values()}
        if len(batch - {1}) > 1:
            raise ShapeError("input batch sizes", "all equal (or 1)", tuple(v.shape[0] for v in out.values()))
        b = max(batch, default=1)  # a problem without inputs has one instance
        out = {k: np.broadcast_to(v, (b, *grid.shape)).copy() for k, v in out.items()}
        return self._canonical(out, grid)

    def evaluate_input(self, name: str, value: Any, grid: Grid) -> np.ndarray:
        """One input's value (array, number, callable, formula or Field) as ``(B, *grid.shape)``,
        canonicalised like :meth:`prepare_inputs` does (boundary inputs: harmonic extension)."""
        self.input(name)  # raises UnknownNameError naming the problem's inputs
        arr = _evaluate(value, grid, name)
        return self._canonical({name: arr if arr.ndim == grid.ndim + 1 else arr[None]}, grid)[name]

    def _canonical(self, values: dict[str, np.ndarray], grid: Grid) -> dict[str, np.ndarray]:
        """Replace boundary inputs' interior by the discrete harmonic extension of their trace."""
        boundary = [i.name for i in self.inputs if i.on == "boundary" and i.name in values]
        if boundary:
            from ..numerics.fd import harmonic_extension

            for name in boundary:
                values[name] = harmonic_extension(values[name], grid)
        return values

    def dirichlet_nodes(self, grid: Grid, inputs: Mapping[str, np.ndarray]) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """Where the Dirichlet conditions fix the outputs on ``grid``, and to what.

        Returns ``[(output, mask, values)]``: ``mask`` the boundary nodes the condition covers
        (``grid.shape``, bool), ``values`` ``(B, *grid.shape)`` (read on the mask only). ``inputs`` are
        prepared inputs ``{name: (B, *grid.shape)}``; a condition value naming an input reads it, a
        number, formula or callable of the coordinates is evaluated on the grid.
        """
        batch = next(iter(inputs.values())).shape[0] if inputs else 1
        boundary = np.zeros(grid.shape, dtype=bool)
        # Faces of a time axis (initial conditions) or of a periodic axis are not Dirichlet boundary.
        skip = {c.axis % grid.ndim for c in self.conditions if isinstance(c, Periodic)}
        skip |= {c.time_axis % grid.ndim for c in self.conditions if isinstance(c, Initial)}
        for axis in set(range(grid.ndim)) - skip:
            for end in (0, -1):
                index = [slice(None)] * grid.ndim
                index[axis] = end
                boundary[tuple(index)] = True
        out = []
        for cond in self.conditions:
            if not isinstance(cond, Dirichlet):
                continue
            mask = boundary
            if cond.where is not None:
                mask = boundary & np.asarray(cond.where(grid.points()), dtype=bool).reshape(grid.shape)
            if isinstance(cond.value, str) and cond.value in self.input_names:
                values = np.asarray(inputs[cond.value], dtype=np.float64)
            else:
                values = np.broadcast_to(_evaluate(cond.value, grid, "Dirichlet value"), (batch, *grid.shape))
            names = self.outputs if cond.output is None else (cond.output,)
            out += [(name, mask, values) for name in names]
        return out

    # -- reference -----------------------------------------------------------------------------
    def solve_batch(self, inputs: Mapping[str, np.ndarray], grid: Grid) -> dict[str, np.ndarray]:
        """Run the reference solver on prepared inputs ``{name: (B, *grid.shape)}``."""
        if self.reference is None:
            raise ProblemError(f"problem {self.name!r} has no reference solver")
        for name, values in inputs.items():
            check_finite(f"input {name!r} of problem {self.name!r}", values)
        try:
            outputs = self.reference(dict(inputs), grid, dict(self.params))
        except ArgumentValueError as exc:
            named = _name_the_input(exc, inputs, self.name)
            if named is None:
                raise
            raise named from None
        missing = set(self.outputs) - set(outputs)
        if missing:
            raise ProblemError(f"reference of {self.name!r} returned {sorted(outputs)}, missing {sorted(missing)}")
        b = next(iter(inputs.values())).shape[0] if inputs else 1
        for name in self.outputs:
            arr = as_float_array(f"reference output {name!r}", outputs[name])
            expected = (b, *(self.array_shape(name, grid) or grid.shape))
            if arr.shape != expected:
                raise ShapeError(f"reference output {name!r}", expected, arr.shape)
            outputs[name] = arr
        return {name: outputs[name] for name in self.outputs}

    def solve(self, grid: Grid | int | None = None, **inputs: Any) -> dict[str, Field]:
        """Reference solution of one instance as Fields: ``problem.solve(g="sin(pi*x)")``."""
        grid = self.resolve_grid(grid)
        prepared = self.prepare_inputs(inputs, grid)
        batch = {v.shape[0] for v in prepared.values()} or {1}
        if batch != {1}:
            raise ShapeError("Problem.solve inputs", "one instance (batch size 1)", sorted(batch))
        outputs = self.solve_batch(prepared, grid)
        return {name: Field(v[0], grid, name) for name, v in outputs.items()}

    def make_samples(self, n: int, grid: Grid, seed: int | np.random.Generator) -> tuple[dict, dict]:
        """Draw ``n`` inputs on the solve grid, solve there and subsample to ``grid``."""
        fine = self.solve_grid(grid)
        if fine != grid and self.array_shapes is not None:
            raise ProblemError(f"problem {self.name!r}: arrays that are not fields on the grid (array_shapes) are "
                               "not subsampled from a finer solve grid; use solve_stride=1 or override make_samples")
        inputs = self.sample_inputs(n, fine, seed)
        outputs = self.solve_batch(inputs, fine)
        if fine != grid:
            index = (slice(None),) + (slice(None, None, self.solve_stride),) * grid.ndim
            inputs = {k: v[index] for k, v in inputs.items()}
            outputs = {k: v[index] for k, v in outputs.items()}
        return inputs, outputs


def _name_the_input(exc: ArgumentValueError, inputs: Mapping[str, np.ndarray], problem: str) -> ConfigError | None:
    """A numerics check's error (it names its own argument, e.g. ``solve_elliptic``'s ``a``, and keeps the
    values it refused) retold with the name of the problem's input whose values were passed there;
    None when that input cannot be told (the reference passed something computed from the inputs)."""
    argument, detail, values = exc.argument, exc.detail, exc.values
    if values is None:
        return None
    hits = []
    for name, arr in inputs.items():
        try:
            same = np.array_equal(np.broadcast_to(values, np.shape(arr)), arr)
        except ValueError:  # shapes that do not broadcast: not this input
            same = False
        if same:
            hits.append(name)
    if len(hits) != 1:
        return None
    return ConfigError(f"input {hits[0]!r} of problem {problem!r} (the reference solver's {argument!r}): {detail}")


def _evaluate(value: Any, grid: Grid, name: str) -> np.ndarray:
    """Turn a user value (array, number, callable, formula, Field) into an array on ``grid``."""
    from ..formula import compile_formula

    if isinstance(value, Field):
        if value.disc != grid:
            value = value.on(grid)
        value = value.numpy()
    if isinstance(value, str):
        value = compile_formula(value)
    if callable(value):
        coords = grid.coord_arrays()
        try:
            result = value(**coords)
        except TypeError:
            result = value(*coords.values())
        arr = as_float_array(f"input {name!r} (from callable)", result)
        return np.broadcast_to(arr, grid.shape).astype(np.float64).copy()
    arr = as_float_array(f"input {name!r}", value)
    if arr.ndim == 0:
        return np.full(grid.shape, float(arr))
    if arr.shape == grid.shape or (arr.ndim == grid.ndim + 1 and arr.shape[1:] == grid.shape):
        return arr
    if arr.ndim == grid.ndim + 2 and arr.shape[1] == 1 and arr.shape[2:] == grid.shape:
        return arr[:, 0]  # channels-first (B, 1, *shape)
    raise ShapeError(f"input {name!r}", f"{grid.shape} or (B, *{grid.shape}) on {grid!r}", arr.shape)
