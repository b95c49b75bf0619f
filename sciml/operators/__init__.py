"""Grid operators, the family trained on gridded input/output fields: FNO, and every network that
maps ``(B, C_in, *grid)`` to ``(B, C_out, *grid)`` (MgNO and the Galerkin Transformer join here).

* :mod:`~sciml.operators.task`: :class:`OperatorTask` (normalisers, losses, per-sample errors), the
  Task the shared Trainer trains;
* :mod:`~sciml.operators.solver`: :class:`Solver`, a trained run answering new inputs on any grid of
  the training box.

Networks are pure modules in :mod:`sciml.models`; the end-to-end workflow is
:func:`sciml.workflows.train_operator`.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {"OperatorTask": "sciml.operators.task", "Solver": "sciml.operators.solver"}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(globals(), _LAZY, __all__)
