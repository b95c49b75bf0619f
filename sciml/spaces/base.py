"""The :class:`Space` contract, the space registry and the helpers the built-in spaces share.

See :mod:`sciml.spaces` for the list of spaces.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import scipy.linalg

from .._checks import check_name, check_positive_int
from ..errors import ConfigError, NotSPDError, ShapeError
from ..grid import Grid

_AXIS_NAMES = ("x", "y", "z")

__all__ = ["Space", "register_space", "space_from_dict"]

_REGISTRY: dict[str, type[Space]] = {}
_CACHE_SIZE = 8  # grids remembered per space; a run rarely uses more than train + test resolution


def register_space(cls: type[Space]) -> type[Space]:
    """Class decorator adding a :class:`Space` subclass to the registry under ``cls.kind``."""
    if not (isinstance(cls, type) and issubclass(cls, Space)) or not cls.kind:
        raise ConfigError(f"register_space: expected a Space subclass with a 'kind', got {cls!r}")
    missing = [public for public, old in (("draw", "_sample"), ("params", "_params"))
               if not (_overrides(cls, public) or _overrides(cls, old))]
    if missing:
        raise ConfigError(f"register_space: {cls.__name__} must implement {' and '.join(missing)} "
                          "(see the Space docstring)")
    _REGISTRY[cls.kind] = cls
    return cls


def space_from_dict(data: dict[str, Any]) -> Space:
    """Rebuild a space from :meth:`Space.to_dict` output."""
    if not isinstance(data, dict) or "kind" not in data:
        raise ConfigError(f"space_from_dict: expected a dict with a 'kind' key, got {data!r}")
    kwargs = dict(data)
    kind = kwargs.pop("kind")
    check_name("space kind", kind, _REGISTRY)
    try:
        return _REGISTRY[kind](**kwargs)
    except TypeError as exc:  # unexpected or missing keyword
        raise ConfigError(f"space_from_dict: bad arguments for kind {kind!r}: {exc}") from None


def _as_rng(seed: Any) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed: expected a non-negative int or a numpy Generator, got {seed!r}")
    return np.random.default_rng(int(seed))


def _number(name: str, value: Any, minimum: float | None = None, strict: bool = True) -> float:
    """``value`` as a finite float, checked ``> minimum`` (``>=`` if not ``strict``) when one is given."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{name}: expected a real number, got {value!r}")
    value = float(value)
    low_ok = minimum is None or value > minimum or (not strict and value == minimum)
    if not math.isfinite(value) or not low_ok:
        bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum:g}"
        raise ConfigError(f"{name}: expected a finite number{bound}, got {value!r}")
    return value


def _apply_per_axis(values: np.ndarray, mats: list[np.ndarray]) -> np.ndarray:
    """Contract axis ``1 + a`` of ``values`` with ``mats[a]`` (shape ``(in_a, out_a)``), for every axis.

    Each contraction consumes the leading mode axis and appends the output axis, so after ``d`` steps
    the axes are back in order: ``(n, in_1, ..., in_d) -> (n, out_1, ..., out_d)``.
    """
    for mat in mats:
        values = np.tensordot(values, mat, axes=([1], [0]))
    return values


def _psd_factor(kernel: np.ndarray, what: str) -> np.ndarray:
    """A matrix ``F`` with ``F @ F.T`` equal to ``kernel`` up to round-off.

    Smooth kernels on fine node sets are numerically singular, so a plain Cholesky fails. We add the
    smallest jitter (relative to the diagonal, 1e-12 up to 1e-8) that lets it succeed: the Cholesky
    factor is unique, hence reproducible across platforms, and the added white noise is far below any
    discretisation error. Only if that fails we fall back to a symmetric eigendecomposition with the
    round-off negative eigenvalues clipped to zero.
    """
    scale = float(np.max(np.diag(kernel)))
    eye = np.eye(kernel.shape[0])
    for rel in (1e-12, 1e-10, 1e-8):
        try:
            return scipy.linalg.cholesky(kernel + rel * scale * eye, lower=True)
        except np.linalg.LinAlgError:
            continue
    evals, evecs = np.linalg.eigh(kernel)
    if evals.min() < -1e-6 * scale:
        raise NotSPDError(f"{what}: expected a positive semi-definite kernel, "
                          f"got eigenvalue {evals.min():.2e} for diagonal {scale:.2e}")
    return evecs * np.sqrt(np.clip(evals, 0.0, None))


