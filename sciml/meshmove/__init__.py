"""Mesh movement: monitor functions of a solution, mesh-quality metrics, and (to come) the data-free
neural mesh mover (DMM) with ``move(field, mover)``.

* :mod:`~sciml.meshmove.monitor`: ``GradientMonitor`` and ``HessianMonitor`` (``1 + |grad u| / (beta
  mean|grad u|)`` and the Hessian analogue), on grids and at points, periodic or not;
* :mod:`~sciml.meshmove.quality`: ``mesh_quality(mesh, f, monitor)``: tangled cells, equidistribution
  (cv), volume ratio, P1 interpolation error against the uniform mesh of the same nodes.

The classical Monge-Ampere mesh generator is :func:`sciml.numerics.monge_ampere.solve_monge_ampere`.
"""

from .monitor import GradientMonitor, HessianMonitor, Monitor
from .quality import interpolation_error, mesh_quality

__all__ = ["Monitor", "GradientMonitor", "HessianMonitor", "mesh_quality", "interpolation_error"]
