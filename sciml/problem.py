"""Problems: a family of PDE instances defined once and read by every method.

A :class:`Problem` names its random or fixed **inputs** (each with a space that samples it), its
**outputs**, the PDE residual (``equation``, torch, for PINNs), boundary/initial **conditions**, the
classical **reference** solver (float64, used to make data, to validate and as the speed baseline),
optional ``system`` (the linear system, for learned linear solvers) and ``observe`` (measurements,
for inverse problems), and plain-number ``params``.

Problem files live in ``problems/NAME.py`` and define ``problem``; :func:`load_problem` loads a
built-in one by name or a user's file by path, the same way.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._checks import as_float_array, check_finite, check_positive_int
from .errors import ArgumentValueError, ConfigError, ProblemError, ShapeError, UnknownNameError
from .fields import Field, Grid

__all__ = [
    "Input",
    "Dirichlet",
    "Neumann",
    "Periodic",
    "Initial",
    "Problem",
    "InverseProblem",
    "load_problem",
    "list_problems",
    "problems_dirs",
]

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
            from .numerics.fd import harmonic_extension

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
            if arr.shape != (b, *grid.shape):
                raise ShapeError(f"reference output {name!r}", (b, *grid.shape), arr.shape)
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
        inputs = self.sample_inputs(n, fine, seed)
        outputs = self.solve_batch(inputs, fine)
        if fine != grid:
            index = (slice(None),) + (slice(None, None, self.solve_stride),) * grid.ndim
            inputs = {k: v[index] for k, v in inputs.items()}
            outputs = {k: v[index] for k, v in outputs.items()}
        return inputs, outputs


@dataclass
class InverseProblem(Problem):
    """Swap roles: measurements of a forward problem are the inputs, its coefficient the output.

    Build with :meth:`from_forward`; data are made by sampling the forward problem, solving it,
    observing the solution and keeping ``(measurements -> unknown coefficient)`` pairs.

    ``noise`` adds relative Gaussian noise to every measurement: ``m + noise * rms(m) * xi`` with
    ``xi`` standard normal at every node and ``rms(m)`` the root mean square of that sample's
    measurement, so the noise has about ``noise`` times the measurement's L2 norm (0.01 is "1%
    noise"). The forward samples use the generator exactly as the forward problem does and the noise
    an independent child of it, so the same seed gives the same coefficients and solutions at every
    noise level. ``output_size`` says that the unknown is sought on a coarser grid of that many nodes
    per axis over the same box, a stride of the data grid (data still hold it on the data grid, as
    every sciml dataset holds inputs and outputs on one grid; :class:`~sciml.operators.OperatorTask`
    compares there). Both are recorded in ``params``.
    """

    forward: Problem | None = None
    unknown: str = ""
    noise: float = 0.0
    output_size: int | None = None

    @classmethod
    def from_forward(cls, forward: Problem, unknown: str, measurements: Sequence[str], name: str | None = None,
                     noise: float = 0.0, output_size: int | None = None, grid: Grid | None = None) -> InverseProblem:
        """The inverse of ``forward``: ``measurements`` (names its ``observe`` returns) to its input ``unknown``.

        ``noise`` and ``output_size`` as in the class docstring; ``grid`` the default data grid
        (the forward problem's by default).
        """
        if forward.observe is None:
            raise ProblemError(f"problem {forward.name!r} has no observe(); it cannot be inverted")
        forward.input(unknown)  # raises if unknown is not an input
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not (np.isfinite(noise) and noise >= 0):
            raise ConfigError(f"InverseProblem noise: expected a finite number >= 0, got {noise!r}")
        if output_size is not None and check_positive_int("InverseProblem output_size", output_size) < 2:
            raise ConfigError(f"InverseProblem output_size: expected at least 2 nodes, got {output_size}")
        # Measurements are data, not sampled: mark them as fixed placeholders (value 0) so the
        # generic input machinery validates names; make_samples produces the real values.
        inputs = [Input(m, value=0.0, description=f"measurement of {forward.name}") for m in measurements]
        params = {**forward.params, "noise": float(noise), "forward_fingerprint": forward.fingerprint()}
        if output_size is not None:
            params["output_size"] = output_size
        extra = f" with {100 * noise:g}% noise" if noise else ""
        coarse = f" on {output_size} nodes per axis" if output_size is not None else ""
        return cls(
            name=name or f"{forward.name}_inverse",
            inputs=inputs,
            outputs=(unknown,),
            grid=grid or forward.grid,
            params=params,
            solve_stride=forward.solve_stride,
            description=f"inverse of {forward.name}: {', '.join(measurements)}{extra} -> {unknown}{coarse}",
            forward=forward,
            unknown=unknown,
            noise=float(noise),
            output_size=output_size,
        )

    def make_samples(self, n: int, grid: Grid, seed: int | np.random.Generator) -> tuple[dict, dict]:
        assert self.forward is not None
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        fwd_inputs, fwd_outputs = self.forward.make_samples(n, grid, rng)
        measured = self.forward.observe(fwd_inputs, fwd_outputs, grid, dict(self.forward.params))
        missing = set(self.input_names) - set(measured)
        if missing:
            raise ProblemError(f"observe() of {self.forward.name!r} did not return {sorted(missing)}")
        measured = {k: np.asarray(measured[k], dtype=np.float64) for k in self.input_names}
        return self.add_noise(measured, rng.spawn(1)[0]), {self.unknown: fwd_inputs[self.unknown]}

    def add_noise(self, measured: Mapping[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``measured`` (``{name: (B, *grid)}``) with the relative Gaussian noise of the class docstring."""
        out = {name: np.asarray(measured[name], dtype=np.float64) for name in self.input_names}
        for name, m in out.items() if self.noise else ():  # one draw per measurement, in the problem's order
            rms = np.sqrt(np.mean(m.reshape(m.shape[0], -1) ** 2, axis=1)).reshape((-1,) + (1,) * (m.ndim - 1))
            out[name] = m + self.noise * rms * rng.standard_normal(m.shape)
        return out


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
    from .formula import compile_formula

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


# -- problem files --------------------------------------------------------------------------------
def problems_dirs() -> list[Path]:
    """Folders searched for problem files: ``$SCIML_PROBLEMS_PATH`` entries, then the built-ins."""
    dirs = [Path(p) for p in os.environ.get("SCIML_PROBLEMS_PATH", "").split(os.pathsep) if p]
    here = Path(__file__).resolve().parent
    # The built-ins ship inside the package as sciml/_problems in a wheel, and sit at the top of
    # the repository (problems/) in a source checkout or an editable install.
    dirs += [here / "_problems", here.parent / "problems"]
    return [d for d in dirs if d.is_dir()]


def list_problems() -> list[str]:
    """Names of the problems that :func:`load_problem` finds by name."""
    names = {p.stem for d in problems_dirs() for p in d.glob("*.py") if not p.stem.startswith("_")}
    return sorted(names)


_CACHE: dict[str, Problem] = {}


def load_problem(name_or_path: str | os.PathLike[str]) -> Problem:
    """Load ``problem`` from ``problems/NAME.py`` or from a path to any Python file defining it."""
    text = os.fspath(name_or_path)
    path = Path(text)
    if text.endswith(".py") or path.is_file():
        if not path.is_file():
            raise ProblemError(f"load_problem: no such problem file {str(path)!r}")
    else:
        found = [d / f"{text}.py" for d in problems_dirs() if (d / f"{text}.py").is_file()]
        if not found:
            raise UnknownNameError("problem", text, list_problems())
        path = found[0]
    key = str(path.resolve())
    if key in _CACHE:
        return _CACHE[key]
    module_name = "sciml_problem_" + hashlib.sha1(key.encode()).hexdigest()[:10]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ProblemError(f"load_problem: cannot import {str(path)!r}")
    module = importlib.util.module_from_spec(spec)
    # registered like any imported module, so that tools which look functions' modules up by name
    # (pickle, torch.compile's tracing) find it
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    problem = getattr(module, "problem", None)
    if not isinstance(problem, Problem):
        raise ProblemError(f"{str(path)!r} must define `problem` as a sciml.Problem, got {type(problem).__name__}")
    if problem.source is None:
        problem.source = key
    _CACHE[key] = problem
    return problem
