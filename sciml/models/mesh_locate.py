"""Where points lie in logically structured periodic meshes: cells and local coordinates, and the inverse
of a moved mesh's piecewise-bilinear map (what the learned interpolations of MM-PDE need).

Conventions
-----------
A *periodic mesh* of ``n x n`` distinct nodes is an array ``(B, n, n, 2)`` of node positions in unit
coordinates (``'ij'``: ``mesh[..., 0]`` is ``x``, along axis 0). Node ``(i, j)`` belongs to the computational
point ``xi = (i / n, j / n)`` and its displacement ``d = x - xi`` is periodic in ``(i, j)``, so the mesh of the
torus continues beyond its last node as ``x[i + n, j] = x[i, j] + (1, 0)``. The uniform mesh is ``x = xi``.
(sciml grids store the periodic node grid with the first row and column repeated last; drop them to get
these ``n x n`` distinct nodes.)

The bilinear map of a mesh sends ``xi`` in cell ``(a, b)`` with local coordinates ``(s, t)`` in ``[0, 1)^2``
(``xi = ((a + s) / n, (b + t) / n)``) to the bilinear combination of the cell's four corners; for an
untangled mesh it is a bijection of the torus. :func:`locate_in_mesh` inverts it by damped Newton steps on
the piecewise-bilinear displacement (each step at most one cell long), which converge quadratically once
in the right cell (the uniform nodes of the shipped DMM's meshes of all 3,024 Burgers 2-D frames of
``benchmarks/mm_pde.py``, displacements up to 5 cells, are placed within 8 steps); points it cannot place
raise InvalidMeshError.
Everything runs in torch, batched, without autograd: the geometry depends on the mesh only.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import ConfigError, InvalidMeshError, ShapeError

__all__ = ["unit_nodes", "uniform_cells", "locate_in_mesh", "wrap", "mesh_channels", "check_mesh"]


def unit_nodes(n: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> Tensor:
    """The ``n x n`` distinct nodes ``(n, n, 2)`` of the uniform periodic mesh, ``(i / n, j / n)``."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ConfigError(f"unit_nodes: expected an int n >= 2, got {n!r}")
    s = torch.arange(n, dtype=dtype, device=device) / n
    return torch.stack(torch.meshgrid(s, s, indexing="ij"), dim=-1)


def wrap(d: Tensor) -> Tensor:
    """Differences of periodic unit coordinates brought into ``[-1/2, 1/2)`` (the nearest image)."""
    return torch.remainder(d + 0.5, 1.0) - 0.5


def check_mesh(name: str, mesh: Tensor) -> int:
    """``n`` of a batch of periodic meshes ``(B, n, n, 2)``; ShapeError otherwise, InvalidMeshError for
    NaN/Inf positions."""
    if not isinstance(mesh, Tensor) or mesh.ndim != 4 or mesh.shape[-1] != 2 or mesh.shape[1] != mesh.shape[2] \
            or mesh.shape[1] < 4:
        shape = tuple(mesh.shape) if isinstance(mesh, Tensor) else type(mesh).__name__
        raise ShapeError(name, "(B, n, n, 2) with n >= 4 (distinct periodic nodes)", shape)
    if not bool(torch.isfinite(mesh).all()):
        raise InvalidMeshError(f"{name}: node positions hold NaN or Inf")
    return int(mesh.shape[1])


