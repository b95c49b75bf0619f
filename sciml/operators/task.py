"""Supervised operator learning from a dataset: the Task every grid operator network trains with.

The network maps normalised input channels to normalised output channels; the loss is taken on
decoded (physical) outputs, per sample, as in the FNO reference code, so the reported training
error is the paper's metric.

Losses (``loss=``): ``"rel_l2"``; ``"rel_h1"`` (terms ``rel_l2`` and ``h1_weight`` times the relative
H1 norm); ``"rel_l2+h1"`` (the Galerkin Transformer's: ``rel_l2`` plus ``h1_weight`` (its gamma) times
the relative H1 *seminorm*); ``"mse"``. Derivatives are finite differences on the grid
(:mod:`sciml.train.losses`). Metrics are always the relative L2 and the MSE.

Outputs on a coarser grid (``output_size``, e.g. a coefficient identified from its solution): the
dataset holds inputs and outputs on one grid, as every sciml dataset does, and the task compares on
the coarse grid of ``output_size`` nodes per axis over the same box, a subset of the data grid's
nodes: targets are read there by striding (``y[..., ::s]`` with ``s = (n - 1) / (output_size - 1)``,
exact samples of the target, no interpolation). A model may answer on the coarse grid itself (the
Galerkin Transformer with ``out_size``) or on the input grid (FNO, MgNO), whose answer is then read
at the same coarse nodes. The coarse grid stays fixed when the input resolution changes, so it must
be a stride of every resolution the task sees. Normalisers are fitted on the training split only and travel in the
checkpoint, so a :class:`~sciml.operators.solver.Solver` rebuilt from it sees exactly what training saw.

Other resolutions: a model whose weights do not depend on the grid spacing (FNO unpadded or padded
by a fraction: Fourier modes and point-wise maps) is simply called on the finer or coarser grid. A
model that declares
``resolution_invariant = False`` (MgNO: its 3-point stencils are finite-difference-like operators of
the training spacing; the 2-D Galerkin Transformer: convolutions and a size-dependent attention grid;
an FNO padded by a number of points: its period counts them)
would answer a different operator there (MgNO trained at 43 and called at 85: about 50% error), so
``forward`` interpolates the inputs (multi-)linearly onto the training grid, runs the model there and
interpolates the answer back. Where the training nodes are a subset of the asked grid's (85 from 43)
the inputs are read exactly at those nodes. ``task.resample_off_grid = False`` switches this off (to
measure the raw zero-shot error).

Periodic axes (``periodic_axes``, from the problem's ``Periodic`` conditions): sciml's node grids hold
both ends of the box, so on a periodic axis the last node repeats the first (513 nodes = 512 periodic
points). The model sees the distinct points only (an FFT or a circular padding over the repeated node
would see a period one node too long), and the answer gets the repeated node back.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.normalize import IdentityNormalizer, UnitGaussianNormalizer, batches_of, normalizer_from_state
from ..data.profile import TrainingProfile
from ..errors import ConfigError, ShapeError, UnknownNameError
from ..fields import Grid
from ..train.losses import (
    mse_per_sample,
    relative_h1_per_sample,
    relative_h1_seminorm_per_sample,
    relative_l2_per_sample,
)
from ..train.task import Task

__all__ = ["OperatorTask"]

_LOSSES = ("rel_l2", "rel_h1", "rel_l2+h1", "mse")


class OperatorTask(Task):
    """Learn ``inputs -> outputs`` on a grid from ``{"x": (B, C_in, *s), "y": (B, C_out, *s)}`` batches.

    Parameters
    ----------
    model : nn.Module
        Channels-first grid operator (FNO, MgNO, ...), ideally built by the model registry so its
        constructor kwargs are stored in checkpoints.
    grid : Grid
        Training grid (recorded for the Solver).
    input_names, output_names : sequence of str
        Channel order of ``x`` and ``y``.
    x_normalizer, y_normalizer : normaliser, optional
        Fitted normalisers (see :meth:`from_dataset`); identity when None.
    loss : {"rel_l2", "rel_h1", "rel_l2+h1", "mse"}
        Training loss (module docstring); "rel_h1" and "rel_l2+h1" add a second named loss term
        (``rel_h1``, ``h1_seminorm``), weighted by ``h1_weight``.
    h1_weight : float
        Weight of the H1 term (the Galerkin Transformer's gamma: 0.5 for Darcy, 0.1 for Burgers).
    problem : dict, optional
        ``{"name": ..., "params": ...}`` of the problem, recorded in checkpoints.
    profile : TrainingProfile, optional
        What the training inputs looked like (:mod:`sciml.data.profile`); recorded in checkpoints so
        that the Solver warns when asked outside the training data. Fitted by :meth:`from_dataset`.
    output_size : int or sequence of int, optional
        Compare on a coarser grid of this many nodes per axis (module docstring); None: the data grid.
    """

    def __init__(
        self,
        model: nn.Module,
        grid: Grid,
        input_names: list[str] | tuple[str, ...],
        output_names: list[str] | tuple[str, ...],
        x_normalizer: Any = None,
        y_normalizer: Any = None,
        loss: str = "rel_l2",
        problem: dict[str, Any] | None = None,
        profile: TrainingProfile | None = None,
        h1_weight: float = 1.0,
        output_size: int | Sequence[int] | None = None,
        periodic_axes: Sequence[int] = (),
    ) -> None:
        super().__init__()
        if loss not in _LOSSES:
            raise UnknownNameError("operator loss", loss, _LOSSES)
        if isinstance(h1_weight, bool) or not isinstance(h1_weight, (int, float)) or not (
                math.isfinite(h1_weight) and h1_weight >= 0):
            raise ConfigError(f"OperatorTask h1_weight: expected a finite number >= 0, got {h1_weight!r}")
        if not isinstance(grid, Grid):
            raise ConfigError(f"OperatorTask: expected a Grid, got {type(grid).__name__}")
        self.model = model
        self.grid = grid
        self.input_names = tuple(input_names)
        self.output_names = tuple(output_names)
        self.x_normalizer = x_normalizer if x_normalizer is not None else IdentityNormalizer()
        self.y_normalizer = y_normalizer if y_normalizer is not None else IdentityNormalizer()
        self.loss = loss
        self.h1_weight = float(h1_weight)
        self.output_size = _check_output_size(output_size, grid.ndim)
        self.problem_spec = dict(problem or {})
        self.profile = profile
        self.resample_off_grid = True
        self.periodic_axes = _check_periodic_axes(periodic_axes, grid.ndim)

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def from_dataset(
        cls, model: nn.Module, dataset: Any, normalize: bool = True, max_fit_samples: int = 2048, **kwargs: Any
    ) -> OperatorTask:
        """Fit per-channel Gaussian normalisers and the input profile on (up to ``max_fit_samples``
        of) ``dataset``.

        ``dataset`` is a :class:`~sciml.data.GridDataset` (or a Subset of one) yielding
        ``{"x", "y"}`` dicts. Per-channel (not per-point) statistics keep the task usable at other
        resolutions, which discretisation-invariant operators such as FNO allow.
        """
        base = getattr(dataset, "dataset", dataset)
        grid = kwargs.pop("grid", None) or base.grid
        input_names = kwargs.pop("input_names", None) or base.input_names
        x_norm = y_norm = None
        if len(dataset) > max_fit_samples:
            dataset = torch.utils.data.Subset(dataset, range(max_fit_samples))
        x = torch.cat(list(batches_of(dataset, "x", 256))).double().numpy()
        profile = TrainingProfile.fit({name: x[:, i] for i, name in enumerate(input_names)}, grid)
        if normalize:
            x_norm = UnitGaussianNormalizer(mode="channel").fit(dataset, key="x")
            y_norm = UnitGaussianNormalizer(mode="channel").fit(dataset, key="y")
        problem = kwargs.pop("problem", None)
        if problem is None and hasattr(base, "attrs"):
            problem = {"name": base.attrs.get("problem"), "params": base.attrs.get("params", {})}
        return cls(
            model,
            grid=grid,
            input_names=input_names,
            output_names=kwargs.pop("output_names", None) or base.output_names,
            x_normalizer=x_norm,
            y_normalizer=y_norm,
            problem=problem,
            profile=profile,
            **kwargs,
        )

    # -- the Task contract ---------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Physical inputs ``(B, C_in, *s)`` to physical outputs ``(B, C_out, *s)``."""
        if x.ndim != self.grid.ndim + 2 or x.shape[1] != len(self.input_names):
            raise ShapeError("operator input", f"(B, {len(self.input_names)}, *spatial[{self.grid.ndim}])", tuple(x.shape))
        spatial = tuple(x.shape[2:])
        if spatial == self.grid.shape or self.resolution_invariant or not self.resample_off_grid:
            return self._run(x)
        # A grid-bound model answers on its training grid; the answer is interpolated back (module notes).
        out = self._run(_interpolate(x, self.grid.shape))
        if self.output_size is not None and tuple(out.shape[2:]) == self.output_size:
            return out  # already on the coarse output grid, which does not follow the input resolution
        return _interpolate(out, spatial)

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        """The model on normalised inputs, periodic axes without their repeated last node."""
        z = self.x_normalizer.encode(x)
        for axis in self.periodic_axes:
            z = z.narrow(axis + 2, 0, z.shape[axis + 2] - 1)
        out = self.model(z)
        for axis in self.periodic_axes:  # the repeated node again: equal to the first
            if out.shape[axis + 2] == z.shape[axis + 2]:
                out = torch.cat([out, out.narrow(axis + 2, 0, 1)], dim=axis + 2)
        return self.y_normalizer.decode(out)

    @property
    def resolution_invariant(self) -> bool:
        """Whether the model may be called on grids other than the training grid as it is (module notes)."""
        return bool(getattr(self.model, "resolution_invariant", True))

    def _per_sample(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch["x"], batch["y"]
        prediction = self(x)
        if self.output_size is not None:
            y = self.on_output_grid(y, "target")
            if prediction.shape[2:] != y.shape[2:]:
                prediction = self.on_output_grid(prediction, "model output")
        if prediction.shape != y.shape:
            raise ShapeError("model output", tuple(y.shape), tuple(prediction.shape))
        return prediction, y

    def on_output_grid(self, values: torch.Tensor, what: str = "field") -> torch.Tensor:
        """``values`` ``(B, C, *s)`` read at the nodes of the output grid (``output_size``; strided)."""
        if self.output_size is None:
            return values
        index = [slice(None), slice(None)]
        for n, m in zip(values.shape[2:], self.output_size, strict=True):
            if n == m:
                index.append(slice(None))
            elif m > 1 and n > m and (n - 1) % (m - 1) == 0:
                index.append(slice(None, None, (n - 1) // (m - 1)))
            else:
                raise ShapeError(f"{what} on the output grid", f"an axis of {m} nodes or of k * {m - 1} + 1 "
                                 f"nodes (output_size={list(self.output_size)})", tuple(values.shape))
        return values[tuple(index)]

    def loss_terms(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        prediction, y = self._per_sample(batch)
        if self.loss == "mse":
            return {"mse": mse_per_sample(prediction, y).mean()}
        terms = {"rel_l2": relative_l2_per_sample(prediction.float(), y.float()).mean()}
        if self.loss == "rel_h1":
            spacing = self._spacing(y)
            terms["rel_h1"] = self.h1_weight * relative_h1_per_sample(prediction.float(), y.float(), spacing).mean()
        elif self.loss == "rel_l2+h1":
            semi = relative_h1_seminorm_per_sample(prediction.float(), y.float(), self._spacing(y))
            terms["h1_seminorm"] = self.h1_weight * semi.mean()
        return terms

    @torch.no_grad()
    def metrics(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        prediction, y = self._per_sample(batch)
        rel = relative_l2_per_sample(prediction.float(), y.float())
        return {"rel_l2": float(rel.mean()), "mse": float(mse_per_sample(prediction, y).mean())}

    def per_sample_errors(self, loader: Any) -> np.ndarray:
        """Relative L2 of every sample of ``loader`` (for the mean and the median the papers report),
        in eval mode whatever mode the task is in (:meth:`~sciml.train.Task.evaluating`)."""
        device = next(self.parameters()).device
        errors = []
        with self.evaluating():
            for batch in loader:
                prediction, y = self._per_sample({k: v.to(device) for k, v in batch.items() if k in ("x", "y")})
                errors.append(relative_l2_per_sample(prediction.float(), y.float()).cpu().numpy())
        return np.concatenate(errors)

    def _spacing(self, y: torch.Tensor) -> list[float]:
        # The batch may be a strided resolution of the training grid: spacing follows the array.
        return [(hi - lo) / (n - 1) for (lo, hi), n in zip(self.grid.bounds, y.shape[2:])]

    # -- checkpoint ----------------------------------------------------------------------------
    @property
    def model_spec(self) -> dict[str, Any] | None:
        return getattr(self.model, "model_spec", None)

    def state_for_checkpoint(self) -> dict[str, Any]:
        profile = {} if self.profile is None else {"input_profile": self.profile.to_json()}
        return {
            **profile,
            "x_normalizer": self.x_normalizer.state_dict(),
            "y_normalizer": self.y_normalizer.state_dict(),
            "operator": json.dumps(
                {
                    "grid": self.grid.to_dict(),
                    "inputs": list(self.input_names),
                    "outputs": list(self.output_names),
                    "loss": self.loss,
                    "h1_weight": self.h1_weight,
                    "output_size": None if self.output_size is None else list(self.output_size),
                    "periodic_axes": list(self.periodic_axes),
                    "problem": self.problem_spec,
                }
            ),
        }

    def load_state_for_checkpoint(self, state: dict[str, Any]) -> None:
        self.x_normalizer = normalizer_from_state(state["x_normalizer"])
        self.y_normalizer = normalizer_from_state(state["y_normalizer"])
        info = json.loads(state["operator"])
        self.grid = Grid.from_dict(info["grid"])
        self.input_names, self.output_names = tuple(info["inputs"]), tuple(info["outputs"])
        self.problem_spec = info["problem"]
        self.loss = info.get("loss", self.loss)
        self.h1_weight = float(info.get("h1_weight", self.h1_weight))
        self.output_size = _check_output_size(info.get("output_size"), self.grid.ndim)
        self.periodic_axes = _check_periodic_axes(info.get("periodic_axes", ()), self.grid.ndim)
        text = state.get("input_profile")
        self.profile = None if text is None else TrainingProfile.from_json(text)


def _check_periodic_axes(axes: Any, ndim: int) -> tuple[int, ...]:
    """Distinct spatial axes in ``[0, ndim)``."""
    ok = isinstance(axes, Sequence) and not isinstance(axes, str) and all(
        isinstance(a, int) and not isinstance(a, bool) and 0 <= a < ndim for a in axes) and len(set(axes)) == len(axes)
    if not ok:
        raise ConfigError(f"OperatorTask periodic_axes: expected distinct spatial axes in [0, {ndim}), got {axes!r}")
    return tuple(sorted(axes))


def periodic_node_axes(problem: Any, grid: Grid) -> tuple[int, ...]:
    """Axes on which ``grid``'s last node repeats its first: a ``Periodic`` condition of ``problem``
    whose period is the box's extent along that axis (sciml's node grids include both ends)."""
    from ..problem import Periodic

    axes = []
    for cond in getattr(problem, "conditions", ()):
        if isinstance(cond, Periodic) and -grid.ndim <= cond.axis < grid.ndim:
            axis = cond.axis % grid.ndim
            lo, hi = grid.bounds[axis]
            if cond.period is None or math.isclose(cond.period, hi - lo, rel_tol=1e-12):
                axes.append(axis)
    return tuple(sorted(set(axes)))


def _interpolate(x: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """Node values ``(B, C, *s)`` (multi-)linearly interpolated to ``size`` nodes on the same box."""
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[x.ndim - 2]
    return F.interpolate(x, size=size, mode=mode, align_corners=True)  # align_corners: end nodes stay put


def _check_output_size(value: Any, ndim: int) -> tuple[int, ...] | None:
    """None, or ``ndim`` node counts >= 2 (an int is used for every axis)."""
    if value is None:
        return None
    values = [value] * ndim if isinstance(value, int) and not isinstance(value, bool) else value
    ok = isinstance(values, Sequence) and not isinstance(values, str) and len(values) == ndim
    if not ok or any(isinstance(v, bool) or not isinstance(v, int) or v < 2 for v in values):
        raise ConfigError(f"OperatorTask output_size: expected None, an int >= 2 or {ndim} of them, got {value!r}")
    return tuple(values)
