"""Fields: values of a named quantity on a Grid or a Mesh.

A :class:`Field` is values plus where they live (a :class:`~sciml.grid.Grid` or a
:class:`~sciml.geometry.Mesh`) plus a name; it can be resampled onto another grid, shown with
PyVista and saved as VTK. :class:`~sciml.grid.Grid`, :func:`~sciml.grid.relative_l2` and
:func:`~sciml.grid.resample` live in :mod:`sciml.grid` and are re-exported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ConfigError, ShapeError
from .grid import Grid, relative_l2, resample

if TYPE_CHECKING:  # pragma: no cover
    from .geometry.mesh import Mesh

__all__ = ["Grid", "Field", "relative_l2", "resample"]


class Field:
    """Values of one named quantity on a Grid or a Mesh.

    Parameters
    ----------
    values : array-like (numpy or torch)
        Shape ``disc.shape`` for a scalar field or ``(C, *disc.shape)`` for C components.
        For a Mesh, ``disc.shape`` is ``(n_points,)``.
    disc : Grid or Mesh
        Where the values live.
    name : str
        Used as the array name in VTK files and plot titles.
    units : str, optional
        Physical units, shown in plot titles and colour bars (``"u [K]"``) and kept in VTK files.
    """

    def __init__(self, values: Any, disc: Grid | Mesh, name: str = "u", units: str | None = None) -> None:
        shape = tuple(getattr(disc, "shape", ()))
        if not shape:
            raise ConfigError(f"Field: expected a Grid or Mesh as disc, got {type(disc).__name__}")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"Field: expected a non-empty string name, got {name!r}")
        vshape = tuple(values.shape) if hasattr(values, "shape") else np.shape(values)
        if vshape != shape and vshape[1:] != shape:
            raise ShapeError(f"Field {name!r} values", f"{shape} or (C, *{shape})", vshape)
        if not hasattr(values, "shape"):
            values = np.asarray(values, dtype=np.float64)
        if units is not None and not isinstance(units, str):
            raise ConfigError(f"Field: expected a string or None as units, got {units!r}")
        self.values = values
        self.disc = disc
        self.name = name
        self.units = units or None

    @property
    def n_components(self) -> int:
        return 1 if tuple(self.values.shape) == tuple(self.disc.shape) else int(self.values.shape[0])

    def numpy(self) -> np.ndarray:
        """Values as a float64 numpy array (copied off the GPU if needed)."""
        v = self.values
        if type(v).__module__.startswith("torch"):
            v = v.detach().cpu().double().numpy()
        return np.asarray(v, dtype=np.float64)

    def on(self, grid: Grid, method: str = "linear") -> Field:
        """Resample onto ``grid``: exact striding when ``grid`` is a subgrid, interpolation otherwise.

        ``method`` is ``"linear"`` or ``"cubic"`` (scipy's RegularGridInterpolator).
        """
        if not isinstance(self.disc, Grid) or not isinstance(grid, Grid):
            raise ConfigError("Field.on: resampling is defined from a Grid to a Grid")
        if grid.ndim != self.disc.ndim:
            raise ConfigError(f"Field.on: expected a {self.disc.ndim}-D target grid, got {grid.ndim}-D")
        values = self.numpy()
        stride = self.disc.stride_to(grid)
        if stride is not None:
            index = (Ellipsis,) + (slice(None, None, stride),) * grid.ndim
            return Field(values[index].copy(), grid, self.name, units=self.units)
        for (lo, hi), (slo, shi) in zip(grid.bounds, self.disc.bounds):
            if lo < slo - 1e-12 or hi > shi + 1e-12:
                raise ConfigError(f"Field.on: target bounds {grid.bounds} leave source {self.disc.bounds}")
        return Field(resample(values, self.disc, grid, method), grid, self.name, units=self.units)

    def to_pyvista(self) -> Any:
        """A PyVista dataset (ImageData on a grid, UnstructuredGrid on a mesh) holding the values."""
        from .viz.render import to_pyvista

        return to_pyvista(self)

    def plot(self, screenshot: str | None = None, *, title: str | None = None, **kwargs: Any) -> Any:
        """Show the field: x/y axes with ticks, a colour bar with values, ``name [units]`` as title.

        PyVista draws 2-D and 3-D fields (2-D seen from above); a field on a 1-D grid is a line
        plot. With ``screenshot`` the picture renders off-screen to that PNG (returned). Other
        keywords go to :func:`sciml.viz.render.plot` (``cmap``, ``panel_size``, ``show``, ...).
        """
        from .viz.render import plot

        if title is not None:
            kwargs["titles"] = [title]
        return plot([self], screenshot=screenshot, **kwargs)

    def save(self, path: str) -> str:
        """Write the field as ``.vtu`` (unstructured) or ``.vti`` (grid only) through PyVista."""
        from .viz.render import save_vtk

        return save_vtk([self], path)

    def __repr__(self) -> str:
        if self.units:
            return f"Field({self.name!r} [{self.units}], shape={tuple(self.values.shape)}, on={self.disc!r})"
        return f"Field({self.name!r}, shape={tuple(self.values.shape)}, on={self.disc!r})"
