"""Fitted, serialisable normalisers for channels-first grid data ``(B, C, *spatial)``.

Two granularities, as in the neural-operator literature:

* ``mode="channel"``: one statistic per channel, over samples and grid points. Works at any
  resolution, which is what a discretisation-invariant operator needs at test time.
* ``mode="pointwise"``: one statistic per channel and grid point, over samples, as the
  ``UnitGaussianNormalizer`` of the FNO reference code. Tied to the grid it was fitted on: applying
  it elsewhere raises :class:`~sciml.errors.ShapeError`; :meth:`Normalizer.on_stride` gives the
  statistics of a subsampled grid.

Statistics are accumulated in float64 with Chan's parallel update, so fitting by streaming over a
Dataset gives the same numbers (to round-off) as fitting on one tensor. ``state_dict()`` holds only
tensors and plain values, loadable with ``torch.load(..., weights_only=True)``;
:func:`normalizer_from_state` rebuilds the right class from it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np
import torch

from .._checks import check_name, check_positive_int
from ..errors import CheckpointError, ConfigError, DTypeError, NonFiniteError, ShapeError, UnknownNameError

__all__ = [
    "Normalizer",
    "UnitGaussianNormalizer",
    "MinMaxNormalizer",
    "IdentityNormalizer",
    "NORMALIZERS",
    "make_normalizer",
    "normalizer_from_state",
]

MODES = ("channel", "pointwise")

NORMALIZERS: dict[str, type[Normalizer]] = {}
"""Registry: ``kind`` name -> class, used by :func:`make_normalizer` and :func:`normalizer_from_state`."""


def _register(cls: type[Normalizer]) -> type[Normalizer]:
    NORMALIZERS[cls.kind] = cls
    return cls


# -- streaming statistics ----------------------------------------------------------------------------
class _Moments:
    """Count, mean, sum of squared deviations, min and max, merged batch by batch (float64)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.count = 0
        self.mean = self.m2 = self.lo = self.hi = None  # type: torch.Tensor | None
        self.sample_shape: tuple[int, ...] | None = None

    def update(self, batch: torch.Tensor) -> None:
        if batch.ndim < 2:
            raise ShapeError("normaliser fit data", "(B, C, *spatial)", tuple(batch.shape))
        if self.sample_shape is None:
            self.sample_shape = tuple(batch.shape[1:])
        elif self.mode == "pointwise" and tuple(batch.shape[1:]) != self.sample_shape:
            raise ShapeError("normaliser fit batch", ("B", *self.sample_shape), tuple(batch.shape))
        elif batch.shape[1] != self.sample_shape[0] or batch.ndim != len(self.sample_shape) + 1:
            raise ShapeError(
                "normaliser fit batch", ("B", self.sample_shape[0], "*spatial"), tuple(batch.shape)
            )
        if batch.shape[0] == 0:
            return
        x = batch.detach().to("cpu", torch.float64)
        if not torch.isfinite(x).all():
            bad = int((~torch.isfinite(x)).sum())
            raise NonFiniteError(f"normaliser fit data: expected finite values, got {bad} NaN/Inf")
        # Reduce over samples (pointwise) or over samples and grid points (channel), keeping the
        # reduced axes so that the statistics broadcast against (C, *spatial).
        if self.mode == "pointwise":
            dims: tuple[int, ...] = (0,)
        else:
            dims = (0, *range(2, x.ndim))
        count = math.prod(x.shape[d] for d in dims)
        mean = x.mean(dim=dims, keepdim=True)
        m2 = ((x - mean) ** 2).sum(dim=dims, keepdim=True)
        lo, hi = x.amin(dim=dims, keepdim=True), x.amax(dim=dims, keepdim=True)
        mean, m2, lo, hi = mean[0], m2[0], lo[0], hi[0]  # drop the sample axis
        if self.count == 0:
            self.count, self.mean, self.m2, self.lo, self.hi = count, mean, m2, lo, hi
            return
        total = self.count + count
        delta = mean - self.mean
        self.mean = self.mean + delta * (count / total)
        self.m2 = self.m2 + m2 + delta**2 * (self.count * count / total)
        self.lo, self.hi = torch.minimum(self.lo, lo), torch.maximum(self.hi, hi)
        self.count = total


def _as_tensor(name: str, x: Any) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise DTypeError(f"{name}: expected a torch tensor or numpy array, got {type(x).__name__}")
    if not x.is_floating_point():
        raise DTypeError(f"{name}: expected a floating tensor, got dtype {x.dtype}")
    return x


