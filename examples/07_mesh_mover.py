"""07 · Moving a mesh onto the fronts of a 2-D Burgers solution: uniform, classical Monge-Ampere and the data-free DMM.

1. solve one trajectory of the built-in ``burgers2d`` problem (viscous Burgers on the periodic unit
   square) from an initial condition the shipped mover never saw, on the 192 x 192 grid, and take
   the frame at ``t = 0.25``, when fronts thinner than a cell of the 48 x 48 grid have formed; its
   49 x 49 subsample is what the movers read (the problem's data grid), the 192^2 frame is the truth;
2. move the 49 x 49 mesh with ``move(u, MongeAmpere(periodic=True))`` (the classical solver, one
   Newton-Krylov solve) and with ``move(u, DMM.pretrained())`` (the shipped network, trained on the
   Monge-Ampere equation alone by ``benchmarks/mesh_mover.py``: one forward pass), both
   equidistributing the monitor the network was trained with;
3. measure each mesh (``mesh_quality``: tangled cells, equidistribution, the P1 interpolation error of
   the 192^2 frame) and time the two movers;
4. save a PyVista picture: uniform | classical | DMM, mesh edges over the field interpolated on each
   mesh, plus the three meshes and the truth (``meshes.npz``) and ``summary.json``.

Run: ``python examples/07_mesh_mover.py [--out DIR]`` (about half a minute; the tests run it). Without
the shipped weights the DMM panel is left out and the script says how to train them;
``--weights-dir`` points at another folder holding ``dmm_burgers2d.pt`` and ``.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

import sciml
from sciml.errors import CheckpointError
from sciml.fields import Field, Grid
from sciml.meshmove import GradientMonitor, MongeAmpere, mesh_quality, move
from sciml.meshmove.monitor import interpolate
from sciml.numerics.monge_ampere import to_mesh

N, FINE = 49, 193  # the data grid (48 x 48 periodic cells) and the solve grid
SEED = 2024  # an initial condition drawn outside the streams of the training and held-out data
FRAME = 10  # t = 0.25: fronts have formed (they steepen from t ~ 0.1 and persist to t = 0.5)
BOX = ((0.0, 1.0), (0.0, 1.0))


def burgers_frame() -> tuple[np.ndarray, float]:
    """The frame ``FRAME`` of one trajectory on the 193 x 193 grid, and its time."""
    problem = sciml.load_problem("burgers2d")
    # solve_stride=1 keeps the 192^2 solution (the problem's data are its 49 x 49 subsample)
    fine = dataclasses.replace(problem, solve_stride=1)
    _, outputs = fine.make_samples(1, Grid((FINE, FINE)), seed=SEED)
    n_times = outputs["u"].shape[1]
    return outputs["u"][0, FRAME], problem.params["t_end"] * FRAME / (n_times - 1)


def picture(meshes: dict[str, np.ndarray], values: dict[str, np.ndarray], titles: dict[str, str], path: Path) -> None:
    """PyVista, off-screen: each mesh's edges over the field interpolated on it, side by side, one colour bar."""
    import pyvista as pv

    # sciml.viz's own guard: VTK tries an X display before EGL and says so on fd 2; this keeps it quiet
    from sciml.viz._quiet import quiet_render

    lo = min(float(v.min()) for v in values.values())
    hi = max(float(v.max()) for v in values.values())
    with quiet_render(True):
        plotter = pv.Plotter(shape=(1, len(meshes)), off_screen=True, window_size=(560 * len(meshes), 640),
                             border=False)
        try:
            _draw(plotter, meshes, values, titles, (lo, hi))
            plotter.screenshot(str(path))
        finally:
            plotter.close()


def _draw(plotter: Any, meshes: dict[str, np.ndarray], values: dict[str, np.ndarray], titles: dict[str, str],
          clim: tuple[float, float]) -> None:
    """One panel per mesh: the field's colours, the edges in black, seen from above."""
    import pyvista as pv

    plotter.set_background("white")
    for i, name in enumerate(meshes):
        plotter.subplot(0, i)
        data = to_mesh(meshes[name], check=False).to_pyvista(point_data={"u": values[name].reshape(-1)})
        plotter.add_mesh(data, scalars="u", cmap="coolwarm", clim=clim, show_edges=True, edge_color="black",
                         line_width=0.5, lighting=False,
                         scalar_bar_args={"title": "", "color": "black", "vertical": False, "position_x": 0.2,
                                          "position_y": 0.03, "width": 0.6, "height": 0.07, "label_font_size": 13,
                                          "title_font_size": 14, "fmt": "%.2f", "n_labels": 5, "unique_bar": True})
        # The period cell: nodes of a periodic mesh may cross its sides (x - xi is periodic, not x)
        plotter.add_mesh(pv.Box(bounds=(0.0, 1.0, 0.0, 1.0, 0.0, 0.0)).outline(), color="dimgrey", line_width=2.5)
        plotter.add_text(titles[name], position="upper_edge", font_size=11, color="black")
        plotter.view_xy()
        plotter.enable_parallel_projection()
        plotter.camera.zoom(1.1)


