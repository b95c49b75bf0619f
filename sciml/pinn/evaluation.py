"""Evaluation side of :class:`~sciml.pinn.PINNTask`: predictions, residuals and errors at given points.

Kept apart from the loss terms: these methods work on numpy points of any size (in chunks, without
building a training graph) and against the reference solution, which is solved lazily the first
time an error is asked for. :meth:`PINNEvaluation.solve` turns the trained network into Fields on a
grid, NaN outside the domain (so that a picture shows the domain's shape).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .._checks import as_float_array, check_positive_int
from ..errors import ConfigError, ShapeError
from ..fields import Field
from ..grid import Grid
from . import sampling

__all__ = ["PINNEvaluation"]

_CHUNK = 8192  # points per forward pass when predicting or scoring candidates


class PINNEvaluation:
    """Mixin of :class:`~sciml.pinn.PINNTask` (uses its ``residuals``, ``forward``, points and problem)."""

    def pointwise_residual(self, x: Any) -> np.ndarray:
        """``sqrt(sum_k r_k^2)`` at numpy points ``(N, d)``, float64, evaluated in chunks."""
        arr = as_float_array("x", x)
        out = []
        device = self._x_interior.device
        with torch.enable_grad():
            for lo in range(0, len(arr), _CHUNK):
                xt = torch.as_tensor(arr[lo : lo + _CHUNK], dtype=self.dtype, device=device)
                xt.requires_grad_(True)
                res = self.residuals(xt)
                total = sum(r.detach().square() for r in res.values())
                out.append(total.sqrt().double().cpu().numpy())
        return np.concatenate(out)

    def predict(self, x: Any) -> np.ndarray:
        """Outputs ``(N, n_outputs)`` at numpy points ``(N, d)``, float64."""
        arr = as_float_array("x", x)
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise ShapeError("x", ("N", self.dim), arr.shape)
        device = self._x_interior.device
        with torch.no_grad():
            parts = [self(torch.as_tensor(arr[lo : lo + _CHUNK], dtype=self.dtype, device=device))
                     for lo in range(0, len(arr), _CHUNK)]
        return torch.cat(parts).double().cpu().numpy()

    def solve(self, grid: Grid | int | None = None) -> dict[str, Field]:
        """The network's outputs (hard constraints applied) on the nodes of a grid, as Fields by name.

        Parameters
        ----------
        grid : Grid, int or None
            A Grid of the domain's dimension; an int for that many nodes per axis on the domain's
            bounding box; None for the problem's default grid (when it has the domain's dimension)
            or else 65 nodes per axis on the bounding box.

        Returns
        -------
        dict of str to Field
            One Field per output, float64; NaN at the nodes outside the domain (the cut-out of an
            L-shape, the hole of a plate), which plots leave uncoloured.
        """
        grid = self._solve_grid(grid)
        points = grid.points()
        values = np.full((len(points), len(self.outputs)), np.nan)
        inside = self.domain.inside(points)
        if inside.any():
            values[inside] = self.predict(points[inside])
        return {name: Field(values[:, k].reshape(grid.shape), grid, name) for k, name in enumerate(self.outputs)}

    def _solve_grid(self, grid: Grid | int | None) -> Grid:
        box = tuple((float(lo), float(hi)) for lo, hi in np.asarray(self.domain.bbox, dtype=np.float64).T)
        if grid is None:
            default = getattr(self.problem, "grid", None)
            if isinstance(default, Grid) and default.ndim == self.dim:
                return default
            grid = 65
        if isinstance(grid, Grid):
            if grid.ndim != self.dim:
                raise ShapeError("solve grid", f"a {self.dim}-D Grid (the domain's dimension)", f"{grid.ndim}-D")
            return grid
        if not isinstance(grid, (int, np.integer)) or isinstance(grid, bool):
            raise ConfigError(f"solve: expected a Grid, a number of nodes per axis or None, got {grid!r}")
        if self.dim > 3:
            raise ConfigError(f"solve: grids have 1 to 3 axes; the domain is {self.dim}-D (use predict on points)")
        n = check_positive_int("solve grid nodes per axis", int(grid))
        return Grid((n,) * self.dim, box)

    def reference_solution(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Reference points ``(P, d)`` and values ``(P, n_outputs)`` for the error metrics, or None."""
        if self._reference is None and self._reference_spec is not None:
            self._reference = self._make_reference(self._reference_spec)
            self._reference_spec = None
        return self._reference

    def _make_reference(self, spec: Any) -> tuple[np.ndarray, np.ndarray] | None:
        if isinstance(spec, str) and spec == "auto":
            problem = self.problem
            if problem.reference is None or problem.grid is None or problem.grid.ndim != self.dim:
                return None
            grid = problem.grid
            data = problem.solve_batch(problem.prepare_inputs(self._inputs, grid), grid)
            values = np.stack([as_float_array(f"reference {k!r}", data[k]).reshape(-1)
                               for k in self.outputs], 1)
            # only the nodes in the domain: a grid over the box of an L-shape or a plate with a hole
            # has nodes where the network is not trained (and the reference carries filler values)
            points = grid.points()
            inside = self.domain.inside(points)
            return points[inside], values[inside]
        if isinstance(spec, (tuple, list)) and len(spec) == 2:
            x = sampling.check_points("reference points", spec[0], self.domain, "any")
            u = as_float_array("reference values", spec[1])
            u = u[:, None] if u.ndim == 1 else u
            if u.shape != (len(x), len(self.outputs)):
                raise ShapeError("reference values", (len(x), len(self.outputs)), u.shape)
            return x, u
        raise ConfigError(f"reference: expected 'auto', None or (x, u), got {type(spec).__name__}")

    def relative_error(self) -> dict[str, float]:
        """``{"rel_l2": ..., "mse": ...}`` against the reference (empty without one)."""
        ref = self.reference_solution()
        if ref is None:
            return {}
        pred = self.predict(ref[0])
        err = pred - ref[1]
        return {"rel_l2": float(np.linalg.norm(err) / max(np.linalg.norm(ref[1]), 1e-300)),
                "mse": float(np.mean(err**2))}

