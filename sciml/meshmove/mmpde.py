"""MM-PDE (Hu, Wang, Ma, ICLR 2024): a neural time-stepper with a branch on a moving mesh, trained through
the shared Trainer.

The network is :class:`~sciml.models.mmpde_net.MMPDENet` (registry name ``"mmpde"``): ``u_next = u + U(u)
+ Itp2(M(Itp1(u -> mesh)) -> uniform)``, the mesh given by a frozen :class:`~sciml.meshmove.dmm.DMM`; with
``moving=False`` the same stepper on the uniform grid alone. This module holds what trains and answers
with it:

* :func:`stepper_dataset`: the consecutive frame pairs ``(u(t_k), u(t_k+1))`` of trajectories, with the
  moved mesh of each input frame and where the uniform nodes lie in it, computed once (the mesh depends on
  the input frame only; :func:`moved_meshes`);
* :class:`RoundTripTask`: pretrains the learned interpolations on ``u -> moved mesh -> u`` (MSE relative to
  ``mean u^2``), as the reference does before training the solver;
* :class:`MMPDETask`: one-step training, MSE of ``u_next`` in units of ``scale^2`` (``scale``: a typical
  increment), metric the relative L2 error of ``u_next``; the interpolations keep training with the
  rest (the reference steps their optimiser with the solver's too), held to interpolating by the
  round-trip error as a second term (our addition: see the class);
* :func:`rollout`: autoregressive steps, the mover called on every predicted field.

Fields are node grids as sciml stores periodic data, ``(..., n + 1, n + 1)`` with the first row and
column repeated last; the network sees the ``n x n`` distinct nodes (:func:`distinct`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from .._checks import as_float_array, check_positive_int
from ..errors import ConfigError, ShapeError
from ..models.learned_interp import MeshInterpolation
from ..models.mmpde_net import MMPDENet
from ..train.losses import relative_l2_per_sample
from ..train.task import Task

__all__ = ["distinct", "moved_meshes", "StepperDataset", "stepper_dataset", "MMPDETask", "RoundTripTask",
           "rollout"]


# -- data -------------------------------------------------------------------------------------------------
def distinct(fields: Any, name: str = "fields") -> np.ndarray:
    """The ``n x n`` distinct nodes ``(..., n, n)`` (float32) of periodic node-grid fields ``(..., n + 1, n + 1)``.

    ShapeError: not square in the last two axes; NonFiniteError: NaN/Inf; ConfigError: the last row and
    column do not repeat the first (not sciml's periodic node convention)."""
    u = as_float_array(name, fields)
    if u.ndim < 2 or u.shape[-1] != u.shape[-2] or u.shape[-1] < 5:
        raise ShapeError(name, "(..., n + 1, n + 1) periodic node grids, n >= 4", u.shape)
    scale = max(1.0, float(np.abs(u).max(initial=0.0)))
    gap = max(float(np.abs(u[..., -1, :] - u[..., 0, :]).max()), float(np.abs(u[..., :, -1] - u[..., :, 0]).max()))
    if gap > 1e-5 * scale:
        raise ConfigError(f"{name}: expected periodic node grids whose last row and column repeat the first, "
                          f"got a largest mismatch of {gap:.3g}")
    return np.ascontiguousarray(u[..., :-1, :-1], dtype=np.float32)


def moved_meshes(mover: Any, fields: Tensor | np.ndarray, batch: int = 64) -> Tensor:
    """Moved periodic meshes ``(B, n, n, 2)`` (float32, unit coordinates, distinct nodes) of fields ``(B, n, n)``
    (distinct nodes) by a trained periodic :class:`~sciml.meshmove.dmm.DMM` on the unit square, ``batch``
    fields per call. Tangled meshes are replaced as the mover's ``on_tangle`` says (a warning each call)."""
    if not getattr(mover, "periodic", False) or not callable(mover):
        raise ConfigError(f"moved_meshes: expected a periodic DMM, got {type(mover).__name__}")
    grid = mover.grid
    if grid.bounds != ((0.0, 1.0), (0.0, 1.0)):
        raise ConfigError(f"moved_meshes: expected a mover of the unit square, got bounds {grid.bounds}")
    u = fields.detach().cpu().numpy() if isinstance(fields, Tensor) else np.asarray(fields)
    if u.ndim != 3 or u.shape[1:] != (grid.shape[0] - 1, grid.shape[1] - 1):
        raise ShapeError("moved_meshes fields", f"(B, {grid.shape[0] - 1}, {grid.shape[1] - 1}) distinct nodes "
                         "of the mover's grid", u.shape)
    nodes = np.pad(u, ((0, 0), (0, 1), (0, 1)), mode="wrap")
    out = [mover(nodes[i:i + batch])[:, :-1, :-1] for i in range(0, len(u), batch)]
    return torch.as_tensor(np.concatenate(out), dtype=torch.float32)


class StepperDataset(Dataset):
    """Frame pairs: item ``{"u", "target"}`` ``(n, n)`` each, plus ``"mesh"`` ``(n, n, 2)``, ``"cell"``
    ``(n*n, 2)`` and ``"local"`` ``(n*n, 2)`` when made with a mover (the moved mesh of ``u`` and where the
    uniform nodes lie in it). Made by :func:`stepper_dataset`."""

    def __init__(self, u: Tensor, target: Tensor, mesh: Tensor | None = None,
                 where: tuple[Tensor, Tensor] | None = None) -> None:
        self.u, self.target, self.mesh = u, target, mesh
        self.cell, self.local = (None, None) if where is None else where

    def __len__(self) -> int:
        return int(self.u.shape[0])

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        item = {"u": self.u[i], "target": self.target[i]}
        if self.mesh is not None:
            item.update(mesh=self.mesh[i], cell=self.cell[i], local=self.local[i])
        return item


def stepper_dataset(trajectories: Any, mover: Any = None, batch: int = 64) -> StepperDataset:
    """All consecutive frame pairs of trajectories ``(S, K, n + 1, n + 1)`` (periodic node grids).

    With a ``mover`` (a periodic :class:`~sciml.meshmove.dmm.DMM`) each input frame also gets its moved mesh
    and :meth:`~sciml.models.learned_interp.MeshInterpolation.where`, computed here once, ``batch`` frames at
    a time. The pairs are ordered by trajectory, then time."""
    u = distinct(trajectories, "stepper_dataset trajectories")
    if u.ndim != 4 or u.shape[1] < 2:
        raise ShapeError("stepper_dataset trajectories", "(S, K >= 2, n + 1, n + 1)", (*u.shape[:-2], "n+1", "n+1"))
    n = u.shape[-1]
    inputs = torch.from_numpy(u[:, :-1].reshape(-1, n, n).copy())
    targets = torch.from_numpy(u[:, 1:].reshape(-1, n, n).copy())
    if mover is None:
        return StepperDataset(inputs, targets)
    mesh = moved_meshes(mover, inputs, batch)
    cells, locals_ = [], []
    for i in range(0, len(mesh), batch):
        cell, local = MeshInterpolation.where(mesh[i:i + batch])
        cells.append(cell.to(torch.int16))  # n < 32768: half the memory of int64
        locals_.append(local)
    return StepperDataset(inputs, targets, mesh, (torch.cat(cells), torch.cat(locals_)))


def _where(batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor] | None:
    if "cell" in batch and "local" in batch:
        return batch["cell"].long(), batch["local"]
    return None


def _needs_mesh(net: MMPDENet, batch: Mapping[str, Tensor], who: str) -> Tensor | None:
    if not net.moving:
        return None
    if "mesh" not in batch:
        raise ConfigError(f"{who}: the network has a moving branch but the batch holds no 'mesh'; make the data "
                          "with stepper_dataset(trajectories, mover)")
    return batch["mesh"]


def _check_batch(batch: Any, keys: tuple[str, ...], who: str) -> Mapping[str, Tensor]:
    if not isinstance(batch, Mapping) or not set(keys) <= set(batch):
        got = sorted(batch) if isinstance(batch, Mapping) else type(batch).__name__
        raise ConfigError(f"{who} batch: expected a dict with {list(keys)} (a DataLoader over stepper_dataset), "
                          f"got {got}")
    if batch["u"].ndim != 3:
        raise ShapeError(f"{who} batch u", "(B, n, n)", tuple(batch["u"].shape))
    return batch


# -- tasks --------------------------------------------------------------------------------------------------
class MMPDETask(Task):
    """One-step training of an :class:`~sciml.models.mmpde_net.MMPDENet` on frame pairs.

    Parameters
    ----------
    model : MMPDENet
        ``build_model("mmpde", moving=...)``; a moving one needs data made with a mover.
    scale : float
        Losses are mean squares in units of ``scale^2``: give the root-mean-square increment of the training
        pairs (persistence then scores 1).
    round_trip_weight : float
        Moving networks: weight of the term ``round_trip``, ``mean (Itp2(Itp1(u)) - u)^2 / scale^2``, which
        keeps the interpolations interpolating while they train with the stepper (without it, Adam's
        normalised steps moved their weights far from the pretrained ones in a few dozen steps: a round-trip
        error of 9% after 20 steps, from 0.6%). 0 drops it.

    Notes
    -----
    Batches are ``{"u", "target"[, "mesh", "cell", "local"]}`` from :func:`stepper_dataset`. Terms: ``mse``
    (of ``u_next``) and, moving, ``round_trip`` (weighted). Metrics: ``mse``, ``rel_l2`` (the relative L2 error
    of ``u_next`` per pair, batch mean) and, moving, ``round_trip`` (unweighted).
    """

    def __init__(self, model: nn.Module, scale: float = 1.0, round_trip_weight: float = 1.0) -> None:
        super().__init__()
        if not isinstance(model, MMPDENet):
            raise ConfigError(f"MMPDETask model: expected an MMPDENet (build_model('mmpde', ...)), "
                              f"got {type(model).__name__}")
        for name, value in (("scale", scale), ("round_trip_weight", round_trip_weight)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) \
                    or value < 0 or (name == "scale" and value == 0):
                raise ConfigError(f"MMPDETask: expected a finite {name} {'> 0' if name == 'scale' else '>= 0'}, "
                                  f"got {value!r}")
        self.model, self.scale, self.round_trip_weight = model, float(scale), float(round_trip_weight)
        self.model_spec = getattr(model, "model_spec", None)

    def _run(self, batch: Any, round_trip: bool) -> tuple[Mapping[str, Tensor], Tensor, Tensor | None]:
        batch = _check_batch(batch, ("u", "target"), "MMPDETask")
        pred, back = self.model.step(batch["u"], _needs_mesh(self.model, batch, "MMPDETask"), _where(batch),
                                     round_trip=round_trip and self.model.moving)
        return batch, pred, back

    def predict(self, batch: Mapping[str, Tensor]) -> Tensor:
        """``u_next`` ``(B, n, n)`` of a batch."""
        batch = _check_batch(batch, ("u",), "MMPDETask")
        return self.model(batch["u"], _needs_mesh(self.model, batch, "MMPDETask"), _where(batch))

    def loss_terms(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        batch, pred, back = self._run(batch, self.round_trip_weight > 0)
        terms = {"mse": ((pred - batch["target"]) ** 2).mean() / self.scale ** 2}
        if back is not None:
            terms["round_trip"] = self.round_trip_weight * ((back - batch["u"]) ** 2).mean() / self.scale ** 2
        return terms

    def metrics(self, batch: Mapping[str, Tensor]) -> dict[str, float]:
        with torch.no_grad():
            batch, pred, back = self._run(batch, True)
        out = {"mse": float(((pred - batch["target"]) ** 2).mean() / self.scale ** 2),
               "rel_l2": float(relative_l2_per_sample(pred.flatten(1), batch["target"].flatten(1)).mean())}
        if back is not None:
            out["round_trip"] = float(((back - batch["u"]) ** 2).mean() / self.scale ** 2)
        return out


class RoundTripTask(Task):
    """Pretrains the learned interpolations of a moving :class:`~sciml.models.mmpde_net.MMPDENet` (or a
    :class:`~sciml.models.learned_interp.MeshInterpolation`) on ``u -> moved mesh -> u``: the loss is
    ``mean (Itp2(Itp1(u)) - u)^2 / mean u^2`` over the batch; metric ``rel_l2`` per field. Only the
    interpolations are trained (``model`` is them); batches as :class:`MMPDETask`'s, with meshes."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        if isinstance(model, MMPDENet):
            if model.interp is None:
                raise ConfigError("RoundTripTask: the MMPDENet has no moving branch (moving=False): nothing to "
                                  "pretrain")
            model = model.interp
        if not isinstance(model, MeshInterpolation):
            raise ConfigError(f"RoundTripTask: expected a moving MMPDENet or a MeshInterpolation, "
                              f"got {type(model).__name__}")
        self.model = model

    def _pair(self, batch: Any) -> tuple[Tensor, Tensor]:
        batch = _check_batch(batch, ("u", "mesh"), "RoundTripTask")
        u = batch["u"]
        return self.model.round_trip(u, batch["mesh"].to(u.dtype), _where(batch)), u

    def loss_terms(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        back, u = self._pair(batch)
        return {"round_trip": ((back - u) ** 2).mean() / (u ** 2).mean().clamp_min(1e-12)}

    def metrics(self, batch: Mapping[str, Tensor]) -> dict[str, float]:
        with torch.no_grad():
            back, u = self._pair(batch)
        return {"round_trip": float(((back - u) ** 2).mean() / (u ** 2).mean().clamp_min(1e-12)),
                "rel_l2": float(relative_l2_per_sample(back.flatten(1), u.flatten(1)).mean())}


# -- answering ------------------------------------------------------------------------------------------------
def rollout(model: nn.Module, u0: Any, steps: int, mover: Any = None, batch: int = 64) -> tuple[np.ndarray, int]:
    """Autoregressive rollout: ``steps`` applications of the stepper from ``u0``.

    Parameters
    ----------
    model : MMPDENet
        The trained stepper (put in eval mode; no gradients).
    u0 : array_like, (B, n, n)
        Initial fields on the distinct periodic nodes.
    steps : int
        Number of steps.
    mover : DMM, optional
        Required for a moving stepper: it moves a mesh for every predicted field (as for the data).
    batch : int
        Fields per call of the mover and the network.

    Returns
    -------
    states : ndarray, (steps + 1, B, n, n)
        ``u0`` and the predicted fields (float32).
    fallbacks : int
        Meshes of predicted fields the mover had to untangle (its ``on_tangle`` fall-back), all steps.
    """
    if not isinstance(model, MMPDENet):
        raise ConfigError(f"rollout: expected an MMPDENet, got {type(model).__name__}")
    steps = check_positive_int("rollout steps", steps)
    if model.moving and mover is None:
        raise ConfigError("rollout: the stepper has a moving branch: pass the mover (DMM) that made its meshes")
    u = torch.as_tensor(as_float_array("rollout u0", u0), dtype=torch.float32)
    if u.ndim != 3 or u.shape[1] != u.shape[2]:
        raise ShapeError("rollout u0", "(B, n, n) distinct periodic nodes", tuple(u.shape))
    was_training = model.training
    model.eval()
    states, fallbacks = [u], 0
    try:
        with torch.no_grad():
            for _ in range(steps):
                parts = []
                for i in range(0, len(u), batch):
                    chunk = u[i:i + batch]
                    mesh = None
                    if model.moving:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")  # counted instead
                            mesh = moved_meshes(mover, chunk, batch)
                        fallbacks += len(getattr(mover, "last_fallbacks", {}))
                    parts.append(model(chunk, mesh))
                u = torch.cat(parts)
                states.append(u)
    finally:
        model.train(was_training)
    return torch.stack(states).numpy(), fallbacks
