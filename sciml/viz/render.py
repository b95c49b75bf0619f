"""Pictures of fields: conversion to PyVista, labelled panels, comparisons and VTK export.

Fields on 2-D and 3-D grids and on meshes are drawn with PyVista (2-D seen from above with
parallel projection, x/y axes with ticks and titles, a colour bar with values, the field's name
and units in the title); fields on 1-D grids and boundary data traced along the boundary are
matplotlib line plots. PyVista, VTK and matplotlib are imported inside the functions, so
``import sciml`` stays light. A screenshot renders off-screen (Mesa's EGL works on machines
without a display), and VTK's and the GL driver's messages go to the ``sciml.viz`` logger instead
of the terminal (:mod:`sciml.viz._quiet`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import ConfigError, UnknownNameError
from ..grid import Grid, relative_l2
from ._lines import LinePanel, boundary_trace, mesh_boundary_trace
from ._panels import FieldPanel, render


class Field(Protocol):
    """What this module reads of a :class:`sciml.fields.Field` (which calls into this module, so the
    class is described here rather than imported). An optional ``units`` string is shown in titles."""

    name: str
    disc: Any
    n_components: int

    def numpy(self) -> np.ndarray: ...


__all__ = ["to_pyvista", "plot", "compare", "save_vtk", "read_metadata", "plot_dataset", "label"]

_ARC = "arc length s along the boundary (anticlockwise)"
_META = "sciml_metadata"


def _pv() -> Any:
    import pyvista as pv

    return pv


def _as_list(fields: Any) -> list[Any]:
    """One field or a sequence of them as a list. A Field is recognised by what it has (values on a
    discretisation), so this module needs only :mod:`sciml.grid`: :mod:`sciml.fields` calls into it."""
    return [fields] if hasattr(fields, "disc") and hasattr(fields, "numpy") else list(fields)


def label(field: Any) -> str:
    """``"name [units]"``, or the name alone when the field has no units."""
    units = getattr(field, "units", None)
    return f"{field.name} [{units}]" if units else field.name


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
    fields = _as_list(fields)
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


def save_vtk(
    fields: Field | Sequence[Field], path: str | os.PathLike[str], *, boundary: Sequence[str] = ()
) -> str:
    """Write fields to ``.vti`` (grids), ``.vtu`` or ``.vtk``; the file is written atomically.

    Every field becomes a point array (pass the inputs too: they belong with the answer). A grid
    saved as ``.vtu`` is made of quads (hexahedra in 3-D, lines in 1-D), so meshio reads it too.
    The field data array ``sciml_metadata`` (UTF-8 JSON as bytes) keeps the order of the fields,
    their units and ``boundary``: the names of the fields that are boundary data (``sciml plot``
    draws them along the boundary); :func:`read_metadata` reads it back.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".vti", ".vtu", ".vtk"):
        raise UnknownNameError("VTK file extension", suffix, [".vti", ".vtu", ".vtk"])
    fields = _as_list(fields)
    data = to_pyvista(fields)
    pv = _pv()
    if suffix == ".vti" and not isinstance(data, pv.ImageData):
        raise ConfigError(f"save_vtk: .vti holds uniform grids only; use .vtu for {type(data).__name__}")
    unknown = sorted(set(boundary) - {f.name for f in fields})
    if unknown:
        raise ConfigError(f"save_vtk: boundary names {unknown} are not among the fields {[f.name for f in fields]}")
    meta = {
        "order": [f.name for f in fields],
        "units": {f.name: str(f.units) for f in fields if getattr(f, "units", None)},
        "boundary": [str(b) for b in boundary],
    }
    data.field_data[_META] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    if suffix == ".vtu":
        if isinstance(data, pv.ImageData):  # pixels/voxels are not meshio cell types; quads are
            data = data.cast_to_structured_grid()
        data = data.cast_to_unstructured_grid()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{suffix}")
    data.save(str(tmp))
    os.replace(tmp, path)
    return str(path)