def uniform_cells(points: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """Cell ``(..., 2)`` (long, in ``0..n-1``) and local coordinates ``(..., 2)`` in ``[0, 1)`` of points
    ``(..., 2)`` (any real unit coordinates, wrapped onto the torus) in the uniform ``n x n`` periodic mesh."""
    if points.shape[-1] != 2:
        raise ShapeError("uniform_cells points", "(..., 2)", tuple(points.shape))
    s = torch.remainder(points, 1.0) * n
    cell = s.floor()
    local = (s - cell).clamp(0.0, 1.0)  # round-off may give exactly 1 at the top face: still that cell
    return torch.remainder(cell.long(), n), local


def _corners(disp: Tensor, cell: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Displacements ``(B, P, 2)`` of the corners 00, 10, 01, 11 of cells ``(B, P, 2)`` of ``disp``
    ``(B, n, n, 2)``."""
    b, n = disp.shape[0], disp.shape[1]
    flat = disp.reshape(b, n * n, 2)

    def at(di: int, dj: int) -> Tensor:
        idx = torch.remainder(cell[..., 0] + di, n) * n + torch.remainder(cell[..., 1] + dj, n)
        return torch.gather(flat, 1, idx[..., None].expand(-1, -1, 2))

    return at(0, 0), at(1, 0), at(0, 1), at(1, 1)


def locate_in_mesh(mesh: Tensor, points: Tensor, *, max_iter: int = 60, tol: float = 1e-9) -> tuple[Tensor, Tensor]:
    """Invert the bilinear map of periodic meshes: the cell and local coordinates of each point.

    Parameters
    ----------
    mesh : Tensor, (B, n, n, 2)
        Node positions of untangled periodic meshes in unit coordinates (module notes).
    points : Tensor, (P, 2) or (B, P, 2)
        Physical points in unit coordinates (wrapped onto the torus), the same for every mesh or one set
        per mesh.
    max_iter : int
        Newton steps at most.
    tol : float
        Convergence: the largest mismatch ``|x(xi) - p|``, in cells (``1 / n``).

    Returns
    -------
    cell : Tensor, (B, P, 2), long
        The cell ``(a, b)`` holding each point, in ``0..n-1``.
    local : Tensor, (B, P, 2)
        Its local coordinates ``(s, t)`` in ``[0, 1]``: the point is the bilinear combination
        ``(1-s)(1-t) x_ab + s(1-t) x_a+1,b + (1-s) t x_a,b+1 + s t x_a+1,b+1`` (periodic images), exactly up
        to ``tol``. In the dtype of ``mesh``; the solve itself is in float64.

    Raises
    ------
    ShapeError
        Bad shapes.
    InvalidMeshError
        NaN/Inf nodes, or points not placed within ``max_iter`` steps (a tangled mesh).
    """
    n = check_mesh("locate_in_mesh mesh", mesh)
    b = mesh.shape[0]
    if points.ndim == 2:
        points = points[None].expand(b, -1, -1)
    if points.ndim != 3 or points.shape[0] != b or points.shape[-1] != 2:
        raise ShapeError("locate_in_mesh points", f"(P, 2) or ({b}, P, 2)", tuple(points.shape))
    with torch.no_grad():
        x = mesh.detach().to(torch.float64)
        disp = wrap(x - unit_nodes(n, torch.float64, x.device))  # periodic, exact for |d| < 1/2
        q = torch.remainder(points.detach().to(torch.float64), 1.0)
        eye = torch.eye(2, dtype=torch.float64, device=x.device)
        # Start at q - d(q): exact for a constant displacement, close for a smooth one.
        cell, local = uniform_cells(q, n)
        c00, c10, c01, c11 = _corners(disp, cell)
        s, t = local[..., :1], local[..., 1:]
        xi = q - ((1 - s) * (1 - t) * c00 + s * (1 - t) * c10 + (1 - s) * t * c01 + s * t * c11)
        for _ in range(max_iter):
            cell, local = uniform_cells(xi, n)
            c00, c10, c01, c11 = _corners(disp, cell)
            s, t = local[..., :1], local[..., 1:]
            d = (1 - s) * (1 - t) * c00 + s * (1 - t) * c10 + (1 - s) * t * c01 + s * t * c11
            resid = wrap(xi + d - q)  # (B, P, 2)
            err = resid.abs().amax(dim=-1) * n
            if float(err.max()) < tol:
                break
            # Jacobian of xi -> xi + d(xi): columns I + n dd/ds, I + n dd/dt.
            ds = n * ((1 - t) * (c10 - c00) + t * (c11 - c01))
            dt = n * ((1 - s) * (c01 - c00) + s * (c11 - c10))
            jac = eye + torch.stack([ds, dt], dim=-1)  # (B, P, 2, 2): [row: x component, col: s or t]
            det = jac[..., 0, 0] * jac[..., 1, 1] - jac[..., 0, 1] * jac[..., 1, 0]
            det = torch.where(det.abs() < 1e-12, torch.full_like(det, 1e-12), det)
            step0 = (jac[..., 1, 1] * resid[..., 0] - jac[..., 0, 1] * resid[..., 1]) / det
            step1 = (-jac[..., 1, 0] * resid[..., 0] + jac[..., 0, 0] * resid[..., 1]) / det
            step = torch.stack([step0, step1], dim=-1)
            length = step.abs().amax(dim=-1, keepdim=True) * n
            step = step / length.clamp_min(1.0)  # at most one cell per step: never skip past the answer
            xi = xi - step
        else:
            bad = int((err >= tol).sum())
            raise InvalidMeshError(f"locate_in_mesh: {bad} of {err.numel()} points not placed after {max_iter} "
                                   f"Newton steps (largest mismatch {float(err.max()):.3g} cells); is a mesh tangled?")
        return cell, local.clamp(0.0, 1.0).to(mesh.dtype)


def mesh_channels(mesh: Tensor) -> Tensor:
    """Geometry of periodic meshes ``(B, n, n, 2)`` as conv channels ``(B, 6, n, n)``: the displacement
    ``x - xi`` in cells (2) and the Jacobian ``d x / d xi`` by periodic central differences (4: ``xx, xy,
    yx, yy``), so that the uniform mesh gives ``(0, 0, 1, 0, 0, 1)``."""
    n = check_mesh("mesh_channels mesh", mesh)
    disp = wrap(mesh - unit_nodes(n, mesh.dtype, mesh.device))  # (B, n, n, 2)
    d_i = 0.5 * n * (torch.roll(disp, -1, dims=1) - torch.roll(disp, 1, dims=1))
    d_j = 0.5 * n * (torch.roll(disp, -1, dims=2) - torch.roll(disp, 1, dims=2))
    one = torch.ones_like(disp[..., 0])
    jac = [one + d_i[..., 0], d_j[..., 0], d_i[..., 1], one + d_j[..., 1]]
    return torch.stack([n * disp[..., 0], n * disp[..., 1], *jac], dim=1)
