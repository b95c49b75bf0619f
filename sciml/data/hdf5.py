"""The on-disk schema of sciml grid datasets (HDF5) and its validation.

Layout of a file made by :func:`sciml.data.generate`::

    /inputs/<name>     (N, 1, *spatial) float32, one chunk per sample   (channels-first, C = 1)
    /outputs/<name>    (N, 1, *spatial) float32, one chunk per sample
    /coords            (ndim, *spatial) float64 node coordinates ('ij' indexing)
    /_shards/done      (n_shards,) uint8, 1 once shard k is written and flushed
    /_shards/crc32     (n_shards,) uint32, checksum of shard k's data as written
    attributes         schema, schema_version, problem, fingerprint, params, grid, n, seed, ...,
                       complete (True, written last)

Dicts and lists are stored as JSON strings; the names of those attributes are listed in the
``_json_attrs`` attribute so that :func:`read_attrs` gives back exactly what was written.

h5py is imported inside the functions: ``import sciml`` must stay free of heavy imports.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DatasetError
from ..fields import Grid

__all__ = [
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "REQUIRED_ATTRS",
    "DatasetInfo",
    "write_attrs",
    "read_attrs",
    "open_dataset_file",
    "check_layout",
    "shard_checksum",
    "partial_path",
    "PARTIAL_SUFFIX",
    "fsync_path",
]

SCHEMA_NAME = "sciml-grid-dataset"
"""Value of the root ``schema`` attribute: how a reader recognises one of our files."""

SCHEMA_VERSION = 1
"""Newest layout this version of sciml writes and reads; files with a larger number are refused."""

REQUIRED_ATTRS = (
    "schema",
    "schema_version",
    "problem",
    "fingerprint",
    "params",
    "grid",
    "n",
    "seed",
    "shard_size",
    "n_shards",
    "input_names",
    "output_names",
    "complete",
)
"""Root attributes every dataset file must carry (others, like ``created``, are informative)."""

_JSON_KEY = "_json_attrs"
PARTIAL_SUFFIX = ".partial"


def partial_path(path: str | os.PathLike[str]) -> Path:
    """The temporary name a dataset is written under until it is complete (same directory)."""
    path = Path(path)
    return path.with_name(path.name + PARTIAL_SUFFIX)


# -- attributes ------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """numpy scalars and strings read back from HDF5 as plain Python values."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def write_attrs(obj: Any, values: Mapping[str, Any]) -> None:
    """Write ``values`` as HDF5 attributes of ``obj`` (a File, Group or Dataset).

    Numbers, booleans and strings are stored natively (readable by any HDF5 tool); dicts, lists,
    tuples and None are stored as JSON strings and recorded in ``_json_attrs``.
    """
    json_keys = set(json.loads(obj.attrs[_JSON_KEY])) if _JSON_KEY in obj.attrs else set()
    for key, value in values.items():
        if not isinstance(key, str) or not key or key == _JSON_KEY:
            raise DatasetError(f"write_attrs: expected a non-empty attribute name, got {key!r}")
        if isinstance(value, (dict, list, tuple)) or value is None:
            try:
                obj.attrs[key] = json.dumps(value, sort_keys=True)
            except (TypeError, ValueError) as exc:
                raise DatasetError(
                    f"write_attrs: attribute {key!r} is not JSON-serialisable ({exc})"
                ) from None
            json_keys.add(key)
        elif isinstance(value, (bool, np.bool_)):
            obj.attrs[key] = np.bool_(value)
            json_keys.discard(key)
        elif isinstance(value, (int, float, str, np.integer, np.floating)):
            obj.attrs[key] = value
            json_keys.discard(key)
        else:
            raise DatasetError(
                f"write_attrs: attribute {key!r} must be a number, bool, string, list or dict, "
                f"got {type(value).__name__}"
            )
    obj.attrs[_JSON_KEY] = json.dumps(sorted(json_keys))


def read_attrs(obj: Any) -> dict[str, Any]:
    """Read the attributes of ``obj`` back as plain Python values (JSON ones decoded)."""
    raw = {key: _plain(obj.attrs[key]) for key in obj.attrs}
    json_keys = json.loads(raw.pop(_JSON_KEY, "[]"))
    for key in json_keys:
        if key in raw:
            try:
                raw[key] = json.loads(raw[key])
            except (TypeError, ValueError) as exc:
                raise DatasetError(f"attribute {key!r} is marked JSON but does not parse ({exc})") from None
    return raw


# -- checks ----------------------------------------------------------------------------------------
def shard_checksum(arrays: Iterable[np.ndarray]) -> int:
    """CRC32 of the bytes of ``arrays`` (float32, C order) in the given order.

    Written next to every shard so that a resumed generation can tell a shard that reached the
    disk intact from one damaged by a crash.
    """
    crc = 0
    for arr in arrays:
        crc = zlib.crc32(np.ascontiguousarray(arr, dtype=np.float32).data, crc)
    return crc


