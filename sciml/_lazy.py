"""Lazy attribute export (PEP 562) shared by the package ``__init__`` modules.

Keeping ``import sciml`` (and its subpackages) cheap and free of side effects means the heavy
modules are imported only when one of their names is first used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(
    namespace: dict[str, Any], table: Mapping[str, str], listed: Iterable[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for a module whose names in ``table`` live in other modules.

    Parameters
    ----------
    namespace : dict
        The module's ``globals()``; a resolved name is cached there, so the lookup runs once.
    table : mapping
        Public name -> module that defines it.
    listed : iterable of str
        What ``dir(module)`` shows.
    """
    module_name = namespace["__name__"]
    names = sorted(set(listed))

    def __getattr__(name: str) -> Any:
        source = table.get(name)
        if source is None:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        value = getattr(import_module(source), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return names

    return __getattr__, __dir__