def batches_of(data: Any, key: str, batch_size: int) -> Iterable[torch.Tensor]:
    """(B, C, *spatial) batches from a tensor/array, a map-style Dataset of dicts, or an iterable."""
    if isinstance(data, (torch.Tensor, np.ndarray)):
        data = _as_tensor("normaliser fit data", data)
        for start in range(0, max(len(data), 1), batch_size):
            yield data[start : start + batch_size]
        return
    if hasattr(data, "__len__") and hasattr(data, "__getitem__") and not isinstance(data, (list, tuple)):
        n = len(data)
        if n == 0:
            raise ShapeError("normaliser fit dataset", "at least one sample", (0,))
        for start in range(0, n, batch_size):
            idx = list(range(start, min(n, start + batch_size)))
            items = data.__getitems__(idx) if hasattr(data, "__getitems__") else [data[i] for i in idx]
            yield torch.stack([_as_tensor(f"dataset item[{key!r}]", _pick(item, key)) for item in items])
        return
    if isinstance(data, Iterable):
        for item in data:  # e.g. a DataLoader: items are already batches
            yield _as_tensor("normaliser fit batch", _pick(item, key))
        return
    raise DTypeError(
        f"normaliser fit: expected a tensor, array, Dataset or iterable, got {type(data).__name__}"
    )


def _pick(item: Any, key: str) -> Any:
    if isinstance(item, dict):
        if key not in item:
            raise UnknownNameError("batch key", key, list(item))
        return item[key]
    return item


