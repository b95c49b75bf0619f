"""sciml: scientific machine learning for PDEs and inverse problems.

One problem definition, every modern method: neural operators (FNO, DeepONet, MgNO, Galerkin
Transformer, NIO), PINN variants, learned linear solvers and neural mesh movers, trained by one
Trainer and answered by one Solver.

Importing this package has no side effects: heavy dependencies (torch, pyvista, h5py, deepxde) are
imported only when the part that needs them is used.
"""

from __future__ import annotations

from . import errors  # noqa: F401  (tiny, no dependencies: sciml.errors always works)
from ._lazy import lazy_exports

__version__ = "0.1.0"

# name -> module that defines it; resolved on first attribute access (PEP 562).
_LAZY = {
    "Grid": "sciml.fields",
    "Field": "sciml.fields",
    "relative_l2": "sciml.fields",
    "Problem": "sciml.problem",
    "Input": "sciml.problem",
    "Dirichlet": "sciml.problem",
    "Neumann": "sciml.problem",
    "Periodic": "sciml.problem",
    "Initial": "sciml.problem",
    "InverseProblem": "sciml.problem",
    "load_problem": "sciml.problem",
    "list_problems": "sciml.problem",
    "Domain": "sciml.geometry",
    "Mesh": "sciml.geometry",
    "MeshReport": "sciml.geometry",
    "build_model": "sciml.models",
    "list_models": "sciml.models",
    "generate": "sciml.data",
    "GridDataset": "sciml.data",
    "Solver": "sciml.operators.solver",
    "Trainer": "sciml.train",
    "OperatorTask": "sciml.operators.task",
}

__all__ = sorted([*_LAZY, "__version__", "errors"])


__getattr__, __dir__ = lazy_exports(globals(), _LAZY, __all__)
