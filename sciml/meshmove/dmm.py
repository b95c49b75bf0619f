"""The data-free neural mesh mover (DMM; Hu, Wang, Ma, ICLR 2024): a network trained on the
Monge-Ampere equation alone, with no meshes as data, that moves a mesh for a new field in one pass.

Formulation (section 2 of the research note)
--------------------------------------------
The field's box is mapped onto the unit square of computational points ``xi``. A network
(:class:`~sciml.models.dmm_net.DMMNet`, registry name ``"dmm_net"``) maps a field ``u`` and a point
``xi`` to a potential ``phi(xi; u)``; the mesh is ``x = xi + grad phi`` (autograd), whose Jacobian ``I + H(phi)`` is
symmetric. Training (:class:`DMMTask`, through the shared :class:`~sciml.train.Trainer`) minimises

* ``equidistribution``: ``mean (M(x) det(I + H) / theta - 1)^2`` at collocation points, the residual of
  the Monge-Ampere equation of :mod:`sciml.numerics.monge_ampere`;
* ``boundary`` (walls only): ``mean (d phi / d n)^2`` at points on the walls, so boundary nodes slide
  along their wall. A periodic network sees ``xi`` only through ``sin`` and ``cos`` of ``2 pi k xi``, so
  ``phi`` and ``x - xi`` are periodic by construction and there is no wall term;
* ``convexity``: ``mean relu(-det)^2 + relu(-trace)^2`` of ``I + H``: the map must be the gradient of
  a convex function (``I + H`` positive definite), which excludes the folded branch with ``det > 0``.

Choices, and the reference's pitfalls avoided
---------------------------------------------
* **theta** is ``int M dx / |box|`` computed once per field from the grid monitor (trapezoidal rule;
  the mean over the distinct nodes when periodic). It is *exactly* the integral of the bilinear
  interpolant of ``M`` that the residual reads, and for any map of the box onto itself
  ``int M(x(xi)) det dxi = int M dx``, so it is the only consistent constant; it needs no network
  evaluation and is not noisy (a batch mean of ``M det`` at random points would be).
* **The monitor** (:class:`~sciml.meshmove.monitor.GradientMonitor` by default, ``1 + |grad u| / (beta
  mean|grad u|)``) is evaluated on the field's grid once, when the data set is made, and read at the
  moved points ``x`` by *bilinear* interpolation in torch (differentiable in ``x``; wrapped into the box
  when periodic). The reference used a softmax kernel over all nodes: ``O(n^2)`` per point and smoothing.
  ``M`` is read in physical coordinates, as the classical solver does (the reference mixed a
  computational-coordinate gradient inside the loss with a physical one in ``theta``).
* **Collocation points** are drawn afresh each step from torch's global RNG (seeded and checkpointed by
  the Trainer): ``uniform_fraction`` of them uniform, the rest with density proportional to the cell mean
  of ``M`` (importance sampling: a cell by ``multinomial``, then uniform in it).
* **The network** normalises each field to mean 0 and std 1 (the monitor, hence the mesh, does not change
  when ``u`` is shifted or scaled); smooth activations only (the loss holds second derivatives of ``phi``);
  its last layer starts at zero, so training starts from the uniform mesh. The reference's hard-coded
  ``device="cuda"`` and its hard-BC variant (inconsistent with ``x = xi + grad phi``) are not reproduced.

Answering (:class:`DMM`)
------------------------
``dmm(fields, n)`` encodes a batch of fields and evaluates ``grad phi`` at the ``n x n`` nodes (the distinct
``(n - 1)^2`` when periodic) of the whole batch with :meth:`DMMNet.grad_potential`, the network's input
derivative written out (a forward and a backward sweep through the MLP in cache-sized blocks, no autograd
graph; equal to the autograd gradient up to float32 round-off). Wall nodes are put exactly on their wall
(the soft wall term leaves a small fraction of a cell), and a mesh with a quad corner Jacobian ``<= 0`` (tangled) falls back (``on_tangle``)
to the damped map ``xi + s grad phi`` (``s`` halved until untangled; ``s = 0`` is the uniform mesh), to
the classical solver, or raises.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from .._checks import as_float_array, check_name, check_positive_int
from ..errors import CheckpointError, ConfigError, InvalidMeshError, SciMLWarning, ShapeError
from ..fields import Field
from ..grid import Grid
from ..models.dmm_net import DMMNet
from ..models.registry import model_from_spec
from ..train.device import resolve_device
from ..train.task import Task
from .monitor import Monitor
from .move import (
    MongeAmpere,
    bilinear,
    box,
    box_mean,
    field_grid,
    make_monitor,
    min_corner_jacobians,
    monitor_from_spec,
    monitor_spec,
    snap_unit_mesh,
)

__all__ = ["DMMNet", "DMMTask", "DMMDataset", "dmm_dataset", "DMM", "WEIGHTS_DIR", "TRAIN_SCRIPT"]

#: Where :meth:`DMM.pretrained` looks for ``dmm_burgers2d.pt`` and ``dmm_burgers2d.json``.
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: The script that trains the shipped weights (named in the error when they are missing).
TRAIN_SCRIPT = "benchmarks/mesh_mover.py"

_ON_TANGLE = ("damp", "classical", "raise")
_MIN_JACOBIAN = 1e-10  # the classical solver's threshold, relative to the uniform cell
_DAMPING = 6  # halvings of the displacement before the uniform mesh itself


def _grad_phi(model: DMMNet, code: Tensor, xi: Tensor) -> tuple[Tensor, Tensor]:
    """``grad phi`` ``(B, P, 2)`` and ``(phi_11, phi_22, phi_12)`` ``(B, P, 3)``, both differentiable."""
    phi = model.potential(code, xi)
    (g,) = torch.autograd.grad(phi.sum(), xi, create_graph=True)
    (r0,) = torch.autograd.grad(g[..., 0].sum(), xi, create_graph=True)
    (r1,) = torch.autograd.grad(g[..., 1].sum(), xi, create_graph=True)
    # phi_12 from both rows: equal in exact arithmetic, averaged against round-off.
    return g, torch.stack([r0[..., 0], r1[..., 1], 0.5 * (r0[..., 1] + r1[..., 0])], dim=-1)


# -- data ---------------------------------------------------------------------------------------------
class DMMDataset(Dataset):
    """Fields with their monitor on the grid and ``theta``: item ``{"u", "m", "theta"}``.

    ``u`` and ``m`` are ``(H, W)`` float32, ``theta`` a float32 scalar. Made by :func:`dmm_dataset`; no
    meshes: the data-free mover learns from the equation.
    """

    def __init__(self, u: Tensor, m: Tensor, theta: Tensor, grid: Grid, monitor: Monitor) -> None:
        self.u, self.m, self.theta, self.grid, self.monitor = u, m, theta, grid, monitor

    def __len__(self) -> int:
        return int(self.u.shape[0])

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {"u": self.u[i], "m": self.m[i], "theta": self.theta[i]}


def dmm_dataset(fields: Any, grid: Grid, monitor: Monitor) -> DMMDataset:
    """A :class:`DMMDataset` of fields ``(..., H, W)`` on ``grid`` (leading axes, e.g. sample and time of
    trajectories, are flattened). ShapeError: not ending in ``grid.shape``; NonFiniteError: NaN/Inf;
    ConfigError: a grid that is not 2-D, a periodic monitor on non-periodic fields."""
    if not isinstance(grid, Grid) or grid.ndim != 2:
        raise ConfigError(f"dmm_dataset: expected a 2-D Grid, got {grid!r}")
    if not isinstance(monitor, Monitor):
        raise ConfigError(f"dmm_dataset: expected a Monitor, got {type(monitor).__name__}")
    u = as_float_array("dmm_dataset fields", fields)
    if u.ndim < 2 or u.shape[-2:] != grid.shape:
        raise ShapeError("dmm_dataset fields", f"(N, {grid.shape[0]}, {grid.shape[1]})", u.shape)
    u = u.reshape(-1, *grid.shape)
    if len(u) == 0:
        raise ConfigError("dmm_dataset: expected at least one field, got none")
    m = monitor.evaluate(u, grid)
    theta = box_mean(m, monitor.periodic)
    as32 = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    return DMMDataset(as32(u), as32(m), as32(theta), grid, monitor)


# -- the task ------------------------------------------------------------------------------------------
class DMMTask(Task):
    """Trains a :class:`DMMNet` on the Monge-Ampere residual of fields, with no meshes (module notes).

    Parameters
    ----------
    model : DMMNet
        For instance ``build_model("dmm_net", periodic=True)``; its ``periodic`` decides the formulation.
    grid : Grid
        The 2-D grid of the training fields (its box is the physical domain).
    monitor : {"gradient", "hessian"} or Monitor
        The monitor to equidistribute; its periodicity must match the model's.
    beta : float, optional
        Strength of a monitor given by name (the Monitor's default 0.01, the reference's, when None).
    points : int
        Interior collocation points per field and step.
    uniform_fraction : float
        Share of them drawn uniformly; the rest are importance-sampled by the monitor.
    boundary_points : int
        Points per wall and field for the sliding condition (non-periodic only).
    weights : dict, optional
        Weights of ``equidistribution``, ``boundary`` and ``convexity`` (default 1, 1000, 1: the reference's). The terms
        handed to the Trainer are already weighted, so its default ``"sum"`` combiner is the DMM loss;
        :meth:`metrics` reports them unweighted.

    Notes
    -----
    A batch is ``{"u": (B, H, W), "m": (B, H, W), "theta": (B,)}`` as a DataLoader over
    :meth:`dataset` makes it. :meth:`metrics` evaluates on the nodes of the grid (deterministic).
    """

    metrics_need_grad = True

    def __init__(self, model: nn.Module, grid: Grid, *, monitor: str | Monitor = "gradient",
                 beta: float | None = None, points: int = 128, uniform_fraction: float = 0.5,
                 boundary_points: int = 16, weights: Mapping[str, float] | None = None) -> None:
        super().__init__()
        if not isinstance(model, DMMNet):
            raise ConfigError(f"DMMTask model: expected a DMMNet (build_model('dmm_net', ...)), "
                              f"got {type(model).__name__}")
        if not isinstance(grid, Grid) or grid.ndim != 2 or min(grid.shape) < 4:
            raise ConfigError(f"DMMTask: expected a 2-D Grid with at least 4 nodes per axis, got {grid!r}")
        self.model, self.grid = model, grid
        self.periodic = model.periodic
        self.monitor = make_monitor(monitor, periodic=self.periodic, beta=beta)
        self.points = check_positive_int("DMMTask points", points)
        self.boundary_points = check_positive_int("DMMTask boundary_points", boundary_points)
        if isinstance(uniform_fraction, bool) or not isinstance(uniform_fraction, (int, float)) \
                or not 0.0 <= uniform_fraction <= 1.0:
            raise ConfigError(f"DMMTask: expected uniform_fraction in [0, 1], got {uniform_fraction!r}")
        self.uniform_fraction = float(uniform_fraction)
        self.weights = {"equidistribution": 1.0, "boundary": 1000.0, "convexity": 1.0}
        for name, value in dict(weights or {}).items():
            check_name("DMMTask weight", name, self.weights)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"DMMTask weight {name!r}: expected a finite number >= 0, got {value!r}")
            self.weights[name] = float(value)
        self.model_spec = getattr(model, "model_spec", None)

    def dataset(self, fields: Any) -> DMMDataset:
        """The training set of ``fields`` ``(..., H, W)`` on the task's grid, with the task's monitor."""
        return dmm_dataset(fields, self.grid, self.monitor)

    def config(self) -> dict[str, Any]:
        """What :class:`DMM` needs besides the weights: grid, monitor, periodicity (JSON-ready)."""
        return {"grid": self.grid.to_dict(), "monitor": monitor_spec(self.monitor), "periodic": self.periodic}

    def state_for_checkpoint(self) -> dict[str, Any]:
        return {"dmm": json.dumps(self.config())}

    def load_state_for_checkpoint(self, state: dict[str, Any]) -> None:
        if "dmm" in state and json.loads(state["dmm"]) != self.config():
            raise CheckpointError(f"DMMTask: the checkpoint was trained with {state['dmm']}, "
                                  f"this task has {json.dumps(self.config())}")

    # -- points ---------------------------------------------------------------------------------------
    def _collocation(self, m: Tensor) -> Tensor:
        """Interior points ``(B, P, 2)``: uniform, and importance-sampled by the cell means of ``m``."""
        b, h, w = m.shape
        n_uni = int(round(self.points * self.uniform_fraction))
        n_imp = self.points - n_uni
        parts = [torch.rand(b, n_uni, 2, device=m.device)]
        if n_imp:
            cells = 0.25 * (m[:, :-1, :-1] + m[:, 1:, :-1] + m[:, 1:, 1:] + m[:, :-1, 1:])
            idx = torch.multinomial(cells.reshape(b, -1), n_imp, replacement=True)
            corner = torch.stack([idx // (w - 1), idx % (w - 1)], dim=-1).to(m.dtype)
            size = torch.tensor([h - 1, w - 1], dtype=m.dtype, device=m.device)
            parts.append((corner + torch.rand(b, n_imp, 2, device=m.device)) / size)
        return torch.cat(parts, dim=1)

    def _walls(self, b: int, k: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """Points on the four walls ``(B, 4k, 2)`` and the index (0 or 1) of each one's normal."""
        t = torch.rand(b, 4 * k, device=device)
        side = torch.arange(4, device=device).repeat_interleave(k)  # x=0, x=1, y=0, y=1
        normal, wall = side // 2, (side % 2).to(t.dtype).expand(b, -1)
        xy = (torch.where(normal == 0, wall, t), torch.where(normal == 0, t, wall))
        return torch.stack(xy, dim=-1), normal

    # -- loss -----------------------------------------------------------------------------------------
    def _terms(self, batch: Mapping[str, Tensor], xi: Tensor, walls: Tensor | None,
               normal: Tensor | None) -> tuple[dict[str, Tensor], Tensor]:
        """Unweighted terms at interior points ``xi`` and wall points (None when periodic), and
        ``det(I + H)`` at the interior points ``(B, P)``."""
        u, m, theta = batch["u"], batch["m"], batch["theta"]
        n_in = xi.shape[1]
        pts = xi if walls is None else torch.cat([xi, walls], dim=1)
        pts = pts.detach().to(u.dtype).requires_grad_(True)
        code = self.model.encode(u)
        g, hes = _grad_phi(self.model, code, pts)
        g_in, hes = g[:, :n_in], hes[:, :n_in]
        det = (1.0 + hes[..., 0]) * (1.0 + hes[..., 1]) - hes[..., 2] ** 2
        trace = 2.0 + hes[..., 0] + hes[..., 1]
        mx = bilinear(m, pts[:, :n_in].detach() + g_in, self.periodic)
        residual = mx * det / theta[:, None] - 1.0
        terms = {"equidistribution": (residual ** 2).mean(),
                 "convexity": (torch.relu(-det) ** 2 + torch.relu(-trace) ** 2).mean()}
        if walls is not None:
            gn = torch.gather(g[:, n_in:], 2, normal.view(1, -1, 1).expand(g.shape[0], -1, 1))
            terms["boundary"] = (gn ** 2).mean()
        return terms, det

    def _check_batch(self, batch: Any) -> Mapping[str, Tensor]:
        if not isinstance(batch, Mapping) or not {"u", "m", "theta"} <= set(batch):
            got = sorted(batch) if isinstance(batch, Mapping) else type(batch).__name__
            raise ConfigError(f"DMMTask batch: expected a dict with 'u', 'm' and 'theta' (a DataLoader over "
                              f"task.dataset(fields)), got {got}")
        if batch["u"].ndim != 3 or batch["m"].shape != batch["u"].shape:
            raise ShapeError("DMMTask batch u, m", "(B, H, W) each", (tuple(batch["u"].shape), tuple(batch["m"].shape)))
        return batch

    def loss_terms(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Weighted ``equidistribution``, ``convexity`` and (walls) ``boundary`` terms at fresh points."""
        batch = self._check_batch(batch)
        m = batch["m"]
        xi = self._collocation(m)
        walls, normal = (None, None) if self.periodic else self._walls(m.shape[0], self.boundary_points, m.device)
        terms, _ = self._terms(batch, xi, walls, normal)
        return {k: self.weights[k] * v for k, v in terms.items()}

    def metrics(self, batch: Mapping[str, Tensor]) -> dict[str, float]:
        """Unweighted terms at the grid's nodes (walls: their boundary nodes), their weighted sum
        ``loss``, and ``min_det``, the smallest ``det(I + H)`` (per-sample minimum, batch mean)."""
        batch = self._check_batch(batch)
        (b, h, w), device = batch["u"].shape, batch["u"].device
        s0, s1 = torch.linspace(0, 1, h, device=device), torch.linspace(0, 1, w, device=device)
        nodes = torch.stack(torch.meshgrid(s0, s1, indexing="ij"), dim=-1)
        if self.periodic:
            nodes = nodes[:-1, :-1]  # distinct nodes of the torus
        xi = nodes.reshape(1, -1, 2).expand(b, -1, -1)
        walls, normal = None, None
        if not self.periodic:
            edge = torch.cat([nodes[0], nodes[-1], nodes[:, 0], nodes[:, -1]])
            walls = edge.reshape(1, -1, 2).expand(b, -1, -1)
            normal = torch.tensor([0] * (2 * w) + [1] * (2 * h), device=device)
        terms, det = self._terms(batch, xi, walls, normal)
        out = {k: float(v.detach()) for k, v in terms.items()}
        out["loss"] = sum(self.weights[k] * v for k, v in out.items())
        out["min_det"] = float(det.detach().amin(dim=1).mean())
        return out


# -- answering -----------------------------------------------------------------------------------------
class DMM:
    """A trained data-free mesh mover: fields in, ``n x n`` meshes out, one batched pass. After each
    call ``last_fallbacks`` maps the index of every mesh that tangled to what replaced it.

    Parameters
    ----------
    model : DMMNet
        The trained network (put in eval mode on ``device``).
    grid : Grid
        The grid of the fields it was trained on (its box is the domain; array inputs must be on it).
    monitor : Monitor or dict
        The monitor it was trained to equidistribute (used by the ``"classical"`` fallback and by
        :func:`~sciml.meshmove.move.move`), or its :func:`~sciml.meshmove.move.monitor_spec`.
    device : str or torch.device
        Where the network runs (``"auto"``: CUDA if available).
    on_tangle : {"damp", "classical", "raise"}
        What to do with a tangled mesh (a quad corner Jacobian ``<= 0``): damp the displacement
        (``xi + s grad phi``, ``s`` halved until untangled, the uniform mesh at the latest), solve the
        classical Monge-Ampere equation for that field, or raise InvalidMeshError. The first two warn.
    batch_size : int
        Fields per forward pass (memory bound; the answer does not depend on it).
    """

    def __init__(self, model: nn.Module, grid: Grid, monitor: Monitor | Mapping[str, Any], *,
                 device: str | torch.device = "cpu", on_tangle: str = "damp", batch_size: int = 64) -> None:
        if not isinstance(model, DMMNet):
            raise ConfigError(f"DMM model: expected a DMMNet, got {type(model).__name__}")
        if not isinstance(grid, Grid) or grid.ndim != 2:
            raise ConfigError(f"DMM: expected the 2-D training Grid, got {grid!r}")
        self.monitor = monitor if isinstance(monitor, Monitor) else monitor_from_spec(dict(monitor))
        if self.monitor.periodic != model.periodic:
            raise ConfigError(f"DMM: the monitor {self.monitor!r} and the network (periodic={model.periodic}) disagree")
        check_name("DMM on_tangle", on_tangle, _ON_TANGLE)
        self.device = resolve_device(device)
        self.model, self.grid, self.on_tangle = model.to(self.device).eval(), grid, on_tangle
        self.batch_size = check_positive_int("DMM batch_size", batch_size)
        self.periodic: bool = model.periodic
        self.last_fallbacks: dict[int, str] = {}

    def __repr__(self) -> str:
        return f"DMM(periodic={self.periodic}, grid={self.grid!r}, monitor={self.monitor!r}, device={str(self.device)!r})"

    # -- loading and saving -----------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, path: Path, state: Mapping[str, Any], spec: Mapping[str, Any] | None,
                        device: Any = "cpu", **kwargs: Any) -> DMM:
        """From a Trainer checkpoint payload (the hook :mod:`sciml.runs` calls for a solver kind)."""
        from ..runs import require_model_spec

        spec = require_model_spec(Path(path), dict(spec) if spec is not None else None)
        raw = (state.get("task_state") or {}).get("dmm")
        if raw is None:
            raise CheckpointError(f"{path}: not a DMM run (no 'dmm' entry in its task state)")
        return cls._build(spec, state["model"], json.loads(raw), str(path), device, **kwargs)

    @classmethod
    def load(cls, run_dir: str | Path, device: Any = "cpu", **kwargs: Any) -> DMM:
        """The newest good checkpoint of a :class:`DMMTask` run (``weights_only=True``, the model spec and
        the mover's grid and monitor from the checkpoint's metadata). Keywords go to :class:`DMM`."""
        from ..runs import read_run

        return cls.from_checkpoint(*read_run(run_dir), device, **kwargs)

    @classmethod
    def pretrained(cls, name: str = "dmm_burgers2d", weights_dir: str | Path | None = None,
                   device: Any = "cpu", **kwargs: Any) -> DMM:
        """The shipped mover ``weights/<name>.pt`` with its ``<name>.json`` (as :meth:`save` writes them).
        CheckpointError when either is missing (naming the script that trains them) or does not load."""
        folder = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
        weights, meta_file = folder / f"{name}.pt", folder / f"{name}.json"
        for path in (weights, meta_file):
            if not path.is_file():
                raise CheckpointError(f"DMM.pretrained: no {path}; the {name} weights have not been trained "
                                      f"yet (train them with {TRAIN_SCRIPT}, or train your own with DMMTask "
                                      "and load the run with DMM.load(run_dir))")
        try:
            meta = json.loads(meta_file.read_text())
            state = torch.load(weights, map_location="cpu", weights_only=True)
            spec, config = meta["model_spec"], meta["dmm"]
        except (KeyError, TypeError, ValueError, RuntimeError, OSError) as exc:
            raise CheckpointError(f"DMM.pretrained: cannot load {weights} with {meta_file}: {exc}") from exc
        return cls._build(spec, state, config, str(weights), device, **kwargs)

    @classmethod
    def _build(cls, spec: Any, weights: Any, config: Any, where: str, device: Any, **kwargs: Any) -> DMM:
        try:
            model = model_from_spec(spec)
            model.load_state_dict(weights)
            grid, monitor = Grid.from_dict(config["grid"]), monitor_from_spec(config["monitor"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"{where}: cannot rebuild the DMM: {exc}") from exc
        return cls(model, grid, monitor, device=device, **kwargs)

    def save(self, path: str | Path, metadata: Mapping[str, Any] | None = None) -> Path:
        """Write the weights to ``path`` (``.pt``) and spec, grid, monitor and ``metadata`` to the JSON
        beside it (each atomically): the pair :meth:`pretrained` reads. Returns the JSON's path."""
        spec = getattr(self.model, "model_spec", None)
        if spec is None:
            raise ConfigError("DMM.save: the network has no model_spec; build it with build_model('dmm_net', ...)")
        from ..train.checkpoint import save_weights_pair

        config = {"grid": self.grid.to_dict(), "monitor": monitor_spec(self.monitor), "periodic": self.periodic}
        return save_weights_pair(self.model.state_dict(), path, {"model_spec": spec, "dmm": config,
                                                                 **dict(metadata or {})})

    # -- answering ----------------------------------------------------------------------------------------
    def _fields(self, fields: Any) -> tuple[np.ndarray, Grid]:
        """Fields as float64 ``(B, H, W)`` and their grid (a Field's own, else the training grid)."""
        if isinstance(fields, Field):
            grid = field_grid(fields, "DMM")
            if grid.bounds != self.grid.bounds:
                raise ConfigError(f"DMM: expected a field on the training box {self.grid.bounds}, got {grid.bounds}")
            u = as_float_array("DMM field values", fields.values)
            return u.reshape(-1, *grid.shape), grid
        u = as_float_array("DMM fields", fields)
        if u.ndim == 2:
            u = u[None]
        if u.ndim != 3 or u.shape[1:] != self.grid.shape:
            raise ShapeError("DMM fields", f"(B, {self.grid.shape[0]}, {self.grid.shape[1]}) on the training "
                             "grid (or a Field)", u.shape)
        return u, self.grid

    def displacement(self, fields: Any, xi: Any) -> np.ndarray:
        """The raw ``grad phi`` ``(B, P, 2)`` at unit-square points ``xi`` ``(P, 2)`` (diagnostics)."""
        u, _ = self._fields(fields)
        pts = as_float_array("DMM points", xi)
        if pts.ndim != 2 or pts.shape[1] != 2:
            raise ShapeError("DMM points", "(P, 2)", pts.shape)
        return self._grad(u, torch.as_tensor(pts, dtype=torch.float32)).numpy().astype(np.float64)

    def _grad(self, u: np.ndarray, xi: Tensor) -> Tensor:
        """``grad phi`` ``(B, P, 2)`` (float32, CPU) at the points ``xi`` ``(P, 2)`` for every field, ``batch_size``
        fields per pass, by the network's written-out derivative :meth:`DMMNet.grad_potential`."""
        xi = xi.to(self.device)
        with torch.inference_mode():
            out = torch.empty(len(u), len(xi), 2, dtype=torch.float32)
            for start in range(0, len(u), self.batch_size):
                chunk = torch.as_tensor(u[start:start + self.batch_size], dtype=torch.float32, device=self.device)
                code = self.model.encode_inference(chunk)
                out[start:start + len(chunk)] = self.model.grad_potential(code, xi).cpu()
        return out

    def __call__(self, fields: Any, n: int | None = None) -> np.ndarray:
        """Moved meshes ``(B, n, n, 2)`` (``'ij'``, the grid's physical coordinates) for fields
        ``(B, H, W)`` on the training grid, one field ``(H, W)``, or a Field (``C`` components: ``B = C``).

        ``n`` is the nodes per axis (the field grid's largest size by default). Raises ShapeError,
        NonFiniteError for bad fields, InvalidMeshError for a tangle with ``on_tangle="raise"``.
        """
        u, grid = self._fields(fields)
        n = max(grid.shape) if n is None else check_positive_int("DMM n", n)
        if n < 3:
            raise ConfigError(f"DMM: expected n >= 3 nodes per axis, got {n}")
        s = np.linspace(0.0, 1.0, n)
        xi = np.stack(np.meshgrid(s, s, indexing="ij"), axis=-1)
        # A periodic mesh's last row and column are its first ones shifted (snap_unit_mesh): not evaluated.
        m = n - 1 if self.periodic else n
        disp = self._grad(u, torch.as_tensor(xi[:m, :m].reshape(-1, 2), dtype=torch.float32))
        disp = disp.numpy().reshape(len(u), m, m, 2)
        x = np.zeros((len(u), n, n, 2))
        x[:, :m, :m] = disp  # xi + grad phi, in float64 as before, without temporaries
        x[:, :m, :m] += xi[:m, :m]
        x = snap_unit_mesh(x, self.periodic, copy=False)
        self.last_fallbacks = {}
        bad = np.flatnonzero(~(min_corner_jacobians(x) > _MIN_JACOBIAN))
        for b in bad:
            full = np.pad(disp[b], ((0, n - m), (0, n - m), (0, 0)), mode="wrap").astype(np.float64)
            x[b] = self._fallback(int(b), xi, full, u[b], grid, n)
        if len(bad):  # one warning per call, however many meshes tangled
            shown = ", ".join(f"{b}: {how}" for b, how in list(self.last_fallbacks.items())[:5])
            warnings.warn(f"DMM: {len(bad)} of {len(u)} meshes tangled (a quad corner Jacobian <= 0) and were "
                          f"replaced ({shown}{', ...' if len(bad) > 5 else ''}; see .last_fallbacks)",
                          SciMLWarning, stacklevel=2)
        lo, length = box(grid)
        x *= length
        x += lo
        return x

    def _fallback(self, b: int, xi: np.ndarray, disp: np.ndarray, u: np.ndarray, grid: Grid, n: int) -> np.ndarray:
        """An untangled replacement for the tangled mesh of field ``b`` (unit coordinates)."""
        if self.on_tangle == "raise":
            raise InvalidMeshError(f"DMM: the mesh of field {b} is tangled (a quad corner Jacobian <= 0); "
                                   "use on_tangle='damp' or 'classical', or train longer")
        if self.on_tangle == "classical":
            self.last_fallbacks[b] = "classical Monge-Ampere"
            return MongeAmpere(periodic=self.periodic).solve(Field(u, grid), self.monitor, n).points
        for k in range(1, _DAMPING + 2):
            s = 0.5 ** k if k <= _DAMPING else 0.0
            x = snap_unit_mesh(xi[None] + s * disp[None], self.periodic)
            if min_corner_jacobians(x)[0] > _MIN_JACOBIAN:
                break
        self.last_fallbacks[b] = f"displacement damped by s={s:g}" if s else "uniform mesh"
        return x[0]

    # -- the mover protocol of sciml.meshmove.move --------------------------------------------------------
    def default_monitor(self, periodic: bool) -> Monitor:
        """The monitor the network was trained with."""
        if periodic != self.periodic:
            raise ConfigError(f"DMM: trained with periodic={self.periodic}, asked for periodic={periodic}")
        return self.monitor

    def mesh_points(self, field: Field, monitor: Monitor, n: int) -> np.ndarray:
        """One moved mesh ``(n, n, 2)`` of a scalar Field, for :func:`~sciml.meshmove.move.move`."""
        if monitor_spec(monitor) != monitor_spec(self.monitor):
            raise ConfigError(f"DMM: the network learnt to equidistribute {self.monitor!r}, not {monitor!r}; "
                              "pass monitor=None (or train a mover for that monitor)")
        return self(field, n)[0]
