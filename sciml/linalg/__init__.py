"""Learned and classical linear solvers (home of DCDM, the deep conjugate-direction method).

One entry point, :func:`solve` ``(A, b, method=...)``, configured by small method objects:

* :class:`CG`, :class:`JacobiPCG`, :class:`AMGPCG` (pyamg smoothed aggregation as the preconditioner
  of CG) and :class:`Direct` (SuperLU), in :mod:`~sciml.linalg.solve`, with the Krylov iterations in
  :mod:`~sciml.linalg.krylov`;
* every solve returns a :class:`Solution` (:mod:`~sciml.linalg.solution`): value, convergence and its
  reason, the true-residual history, set-up and solve seconds;
* ``method.prepare(A, mask)`` sets up once for many right-hand sides; :func:`to_grid` and
  :func:`from_grid` move the unknowns between vector and grid layout.

The method protocol (what DCDM implements) is written down in :mod:`sciml.linalg.solve`.
"""

from __future__ import annotations

# Imported eagerly, not through lazy_exports: the function ``solve`` shares its name with the module
# ``solve.py``, and the first ``import sciml.linalg.solve`` (dcdm.py does one) would otherwise bind the
# package attribute ``solve`` to the module for good. The cost is numpy and scipy.sparse; ``import sciml``
# does not import this package, and pyamg / SuperLU are imported only inside the methods' set-up.
from .._lazy import lazy_exports
from .solution import Solution
from .solve import AMGPCG, CG, Direct, JacobiPCG, LinearMethod, Prepared, from_grid, solve, to_grid

# DCDM needs torch: it is imported on first use (``from sciml.linalg import DCDM``), not with the package.
_LAZY = {name: "sciml.linalg.dcdm" for name in ("DCDM", "DCDMTask", "DCDMLoss", "dcdm_dataset", "save_weights")}

__all__ = ["solve", "Solution", "LinearMethod", "Prepared", "CG", "JacobiPCG", "AMGPCG", "Direct",
           "to_grid", "from_grid", *_LAZY]

__getattr__, __dir__ = lazy_exports(globals(), _LAZY, __all__)