def read_metadata(dataset: Any) -> dict[str, Any]:
    """What :func:`save_vtk` kept of a PyVista dataset's fields: ``order``, ``units``, ``boundary``."""
    meta: dict[str, Any] = {"order": [], "units": {}, "boundary": []}
    if _META in dataset.field_data.keys():
        try:
            meta.update(json.loads(bytes(np.asarray(dataset.field_data[_META], dtype=np.uint8)).decode("utf-8")))
        except (ValueError, UnicodeDecodeError):  # written by something else: no metadata
            pass
    return meta


def _range(values: np.ndarray) -> tuple[float, float]:
    return float(np.nanmin(values)), float(np.nanmax(values))


def _shown(field: Field) -> np.ndarray:
    """The values a panel colours: the field, or its magnitude for several components off 1-D grids
    (PyVista colours vectors by magnitude; line plots draw each component)."""
    values = field.numpy()
    if field.n_components == 1 or _is_1d(field):
        return values
    return np.sqrt((values**2).sum(axis=0))


def _clims(fields: Sequence[Field], share: Any) -> list[tuple[float, float] | None]:
    if share is None:
        return [None] * len(fields)
    ranges = [_range(_shown(f)) for f in fields]
    groups = [list(range(len(fields)))] if share == "all" else [list(g) for g in share]
    clims: list[tuple[float, float] | None] = [None] * len(fields)
    for group in groups:
        if any(not 0 <= i < len(fields) for i in group):
            raise ConfigError(f"plot: share_clim groups {share} index fields 0..{len(fields) - 1}")
        lo, hi = min(ranges[i][0] for i in group), max(ranges[i][1] for i in group)
        for i in group:
            clims[i] = (lo, hi if hi > lo else lo + 1e-12)
    return clims


def _is_1d(field: Field) -> bool:
    return isinstance(field.disc, Grid) and field.disc.ndim == 1


def _curves(field: Field, x: np.ndarray, values: np.ndarray, name: str = "") -> list[tuple[np.ndarray, np.ndarray, str]]:
    if field.n_components == 1:
        return [(x, values, name)]
    return [(x, v, f"{name or field.name}[{c}]") for c, v in enumerate(values)]


def _panel(field: Field, title: str, clim: Any, cmap: str, bar_title: str | None = None) -> FieldPanel | LinePanel:
    """A line panel for a 1-D field, a PyVista panel otherwise."""
    if _is_1d(field):
        return LinePanel(title, _curves(field, field.disc.axes[0], field.numpy()), "x", label(field), clim)
    bar = bar_title or (label(field) if field.n_components == 1 else f"{label(field)} magnitude")
    return FieldPanel(title, to_pyvista(field), field.name, clim, cmap, bar)


def _boundary_panel(field: Field, title: str, clim: Any = None) -> LinePanel | None:
    """``field`` along the boundary of its 2-D grid or mesh by arc length, corners marked.

    None where there is no such boundary curve (1-D and 3-D discretisations)."""
    disc = field.disc
    if isinstance(disc, Grid) and disc.ndim == 2:
        s, values, marks = boundary_trace(disc, field.numpy())
    elif getattr(disc, "ndim", 0) == 2 and getattr(disc, "tdim", 0) == 2 and hasattr(disc, "boundary_facets"):
        s, values, marks = mesh_boundary_trace(disc.points, disc.boundary_facets(), field.numpy())
    else:
        return None
    return LinePanel(title, _curves(field, s, values), _ARC, label(field), clim, marks)


def _rows(panels: list[Any], ncols: int | None) -> list[list[Any]]:
    if not ncols or ncols >= len(panels):
        return [panels]
    return [panels[i : i + ncols] for i in range(0, len(panels), ncols)]


