"""Reading grid datasets: a lazy, fork-safe torch Dataset and plain numpy loading.

h5py handles must not cross a ``fork`` (the HDF5 library state is per process), so
:class:`GridDataset` opens its file on first use in each process and again whenever it finds itself
in a new process (DataLoader workers, forked or spawned). Only metadata are read at construction.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from .._checks import check_name, check_positive_int
from ..errors import ConfigError, DTypeError
from ..fields import Grid
from .hdf5 import DatasetInfo, open_dataset_file

__all__ = ["GridDataset", "GridArrays", "split_indices", "load_arrays"]

_INHERITED: list[Any] = []  # h5py handles inherited from a parent process, kept open on purpose


def _check_indices(indices: Any, n: int) -> np.ndarray:
    arr = np.asarray(indices)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise ConfigError(
            f"indices: expected a 1-D sequence of integers, got shape {arr.shape} dtype {arr.dtype}"
        )
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        raise ConfigError(f"indices: expected values in [0, {n}), got range [{arr.min()}, {arr.max()}]")
    return arr


def _names(kind: str, wanted: Sequence[str] | str | None, available: tuple[str, ...]) -> tuple[str, ...]:
    """The requested subset of names, in the file's (the problem's) order."""
    if wanted is None:
        return available
    if isinstance(wanted, str):
        wanted = [wanted]
    wanted = list(wanted)
    if not wanted:
        raise ConfigError(f"{kind}s: expected at least one name out of {list(available)}, got none")
    for name in wanted:
        check_name(kind, name, available)
    return tuple(name for name in available if name in wanted)


def _spatial_index(stride: int, ndim: int) -> tuple:
    return (Ellipsis,) + (slice(None, None, stride),) * ndim


def _read_rows(datasets: Sequence[Any], rows: np.ndarray, stride: int, ndim: int) -> np.ndarray:
    """Stack ``datasets[c][rows]`` as ``(len(rows), C, *spatial[::stride])`` float32.

    ``rows`` must be sorted and unique: they are read as runs of consecutive rows, one HDF5 read
    per run and dataset, which is what sequential and small random batches need.
    """
    index = _spatial_index(stride, ndim)
    parts = []
    for ds in datasets:
        runs = np.split(rows, np.flatnonzero(np.diff(rows) != 1) + 1) if rows.size else []
        blocks = [ds[int(run[0]) : int(run[-1]) + 1] for run in runs]
        block = np.concatenate(blocks, axis=0) if blocks else np.empty((0, *ds.shape[1:]), np.float32)
        parts.append(block[index])
    return np.ascontiguousarray(np.concatenate(parts, axis=1))


class GridDataset(Dataset):
    """Samples of a dataset file as ``{"x": (C_in, *spatial), "y": (C_out, *spatial), "index": i}``.

    Parameters
    ----------
    path : str or path-like
        A complete file from :func:`sciml.data.generate` (validated here: DatasetError otherwise).
    inputs, outputs : sequence of str, optional
        Which inputs/outputs to load (all by default). Channels are stacked in the problem's order,
        whatever the order given here; :attr:`input_names` and :attr:`output_names` tell it.
    stride : int
        Resolution subsampling on read, ``x[..., ::stride, ::stride]``; the stride must divide
        ``n - 1`` on every axis so that the coarse grid keeps the box (see :meth:`Grid.subsample`).
    indices : sequence of int, optional
        The samples of the file this dataset exposes (a split); all by default.
    dtype : torch.dtype
        Floating dtype of the returned tensors.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        inputs: Sequence[str] | str | None = None,
        outputs: Sequence[str] | str | None = None,
        stride: int = 1,
        indices: Sequence[int] | np.ndarray | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.info: DatasetInfo = open_dataset_file(path)
        self.path = self.info.path
        self.input_names = _names("input", inputs, self.info.input_names)
        self.output_names = _names("output", outputs, self.info.output_names)
        not_fields = sorted(set(self.info.attrs.get("array_shapes") or {}) & {*self.input_names, *self.output_names})
        if not_fields:
            raise ConfigError(
                f"{self.path}: {not_fields} hold arrays of shape "
                f"{[self.info.attrs['array_shapes'][k] for k in not_fields]} per sample, not fields on the grid; "
                "a GridDataset reads fields only (boundary measurements: sciml.inverse.MeasurementData)")
        self.stride = check_positive_int("stride", stride)
        self.grid: Grid = self.info.grid.subsample(self.stride)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise DTypeError(f"GridDataset dtype: expected a floating torch.dtype, got {dtype!r}")
        self.dtype = dtype
        self.indices = np.arange(self.info.n) if indices is None else _check_indices(indices, self.info.n)
        self._file: Any = None
        self._pid: int | None = None

    # -- metadata ------------------------------------------------------------------------------
    @property
    def attrs(self) -> dict[str, Any]:
        """The file's root attributes (problem, params, seed, grid, versions...)."""
        return dict(self.info.attrs)

    @property
    def n_inputs(self) -> int:
        return len(self.input_names)

    @property
    def n_outputs(self) -> int:
        return len(self.output_names)

    def __len__(self) -> int:
        return len(self.indices)

    def __repr__(self) -> str:
        return (
            f"GridDataset({str(self.path)!r}, n={len(self)}, inputs={list(self.input_names)}, "
            f"outputs={list(self.output_names)}, grid={self.grid!r})"
        )

    # -- file handle, one per process --------------------------------------------------------------
    def _handle(self) -> Any:
        pid = os.getpid()
        if self._file is None or self._pid != pid:
            import h5py

            self._forget_inherited()
            self._file = h5py.File(self.path, "r")
            self._pid = pid
        return self._file

    def _forget_inherited(self) -> None:
        """Set aside a handle inherited through fork without ever using or closing it.

        Closing it here would release the file lock that the child shares with its parent (the
        open file description survives the fork), so it is parked until the process ends.
        """
        if self._file is not None and self._pid != os.getpid():
            _INHERITED.append(self._file)
        self._file, self._pid = None, None

    def close(self) -> None:
        """Close this process's file handle (reopened automatically on the next read)."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._forget_inherited()

    def __enter__(self) -> GridDataset:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_file"], state["_pid"] = None, None  # spawned DataLoader workers reopen the file
        return state

    # -- reading -------------------------------------------------------------------------------
    def _rows(self, index: Any) -> np.ndarray:
        arr = np.asarray(index)
        if arr.size == 0:
            arr = arr.astype(np.int64)
        if arr.dtype.kind not in "iu":
            raise ConfigError(f"GridDataset index: expected integers, got {index!r}")
        n = len(self)
        if arr.size and (arr.min() < -n or arr.max() >= n):
            raise IndexError(f"GridDataset index out of range: expected [-{n}, {n}), got {index!r}")
        return self.indices[np.where(arr < 0, arr + n, arr)]

    def read(self, positions: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Read samples at ``positions`` of this dataset: ``(x, y, file_rows)`` numpy float32 arrays."""
        rows = self._rows(positions).reshape(-1)
        unique, inverse = np.unique(rows, return_inverse=True)
        f = self._handle()
        x = _read_rows([f["inputs"][k] for k in self.input_names], unique, self.stride, self.grid.ndim)
        y = _read_rows([f["outputs"][k] for k in self.output_names], unique, self.stride, self.grid.ndim)
        return x[inverse], y[inverse], rows

    def __getitem__(self, index: int) -> dict[str, Any]:
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise ConfigError(f"GridDataset[{index!r}]: expected an integer index")
        x, y, rows = self.read([index])
        return {
            "x": torch.from_numpy(x[0]).to(self.dtype),
            "y": torch.from_numpy(y[0]).to(self.dtype),
            "index": int(rows[0]),
        }

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """Batched fetching (used by DataLoader): one read per run of consecutive rows."""
        x, y, rows = self.read(list(indices))
        xt, yt = torch.from_numpy(x).to(self.dtype), torch.from_numpy(y).to(self.dtype)
        return [{"x": xt[i], "y": yt[i], "index": int(rows[i])} for i in range(len(rows))]

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All samples as two tensors ``(N, C_in, *spatial)`` and ``(N, C_out, *spatial)``."""
        x, y, _ = self.read(np.arange(len(self)))
        return torch.from_numpy(x).to(self.dtype), torch.from_numpy(y).to(self.dtype)


def split_indices(
    n: int, sizes: Sequence[float] | Sequence[int], seed: int | None = 0, shuffle: bool = True
) -> list[np.ndarray]:
    """Split ``range(n)`` into disjoint index sets.

    Parameters
    ----------
    n : int
        Number of samples.
    sizes : sequence of float or of int
        Fractions in (0, 1] summing to at most 1, or counts summing to at most ``n``. Samples left
        over are not used. Sizes come from rounding the cumulative fractions, so fractions summing
        to 1 use every sample.
    seed : int, optional
        Seed of the permutation when ``shuffle``.
    shuffle : bool
        Random split (default) or consecutive blocks, as in the FNO benchmarks' "first N train".

    Returns
    -------
    list of numpy arrays
        Sorted indices of each split (sorted for fast reading; a DataLoader shuffles anyway).
    """
    n = check_positive_int("n", n)
    sizes = list(sizes)
    if not sizes:
        raise ConfigError("split_indices: expected at least one size, got none")
    if all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in sizes):
        counts = [int(s) for s in sizes]
        if any(c <= 0 for c in counts) or sum(counts) > n:
            raise ConfigError(f"split_indices: expected positive counts summing to at most {n}, got {counts}")
    else:
        fractions = [float(s) for s in sizes]
        total = sum(fractions)
        if any(not 0 < f <= 1 for f in fractions) or total > 1 + 1e-9:
            raise ConfigError(
                f"split_indices: expected fractions in (0, 1] summing to at most 1, got {fractions}"
            )
        edges = np.rint(np.cumsum([0.0, *fractions]) * n).astype(int)
        if abs(total - 1) <= 1e-9:
            edges[-1] = n
        counts = np.diff(edges).tolist()
        if any(c <= 0 for c in counts):
            raise ConfigError(
                f"split_indices: fractions {fractions} of n={n} leave an empty split ({counts})"
            )
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    edges = np.cumsum([0, *counts])
    return [np.sort(order[a:b]) for a, b in zip(edges[:-1], edges[1:])]


class GridArrays(NamedTuple):
    """Result of :func:`load_arrays`."""

    x: np.ndarray
    y: np.ndarray
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    grid: Grid
    attrs: dict[str, Any]


def load_arrays(
    path: str | os.PathLike[str],
    inputs: Sequence[str] | str | None = None,
    outputs: Sequence[str] | str | None = None,
    stride: int = 1,
    indices: Sequence[int] | np.ndarray | None = None,
    dtype: Any = np.float32,
) -> GridArrays:
    """Load (part of) a dataset file into memory as numpy arrays ``(N, C, *spatial)``.

    Meant for small data and benchmarks; the arguments are those of :class:`GridDataset`.
    """
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise DTypeError(f"load_arrays dtype: expected a floating dtype, got {dtype}")
    ds = GridDataset(path, inputs, outputs, stride, indices)
    try:
        x, y, _ = ds.read(np.arange(len(ds)))
    finally:
        ds.close()
    return GridArrays(x.astype(dtype), y.astype(dtype), ds.input_names, ds.output_names, ds.grid, ds.attrs)
