"""Laying out and rendering panels: PyVista for fields, matplotlib for lines.

A picture is rows of panels. A :class:`FieldPanel` is drawn by PyVista (2-D: seen from above with
parallel projection, x and y axes with ticks and titles, a colour bar with values; 3-D: the
bounding box with ticks). A :class:`~sciml.viz._lines.LinePanel` (a 1-D field, boundary data
along the boundary) is a matplotlib plot, embedded in the PyVista window through ``ChartMPL``; a
picture of line panels only is drawn by matplotlib alone.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._lines import LinePanel, draw_line_panel, line_figure
from ._quiet import quiet_render

__all__ = ["FieldPanel", "render"]

# Pixels a 2-D field panel keeps around the field: y tick labels, colour bar, title, x axis.
_LEFT, _RIGHT, _TOP, _BOTTOM = 62, 112, 58, 58
_LINE = 22  # one more title line
_TITLE_PT, _AXIS_PT, _BAR_TITLE_PT, _BAR_PT = 18, 16, 15, 14


@dataclass
class FieldPanel:
    """One PyVista panel: the point array ``scalars`` of ``dataset``."""

    title: str
    dataset: Any
    scalars: str
    clim: tuple[float, float] | None = None
    cmap: str = "viridis"
    bar_title: str = ""
    span: int = 1


Panel = FieldPanel | LinePanel


def _flat(dataset: Any) -> bool:
    b = dataset.bounds
    return b[5] - b[4] == 0


def _n_labels(lo: float, hi: float) -> int:
    """A label count for evenly spaced labels from lo to hi whose step is 1, 2, 2.5 or 5 x 10^k."""
    for n in (5, 6, 3, 4, 7, 9, 11, 2):
        step = (hi - lo) / (n - 1)
        mantissa = step / 10 ** math.floor(math.log10(step))
        if any(math.isclose(mantissa, c, rel_tol=1e-6) for c in (1, 2, 2.5, 5, 10)):
            return n
    return 5


def nice_ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    """Round values from lo to hi, about ``target`` of them, spaced 1, 2, 2.5 or 5 x 10^k."""
    if not hi - lo > 1e-12 * max(1.0, abs(lo), abs(hi)):
        return [lo]
    raw = (hi - lo) / (target - 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * 0.999)
    first = math.ceil(lo / step - 1e-9)
    ticks = [k * step for k in range(first, math.floor(hi / step + 1e-9) + 1)]
    return [0.0 if abs(t) < 1e-9 * step else t for t in ticks]


def _text(vtk_text: Any, text: str, size: int, bold: bool = False, italic: bool = False) -> Any:
    actor = vtk_text()
    actor.SetInput(text)
    prop = actor.GetTextProperty()
    prop.SetFontSize(size)
    prop.SetColor(0.0, 0.0, 0.0)
    prop.SetFontFamilyToArial()
    prop.SetBold(bold)
    prop.SetItalic(italic)
    prop.SetJustificationToCentered()
    prop.SetVerticalJustificationToCentered()
    return actor


def _xy_axes(plotter: Any, bounds: Sequence[float], size: tuple[int, int]) -> None:
    """x and y axes along the lower and left edges of the field, ticks outside, labels upright."""
    from vtkmodules.vtkRenderingAnnotation import vtkAxisActor2D
    from vtkmodules.vtkRenderingCore import vtkCoordinate, vtkTextActor

    x0, x1, y0, y1 = bounds[:4]
    scale = 0.9 * min(size) / 400  # vtkAxisActor2D sizes its text from the viewport
    for p1, p2, rng in (((x0, y0), (x1, y0), (x0, x1)), ((x0, y1), (x0, y0), (y1, y0))):
        axis = vtkAxisActor2D()
        for coord, pt in ((axis.GetPositionCoordinate(), p1), (axis.GetPosition2Coordinate(), p2)):
            coord.SetCoordinateSystemToWorld()
            coord.SetValue(pt[0], pt[1], 0.0)
        axis.SetRange(*rng)
        axis.AdjustLabelsOff()
        axis.SetNumberOfLabels(_n_labels(min(rng), max(rng)))
        axis.SetLabelFormat("%.3g")
        axis.TitleVisibilityOff()
        axis.SetFontFactor(1.0)
        axis.SetLabelFactor(1.25 * scale)
        axis.SetTickLength(6)
        axis.SetTickOffset(4)
        axis.SetNumberOfMinorTicks(0)
        axis.GetProperty().SetColor(0.0, 0.0, 0.0)
        prop = axis.GetLabelTextProperty()
        prop.SetColor(0.0, 0.0, 0.0)
        prop.SetFontFamilyToArial()
        prop.BoldOff()
        prop.ItalicOff()
        prop.ShadowOff()
        plotter.add_actor(axis, reset_camera=False, pickable=False)
    # Axis titles: x centred under the tick labels, y above the top of the y axis.
    for text, anchor, offset in (("x", ((x0 + x1) / 2, y0), (0, -40)), ("y", (x0, y1), (0, 20))):
        ref = vtkCoordinate()
        ref.SetCoordinateSystemToWorld()
        ref.SetValue(anchor[0], anchor[1], 0.0)
        title = _text(vtkTextActor, text, _AXIS_PT, italic=True)
        coord = title.GetPositionCoordinate()
        coord.SetCoordinateSystemToDisplay()
        coord.SetReferenceCoordinate(ref)
        coord.SetValue(*offset)
        plotter.add_actor(title, reset_camera=False, pickable=False)


def _place_camera(plotter: Any, bounds: Sequence[float], size: tuple[int, int], top: int) -> tuple[float, float]:
    """Parallel projection from above, the field filling the box the margins leave.

    Returns the field's lower and upper edge in pixels from the bottom of the panel."""
    w, h = size
    x0, x1, y0, y1 = bounds[:4]
    aw, ah = max(w - _LEFT - _RIGHT, 40), max(h - top - _BOTTOM, 40)
    per_px = max((x1 - x0) / aw, (y1 - y0) / ah)
    cx = (x0 + x1) / 2 - (_LEFT + aw / 2 - w / 2) * per_px
    cy = (y0 + y1) / 2 - (_BOTTOM + ah / 2 - h / 2) * per_px
    camera = plotter.camera
    camera.ParallelProjectionOn()
    camera.SetFocalPoint(cx, cy, 0.0)
    camera.SetPosition(cx, cy, 10.0 * max(x1 - x0, y1 - y0, 1e-12))
    camera.SetViewUp(0.0, 1.0, 0.0)
    camera.SetParallelScale(h * per_px / 2)
    plotter.renderer.ResetCameraClippingRange()
    field_h = (y1 - y0) / per_px
    return _BOTTOM + (ah - field_h) / 2, _BOTTOM + (ah + field_h) / 2


