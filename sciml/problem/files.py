"""Problem files: ``problems/NAME.py`` defining ``problem``, found by name or loaded by path."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path

from ..errors import ProblemError, UnknownNameError
from .core import Problem

__all__ = ["problems_dirs", "list_problems", "load_problem"]


def problems_dirs() -> list[Path]:
    """Folders searched for problem files: ``$SCIML_PROBLEMS_PATH`` entries, then the built-ins."""
    dirs = [Path(p) for p in os.environ.get("SCIML_PROBLEMS_PATH", "").split(os.pathsep) if p]
    here = Path(__file__).resolve().parents[1]  # the sciml package folder
    # The built-ins ship inside the package as sciml/_problems in a wheel, and sit at the top of
    # the repository (problems/) in a source checkout or an editable install.
    dirs += [here / "_problems", here.parent / "problems"]
    return [d for d in dirs if d.is_dir()]


def list_problems() -> list[str]:
    """Names of the problems that :func:`load_problem` finds by name."""
    names = {p.stem for d in problems_dirs() for p in d.glob("*.py") if not p.stem.startswith("_")}
    return sorted(names)


_CACHE: dict[str, Problem] = {}


def load_problem(name_or_path: str | os.PathLike[str]) -> Problem:
    """Load ``problem`` from ``problems/NAME.py`` or from a path to any Python file defining it."""
    text = os.fspath(name_or_path)
    path = Path(text)
    if text.endswith(".py") or path.is_file():
        if not path.is_file():
            raise ProblemError(f"load_problem: no such problem file {str(path)!r}")
    else:
        found = [d / f"{text}.py" for d in problems_dirs() if (d / f"{text}.py").is_file()]
        if not found:
            raise UnknownNameError("problem", text, list_problems())
        path = found[0]
    key = str(path.resolve())
    if key in _CACHE:
        return _CACHE[key]
    module_name = "sciml_problem_" + hashlib.sha1(key.encode()).hexdigest()[:10]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ProblemError(f"load_problem: cannot import {str(path)!r}")
    module = importlib.util.module_from_spec(spec)
    # registered like any imported module, so that tools which look functions' modules up by name
    # (pickle, torch.compile's tracing) find it
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    problem = getattr(module, "problem", None)
    if not isinstance(problem, Problem):
        raise ProblemError(f"{str(path)!r} must define `problem` as a sciml.Problem, got {type(problem).__name__}")
    if problem.source is None:
        problem.source = key
    _CACHE[key] = problem
    return problem
