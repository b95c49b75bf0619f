"""Datasets: generation from a Problem's reference solver, the HDF5 schema, reading and normalising.

* :func:`generate` makes an HDF5 file of (inputs, outputs) samples, in parallel, shard by shard,
  resumable after a crash, identical for any number of workers.
* :class:`GridDataset` reads it lazily (fork-safe) for a torch DataLoader; :func:`load_arrays`
  reads it into numpy; :func:`split_indices` splits it.
* :mod:`~sciml.data.normalize` holds fitted, serialisable normalisers.

The torch-based readers and normalisers are resolved lazily: worker processes of :func:`generate`
import this package and must not pay for torch. ``generate`` itself is imported eagerly, because
the function shares its name with its module: bound here first, it is not replaced by the module
when someone imports ``sciml.data.generate`` later.
"""

from __future__ import annotations

from .._lazy import lazy_exports
from .generate import DEFAULT_SHARD_SIZE, generate
from .hdf5 import SCHEMA_NAME, SCHEMA_VERSION, DatasetInfo, open_dataset_file, read_attrs, write_attrs

_LAZY = {
    "GridDataset": "sciml.data.dataset",
    "GridArrays": "sciml.data.dataset",
    "load_arrays": "sciml.data.dataset",
    "split_indices": "sciml.data.dataset",
    "Normalizer": "sciml.data.normalize",
    "UnitGaussianNormalizer": "sciml.data.normalize",
    "MinMaxNormalizer": "sciml.data.normalize",
    "IdentityNormalizer": "sciml.data.normalize",
    "make_normalizer": "sciml.data.normalize",
    "normalizer_from_state": "sciml.data.normalize",
}

__all__ = [
    "DEFAULT_SHARD_SIZE",
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "DatasetInfo",
    "GridArrays",
    "GridDataset",
    "IdentityNormalizer",
    "MinMaxNormalizer",
    "Normalizer",
    "UnitGaussianNormalizer",
    "generate",
    "load_arrays",
    "make_normalizer",
    "normalizer_from_state",
    "open_dataset_file",
    "read_attrs",
    "split_indices",
    "write_attrs",
]


__getattr__, __dir__ = lazy_exports(globals(), _LAZY, [*__all__, "hdf5", "dataset", "normalize"])
