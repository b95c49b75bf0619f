"""MM-PDE (a time-stepper with a branch on the DMM's moving mesh) against the same stepper on the uniform
grid alone, on 2-D periodic viscous Burgers: one-step and 10-step rollout errors over seeds.

Reduced to one CPU thread; the reductions against Hu, Wang, Ma (ICLR 2024) are stated here and in
``sciml/models/mmpde_net.py``:

* **Networks.** Both branches are small periodic CNNs (``--depth`` convolutions ``--kernel`` x ``--kernel``,
  GELU, circular padding) predicting the increment ``u(t_k+1) - u(t_k)``, not the reference's
  message-passing GNNs (35 neighbours, 40 channels). MM-PDE: ``u + U(u) + Itp2(M(Itp1(u), mesh geometry))``,
  ``U`` and ``M`` ``--width`` channels; the baseline: ``u + U(u)`` with ``--baseline-width`` channels, chosen
  for a parameter count close to MM-PDE's (both printed and stored).
* **Mesh.** The shipped data-free mover ``DMM.pretrained()`` (``sciml/meshmove/weights/dmm_burgers2d.pt``,
  ``benchmarks/mesh_mover.py``), frozen; the mesh of each data frame is computed once and cached, and in
  rollouts the mover is called on every predicted field.
* **Interpolation.** ``Itp1``/``Itp2`` (``sciml/models/learned_interp.py``): MLP weights on the 4 x 4 stencil of
  the source cell holding the query point (found by division on the uniform grid, by inverting the moved
  mesh's bilinear map on the moved one) instead of a 30-nearest-neighbour kNN, initialised to bilinear
  weights; pretrained on the round trip ``u -> mesh -> u`` for ``--pretrain-steps`` steps (the reference
  pretrains them too), then trained with the stepper, with the round-trip error as a second loss term
  (``--round-trip-weight``; our addition: without it they stopped interpolating within a few dozen steps).
  No residual-cut convolution (the increment, not ``u``, crosses the meshes, so the round trip's loss
  never enters ``u``).
* **Training.** Both methods: the same pairs, Adam, cosine schedule from ``--lr``, ``--steps`` steps of
  ``--batch`` pairs through the shared Trainer, loss the MSE of ``u(t_k+1)`` over the squared RMS
  training increment; the seed sets the initial weights and the batch order. No unrolled training (the
  reference's pushforward trick), no time window (one frame in, one out).

Data: the Burgers 2-D files of ``benchmarks/mesh_mover.py`` in ``runs/bench/data`` (reused; made by the
same code if absent, about 30 minutes): 136 trajectories of 21 frames (``t = 0 .. 0.5``, 49 x 49 nodes =
48 x 48 periodic points; ``problems/burgers2d.py``), seed 0: the first ``--train-trajectories`` train, the
last ``--val-trajectories`` are the Trainer's validation set; the test set is the 8 held-out trajectories
of seed 1 (the 193 x 193 file, subsampled by 4 to the same 49 x 49 nodes), which neither the DMM nor the
steppers ever saw. Metrics on the test set: ``one_step_rel_l2``, the relative L2 error of
``u(t_k+1)`` from the true ``u(t_k)``, mean over all 20 pairs of each trajectory; ``rollout10_rel_l2``,
the relative L2 error after 10 autoregressive steps from the true frames ``--rollout-starts``, mean over
starts and trajectories. Persistence (``u(t_k+1) = u(t_k)``) is reported as the floor any stepper must beat.

Rows: ``method``, ``seed``, ``one_step_rel_l2``, ``rollout10_rel_l2`` (and parameters, times, the
round-trip interpolation error, the mean rollout error after each step). Resumes by ``(method, seed)``
from ``runs/bench/mm_pde/partial.json`` when the settings match; an MM-PDE row is reused only when it was
made with the same shipped mover (the weights' SHA-256 in the row's ``mover``).

Run: ``OMP_NUM_THREADS=1 nohup python benchmarks/mm_pde.py > runs/bench/mm_pde.log 2>&1 &`` (about 35
minutes on one busy thread: 2 methods x 3 seeds); ``--quick``: a smoke test of a minute or two that writes
``benchmarks/results/mm_pde.quick.json`` only.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import load_partial, machine_info, results_path, save_partial, write_results

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "mm_pde.json"
RUN_DIR = ROOT / "runs" / "bench" / "mm_pde"
DATA_DIR = ROOT / "runs" / "bench" / "data"
METHODS = ("MM-PDE", "uniform CNN")


# -- data ------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Data:
    train: np.ndarray  # (S, 21, 49, 49) trajectories, periodic node grids
    val: np.ndarray
    test: np.ndarray
    files: list[str]
    seconds: dict[str, Any]


def load_data(args: argparse.Namespace) -> Data:
    """The mesh-mover benchmark's Burgers files (made by its code when absent), split as the docstring says."""
    from mesh_mover import make_data

    spec = argparse.Namespace(trajectories=136, val_trajectories=2, heldout=8, seed=0, heldout_seed=1,
                              run_dir=args.run_dir, data_dir=DATA_DIR)
    if args.quick and not (DATA_DIR / "burgers2d_49x49_n136_seed0.h5").is_file():
        spec.trajectories, spec.heldout, spec.data_dir = 4, 1, args.run_dir / "data"  # tiny files of its own
    raw = make_data(spec)
    frames, held = raw["train"], raw["heldout"][:, :, ::4, ::4]  # 193 -> 49 nodes: the same grid
    n_tr, n_val = args.train_trajectories, args.val_trajectories
    if n_tr + n_val > len(frames):
        raise SystemExit(f"--train-trajectories + --val-trajectories: at most {len(frames)}, got {n_tr + n_val}")
    if args.test_trajectories > len(held):
        raise SystemExit(f"--test-trajectories: at most {len(held)}")
    return Data(frames[:n_tr], frames[len(frames) - n_val:], held[:args.test_trajectories], raw["files"],
                raw["seconds"])