def check_layout(f: Any, attrs: Mapping[str, Any]) -> list[str]:
    """Return what is wrong with the groups and datasets of an open file (empty when fine)."""
    problems: list[str] = []
    missing = [key for key in REQUIRED_ATTRS if key not in attrs]
    if missing:
        return [f"missing attribute(s) {missing}"]
    try:
        grid = Grid.from_dict(attrs["grid"])
    except Exception as exc:  # any malformed grid record means the file cannot be used
        return [f"attribute 'grid' is not a grid ({exc})"]
    n, shapes = attrs["n"], attrs.get("array_shapes") or {}
    for group, names in (("inputs", attrs["input_names"]), ("outputs", attrs["output_names"])):
        if group not in f:
            problems.append(f"missing group /{group}")
            continue
        for name in names:
            key = f"{group}/{name}"
            if key not in f:
                problems.append(f"missing dataset /{key}")
            elif tuple(f[key].shape) != (expected := (n, *shapes.get(name, (1, *grid.shape)))):
                problems.append(f"/{key} has shape {tuple(f[key].shape)}, expected {expected}")
    if "coords" not in f:
        problems.append("missing dataset /coords")
    for key in ("_shards/done", "_shards/crc32"):
        if key not in f:
            problems.append(f"missing dataset /{key}")
        elif tuple(f[key].shape) != (attrs["n_shards"],):
            problems.append(f"/{key} has shape {tuple(f[key].shape)}, expected ({attrs['n_shards']},)")
    return problems


@dataclass(frozen=True)
class DatasetInfo:
    """What a reader needs to know about a validated dataset file."""

    path: Path
    attrs: dict[str, Any]
    grid: Grid
    n: int
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]

    @property
    def problem(self) -> str:
        return str(self.attrs["problem"])

    @property
    def fingerprint(self) -> str:
        return str(self.attrs["fingerprint"])


def _open_h5(path: Path, mode: str) -> Any:
    """h5py.File with the failure modes turned into DatasetError."""
    import h5py

    try:
        return h5py.File(path, mode)
    except BlockingIOError:
        raise DatasetError(
            f"{str(path)!r} is locked: another process has it open for writing (a generation still running?)"
        ) from None
    except OSError as exc:
        raise DatasetError(f"{str(path)!r} is not a readable HDF5 file ({exc})") from None


def open_dataset_file(path: str | os.PathLike[str], require_complete: bool = True) -> DatasetInfo:
    """Open a dataset file, check its schema and layout, and describe it.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`sciml.data.generate`.
    require_complete : bool
        Refuse files whose ``complete`` attribute is not True (interrupted generations).

    Raises
    ------
    DatasetError
        The file is missing, not HDF5, foreign (no sciml schema), from a newer sciml, incomplete,
        or its groups/datasets do not match its attributes. The message says which.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        hint = ""
        if partial_path(path).is_file():
            hint = (
                f"; an interrupted generation left {partial_path(path).name!r}: call "
                "sciml.data.generate again with the same settings to finish it"
            )
        raise DatasetError(f"no dataset file at {str(path)!r}{hint}")
    if not h5py.is_hdf5(path):
        raise DatasetError(f"{str(path)!r} is not an HDF5 file (no HDF5 signature); expected a sciml dataset")
    with _open_h5(path, "r") as f:
        try:
            attrs = read_attrs(f)
        except (OSError, RuntimeError, ValueError) as exc:
            raise DatasetError(
                f"{str(path)!r}: attributes cannot be read ({exc}); the file is corrupt"
            ) from None
        if attrs.get("schema") != SCHEMA_NAME:
            raise DatasetError(
                f"{str(path)!r} is a foreign HDF5 file: attribute 'schema' is {attrs.get('schema')!r}, "
                f"expected {SCHEMA_NAME!r} (top-level entries: {sorted(f.keys())})"
            )
        version = attrs.get("schema_version")
        if not isinstance(version, int) or version < 1:
            raise DatasetError(f"{str(path)!r}: expected an integer schema_version >= 1, got {version!r}")
        if version > SCHEMA_VERSION:
            raise DatasetError(
                f"{str(path)!r} uses dataset schema version {version}; this sciml reads versions up to "
                f"{SCHEMA_VERSION}: upgrade sciml"
            )
        if require_complete and attrs.get("complete") is not True:
            raise DatasetError(
                f"{str(path)!r} is an incomplete file (attribute complete={attrs.get('complete')!r}); "
                "resume generation with sciml.data.generate using the same settings"
            )
        problems = check_layout(f, attrs)
    if problems:
        raise DatasetError(f"{str(path)!r} does not match the sciml dataset layout: {'; '.join(problems)}")
    return DatasetInfo(
        path=path,
        attrs=attrs,
        grid=Grid.from_dict(attrs["grid"]),
        n=int(attrs["n"]),
        input_names=tuple(attrs["input_names"]),
        output_names=tuple(attrs["output_names"]),
    )


def fsync_path(path: str | os.PathLike[str]) -> None:
    """fsync a file or a directory so that a following rename survives a power cut."""
    flags = (os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)) if Path(path).is_dir() else os.O_RDONLY
    try:
        fd = os.open(path, flags)
    except OSError:  # some platforms (Windows) cannot open directories; nothing more to do there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # e.g. directories on filesystems without fsync support; the rename is still atomic
    finally:
        os.close(fd)
