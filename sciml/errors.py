"""Exceptions raised by sciml.

Every error names what was expected and what came, so that a user can fix the call without
reading the source. All of them derive from :class:`SciMLError`; the subclasses also derive from
the matching built-in exception (``ValueError``, ``KeyError``, ``RuntimeError``...) so existing
``except ValueError`` code keeps working.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "SciMLError",
    "ShapeError",
    "DTypeError",
    "NonFiniteError",
    "UnknownNameError",
    "ConfigError",
    "NotSPDError",
    "InvalidMeshError",
    "DivergenceError",
    "CheckpointError",
    "DatasetError",
    "ProblemError",
    "ArgumentValueError",
    "FixedInputError",
    "SciMLWarning",
    "OutOfDistributionWarning",
]


class SciMLError(Exception):
    """Base class of every error raised on purpose by sciml."""


class ShapeError(SciMLError, ValueError):
    """An array has the wrong number of dimensions or the wrong size along one of them."""

    def __init__(self, what: str, expected: Any, got: Any) -> None:
        self.what, self.expected, self.got = what, expected, got
        super().__init__(f"{what}: expected shape {expected}, got {tuple(got) if _is_seq(got) else got}")


class DTypeError(SciMLError, TypeError):
    """An array has a dtype (or a value has a type) that cannot be used here."""


class NonFiniteError(SciMLError, ValueError):
    """An array holds NaN or Inf where finite numbers are required."""


class UnknownNameError(SciMLError, KeyError):
    """A name (problem, model, input, combiner...) is not among the known ones."""

    def __init__(self, kind: str, name: Any, known: Any) -> None:
        self.kind, self.name, self.known = kind, name, sorted(map(str, known))
        super().__init__(f"unknown {kind} {name!r}; expected one of {self.known}")

    def __str__(self) -> str:  # KeyError would quote the whole message otherwise
        return str(self.args[0])


class ConfigError(SciMLError, ValueError):
    """A setting is out of its allowed range or inconsistent with another one."""


class NotSPDError(SciMLError, ValueError):
    """A matrix that must be symmetric positive definite is not."""


class InvalidMeshError(SciMLError, ValueError):
    """A mesh has inverted or degenerate cells, orphan or duplicate nodes, or bad coordinates."""


class DivergenceError(SciMLError, RuntimeError):
    """Training produced a non-finite loss term or iterate and the policy is to stop."""


class CheckpointError(SciMLError, RuntimeError):
    """A checkpoint is missing, truncated, corrupt, foreign or unsafe to load."""


class DatasetError(SciMLError, RuntimeError):
    """A dataset file is missing, incomplete, corrupt, foreign or made with other settings."""


class ProblemError(SciMLError, ValueError):
    """A problem definition is inconsistent or incomplete for the requested use."""


class ArgumentValueError(ConfigError):
    """A numerical routine refused the values of one of its arguments (``argument``), keeping the
    ``values`` it refused so that a caller can name the input they came from."""

    def __init__(self, argument: str, detail: str, values: Any = None) -> None:
        self.argument, self.detail, self.values = argument, detail, values
        super().__init__(f"{argument}: {detail}")


class FixedInputError(ProblemError):
    """An input that was fixed when the model was trained was given another value."""


class SciMLWarning(UserWarning):
    """Base class of the warnings sciml gives on purpose (the CLI prints them as ``warning: ...``)."""


class OutOfDistributionWarning(SciMLWarning):
    """An input lies outside what the trained model saw in its training data: the answer is an
    extrapolation and may be far off."""


def _is_seq(x: Any) -> bool:
    return isinstance(x, (tuple, list)) or hasattr(x, "__len__") and not isinstance(x, str)
