"""Line pictures with matplotlib: 1-D fields and boundary data traced along the boundary.

matplotlib is imported inside the functions (through its Agg canvas, so no GUI backend is touched
and pyplot's global state is left alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..grid import Grid

__all__ = ["LinePanel", "boundary_trace", "mesh_boundary_trace", "draw_line_panel", "line_figure"]

_COLOURS = ("#1f4e99", "#d1495b", "#2a9d55", "#e09f3e", "#6a4c93")


@dataclass
class LinePanel:
    """One matplotlib panel: curves ``(x, y, label)`` with axis titles and marked positions."""

    title: str
    curves: list[tuple[np.ndarray, np.ndarray, str]]
    xlabel: str = "x"
    ylabel: str = ""
    ylim: tuple[float, float] | None = None
    marks: list[tuple[float, str]] = field(default_factory=list)  # vertical lines (the corners)
    span: int = 1
    styles: list[str] = field(default_factory=list)  # matplotlib line styles, one per curve


def _fmt(v: float) -> str:
    return f"{v:.3g}".replace("-", "\N{MINUS SIGN}")


def boundary_trace(grid: Grid, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[tuple[float, str]]]:
    """The boundary nodes of a 2-D grid walked once anticlockwise from the lower-left corner.

    Returns the arc length ``s`` of each node (the walk ends back at the start, so the last value
    repeats the first), the values there, and the corners as ``(s, "(x, y)")``.
    """
    if grid.ndim != 2:
        raise ValueError("boundary_trace: expected a 2-D grid")
    values = np.asarray(values, dtype=np.float64)
    nx, ny = grid.shape
    i = np.concatenate([np.arange(nx), np.full(ny - 1, nx - 1), np.arange(nx - 2, -1, -1), np.zeros(ny - 1, int)])
    j = np.concatenate([np.zeros(nx, int), np.arange(1, ny), np.full(nx - 1, ny - 1), np.arange(ny - 2, -1, -1)])
    xs, ys = grid.axes
    px, py = xs[i], ys[j]
    s = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(px), np.diff(py)))])
    (x0, x1), (y0, y1) = grid.bounds
    lx, ly = x1 - x0, y1 - y0
    corners = [(0.0, (x0, y0)), (lx, (x1, y0)), (lx + ly, (x1, y1)), (2 * lx + ly, (x0, y1)), (2 * (lx + ly), (x0, y0))]
    marks = [(c, f"({_fmt(a)}, {_fmt(b)})") for c, (a, b) in corners]
    return s, values[..., i, j], marks


def mesh_boundary_trace(
    points: np.ndarray, facets: np.ndarray, values: np.ndarray, corner_degrees: float = 30.0
) -> tuple[np.ndarray, np.ndarray, list[tuple[float, str]]]:
    """The outer boundary of a 2-D mesh walked once anticlockwise, like :func:`boundary_trace`.

    ``facets`` are the boundary edges ``(F, 2)`` in the mesh's anticlockwise order (what
    ``Mesh.boundary_facets()`` gives). The longest loop is traced (holes are left out); corners are
    the nodes where the boundary turns by more than ``corner_degrees``. The walk starts at the
    corner nearest the lower-left of the bounding box, or at the rightmost node if there is none.
    """
    pts = np.asarray(points, dtype=np.float64)[:, :2]
    values = np.asarray(values, dtype=np.float64)
    nxt = {int(a): int(b) for a, b in np.asarray(facets)[:, :2]}
    loops, seen = [], set()
    for start in nxt:
        if start in seen:
            continue
        loop, node = [], start
        while node not in seen and node in nxt:
            seen.add(node)
            loop.append(node)
            node = nxt[node]
        loops.append(loop)
    loop = np.array(max(loops, key=lambda lp: np.hypot(*np.diff(pts[lp + lp[:1]], axis=0).T).sum()))
    before, after = pts[loop] - pts[np.roll(loop, 1)], pts[np.roll(loop, -1)] - pts[loop]
    turn = np.degrees(np.abs(np.arctan2(before[:, 0] * after[:, 1] - before[:, 1] * after[:, 0], (before * after).sum(1))))
    corner = turn > corner_degrees
    if corner.any():
        lower_left = pts[loop].min(axis=0)
        start = int(np.argmin(np.where(corner, np.hypot(*(pts[loop] - lower_left).T), np.inf)))
    else:
        start = int(np.argmax(pts[loop, 0]))
    loop, corner = np.roll(loop, -start), np.roll(corner, -start)
    walk = np.concatenate([loop, loop[:1]])
    s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(pts[walk], axis=0).T))])
    at = [k for k in range(len(loop)) if corner[k]] + [len(loop)] if corner.any() else [0, len(loop)]
    marks = [(float(s[k]), f"({_fmt(pts[walk[k], 0])}, {_fmt(pts[walk[k], 1])})") for k in at]
    return s, values[..., walk], marks


def draw_line_panel(ax: Any, panel: LinePanel) -> None:
    """Draw ``panel`` on the matplotlib axes ``ax``."""
    for k, (x, y, label) in enumerate(panel.curves):
        style = panel.styles[k] if k < len(panel.styles) else "-"
        ax.plot(x, y, style, color=_COLOURS[k % len(_COLOURS)], lw=1.6 if k == 0 else 1.3, label=label or None)
    crowded = False
    if panel.marks:
        for s, _ in panel.marks:
            ax.axvline(s, color="0.55", ls="--", lw=0.8, zorder=0)
        top = ax.secondary_xaxis("top")
        at = [s for s, _ in panel.marks]
        top.set_xticks(at, [name for _, name in panel.marks], fontsize=10)
        top.tick_params(length=0, pad=2)
        fig = ax.get_figure()
        width_px = ax.get_position().width * fig.get_figwidth() * fig.dpi
        gaps = np.diff(at) / max(at[-1] - at[0], 1e-300)
        if len(at) > 1 and gaps.min() * width_px < 75:  # crowded: slant the corner names
            crowded = True
            top.tick_params(rotation=30)
            for text in top.get_xticklabels():
                text.set_horizontalalignment("left")
        lo, hi = panel.marks[0][0], panel.marks[-1][0]
        ax.set_xlim(lo - 0.01 * (hi - lo), hi + 0.01 * (hi - lo))
    else:
        xs = np.concatenate([np.ravel(x) for x, _, _ in panel.curves])
        ax.set_xlim(float(xs.min()), float(xs.max()))
    if panel.ylim is not None:
        lo, hi = panel.ylim
        pad = 0.04 * (hi - lo) if hi > lo else 1.0
        ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel(panel.xlabel, fontsize=12)
    ax.set_ylabel(panel.ylabel, fontsize=12)
    ax.set_title(panel.title, fontsize=14, pad=(30 if crowded else 18) if panel.marks else 8)
    ax.tick_params(labelsize=11)
    ax.grid(True, color="0.9", lw=0.6)
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4), useMathText=True, useOffset=False)
    if sum(1 for _, _, label in panel.curves if label) > 1:
        ax.legend(fontsize=11, frameon=False)


def line_figure(panels: Sequence[LinePanel], size: tuple[float, float], dpi: int = 100) -> Any:
    """A matplotlib Figure (Agg canvas) of ``size`` pixels holding ``panels`` side by side."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    spans = [max(1, p.span) for p in panels]
    grid = fig.add_gridspec(1, sum(spans))
    start = 0
    for panel, span in zip(panels, spans):
        draw_line_panel(fig.add_subplot(grid[0, start : start + span]), panel)
        start += span
    return fig
