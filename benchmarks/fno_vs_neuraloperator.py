"""sciml's FNO against the ``neuraloperator`` package's FNO on 2-D Darcy flow, CPU.

Both networks are the classic FNO of Li et al. (2021): 12 x 12 Fourier modes (the paper's count:
``2 * 12`` frequencies along x, ``12`` along y), width 32, four Fourier layers, GELU, a linear lifting
with the grid coordinates appended, a 32 -> 128 -> 1 projection and zero padding of the domain. They are
trained on the same samples in the same order with the same optimiser (Adam, lr 1e-3, weight decay
1e-4, cosine decay per step), batch size 20 and the relative-L2 loss of the reference code. Training
runs in lockstep, one step of each model on the same batch with the order swapped every step, so that
load from other processes falls on both alike. Both are evaluated on the test set after every epoch
(``--eval-every``); the script reports training throughput (samples/s, over all steps and the median
step), inference throughput, the final test errors (mean and median per-sample relative L2) and the
*time to a common error*: the cumulative training time (steps only) at which each model's test error
first reaches the larger of the two final errors (the best error both reach), and the same for a fixed
``--target`` (2 %). Ratios are sciml / neuraloperator, above 1 meaning sciml is faster. It prints a
table and writes ``benchmarks/results/fno_vs_neuraloperator.json`` (``rows``: one per library) and
``.md``. The models, optimisers, schedules and the shuffling generator are checkpointed after every
epoch (``runs/bench/fno_vs_neuraloperator/state.pt``, written atomically): ``--resume`` continues a
killed run with the same settings.

How ``neuraloperator``'s FNO is configured to match (version 2.0; the differences that remain are also
listed in the JSON):

* ``n_modes=(24, 22)``: it counts all kept frequencies along the non-last axes and keeps
  ``n // 2 + 1`` along the last, so this is the same set of modes as our ``(12, 12)``;
* ``use_channel_mlp=False, fno_skip="linear"``: the paper's ``W`` (its spectral bias plays the role
  of the 1x1 convolution's bias); ``lifting_channel_ratio=0`` (one linear lifting layer);
  ``projection_channel_ratio=4`` (128 hidden channels);
* ``domain_padding=4 / resolution``: it pads both ends of each axis by 4 points, we pad 8 points at
  the far end as the reference code does, so both transform grids of ``resolution + 8``.
* Remaining differences: with the channel MLP disabled, v2.0 applies the activation twice between
  Fourier layers (``gelu(gelu(.))``, a quirk of its block code); its grid embedding uses
  ``linspace(0, 1, n + 1)[:-1]`` where ours uses the node grid ``linspace(0, 1, n)``; spectral weights
  are initialised N(0, 2 / (in + out)) there and uniform [0, 1 / (in * out)) here (the paper's).

Data come from ``sciml.load_problem("darcy")`` (threshold Gaussian random field coefficient 12/3,
``-div(a grad u) = 1``, zero Dirichlet data, solved with 5-point finite differences directly on the
training grid: the comparison of two libraries needs the same data, not the problem's finer solve). If that problem is not available a self-contained generator in this file makes the
same data.

Run: ``OMP_NUM_THREADS=1 nohup python benchmarks/fno_vs_neuraloperator.py --resume > log 2>&1 &``
(Darcy 43 x 43, 1000 train / 100 test, 50 epochs, one thread: about 75 minutes on one free core of
this 2-core machine; rerun the same command after a kill); ``--help`` lists the sizes. Needs
``pip install neuraloperator`` (not a dependency of sciml); without it the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "fno_vs_neuraloperator.json"


# -- data ------------------------------------------------------------------------------------------
def darcy_fallback(n: int, resolution: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Darcy samples without sciml's problem layer: ``a`` and ``u`` of shape (n, res, res), float64.

    ``a = 12`` where a Gaussian random field with covariance ``(-Laplace + tau^2)^(-alpha)`` (Neumann
    cosine basis, alpha = 2, tau = 3) is non-negative and ``3`` elsewhere; ``u`` solves
    ``-div(a grad u) = 1`` with ``u = 0`` on the boundary of the unit square by 5-point finite
    differences on the node grid, face coefficients the arithmetic mean of the two nodes.
    """
    import scipy.fft

    rng = np.random.default_rng(seed)
    alpha, tau, res = 2.0, 3.0, resolution
    k = np.arange(res)
    k1, k2 = np.meshgrid(k, k, indexing="ij")
    # Square roots of the covariance eigenvalues; the constant mode is dropped (mean-zero field).
    # The overall scale is irrelevant: only the sign of the field is used.
    sqrt_eig = (math.pi**2 * (k1**2 + k2**2) + tau**2) ** (-alpha / 2.0)
    sqrt_eig[0, 0] = 0.0
    field = scipy.fft.idctn(sqrt_eig * rng.standard_normal((n, res, res)), type=2, axes=(1, 2), norm="ortho")
    a = np.where(field >= 0.0, 12.0, 3.0)
    return a, solve_darcy_fd(a)


