"""End-to-end workflows: what the ``sciml`` command runs, one module per method family.

:func:`train_operator` (grid operators: FNO and every model trained like it), :func:`train_deeponet`
(DeepONet point solvers), :func:`resume_operator` (continue any run), :func:`quickstart` (the README's
first command). Each returns an :class:`OperatorRun` holding the run directory, the solver, the
training result and the test errors. :func:`train_pinn` trains a PINN of one instance (a
:class:`~sciml.workflows.pinn.PINNRun`; :func:`load_pinn` rebuilds it) and :func:`solve_run` answers
with any run (what ``sciml solve`` prints and draws).
"""

from __future__ import annotations

from .._lazy import lazy_exports

# Public name -> module that defines it; imported on first use so that ``import sciml.workflows``
# does not pull in torch.
_LAZY = {
    "OperatorRun": "sciml.workflows.common",
    "build_seeded_model": "sciml.workflows.common",
    "train_operator": "sciml.workflows.operator",
    "default_model_kwargs": "sciml.workflows.operator",
    "train_deeponet": "sciml.workflows.deeponet",
    "default_sensors": "sciml.workflows.deeponet",
    "train_pinn": "sciml.workflows.pinn",
    "load_pinn": "sciml.workflows.pinn",
    "resume_operator": "sciml.workflows.resume",
    "solve_run": "sciml.workflows.solve",
    "quickstart": "sciml.workflows.quickstart",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(globals(), _LAZY, __all__)
