"""PyVista views of fields: conversion, side-by-side plots, screenshots and VTK export.

PyVista is imported inside the functions, so ``import sciml`` stays light. Pictures render
off-screen whenever a screenshot path is given (Mesa's EGL works on machines without a display).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, UnknownNameError
from ..fields import Field, Grid

__all__ = ["to_pyvista", "plot", "compare", "save_vtk"]


def _pv() -> Any:
    import pyvista as pv

    return pv


def _point_array(field: Field) -> np.ndarray:
    """Values in VTK point order: x fastest (Fortran order over 'ij' arrays), components last."""
    values = field.numpy()
    if field.n_components == 1:
        return values.ravel(order="F") if isinstance(field.disc, Grid) else values.ravel()
    if isinstance(field.disc, Grid):
        return np.stack([c.ravel(order="F") for c in values], axis=-1)
    return values.reshape(values.shape[0], -1).T


def _dataset(disc: Any) -> Any:
    pv = _pv()
    if isinstance(disc, Grid):
        dims = list(disc.shape) + [1] * (3 - disc.ndim)
        spacing = list(disc.spacing) + [1.0] * (3 - disc.ndim)
        origin = [lo for lo, _ in disc.bounds] + [0.0] * (3 - disc.ndim)
        return pv.ImageData(dimensions=dims, spacing=spacing, origin=origin)
    if hasattr(disc, "to_pyvista"):
        return disc.to_pyvista()
    raise ConfigError(f"to_pyvista: expected a Grid or Mesh discretisation, got {type(disc).__name__}")


def to_pyvista(fields: Field | Sequence[Field]) -> Any:
    """A PyVista dataset (ImageData for grids, UnstructuredGrid for meshes) holding the fields.

    Several fields must share their discretisation; each becomes a point array named after it.
    """
    fields = [fields] if isinstance(fields, Field) else list(fields)
    if not fields:
        raise ConfigError("to_pyvista: expected at least one Field")
    disc = fields[0].disc
    for f in fields[1:]:
        if f.disc is not disc and f.disc != disc:
            raise ConfigError(f"to_pyvista: fields {fields[0].name!r} and {f.name!r} live on different discretisations")
    data = _dataset(disc)
    for f in fields:
        data.point_data[f.name] = _point_array(f)
    data.set_active_scalars(fields[0].name)
    return data


def save_vtk(fields: Field | Sequence[Field], path: str | os.PathLike[str]) -> str:
    """Write fields to ``.vti`` (grids), ``.vtu`` or ``.vtk``; the file is written atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".vti", ".vtu", ".vtk"):
        raise UnknownNameError("VTK file extension", suffix, [".vti", ".vtu", ".vtk"])
    data = to_pyvista(fields)
    if suffix == ".vti" and not isinstance(data, _pv().ImageData):
        raise ConfigError(f"save_vtk: .vti holds uniform grids only; use .vtu for {type(data).__name__}")
    if suffix == ".vtu":
        data = data.cast_to_unstructured_grid()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{suffix}")
    data.save(str(tmp))
    os.replace(tmp, path)
    return str(path)


def _clims(fields: Sequence[Field], share: Any) -> list[tuple[float, float] | None]:
    ranges = [(float(np.nanmin(f.numpy())), float(np.nanmax(f.numpy()))) for f in fields]
    if share is None:
        return [None] * len(fields)
    groups = [list(range(len(fields)))] if share == "all" else [list(g) for g in share]
    clims: list[tuple[float, float] | None] = [None] * len(fields)
    for group in groups:
        if any(not 0 <= i < len(fields) for i in group):
            raise ConfigError(f"plot: share_clim groups {share} index fields 0..{len(fields) - 1}")
        lo, hi = min(ranges[i][0] for i in group), max(ranges[i][1] for i in group)
        for i in group:
            clims[i] = (lo, hi if hi > lo else lo + 1e-12)
    return clims


def plot(
    fields: Field | Sequence[Field],
    screenshot: str | os.PathLike[str] | None = None,
    titles: Sequence[str] | None = None,
    share_clim: Any = None,
    cmap: str | Sequence[str] = "viridis",
    panel_size: tuple[int, int] = (420, 400),
    show: bool | None = None,
) -> str | None:
    """Show fields side by side, each with its own labelled colour bar.

    Parameters
    ----------
    fields : Field or sequence of Field
    screenshot : path, optional
        Render off-screen and write a PNG there (returned).
    titles : sequence of str, optional
        Panel titles; the field names by default.
    share_clim : None, "all" or list of index groups
        Fields in one group share a colour range (e.g. ``[[0, 1]]`` for prediction and reference).
    cmap : str or one per field
    panel_size : (width, height) of one panel in pixels
    show : bool, optional
        Open an interactive window; default: only when no screenshot is asked for.
    """
    pv = _pv()
    fields = [fields] if isinstance(fields, Field) else list(fields)
    if not fields:
        raise ConfigError("plot: expected at least one Field")
    titles = [f.name for f in fields] if titles is None else list(titles)
    if len(titles) != len(fields):
        raise ConfigError(f"plot: expected {len(fields)} titles, got {len(titles)}")
    cmaps = [cmap] * len(fields) if isinstance(cmap, str) else list(cmap)
    clims = _clims(fields, share_clim)
    off_screen = screenshot is not None and not show
    plotter = pv.Plotter(
        shape=(1, len(fields)),
        off_screen=off_screen,
        window_size=(panel_size[0] * len(fields), panel_size[1]),
        border=False,
    )
    flat = all(isinstance(f.disc, Grid) and f.disc.ndim <= 2 for f in fields)
    for i, (f, title) in enumerate(zip(fields, titles)):
        plotter.subplot(0, i)
        data = to_pyvista(f)
        plotter.add_mesh(
            data,
            scalars=f.name,
            cmap=cmaps[i],
            clim=clims[i],
            show_edges=False,
            scalar_bar_args={"title": title, "vertical": False, "position_x": 0.15, "position_y": 0.03, "width": 0.7, "height": 0.08, "fmt": "%.3g", "n_labels": 3},
        )
        plotter.add_text(title, font_size=11, position="upper_edge")
        if flat:
            plotter.view_xy()
            plotter.enable_parallel_projection()
            plotter.camera.zoom(0.88)  # leave room for the colour bar below
    path = None
    if screenshot is not None:
        path = str(screenshot)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        plotter.screenshot(path)
    if show or (show is None and screenshot is None):
        plotter.show()
    plotter.close()
    return path


def compare(
    prediction: Field, reference: Field, screenshot: str | os.PathLike[str] | None = None, **kwargs: Any
) -> str | None:
    """Prediction, reference and pointwise absolute error side by side.

    Prediction and reference share one colour range; the error has its own.
    """
    if prediction.disc != reference.disc:
        reference = reference.on(prediction.disc)
    error = Field(np.abs(prediction.numpy() - reference.numpy()), prediction.disc, "abs_error")
    pred = Field(prediction.numpy(), prediction.disc, "prediction")
    ref = Field(reference.numpy(), reference.disc, "reference")
    kwargs.setdefault("titles", ["prediction", "reference", "absolute error"])
    kwargs.setdefault("cmap", ["viridis", "viridis", "magma"])
    return plot([pred, ref, error], screenshot=screenshot, share_clim=[[0, 1]], **kwargs)