def solve_darcy_fd(a: np.ndarray) -> np.ndarray:
    """Solve ``-div(a grad u) = 1``, ``u = 0`` on the boundary, for each ``a`` of shape (n, res, res)."""
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    n, res = a.shape[0], a.shape[1]
    m = res - 2  # interior nodes per axis
    h2 = (1.0 / (res - 1)) ** 2
    idx = np.arange(m * m).reshape(m, m)
    u = np.zeros((n, res, res))
    for s in range(n):
        ai = a[s]
        rows, cols, vals = [], [], []
        diag = np.zeros((m, m))
        for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            # face coefficient between interior node (i, j) and its neighbour (i + di, j + dj)
            face = 0.5 * (ai[1:-1, 1:-1] + ai[1 + di : res - 1 + di, 1 + dj : res - 1 + dj]) / h2
            diag += face
            ii, jj = np.meshgrid(np.arange(m), np.arange(m), indexing="ij")
            ni, nj = ii + di, jj + dj
            inside = (ni >= 0) & (ni < m) & (nj >= 0) & (nj < m)  # boundary neighbours are u = 0
            rows.append(idx[inside])
            cols.append(idx[ni[inside], nj[inside]])
            vals.append(-face[inside])
        rows.append(idx.ravel())
        cols.append(idx.ravel())
        vals.append(diag.ravel())
        coo = (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols)))
        A = sp.csc_matrix(coo, shape=(m * m, m * m))
        u[s, 1:-1, 1:-1] = spla.spsolve(A, np.ones(m * m)).reshape(m, m)
    return u


def load_darcy(n: int, resolution: int, seed: int, source: str) -> tuple[np.ndarray, np.ndarray, str]:
    """``(a, u, description)`` with ``a, u`` of shape (n, res, res), float32."""
    if source in ("auto", "sciml"):
        try:
            import sciml
            from sciml.fields import Grid

            problem = sciml.load_problem("darcy")
            grid = Grid(resolution, ndim=2)
            inputs = problem.sample_inputs(n, grid, seed)
            outputs = problem.solve_batch(inputs, grid)
            a, u = inputs["a"], outputs["u"]
            what = f"sciml.load_problem('darcy'), solved on the {resolution}x{resolution} grid, seed {seed}"
            return a.astype(np.float32), u.astype(np.float32), what
        except Exception as exc:  # noqa: BLE001 - any failure of the optional path selects the fallback
            if source == "sciml":
                raise
            print(f"[data] sciml Darcy problem unavailable ({type(exc).__name__}: {exc}); using the fallback")
    a, u = darcy_fallback(n, resolution, seed)
    what = f"built-in fallback generator (GRF alpha=2 tau=3, 12/3, 5-point FD), seed {seed}"
    return a.astype(np.float32), u.astype(np.float32), what


# -- models ----------------------------------------------------------------------------------------
def build_models(resolution: int, seed: int) -> dict[str, Any]:
    import torch
    from neuralop.models import FNO as NeuralOpFNO

    from sciml.models import build_model

    pad_points = 8
    torch.manual_seed(seed)
    ours = build_model(
        "fno", in_channels=1, out_channels=1, n_modes=[12, 12], width=32, n_layers=4,
        padding=pad_points, append_coords=True, projection_channels=128, activation="gelu",
    )  # fmt: skip
    torch.manual_seed(seed)
    theirs = NeuralOpFNO(
        n_modes=(24, 22), in_channels=1, out_channels=1, hidden_channels=32, n_layers=4,
        lifting_channel_ratio=0, projection_channel_ratio=4, positional_embedding="grid",
        use_channel_mlp=False, fno_skip="linear", norm=None,
        domain_padding=pad_points / 2 / resolution,
    )  # fmt: skip
    return {"sciml": ours, "neuraloperator": theirs}


