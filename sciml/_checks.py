"""Small input checks shared by every public entry point.

They turn the usual late, cryptic failures (a broadcast that silently succeeds, a NaN that shows up
a hundred steps later) into an immediate :class:`~sciml.errors.SciMLError` naming the argument,
what was expected and what came.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .errors import DTypeError, NonFiniteError, ShapeError, UnknownNameError

__all__ = ["as_float_array", "check_finite", "check_shape", "check_name", "check_positive_int"]


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def check_finite(name: str, x: Any) -> None:
    """Raise NonFiniteError if array-like ``x`` holds NaN or Inf."""
    if _is_torch(x):
        import torch

        if x.is_floating_point() or x.is_complex():
            bad = ~torch.isfinite(x)
            if bool(bad.any()):
                raise NonFiniteError(
                    f"{name}: expected finite values, got {int(bad.sum())} NaN/Inf of {x.numel()}"
                )
        return
    arr = np.asarray(x)
    if arr.dtype.kind in "fc":
        bad = ~np.isfinite(arr)
        if bad.any():
            raise NonFiniteError(f"{name}: expected finite values, got {int(bad.sum())} NaN/Inf of {arr.size}")


def as_float_array(name: str, x: Any, dtype: Any = np.float64, finite: bool = True) -> np.ndarray:
    """Convert ``x`` (numpy, torch, list, scalar) to a numpy float array, checking dtype and finiteness."""
    if _is_torch(x):
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise DTypeError(f"{name}: expected an array of numbers, got {type(x).__name__} ({exc})") from None
    if arr.dtype.kind not in "biuf":
        raise DTypeError(f"{name}: expected a real numeric array, got dtype {arr.dtype}")
    arr = arr.astype(dtype, copy=False)
    if finite:
        check_finite(name, arr)
    return arr


def check_shape(name: str, x: Any, expected: Sequence[int | None]) -> None:
    """Check ``x.shape`` against ``expected``; ``None`` entries match any size."""
    shape = tuple(x.shape)
    if len(shape) != len(expected) or any(e is not None and e != s for e, s in zip(expected, shape)):
        shown = tuple("*" if e is None else e for e in expected)
        raise ShapeError(name, shown, shape)


def check_name(kind: str, name: Any, known: Iterable[str]) -> None:
    """Raise UnknownNameError unless ``name`` is in ``known``."""
    known = list(known)
    if name not in known:
        raise UnknownNameError(kind, name, known)


def check_positive_int(name: str, value: Any) -> int:
    """Return ``value`` as int if it is a positive integer, else raise."""
    from .errors import ConfigError

    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ConfigError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def check_int_at_least(name: str, value: Any, low: int) -> int:
    """``value`` if it is an int (not a bool) of at least ``low``, else a ConfigError saying so."""
    from .errors import ConfigError

    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name}: expected an int >= {low}, got {value!r}")
    return value
