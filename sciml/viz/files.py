"""Pictures of files: a dataset sample, a VTK file, a run's loss curve (``sciml plot FILE``)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DatasetError, UnknownNameError
from ..fields import Field

__all__ = ["plot_file"]


def plot_file(path: str | os.PathLike[str], out: str | os.PathLike[str] | None = None, index: int = 0) -> str:
    """Render ``path`` to a PNG and return the PNG's path.

    - a dataset ``.h5``: every input and output channel of sample ``index`` side by side;
    - a ``.vti``/``.vtu``/``.vtk`` file: every point array side by side;
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
        from ..data import GridDataset
        from .render import plot

        data = GridDataset(path)
        if not 0 <= index < len(data):
            raise DatasetError(f"{path}: sample index {index} outside 0..{len(data) - 1}")
        sample = data[index]
        fields = [Field(sample["x"][i].numpy(), data.grid, n) for i, n in enumerate(data.input_names)]
        fields += [Field(sample["y"][i].numpy(), data.grid, n) for i, n in enumerate(data.output_names)]
        return str(plot(fields, screenshot=target, titles=[f"{f.name} (sample {index})" for f in fields]))
    if suffix in (".vti", ".vtu", ".vtk"):
        import pyvista as pv

        mesh = pv.read(path)
        names = list(mesh.point_data.keys())
        if not names:
            raise DatasetError(f"{path}: no point arrays to show")
        plotter = pv.Plotter(shape=(1, len(names)), off_screen=True, window_size=(420 * len(names), 400))
        for i, name in enumerate(names):
            plotter.subplot(0, i)
            plotter.add_mesh(mesh.copy(), scalars=name, scalar_bar_args={"title": name, "vertical": False})
            plotter.add_text(name, font_size=11, position="upper_edge")
            if mesh.bounds[5] - mesh.bounds[4] == 0:
                plotter.view_xy()
        target.parent.mkdir(parents=True, exist_ok=True)
        plotter.screenshot(str(target))
        plotter.close()
        return str(target)
    raise UnknownNameError("file type to plot", suffix, [".h5", ".vti", ".vtu", ".vtk", "run directory"])
