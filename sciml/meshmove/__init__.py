"""Mesh movement: monitor functions of a solution, mesh-quality metrics, the classical and the
data-free neural (DMM) Monge-Ampere movers behind one entry point ``move(field, mover)``.

* :mod:`~sciml.meshmove.monitor`: ``GradientMonitor`` and ``HessianMonitor`` (``1 + |grad u| / (beta
  mean|grad u|)`` and the Hessian analogue), on grids and at points, periodic or not;
* :mod:`~sciml.meshmove.quality`: ``mesh_quality(mesh, f, monitor)``: tangled cells, equidistribution
  (cv), volume ratio, P1 interpolation error against the uniform mesh of the same nodes;
* :mod:`~sciml.meshmove.move`: ``move(u, mover, monitor=None, n=None) -> Mesh`` with the mover
  ``MongeAmpere(...)`` (the classical solver
  :func:`sciml.numerics.monge_ampere.solve_monge_ampere` and its options) or a trained ``DMM``;
  ``interpolate_to_mesh(u, mesh)``, bilinear;
* :mod:`~sciml.meshmove.dmm`: the data-free mesh mover: ``DMMNet`` (:mod:`sciml.models.dmm_net`,
  registry name ``"dmm_net"``), ``DMMTask`` (trained by the shared Trainer on the Monge-Ampere residual, no meshes as data) and
  ``DMM`` (``DMM.load(run)``, ``DMM.pretrained()``, ``dmm(fields, n) -> (B, n, n, 2)`` batched);
* :mod:`~sciml.meshmove.mmpde`: the MM-PDE time-stepper (a uniform-grid branch and a branch on the DMM's
  moved mesh joined by learned interpolation; network ``"mmpde"`` in :mod:`sciml.models.mmpde_net`):
  ``stepper_dataset``, ``RoundTripTask`` (pretraining of the interpolations), ``MMPDETask``, ``rollout``.

``import sciml.meshmove`` does not import torch: the DMM names are resolved on first use.
"""

from __future__ import annotations

from .._lazy import lazy_exports
from .monitor import GradientMonitor, HessianMonitor, Monitor
from .move import MongeAmpere, interpolate_to_mesh, move
from .quality import interpolation_error, mesh_quality

# DMM and MM-PDE names -> module, imported on first access (PEP 562): they need torch.
_LAZY = {
    "DMM": "sciml.meshmove.dmm",
    "DMMTask": "sciml.meshmove.dmm",
    "DMMNet": "sciml.models.dmm_net",
    "dmm_dataset": "sciml.meshmove.dmm",
    "MMPDETask": "sciml.meshmove.mmpde",
    "RoundTripTask": "sciml.meshmove.mmpde",
    "stepper_dataset": "sciml.meshmove.mmpde",
    "rollout": "sciml.meshmove.mmpde",
}

__all__ = ["Monitor", "GradientMonitor", "HessianMonitor", "mesh_quality", "interpolation_error",
           "move", "MongeAmpere", "interpolate_to_mesh", *_LAZY]

__getattr__, __dir__ = lazy_exports(globals(), _LAZY, [*__all__, "dmm", "mmpde", "monitor", "move", "quality"])
