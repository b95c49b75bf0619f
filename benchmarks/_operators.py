"""What the operator benchmarks share (``operators_darcy``, ``operators_burgers``, ``operators_inverse_darcy``).

One row = one method trained on one data set with its recipe. Every method trains through the
package's own pieces, exactly as ``sciml train`` does: the network from the model registry (DeepONet
from its CNN branch, below), :class:`~sciml.operators.OperatorTask` (per-channel Gaussian normalisers
fitted on the training split, loss on decoded outputs, per-sample relative L2) and the one
:class:`~sciml.train.Trainer` (seeded, checkpointed every epoch). Data are made once by
:func:`sciml.data.generate` (resumable) under ``runs/bench/data`` and held in memory.

A row reports ``params`` (trained real numbers; complex count twice), ``s_per_epoch`` (training steps
only, without evaluation and checkpoints: :mod:`sciml.train.runinfo`), ``epochs``, ``rel_l2_mean`` /
``rel_l2_median`` (per-sample relative L2 on the test split), ``rel_l2_mean_fine`` (the same at the finer
evaluation resolution, as a Solver answers there: grid-bound models through their training grid, see
:class:`~sciml.operators.OperatorTask`), ``rel_l2_mean_fine_direct`` (grid-bound models only: the network
called on the finer grid itself), ``infer_ms_per_sample`` (the whole test split in batches, normalisers
included, best of three passes after a warm-up) and ``reference_ms_per_sample`` (the problem's
reference solver on the same test inputs in the same process, as it makes data: on the solve grid,
then subsampled; the test inputs are brought to the solve grid by nearest-node upsampling, which for
the piecewise-constant Darcy coefficient is the same function).

Resuming: finished rows live in ``runs/bench/<benchmark>.rows.json`` with their recipes (:class:`Rows`);
a new run with the same data settings keeps every row whose recipe is unchanged, and a row killed
mid-training continues from its last checkpoint in ``runs/bench/<benchmark>/<row>`` (the Trainer's exact
resume). The results table holds every stored row, so it can be filled by several runs or processes.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs" / "bench"

TABLE_COLUMNS = ("method", "seed", "resolution", "noise", "measurements", "params", "s_per_epoch", "epochs",
                 "rel_l1_median", "rel_l1_mean", "rel_l2_mean", "rel_l2_median", "ms_per_reconstruction", "samples",
                 "rel_l2_mean_fine", "rel_l2_mean_fine_direct", "fine_resolution", "infer_ms_per_sample",
                 "reference_ms_per_sample", "speedup", "threads", "cpu")


# -- data ------------------------------------------------------------------------------------------
class ArrayData(Dataset):
    """In-memory ``{"x": (C_in, *s), "y": (C_out, *s)}`` samples with the metadata OperatorTask reads."""

    def __init__(self, x: np.ndarray, y: np.ndarray, grid: Any, input_names: Sequence[str],
                 output_names: Sequence[str], attrs: dict[str, Any] | None = None) -> None:
        self.x, self.y = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
        self.grid, self.input_names, self.output_names = grid, tuple(input_names), tuple(output_names)
        self.attrs = dict(attrs or {})

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "y": self.y[i]}

    def __getitems__(self, idx: Sequence[int]) -> list[dict[str, torch.Tensor]]:
        return [{"x": self.x[i], "y": self.y[i]} for i in idx]


def dataset_file(problem: Any, n: int, resolution: int, seed: int, workers: int) -> Path:
    """``generate(problem, n, resolution, seed)`` into ``runs/bench/data`` (reused when there, resumed
    when interrupted)."""
    from sciml.data import generate

    path = RUNS / "data" / f"{problem.name}_{resolution}_n{n}_seed{seed}.h5"
    t0 = time.perf_counter()
    generate(problem, n, problem.resolve_grid(resolution), seed=seed, path=path, workers=workers, progress=None)
    if time.perf_counter() - t0 > 1:
        print(f"[data] {path.name}: {time.perf_counter() - t0:.0f} s", flush=True)
    return path


def load(path: Path, indices: Sequence[int] | np.ndarray, stride: int = 1) -> ArrayData:
    """Samples ``indices`` of a dataset file at ``stride``, in memory."""
    from sciml.data import load_arrays

    arr = load_arrays(path, stride=stride, indices=np.asarray(indices))
    return ArrayData(arr.x, arr.y, arr.grid, arr.input_names, arr.output_names, arr.attrs)


def stride_between(fine: int, coarse: int) -> int:
    if coarse < 2 or (fine - 1) % (coarse - 1):
        raise SystemExit(f"resolution {coarse} is not a stride of {fine} (need (fine - 1) % (coarse - 1) == 0)")
    return (fine - 1) // (coarse - 1)


# -- DeepONet on grids -----------------------------------------------------------------------------
class CNNBranch(nn.Module):
    """Strided 3-point convolutions (ReLU) halving the grid, then ``Linear, ReLU, Linear`` to ``p``."""

    def __init__(self, in_channels: int, sensors: Sequence[int], p: int, channels: Sequence[int], hidden: int):
        super().__init__()
        conv = {1: nn.Conv1d, 2: nn.Conv2d}[len(sensors)]
        layers: list[nn.Module] = []
        c, shape = in_channels, tuple(sensors)
        for width in channels:
            layers += [conv(c, width, 3, stride=2, padding=1), nn.ReLU()]
            c, shape = width, tuple((n + 1) // 2 for n in shape)
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Sequential(nn.Linear(c * math.prod(shape), hidden), nn.ReLU(), nn.Linear(hidden, p))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(u))


class GridDeepONet(nn.Module):
    """DeepONet with a CNN branch, answering on a grid: ``(B, C, *s) -> (B, 1, *s_out)``.

    The branch reads the input at its training grid (``sensors``); an input on a finer grid of which the
    sensors are a stride is read there (DeepONet is not discretisation invariant in its input). The
    trunk answers at the nodes of the input grid, or of ``out_size`` nodes per axis (inverse problems),
    so the output follows the resolution asked for, as DeepONet's trunk allows. On ``periodic_axes`` the grid
    holds no repeated end node (OperatorTask drops it): ``n`` nodes at ``i / n``, strided by ``n / m``.
    """

    def __init__(self, in_channels: int, sensors: Sequence[int], p: int = 128,
                 channels: Sequence[int] = (16, 32, 64, 128), hidden: int = 256, trunk: Sequence[int] = (128,) * 3,
                 out_size: int | None = None, periodic_axes: Sequence[int] = ()) -> None:
        super().__init__()
        from sciml.models.deeponet import DeepONet

        self.sensors, self.ndim, self.out_size = tuple(sensors), len(sensors), out_size
        self.periodic = tuple(a in tuple(periodic_axes) for a in range(self.ndim))
        branch = CNNBranch(in_channels, sensors, p, channels, hidden)
        self.net = DeepONet(branch, [self.ndim, *trunk, p], activation="relu",
                            branch_shape=(in_channels, *self.sensors))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spatial = tuple(x.shape[2:])
        if spatial != self.sensors:
            # (intervals of the input, intervals of the sensors) per axis: periodic axes hold no end node
            pairs = [(n, m) if p else (n - 1, m - 1) for n, m, p in zip(spatial, self.sensors, self.periodic)]
            strides = {n // m for n, m in pairs}
            if len(strides) != 1 or any(n % m for n, m in pairs):
                raise ValueError(f"GridDeepONet: input grid {spatial} does not hold the sensors {self.sensors}")
            s = strides.pop()
            x = x[(slice(None), slice(None)) + (slice(None, None, s),) * self.ndim]
        out = spatial if self.out_size is None else (self.out_size,) * self.ndim
        axes = [torch.arange(n, dtype=x.dtype, device=x.device) / n if p
                else torch.linspace(0, 1, n, dtype=x.dtype, device=x.device) for n, p in zip(out, self.periodic)]
        points = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, self.ndim)
        return self.net(x.contiguous(), points).reshape(x.shape[0], 1, *out)


def build_network(method: str, recipe: dict[str, Any], seed: int, sensors: Sequence[int], in_channels: int = 1,
                  out_size: int | None = None, periodic_axes: Sequence[int] = ()) -> nn.Module:
    """The row's network with initial weights drawn from ``seed``."""
    from sciml.workflows.common import build_seeded_model

    kwargs = dict(recipe["model"])
    if method == "deeponet":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return GridDeepONet(in_channels, sensors, out_size=out_size, periodic_axes=periodic_axes, **kwargs)
    return build_seeded_model(recipe.get("model_name", method), seed, in_channels=in_channels, out_channels=1, **kwargs)