def main(out: Path, weights_dir: Path | None = None) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    fine, t = burgers_frame()
    print(f"burgers2d trajectory (seed {SEED}) solved on 192 x 192 in {time.perf_counter() - t0:.1f} s; frame t = {t:.2f}")
    stride = (FINE - 1) // (N - 1)
    u = Field(fine[::stride, ::stride], Grid((N, N)), "u")
    truth = lambda p: interpolate(fine, Grid((FINE, FINE)), p, periodic=True)  # noqa: E731 (wraps across the seam)

    from sciml.meshmove import DMM

    try:
        dmm = DMM.pretrained() if weights_dir is None else DMM.pretrained(weights_dir=weights_dir)
        monitor = dmm.monitor
    except CheckpointError as exc:  # the picture still shows the classical mover
        print(f"no DMM: {exc}")
        dmm, monitor = None, GradientMonitor(beta=1.0, periodic=True)

    s = np.linspace(0.0, 1.0, N)
    meshes = {"uniform": np.stack(np.meshgrid(s, s, indexing="ij"), axis=-1)}
    seconds = {"uniform": 0.0}
    movers: dict[str, Any] = {"classical": MongeAmpere(periodic=True)}
    if dmm is not None:
        movers["DMM"] = dmm
        move(u, dmm)  # warm-up: the first call pays for torch's allocations
    for name, mover in movers.items():
        t0 = time.perf_counter()
        mesh = move(u, mover, monitor)  # validated: raises InvalidMeshError on a tangled mesh
        seconds[name] = time.perf_counter() - t0
        meshes[name] = mesh.points.reshape(N, N, 2)

    m = monitor.evaluate(u.numpy(), u.disc)
    monitor_at = lambda p: interpolate(m, u.disc, p, periodic=True)  # noqa: E731
    summary: dict[str, Any] = {"t": t, "seed": SEED, "monitor": repr(monitor), "methods": {},
                               "weights": None if dmm is None else str(weights_dir or "shipped")}
    print(f"\n{'mesh':10s} {'tangled':>7s} {'cv':>6s} {'area ratio':>10s} {'interp L2':>10s} {'vs uniform':>10s} {'ms':>8s}")
    for name, points in meshes.items():
        q = mesh_quality(points, truth, monitor_at, bounds=BOX)
        summary["methods"][name] = {"tangled": int(q["tangled"]), "cv": q["cv"], "volume_ratio": q["volume_ratio"],
                                    "interp_l2": q["interp_l2"], "interp_linf": q["interp_linf"],
                                    "uniform_interp_l2": q["uniform_interp_l2"], "ms": 1000 * seconds[name]}
        print(f"{name:10s} {q['tangled']:7d} {q['cv']:6.3f} {q['volume_ratio']:10.1f} {q['interp_l2']:10.3e} "
              f"{q['interp_ratio']:9.2f}x {1000 * seconds[name]:8.1f}")

    values = {name: truth(points) for name, points in meshes.items()}  # the field as each mesh holds it
    titles = {name: f"{name} mesh, u at t = {t:.2f}\ninterpolation L2 error {summary['methods'][name]['interp_l2']:.2e}"
              for name in meshes}
    picture(meshes, values, titles, out / "mesh_mover.png")
    np.savez_compressed(out / "meshes.npz", fine=fine, **meshes)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"wrote {out / 'mesh_mover.png'}, {out / 'meshes.npz'} and {out / 'summary.json'}")
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("example_outputs/07"))
    parser.add_argument("--weights-dir", type=Path, default=None,
                        help="a folder with dmm_burgers2d.pt/.json other than the shipped one (development)")
    args = parser.parse_args()
    main(args.out, args.weights_dir)
