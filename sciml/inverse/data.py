"""Boundary-measurement datasets: what :func:`sciml.data.generate` writes for an inverse problem whose
input is an array of measurements (``Problem.array_shapes``), read into memory.

A sample is ``{"m": (L, M), "y": (C, *grid.shape)}``: L measurements (one per probe or current
pattern) of M values (one per boundary node, counter-clockwise from the corner (0, 0)), and the C
unknown fields on the grid. Files are validated as every sciml dataset (layout, completeness,
checksums) by :func:`sciml.data.hdf5.open_dataset_file` before anything is read.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..data.hdf5 import open_dataset_file
from ..errors import ConfigError
from ..grid import Grid

__all__ = ["MeasurementData"]


class MeasurementData(Dataset):
    """The samples of a boundary-measurement dataset file, in memory.

    Parameters
    ----------
    path : path
        A complete dataset file made by :func:`sciml.data.generate` for a measurement problem.
    indices : sequence of int, optional
        The samples to keep (all by default), in this order.

    Attributes
    ----------
    m : torch.Tensor ``(N, L, M)`` float32
    y : torch.Tensor ``(N, C, *grid.shape)`` float32
    grid : Grid
        The grid of the unknown (whose boundary nodes the measurements live on).
    measurement_name : str
    output_names : tuple of str
    attrs : dict
        The file's attributes (problem, params, seed, versions, ...).
    """

    def __init__(self, path: str | os.PathLike[str], indices: Sequence[int] | np.ndarray | None = None) -> None:
        import h5py

        info = open_dataset_file(path)
        shapes = info.attrs.get("array_shapes") or {}
        arrays = [name for name in info.input_names if name in shapes]
        if len(info.input_names) != 1 or len(arrays) != 1:
            raise ConfigError(
                f"{info.path}: expected one input holding an array of measurements per sample (a problem with "
                f"array_shapes), got inputs {list(info.input_names)} with array shapes {shapes}; grid datasets "
                "are read with sciml.data.GridDataset")
        not_fields = [name for name in info.output_names if name in shapes]
        if not_fields:
            raise ConfigError(f"{info.path}: outputs {not_fields} are not fields on the grid")
        rows = np.arange(info.n) if indices is None else np.asarray(indices, dtype=np.int64)
        if rows.ndim != 1 or (rows.size and (rows.min() < 0 or rows.max() >= info.n)):
            raise ConfigError(f"MeasurementData indices: expected integers in [0, {info.n}), got {indices!r}")
        with h5py.File(info.path, "r") as f:
            m = np.asarray(f[f"inputs/{arrays[0]}"][()], dtype=np.float32)[rows]
            y = np.concatenate([np.asarray(f[f"outputs/{name}"][()], dtype=np.float32)[rows]
                                for name in info.output_names], axis=1)
        self.m, self.y = torch.from_numpy(np.ascontiguousarray(m)), torch.from_numpy(np.ascontiguousarray(y))
        self.grid: Grid = info.grid
        self.measurement_name = arrays[0]
        self.output_names = tuple(info.output_names)
        self.attrs: dict[str, Any] = dict(info.attrs)
        self.path = info.path

    @property
    def n_measurements(self) -> int:
        """L: measurements per sample."""
        return int(self.m.shape[1])

    @property
    def n_sensors(self) -> int:
        """M: values per measurement (boundary nodes)."""
        return int(self.m.shape[2])

    def __len__(self) -> int:
        return int(self.m.shape[0])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"m": self.m[i], "y": self.y[i]}

    def __getitems__(self, idx: Sequence[int]) -> list[dict[str, torch.Tensor]]:
        return [{"m": self.m[i], "y": self.y[i]} for i in idx]

    def subset(self, indices: Sequence[int] | np.ndarray) -> MeasurementData:
        """The samples ``indices`` of this set (sharing nothing with it)."""
        out = object.__new__(MeasurementData)
        out.__dict__.update(self.__dict__)
        index = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        out.m, out.y = self.m[index].clone(), self.y[index].clone()
        return out

    def __repr__(self) -> str:
        return (f"MeasurementData({str(self.path)!r}, n={len(self)}, {self.measurement_name}: "
                f"{self.n_measurements} x {self.n_sensors}, outputs {list(self.output_names)} on {self.grid!r})")
