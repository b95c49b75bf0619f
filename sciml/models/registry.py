"""Model registry: build any network from a name and JSON-serialisable keyword arguments.

Every model class is registered under a short name with :func:`register`; :func:`build_model`
constructs it and records the name and the keyword arguments on the instance as ``model_spec``, so a
checkpoint can store the spec next to the weights and a :class:`~sciml.operators.solver.Solver` can rebuild the
network later without pickling any Python object.

The registry is lazy. Built-in models live in one module each; :data:`_BUILTIN` maps a model name to
the module that defines it, and that module is imported the first time the name is asked for. Listing
the names therefore costs nothing, and importing this module does not import torch. Adding a model
takes two steps: decorate its class with ``@register("name")`` in a new file under ``sciml/models/``
and add ``"name": "sciml.models.file"`` to :data:`_BUILTIN`. Classes registered from outside the package
(a user's own model) are found as soon as their module has been imported.

Examples
--------
>>> from sciml.models import build_model
>>> net = build_model("mlp", in_features=2, out_features=1, hidden=[16, 16])
>>> net.model_spec
{'name': 'mlp', 'kwargs': {'in_features': 2, 'out_features': 1, 'hidden': [16, 16]}}
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ConfigError, UnknownNameError

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

__all__ = ["register", "build_model", "model_from_spec", "get_model_class", "list_models"]

# Built-in model name -> module that registers it. One line per model; the module is imported lazily.
_BUILTIN: dict[str, str] = {
    "mlp": "sciml.models.mlp",
    "fno": "sciml.models.fno",
    "deeponet": "sciml.models.deeponet",
    "mgno": "sciml.models.mgno",
    "galerkin": "sciml.models.galerkin",
    "nio": "sciml.models.nio",
    "uit": "sciml.models.uit",
    "unet": "sciml.models.unet",
    "flat_deeponet": "sciml.models.measurement_nets",
    "extended_fno": "sciml.models.measurement_nets",
    "extended_net": "sciml.models.measurement_nets",
    "dcdm_net": "sciml.models.dcdm_net",
    "dcdm_multilevel": "sciml.models.dcdm_multilevel",
    "dmm_net": "sciml.models.dmm_net",
    "mmpde": "sciml.models.mmpde_net",
}

# Name -> class, filled by @register when a model module is imported.
_REGISTRY: dict[str, type] = {}

T = TypeVar("T", bound=type)


def _available_builtins() -> dict[str, str]:
    """Built-in names whose module exists in this installation (later models may not be written yet)."""
    from importlib.util import find_spec

    out = {}
    for name, module in _BUILTIN.items():
        try:
            if find_spec(module) is not None:
                out[name] = module
        except ModuleNotFoundError:  # parent package missing: treat the model as absent
            continue
    return out


def register(name: str) -> Callable[[T], T]:
    """Class decorator registering an ``nn.Module`` subclass under ``name``.

    Parameters
    ----------
    name : str
        Lower-case identifier used by :func:`build_model`, configs and checkpoints.

    Raises
    ------
    ConfigError
        If ``name`` is not a non-empty string, the decorated object is not an ``nn.Module``
        subclass, or another class already holds the name.
    """
    if not isinstance(name, str) or not name or name != name.strip():
        raise ConfigError(f"register: expected a non-empty model name without spaces, got {name!r}")

    def decorator(cls: T) -> T:
        from torch import nn

        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise ConfigError(f"register({name!r}): expected an nn.Module subclass, got {cls!r}")
        old = _REGISTRY.get(name)
        # Re-registering the same class (a module reloaded in a notebook) is harmless; a different
        # class under a taken name would silently change what old checkpoints rebuild.
        if old is not None and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ConfigError(
                f"register({name!r}): name already taken by {old.__module__}.{old.__qualname__}, "
                f"cannot register {cls.__module__}.{cls.__qualname__}"
            )
        _REGISTRY[name] = cls
        cls.registry_name = name  # type: ignore[attr-defined]
        return cls

    return decorator


def list_models() -> list[str]:
    """Sorted names of all models that can be built (built-ins and classes registered so far)."""
    return sorted(set(_available_builtins()) | set(_REGISTRY))


def get_model_class(name: str) -> type:
    """Return the class registered under ``name``, importing its module on first use.

    Raises
    ------
    UnknownNameError
        If no model of that name exists; the message lists the known names.
    """
    if not isinstance(name, str):
        raise UnknownNameError("model", name, list_models())
    if name not in _REGISTRY:
        module = _available_builtins().get(name)
        if module is None:
            raise UnknownNameError("model", name, list_models())
        import_module(module)
        if name not in _REGISTRY:  # a table entry whose module forgot the decorator
            raise ConfigError(f"model {name!r}: module {module} was imported but did not register it")
    return _REGISTRY[name]


def _to_json(where: str, value: Any) -> Any:
    """Canonical JSON form of ``value``: tuples become lists, numpy scalars Python numbers.

    Raises ConfigError for anything that would not survive ``json.dumps``/``json.loads`` unchanged.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return _to_json(where, value.item())
    if isinstance(value, (list, tuple)):
        return [_to_json(f"{where}[{i}]", v) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(f"{where}: expected string keys, got key {k!r} of type {type(k).__name__}")
            out[k] = _to_json(f"{where}[{k!r}]", v)
        return out
    raise ConfigError(
        f"{where}: expected a JSON-serialisable value (None, bool, int, float, str, list, dict), "
        f"got {type(value).__name__} {value!r}"
    )


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the model registered as ``name`` from keyword arguments and record them.

    The keyword arguments are converted to their canonical JSON form (tuples become lists) before
    the constructor sees them, so a model rebuilt from ``model.model_spec`` receives exactly the
    same arguments as the original and is identical to it.

    Parameters
    ----------
    name : str
        Registered model name, see :func:`list_models`.
    **kwargs
        Constructor arguments; they must be JSON-serialisable.

    Returns
    -------
    torch.nn.Module
        The model, with ``model.model_spec == {"name": name, "kwargs": kwargs}``.

    Raises
    ------
    UnknownNameError
        If ``name`` is not a known model.
    ConfigError
        If an argument is not JSON-serialisable, or the constructor rejects the arguments.
    """
    cls = get_model_class(name)
    clean = _to_json(f"build_model({name!r}) kwargs", kwargs)
    try:  # unexpected or missing keywords: say which model and what was passed, before building
        inspect.signature(cls).bind(**clean)
    except TypeError as exc:
        raise ConfigError(f"build_model({name!r}): bad arguments {sorted(clean)}: {exc}") from None
    model = cls(**clean)
    model.model_spec = {"name": name, "kwargs": clean}
    return model


def model_from_spec(spec: Mapping[str, Any]) -> nn.Module:
    """Rebuild a model from a spec ``{"name": str, "kwargs": dict}`` (as stored in checkpoints).

    A JSON string is accepted as well. Weights are freshly initialised; load a state dict next.
    """
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"model spec: expected JSON, got {spec[:80]!r} ({exc})") from None
    well_formed = isinstance(spec, Mapping) and set(spec) == {"name", "kwargs"}
    if not well_formed or not isinstance(spec["kwargs"], Mapping):
        raise ConfigError(f"model spec: expected {{'name': str, 'kwargs': dict}}, got {spec!r}")
    return build_model(spec["name"], **spec["kwargs"])
