"""Neural network models, built by name through the registry.

>>> from sciml.models import build_model, list_models
>>> "fno" in list_models()
True
>>> fno = build_model("fno", in_channels=1, out_channels=1, n_modes=[12, 12], width=32)

The registry functions are imported eagerly (they do not import torch); the model classes are
resolved on first attribute access, so ``import sciml.models`` stays cheap. To add a model, decorate
its class with ``@register("name")`` in a new module under ``sciml/models/`` and add one line to the
name -> module table ``_BUILTIN`` in :mod:`sciml.models.registry` (and, optionally, the class name to
``_LAZY`` below for ``from sciml.models import ClassName``).
"""

from __future__ import annotations

from .._lazy import lazy_exports
from .registry import build_model, get_model_class, list_models, model_from_spec, register

# Public class/function name -> module defining it, imported on first access (PEP 562).
_LAZY = {
    "MLP": "sciml.models.mlp",
    "Sine": "sciml.models.mlp",
    "activation": "sciml.models.mlp",
    "FNO": "sciml.models.fno",
    "SpectralConv": "sciml.models.fno",
    "PointwiseLinear": "sciml.models.fno",
    "DeepONet": "sciml.models.deeponet",
    "GalerkinTransformer": "sciml.models.galerkin",
    "GalerkinAttention": "sciml.models.galerkin",
    "GalerkinEncoderLayer": "sciml.models.galerkin",
    "MgNO": "sciml.models.mgno",
    "MgConv": "sciml.models.mgno",
    "MMPDENet": "sciml.models.mmpde_net",
    "LearnedInterpolation": "sciml.models.learned_interp",
    "MeshInterpolation": "sciml.models.learned_interp",
}

__all__ = [
    "FNO",
    "GalerkinAttention",
    "GalerkinEncoderLayer",
    "GalerkinTransformer",
    "LearnedInterpolation",
    "MMPDENet",
    "MeshInterpolation",
    "MLP",
    "MgConv",
    "MgNO",
    "PointwiseLinear",
    "Sine",
    "SpectralConv",
    "activation",
    "build_model",
    "get_model_class",
    "list_models",
    "model_from_spec",
    "register",
]


__getattr__, __dir__ = lazy_exports(globals(), _LAZY, __all__)
