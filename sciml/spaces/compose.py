"""Spaces made from other spaces: pointwise transformations, sums and products.

>>> from sciml.spaces import GRF, LogNormal, Tanh, Thresholded, Transformed, TrigSeries
>>> k = LogNormal(GRF(alpha=2.5, tau=4.0))                 # exp(GRF): a positive coefficient
>>> k2 = Transformed(GRF(), "1 + u**2")                    # any formula of the value u (and x, y, z)
>>> c = Tanh(GRF(), a=6.0, b=4.0)                          # 6 + 4 tanh(GRF), in (2, 10)
>>> darcy_a = Thresholded(GRF(), hi=12.0, lo=3.0)          # 12 where GRF >= 0, 3 elsewhere
>>> f = GRF() + 2.0 * TrigSeries() - 1.0                   # Sum([...]) and Product([...]) by operators

Every composed space serialises with its parts (``to_dict()`` nests their dicts, and
:func:`~sciml.spaces.space_from_dict` rebuilds the whole tree) and keeps the seeding contract:
a transformation applies a function to the values of one draw of its space; a sum or product gives
each of its random parts its own child generator (``rng.spawn``), so sample ``i`` still depends only
on the seed and ``i`` and the parts are independent.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError, SciMLError
from ..formula import compile_formula
from ..grid import Grid
from .base import _AXIS_NAMES, Space, _is_number, _number, register_space, space_from_dict

__all__ = ["Transformed", "LogNormal", "Tanh", "Thresholded", "Sum", "Product"]

_VALUE_NAMES = ("u", *_AXIS_NAMES)


def _as_space(what: str, value: Any) -> Space:
    """A Space from a Space or its ``to_dict()`` (how nested spaces come back from JSON)."""
    if isinstance(value, Space):
        return value
    if isinstance(value, dict):
        return space_from_dict(value)
    raise ConfigError(f"{what}: expected a Space (or its to_dict()), got {type(value).__name__}")


class _Pointwise(Space):
    """A function applied to the values of one draw of ``space`` (shares its grid dimensions)."""

    def __init__(self, space: Any) -> None:
        self.space = _as_space(f"{type(self).__name__} space", space)
        self.ndims = self.space.ndims  # type: ignore[misc]  # per instance: whatever the inner space takes

    def _check_grid(self, grid: Any) -> None:
        self.space._check_grid(grid)

    def _apply(self, u: np.ndarray, grid: Grid) -> Any:
        raise NotImplementedError

    def draw(self, n: int, grid: Grid, rng: np.random.Generator) -> np.ndarray:
        u = self.space.sample(n, grid, rng)
        with np.errstate(all="ignore"):  # non-finite results are reported by sample()
            out = self._apply(u, grid)
        return np.broadcast_to(np.asarray(out, dtype=np.float64), u.shape).copy()


@register_space
class Transformed(_Pointwise):
    """``fn`` applied pointwise to the samples of ``space``.

    Parameters
    ----------
    space : Space
    fn : str or callable
        A formula of the value ``u`` and the coordinates ``x, y, z`` (``"exp(u)"``, ``"1 + u**2"``,
        ``"u * x"``; see :func:`sciml.formula.compile_formula`), or a numpy function ``fn(u)`` of the
        ``(n, *grid.shape)`` values returning the same shape. Formulas serialise; callables do not
        (:meth:`to_dict` raises for them, as for :class:`~sciml.spaces.Fixed`).
    """

    kind = "transformed"

    def __init__(self, space: Any, fn: str | Callable[[np.ndarray], Any]) -> None:
        super().__init__(space)
        if isinstance(fn, str):
            compile_formula(fn, _VALUE_NAMES)  # fail now on a bad formula; compiled again after pickling
        elif not callable(fn):
            raise ConfigError(f"Transformed fn: expected a formula string of u (e.g. 'exp(u)') or a callable "
                              f"f(u), got {type(fn).__name__}")
        self.fn = fn

    def params(self) -> dict[str, Any]:
        return {"space": self.space.to_dict(), "fn": self.fn}

    def to_dict(self) -> dict[str, Any]:
        if callable(self.fn):
            raise ConfigError("Transformed.to_dict: a callable fn cannot be serialised; write it as a formula "
                              f"string of u instead (got {getattr(self.fn, '__name__', self.fn)!r})")
        return super().to_dict()

    def _apply(self, u: np.ndarray, grid: Grid) -> Any:
        if isinstance(self.fn, str):
            formula = self._cached("formula", lambda: compile_formula(self.fn, _VALUE_NAMES))
            coords = {k: v[None] for k, v in grid.coord_arrays().items()}
            return formula(u=u, **coords)
        try:
            return self.fn(u)
        except SciMLError:
            raise
        except Exception as exc:  # a user callable: say which one failed and how
            raise ConfigError(f"Transformed: calling {getattr(self.fn, '__name__', self.fn)!r} on the values of "
                              f"{self.space!r} failed: {exc}") from exc

    def __repr__(self) -> str:
        fn = self.fn if isinstance(self.fn, str) else getattr(self.fn, "__name__", self.fn)
        return f"{type(self).__name__}({self.space!r}, {fn!r})"


@register_space
class LogNormal(_Pointwise):
    """``exp(u)`` for ``u`` drawn from ``space``: log-normal when ``space`` is Gaussian (a positive
    coefficient such as a permeability or a conductivity)."""

    kind = "log_normal"

    def params(self) -> dict[str, Any]:
        return {"space": self.space.to_dict()}

    def _apply(self, u: np.ndarray, grid: Grid) -> Any:
        return np.exp(u)

    def __repr__(self) -> str:
        return f"LogNormal({self.space!r})"


@register_space
class Tanh(_Pointwise):
    """``a + b * tanh(u)`` for ``u`` drawn from ``space``: a smooth field between ``a - |b|`` and
    ``a + |b|`` (a bounded coefficient with smooth transitions)."""

    kind = "tanh"

    def __init__(self, space: Any, a: float = 0.0, b: float = 1.0) -> None:
        super().__init__(space)
        self.a = _number("Tanh a", a)
        self.b = _number("Tanh b", b)

    def params(self) -> dict[str, Any]:
        return {"space": self.space.to_dict(), "a": self.a, "b": self.b}

    def _apply(self, u: np.ndarray, grid: Grid) -> Any:
        return self.a + self.b * np.tanh(u)

    def __repr__(self) -> str:
        return f"Tanh({self.space!r}, a={self.a!r}, b={self.b!r})"


@register_space
class Thresholded(_Pointwise):
    """``hi`` where a sample of ``space`` is ``>= threshold``, ``lo`` elsewhere (two-phase media, as
    the Darcy benchmark's coefficient: ``Thresholded(GRF(), hi=12.0, lo=3.0)``)."""

    kind = "thresholded"

    def __init__(self, space: Any, hi: float, lo: float, threshold: float = 0.0) -> None:
        super().__init__(space)
        self.hi = _number("Thresholded hi", hi)
        self.lo = _number("Thresholded lo", lo)
        self.threshold = _number("Thresholded threshold", threshold)

    def params(self) -> dict[str, Any]:
        return {"space": self.space.to_dict(), "hi": self.hi, "lo": self.lo, "threshold": self.threshold}

    def _apply(self, u: np.ndarray, grid: Grid) -> Any:
        return np.where(u >= self.threshold, self.hi, self.lo)

    def __repr__(self) -> str:
        return f"Thresholded({self.space!r}, hi={self.hi!r}, lo={self.lo!r}, threshold={self.threshold!r})"


class _Combination(Space):
    """Spaces and numbers combined pointwise; each random part draws from its own child generator."""

    _what = ""

    def __init__(self, parts: Sequence[Any]) -> None:
        name = type(self).__name__
        if isinstance(parts, (str, bytes, dict, Space)) or not isinstance(parts, Sequence):
            raise ConfigError(f"{name}: expected a list of spaces and numbers, got {type(parts).__name__}")
        checked: list[Any] = []
        for i, part in enumerate(parts):
            if _is_number(part):
                checked.append(_number(f"{name} {self._what}[{i}]", part))
            else:
                checked.append(_as_space(f"{name} {self._what}[{i}]", part))
        spaces = [p for p in checked if isinstance(p, Space)]
        if not spaces:
            raise ConfigError(f"{name}: expected at least one space among the {self._what} (for a constant use "
                              f"Fixed), got {list(parts)!r}")
        ndims = tuple(d for d in (1, 2, 3) if all(d in s.ndims for s in spaces))
        if not ndims:
            raise ConfigError(f"{name}: its spaces share no grid dimension ({[s.ndims for s in spaces]})")
        self.parts = tuple(checked)
        self.ndims = ndims  # type: ignore[misc]

    def _check_grid(self, grid: Any) -> None:
        super()._check_grid(grid)
        for part in self.parts:
            if isinstance(part, Space):
                part._check_grid(grid)

    def params(self) -> dict[str, Any]:
        return {self._what: [p.to_dict() if isinstance(p, Space) else p for p in self.parts]}

    def _combine(self, values: list[np.ndarray | float]) -> np.ndarray:
        raise NotImplementedError

    def draw(self, n: int, grid: Grid, rng: np.random.Generator) -> np.ndarray:
        spaces = [p for p in self.parts if isinstance(p, Space)]
        children = iter(rng.spawn(len(spaces)))
        values = [p.sample(n, grid, next(children)) if isinstance(p, Space) else p for p in self.parts]
        with np.errstate(all="ignore"):
            return np.asarray(self._combine(values), dtype=np.float64)

    def __repr__(self) -> str:
        return f"{type(self).__name__}([{', '.join(repr(p) for p in self.parts)}])"


@register_space
class Sum(_Combination):
    """``terms[0] + terms[1] + ...``: spaces (independent draws) and numbers. ``space + other``,
    ``space - 1.0`` and ``-space`` build one."""

    kind = "sum"
    _what = "terms"

    def __init__(self, terms: Sequence[Any]) -> None:
        super().__init__(terms)

    def _combine(self, values: list[np.ndarray | float]) -> np.ndarray:
        return sum(values[1:], values[0])  # type: ignore[return-value]


@register_space
class Product(_Combination):
    """``factors[0] * factors[1] * ...``: spaces (independent draws) and numbers. ``space * 2.0``,
    ``space * other`` and ``space / 2`` build one."""

    kind = "product"
    _what = "factors"

    def __init__(self, factors: Sequence[Any]) -> None:
        super().__init__(factors)

    def _combine(self, values: list[np.ndarray | float]) -> np.ndarray:
        return math.prod(values[1:], start=values[0])  # type: ignore[return-value]