def count_parameters(model: Any) -> int:
    """Real numbers in the parameters (a complex entry counts twice)."""
    return int(sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters()))


class GaussianNormalizer:
    """Point-wise mean/std fitted on the training set (as in the reference FNO code)."""

    def __init__(self, x: Any, eps: float = 1e-5) -> None:
        self.mean, self.std, self.eps = x.mean(0), x.std(0), eps

    def encode(self, x: Any) -> Any:
        return (x - self.mean) / (self.std + self.eps)

    def decode(self, x: Any) -> Any:
        return x * (self.std + self.eps) + self.mean


def relative_l2(pred: Any, true: Any) -> Any:
    """Per-sample relative L2 errors, shape (B,)."""
    diff = (pred - true).flatten(1).norm(dim=1)
    return diff / true.flatten(1).norm(dim=1)


# -- benchmark -------------------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    import torch

    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def _atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` through sciml's atomic write: a kill while writing never leaves half a checkpoint."""
    import io

    import torch

    from sciml.train.checkpoint import atomic_write_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    """What changes the results (not where they go, nor whether the run resumes)."""
    return {"n_train": args.n_train, "n_test": args.n_test, "epochs": args.epochs, "resolution": args.resolution,
            "batch_size": args.batch_size, "lr": args.lr, "weight_decay": 1e-4, "schedule": "cosine per step",
            "seed": args.seed, "threads": args.threads, "data": args.data, "eval_every": args.eval_every}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    torch.set_num_threads(args.threads)
    info = machine_info()
    import neuralop

    t0 = time.perf_counter()
    a, u, data_source = load_darcy(args.n_train + args.n_test, args.resolution, args.seed, args.data)
    data_seconds = time.perf_counter() - t0
    x = torch.from_numpy(a).unsqueeze(1)
    y = torch.from_numpy(u).unsqueeze(1)
    x_train, y_train = x[: args.n_train], y[: args.n_train]
    x_test, y_test = x[args.n_train :], y[args.n_train :]
    x_norm, y_norm = GaussianNormalizer(x_train), GaussianNormalizer(y_train)
    x_train, x_test = x_norm.encode(x_train), x_norm.encode(x_test)

    models = build_models(args.resolution, args.seed)
    steps_per_epoch = math.ceil(args.n_train / args.batch_size)
    state: dict[str, dict[str, Any]] = {}
    for name, model in models.items():
        opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs * steps_per_epoch)
        state[name] = {"opt": opt, "sched": sched, "step_seconds": [], "step_samples": [], "losses": [],
                       "history": []}  # fmt: skip
    gen = torch.Generator().manual_seed(args.seed + 1)
    settings = settings_of(args)
    checkpoint = args.work / "state.pt"
    first_epoch = 0
    if args.resume and checkpoint.is_file():
        saved = torch.load(checkpoint, weights_only=True)
        if saved["settings"] != settings:
            print(f"[resume] {checkpoint} holds a run with other settings: starting afresh", flush=True)
        else:
            first_epoch = saved["epoch"]
            gen.set_state(saved["generator"])
            for name, model in models.items():
                model.load_state_dict(saved["models"][name])
                state[name]["opt"].load_state_dict(saved["optimizers"][name])
                state[name]["sched"].load_state_dict(saved["schedulers"][name])
                for key in ("step_seconds", "step_samples", "losses", "history"):
                    state[name][key] = saved["records"][name][key]
            print(f"[resume] {checkpoint}: continuing after epoch {first_epoch}", flush=True)

    def train_step(name: str, idx: Any) -> float:
        model, st = models[name], state[name]
        start = time.perf_counter()
        st["opt"].zero_grad(set_to_none=True)
        pred = y_norm.decode(model(x_train[idx]))
        loss = relative_l2(pred, y_train[idx]).mean()
        loss.backward()
        st["opt"].step()
        st["sched"].step()
        st["step_seconds"].append(time.perf_counter() - start)
        st["step_samples"].append(len(idx))
        return float(loss.detach())

    @torch.no_grad()
    def evaluate(repeats: int = 3) -> dict[str, dict[str, float]]:
        """Test errors and inference throughput, also in lockstep (batch by batch, ``repeats`` passes)."""
        for model in models.values():
            model.eval()
        seconds: dict[str, list[float]] = {name: [] for name in models}
        sizes: list[int] = []
        errors: dict[str, list[Any]] = {name: [] for name in models}
        for rep in range(repeats):
            for step, k in enumerate(range(0, args.n_test, args.batch_size)):
                xb, yb = x_test[k : k + args.batch_size], y_test[k : k + args.batch_size]
                sizes.append(len(xb))
                names = list(models) if step % 2 == 0 else list(models)[::-1]
                for name in names:
                    start = time.perf_counter()
                    pred = y_norm.decode(models[name](xb))
                    seconds[name].append(time.perf_counter() - start)
                    if rep == 0:
                        errors[name].append(relative_l2(pred, yb))
        out = {}
        for name in models:
            err = torch.cat(errors[name])
            out[name] = {
                "test_rel_l2_mean": float(err.mean()),
                "test_rel_l2_median": float(err.median()),
                "inference_samples_per_s": sum(sizes) / sum(seconds[name]),
                "inference_samples_per_s_median_batch": statistics.median(
                    n / t for n, t in zip(sizes, seconds[name])
                ),
            }
        return out

    # Warm-up on throw-away copies: process-wide one-off costs (thread pools, FFT plans, first-touch
    # allocations) must not be charged to whichever model happens to run first.
    for model in models.values():
        twin = copy.deepcopy(model)
        for _ in range(2):
            relative_l2(
                y_norm.decode(twin(x_train[: args.batch_size])), y_train[: args.batch_size]
            ).mean().backward()
        del twin

    # Lockstep training: both models see the same batch, one right after the other, with the order
    # swapped every step. Load from other processes then falls on both alike, step by step.
    for epoch in range(first_epoch, args.epochs):
        for model in models.values():
            model.train()
        order = torch.randperm(args.n_train, generator=gen)
        totals = dict.fromkeys(models, 0.0)
        for step, k in enumerate(range(0, args.n_train, args.batch_size)):
            idx = order[k : k + args.batch_size]
            names = list(models) if step % 2 == 0 else list(models)[::-1]
            for name in names:
                totals[name] += train_step(name, idx) * len(idx)
        tested = (epoch + 1) % args.eval_every == 0 or epoch + 1 == args.epochs
        errors = evaluate(repeats=1) if tested else {}
        line = []
        for name in models:
            st = state[name]
            st["losses"].append(totals[name] / args.n_train)
            secs = sum(st["step_seconds"][-steps_per_epoch:])
            text = f"{name} loss {st['losses'][-1]:.4f} ({secs:.1f}s)"
            if tested:
                # cumulative training time (steps only): the clock of "time to a common error"
                st["history"].append({"epoch": epoch + 1, "train_seconds": sum(st["step_seconds"]),
                                      "test_rel_l2_mean": errors[name]["test_rel_l2_mean"]})  # fmt: skip
                text += f" test {errors[name]['test_rel_l2_mean']:.4f}"
            line.append(text)
        print(f"[epoch {epoch + 1}/{args.epochs}] " + " | ".join(line), flush=True)
        _atomic_save({"settings": settings, "epoch": epoch + 1, "generator": gen.get_state(),
                      # tensors only: neuraloperator's state holds its constructor arguments (``_metadata``,
                      # functions among them), which weights_only loading refuses; they are rebuilt anyway
                      "models": {n: {k: v for k, v in m.state_dict().items() if torch.is_tensor(v)}
                                 for n, m in models.items()},
                      "optimizers": {n: state[n]["opt"].state_dict() for n in models},
                      "schedulers": {n: state[n]["sched"].state_dict() for n in models},
                      "records": {n: {k: state[n][k] for k in ("step_seconds", "step_samples", "losses", "history")}
                                  for n in models}}, checkpoint)  # fmt: skip

    evaluation = evaluate()
    results = {}
    for name, model in models.items():
        st = state[name]
        secs, samples = st["step_seconds"], st["step_samples"]
        epoch_secs = [sum(secs[e * steps_per_epoch : (e + 1) * steps_per_epoch]) for e in range(args.epochs)]
        results[name] = {
            "parameters": count_parameters(model),
            "train_seconds": sum(secs),
            "train_samples_per_s": sum(samples) / sum(secs),
            "train_samples_per_s_median_step": statistics.median(n / t for n, t in zip(samples, secs)),
            "train_samples_per_s_best_step": max(n / t for n, t in zip(samples, secs)),
            "epoch_seconds": epoch_secs,
            "train_loss": st["losses"],
            "test_history": st["history"],
            **evaluation[name],
        }
    info["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return report_of(results, args, info, data_source, data_seconds, neuralop.__version__)


def first_below(history: list[dict[str, float]], level: float) -> dict[str, float] | None:
    """The first test evaluation at or below ``level`` (None when the run never got there)."""
    return next((h for h in history if h["test_rel_l2_mean"] <= level), None)


def report_of(results: dict[str, dict[str, Any]], args: argparse.Namespace, info: dict[str, Any],
              data_source: str, data_seconds: float, version: str) -> dict[str, Any]:
    """The JSON report: ``rows`` (one per library) plus the ratios sciml / neuraloperator.

    The common error is the larger of the two final test errors: the best error both runs reach. Time
    to it is the cumulative training time (steps only, no evaluation) at the first evaluation where the
    test error is at or below it; ``--target`` adds the same for a fixed level.
    """
    ours, theirs = results["sciml"], results["neuraloperator"]
    common = max(ours["test_rel_l2_mean"], theirs["test_rel_l2_mean"])
    rows = []
    for name, r in results.items():
        hit, target = first_below(r["test_history"], common), first_below(r["test_history"], args.target)
        rows.append({"method": name, "parameters": r["parameters"],
                     "train_samples_per_s": r["train_samples_per_s"],
                     "train_samples_per_s_median_step": r["train_samples_per_s_median_step"],
                     "inference_samples_per_s": r["inference_samples_per_s"],
                     "test_rel_l2_mean": r["test_rel_l2_mean"], "test_rel_l2_median": r["test_rel_l2_median"],
                     "final_train_loss": r["train_loss"][-1], "train_seconds": r["train_seconds"],
                     "epochs_to_common_error": hit and hit["epoch"],
                     "seconds_to_common_error": hit and hit["train_seconds"],
                     "epochs_to_target": target and target["epoch"],
                     "seconds_to_target": target and target["train_seconds"]})  # fmt: skip
    by = {r["method"]: r for r in rows}

    def ratio(key: str, invert: bool = False) -> float | None:
        a, b = by["sciml"][key], by["neuraloperator"][key]
        if a is None or b is None:
            return None
        return b / a if invert else a / b

    return {
        "benchmark": "fno_vs_neuraloperator",
        "problem": "darcy 2-D",
        "data": data_source,
        "data_seconds": data_seconds,
        "settings": {**settings_of(args), "target": args.target,
                     "command": " ".join(["python benchmarks/fno_vs_neuraloperator.py", *args.given])},
        "configuration": {
            "sciml": "FNO(1, 1, n_modes=(12, 12), width=32, n_layers=4, padding=8 (end), append_coords, "
            "lifting linear, projection 128)",
            "neuraloperator": f"neuralop {version} FNO(n_modes=(24, 22), hidden_channels=32, "
            "n_layers=4, lifting_channel_ratio=0, projection_channel_ratio=4, positional_embedding='grid', "
            f"use_channel_mlp=False, fno_skip='linear', domain_padding={4 / args.resolution:.4f} (both ends))",
            "differences": [
                "neuraloperator applies GELU twice between Fourier layers when use_channel_mlp=False",
                "grid coordinates: linspace(0,1,n+1)[:-1] (theirs) vs linspace(0,1,n) (ours)",
                "padding: 4+4 points (theirs) vs 8 at the end (ours); both transform grids of n + 8",
                "spectral init: N(0, 2/(in+out)) (theirs) vs U[0, 1/(in*out)) (ours, as the paper)",
            ],
        },
        "machine": info,
        "rows": rows,
        "common_error": common,
        # sciml / neuraloperator: above 1 means sciml trains (infers) more samples per second or
        # reaches the error sooner
        "ratios": {"train_throughput": ratio("train_samples_per_s"),
                   "train_throughput_median_step": ratio("train_samples_per_s_median_step"),
                   "inference_throughput": ratio("inference_samples_per_s"),
                   "time_to_common_error": ratio("seconds_to_common_error", invert=True),
                   "time_to_target": ratio("seconds_to_target", invert=True)},  # fmt: skip
        "results": results,
    }


def markdown(report: dict[str, Any]) -> str:
    s, m = report["settings"], report["machine"]

    def num(v: Any, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    lines = [f"# sciml FNO against neuraloperator {report['configuration']['neuraloperator'].split()[1]}, Darcy", "",
             f"Darcy {s['resolution']} x {s['resolution']}, {s['n_train']} train / {s['n_test']} test samples, "
             f"{s['epochs']} epochs, batch {s['batch_size']}, Adam lr {s['lr']} (cosine per step), the two models "
             f"in lockstep on the same batches; {m['torch_threads']} torch thread(s) on {m['cpu']}. Common error: "
             f"{100 * report['common_error']:.2f} % (the larger final test error); target {100 * s['target']:.1f} %.",
             "", "| method | parameters | train samples/s | (median step) | inference samples/s | test rel L2 mean "
             "| median | epochs to common error | s to common error | s to target |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in report["rows"]:
        lines.append(f"| {r['method']} | {r['parameters']:,} | {r['train_samples_per_s']:.1f} "
                     f"| {r['train_samples_per_s_median_step']:.1f} | {r['inference_samples_per_s']:.1f} "
                     f"| {100 * r['test_rel_l2_mean']:.2f} % | {100 * r['test_rel_l2_median']:.2f} % "
                     f"| {num(r['epochs_to_common_error'], 'd')} | {num(r['seconds_to_common_error'], '.0f')} "
                     f"| {num(r['seconds_to_target'], '.0f')} |")  # fmt: skip
    q = report["ratios"]
    lines += ["", "Ratios sciml / neuraloperator (above 1: sciml faster): training throughput "
              f"{num(q['train_throughput'], '.2f')} (median step {num(q['train_throughput_median_step'], '.2f')}), "
              f"inference {num(q['inference_throughput'], '.2f')}, time to the common error "
              f"{num(q['time_to_common_error'], '.2f')}, time to the target {num(q['time_to_target'], '.2f')}.", "",
              "Configuration differences that remain: " + "; ".join(report["configuration"]["differences"]) + ".",
              "", f"Command: `{s['command']}`.", ""]  # fmt: skip
    return "\n".join(lines)


def print_table(report: dict[str, Any]) -> None:
    print()
    print(markdown(report))
    m = report["machine"]
    print(f"load average start {m['loadavg_start']} end {m['loadavg_end']} (other processes share the CPU)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--n-test", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--resolution", type=int, default=43)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", choices=["auto", "sciml", "fallback"], default="auto")
    parser.add_argument("--eval-every", type=int, default=1, help="epochs between test evaluations")
    parser.add_argument("--target", type=float, default=0.02, help="a fixed test error for the time-to ratio")
    parser.add_argument("--resume", action="store_true", help="continue the checkpoint in --work (same settings)")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench" / "fno_vs_neuraloperator")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.given = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--resume"]
    for key in ("n_train", "n_test", "epochs", "threads", "batch_size", "eval_every"):
        if getattr(args, key) < 1:
            parser.error(f"--{key.replace('_', '-')} must be at least 1")
    if args.resolution < 32:
        parser.error("--resolution must be at least 32 (the FNO keeps 24 modes along x)")

    try:
        import neuralop  # noqa: F401
    except ImportError:
        print("neuraloperator is not installed (`pip install neuraloperator` to run it); skipping.")
        return 0
    sys.path.insert(0, str(ROOT))  # run from a checkout without installing sciml
    warnings.filterwarnings("ignore", category=UserWarning, module="neuralop")

    report = run(args)
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))
    print(f"wrote {args.out} and {args.out.with_suffix('.md').name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