def plot(
    fields: Field | Sequence[Field],
    screenshot: str | os.PathLike[str] | None = None,
    titles: Sequence[str] | None = None,
    share_clim: Any = None,
    cmap: str | Sequence[str] = "viridis",
    panel_size: tuple[int, int] = (480, 420),
    show: bool | None = None,
    *,
    boundary: Sequence[str] = (),
    ncols: int | None = None,
    clims: Sequence[tuple[float, float] | None] | None = None,
) -> str | None:
    """Show fields side by side: axes with ticks and x/y titles, a colour bar with values each.

    Parameters
    ----------
    fields : Field or sequence of Field
    screenshot : path, optional
        Render off-screen and write a PNG there (returned).
    titles : sequence of str, optional
        Panel titles; ``"name [units]"`` by default.
    share_clim : None, "all" or list of index groups
        Fields in one group share a colour range (e.g. ``[[0, 1]]`` for prediction and reference).
    cmap : str or one per field
    panel_size : (width, height) of one panel in pixels
    show : bool, optional
        Open an interactive window; default: only when no screenshot is asked for.
    boundary : names of fields that are boundary data: drawn as a line along the boundary of
        their 2-D grid, parametrised by arc length, corners marked.
    ncols : wrap the panels into rows of this many.
    clims : one colour range (or None) per field, overriding ``share_clim`` where given.

    Fields on 1-D grids are line plots (matplotlib); the others are PyVista panels.
    """
    fields = _as_list(fields)
    if not fields:
        raise ConfigError("plot: expected at least one Field")
    titles = [label(f) for f in fields] if titles is None else list(titles)
    if len(titles) != len(fields):
        raise ConfigError(f"plot: expected {len(fields)} titles, got {len(titles)}")
    cmaps = [cmap] * len(fields) if isinstance(cmap, str) else list(cmap)
    if len(cmaps) != len(fields):
        raise ConfigError(f"plot: expected {len(fields)} colour maps, got {len(cmaps)}")
    unknown = sorted(set(boundary) - {f.name for f in fields})
    if unknown:
        raise ConfigError(f"plot: boundary names {unknown} are not among the fields {[f.name for f in fields]}")
    ranges = _clims(fields, share_clim)
    if clims is not None:
        if len(clims) != len(fields):
            raise ConfigError(f"plot: expected {len(fields)} colour ranges, got {len(clims)}")
        ranges = [tuple(c) if c is not None else r for c, r in zip(clims, ranges)]
    clims = ranges
    panels = []
    for f, title, cm, clim in zip(fields, titles, cmaps, clims):
        line = _boundary_panel(f, title, clim) if f.name in boundary else None
        panels.append(line or _panel(f, title, clim, cm))
    return render(_rows(panels, ncols), screenshot, panel_size, show)


def _error_title(base: str, error: float) -> str:
    return f"{base}\nrelative L2 error {error:.3g} ({100 * error:.3g}%)"


