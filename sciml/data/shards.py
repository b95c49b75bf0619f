"""Computing the shards of a dataset: seeding, checks, and the worker processes that run them.

Shard ``k`` of a generation with base seed ``seed`` draws from
``default_rng(SeedSequence(seed, spawn_key=(k,)))``: its samples depend on nothing else, which is
what makes a dataset identical for any number of workers and after any number of resumes.

Workers are started with the *spawn* method (forking a process that already runs torch or BLAS
threads can deadlock) and with one BLAS thread each. A problem loaded from a file is rebuilt in
each worker by loading that file again; any other problem travels as a pickle. When neither works
the shards are computed in the calling process, with a warning. Workers only compute: they return
float32 arrays and never touch the file. On Linux a worker ends with the process that started it
(``PR_SET_PDEATHSIG``): a killed generation leaves no worker finishing a long solve for no one.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
import sys
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np

from ..errors import DatasetError, NonFiniteError, ProblemError, ShapeError
from ..fields import Grid
from ..problem import Problem, load_problem

__all__ = ["shard_rng", "make_shard", "produce_shards", "source_file"]

Shard = tuple[int, dict[str, np.ndarray], dict[str, np.ndarray]]
"""``(shard index, {input: (count, *grid.shape) float32}, {output: ...})``."""

# Environment variables read by the BLAS/OpenMP runtimes when a process starts. Worker processes get
# 1 each: several workers each running a multi-threaded BLAS would oversubscribe the cores.
_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


# -- one shard -------------------------------------------------------------------------------------
def shard_rng(seed: int, shard: int) -> np.random.Generator:
    """The generator of shard ``shard`` for base seed ``seed`` (independent of every other shard)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(shard,)))


def _checked(
    values: Any, names: Sequence[str], kind: str, shard: int, start: int, shapes: dict[str, tuple[int, ...]]
) -> dict:
    """Shape/finiteness checks of one shard's arrays (``shapes``: the expected one per name); float32."""
    if not isinstance(values, dict) or set(values) != set(names):
        got = sorted(values) if isinstance(values, dict) else type(values).__name__
        raise ProblemError(f"make_samples returned {kind}s {got}, expected {sorted(names)}")
    out = {}
    for name in names:
        arr, shape = np.asarray(values[name], dtype=np.float64), shapes[name]
        if arr.shape != shape:
            raise ShapeError(f"{kind} {name!r} of shard {shard}", shape, arr.shape)
        # float32 overflow turns large finite values into Inf: check after the cast too.
        with np.errstate(over="ignore"):  # reported below, with the sample it happened in
            arr32 = arr.astype(np.float32)
        bad = ~np.isfinite(arr32).reshape(shape[0], -1).all(axis=1)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            what = "non-finite" if not np.isfinite(arr[first]).all() else "beyond float32 range"
            raise NonFiniteError(
                f"{kind} {name!r}: expected finite float32 values, got {what} values in "
                f"{int(bad.sum())} sample(s) of shard {shard}, first at sample {start + first}"
            )
        out[name] = arr32
    return out


def make_shard(problem: Problem, shard: int, start: int, count: int, grid: Grid, seed: int) -> Shard:
    """Make the ``count`` samples of shard ``shard`` (file rows ``start...``) on ``grid``.

    Raises NonFiniteError naming the sample if a value is NaN/Inf or overflows float32, and
    ShapeError/ProblemError if ``make_samples`` returns other names or shapes than declared.
    """
    try:
        inputs, outputs = problem.make_samples(count, grid, shard_rng(seed, shard))
    except Exception as exc:
        if hasattr(exc, "add_note"):  # Python >= 3.11
            exc.add_note(f"while making shard {shard} (samples {start} to {start + count - 1}, seed {seed})")
        raise
    def shapes(names: Sequence[str]) -> dict[str, tuple[int, ...]]:
        return {name: (count, *(problem.array_shape(name, grid) or grid.shape)) for name in names}

    return (
        shard,
        _checked(inputs, problem.input_names, "input", shard, start, shapes(problem.input_names)),
        _checked(outputs, problem.outputs, "output", shard, start, shapes(problem.outputs)),
    )


# -- worker processes ------------------------------------------------------------------------------
class _WorkerSetupError(RuntimeError):
    """A worker could not rebuild the problem; the parent then falls back to serial generation."""


_WORKER: dict[str, Any] = {}