def tick_format(ticks: Sequence[float]) -> str:
    """The shortest printf format that writes every tick exactly: %g, or %e for tiny/huge values."""
    big = max((abs(t) for t in ticks), default=0.0)
    plain = big == 0 or 1e-3 <= big < 1e6
    first = max(1, math.floor(math.log10(big)) + 1) if big >= 1 else 1  # no exponent on 12000
    formats = ([f"%.{d}g" for d in range(first, 8)] if plain else []) + [f"%.{d}e" for d in range(7)]
    for fmt in formats:
        if all(math.isclose(float(fmt % t), t, rel_tol=1e-9, abs_tol=1e-12 * big) for t in ticks):
            return fmt
    return "%.6e"


def _colour_bar(plotter: Any, mapper: Any, panel: FieldPanel, size: tuple[int, int], span: tuple[float, float]) -> None:
    """A vertical colour bar right of the field, as tall as the field (160 px at least)."""
    from vtkmodules.vtkCommonCore import vtkDoubleArray
    from vtkmodules.vtkRenderingCore import vtkTextActor

    w, h = size
    lo, hi = span
    if hi - lo < 160:
        lo, hi = (lo + hi) / 2 - 80, (lo + hi) / 2 + 80
    vlo, vhi = mapper.scalar_range
    if not vhi - vlo > 1e-9 * max(abs(vlo), abs(vhi), 1e-300):  # a constant: one colour, one label
        centre, half = (vlo + vhi) / 2, max(abs(vlo), abs(vhi), 1e-12) * 1e-3
        mapper.scalar_range = (centre - half, centre + half)
        ticks = [centre]
    else:
        ticks = nice_ticks(vlo, vhi)
    x = 1 - (_RIGHT - 14) / w
    bar = plotter.add_scalar_bar(
        title=f"bar {id(panel)}", mapper=mapper, vertical=True, position_x=x, position_y=lo / h,
        height=(hi - lo) / h, width=0.17, fmt=tick_format(ticks), n_labels=5, label_font_size=_BAR_PT,
        color="black", font_family="arial", unconstrained_font_size=True, unique_bar=True,
    )
    bar.SetTitle("")  # the title goes above the bar (VTK's own may overlap the top label)
    bar.SetTextPad(4)
    name = _text(vtkTextActor, panel.bar_title, _BAR_TITLE_PT)
    name.GetTextProperty().SetVerticalJustificationToBottom()
    name.GetPositionCoordinate().SetCoordinateSystemToNormalizedViewport()
    if x * w + 0.6 * _BAR_TITLE_PT * len(panel.bar_title) < w - 6:
        name.GetTextProperty().SetJustificationToLeft()
        name.SetPosition(x, (hi + 14) / h)
    else:  # a long name ends at the panel's right edge
        name.GetTextProperty().SetJustificationToRight()
        name.SetPosition(1 - 6 / w, (hi + 14) / h)
    plotter.add_actor(name, reset_camera=False, pickable=False)
    labels = vtkDoubleArray()
    for tick in ticks:
        labels.InsertNextValue(tick)
    bar.SetUseCustomLabels(True)
    bar.SetCustomLabels(labels)