def make_sets(data: Data, dmm: Any, with_meshes: bool) -> dict[str, Any]:
    """Stepper data sets (moved meshes cached when ``with_meshes``), the RMS training increment, timings."""
    from sciml.meshmove.mmpde import stepper_dataset

    t0 = time.perf_counter()
    mover = dmm if with_meshes else None
    sets = {name: stepper_dataset(getattr(data, name), mover) for name in ("train", "val", "test")}
    seconds = time.perf_counter() - t0
    inc = float(torch.sqrt(((sets["train"].target - sets["train"].u) ** 2).mean()))
    print(f"[data] {len(sets['train'])} training, {len(sets['val'])} validation, {len(sets['test'])} test pairs"
          f"{' with moved meshes' if with_meshes else ''} in {seconds:.0f} s; RMS increment {inc:.4f}", flush=True)
    return {"sets": sets, "rms_increment": round(inc, 5), "seconds": round(seconds, 1)}


# -- one run -------------------------------------------------------------------------------------------------------
def build(method: str, args: argparse.Namespace, scale: float) -> Any:
    from sciml.models import build_model

    common = {"depth": args.depth, "kernel": args.kernel, "scale": scale}
    if method == "MM-PDE":
        return build_model("mmpde", moving=True, width=args.width, interp_hidden=args.interp_hidden, **common)
    return build_model("mmpde", moving=False, width=args.baseline_width, **common)


def evaluate(task: Any, data_set: Any) -> dict[str, float]:
    """Metrics of a task over a whole data set (batches of 64, means over items)."""
    loader = torch.utils.data.DataLoader(data_set, batch_size=64)
    totals: dict[str, float] = {}
    task.eval()
    with torch.no_grad():
        for batch in loader:
            for k, v in task.metrics(batch).items():
                totals[k] = totals.get(k, 0.0) + v * len(batch["u"])
    task.train()
    return {k: v / len(data_set) for k, v in totals.items()}


def rollout_errors(net: Any, test: np.ndarray, starts: list[int], steps: int, dmm: Any) -> dict[str, Any]:
    """Relative L2 error after each of ``steps`` autoregressive steps from the true frames ``starts`` of every
    test trajectory: the mean at step ``steps`` and the mean curve."""
    from sciml.meshmove.mmpde import distinct, rollout

    u = distinct(test)  # (S, K, n, n)
    if max(starts) + steps >= u.shape[1]:
        raise SystemExit(f"--rollout-starts: a start + {steps} steps must be < {u.shape[1]} frames")
    u0 = np.concatenate([u[:, s] for s in starts])
    truth = np.stack([np.concatenate([u[:, s + k] for s in starts]) for k in range(steps + 1)])
    states, fallbacks = rollout(net, u0, steps, dmm if net.moving else None)
    err = np.linalg.norm((states - truth).reshape(steps + 1, len(u0), -1), axis=-1) / \
        np.linalg.norm(truth.reshape(steps + 1, len(u0), -1), axis=-1)
    curve = err.mean(axis=1)
    return {"final": float(curve[-1]), "curve": [round(float(c), 6) for c in curve[1:]], "rollouts": len(u0),
            "mesh_fallbacks": fallbacks}


