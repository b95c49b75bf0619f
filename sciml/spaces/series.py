"""Random trigonometric series and fixed (deterministic) functions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._checks import as_float_array, check_name, check_positive_int
from ..errors import ConfigError, SciMLError, ShapeError
from ..formula import compile_formula
from ..grid import Grid
from .base import _AXIS_NAMES, Space, _apply_per_axis, _number, register_space

__all__ = ["TrigSeries", "Fixed"]


@register_space
class TrigSeries(Space):
    """Random trigonometric series with algebraically decaying amplitudes.

    ``u(x) = amplitude * sum_k |k|^(-decay) c_k prod_i b_{k_i}((x_i - lo_i) / L_i)`` over multi-indices
    ``k`` of per-axis frequencies up to ``n_terms`` (``|k|`` the Euclidean norm of the frequencies,
    the all-zero constant term left out), with per-axis bases

    - ``"sine"``: ``sin(pi k t)``, ``k = 1..K``: vanishes on the boundary (Dirichlet problems);
    - ``"cosine"``: ``cos(pi k t)``, ``k = 0..K``: zero normal derivative (Neumann problems);
    - ``"fourier"``: ``1, cos(2 pi k t), sin(2 pi k t)``, ``k = 1..K``: periodic, ``u[0] = u[-1]``
      up to round-off.

    Coefficients ``c_k`` are i.i.d. standard normal (``distribution="normal"``) or uniform on
    ``[-1, 1]`` (``"uniform"``), drawn as one ``(n, J_1, ..., J_d)`` array.
    """

    kind = "trig_series"
    _BASES = ("sine", "cosine", "fourier")
    _DISTRIBUTIONS = ("normal", "uniform")

    def __init__(
        self,
        n_terms: int = 8,
        decay: float = 2.0,
        amplitude: float = 1.0,
        basis: str = "sine",
        distribution: str = "normal",
    ) -> None:
        self.n_terms = check_positive_int("TrigSeries n_terms", n_terms)
        self.decay = _number("TrigSeries decay", decay, 0.0, strict=False)
        self.amplitude = _number("TrigSeries amplitude", amplitude, 0.0)
        check_name("TrigSeries basis", basis, self._BASES)
        check_name("TrigSeries distribution", distribution, self._DISTRIBUTIONS)
        self.basis, self.distribution = basis, distribution

    def params(self) -> dict[str, Any]:
        return {"n_terms": self.n_terms, "decay": self.decay, "amplitude": self.amplitude,
                "basis": self.basis, "distribution": self.distribution}

    def _axis_basis(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-axis basis matrix ``(J, n_nodes)`` and the frequency of each row."""
        t = (x - x[0]) / (x[-1] - x[0])
        k = np.arange(1, self.n_terms + 1)
        if self.basis == "sine":
            return np.sin(np.pi * k[:, None] * t), k.astype(float)
        if self.basis == "cosine":
            k0 = np.arange(self.n_terms + 1)
            return np.cos(np.pi * k0[:, None] * t), k0.astype(float)
        rows = [np.ones_like(t)] + [f(2 * np.pi * kk * t) for kk in k for f in (np.cos, np.sin)]
        return np.stack(rows), np.concatenate([[0.0], np.repeat(k, 2).astype(float)])

    def _tables(self, grid: Grid) -> tuple[list[np.ndarray], np.ndarray]:
        pairs = [self._axis_basis(x) for x in grid.axes]
        freq2 = sum(np.meshgrid(*[f**2 for _, f in pairs], indexing="ij"))
        norm = np.sqrt(freq2)
        weights = np.where(norm > 0, self.amplitude * np.where(norm > 0, norm, 1.0) ** (-self.decay), 0.0)
        return [b for b, _ in pairs], weights

    def draw(self, n: int, grid: Grid, rng: np.random.Generator) -> np.ndarray:
        bases, weights = self._cached(grid, lambda: self._tables(grid))
        shape = (n, *weights.shape)
        coeff = rng.standard_normal(shape) if self.distribution == "normal" else rng.uniform(-1, 1, shape)
        return _apply_per_axis(coeff * weights, bases)



@register_space
class Fixed(Space):
    """One deterministic input; :meth:`sample` returns ``n`` copies of it.

    ``value`` is a number, a formula string of ``x, y, z`` (see :func:`sciml.formula.compile_formula`), an
    array of node values (of the grid's shape, or broadcastable to it), or a Python callable
    ``f(x)``, ``f(x, y)``, ``f(x, y, z)`` taking the ``'ij'`` coordinate arrays. Callables are
    not serialisable: :meth:`to_dict` raises for them, use a formula string instead.
    """

    kind = "fixed"

    def __init__(self, value: Any) -> None:
        if isinstance(value, str):
            compile_formula(value, _AXIS_NAMES)  # fail now on a bad formula; compiled again after pickling
        elif not callable(value):
            value = as_float_array("Fixed value", value)
            value = float(value) if value.ndim == 0 else value
        self.value = value

    def _function(self) -> Callable[..., Any] | None:
        if isinstance(self.value, str):
            formula = self._cached("expression", lambda: compile_formula(self.value, _AXIS_NAMES))
            return lambda *coords: formula(**dict(zip(_AXIS_NAMES, coords)))
        return self.value if callable(self.value) else None

    def params(self) -> dict[str, Any]:
        return {"value": self.value.tolist() if isinstance(self.value, np.ndarray) else self.value}

    def to_dict(self) -> dict[str, Any]:
        if callable(self.value):
            raise ConfigError("Fixed.to_dict: expected a number, formula string or array to serialise, got "
                              f"the callable {getattr(self.value, '__name__', self.value)!r}")
        return super().to_dict()

    def __repr__(self) -> str:
        v = self.value
        if isinstance(v, np.ndarray):
            return f"Fixed(value=<array {v.shape}>)"
        return f"Fixed(value={getattr(v, '__name__', v) if callable(v) else v!r})"

    def draw(self, n: int, grid: Grid, rng: np.random.Generator) -> np.ndarray:
        function = self._function()
        if function is not None:
            coords = np.meshgrid(*grid.axes, indexing="ij")
            try:
                raw = function(*coords)
            except SciMLError:
                raise
            except Exception as exc:  # a user callable: report which input failed and how
                raise ConfigError(f"Fixed: calling {self!r} on the grid coordinates failed: {exc}") from exc
            values = as_float_array("Fixed value on the grid", raw)
        else:
            values = np.asarray(self.value, dtype=np.float64)
        try:
            values = np.broadcast_to(values, grid.shape)
        except ValueError:
            raise ShapeError("Fixed value", grid.shape, values.shape) from None
        return np.broadcast_to(values, (n, *grid.shape)).copy()