def _field_panel(plotter: Any, panel: FieldPanel, size: tuple[int, int]) -> None:
    from vtkmodules.vtkRenderingCore import vtkTextActor

    w, h = size
    flat = _flat(panel.dataset)
    actor = plotter.add_mesh(
        panel.dataset,
        scalars=panel.scalars,
        cmap=panel.cmap,
        clim=panel.clim,
        lighting=not flat,
        show_edges=False,
        show_scalar_bar=False,
    )
    title = _text(vtkTextActor, panel.title, _TITLE_PT)
    title.GetTextProperty().SetVerticalJustificationToTop()
    title.GetPositionCoordinate().SetCoordinateSystemToNormalizedViewport()
    title.SetPosition(0.5, 1 - 8 / h)
    plotter.add_actor(title, reset_camera=False, pickable=False)
    top = _TOP + _LINE * panel.title.count("\n")
    if flat:
        _xy_axes(plotter, panel.dataset.bounds, size)
        span = _place_camera(plotter, panel.dataset.bounds, size, top)
    else:
        plotter.show_bounds(xtitle="x", ytitle="y", ztitle="z", location="outer", ticks="outside",
                            font_size=12, color="black", fmt="%.3g", bold=False)
        plotter.view_isometric()
        plotter.camera.zoom(0.72)
        plotter.camera.SetWindowCenter(0.22, -0.05)  # move the box left, clear of the colour bar
        span = (_BOTTOM, h - top - 30)
    _colour_bar(plotter, actor.mapper, panel, size, span)


def _matplotlib_only(rows: Sequence[Sequence[Panel]], path: str, panel_size: tuple[int, int]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ncols = max(sum(p.span for p in row) for row in rows)
    w, h = panel_size
    if len(rows) == 1:
        fig = line_figure(rows[0], (w * sum(p.span for p in rows[0]), h))
    else:
        fig = Figure(figsize=(w * ncols / 100, h * len(rows) / 100), dpi=100, layout="constrained")
        FigureCanvasAgg(fig)
        grid = fig.add_gridspec(len(rows), ncols)
        for r, row in enumerate(rows):
            start = 0
            for panel in row:
                draw_line_panel(fig.add_subplot(grid[r, start : start + panel.span]), panel)
                start += panel.span
    fig.savefig(path, dpi=100, facecolor="white")


def render(
    rows: Sequence[Sequence[Panel]],
    screenshot: str | os.PathLike[str] | None = None,
    panel_size: tuple[int, int] = (480, 420),
    show: bool | None = None,
) -> str | None:
    """Draw rows of panels; write a PNG to ``screenshot`` (returned) and/or open a window."""
    rows = [list(row) for row in rows if row]
    ncols = max(sum(p.span for p in row) for row in rows)
    path = None
    if screenshot is not None:
        path = str(screenshot)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    interactive = bool(show) or (show is None and screenshot is None)
    if path is not None and not interactive and all(isinstance(p, LinePanel) for row in rows for p in row):
        _matplotlib_only(rows, path, panel_size)
        return path

    import pyvista as pv

    w, h = panel_size
    groups = []
    for r, row in enumerate(rows):
        start = 0
        for p in row:
            if p.span > 1:
                groups.append((r, slice(start, start + p.span)))
            start += p.span
    with quiet_render(not interactive):
        plotter = pv.Plotter(shape=(len(rows), ncols), groups=groups or None, off_screen=not interactive,
                             window_size=(w * ncols, h * len(rows)), border=False)
        try:
            plotter.set_background("white")
            for r, row in enumerate(rows):
                start = 0
                for panel in row:
                    plotter.subplot(r, start)
                    if isinstance(panel, FieldPanel):
                        _field_panel(plotter, panel, (w, h))
                    else:
                        fig = line_figure([panel], (w * panel.span, h))
                        chart = pv.ChartMPL(fig, size=(1, 1), loc=(0, 0))
                        chart.background_color = "white"
                        plotter.add_chart(chart)
                    start += panel.span
            if path is not None:
                plotter.screenshot(path)
            if interactive:
                plotter.show()
        finally:
            plotter.close()
    return path