def run(method: str, seed: int, args: argparse.Namespace, prep: dict[str, Any], data: Data, dmm: Any) -> dict[str, Any]:
    """Train one method with one seed and evaluate it on the test trajectories."""
    from sciml.meshmove.mmpde import MMPDETask, RoundTripTask
    from sciml.train import Trainer

    sets, scale = prep["sets"], prep["rms_increment"]
    torch.manual_seed(seed)
    net = build(method, args, scale)
    params = sum(p.numel() for p in net.parameters())
    row: dict[str, Any] = {"method": method, "seed": seed, "params": params}
    common = {"batch_size": args.batch, "val_batch_size": 64, "lr": args.lr, "schedule": "cosine",
              "device": "cpu", "seed": seed, "progress": "lines" if not args.quick else "off"}
    if method == "MM-PDE":
        rt = RoundTripTask(net)
        row["round_trip_rel_l2_bilinear"] = evaluate(rt, sets["test"])["rel_l2"]
        t0 = time.perf_counter()
        Trainer(rt, train_data=sets["train"], steps=args.pretrain_steps, eval_every=args.pretrain_steps,
                log_every=max(1, args.pretrain_steps // 5), **common).fit()
        row["pretrain_seconds"] = round(time.perf_counter() - t0, 1)
        row["round_trip_rel_l2_pretrained"] = evaluate(rt, sets["test"])["rel_l2"]
    task = MMPDETask(net, scale=scale, round_trip_weight=args.round_trip_weight)
    t0 = time.perf_counter()
    result = Trainer(task, train_data=sets["train"], val_data=sets["val"], steps=args.steps,
                     eval_every=max(1, args.steps // 4), log_every=max(1, args.steps // 20), **common).fit()
    row["train_seconds"] = round(time.perf_counter() - t0, 1)
    row["val_rel_l2"] = result.metrics.get("val/rel_l2")
    t0 = time.perf_counter()
    one = evaluate(task, sets["test"])
    roll = rollout_errors(net, data.test, args.rollout_starts, args.rollout_steps, dmm)
    row.update(one_step_rel_l2=one["rel_l2"], rollout10_rel_l2=roll["final"], rollout_curve=roll["curve"],
               rollouts=roll["rollouts"], rollout_mesh_fallbacks=roll["mesh_fallbacks"],
               eval_seconds=round(time.perf_counter() - t0, 1))
    if method == "MM-PDE":
        row["round_trip_rel_l2_final"] = evaluate(RoundTripTask(net), sets["test"])["rel_l2"]
    return row


def persistence(data: Data, args: argparse.Namespace) -> dict[str, float]:
    """Errors of ``u(t_k+1) = u(t_k)`` on the test set, with the same metrics."""
    from sciml.meshmove.mmpde import distinct

    u = distinct(data.test).astype(np.float64)
    flat = u.reshape(*u.shape[:2], -1)
    one = np.linalg.norm(flat[:, 1:] - flat[:, :-1], axis=-1) / np.linalg.norm(flat[:, 1:], axis=-1)
    k = args.rollout_steps
    roll = [np.linalg.norm(flat[:, s + k] - flat[:, s], axis=-1) / np.linalg.norm(flat[:, s + k], axis=-1)
            for s in args.rollout_starts]
    return {"one_step_rel_l2": float(one.mean()), "rollout10_rel_l2": float(np.mean(roll))}


# -- report ---------------------------------------------------------------------------------------------------------
def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    out = {}
    for method in METHODS:
        rs = [r for r in rows if r["method"] == method]
        if not rs:
            continue
        entry: dict[str, float] = {"seeds": len(rs), "params": rs[0]["params"]}
        for key in ("one_step_rel_l2", "rollout10_rel_l2", "train_seconds"):
            vals = [r[key] for r in rs]
            entry[f"{key}_mean"] = statistics.fmean(vals)
            entry[f"{key}_std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
        out[method] = entry
    return out


def verdict(summary: dict[str, dict[str, float]], key: str) -> str:
    """Which method is better on ``key``, and whether the gap exceeds the seeds' spread."""
    if not all(m in summary for m in METHODS):
        return "incomplete"
    a, b = summary["MM-PDE"], summary["uniform CNN"]
    gap = b[f"{key}_mean"] - a[f"{key}_mean"]
    spread = a[f"{key}_std"] + b[f"{key}_std"]
    better = "MM-PDE" if gap > 0 else "uniform CNN"
    rel = abs(gap) / max(b[f"{key}_mean"], a[f"{key}_mean"])
    if min(a["seeds"], b["seeds"]) < 2:
        return f"{better} lower by {rel:.1%} of the larger mean (one seed: no spread to compare the gap with)"
    clear = abs(gap) > spread
    return (f"{better} lower by {rel:.1%} of the larger mean ({'more' if clear else 'less'} than the sum of the "
            f"two seed standard deviations, {spread:.2e})")


def markdown(rows: list[dict[str, Any]], summary: dict[str, Any], ref: dict[str, float], meta: dict[str, Any]) -> str:
    lines = ["# MM-PDE vs the uniform-grid stepper (2-D Burgers)", "",
             f"Test: {meta['test_trajectories']} held-out trajectories (seed 1, never seen by the DMM or the steppers), "
             f"48 x 48 periodic points, 21 frames (dt = 0.025). `one_step_rel_l2`: relative L2 error of u(t+dt) "
             f"from the true u(t), mean over {meta['test_pairs']} pairs; `rollout10_rel_l2`: after 10 steps from the "
             f"true frames {meta['rollout_starts']}, mean over {meta['rollouts']} rollouts. One CPU thread.", "",
             "| method | seed | params | one_step_rel_l2 | rollout10_rel_l2 | train s |", "|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (METHODS.index(r["method"]), r["seed"])):
        extra = f" (+{r['pretrain_seconds']:.0f} pretraining)" if "pretrain_seconds" in r else ""
        lines.append(f"| {r['method']} | {r['seed']} | {r['params']:,} | {r['one_step_rel_l2']:.4e} | "
                     f"{r['rollout10_rel_l2']:.4e} | {r['train_seconds']:.0f}{extra} |")
    lines += ["", "| method | seeds | one_step_rel_l2 mean ± std | rollout10_rel_l2 mean ± std |", "|---|---|---|---|"]
    for method, s in summary.items():
        lines.append(f"| {method} | {s['seeds']} | {s['one_step_rel_l2_mean']:.4e} ± {s['one_step_rel_l2_std']:.1e} | "
                     f"{s['rollout10_rel_l2_mean']:.4e} ± {s['rollout10_rel_l2_std']:.1e} |")
    lines.append(f"| persistence u(t+dt) = u(t) | - | {ref['one_step_rel_l2']:.4e} | {ref['rollout10_rel_l2']:.4e} |")
    rt = [r for r in rows if "round_trip_rel_l2_bilinear" in r]
    lines += ["", f"* one step: {verdict(summary, 'one_step_rel_l2')}",
              f"* 10-step rollout: {verdict(summary, 'rollout10_rel_l2')}"]
    if rt:
        lines.append(f"* round trip u -> DMM mesh -> u on the test frames (relative L2): bilinear "
                     f"{statistics.fmean(r['round_trip_rel_l2_bilinear'] for r in rt):.2e}, after pretraining "
                     f"{statistics.fmean(r['round_trip_rel_l2_pretrained'] for r in rt):.2e}, after training "
                     f"{statistics.fmean(r['round_trip_rel_l2_final'] for r in rt):.2e} (means over seeds)")
    lines += ["", f"Training: {meta['train_pairs']} pairs of {meta['train_trajectories']} trajectories, Adam + cosine "
              f"from {meta['lr']}, {meta['steps']} steps of {meta['batch']} pairs for both methods; MM-PDE's "
              f"interpolations pretrained {meta['pretrain_steps']} steps on the round trip first. Networks and "
              "reductions: the docstring of `benchmarks/mm_pde.py`.", ""]
    return "\n".join(lines)


def mover_fingerprint() -> str:
    """The first 16 hex digits of the shipped mover's weights file's SHA-256 (which mover made the meshes)."""
    import hashlib

    from sciml.meshmove.dmm import WEIGHTS_DIR

    return hashlib.sha256((WEIGHTS_DIR / "dmm_burgers2d.pt").read_bytes()).hexdigest()[:16]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=800, help="training steps of each stepper")
    p.add_argument("--pretrain-steps", type=int, default=200, help="round-trip steps of MM-PDE's interpolations")
    p.add_argument("--batch", type=int, default=16, help="frame pairs per step")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--width", type=int, default=16, help="channels of each MM-PDE branch")
    p.add_argument("--baseline-width", type=int, default=26, help="channels of the uniform-only stepper")
    p.add_argument("--depth", type=int, default=4, help="convolutions per branch")
    p.add_argument("--kernel", type=int, default=5)
    p.add_argument("--interp-hidden", type=int, nargs="+", default=[32, 32])
    p.add_argument("--round-trip-weight", type=float, default=1.0,
                   help="MM-PDE: weight of the round-trip term while the stepper trains (0: none)")
    p.add_argument("--train-trajectories", type=int, default=134)
    p.add_argument("--val-trajectories", type=int, default=2)
    p.add_argument("--test-trajectories", type=int, default=8)
    p.add_argument("--rollout-steps", type=int, default=10)
    p.add_argument("--rollout-starts", type=int, nargs="+", default=[0, 5, 10])
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="a smoke test: a few trajectories and steps")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    if args.quick:
        args.steps, args.pretrain_steps, args.seeds = 20, 10, [0]
        args.train_trajectories, args.val_trajectories, args.test_trajectories = 3, 1, 1
        args.rollout_starts = [0]
    if args.rollout_steps != 10:
        print("note: the rows' rollout10_rel_l2 holds the error after --rollout-steps steps", flush=True)
    args.run_dir = RUN_DIR.with_name("mm_pde_quick") if args.quick else RUN_DIR
    if args.quick and args.run_dir.exists():
        shutil.rmtree(args.run_dir)
    args.run_dir.mkdir(parents=True, exist_ok=True)
    args.out = results_path(RESULTS, args.out, args.quick)
    torch.set_num_threads(args.threads)
    machine = machine_info(torch.get_num_threads())
    started = time.perf_counter()

    from sciml.meshmove import DMM

    data = load_data(args)
    dmm = DMM.pretrained()
    mover = mover_fingerprint()
    partial = args.run_dir / "partial.json"
    # MM-PDE rows depend on the shipped mover: rows made with other weights are trained again
    done = {key: row for key, row in load_partial(partial, args, "method").items()
            if key[0] != "MM-PDE" or row.get("mover") == mover}
    runs: dict[str, list[dict[str, Any]]] = {"rows": []}
    todo = [(m, s) for s in args.seeds for m in args.methods]
    prep = make_sets(data, dmm, with_meshes=any(m == "MM-PDE" and (m, s) not in done for m, s in todo)) \
        if any(key not in done for key in todo) else None
    for method, seed in todo:
        row = done.get((method, seed))
        if row is None:
            assert prep is not None
            print(f"[run] {method}, seed {seed}", flush=True)
            row = run(method, seed, args, prep, data, dmm)
            if method == "MM-PDE":
                row["mover"] = mover
        runs["rows"].append(row)
        save_partial(partial, runs, args)
        print(f"[run] {method:11s} seed {seed}: {row['params']:,} parameters, one step {row['one_step_rel_l2']:.4e}, "
              f"rollout {row['rollout10_rel_l2']:.4e} ({row['train_seconds']:.0f} s training)", flush=True)
    rows = runs["rows"]
    summary = summarise(rows)
    ref = persistence(data, args)
    n_test = len(data.test)
    meta = {"test_trajectories": n_test, "test_pairs": n_test * (data.test.shape[1] - 1),
            "rollout_starts": args.rollout_starts, "rollouts": n_test * len(args.rollout_starts),
            "train_trajectories": len(data.train), "train_pairs": len(data.train) * (data.train.shape[1] - 1),
            "lr": args.lr, "steps": args.steps, "batch": args.batch, "pretrain_steps": args.pretrain_steps}
    report = {
        "benchmark": "mm_pde", "machine": machine,
        "settings": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                     "data_files": data.files, "rms_increment": prep["rms_increment"] if prep else None,
                     "mover": f"DMM.pretrained() (sciml/meshmove/weights/dmm_burgers2d.pt, sha256 {mover}), frozen",
                     "test": "held-out seed-1 trajectories (193 x 193 file subsampled by 4 to 49 x 49 nodes)"},
        "rows": rows, "summary": summary, "persistence": ref,
        "verdict": {"one_step": verdict(summary, "one_step_rel_l2"),
                    "rollout10": verdict(summary, "rollout10_rel_l2")},
        "data_seconds": {"generation": data.seconds, "datasets_and_meshes": prep["seconds"] if prep else None},
        "elapsed_s": round(time.perf_counter() - started, 1),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    write_results(args.out, report, markdown(rows, summary, ref, meta), args.quick)


if __name__ == "__main__":
    sys.exit(main())
