"""DeepONet data: the sensors the branch reads and the two data layouts.

* :class:`Sensors`: which grid nodes the branch reads, per input (all nodes, every k-th boundary
  node in perimeter order, a coarse interior lattice...); it turns arrays on the grid into branch
  vectors and records itself in checkpoints, so a :class:`~sciml.deeponet.solver.PointSolver` reads new
  inputs exactly where training did.
* :class:`DeepONetData`: ``u (N, m)``, query points ``x`` and labels ``y (N, C, P)``, in the
  **Cartesian-product** layout (``x (P, d)`` shared by all functions, "aligned" data) or with
  **per-function points** (``x (N, P, d)``; the paper's pointwise triplets are ``P = 1``).
* :func:`make_deeponet_data`: draws input functions from a :class:`~sciml.problem.Problem`, runs its
  reference solver and builds either layout; query points are the grid nodes, random nodes, or
  uniform random points (labels then interpolated with local cubics from the solve grid).

The task that trains on them is :class:`~sciml.deeponet.task.DeepONetTask`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from .._checks import as_float_array, check_name, check_positive_int
from ..errors import ConfigError, ShapeError, UnknownNameError
from ..fields import Grid

__all__ = ["Sensors", "DeepONetData", "make_deeponet_data", "interpolate_cubic", "QUERIES"]

QUERIES = ("grid", "nodes", "uniform")


# -- sensors ---------------------------------------------------------------------------------------
class Sensors:
    """Grid nodes at which a DeepONet's branch reads each input function.

    Parameters
    ----------
    grid : Grid
        The grid the inputs are given on (the training grid).
    nodes : mapping of str to int array (m_i, grid.ndim)
        Multi-indices of the sensor nodes of each input, in branch order; the branch vector is
        the concatenation over inputs in the mapping's order.

    Examples
    --------
    >>> g = Grid(33, ndim=2)
    >>> s = Sensors.boundary(g, "g", every=2) + Sensors.interior(g, "f", stride=8)
    >>> s.size, s.names
    (73, ('g', 'f'))
    """

    def __init__(self, grid: Grid, nodes: Mapping[str, Any]) -> None:
        if not isinstance(grid, Grid):
            raise ConfigError(f"Sensors: expected a Grid, got {type(grid).__name__}")
        if not isinstance(nodes, Mapping) or not nodes:
            raise ConfigError(f"Sensors: expected a non-empty mapping input name -> node indices, "
                              f"got {nodes!r}")
        self.grid = grid
        self.nodes: dict[str, np.ndarray] = {}
        for name, idx in nodes.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ConfigError(f"Sensors: expected input names that are identifiers, got {name!r}")
            arr = np.asarray(idx)
            if arr.dtype.kind not in "iu" or arr.ndim != 2 or arr.shape[1] != grid.ndim or arr.shape[0] == 0:
                raise ShapeError(f"Sensors nodes of {name!r}", f"(m, {grid.ndim}) integer indices", arr.shape)
            if np.any(arr < 0) or np.any(arr >= np.asarray(grid.shape)):
                raise ConfigError(f"Sensors {name!r}: node indices outside the grid of shape {grid.shape}")
            self.nodes[name] = arr.astype(np.int64)

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def grid_nodes(cls, grid: Grid, name: str, stride: int = 1,
                   fix: Mapping[int, int] | None = None) -> Sensors:
        """Every ``stride``-th node of ``grid`` (C order); ``fix={axis: index}`` pins axes (``t = 0``)."""
        stride = check_positive_int("stride", stride)
        fix = dict(fix or {})
        axes = []
        for axis, n in enumerate(grid.shape):
            if axis in fix:
                if not 0 <= fix[axis] < n:
                    raise ConfigError(f"Sensors.grid_nodes: fix[{axis}]={fix[axis]} outside 0..{n - 1}")
                axes.append(np.array([fix[axis]]))
            else:
                axes.append(np.arange(0, n, stride))
        mesh = np.meshgrid(*axes, indexing="ij")
        return cls(grid, {name: np.stack([m.reshape(-1) for m in mesh], axis=1)})

    @classmethod
    def boundary(cls, grid: Grid, name: str, every: int = 1) -> Sensors:
        """Every ``every``-th boundary node in perimeter order (:func:`sciml.spaces.boundary_indices`)."""
        from ..spaces import boundary_indices

        every = check_positive_int("every", every)
        index, _ = boundary_indices(grid)
        return cls(grid, {name: index[::every]})

    @classmethod
    def interior(cls, grid: Grid, name: str, stride: int = 1) -> Sensors:
        """Interior nodes whose indices are multiples of ``stride`` on every axis."""
        stride = check_positive_int("stride", stride)
        axes = [np.arange(stride, n - 1, stride) for n in grid.shape]
        if any(a.size == 0 for a in axes):
            raise ConfigError(f"Sensors.interior: stride {stride} leaves no interior node on grid "
                              f"{grid.shape}")
        mesh = np.meshgrid(*axes, indexing="ij")
        return cls(grid, {name: np.stack([m.reshape(-1) for m in mesh], axis=1)})

    def __add__(self, other: Sensors) -> Sensors:
        if not isinstance(other, Sensors) or other.grid != self.grid:
            raise ConfigError("Sensors: only sensors on the same grid can be combined")
        both = set(self.nodes) & set(other.nodes)
        if both:
            raise ConfigError(f"Sensors: inputs {sorted(both)} are read by both sensor sets")
        return Sensors(self.grid, {**self.nodes, **other.nodes})

    # -- properties -----------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.nodes)

    @property
    def size(self) -> int:
        """Total number of sensors ``m`` (the branch's input size)."""
        return int(sum(len(v) for v in self.nodes.values()))

    def coords(self, name: str) -> np.ndarray:
        """Coordinates ``(m_i, ndim)`` of the sensors of input ``name``."""
        if name not in self.nodes:
            raise UnknownNameError("sensor input", name, self.names)
        idx = self.nodes[name]
        return np.stack([ax[idx[:, i]] for i, ax in enumerate(self.grid.axes)], axis=1)

    def read(self, values: Mapping[str, Any]) -> np.ndarray:
        """Branch vectors ``(B, m)`` from arrays ``{name: (B, *grid.shape)}`` on the grid."""
        parts = []
        for name, idx in self.nodes.items():
            if name not in values:
                raise UnknownNameError("input for the sensors", name, list(values))
            arr = as_float_array(f"input {name!r}", values[name])
            if arr.shape[1:] != self.grid.shape or arr.ndim != self.grid.ndim + 1:
                raise ShapeError(f"input {name!r}", f"(B, *{self.grid.shape})", arr.shape)
            parts.append(arr[(slice(None), *idx.T)])
        return np.concatenate(parts, axis=1)

    def to_dict(self) -> dict[str, Any]:
        return {"grid": self.grid.to_dict(), "nodes": {k: v.tolist() for k, v in self.nodes.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sensors:
        try:
            nodes = {k: np.asarray(v, dtype=np.int64) for k, v in data["nodes"].items()}
            return cls(Grid.from_dict(data["grid"]), nodes)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"Sensors.from_dict: expected {{'grid', 'nodes'}}, got {data!r} "
                              f"({exc})") from None

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}: {len(v)}" for k, v in self.nodes.items())
        return f"Sensors({counts} on {self.grid!r})"


# -- data ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeepONetData:
    """A DeepONet data set: sensor values ``u (N, m)``, points ``x``, labels ``y (N, C, P)`` (float32).

    ``x`` is ``(P, d)`` for the Cartesian-product layout (the same points for every function) or
    ``(N, P, d)`` for per-function points (``P = 1``: the paper's pointwise triplets).
    """

    u: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        for name in ("u", "x", "y"):
            value = getattr(self, name)
            if not isinstance(value, torch.Tensor) or not value.is_floating_point():
                raise ConfigError(f"DeepONetData.{name}: expected a floating point tensor, "
                                  f"got {type(value).__name__}")
        n = self.u.shape[0]
        if self.u.ndim != 2:
            raise ShapeError("DeepONetData.u", "(N, m)", tuple(self.u.shape))
        if self.x.ndim == 3 and self.x.shape[0] != n or self.x.ndim not in (2, 3):
            raise ShapeError("DeepONetData.x", f"(P, d) or ({n}, P, d)", tuple(self.x.shape))
        p = self.x.shape[-2]
        if self.y.ndim != 3 or self.y.shape[0] != n or self.y.shape[2] != p:
            raise ShapeError("DeepONetData.y", f"({n}, C, {p})", tuple(self.y.shape))

    @property
    def layout(self) -> str:
        """``"cartesian"`` (shared points) or ``"pointwise"`` (per-function points)."""
        return "cartesian" if self.x.ndim == 2 else "pointwise"

    def __len__(self) -> int:
        return int(self.u.shape[0])

    def subset(self, index: Any) -> DeepONetData:
        """The functions ``index`` (a slice or integer array)."""
        x = self.x if self.x.ndim == 2 else self.x[index]
        return DeepONetData(self.u[index], x, self.y[index])

    def to(self, device: str | torch.device) -> DeepONetData:
        return DeepONetData(self.u.to(device), self.x.to(device), self.y.to(device))

    def batch(self) -> dict[str, torch.Tensor]:
        """The whole set as one batch ``{"u", "x", "y"}``."""
        return {"u": self.u, "x": self.x, "y": self.y}

    def loader(self, batch_size: int | None = None) -> DataLoader:
        """A loader of ``{"u", "x", "y"}`` batches of ``batch_size`` functions (all by default), in order.

        Use it as ``val_data`` of the Trainer (or as ``train_data`` for mini-batches in order).
        """
        size = len(self) if batch_size is None else check_positive_int("batch_size", batch_size)
        return DataLoader(_Batches(self, size), batch_size=None)


class _Batches(IterableDataset):
    """Consecutive batches of functions of a :class:`DeepONetData` (shared points repeated)."""

    def __init__(self, data: DeepONetData, size: int) -> None:
        self.data, self.size = data, size

    def __len__(self) -> int:
        return math.ceil(len(self.data) / self.size)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for start in range(0, len(self.data), self.size):
            yield self.data.subset(slice(start, start + self.size)).batch()


def _cubic_weights(s: np.ndarray) -> np.ndarray:
    """Lagrange weights of the 4 nodes 0..3 at local coordinates ``s`` -> ``(..., 4)``."""
    return np.stack([-(s - 1) * (s - 2) * (s - 3) / 6, s * (s - 2) * (s - 3) / 2,
                     -s * (s - 1) * (s - 3) / 2, s * (s - 1) * (s - 2) / 6], axis=-1)


def interpolate_cubic(values: np.ndarray, grid: Grid, points: np.ndarray) -> np.ndarray:
    """Local tensor-product cubic interpolation of ``values (B, *grid.shape)`` at ``points (B, k, d)``.

    Each point uses the 4 nearest nodes per axis (shifted inwards at the ends): fourth-order
    accurate, ``O(h^4)``, and fully vectorised over samples and points. Needs 4 nodes per axis.
    """
    values = np.asarray(values, dtype=np.float64)
    b, k, d = points.shape
    if d != grid.ndim or values.shape != (b, *grid.shape) or min(grid.shape) < 4:
        raise ShapeError("interpolate_cubic", f"values (B, *{grid.shape}), points (B, k, {grid.ndim})",
                         (values.shape, points.shape))
    base, weights = [], []
    for axis, ((lo, _), h, n) in enumerate(zip(grid.bounds, grid.spacing, grid.shape)):
        pos = (points[..., axis] - lo) / h
        i0 = np.clip(np.floor(pos).astype(np.int64) - 1, 0, n - 4)
        base.append(i0)
        weights.append(_cubic_weights(pos - i0))
    flat = values.reshape(b, -1)
    strides = np.cumprod((1, *grid.shape[::-1]))[:-1][::-1]
    out = np.zeros((b, k))
    for offsets in np.ndindex(*(4,) * d):
        index = sum((base[a] + offsets[a]) * strides[a] for a in range(d))
        w = np.prod([weights[a][..., offsets[a]] for a in range(d)], axis=0)
        out += w * np.take_along_axis(flat, index, axis=1)
    return out


def make_deeponet_data(
    problem: Any,
    n: int,
    sensors: Sensors,
    *,
    seed: int | np.random.Generator,
    outputs: Sequence[str] | None = None,
    query: str = "grid",
    n_points: int = 1,
    query_stride: int = 1,
) -> DeepONetData:
    """Draw ``n`` input functions of ``problem``, solve them, and lay the data out for a DeepONet.

    Parameters
    ----------
    problem : Problem
        Supplies the input spaces and the reference solver (``problem.make_samples``).
    n : int
        Number of input functions.
    sensors : Sensors
        Where the branch reads the inputs; its grid is the data grid.
    seed : int or numpy Generator
        Seeds the input functions and the query points (independent streams).
    outputs : sequence of str, optional
        Output channels (all of the problem's by default).
    query : {"grid", "nodes", "uniform"}
        ``"grid"``: Cartesian layout at every ``query_stride``-th grid node. ``"nodes"``:
        ``n_points`` random grid nodes per function (with replacement), as the paper samples its
        PDE data. ``"uniform"``: ``n_points`` uniform random points per function in the grid's box
        (the paper's ODE triplets); labels are local cubic interpolants of the reference solution
        on the problem's solve grid (``solve_stride`` times finer), error ``O(h_fine^4)``.
    n_points : int
        Points per function for ``"nodes"`` and ``"uniform"``.
    query_stride : int
        Node stride of the ``"grid"`` layout.
    """
    from ..problem import Problem

    if not isinstance(problem, Problem):
        raise ConfigError(f"make_deeponet_data: expected a Problem, got {type(problem).__name__}")
    if not isinstance(sensors, Sensors):
        raise ConfigError(f"make_deeponet_data: expected Sensors, got {type(sensors).__name__}")
    n = check_positive_int("n", n)
    check_name("query", query, QUERIES)
    n_points = check_positive_int("n_points", n_points)
    query_stride = check_positive_int("query_stride", query_stride)
    outputs = tuple(outputs or problem.outputs)
    for name in outputs:
        check_name(f"output of problem {problem.name!r}", name, problem.outputs)
    for name in sensors.names:
        check_name(f"input of problem {problem.name!r}", name, problem.input_names)
    grid = sensors.grid
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    sample_rng, query_rng = rng.spawn(2)

    if query == "uniform":
        fine = problem.solve_grid(grid)
        inputs = problem.sample_inputs(n, fine, sample_rng)
        solved = problem.solve_batch(inputs, fine)
        stride = problem.solve_stride
        coarse = (slice(None),) + (slice(None, None, stride),) * grid.ndim
        u = sensors.read({k: v[coarse] for k, v in inputs.items()})
        lo = np.array([b[0] for b in grid.bounds])
        hi = np.array([b[1] for b in grid.bounds])
        x = lo + (hi - lo) * query_rng.random((n, n_points, grid.ndim))
        y = np.stack([interpolate_cubic(solved[name], fine, x) for name in outputs], axis=1)
    else:
        inputs, solved = problem.make_samples(n, grid, sample_rng)
        u = sensors.read(inputs)
        values = np.stack([solved[name].reshape(n, -1) for name in outputs], axis=1)  # (n, C, size)
        if query == "grid":
            every = (slice(None, None, query_stride),) * grid.ndim
            idx = np.arange(grid.size).reshape(grid.shape)[every].reshape(-1)
            x = grid.points()[idx]
            y = values[:, :, idx]
        else:
            idx = query_rng.integers(0, grid.size, size=(n, n_points))
            x = grid.points()[idx]
            y = np.take_along_axis(values, idx[:, None, :], axis=2)
    return DeepONetData(torch.as_tensor(u, dtype=torch.float32), torch.as_tensor(x, dtype=torch.float32),
                        torch.as_tensor(y, dtype=torch.float32))
