"""Parallel, sharded, resumable generation of grid datasets from a Problem's reference solver.

The ``n`` samples are cut into shards of ``shard_size`` consecutive samples. Shard ``k`` draws its
inputs from its own generator ``default_rng(SeedSequence(seed, spawn_key=(k,)))``, so a file depends
only on ``(problem, grid, n, seed, shard_size)``: not on the number of worker processes, on the order
in which shards finish, or on how many times the generation was interrupted and resumed.

Worker processes (:mod:`sciml.data.shards`) only compute; the main process alone writes the HDF5
file. The file is written under ``<path>.partial``; each shard's data are flushed before its
``/_shards/done`` flag, together with a CRC32 of what was written, so that after a crash (even
SIGKILL) a new call with the same settings keeps the shards that reached the disk intact and redoes
the others. ``complete=True`` is the last attribute written; the file is then fsynced and renamed to
``path`` (atomic on POSIX), so a file under the final name is always complete.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .._checks import check_positive_int
from .._progress import Progress
from ..errors import ConfigError, DatasetError, ProblemError
from ..fields import Grid
from ..problem import InverseProblem, Problem, load_problem
from .hdf5 import (
    SCHEMA_NAME,
    SCHEMA_VERSION,
    check_layout,
    fsync_path,
    open_dataset_file,
    partial_path,
    read_attrs,
    shard_checksum,
    write_attrs,
)
from .shards import produce_shards

__all__ = ["generate", "DEFAULT_SHARD_SIZE", "GENERATOR_SETTINGS"]

DEFAULT_SHARD_SIZE = 32
"""Samples per shard when none is given. Fixed (not derived from ``workers``) because the shard
size decides the random streams: the same seed must give the same file with any number of workers."""

GENERATOR_SETTINGS = {
    "bit_generator": "PCG64",
    "shard_seed": "SeedSequence(seed, spawn_key=(shard,))",
    "dtype": "float32",
    "layout": "(N, 1, *spatial) channels-first, one chunk per sample",
}
"""How samples are drawn and stored; part of the settings a resumed or reused file must match."""

ProgressArg = bool | Callable[[int, int], Any] | None


# -- settings --------------------------------------------------------------------------------------
def _settings(problem: Problem, grid: Grid, n: int, seed: int, shard_size: int) -> dict[str, Any]:
    """What a file must agree on to be reused or resumed, in the order differences are reported."""
    settings = {
        "problem": problem.name,
        "params": problem.params,
        "input_names": list(problem.input_names),
        "output_names": list(problem.outputs),
        "fingerprint": problem.fingerprint(),
        "grid": grid.to_dict(),
        "solve_grid": problem.solve_grid(grid).to_dict(),
        "n": n,
        "seed": seed,
        "shard_size": shard_size,
        "generator": GENERATOR_SETTINGS,
        "schema_version": SCHEMA_VERSION,
    }
    shapes = {name: problem.array_shape(name, grid) for name in (*problem.input_names, *problem.outputs)}
    shapes = {name: list(shape) for name, shape in shapes.items() if shape is not None}
    if shapes:  # only where some array is not a field on the grid: older files keep their settings
        settings["array_shapes"] = shapes
    # Through JSON once so that tuples become lists, exactly as they read back from the file.
    return json.loads(json.dumps(settings, default=str))


def _first_difference(wanted: dict[str, Any], found: dict[str, Any]) -> str | None:
    for key, value in wanted.items():
        have = found.get(key, "<missing>")
        if have != value:
            why = (
                " (the problem's input spaces, outputs or solve_stride changed)"
                if key == "fingerprint"
                else ""
            )
            return f"setting {key!r} differs{why}: requested {value!r}, the file has {have!r}"
    return None


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ConfigError(f"seed: expected an integer in [0, 2**63), got {seed!r}")
    return int(seed)


def _check_compression(compression: Any) -> tuple[str | None, int | None, str]:
    """(h5py compression, compression_opts, label stored in the file)."""
    if compression is None or compression == "none":
        return None, None, "none"
    if compression == "gzip":
        return "gzip", 4, "gzip:4"
    if compression == "lzf":
        return "lzf", None, "lzf"
    if (
        isinstance(compression, (int, np.integer))
        and not isinstance(compression, bool)
        and 0 <= compression <= 9
    ):
        return "gzip", int(compression), f"gzip:{int(compression)}"
    raise ConfigError(f"compression: expected None, 'gzip', 'lzf' or a gzip level 0-9, got {compression!r}")


def _check_progress(progress: Any) -> None:
    if progress is not None and not isinstance(progress, bool) and not callable(progress):
        raise ConfigError(f"progress: expected None, a bool or a callable(done, total), got {progress!r}")


def _check_solvable(problem: Problem) -> None:
    """Fail before creating any file when the problem cannot make data."""
    if type(problem).make_samples is not Problem.make_samples and not isinstance(problem, InverseProblem):
        return  # a custom make_samples: trust it
    solver = problem.forward if isinstance(problem, InverseProblem) else problem
    if solver is None or solver.reference is None:
        raise ProblemError(f"problem {problem.name!r} has no reference solver: it cannot make data")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


# -- the file --------------------------------------------------------------------------------------
def _reuse_existing(path: Path, settings: dict[str, Any]) -> None:
    """Accept a complete file with the same settings; refuse anything else."""
    try:
        info = open_dataset_file(path)
    except DatasetError as exc:
        raise DatasetError(f"{exc}; it cannot be reused: pass overwrite=True to replace it") from None
    diff = _first_difference(settings, info.attrs)
    if diff is not None:
        raise DatasetError(
            f"{str(path)!r} exists with other settings: {diff}; pass overwrite=True to replace it "
            "or choose another path"
        )


def _open_partial(tmp: Path, settings: dict[str, Any]) -> tuple[Any, np.ndarray] | None:
    """Open an interrupted generation for resuming: ``(file, shards done)``, or None if unusable.

    A file that HDF5 cannot open, or whose layout is damaged, is deleted with a warning (it only
    ever held a partial result). Shards whose data no longer match their checksum are redone.
    """
    import h5py

    try:
        f = h5py.File(tmp, "r+")
    except BlockingIOError:
        raise DatasetError(
            f"{str(tmp)!r} is locked by another process: is another generation of this file running?"
        ) from None
    except OSError as exc:
        warnings.warn(f"{str(tmp)!r} is unreadable ({exc}); starting over", RuntimeWarning, stacklevel=3)
        tmp.unlink()
        return None
    try:
        attrs = read_attrs(f)
        problems = [] if attrs.get("schema") == SCHEMA_NAME else [f"schema is {attrs.get('schema')!r}"]
        problems = problems or check_layout(f, attrs)
        if not problems:
            diff = _first_difference(settings, attrs)
            if diff is not None:
                f.close()
                raise DatasetError(
                    f"refusing to append to {str(tmp)!r}, an interrupted generation made with other "
                    f"settings: {diff}; pass overwrite=True to discard it"
                )
            done = f["_shards/done"][:].astype(bool)
            crc = f["_shards/crc32"][:]
    except DatasetError:
        raise
    except Exception as exc:  # HDF5 raises several types for damaged metadata
        problems = [f"{type(exc).__name__}: {exc}"]
    if problems:
        f.close()
        warnings.warn(
            f"{str(tmp)!r} is damaged ({'; '.join(problems)}); starting over", RuntimeWarning, stacklevel=3
        )
        tmp.unlink()
        return None
    size, n = settings["shard_size"], settings["n"]
    for shard in np.flatnonzero(done):
        rows = slice(shard * size, min(n, (shard + 1) * size))
        try:
            arrays = [f[f"inputs/{name}"][rows] for name in settings["input_names"]]
            arrays += [f[f"outputs/{name}"][rows] for name in settings["output_names"]]
            intact = shard_checksum(arrays) == int(crc[shard])
        except Exception:  # an unreadable chunk: redo the shard
            intact = False
        if not intact:
            warnings.warn(
                f"shard {shard} of {str(tmp)!r} is damaged; redoing it", RuntimeWarning, stacklevel=3
            )
            done[shard] = False
    return f, done


def _create_partial(
    tmp: Path, settings: dict[str, Any], problem: Problem, grid: Grid, compression: tuple
) -> Any:
    import h5py

    from .. import __version__

    n, n_shards = settings["n"], math.ceil(settings["n"] / settings["shard_size"])
    algorithm, level, label = compression
    f = h5py.File(tmp, "w")
    try:
        for group, names in (("inputs", problem.input_names), ("outputs", problem.outputs)):
            g = f.create_group(group)
            for name in names:
                shape = problem.array_shape(name, grid) or (1, *grid.shape)  # fields get a channel axis
                # NaN fill: samples never written read as NaN, not as plausible zeros.
                g.create_dataset(
                    name,
                    shape=(n, *shape),
                    dtype="f4",
                    chunks=(1, *shape),
                    compression=algorithm,
                    compression_opts=level,
                    fillvalue=np.nan,
                )
        f.create_dataset("coords", data=np.moveaxis(grid.coords(), -1, 0))
        shards = f.create_group("_shards")
        shards.create_dataset("done", data=np.zeros(n_shards, dtype=np.uint8))
        shards.create_dataset("crc32", data=np.zeros(n_shards, dtype=np.uint32))
        versions = {
            "sciml": __version__,
            "numpy": np.__version__,
            "h5py": h5py.__version__,
            "python": platform.python_version(),
        }
        write_attrs(
            f,
            {
                "schema": SCHEMA_NAME,
                **settings,
                "n_shards": n_shards,
                "problem_description": json.loads(json.dumps(problem.describe(), default=str)),
                "compression": label,
                "sciml_version": __version__,
                "versions": versions,
                "created": _now(),
                "complete": False,
            },
        )
        f.flush()
    except BaseException:
        f.close()
        tmp.unlink(missing_ok=True)
        raise
    return f


def _write_shard(f: Any, shard: int, start: int, inputs: dict, outputs: dict, problem: Problem) -> None:
    arrays = []
    for group, values, names in (
        ("inputs", inputs, problem.input_names),
        ("outputs", outputs, problem.outputs),
    ):
        for name in names:
            target = f[group][name]  # a field gains its channel axis, a measurement array keeps its shape
            target[start : start + len(values[name])] = values[name].reshape(len(values[name]), *target.shape[1:])
            arrays.append(values[name])
    f["_shards/crc32"][shard] = shard_checksum(arrays)
    f.flush()  # data before the flag: a set flag always means the data reached the file
    f["_shards/done"][shard] = 1
    f.flush()


class _Progress:
    """Progress over samples: a tqdm bar on a terminal, a plain line every ~15 s elsewhere (logs, CI,
    pipes) through the Trainer's :class:`~sciml._progress.Progress`; ``False`` silences it, and a
    user callback(done, total) replaces it."""

    def __init__(self, progress: ProgressArg, total: int, initial: int, desc: str) -> None:
        self.done, self.total = initial, total
        self.callback = progress if callable(progress) else None
        mode = "off" if self.callback is not None or progress is False else ("bar" if progress is True else "auto")
        self.shown = Progress(total, initial, mode=mode, label=desc, unit="sample")

    def update(self, count: int) -> None:
        self.done += count
        self.shown.update(self.done)
        if self.callback is not None:
            self.callback(self.done, self.total)

    def close(self) -> None:
        self.shown.close()


def generate(
    problem: Problem | str | os.PathLike[str],
    n: int,
    grid: Grid | int | None = None,
    *,
    seed: int = 0,
    path: str | os.PathLike[str] | None = None,
    workers: int = 1,
    shard_size: int | None = None,
    progress: ProgressArg = None,
    compression: str | int | None = None,
    overwrite: bool = False,
) -> Path:
    """Make ``n`` samples of ``problem`` with its reference solver and store them in an HDF5 file.

    Parameters
    ----------
    problem : Problem, or str / path-like
        A Problem, or a built-in problem name / problem file path for :func:`sciml.load_problem`.
        Worker processes rebuild a problem that was loaded from a file by loading the file; other
        problems are pickled, and if that fails the generation runs serially with a warning.
    n : int
        Number of samples.
    grid : Grid or int, optional
        Where the data live: a Grid, a resolution (nodes per axis of the problem's default grid
        box) or None for the default grid. Data are solved on ``problem.solve_grid(grid)``.
    seed : int
        Base seed; shard ``k`` uses ``default_rng(SeedSequence(seed, spawn_key=(k,)))``.
    path : str or path-like, optional
        Output file; ``<problem>_<shape>_n<n>_seed<seed>.h5`` in the working directory by default.
    workers : int
        Worker processes (spawned, one BLAS thread each). The result does not depend on it. Scripts
        that use workers need the usual ``if __name__ == "__main__":`` guard of multiprocessing.
    shard_size : int, optional
        Samples per shard (default :data:`DEFAULT_SHARD_SIZE`); part of the settings because it
        decides the random streams.
    progress : bool or callable, optional
        None: a tqdm bar when stderr is a terminal, else a plain line every ~15 s (logs, CI);
        True: the bar; False: nothing; a callable is called as ``progress(samples_done, n)`` after
        each shard is safely written (and replaces the bar and the lines).
    compression : {None, "gzip", "lzf"} or int
        HDF5 filter (an int is a gzip level). Not part of the compared settings: a resumed file
        keeps the layout it was created with.
    overwrite : bool
        Replace an existing file (or discard an interrupted one) made with other settings.

    Returns
    -------
    Path
        ``path``. If a complete file with the same settings is already there, it is returned at
        once; an interrupted generation (``path.partial``) with the same settings is resumed.

    Raises
    ------
    DatasetError
        ``path`` (or ``path.partial``) exists with other settings, or is not a sciml dataset, and
        ``overwrite`` is False; or a worker process died.
    """
    prob = load_problem(problem) if isinstance(problem, (str, os.PathLike)) else problem
    if not isinstance(prob, Problem):
        raise ConfigError(
            f"generate: expected a Problem, a problem name or a path, got {type(problem).__name__}"
        )
    n = check_positive_int("n", n)
    seed = _check_seed(seed)
    workers = check_positive_int("workers", workers)
    shard_size = DEFAULT_SHARD_SIZE if shard_size is None else check_positive_int("shard_size", shard_size)
    compression_spec = _check_compression(compression)
    _check_progress(progress)
    grid = prob.resolve_grid(grid)
    _check_solvable(prob)
    if path is None:
        path = f"{prob.name}_{'x'.join(map(str, grid.shape))}_n{n}_seed{seed}.h5"
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"generate: path {str(path)!r} is a directory; expected a file name")
    settings = _settings(prob, grid, n, seed, shard_size)
    if path.exists() and not overwrite:
        _reuse_existing(path, settings)
        return path

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(path)
    opened = None
    if tmp.exists():
        if overwrite:
            tmp.unlink()
        else:
            opened = _open_partial(tmp, settings)
    if opened is None:
        f = _create_partial(tmp, settings, prob, grid, compression_spec)
        done = np.zeros(math.ceil(n / shard_size), dtype=bool)
    else:
        f, done = opened
    bounds = {k: (k * shard_size, min(n, (k + 1) * shard_size) - k * shard_size) for k in range(len(done))}
    todo = [k for k in range(len(done)) if not done[k]]
    bar = _Progress(
        progress, n, sum(bounds[k][1] for k in range(len(done)) if done[k]), f"generate {prob.name}"
    )
    try:
        for shard, inputs, outputs in produce_shards(prob, todo, bounds, grid, seed, workers):
            try:
                _write_shard(f, shard, bounds[shard][0], inputs, outputs, prob)
            except Exception as exc:
                raise DatasetError(f"writing shard {shard} to {str(tmp)!r} failed ({exc})") from exc
            bar.update(bounds[shard][1])
        write_attrs(f, {"finished": _now()})
        write_attrs(f, {"complete": True})  # last: only a fully written file says complete
        f.flush()
    except BaseException as exc:
        if hasattr(exc, "add_note") and not isinstance(exc, (KeyboardInterrupt, SystemExit)):
            exc.add_note(f"the finished shards are kept in {str(tmp)!r}: call generate again to resume")
        raise
    finally:
        bar.close()
        f.close()
    fsync_path(tmp)
    os.replace(tmp, path)
    fsync_path(path.parent)
    return path
