"""Problems: a family of PDE instances defined once and read by every method.

A :class:`Problem` names its random or fixed **inputs** (each with a space that samples it), its
**outputs**, the PDE residual (``equation``, torch, for PINNs), boundary/initial **conditions**, the
classical **reference** solver (float64, used to make data, to validate and as the speed baseline),
optional ``system`` (the linear system, for learned linear solvers) and ``observe`` (measurements,
for inverse problems), and plain-number ``params``.

Problem files live in ``problems/NAME.py`` and define ``problem``; :func:`load_problem` loads a
built-in one by name or a user's file by path, the same way.
"""

from .core import Dirichlet, Initial, Input, Neumann, Periodic, Problem
from .files import list_problems, load_problem, problems_dirs
from .inverse import InverseProblem

__all__ = [
    "Input",
    "Dirichlet",
    "Neumann",
    "Periodic",
    "Initial",
    "Problem",
    "InverseProblem",
    "load_problem",
    "list_problems",
    "problems_dirs",
]