def _compare_rows(
    prediction: Field,
    reference: Field,
    inputs: Mapping[str, Field] | None = None,
    error: float | None = None,
    boundary_inputs: Sequence[str] = (),
    titles: Sequence[str] | None = None,
    cmap: str | Sequence[str] | None = None,
) -> list[list[Any]]:
    """The panels of :func:`compare` (exposed for tests: titles and colour ranges)."""
    if prediction.disc != reference.disc:
        reference = reference.on(prediction.disc)
    p, r = prediction.numpy(), reference.numpy()
    if error is None:
        error = float(relative_l2(p, r))
    name = label(prediction)
    if titles is None:
        titles = [f"{name}: prediction", f"{name}: reference", f"{name}: absolute error"]
    titles = list(titles)
    if len(titles) != 3:
        raise ConfigError(f"compare: expected 3 titles (prediction, reference, error), got {len(titles)}")
    titles[2] = _error_title(titles[2], error)
    cmaps = ["viridis", "viridis", "magma"] if cmap is None else [cmap] * 3 if isinstance(cmap, str) else list(cmap)
    make = type(prediction)  # the caller's Field class (see _as_list for why it is not imported)
    err = make(np.abs(p - r), prediction.disc, "abs_error")
    rp, rr = _range(_shown(prediction)), _range(_shown(reference))
    clim = (min(rp[0], rr[0]), max(rp[1], rr[1]))
    top: list[Any]
    if _is_1d(prediction):
        x = prediction.disc.axes[0]
        pc, rc = _curves(prediction, x, p, "prediction"), _curves(prediction, x, r, "reference")
        styles = ["-"] * len(pc) + ["--"] * len(rc)
        top = [
            LinePanel(f"{name}: prediction and reference", pc + rc, "x", name, clim, span=2, styles=styles),
            LinePanel(titles[2], _curves(err, x, err.numpy()), "x", f"absolute error in {name}",
                      (0.0, _range(err.numpy())[1])),
        ]
    else:
        pred = make(p, prediction.disc, "prediction")
        ref = make(r, prediction.disc, "reference")
        bar = name if prediction.n_components == 1 else f"{name} magnitude"
        top = [
            FieldPanel(titles[0], to_pyvista(pred), "prediction", clim, cmaps[0], bar),
            FieldPanel(titles[1], to_pyvista(ref), "reference", clim, cmaps[1], bar),
            FieldPanel(titles[2], to_pyvista(err), "abs_error", None, cmaps[2], "abs. error"),
        ]
    rows = [top]
    if inputs:
        unknown = sorted(set(boundary_inputs) - set(inputs))
        if unknown:
            raise ConfigError(f"compare: boundary_inputs {unknown} are not among the inputs {sorted(inputs)}")
        bottom = []
        for key, f in inputs.items():
            line = _boundary_panel(f, f"input {label(f)} on the boundary") if key in boundary_inputs else None
            bottom.append(line or _panel(f, f"input {label(f)}", None, "viridis"))
        spare = 3 - sum(b.span for b in bottom)
        wide = [b for b in bottom if isinstance(b, LinePanel)]
        if spare > 0 and wide:
            wide[0].span += spare
        rows.append(bottom)
    return rows


def compare(
    prediction: Field,
    reference: Field,
    screenshot: str | os.PathLike[str] | None = None,
    *,
    inputs: Mapping[str, Field] | None = None,
    error: float | None = None,
    boundary_inputs: Sequence[str] = (),
    titles: Sequence[str] | None = None,
    cmap: str | Sequence[str] | None = None,
    panel_size: tuple[int, int] = (480, 420),
    show: bool | None = None,
) -> str | None:
    """Prediction | reference | pointwise absolute error, and the inputs in a second row.

    Prediction and reference share one colour range; the error panel's title gives the relative
    L2 error (``error``, computed when None). ``inputs`` (name -> Field) are drawn below: a field
    as a panel of its own, an input named in ``boundary_inputs`` (boundary data, e.g. Dirichlet
    ``g``) as a line along the boundary by arc length with the corners marked. On a 1-D grid,
    prediction and reference are drawn as two curves in one plot.
    """
    rows = _compare_rows(prediction, reference, inputs, error, boundary_inputs, titles, cmap)
    return render(rows, screenshot, panel_size, show)


def plot_dataset(
    dataset: Any,
    names: Sequence[str] | None = None,
    screenshot: str | os.PathLike[str] | None = None,
    *,
    titles: Sequence[str] | None = None,
    clims: Sequence[tuple[float, float] | None] | None = None,
    cmap: str | Sequence[str] = "viridis",
    panel_size: tuple[int, int] = (480, 420),
    show: bool | None = None,
    ncols: int | None = None,
) -> str | None:
    """Point arrays of a PyVista dataset (a mesh read from a VTK file, say) side by side."""
    names = list(dataset.point_data.keys()) if names is None else list(names)
    if not names:
        raise ConfigError("plot_dataset: the dataset has no point arrays")
    titles = list(names) if titles is None else list(titles)
    cmaps = [cmap] * len(names) if isinstance(cmap, str) else list(cmap)
    clims = [None] * len(names) if clims is None else list(clims)
    if not len(titles) == len(cmaps) == len(clims) == len(names):
        raise ConfigError(f"plot_dataset: expected {len(names)} titles, colour maps and colour ranges")
    panels = [FieldPanel(t, dataset.copy(), n, c, cm, n) for n, t, c, cm in zip(names, titles, clims, cmaps)]
    return render(_rows(panels, ncols), screenshot, panel_size, show)
