"""What the training inputs looked like, so that a trained solver can tell when it is asked
something it never saw.

For every input channel an :class:`InputProfile` keeps, over the training samples, the spread of a
few cheap per-sample features: the sample's mean, standard deviation, minimum and maximum over the
grid, and its roughness (the root-mean-square of the gradient, in physical units: a cheap
smoothness / spectral-content summary; a field with more high-frequency content has a larger one).
For each feature the profile stores the training mean, standard deviation and range.

A new input is *out of distribution* when one of its features leaves the training range by more
than ``k`` training standard deviations of that feature plus a small fraction of the range (the
features of a fresh draw from the training distribution stay inside with overwhelming
probability, a field 10 standard deviations off does not). The mean counts on both sides; the
others only on the side of "more": a smaller minimum or a larger maximum than training saw, more
spread, more roughness. A flatter or smoother input than any in training (a zero source where
training drew random ones) is a simpler question, not an extrapolation into the unknown. Features are computed on the training
grid: an input given on another grid is interpolated there first, so a rough field is not
flagged merely because a finer grid resolves its jumps more sharply.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError, ShapeError
from ..grid import Grid, resample

__all__ = ["FEATURES", "InputProfile", "TrainingProfile", "sample_features"]

FEATURES = ("mean", "std", "min", "max", "roughness")
_TWO_SIDED_LOW = ("mean", "min")  # features also flagged when below the training range


def sample_features(values: np.ndarray, grid: Grid) -> np.ndarray:
    """Per-sample features ``(B, len(FEATURES))`` of ``values`` shaped ``(B, *grid.shape)``."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape[1:] != grid.shape:
        raise ShapeError("profiled values", f"(B, *{grid.shape})", values.shape)
    flat = values.reshape(values.shape[0], -1)
    squared_gradient = np.zeros_like(values)
    for axis, h in enumerate(grid.spacing):
        d = np.diff(values, axis=axis + 1) / h
        # forward differences, the last layer repeated, so every node has a value of the same kind
        pad = [(0, 0)] * values.ndim
        pad[axis + 1] = (0, 1)
        squared_gradient += np.pad(d, pad, mode="edge") ** 2
    roughness = np.sqrt(squared_gradient.reshape(values.shape[0], -1).mean(axis=1))
    return np.stack([flat.mean(1), flat.std(1), flat.min(1), flat.max(1), roughness], axis=1)


class InputProfile:
    """Training statistics of one input (see the module docstring).

    Parameters
    ----------
    name : str
        The input's name in its problem.
    mean, std, low, high : sequence of float
        Per feature (:data:`FEATURES`): training mean, standard deviation and range of that feature.
    n : int
        Training samples profiled.
    """

    def __init__(self, name: str, mean: Sequence[float], std: Sequence[float], low: Sequence[float],
                 high: Sequence[float], n: int) -> None:
        arrays = [np.asarray(v, dtype=np.float64) for v in (mean, std, low, high)]
        for label, arr in zip(("mean", "std", "low", "high"), arrays):
            if arr.shape != (len(FEATURES),) or not np.all(np.isfinite(arr)):
                raise ConfigError(f"InputProfile {name!r} {label}: expected {len(FEATURES)} finite numbers, "
                                  f"got {arr.tolist()}")
        self.name, self.n = name, int(n)
        self.mean, self.std, self.low, self.high = arrays

    @classmethod
    def fit(cls, name: str, values: np.ndarray, grid: Grid) -> InputProfile:
        """Profile ``values`` of shape ``(N, *grid.shape)`` (the training samples of the input)."""
        features = sample_features(values, grid)
        return cls(name, features.mean(0), features.std(0), features.min(0), features.max(0), len(features))

    @property
    def constant(self) -> bool:
        """True when every training sample had the same features (a fixed input)."""
        return bool(np.all(self.high - self.low <= 1e-12 * (1.0 + np.abs(self.high))))

    def outliers(self, features: np.ndarray, k: float = 4.0) -> list[str]:
        """Descriptions of the features of one sample (``(len(FEATURES),)``) outside the training data."""
        # Scale of the input's values: a relative tolerance for features that did not vary in training.
        scale = max(float(np.max(np.abs(self.low[2:4]))), float(np.max(np.abs(self.high[2:4]))), 1e-12)
        out = []
        for i, feature in enumerate(FEATURES):
            reference = scale if feature != "roughness" else max(self.high[i], 1e-12)
            tol = k * self.std[i] + 0.05 * (self.high[i] - self.low[i]) + 1e-3 * reference
            value = float(features[i])
            below = value < self.low[i] - tol and feature in _TWO_SIDED_LOW
            above = value > self.high[i] + tol and feature != "min"
            if not math.isfinite(value) or below or above:
                out.append(f"{feature} {value:.4g} (training {self.mean[i]:.4g} +- {self.std[i]:.2g}, "
                           f"range [{self.low[i]:.4g}, {self.high[i]:.4g}])")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "n": self.n, "features": list(FEATURES), "mean": self.mean.tolist(),
                "std": self.std.tolist(), "low": self.low.tolist(), "high": self.high.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InputProfile:
        if list(data.get("features", [])) != list(FEATURES):
            raise ConfigError(f"InputProfile: recorded features {data.get('features')} differ from {list(FEATURES)}")
        return cls(data["name"], data["mean"], data["std"], data["low"], data["high"], data["n"])


class TrainingProfile:
    """The profiles of all inputs of a training set, on its grid.

    Parameters
    ----------
    grid : Grid
        The training grid (features are computed there).
    inputs : sequence of InputProfile
    """

    def __init__(self, grid: Grid, inputs: Sequence[InputProfile]) -> None:
        self.grid = grid
        self.inputs = {p.name: p for p in inputs}

    @classmethod
    def fit(cls, values: Mapping[str, np.ndarray], grid: Grid) -> TrainingProfile:
        """Profile ``{name: (N, *grid.shape)}`` training inputs."""
        return cls(grid, [InputProfile.fit(name, v, grid) for name, v in values.items()])

    def check(self, values: Mapping[str, np.ndarray], grid: Grid, k: float = 4.0) -> list[str]:
        """One message per sample and input whose features leave the training data.

        ``values`` are ``{name: (B, *grid.shape)}`` (the inputs as the model will see them); inputs
        the profile does not know are ignored.
        """
        messages = []
        for name, arr in values.items():
            profile = self.inputs.get(name)
            if profile is None:
                continue
            arr = np.asarray(arr, dtype=np.float64)
            if grid != self.grid:
                arr = resample(arr, grid, self.grid) if grid.ndim == self.grid.ndim else arr
            if arr.shape[1:] != self.grid.shape:
                continue  # another box or dimension: the Solver refuses those itself
            for b, features in enumerate(sample_features(arr, self.grid)):
                bad = profile.outliers(features, k)
                if bad:
                    which = f" (sample {b})" if arr.shape[0] > 1 else ""
                    messages.append(f"input {name!r}{which} is outside the training data: " + "; ".join(bad))
        return messages

    def to_json(self) -> str:
        return json.dumps({"grid": self.grid.to_dict(), "inputs": [p.to_dict() for p in self.inputs.values()]})

    @classmethod
    def from_json(cls, text: str) -> TrainingProfile:
        data = json.loads(text)
        return cls(Grid.from_dict(data["grid"]), [InputProfile.from_dict(p) for p in data["inputs"]])
