"""What every trained solver does before and after it answers, so that it never answers nonsense
silently.

* :func:`check_fixed_inputs`: an input the problem fixes was fixed in every training sample, so
  the model never saw another value; another value is refused with :class:`FixedInputError`
  (unless the problem marks the input ``variable=True``).
* :func:`check_distribution`: inputs outside what the training data looked like (the run's
  :class:`~sciml.data.profile.TrainingProfile`) give an :class:`OutOfDistributionWarning` naming
  the input and the numbers.
* :class:`Answer`: the fields a solver returns (a dict ``{output: Field}``), the inputs it used,
  and what the checks said (``answer.out_of_distribution``, ``answer.warnings``), so that a
  program can test the flag instead of parsing warnings.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import FixedInputError, OutOfDistributionWarning
from .fields import Field
from .grid import Grid
from .problem import Problem

__all__ = ["Answer", "check_fixed_inputs", "check_distribution"]


class Answer(dict):
    """``{output name: Field}`` plus what the solver knows about the answer.

    Attributes
    ----------
    inputs : dict of str to Field
        The inputs the model was given, as prepared on the answer's grid (boundary data as their
        harmonic extension): what a picture of the answer should show beside it.
    warnings : list of str
        Why the answer may be untrustworthy (inputs outside the training data); empty if none.
    """

    def __init__(self, fields: Mapping[str, Field], inputs: Mapping[str, Field] | None = None,
                 warnings: list[str] | None = None) -> None:
        super().__init__(fields)
        self.inputs = dict(inputs or {})
        self.warnings = list(warnings or [])

    @property
    def out_of_distribution(self) -> bool:
        """True when an input lay outside the training data (the answer is an extrapolation)."""
        return bool(self.warnings)


def check_fixed_inputs(problem: Problem, given: Mapping[str, Any], grid: Grid) -> None:
    """Refuse a value for a fixed input of ``problem`` that differs from its fixed value on ``grid``.

    Raises
    ------
    FixedInputError
        Naming the input, its fixed value and how to make it variable.
    """
    for inp in problem.inputs:
        if inp.is_random or inp.variable or inp.name not in given:
            continue
        fixed = problem.evaluate_input(inp.name, inp.value, grid)
        value = problem.evaluate_input(inp.name, given[inp.name], grid)
        scale = float(np.max(np.abs(fixed))) + 1e-12
        if not np.allclose(value, fixed, rtol=1e-9, atol=1e-9 * scale):
            diff = float(np.max(np.abs(value - fixed)))
            raise FixedInputError(
                f"input {inp.name!r} was fixed when the model was trained ({inp.name} = {inp.value!r}) and was "
                f"given another value (largest difference {diff:.3g}): the model never saw another value, so "
                f"its answer would be meaningless. Leave {inp.name!r} out, or make it random "
                f"(Input({inp.name!r}, space=...)) and retrain; Input(..., variable=True) allows extrapolating.")


def check_distribution(profile: Any, prepared: Mapping[str, np.ndarray], grid: Grid, stacklevel: int = 3) -> list[str]:
    """Warn (:class:`OutOfDistributionWarning`) for each input outside the training profile.

    ``profile`` is the run's :class:`~sciml.data.profile.TrainingProfile` (None: nothing to check,
    a run made before profiles existed). Returns the messages.
    """
    if profile is None:
        return []
    messages = profile.check(prepared, grid)
    for message in messages:
        warnings.warn(OutOfDistributionWarning(message + "; the answer is an extrapolation and may be far off"),
                      stacklevel=stacklevel)
    return messages
