"""Safe evaluation of small formulas such as ``"sin(pi*x)*y"``.

Used by the CLI (``sciml solve RUN --set g="sin(pi*x)*y"``) and wherever a user gives an input as
text. The expression is parsed with :mod:`ast` and only arithmetic, numbers, the coordinate names
and a fixed set of numpy functions are allowed, so a formula can never run arbitrary code.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .errors import ConfigError, UnknownNameError

__all__ = ["compile_formula", "FUNCTIONS", "CONSTANTS"]

FUNCTIONS: dict[str, Callable[..., Any]] = {
    name: getattr(np, name)
    for name in (
        "sin cos tan arcsin arccos arctan arctan2 sinh cosh tanh exp log log10 log2 sqrt abs "
        "minimum maximum where sign floor ceil heaviside hypot"
    ).split()
}
FUNCTIONS.update({"asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "atan2": np.arctan2})
CONSTANTS = {"pi": np.pi, "e": np.e}

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.Mod: operator.mod,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_COMPARE = {ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater, ast.GtE: np.greater_equal}


def compile_formula(expr: str, variables: tuple[str, ...] = ("x", "y", "z", "t")) -> Callable[..., Any]:
    """Parse ``expr`` once and return ``f(**coords)`` evaluating it with numpy.

    Parameters
    ----------
    expr : str
        Arithmetic with ``+ - * / ** %``, comparisons, numbers, ``pi``, ``e``, the names in
        ``variables`` and the functions in :data:`FUNCTIONS`.
    variables : tuple of str
        Names the formula may use as coordinates.

    Raises
    ------
    UnknownNameError
        On a name that is neither a variable, a constant nor an allowed function.
    ConfigError
        On a syntax error or any attribute, call or construct outside the allowed set.
    """
    if not isinstance(expr, str) or not expr.strip():
        raise ConfigError(f"formula: expected a non-empty expression string, got {expr!r}")
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as exc:
        raise ConfigError(f"formula {expr!r}: syntax error ({exc.msg})") from None
    _check(tree.body, expr, set(variables))

    used = sorted({name for name in _names(tree.body) if name in variables})

    def evaluate(**coords: Any) -> Any:
        missing = [v for v in used if coords.get(v) is None]
        if missing:
            raise ConfigError(f"formula {expr!r} uses {missing}, which this domain does not have")
        try:
            with np.errstate(all="ignore"):  # non-finite results are reported by the caller's checks
                return _eval(tree.body, coords)
        except (OverflowError, ZeroDivisionError, ValueError, TypeError) as exc:
            raise ConfigError(f"formula {expr!r} failed to evaluate: {exc}") from None

    evaluate.__doc__ = f"Evaluate {expr!r}."
    evaluate.expression = expr  # type: ignore[attr-defined]
    return evaluate


def _names(node: ast.AST) -> list[str]:
    return [n.id for n in ast.walk(node) if isinstance(n, ast.Name)]


def _check(node: ast.AST, expr: str, variables: set[str]) -> None:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            if sub.id not in variables and sub.id not in CONSTANTS and sub.id not in FUNCTIONS:
                raise UnknownNameError(f"name in formula {expr!r}:", sub.id, variables | set(CONSTANTS) | set(FUNCTIONS))
        elif isinstance(sub, ast.Call):
            if not isinstance(sub.func, ast.Name) or sub.func.id not in FUNCTIONS or sub.keywords:
                raise ConfigError(f"formula {expr!r}: only calls like sin(x) of {sorted(FUNCTIONS)} are allowed")
        elif isinstance(sub, ast.Constant):
            if not isinstance(sub.value, (int, float)) or isinstance(sub.value, bool):
                raise ConfigError(f"formula {expr!r}: only numeric constants are allowed, got {sub.value!r}")
        elif isinstance(sub, ast.BinOp):
            if type(sub.op) not in _BINARY:
                raise ConfigError(f"formula {expr!r}: operator {type(sub.op).__name__} is not allowed")
        elif isinstance(sub, ast.UnaryOp):
            if type(sub.op) not in _UNARY:
                raise ConfigError(f"formula {expr!r}: operator {type(sub.op).__name__} is not allowed")
        elif isinstance(sub, ast.Compare):
            if len(sub.ops) != 1 or type(sub.ops[0]) not in _COMPARE:
                raise ConfigError(f"formula {expr!r}: only single comparisons < <= > >= are allowed")
        elif not isinstance(sub, (ast.Load, ast.operator, ast.unaryop, ast.cmpop, ast.expr_context)):
            raise ConfigError(f"formula {expr!r}: {type(sub).__name__} is not allowed in a formula")


def _eval(node: ast.AST, env: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        # Integer literals become floats so that 9**9**9 overflows at once instead of running forever.
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id in env:
            return env[node.id]
        return CONSTANTS[node.id]
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_eval(node.left, env), _eval(node.right, env))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_eval(node.operand, env))
    if isinstance(node, ast.Compare):
        left, right = _eval(node.left, env), _eval(node.comparators[0], env)
        return _COMPARE[type(node.ops[0])](left, right).astype(np.float64)
    if isinstance(node, ast.Call):
        return FUNCTIONS[node.func.id](*[_eval(a, env) for a in node.args])  # type: ignore[union-attr]
    raise ConfigError(f"formula: cannot evaluate {type(node).__name__}")  # unreachable after _check
