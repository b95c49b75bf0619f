"""Optimisation helpers: loss-term combiners (and, later, schedules).

A combiner turns a task's named loss terms into one parameter update; any task can be trained
with any combiner (see :mod:`sciml.optim.combine` for the contract).
"""

from .combine import (
    Combiner,
    Sum,
    Weighted,
    available_combiners,
    check_terms,
    get_combiner,
    register_combiner,
    set_gradients,
    term_gradients,
)
from .config import ConFIG, MConFIG, PCGrad, config_direction, pcgrad_direction  # noqa: F401  (registers them)

__all__ = [
    "Combiner",
    "Sum",
    "Weighted",
    "available_combiners",
    "check_terms",
    "get_combiner",
    "register_combiner",
    "set_gradients",
    "term_gradients",
]
__all__ += ["ConFIG", "MConFIG", "PCGrad", "config_direction", "pcgrad_direction"]
