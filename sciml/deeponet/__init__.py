"""DeepONet, the point-operator family: training task, data layouts and the point solver.

* :mod:`~sciml.deeponet.data`: :class:`Sensors` (where the branch reads each input) and
  :func:`make_deeponet_data` (exact labels in the aligned, unaligned or node layouts);
* :mod:`~sciml.deeponet.task`: :class:`DeepONetTask`, the Task the shared Trainer trains;
* :mod:`~sciml.deeponet.solver`: :class:`PointSolver`, a trained run answering at any query point.

The network itself is a pure module in :mod:`sciml.models.deeponet` (registry name ``deeponet``);
the end-to-end workflow is :func:`sciml.workflows.train_deeponet`.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "Sensors": "sciml.deeponet.data",
    "DeepONetData": "sciml.deeponet.data",
    "make_deeponet_data": "sciml.deeponet.data",
    "DeepONetTask": "sciml.deeponet.task",
    "PointSolver": "sciml.deeponet.solver",
    "PointQuery": "sciml.deeponet.solver",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(globals(), _LAZY, __all__)