# -- timing ----------------------------------------------------------------------------------------
@torch.no_grad()
def infer_ms_per_sample(task: Any, x: torch.Tensor, batch: int, repeats: int = 3) -> float:
    """Milliseconds per sample of ``task(x)`` in batches of ``batch`` (best of ``repeats`` passes)."""
    task.eval()
    task(x[:batch])  # warm-up: allocations, FFT plans
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(0, len(x), batch):
            task(x[i : i + batch])
        best = min(best, time.perf_counter() - t0)
    return 1000 * best / len(x)


def reference_ms_per_sample(problem: Any, inputs: dict[str, np.ndarray], grid: Any) -> float:
    """The problem's reference solver as it makes data for ``grid`` (solve grid, then stride), per sample.

    ``inputs`` ``{name: (k, *grid.shape)}`` are brought to the solve grid by nearest-node upsampling.
    """
    fine = problem.solve_grid(grid)
    index = [np.rint(np.linspace(0, n - 1, m)).astype(int) for n, m in zip(grid.shape, fine.shape)]
    up = {}
    for name, v in inputs.items():
        for axis, idx in enumerate(index):
            v = np.take(v, idx, axis=axis + 1)
        up[name] = np.ascontiguousarray(v, dtype=np.float64)
    k = next(iter(inputs.values())).shape[0]
    t0 = time.perf_counter()
    problem.solve_batch(up, fine)
    return 1000 * (time.perf_counter() - t0) / k


