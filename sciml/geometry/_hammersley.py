"""The Hammersley set, and Hammersley points on any domain (a whole set, grown and evenly thinned).

DeepXDE's default training distribution. Unlike Sobol or Halton points the Hammersley set is a *set*,
not a sequence: its first coordinate is ``(i + 1/2) / N``, so a prefix covers only part of the box and
rejection sampling cannot top it up. On a domain that is not a box, :func:`hammersley_in` therefore
draws the whole set of ``N`` candidates in the bounding box (or on the boundary's parameter
interval), grows ``N`` until at least ``n`` candidates are accepted, and thins the accepted ones
evenly (by index) to exactly ``n``: the points keep the set's even spread over the domain.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .._checks import check_positive_int
from ..errors import ConfigError

__all__ = ["hammersley", "hammersley_in", "whole_set_in"]

_PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97)
_MAX_CANDIDATES = 4_000_000


def hammersley(n: int, d: int) -> np.ndarray:
    """The ``n``-point Hammersley set in ``[0, 1)^d``: ``(i + 1/2) / n``, then radical inverses of ``i``.

    Deterministic; coordinate ``k >= 1`` is the van der Corput sequence in the ``k``-th prime base.
    """
    n = check_positive_int("n", n)
    if not 1 <= d <= len(_PRIMES) + 1:
        raise ConfigError(f"hammersley: expected a dimension in [1, {len(_PRIMES) + 1}], got {d}")
    i = np.arange(n)
    out = np.empty((n, d), dtype=np.float64)
    out[:, 0] = (i + 0.5) / n
    for k in range(1, d):
        base, value, scale, rest = _PRIMES[k - 1], np.zeros(n), 1.0, i.copy()
        while rest.any():
            scale /= base
            value += (rest % base) * scale
            rest //= base
        out[:, k] = value
    return out


def hammersley_in(
    n: int, d: int, to_space: Callable[[np.ndarray], np.ndarray], accept: Callable[[np.ndarray], np.ndarray],
    where: str = "domain",
) -> np.ndarray:
    """``n`` accepted points of the smallest Hammersley set with at least ``n`` accepted, evenly thinned.

    Parameters
    ----------
    n, d : int
        Points wanted; dimension of the unit cube the set is drawn in.
    to_space : callable
        Maps ``(N, d)`` points of the unit cube to candidates (the bounding box, the boundary pieces).
    accept : callable
        Boolean ``(N,)``: which candidates belong to the domain.
    where : str
        Named in the error when nothing is accepted.
    """
    return whole_set_in(n, lambda total: to_space(hammersley(total, d)), accept, where)


def whole_set_in(
    n: int, draw: Callable[[int], np.ndarray], accept: Callable[[np.ndarray], np.ndarray], where: str = "domain",
) -> np.ndarray:
    """``n`` accepted points of the smallest deterministic set ``draw(N)`` with at least ``n`` accepted.

    ``draw(N)`` returns the whole ``N``-point set (a Hammersley set mapped somewhere); ``N`` grows until
    ``accept`` keeps ``n`` of them, and the kept points are thinned evenly by index. A prefix would not
    do: the set is ordered along its first coordinate, so a prefix covers only part of the space.
    """
    n = check_positive_int("n", n)
    total = n
    while True:
        x = draw(total)
        ok = np.asarray(accept(x), dtype=bool)
        count = int(ok.sum())
        if count >= n:
            break
        if total >= _MAX_CANDIDATES:
            raise ConfigError(f"Hammersley points in the {where}: only {count} of {total} candidates accepted; "
                              f"the {where} looks empty or has zero measure")
        # Jump to the size the acceptance rate asks for; +1 so that the loop always advances.
        rate = max(count, 1) / total
        total = min(max(total + 1, math.ceil(n / rate)), _MAX_CANDIDATES)
    kept = x[ok]
    return np.ascontiguousarray(kept[np.round(np.linspace(0, count - 1, n)).astype(np.int64)], dtype=np.float64)