class Space:
    """A distribution over functions on a grid.

    **Writing your own space.** Subclass, set ``kind`` (the registry name) and ``ndims`` (the grid
    dimensions it supports), implement the two public methods and decorate the class with
    :func:`register_space`::

        @register_space
        class Bump(Space):
            kind = "bump"

            def __init__(self, width=0.1):
                self.width = width

            def params(self):                  # JSON-able constructor kwargs
                return {"width": self.width}

            def draw(self, n, grid, rng):      # (n, *grid.shape) float64
                centres = rng.uniform(0, 1, (n, 1, 1))   # one row per sample
                x, y = np.meshgrid(*grid.axes, indexing="ij")
                return np.exp(-((x - centres) ** 2 + (y - 0.5) ** 2) / self.width**2)

    ``draw(n, grid, rng)`` gets checked arguments (``n`` a positive int, ``grid`` a Grid of one of
    ``ndims``, ``rng`` a ``numpy.random.Generator``) and returns ``n`` functions on the grid's nodes.
    Keep it *prefix stable*: sample ``i`` must depend only on the seed and ``i`` (draw the noise as one
    array with the samples along its first axis, as above). :meth:`sample` checks what comes back
    (shape and finite values). ``params()`` returns the keyword arguments that rebuild the space
    (numbers, strings, lists, nested ``space.to_dict()`` dicts); :meth:`to_dict` and
    :func:`space_from_dict` use it, so a registered space serialises like a built-in one.

    Spaces compose: ``space + other``, ``space * 2.0``, ``space * other``, ``-space``, ``space - 1`` give
    :class:`~sciml.spaces.compose.Sum` and :class:`~sciml.spaces.compose.Product` spaces, and
    :class:`~sciml.spaces.compose.Transformed` applies a function to the values (``"exp(u)"``).

    Subclasses written against the earlier private names ``_sample(n, grid, rng)`` and ``_params()``
    keep working: ``draw`` and ``params`` fall back to them.
    """

    kind: ClassVar[str] = ""
    ndims: ClassVar[tuple[int, ...]] = (1, 2, 3)

    def sample(self, n: int, grid: Grid, seed: int | np.random.Generator) -> np.ndarray:
        """Draw ``n`` functions on the nodes of ``grid``.

        Parameters
        ----------
        n : int
            Number of samples (positive).
        grid : Grid
            Node grid to evaluate on.
        seed : int or numpy.random.Generator
            An int always gives the same samples; a Generator is advanced.

        Returns
        -------
        numpy.ndarray
            float64 array of shape ``(n, *grid.shape)``.
        """
        n = check_positive_int("n", n)
        self._check_grid(grid)
        out = self.draw(n, grid, _as_rng(seed))
        try:
            out = np.asarray(out, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{self!r}.draw: expected an array of numbers, got {type(out).__name__} "
                              f"({exc})") from None
        if out.shape != (n, *grid.shape):
            raise ShapeError(f"{type(self).__name__}.draw(n={n}, grid) result", (n, *grid.shape), out.shape)
        if not np.isfinite(out).all():
            bad = int(np.size(out) - np.isfinite(out).sum())
            raise ConfigError(f"{self!r}: drew {bad} non-finite values of {out.size} (NaN or inf); "
                              "check the space's parameters or transformation")
        return out

    def draw(self, n: int, grid: Grid, rng: np.random.Generator) -> np.ndarray:
        """``n`` functions on ``grid``'s nodes, ``(n, *grid.shape)`` float64: what a subclass implements.

        Called by :meth:`sample` with checked arguments; see the class docstring for the contract.
        """
        if _overrides(type(self), "_sample"):  # a subclass written against the old private name
            return self._sample(n, grid, rng)
        raise NotImplementedError(f"{type(self).__name__}: a Space implements draw(n, grid, rng)")

    def params(self) -> dict[str, Any]:
        """The JSON-able keyword arguments that rebuild this space: what a subclass implements."""
        if _overrides(type(self), "_params"):
            return self._params()
        raise NotImplementedError(f"{type(self).__name__}: a Space implements params()")

    # The earlier private names, kept so that old subclasses and callers work.
    def _sample(self, n: int, grid: Grid, rng: np.random.Generator) -> np.ndarray:
        return self.draw(n, grid, rng)

    def _params(self) -> dict[str, Any]:
        return self.params()

    def _check_grid(self, grid: Any) -> None:
        if not isinstance(grid, Grid):
            raise ConfigError(f"{type(self).__name__}.sample: expected a Grid, got {type(grid).__name__}")
        if grid.ndim not in self.ndims:
            raise ConfigError(
                f"{type(self).__name__}: expected a grid of dimension {self.ndims}, got {grid.ndim}-D"
            )

    def _cached(self, key: Any, build: Callable[[], Any]) -> Any:
        cache = self.__dict__.setdefault("_cache", {})
        if key not in cache:
            if len(cache) >= _CACHE_SIZE:
                cache.pop(next(iter(cache)))
            cache[key] = build()
        return cache[key]

    def __getstate__(self) -> dict[str, Any]:  # caches can be large and are cheap to rebuild
        return {k: v for k, v in self.__dict__.items() if k != "_cache"}

    def to_dict(self) -> dict[str, Any]:
        """``{"kind": ..., **constructor kwargs}``; JSON-serialisable."""
        return {"kind": self.kind, **self.params()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"

    # -- composition: resolved through the registry (sciml.spaces.compose registers these kinds) ----
    def __add__(self, other: Any) -> Space:
        return _compose("sum", self, other)

    def __radd__(self, other: Any) -> Space:
        return _compose("sum", other, self)

    def __sub__(self, other: Any) -> Space:
        return _compose("sum", self, _negate(other))

    def __rsub__(self, other: Any) -> Space:
        return _compose("sum", other, _negate(self))

    def __mul__(self, other: Any) -> Space:
        return _compose("product", self, other)

    def __rmul__(self, other: Any) -> Space:
        return _compose("product", other, self)

    def __truediv__(self, other: Any) -> Space:
        if isinstance(other, Space) or not _is_number(other) or float(other) == 0:
            return NotImplemented
        return _compose("product", self, 1.0 / float(other))

    def __neg__(self) -> Space:
        return _negate(self)


def _overrides(cls: type, name: str) -> bool:
    """Whether ``cls`` defines ``name`` below :class:`Space`."""
    return getattr(cls, name) is not getattr(Space, name)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def _negate(x: Any) -> Any:
    return -float(x) if _is_number(x) else _compose("product", x, -1.0)


def _compose(kind: str, left: Any, right: Any) -> Any:
    """``Sum``/``Product`` of two operands, flattening one of the same kind on either side."""
    if not all(isinstance(x, Space) or _is_number(x) for x in (left, right)):
        return NotImplemented
    cls = _REGISTRY[kind]
    parts: list[Any] = []
    for x in (left, right):
        parts += list(x.parts) if type(x) is cls else [x]  # type: ignore[attr-defined]
    spaces = [p for p in parts if isinstance(p, Space)]
    numbers = [float(p) for p in parts if not isinstance(p, Space)]
    constant = sum(numbers) if kind == "sum" else math.prod(numbers)
    identity = 0.0 if kind == "sum" else 1.0
    parts = spaces + ([constant] if numbers and constant != identity else [])
    return parts[0] if len(parts) == 1 else cls(parts)