# -- one row ---------------------------------------------------------------------------------------
def train_row(row_id: str, method: str, recipe: dict[str, Any], train: ArrayData, tests: dict[str, ArrayData],
              *, bench: str, seed: int, infer_batch: int, output_size: int | None = None,
              progress: Any = None) -> dict[str, Any]:
    """Train one method with its recipe; errors on ``tests`` (``"test"`` and optionally ``"fine"``)."""
    from sciml.operators import OperatorTask
    from sciml.train import Trainer

    run_dir = RUNS / bench / row_id
    periodic = tuple(recipe.get("periodic_axes", ()))
    # OperatorTask drops the repeated end node of a periodic axis: the network sees one node fewer there.
    sensors = tuple(n - 1 if axis in periodic else n for axis, n in enumerate(train.grid.shape))
    network = build_network(method, recipe, seed, sensors, train.x.shape[1], out_size=output_size,
                            periodic_axes=periodic)
    task = OperatorTask.from_dataset(network, train, loss=recipe["loss"], h1_weight=recipe.get("h1_weight", 1.0),
                                     output_size=output_size, problem={"name": bench, "params": {}},
                                     periodic_axes=recipe.get("periodic_axes", ()))
    epochs, batch = recipe["epochs"], recipe["batch_size"]
    steps_per_epoch = -(-len(train) // batch)
    _warm_up(task, train, batch)
    trainer = Trainer(
        task, train_data=train, val_data={"test": tests["test"]}, batch_size=batch, val_batch_size=50,
        epochs=epochs, optimizer=recipe.get("optimizer", "adam"), lr=recipe["lr"],
        weight_decay=recipe.get("weight_decay", 0.0), schedule=recipe.get("schedule"),
        schedule_kwargs=recipe.get("schedule_kwargs"), schedule_interval=recipe.get("schedule_interval", "step"),
        grad_clip=recipe.get("grad_clip"), device="cpu", seed=seed, out_dir=run_dir,
        checkpoint_every=steps_per_epoch, keep_checkpoints=1, log_every=steps_per_epoch,
        eval_every=steps_per_epoch * max(1, epochs // 5), progress=progress, resume=True,
    )
    result = trainer.fit()
    from _common import cpu_model

    # Tables grow over sessions that may land on other machines: every row names the CPU it was timed on.
    row: dict[str, Any] = {"method": method, "params": result.params, "s_per_epoch": result.s_per_epoch,
                           "epochs": result.epochs, "train_seconds": result.train_seconds, "cpu": cpu_model()}
    for name, data in tests.items():
        errors = task.per_sample_errors(DataLoader(data, batch_size=50))
        suffix = "" if name == "test" else "_fine"
        row[f"rel_l2_mean{suffix}"], row[f"rel_l2_median{suffix}"] = float(errors.mean()), float(np.median(errors))
        if suffix and not getattr(task, "resolution_invariant", True):
            # What the network itself does on the finer grid, without OperatorTask's detour through
            # the training grid: why that detour exists.
            task.resample_off_grid = False
            row["rel_l2_mean_fine_direct"] = float(task.per_sample_errors(DataLoader(data, batch_size=50)).mean())
            task.resample_off_grid = True
    row["infer_ms_per_sample"] = infer_ms_per_sample(task, tests["test"].x, infer_batch)
    if result.s_per_epoch is None:  # resumed after the last step: nothing was timed in this process
        row["s_per_epoch"] = _logged_s_per_epoch(run_dir / "metrics.jsonl")
    return row


def _warm_up(task: Any, train: ArrayData, batch: int) -> None:
    """Two training steps of a throw-away copy: one-off costs (thread pools, allocations, convolution
    primitives) must not be charged to the first epoch of whichever row runs first."""
    twin = copy.deepcopy(task).train()
    for _ in range(2):
        sum(twin.loss_terms({"x": train.x[:batch], "y": train.y[:batch]}).values()).backward()


def _logged_s_per_epoch(path: Path) -> float | None:
    events = [json.loads(line) for line in path.read_text().splitlines() if '"timing"' in line] if path.is_file() else []
    values = [e["s_per_epoch"] for e in events if e.get("s_per_epoch") is not None]
    return values[-1] if values else None


# -- the driver ------------------------------------------------------------------------------------
class Rows:
    """Finished rows by id, kept in ``runs/bench/<benchmark>.rows.json`` across runs and processes.

    A row is kept with the recipe it was trained with. A later run with the same *shared* settings
    (data, splits, seed) reuses every finished row whose recipe is unchanged and resumes a row killed
    in training from its checkpoint in ``run_root/<row>``; a row asked for with another recipe is
    trained afresh (its directory cleared). Other shared settings discard everything. So a table can
    grow over several runs (``--resolutions 43`` today, ``85`` tomorrow) and two processes can fill
    one table side by side (``--methods mgno`` beside ``--methods fno``): every save merges with
    what is on disk under a file lock.
    """

    def __init__(self, out: Path, settings: dict[str, Any], run_root: Path) -> None:
        self.path = run_root.with_name(run_root.name + ".rows.json")
        self.run_root = run_root
        self.settings = json.loads(json.dumps(settings, default=str))
        with self._locked():
            saved = self._read()
            if saved and saved.get("settings") != self.settings:
                print(f"[fresh] other shared settings in {self.path.name}: clearing {run_root}", flush=True)
                shutil.rmtree(run_root, ignore_errors=True)
                saved = {}
            if not saved:
                self._write({"settings": self.settings, "rows": {}})
            else:
                print(f"[resume] {len(saved['rows'])} finished row(s) in {self.path.name}", flush=True)

    def run(self, row_id: str, recipe: dict[str, Any], make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The row ``row_id`` trained with ``recipe``: stored, or made now by ``make()`` and stored."""
        recipe = json.loads(json.dumps(recipe, default=str))
        stored = self.stored().get(row_id)
        if stored is None or stored.get("recipe") != recipe:
            run_dir = self.run_root / row_id
            marker = run_dir / "recipe.json"
            if run_dir.is_dir() and (not marker.is_file() or json.loads(marker.read_text()) != recipe):
                print(f"[fresh] {row_id}: checkpoints of another recipe, clearing {run_dir}", flush=True)
                shutil.rmtree(run_dir)
            run_dir.mkdir(parents=True, exist_ok=True)
            marker.write_text(json.dumps(recipe))
            t0 = time.perf_counter()
            row = make()
            row["wall_s"] = round(time.perf_counter() - t0, 1)
            stored = {**row, "recipe": recipe}
            with self._locked():  # merge with rows other processes finished meanwhile
                saved = self._read() or {"settings": self.settings, "rows": {}}
                saved["rows"][row_id] = stored
                self._write(saved)
        print(summary_line(row_id, stored), flush=True)
        return stored

    def stored(self) -> dict[str, dict[str, Any]]:
        """Every finished row of these shared settings, by id."""
        saved = self._read()
        return saved["rows"] if saved and saved.get("settings") == self.settings else {}

    def table(self, order: Callable[[dict[str, Any]], Any]) -> list[dict[str, Any]]:
        """The stored rows sorted by ``order(row)``."""
        return sorted(self.stored().values(), key=order)

    def _read(self) -> dict[str, Any]:
        return json.loads(self.path.read_text()) if self.path.is_file() else {}

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, default=str))
        tmp.replace(self.path)  # atomic: a kill never leaves half a file

    @contextlib.contextmanager
    def _locked(self) -> Any:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def parse_epochs_of(values: Sequence[str], methods: Sequence[str]) -> dict[str, int]:
    """``["galerkin=30", ...]`` as ``{"galerkin": 30}``: epochs of one method overriding ``--epochs``."""
    out = {}
    for value in values:
        method, _, epochs = value.partition("=")
        if method not in methods or not epochs.isdigit() or int(epochs) < 1:
            raise SystemExit(f"--epochs-of: expected METHOD=EPOCHS with METHOD in {list(methods)} and EPOCHS a "
                             f"positive integer, got {value!r}")
        out[method] = int(epochs)
    return out


def add_run_arguments(parser: Any, n_train: int = 1000, reference_samples: int = 10) -> None:
    """The options every operator benchmark takes: split sizes, seed, threads, data workers, timing
    samples, inference batch and the output folder (defaults per benchmark where its recipe differs)."""
    parser.add_argument("--n-train", type=int, default=n_train)
    parser.add_argument("--n-test", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="processes generating data")
    parser.add_argument("--reference-samples", type=int, default=reference_samples)
    parser.add_argument("--infer-batch", type=int, default=50)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--epochs-of", nargs="+", default=[], metavar="METHOD=EPOCHS",
                        help="epochs of one method, overriding --epochs (e.g. galerkin=30)")


def start(args: Any) -> tuple[dict[str, Any], str]:
    """Set the torch threads of ``args.threads``; the machine's description and the benchmark's name
    (``args.out``'s stem: training directories go to ``runs/bench/<name>/<row>``)."""
    from _common import machine_info

    torch.set_num_threads(args.threads)
    return machine_info(torch.get_num_threads()), args.out.stem


def summary_line(row_id: str, r: dict[str, Any]) -> str:
    if "results" in r:  # one trained model evaluated several ways (inverse benchmarks)
        return "\n".join(summary_line(f"{row_id} (noise {x.get('noise')}, {x.get('measurements')} meas.)", x)
                         for x in r["results"])
    fine = f", fine {r['rel_l2_mean_fine']:.4f}" if r.get("rel_l2_mean_fine") is not None else ""
    spe = f"{r['s_per_epoch']:.2f}" if r.get("s_per_epoch") is not None else "?"
    median = r.get("rel_l2_median", r.get("rel_l1_median"))
    cost = (f"{r['params']:,} params, {spe} s/epoch x {r.get('epochs', 0):g}, " if r.get("params") is not None
            else "")
    infer = r.get("infer_ms_per_sample", r.get("ms_per_reconstruction"))
    return (f"{row_id:28s} rel L2 mean {r['rel_l2_mean']:.4f} median(L2 or L1) {median:.4f}{fine} | "
            f"{cost}{infer:.3f} ms per sample")


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v == 0 or 1e-3 <= abs(v) < 1e4:
            return f"{v:.4g}"
        return f"{v:.3e}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def markdown(title: str, rows: list[dict[str, Any]], notes: Sequence[str]) -> str:
    columns = [c for c in TABLE_COLUMNS if any(c in r for r in rows)]
    lines = [f"# {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(r.get(c)) for c in columns) + " |" for r in rows]
    # A row's own caveat (``note``: how it was made differs from the rest of the table) goes under it.
    keys = [c for c in ("method", "resolution", "noise") if any(c in r for r in rows)]
    caveats = [f"- {', '.join(f'{k} {_fmt(r.get(k))}' for k in keys)}: {r['note']}." for r in rows if r.get("note")]
    return "\n".join([*lines, "", *notes, *([""] + caveats if caveats else []), ""])


def write_results(out: Path, benchmark: str, machine: dict[str, Any], rows: list[dict[str, Any]], title: str,
                  settings: dict[str, Any], notes: Sequence[str], quick: bool) -> None:
    """``out`` (JSON with benchmark / machine / settings / rows) and, for full runs, the table ``NAME.md``."""
    machine = {**machine, "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    report = {"benchmark": benchmark, "machine": machine, "settings": settings, "rows": rows}
    from _common import write_results as write_report

    write_report(out, report, markdown(title, rows, notes), quick)


def add_speedup(row: dict[str, Any]) -> dict[str, Any]:
    ref, inf = row.get("reference_ms_per_sample"), row.get("infer_ms_per_sample")
    row["speedup"] = None if not ref or not inf else ref / inf
    return row