# -- base class ------------------------------------------------------------------------------------
class Normalizer:
    """Base class: ``fit`` statistics, then ``encode``/``decode`` tensors with them."""

    kind: ClassVar[str] = ""
    _stat_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, mode: str = "channel", eps: float = 1e-5) -> None:
        check_name("normaliser mode", mode, MODES)
        if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps >= 0):
            raise ConfigError(f"{type(self).__name__}: expected eps >= 0, got {eps!r}")
        self.mode, self.eps = mode, float(eps)
        self.stats: dict[str, torch.Tensor] = {}
        self._cache: dict[tuple, tuple[torch.Tensor, ...]] = {}

    # -- fitting -------------------------------------------------------------------------------
    @property
    def fitted(self) -> bool:
        return bool(self.stats) or not self._stat_names

    def fit(self, data: Any, key: str = "x", batch_size: int = 64) -> Normalizer:
        """Fit on ``(B, C, *spatial)`` data: a tensor, an array, a Dataset of dicts or an iterable.

        ``key`` picks the entry of dict items (``"x"`` or ``"y"`` of a :class:`GridDataset`).
        Raises NonFiniteError on NaN/Inf: nothing is skipped silently.
        """
        batch_size = check_positive_int("batch_size", batch_size)
        moments = _Moments(self.mode)
        for batch in batches_of(data, key, batch_size):
            moments.update(batch)
        if moments.count == 0:
            raise ShapeError("normaliser fit data", "at least one sample", (0,))
        self.stats = {k: v.contiguous() for k, v in self._from_moments(moments).items()}
        self._cache.clear()
        return self

    def _from_moments(self, moments: _Moments) -> dict[str, torch.Tensor]:
        return {}

    # -- applying ------------------------------------------------------------------------------
    def _check(self, x: torch.Tensor) -> None:
        if not self.fitted:
            raise ConfigError(f"{type(self).__name__} is not fitted: call fit(data) first")
        if not self.stats:
            return
        ref = next(iter(self.stats.values()))
        k = ref.ndim
        tail = tuple(x.shape[x.ndim - k :]) if x.ndim >= k else tuple(x.shape)
        if self.mode == "pointwise":
            if tail != tuple(ref.shape):
                hint = ""
                if x.ndim >= k and tail[0] == ref.shape[0]:
                    hint = " (fitted on another grid: use .on_stride(stride) for a subsampled grid)"
                raise ShapeError(
                    f"{type(self).__name__} (pointwise) input{hint}", ("...", *ref.shape), tuple(x.shape)
                )
        elif x.ndim < k or tail[0] != ref.shape[0]:
            raise ShapeError(
                f"{type(self).__name__} input", ("...", ref.shape[0], *["*"] * (k - 1)), tuple(x.shape)
            )

    def _stats_like(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        key = (x.device, x.dtype)
        if key not in self._cache:
            self._cache[key] = tuple(self.stats[n].to(x.device, x.dtype) for n in self._stat_names)
        return self._cache[key]

    def encode(self, x: Any) -> Any:
        """Normalise ``x`` of shape ``(..., C, *spatial)``; numpy in gives numpy out."""
        as_numpy = isinstance(x, np.ndarray)
        t = _as_tensor(f"{type(self).__name__}.encode input", x)
        self._check(t)
        out = self._encode(t)
        return out.numpy() if as_numpy else out

    def decode(self, x: Any) -> Any:
        """Undo :meth:`encode`."""
        as_numpy = isinstance(x, np.ndarray)
        t = _as_tensor(f"{type(self).__name__}.decode input", x)
        self._check(t)
        out = self._decode(t)
        return out.numpy() if as_numpy else out

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _decode(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # -- device, resolution, serialisation -----------------------------------------------------
    def to(self, device: Any) -> Normalizer:
        """Move the statistics (kept in float64) to ``device``; returns self."""
        self.stats = {k: v.to(device) for k, v in self.stats.items()}
        self._cache.clear()
        return self

    def on_stride(self, stride: int) -> Normalizer:
        """A copy for data subsampled as ``x[..., ::stride, ::stride]`` (pointwise statistics strided)."""
        stride = check_positive_int("stride", stride)
        new = type(self).from_state(self.state_dict())
        if self.mode == "pointwise" and new.stats:
            ndim = next(iter(new.stats.values())).ndim - 1
            index = (slice(None),) + (slice(None, None, stride),) * ndim
            new.stats = {k: v[index].contiguous() for k, v in new.stats.items()}
        return new

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Plain values and tensors only (``torch.load(weights_only=True)`` loads it)."""
        state: dict[str, Any] = {"kind": self.kind, "mode": self.mode, "eps": self.eps, **self._extra_state()}
        for name in self._stat_names:
            if name in self.stats:
                state[name] = self.stats[name].detach().cpu().clone()
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Normalizer:
        """Rebuild a normaliser from :meth:`state_dict` output."""
        if not isinstance(state, dict) or state.get("kind") != cls.kind:
            got = state.get("kind") if isinstance(state, dict) else type(state).__name__
            raise CheckpointError(
                f"{cls.__name__}.from_state: expected a state of kind {cls.kind!r}, got {got!r}"
            )
        try:
            kwargs = {"mode": state["mode"], "eps": state["eps"], **cls._kwargs_from_state(state)}
        except KeyError as exc:
            raise CheckpointError(f"{cls.__name__}.from_state: the state lacks {exc}") from None
        new = cls(**kwargs)
        present = [n for n in cls._stat_names if n in state]
        if present and len(present) != len(cls._stat_names):
            raise CheckpointError(
                f"{cls.__name__}.from_state: expected statistics {list(cls._stat_names)}, got {present}"
            )
        for name in present:
            if not isinstance(state[name], torch.Tensor):
                raise CheckpointError(
                    f"{cls.__name__}.from_state: {name!r} must be a tensor, got {type(state[name]).__name__}"
                )
            new.stats[name] = state[name].to(torch.float64)
        return new

    @classmethod
    def _kwargs_from_state(cls, state: dict[str, Any]) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        shape = tuple(next(iter(self.stats.values())).shape) if self.stats else None
        return f"{type(self).__name__}(mode={self.mode!r}, fitted={self.fitted}, stats_shape={shape})"


@_register
class UnitGaussianNormalizer(Normalizer):
    """``(x - mean) / (std + eps)``; the population standard deviation (ddof = 0).

    Parameters
    ----------
    mode : {"channel", "pointwise"}
        Statistics per channel, or per channel and grid point (FNO's choice).
    eps : float
        Added to the standard deviation so that constant channels or points (e.g. boundary values
        fixed by a Dirichlet condition) do not divide by zero.
    """

    kind = "unit_gaussian"
    _stat_names = ("mean", "std")

    def _from_moments(self, moments: _Moments) -> dict[str, torch.Tensor]:
        return {"mean": moments.mean, "std": torch.sqrt(moments.m2 / moments.count)}

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats_like(x)
        return (x - mean) / (std + self.eps)

    def _decode(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats_like(x)
        return x * (std + self.eps) + mean


@_register
class MinMaxNormalizer(Normalizer):
    """Affine map of ``[min, max]`` (fitted) onto ``[low, high]`` (default ``[0, 1]``)."""

    kind = "min_max"
    _stat_names = ("min", "max")

    def __init__(self, mode: str = "channel", eps: float = 1e-5, low: float = 0.0, high: float = 1.0) -> None:
        super().__init__(mode, eps)
        if not (math.isfinite(low) and math.isfinite(high) and high > low):
            raise ConfigError(f"MinMaxNormalizer: expected finite low < high, got low={low!r}, high={high!r}")
        self.low, self.high = float(low), float(high)

    def _from_moments(self, moments: _Moments) -> dict[str, torch.Tensor]:
        return {"min": moments.lo, "max": moments.hi}

    def _scale(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lo, hi = self._stats_like(x)
        return lo, (self.high - self.low) / (hi - lo + self.eps)

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        lo, scale = self._scale(x)
        return (x - lo) * scale + self.low

    def _decode(self, x: torch.Tensor) -> torch.Tensor:
        lo, scale = self._scale(x)
        return (x - self.low) / scale + lo

    def _extra_state(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high}

    @classmethod
    def _kwargs_from_state(cls, state: dict[str, Any]) -> dict[str, Any]:
        return {"low": state["low"], "high": state["high"]}


@_register
class IdentityNormalizer(Normalizer):
    """No change; ``fit`` still checks the data are finite so a pipeline behaves the same."""

    kind = "identity"

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def _decode(self, x: torch.Tensor) -> torch.Tensor:
        return x


def make_normalizer(kind: str, **kwargs: Any) -> Normalizer:
    """An unfitted normaliser by registry name: ``make_normalizer("unit_gaussian", mode="pointwise")``."""
    check_name("normaliser", kind, NORMALIZERS)
    return NORMALIZERS[kind](**kwargs)


def normalizer_from_state(state: dict[str, Any]) -> Normalizer:
    """Rebuild any registered normaliser from its ``state_dict()``."""
    if not isinstance(state, dict) or "kind" not in state:
        raise CheckpointError(
            f"normalizer_from_state: expected a dict with a 'kind', got {type(state).__name__}"
        )
    check_name("normaliser", state["kind"], NORMALIZERS)
    return NORMALIZERS[state["kind"]].from_state(state)
