"""Classical solvers in float64 (numpy/scipy, no torch): the ground truth and the training data.

Modules
-------
fd
    Finite differences for ``-div(a grad u) = f`` with Dirichlet data on uniform grids, harmonic
    lifts and Dirichlet-to-Neumann maps.
spectral, burgers2d
    Pseudo-spectral periodic Burgers (ETDRK4) in 1-D and 2-D, the references of ``problems/burgers1d.py``
    and ``problems/burgers2d.py``.
conductivity, inversion
    Boundary maps of the conductivity and Helmholtz equations (Dirichlet-to-Neumann with the
    consistent flux, Neumann-to-Dirichlet, one factorisation per sample) and the classical
    adjoint-gradient conductivity inversion (Tikhonov / TV, L-BFGS-B, discrepancy principle).
masked
    The 5-/7-point Poisson problem on a domain made of grid cells (L-shapes, holes): PINN references.
monge_ampere
    Monge-Ampere equidistribution mesh generation on the unit square.
ode, diffusion_reaction, burgers
    ODE integrators and antiderivatives; 1-D diffusion-reaction; Cole-Hopf Burgers solutions.

The public names of the submodules are re-exported here lazily, so ``import sciml.numerics`` stays
cheap and pulls in scipy only when a solver is used.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# name -> submodule that defines it (PEP 562 lazy attributes).
_LAZY = {
    "FACE_MEANS": "fd",
    "assemble_elliptic": "fd",
    "solve_elliptic": "fd",
    "EllipticFactor": "fd",
    "laplacian_matrix": "fd",
    "system": "fd",
    "harmonic_extension": "fd",
    "dirichlet_to_neumann": "fd",
    "interior_values": "fd",
    "from_interior": "fd",
    "rk4": "ode", "spline_antiderivative": "ode", "solve_diffusion_reaction": "diffusion_reaction",
    "cole_hopf": "burgers", "burgers_grid_solution": "burgers", "burgers_etdrk4": "spectral",
    "burgers2d_etdrk4": "burgers2d",
    "dtn": "conductivity", "dtn_matrix": "conductivity", "ntd": "conductivity", "helmholtz_dtn": "conductivity",
    "trig_patterns": "conductivity", "boundary_order": "conductivity", "add_multiplicative_noise": "conductivity",
    "invert_conductivity": "inversion", "InversionResult": "inversion",
    "solve_poisson_masked": "masked", "interior_mask": "masked",
    "solve_monge_ampere": "monge_ampere", "MongeAmpereResult": "monge_ampere",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sciml.numerics' has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*__all__, *globals()})
