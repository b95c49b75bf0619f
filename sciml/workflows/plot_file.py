"""Pictures of files: a dataset sample, a VTK file, a run's loss curve (``sciml plot FILE``)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DatasetError, UnknownNameError
from ..fields import Field, Grid, relative_l2

__all__ = ["plot_file"]


def _boundary_inputs(problem_name: str) -> list[str]:
    """Names of the boundary inputs of a built-in problem; none if it cannot be loaded."""
    try:
        from ..problem import load_problem

        return [i.name for i in load_problem(problem_name).inputs if i.on == "boundary"]
    except Exception:  # a problem file that is not at hand: its inputs are drawn as fields
        return []


def _plot_h5(path: Path, target: Path, index: int) -> str:
    from ..data import GridDataset
    from ..viz.render import plot

    data = GridDataset(path)
    if not 0 <= index < len(data):
        raise DatasetError(f"{path}: sample index {index} outside 0..{len(data) - 1}")
    sample = data[index]
    boundary = [n for n in _boundary_inputs(str(data.attrs.get("problem", ""))) if n in data.input_names]
    fields = [Field(sample["x"][i].numpy(), data.grid, n) for i, n in enumerate(data.input_names)]
    fields += [Field(sample["y"][i].numpy(), data.grid, n) for i, n in enumerate(data.output_names)]
    titles = [f"input {f.name}" + (" on the boundary" if f.name in boundary else "") for f in fields[: data.n_inputs]]
    titles += [f"output {f.name}" for f in fields[data.n_inputs :]]
    titles = [f"{t} (sample {index})" for t in titles]
    return str(plot(fields, screenshot=target, titles=titles, boundary=boundary, ncols=3 if len(fields) > 4 else None))


def _grid_of(mesh: Any) -> tuple[Grid, np.ndarray] | None:
    """The uniform grid a VTK dataset's points lie on and each point's flat 'ij' index, or None.

    A grid written by :func:`sciml.viz.render.save_vtk` (``.vti``, or ``.vtu`` after casting) comes
    back as that grid, so its fields are drawn exactly as the run drew them (1-D as lines)."""
    pts = np.asarray(mesh.points, dtype=np.float64)
    spans = np.ptp(pts, axis=0) if len(pts) else np.zeros(3)
    ndim = 3 if spans[2] > 0 else 2 if spans[1] > 0 else 1
    axes, index = [], []
    for k in range(ndim):
        if spans[k] == 0:
            return None
        lo = pts[:, k].min()
        unit = np.round((pts[:, k] - lo) / spans[k], 9)
        values = np.unique(unit)
        if len(values) < 2 or not np.allclose(np.diff(values), 1 / (len(values) - 1), rtol=1e-6):
            return None
        axes.append((lo, lo + spans[k], len(values)))
        index.append(np.rint(unit * (len(values) - 1)).astype(np.int64))
    shape = tuple(n for _, _, n in axes)
    if int(np.prod(shape)) != len(pts):
        return None
    flat = np.ravel_multi_index(tuple(index), shape)
    if len(np.unique(flat)) != len(pts):
        return None
    return Grid(shape, [(lo, hi) for lo, hi, _ in axes]), flat


def _plot_vtk(path: Path, target: Path) -> str:
    import pyvista as pv

    from ..viz.render import plot, plot_dataset, read_metadata

    mesh = pv.read(path)
    meta = read_metadata(mesh)
    names = [n for n in mesh.point_data.keys() if not n.startswith("vtk")]
    names = [n for n in meta["order"] if n in names] + [n for n in names if n not in meta["order"]]
    if not names:
        raise DatasetError(f"{path}: no point arrays to show")
    boundary = [b for b in meta["boundary"] if b in names]

    def units(name: str) -> str | None:
        return meta["units"].get(name)

    values = {n: np.asarray(mesh.point_data[n], dtype=np.float64) for n in names}
    # Prediction and reference ("prediction"/"reference", "u_prediction" or "u"/"u_reference") share a
    # colour range; an error is drawn in magma, or, when signed, in coolwarm centred on zero.
    clims: list[Any] = [None] * len(names)
    cmaps = ["viridis"] * len(names)
    rel_l2: dict[str, float] = {}  # prefix ("" or "u_") -> relative L2 error of prediction vs reference
    for i, n in enumerate(names):
        m = re.fullmatch(r"(.*?)_?reference", n)
        partner = next((p for p in ([f"{m.group(1)}_prediction", m.group(1)] if m.group(1) else ["prediction"])
                        if p in values), None) if m else None
        if partner is not None:
            both = np.concatenate([values[n].ravel(), values[partner].ravel()])
            clims[i] = clims[names.index(partner)] = (float(both.min()), float(both.max()))
            rel_l2[n[: -len("reference")]] = float(relative_l2(values[partner], values[n]))
        if "error" in n:
            big = float(np.abs(values[n]).max()) or 1.0
            cmaps[i], clims[i] = ("coolwarm", (-big, big)) if values[n].min() < 0 else ("magma", None)
    titles = [f"{n} [{units(n)}]" if units(n) else n for n in names]
    titles = [f"{t} on the boundary" if n in boundary else t for n, t in zip(names, titles)]
    for prefix, err in rel_l2.items():  # "error" / "u_error": say the relative L2 error in its title
        for key in (f"{prefix}error", f"{prefix}abs_error"):
            if key in names:
                titles[names.index(key)] += f"\nrelative L2 error {err:.3g} ({100 * err:.3g}%)"
    ncols = 3 if len(names) > 4 else None
    found = _grid_of(mesh)
    if found is None:
        return str(plot_dataset(mesh, names, target, titles=titles, clims=clims, cmap=cmaps, ncols=ncols))
    grid, flat = found
    fields = []
    for n in names:
        v = values[n]
        shaped = np.empty((grid.size, *v.shape[1:]))
        shaped[flat] = v
        array = shaped.reshape(*grid.shape, *v.shape[1:])
        fields.append(Field(np.moveaxis(array, -1, 0) if v.ndim == 2 else array, grid, n, units=units(n)))
    return str(plot(fields, screenshot=target, titles=titles, clims=clims, cmap=cmaps,
                    boundary=boundary, ncols=ncols))


def plot_file(path: str | os.PathLike[str], out: str | os.PathLike[str] | None = None, index: int = 0) -> str:
    """Render ``path`` to a PNG and return the PNG's path.

    - a dataset ``.h5``: every input and output channel of sample ``index`` (boundary inputs of a
      built-in problem as a line along the boundary);
    - a ``.vti``/``.vtu``/``.vtk`` file: every point array, with axes and colour bars
      (prediction and reference sharing one colour range, boundary data as lines);
    - a run directory or its ``metrics.jsonl``: the loss and validation curves.
    """
    path = Path(path)
    if path.is_dir() or path.name.endswith(".jsonl"):
        from ..train.logging import plot_history

        log = path / "metrics.jsonl" if path.is_dir() else path
        if not log.is_file():
            raise DatasetError(f"{path}: no metrics.jsonl to plot (expected a run directory)")
        target = Path(out) if out else log.with_name("loss_curve.png")
        plot_history(log, target)
        return str(target)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    suffix = path.suffix.lower()
    target = Path(out) if out else path.with_suffix(".png")
    if suffix in (".h5", ".hdf5"):
        return _plot_h5(path, target, index)
    if suffix in (".vti", ".vtu", ".vtk"):
        return _plot_vtk(path, target)
    raise UnknownNameError("file type to plot", suffix, [".h5", ".vti", ".vtu", ".vtk", "run directory"])
