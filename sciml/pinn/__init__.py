"""Physics-informed neural networks from the shared :class:`~sciml.problem.Problem`.

* :class:`PINNTask`: residual, boundary, initial and data loss terms of any problem with an
  ``equation``, hard constraints, fixed / resampled / adaptive collocation points; trained by the
  :class:`~sciml.train.Trainer` with any combiner (:func:`pinn_phases` gives Adam then L-BFGS, e.g.
  ``pinn_phases(5000, lbfgs_iterations=15000)``: 15000 L-BFGS iterations in float64 at most,
  ending early once converged);
  ``task.solve(grid)`` gives the result as Fields (NaN outside the domain);
* :class:`HardConstraint` (in ``hard=[...]``) and :class:`HardConstrained` (a module): hard
  constraints with a distance, lifting or output transform of one's own;
* :mod:`~sciml.pinn.sampling`: uniform and quasi-random points, RAR and RAD adaptive samplers;
* :mod:`~sciml.pinn.inverse`: unknown scalars and coefficient fields identified from observations;
* :class:`AAS`: adversarial adaptive sampling, a bounded normalising flow (:class:`BoundedFlow`)
  trained to put the collocation points where the residual is large;
* :class:`LagrangianPINNTask`: the Lagrangian PINN (characteristics and the state along them, two
  branches), for convection-dominated periodic problems where the plain PINN fails;
"""

from __future__ import annotations

from .aas import AAS, BoundedFlow
from .hard import HardConstrained, HardConstraint
from .inverse import Unknown, UnknownField, noisy_observations
from .lpinn import LagrangianPINNTask, lagrangian_to_eulerian
from .sampling import RAD, RAR, Sampler, check_points, sample_boundary, sample_initial
from .schedule import get_sampler
from .task import HARD_CONSTRAINTS, PINNTask
from .training import ActiveTermsCallback, PrecisionSwitch, pinn_phases

__all__ = [
    "AAS",
    "BoundedFlow",
    "HARD_CONSTRAINTS",
    "HardConstrained",
    "HardConstraint",
    "ActiveTermsCallback",
    "LagrangianPINNTask",
    "PINNTask",
    "PrecisionSwitch",
    "RAD",
    "RAR",
    "Sampler",
    "Unknown",
    "UnknownField",
    "check_points",
    "get_sampler",
    "lagrangian_to_eulerian",
    "noisy_observations",
    "pinn_phases",
    "sample_boundary",
    "sample_initial",
]
