"""Neural inverse operators: boundary measurements in, the coefficient inside out.

The family of NIO (``sciml.models.nio``) and its fixed-measurement baselines (``flat_deeponet``,
``extended_fno``) on problems whose input is an array of boundary measurements
(``problems/calderon.py``: Dirichlet-to-Neumann data; ``problems/eit_inclusions.py``; ...):

* :class:`MeasurementData`: the dataset files :func:`sciml.data.generate` makes for them, in memory;
* :class:`MeasurementTask`: normalisation by probe, any number of measurements (NIO) or exactly the
  trained number (baselines), relative L1 / L2 losses;
* :class:`MeasurementSolver`: a trained run answering measurements (``sciml.Solver.load`` returns it),
  with the problem's forward model to make measurements of a given coefficient.

The forward models and the classical PDE-constrained inversion live in :mod:`sciml.numerics`
(``conductivity``, ``inversion``); training goes through :func:`sciml.workflows.inverse.train_inverse`.
"""

from .data import MeasurementData
from .solver import MeasurementSolver
from .task import MeasurementProfile, MeasurementTask, relative_l1_per_sample

__all__ = ["MeasurementData", "MeasurementTask", "MeasurementProfile", "MeasurementSolver", "relative_l1_per_sample"]
