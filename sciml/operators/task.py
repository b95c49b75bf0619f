"""Supervised operator learning from a dataset: the Task every grid operator network trains with.

The network maps normalised input channels to normalised output channels; the loss is taken on
decoded (physical) outputs, per sample, as in the FNO reference code, so the reported training
error is the paper's metric. Normalisers are fitted on the training split only and travel in the
checkpoint, so a :class:`~sciml.operators.solver.Solver` rebuilt from it sees exactly what training saw.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.normalize import IdentityNormalizer, UnitGaussianNormalizer, batches_of, normalizer_from_state
from ..data.profile import TrainingProfile
from ..errors import ConfigError, ShapeError, UnknownNameError
from ..fields import Grid
from ..train.losses import mse_per_sample, relative_h1_per_sample, relative_l2_per_sample
from ..train.task import Task

__all__ = ["OperatorTask"]

_LOSSES = ("rel_l2", "rel_h1", "mse")


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
    loss : {"rel_l2", "rel_h1", "mse"}
        Training loss; "rel_h1" adds the relative H1 term as a second named loss term.
    problem : dict, optional
        ``{"name": ..., "params": ...}`` of the problem, recorded in checkpoints.
    profile : TrainingProfile, optional
        What the training inputs looked like (:mod:`sciml.data.profile`); recorded in checkpoints so
        that the Solver warns when asked outside the training data. Fitted by :meth:`from_dataset`.
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
    ) -> None:
        super().__init__()
        if loss not in _LOSSES:
            raise UnknownNameError("operator loss", loss, _LOSSES)
        if not isinstance(grid, Grid):
            raise ConfigError(f"OperatorTask: expected a Grid, got {type(grid).__name__}")
        self.model = model
        self.grid = grid
        self.input_names = tuple(input_names)
        self.output_names = tuple(output_names)
        self.x_normalizer = x_normalizer if x_normalizer is not None else IdentityNormalizer()
        self.y_normalizer = y_normalizer if y_normalizer is not None else IdentityNormalizer()
        self.loss = loss
        self.problem_spec = dict(problem or {})
        self.profile = profile

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
        out = self.model(self.x_normalizer.encode(x))
        return self.y_normalizer.decode(out)

    def _per_sample(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch["x"], batch["y"]
        prediction = self(x)
        if prediction.shape != y.shape:
            raise ShapeError("model output", tuple(y.shape), tuple(prediction.shape))
        return prediction, y

    def loss_terms(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        prediction, y = self._per_sample(batch)
        if self.loss == "mse":
            return {"mse": mse_per_sample(prediction, y).mean()}
        terms = {"rel_l2": relative_l2_per_sample(prediction.float(), y.float()).mean()}
        if self.loss == "rel_h1":
            spacing = self._spacing(y)
            terms["rel_h1"] = relative_h1_per_sample(prediction.float(), y.float(), spacing).mean()
        return terms

    @torch.no_grad()
    def metrics(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        prediction, y = self._per_sample(batch)
        rel = relative_l2_per_sample(prediction.float(), y.float())
        return {"rel_l2": float(rel.mean()), "mse": float(mse_per_sample(prediction, y).mean())}

    @torch.no_grad()
    def per_sample_errors(self, loader: Any) -> np.ndarray:
        """Relative L2 of every sample of ``loader`` (for the mean and the median the papers report)."""
        device = next(self.parameters()).device
        errors = []
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
        text = state.get("input_profile")
        self.profile = None if text is None else TrainingProfile.from_json(text)