def _end_with_parent(parent: int) -> None:
    """Linux: have the kernel send this process SIGTERM when its parent dies.

    A killed parent (SIGKILL, or SIGTERM, which runs no executor shutdown) otherwise leaves its
    workers running: one in a 845 x 845 Darcy solve went on for minutes, for no one. Elsewhere a
    worker notices only when it next reads its task queue.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # no prctl (another libc): fall back to the queue check
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _init_worker(payload: tuple[str, Any], fingerprint: str, parent: int) -> None:
    """Process initializer: end with the parent, one BLAS thread, then rebuild the problem (from its
    file or a pickle)."""
    _end_with_parent(parent)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1)  # for runtimes loaded before the environment could act
    except ImportError:
        pass
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    try:
        kind, data = payload
        problem = load_problem(data) if kind == "file" else pickle.loads(data)
        if problem.fingerprint() != fingerprint:
            raise ProblemError(
                f"the rebuilt problem has fingerprint {problem.fingerprint()}, expected {fingerprint} "
                "(was the problem object changed after it was loaded?)"
            )
        _WORKER["problem"] = problem
    except BaseException as exc:  # reported with the first task, where the parent can react to it
        _WORKER["error"] = f"{type(exc).__name__}: {exc}"


def _worker_shard(shard: int, start: int, count: int, grid: Grid, seed: int) -> Shard:
    if "error" in _WORKER:
        raise _WorkerSetupError(_WORKER["error"])
    return make_shard(_WORKER["problem"], shard, start, count, grid, seed)


@contextlib.contextmanager
def _single_threaded_env() -> Iterator[None]:
    """Set the BLAS thread variables to 1 while worker processes are started, then restore them."""
    saved = {key: os.environ.get(key) for key in _THREAD_VARS}
    os.environ.update({key: "1" for key in _THREAD_VARS})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def source_file(problem: Problem) -> str | None:
    """The file ``problem`` was loaded from by :func:`sciml.load_problem`, if it was."""
    return problem.source


def _parallel(
    payload: tuple[str, Any],
    fingerprint: str,
    todo: list[int],
    bounds: dict[int, tuple[int, int]],
    grid: Grid,
    seed: int,
    workers: int,
    finished: set[int],
) -> Iterator[Shard]:
    """Yield shards as worker processes finish them; at most ``2 * workers`` are in flight."""
    with _single_threaded_env():
        executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=mp.get_context("spawn"),
            initializer=_init_worker,
            initargs=(payload, fingerprint, os.getpid()),
        )
    queue = iter(todo)
    pending: dict[Future, int] = {}

    def submit_next() -> None:
        shard = next(queue, None)
        if shard is not None:
            start, count = bounds[shard]
            with _single_threaded_env():  # processes are started on demand, inside submit
                pending[executor.submit(_worker_shard, shard, start, count, grid, seed)] = shard

    try:
        for _ in range(2 * workers):
            submit_next()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                shard = pending.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool as exc:
                    raise DatasetError(
                        f"a worker process exited abruptly while making shard {shard}: it was killed (out of "
                        "memory?) or failed to start (see its traceback above; a script that uses workers "
                        "needs the `if __name__ == '__main__':` guard). The shards already written are kept: "
                        "call generate again (perhaps with fewer workers) to resume"
                    ) from exc
                finished.add(shard)
                yield result
                submit_next()
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def produce_shards(
    problem: Problem,
    todo: Sequence[int],
    bounds: dict[int, tuple[int, int]],
    grid: Grid,
    seed: int,
    workers: int = 1,
) -> Iterator[Shard]:
    """Yield ``(shard, inputs, outputs)`` for every shard in ``todo``, in order of completion.

    Parameters
    ----------
    problem : Problem
    todo : sequence of int
        Shard indices to make.
    bounds : dict
        ``shard -> (first row, number of samples)``.
    grid : Grid
        Where the samples live (they are solved on ``problem.solve_grid(grid)``).
    seed : int
        Base seed.
    workers : int
        Worker processes; 1 computes in this process.
    """
    workers = min(workers, len(todo))
    payload: tuple[str, Any] | None = None
    if workers > 1:
        source = source_file(problem)
        if source is not None:
            payload = ("file", source)
        else:
            try:
                payload = ("pickle", pickle.dumps(problem))
            except Exception as exc:  # lambdas, local functions, open handles...
                warnings.warn(
                    f"problem {problem.name!r} cannot be sent to worker processes ({type(exc).__name__}: "
                    f"{exc}); generating serially. Define it in a problem file and pass its path (or "
                    "load it with sciml.load_problem) to use workers.",
                    RuntimeWarning,
                    stacklevel=3,
                )
    finished: set[int] = set()
    if payload is not None:
        try:
            yield from _parallel(payload, problem.fingerprint(), todo, bounds, grid, seed, workers, finished)
            return
        except _WorkerSetupError as exc:
            warnings.warn(
                f"worker processes could not rebuild problem {problem.name!r} ({exc}); generating the "
                "remaining shards serially in this process",
                RuntimeWarning,
                stacklevel=3,
            )
    for shard in todo:
        if shard not in finished:
            start, count = bounds[shard]
            yield make_shard(problem, shard, start, count, grid, seed)
