"""Safe evaluation of small formulas such as ``"sin(pi*x)*y"``.

Used by the CLI (``sciml solve RUN --set g="sin(pi*x)*y"``) and wherever a user gives an input as
text. The expression is parsed with :mod:`ast` and only arithmetic, numbers, the coordinate names
and a fixed set of functions are allowed, so a formula can never run arbitrary code.

The same parsed formula evaluates with numpy (``backend="numpy"``, the default: arrays on grids) or
with torch (``backend="torch"``: tensors in, a tensor out, differentiable by autograd; what PINNs
use for condition values and hard constraints, ``Dirichlet("sin(pi*x)*y")``).
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .errors import ConfigError, UnknownNameError

__all__ = ["compile_formula", "FUNCTIONS", "CONSTANTS", "BACKENDS"]

BACKENDS = ("numpy", "torch")

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
_TORCH_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge}


def compile_formula(expr: str, variables: tuple[str, ...] = ("x", "y", "z", "t"),
                    backend: str = "numpy") -> Callable[..., Any]:
    """Parse ``expr`` once and return ``f(**coords)`` evaluating it with numpy (or torch).

    Parameters
    ----------
    expr : str
        Arithmetic with ``+ - * / ** %``, comparisons, numbers, ``pi``, ``e``, the names in
        ``variables`` and the functions in :data:`FUNCTIONS`.
    variables : tuple of str
        Names the formula may use as coordinates.
    backend : {"numpy", "torch"}
        ``"torch"`` evaluates with torch functions: give tensors (numbers are broadcast), get a tensor
        of their dtype and device that autograd differentiates (comparisons give 0/1 of that dtype,
        without gradient). The torch functions are looked up at the first evaluation, so compiling
        a formula never imports torch.

    Raises
    ------
    UnknownNameError
        On a name that is neither a variable, a constant nor an allowed function.
    ConfigError
        On a syntax error or any attribute, call or construct outside the allowed set.
    """
    if backend not in BACKENDS:
        raise UnknownNameError("formula backend", backend, BACKENDS)
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
        ops = _NUMPY if backend == "numpy" else _torch_ops()
        try:
            with np.errstate(all="ignore"):  # non-finite results are reported by the caller's checks
                return _eval(tree.body, coords, ops)
        except (OverflowError, ZeroDivisionError, ValueError, TypeError, RuntimeError) as exc:
            raise ConfigError(f"formula {expr!r} failed to evaluate: {exc}") from None

    evaluate.__doc__ = f"Evaluate {expr!r}."
    evaluate.expression = expr  # type: ignore[attr-defined]
    evaluate.backend = backend  # type: ignore[attr-defined]
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


class _Ops:
    """The functions and comparisons one backend evaluates a formula with."""

    def __init__(self, functions: Mapping[str, Callable[..., Any]], compare: Callable[..., Any]) -> None:
        self.functions, self.compare = functions, compare


def _numpy_compare(op: type, left: Any, right: Any) -> Any:
    return _COMPARE[op](left, right).astype(np.float64)


_NUMPY = _Ops(FUNCTIONS, _numpy_compare)
_TORCH: list[_Ops] = []  # built at the first torch evaluation (importing torch is slow)


def _torch_ops() -> _Ops:
    if _TORCH:
        return _TORCH[0]
    import torch

    def like(args: tuple[Any, ...]) -> tuple[Any, ...]:
        """Numbers as tensors of the dtype and device of the first tensor argument (torch functions
        take tensors only)."""
        ref = next((a for a in args if isinstance(a, torch.Tensor)), None)
        dtype = ref.dtype if ref is not None and ref.is_floating_point() else torch.get_default_dtype()
        device = ref.device if ref is not None else None
        return tuple(a if isinstance(a, torch.Tensor) else torch.as_tensor(a, dtype=dtype, device=device)
                     for a in args)

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        return lambda *args: fn(*like(args))

    def where(cond: Any, a: Any, b: Any) -> Any:
        cond, a, b = like((cond, a, b))
        return torch.where(cond != 0, a, b)

    names = {"arcsin": "asin", "arccos": "acos", "arctan": "atan", "arctan2": "atan2", "asin": "asin",
             "acos": "acos", "atan": "atan", "atan2": "atan2"}
    functions = {name: wrap(getattr(torch, names.get(name, name))) for name in FUNCTIONS if name != "where"}
    functions["where"] = where

    def compare(op: type, left: Any, right: Any) -> Any:
        left, right = like((left, right))
        out = _TORCH_COMPARE[op](left, right)
        dtype = next((t.dtype for t in (left, right) if t.is_floating_point()), torch.get_default_dtype())
        return out.to(dtype)

    _TORCH.append(_Ops(functions, compare))
    return _TORCH[0]


def _eval(node: ast.AST, env: Mapping[str, Any], ops: _Ops = _NUMPY) -> Any:
    if isinstance(node, ast.Constant):
        # Integer literals become floats so that 9**9**9 overflows at once instead of running forever.
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id in env:
            return env[node.id]
        return CONSTANTS[node.id]
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_eval(node.left, env, ops), _eval(node.right, env, ops))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_eval(node.operand, env, ops))
    if isinstance(node, ast.Compare):
        left, right = _eval(node.left, env, ops), _eval(node.comparators[0], env, ops)
        return ops.compare(type(node.ops[0]), left, right)
    if isinstance(node, ast.Call):
        return ops.functions[node.func.id](*[_eval(a, env, ops) for a in node.args])  # type: ignore[union-attr]
    raise ConfigError(f"formula: cannot evaluate {type(node).__name__}")  # unreachable after _check
