"""sciml's FNO against the ``neuraloperator`` package's FNO on 2-D Darcy flow, CPU.

Both networks are the classic FNO of Li et al. (2021): 12 x 12 Fourier modes (the paper's count:
``2 * 12`` frequencies along x, ``12`` along y), width 32, four Fourier layers, GELU, a linear lifting
with the grid coordinates appended, a 32 -> 128 -> 1 projection and zero padding of the domain. They are
trained on the same samples in the same order with the same optimiser (Adam, lr 1e-3, weight decay
1e-4, cosine decay per step), batch size 20 and the relative-L2 loss of the reference code. Training
runs in lockstep, one step of each model on the same batch with the order swapped every step, so that
load from other processes falls on both alike. The script reports training throughput (samples/s,
over all steps and the median step), inference throughput and the test error (mean per-sample
relative L2) after the same number of epochs, prints a table and writes JSON to
``benchmarks/results/fno_vs_neuraloperator.json``.

How ``neuraloperator``'s FNO is configured to match (version 2.0; the differences that remain are also
listed in the JSON):

* ``n_modes=(24, 22)``: it counts all kept frequencies along the non-last axes and keeps
  ``n // 2 + 1`` along the last, so this is the same set of modes as our ``(12, 12)``;
* ``use_channel_mlp=False, fno_skip="linear"``: the paper's ``W`` (its spectral bias plays the role
  of the 1x1 convolution's bias); ``lifting_channel_ratio=0`` (one linear lifting layer);
  ``projection_channel_ratio=4`` (128 hidden channels);
* ``domain_padding=0.0625``: it pads both ends of each axis (4 + 4 points at 64), we pad 8 points at
  the far end as the reference code does, so both transform 72 x 72 grids.
* Remaining differences: with the channel MLP disabled, v2.0 applies the activation twice between
  Fourier layers (``gelu(gelu(.))``, a quirk of its block code); its grid embedding uses
  ``linspace(0, 1, n + 1)[:-1]`` where ours uses the node grid ``linspace(0, 1, n)``; spectral weights
  are initialised N(0, 2 / (in + out)) there and uniform [0, 1 / (in * out)) here (the paper's).

Data come from ``sciml.load_problem("darcy")`` (threshold Gaussian random field coefficient 12/3,
``-div(a grad u) = 1``, zero Dirichlet data, solved with 5-point finite differences directly on the
training grid). If that problem is not available a self-contained generator in this file makes the
same data.

Run: ``python benchmarks/fno_vs_neuraloperator.py --threads 2``; ``--help`` lists the sizes. Needs
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
    state = {}
    for name, model in models.items():
        opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs * steps_per_epoch)
        state[name] = {"opt": opt, "sched": sched, "step_seconds": [], "step_samples": [], "losses": []}

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
    gen = torch.Generator().manual_seed(args.seed + 1)
    for epoch in range(args.epochs):
        for model in models.values():
            model.train()
        order = torch.randperm(args.n_train, generator=gen)
        totals = dict.fromkeys(models, 0.0)
        for step, k in enumerate(range(0, args.n_train, args.batch_size)):
            idx = order[k : k + args.batch_size]
            names = list(models) if step % 2 == 0 else list(models)[::-1]
            for name in names:
                totals[name] += train_step(name, idx) * len(idx)
        line = []
        for name in models:
            state[name]["losses"].append(totals[name] / args.n_train)
            secs = sum(state[name]["step_seconds"][-steps_per_epoch:])
            line.append(f"{name} loss {state[name]['losses'][-1]:.4f} ({secs:.1f}s)")
        print(f"[epoch {epoch + 1}/{args.epochs}] " + " | ".join(line), flush=True)

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
            **evaluation[name],
        }
    ours, theirs = results["sciml"], results["neuraloperator"]
    info["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return {
        "benchmark": "fno_vs_neuraloperator",
        "problem": "darcy 2-D",
        "data": data_source,
        "data_seconds": data_seconds,
        "settings": {
            "n_train": args.n_train,
            "n_test": args.n_test,
            "epochs": args.epochs,
            "resolution": args.resolution,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "weight_decay": 1e-4,
            "schedule": "cosine per step",
            "seed": args.seed,
            "threads": args.threads,
        },  # fmt: skip
        "configuration": {
            "sciml": "FNO(1, 1, n_modes=(12, 12), width=32, n_layers=4, padding=8 (end), append_coords, "
            "lifting linear, projection 128)",
            "neuraloperator": f"neuralop {neuralop.__version__} FNO(n_modes=(24, 22), hidden_channels=32, "
            "n_layers=4, lifting_channel_ratio=0, projection_channel_ratio=4, positional_embedding='grid', "
            "use_channel_mlp=False, fno_skip='linear', domain_padding=0.0625 (both ends))",
            "differences": [
                "neuraloperator applies GELU twice between Fourier layers when use_channel_mlp=False",
                "grid coordinates: linspace(0,1,n+1)[:-1] (theirs) vs linspace(0,1,n) (ours)",
                "padding: 4+4 points (theirs) vs 8 at the end (ours); both transform 72x72",
                "spectral init: N(0, 2/(in+out)) (theirs) vs U[0, 1/(in*out)) (ours, as the paper)",
            ],
        },
        "machine": info,
        "results": results,
        "speedup_train": ours["train_samples_per_s"] / theirs["train_samples_per_s"],
        "speedup_train_median_step": ours["train_samples_per_s_median_step"]
        / theirs["train_samples_per_s_median_step"],
        "speedup_inference": ours["inference_samples_per_s"] / theirs["inference_samples_per_s"],
        "speedup_inference_median_batch": ours["inference_samples_per_s_median_batch"]
        / theirs["inference_samples_per_s_median_batch"],
    }


def print_table(report: dict[str, Any]) -> None:
    res = report["results"]
    print()
    print(f"Darcy {report['settings']['resolution']}^2, {report['settings']['n_train']} train / "
          f"{report['settings']['n_test']} test, {report['settings']['epochs']} epochs, "
          f"{report['machine']['torch_threads']} threads on {report['machine']['cpu']}")  # fmt: skip
    header = f"{'model':<16}{'params':>10}{'train samp/s':>14}{'(median step)':>15}{'infer samp/s':>14}"
    header += f"{'test relL2':>12}{'(median)':>10}"
    print(header)
    print("-" * len(header))
    for name, r in res.items():
        print(
            f"{name:<16}{r['parameters']:>10,}{r['train_samples_per_s']:>14.1f}"
            f"{r['train_samples_per_s_median_step']:>15.1f}{r['inference_samples_per_s']:>14.1f}"
            f"{r['test_rel_l2_mean']:>12.4f}{r['test_rel_l2_median']:>10.4f}"
        )
    print(
        f"speed-up (sciml / neuraloperator): training {report['speedup_train']:.2f}x "
        f"(median step {report['speedup_train_median_step']:.2f}x), inference "
        f"{report['speedup_inference']:.2f}x (median batch {report['speedup_inference_median_batch']:.2f}x)"
    )
    m = report["machine"]
    print(f"load average start {m['loadavg_start']} end {m['loadavg_end']} (other processes share the CPU)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-train", type=int, default=200)
    parser.add_argument("--n-test", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", choices=["auto", "sciml", "fallback"], default="auto")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    for key in ("n_train", "n_test", "epochs", "threads", "batch_size"):
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
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
