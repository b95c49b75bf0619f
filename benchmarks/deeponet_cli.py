"""The DeepONet of ``sciml train poisson --model deeponet`` against the FNO of ``sciml train poisson``.

Both train on ONE data file: the Poisson problem (``-Laplace u = f``, random boundary data ``g`` and
random source ``f``, a linear operator ``(g, f) -> u``) at ``--resolution`` nodes per axis (33 by
default), ``n_train + n_test`` samples made with seed 0; the first ``n_train`` train, the last
``n_test`` test (``train_operator``'s split, which ``train_deeponet(data=...)`` shares). The FNO row is
``train_operator`` with the CLI's defaults (50 epochs, batch 20, lr 1e-3, OneCycle); every DeepONet
row is ``train_deeponet`` with the CLI's defaults (5000 full-batch Adam steps, cosine decay) and one
thing changed, first from the former defaults (Glorot init with zero biases, lr 1e-3, a three-layer
GELU branch), then from the present ones (torch's default init, lr 3e-3, a linear branch on this
affine problem). Two rows are not point solvers: a POD trunk (defined only at the grid nodes of its
modes, ``DeepONet(pod_modes=...)``) and the closed-form linear least-squares map from the default
sensors to the solution (how much the sensors tell, with no network).

Run: ``python benchmarks/deeponet_cli.py`` (``--quick``: tiny smoke run; ``--only NAME ...``: some rows;
``--resume``: keep the rows of an interrupted run). Writes ``benchmarks/results/deeponet_cli.json`` and
``.md``; training directories go to ``runs/bench/deeponet_cli/``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "deeponet_cli.json"
RUNS = ROOT / "runs" / "bench" / "deeponet_cli"

#: The former defaults of train_deeponet (before this benchmark): Glorot-normal init with zero
#: biases, lr 1e-3, a branch of three GELU layers.
FORMER: dict[str, Any] = {"lr": 1e-3, "linear_branch": False, "model_kwargs": {"init": "xavier_normal"}}

#: Row name -> (kind, options). ``width`` and ``branch_depth`` are turned into model kwargs; the
#: rest goes to train_deeponet. Each DeepONet row changes one thing from "former" or from "new".
ROWS: dict[str, tuple[str, dict[str, Any]]] = {
    "fno, CLI defaults": ("fno", {}),
    "deeponet, former CLI defaults": ("deeponet", FORMER),
    "former + all nodes as sensors": ("deeponet", {**FORMER, "max_sensors": 10**6}),
    "former + width 64": ("deeponet", {**FORMER, "width": 64}),
    "former + width 256": ("deeponet", {**FORMER, "width": 256}),
    "former + 10000 steps": ("deeponet", {**FORMER, "steps_factor": 2}),
    "former + lr 3e-3": ("deeponet", {**FORMER, "lr": 3e-3}),
    "former + no normalisation": ("deeponet", {**FORMER, "normalize": False}),
    "former + linear branch": ("deeponet", {**FORMER, "linear_branch": True}),
    "former + POD trunk, 64 modes (grid nodes only)": ("pod", {**FORMER, "pod_modes": 64}),
    "former + torch default init (random biases)": ("deeponet", {**FORMER, "model_kwargs": {}}),
    "new, but a 3-layer branch (non-affine problems)": ("deeponet", {"linear_branch": False}),
    "deeponet, new CLI defaults": ("deeponet", {}),
    "new + all nodes as sensors": ("deeponet", {"max_sensors": 10**6}),
    "new + POD trunk, 64 modes (grid nodes only)": ("pod", {"pod_modes": 64}),
    "linear least squares on the default sensors": ("lstsq", {}),
}


def _deeponet_kwargs(options: dict[str, Any], m: int, ndim: int, steps: int) -> dict[str, Any]:
    """train_deeponet keywords of a row: widths spelt out when the row changes them."""
    opts = {k: v for k, v in options.items() if k not in ("width", "steps_factor", "pod_modes")}
    opts["steps"] = steps * options.get("steps_factor", 1)
    if "width" in options:
        w = options["width"]
        linear = options.get("linear_branch")
        opts["model_kwargs"] = {**opts.get("model_kwargs", {}), "trunk": [ndim, w, w, w],
                                "branch": [m, w] if linear else [m, w, w, w]}
    return opts


def run_row(kind: str, options: dict[str, Any], args: argparse.Namespace, data: Path, out: Path) -> dict[str, Any]:
    """Train (or fit) one row on the shared file; its errors on the test split and wall seconds."""
    import numpy as np

    import sciml
    from sciml.workflows import train_deeponet, train_operator
    from sciml.workflows.deeponet import _file_data  # the split and sensors train_deeponet(data=...) uses

    problem = sciml.load_problem("poisson")
    start, cpu = time.perf_counter(), time.process_time()
    extra: dict[str, Any] = {}
    if kind == "fno":
        run = train_operator(problem, model="fno", data=data, n_train=args.n_train, n_test=args.n_test, out_dir=out,
                             epochs=args.epochs, device="cpu", seed=args.seed, progress=False)
        errors, extra["train_seconds"] = run.test_errors, run.result.train_seconds
    elif kind == "deeponet":
        max_sensors = options.get("max_sensors", 128)
        grid, sensors, _, _ = _file_data(problem, data, args.n_train, args.n_test, None, max_sensors)
        kwargs = _deeponet_kwargs(options, sensors.size, grid.ndim, args.steps)
        run = train_deeponet(problem, data=data, n_train=args.n_train, n_test=args.n_test, out_dir=out,
                             device="cpu", seed=args.seed, progress=False, **kwargs)
        errors, extra["train_seconds"] = run.test_errors, run.result.train_seconds
        extra["sensors"] = sensors.size
    elif kind == "pod":
        errors, extra = _pod_row(problem, options, args, data, out)
    else:
        errors, extra = _lstsq_row(problem, args, data)
    errors = np.asarray(errors, dtype=np.float64)
    return {"rel_l2_mean": float(errors.mean()), "rel_l2_median": float(np.median(errors)),
            "seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu, **extra}


def _pod_row(problem: Any, options: dict[str, Any], args: argparse.Namespace, data: Path,
             out: Path) -> tuple[Any, dict[str, Any]]:
    """train_deeponet's recipe with a POD trunk (modes of the standardised training outputs)."""
    import numpy as np

    from sciml.deeponet.task import DeepONetTask
    from sciml.train import Trainer
    from sciml.workflows.common import build_seeded_model
    from sciml.workflows.deeponet import _file_data

    grid, sensors, train, test = _file_data(problem, data, args.n_train, args.n_test, None, 128)
    k = min(options["pod_modes"], len(train))  # --quick trains on fewer functions than modes
    linear = options.get("linear_branch", True)
    init = options.get("model_kwargs", {}).get("init", "default")
    network = build_seeded_model("deeponet", args.seed, branch=[sensors.size, k] if linear else
                                 [sensors.size, 128, 128, k], trunk=None, pod_modes=k, pod_points=grid.size,
                                 coord_dim=grid.ndim, activation="gelu", init=init)
    task = DeepONetTask(network, sensors, problem.outputs, train=train, loss="rel_l2", normalize=True,
                        problem=problem)
    explained = network.fit_pod(task._train_y, train.x)  # the targets the task trains on (standardised)
    steps, lr = args.steps, options.get("lr", 3e-3)
    trainer = Trainer(task, phases=[("adam", steps, {"lr": lr, "schedule": "cosine"})],
                      val_data={"test": test.loader()}, eval_every=max(1, steps // 10), device="cpu",
                      seed=args.seed, out_dir=out, checkpoint_every=steps, progress=False)
    result = trainer.fit()
    errors = np.asarray(task.evaluate(test)["rel_l2"])
    return errors, {"train_seconds": result.train_seconds, "sensors": sensors.size,
                    "pod_explained": float(explained[0])}


def _lstsq_row(problem: Any, args: argparse.Namespace, data: Path) -> tuple[Any, dict[str, Any]]:
    """The least-squares affine map from the default sensors to the solution at every node."""
    import numpy as np

    from sciml.workflows.deeponet import _file_data

    _, sensors, train, test = _file_data(problem, data, args.n_train, args.n_test, None, 128)
    u = np.hstack([train.u.double().numpy(), np.ones((len(train), 1))])
    w = np.linalg.lstsq(u, train.y[:, 0].double().numpy(), rcond=None)[0]
    pred = np.hstack([test.u.double().numpy(), np.ones((len(test), 1))]) @ w
    y = test.y[:, 0].double().numpy()
    return np.linalg.norm(pred - y, axis=1) / np.linalg.norm(y, axis=1), {"sensors": sensors.size}


def trunk_diagnostics(run_dir: Path, args: argparse.Namespace, data: Path) -> dict[str, Any]:
    """How usable the trained MLP trunk's basis is, from the run's checkpoint.

    ``trunk_rank``: singular values of the trunk's features at the grid nodes above 1e-3 of the
    largest (directions the branch can use with coefficients of moderate size); ``trunk_span_error``:
    mean relative L2 of the test solutions projected onto the span of all the features and a constant
    (what the trunk could represent with arbitrarily large coefficients).
    """
    import numpy as np
    import torch

    import sciml
    from sciml.deeponet.solver import PointSolver
    from sciml.models.mlp import ACTIVATIONS
    from sciml.workflows.deeponet import _file_data

    net = PointSolver.load(run_dir, device="cpu").task.model
    grid, _, _, test = _file_data(sciml.load_problem("poisson"), data, args.n_train, args.n_test, None, 128)
    act = ACTIVATIONS[net.trunk_activation]()
    (layers,) = net.linear_layers()["trunk"]
    with torch.no_grad():
        h = torch.as_tensor(grid.points(), dtype=torch.float32)
        for k, (w, b) in enumerate(layers):
            h = torch.nn.functional.linear(h, w, b)
            h = act(h) if k < len(layers) - 1 or net.trunk_last_activation else h
    features = h.double().numpy()
    sv = np.linalg.svd(features, compute_uv=False)
    basis, _ = np.linalg.qr(np.hstack([features, np.ones((len(features), 1))]))
    y = test.y[:, 0].double().numpy()
    error = np.linalg.norm(y - (y @ basis) @ basis.T, axis=1) / np.linalg.norm(y, axis=1)
    return {"trunk_rank": int((sv > 1e-3 * sv[0]).sum()), "trunk_span_error": float(error.mean())}


def last_train_loss(run_dir: Path) -> float | None:
    """The full-batch training loss (mean relative L2) at the last step, from ``metrics.jsonl``."""
    import json

    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    losses = [r["loss"] for r in map(json.loads, path.read_text().splitlines()) if r.get("kind") == "train"]
    return float(losses[-1]) if losses else None


def finished_rows(args: argparse.Namespace) -> dict[tuple[str, int], dict[str, Any]]:
    """Rows of an interrupted run (the partial file) or of a finished one (the results file), when
    they were made with the same settings."""
    import json

    from _common import load_partial, settings

    rows = load_partial(args.out.with_suffix(".partial.json"), args, "method")
    if args.out.is_file():
        report = json.loads(args.out.read_text())
        if {k: report["settings"].get(k) for k in settings(args)} == settings(args):
            rows = {**{(r["method"], r["seed"]): r for r in report["rows"]}, **rows}
    return rows


def markdown(rows: list[dict[str, Any]], settings: dict[str, Any], machine: dict[str, Any]) -> str:
    fno = next((r for r in rows if r["method"].startswith("fno")), None)
    lines = ["# DeepONet from the CLI against the FNO, Poisson, one data set", "",
             f"Poisson at {settings['resolution']} x {settings['resolution']}, {settings['n_train']} train / "
             f"{settings['n_test']} test samples of one file (seed {settings['seed']}); DeepONet "
             f"{settings['steps']} full-batch steps, FNO {settings['epochs']} epochs; one torch thread on "
             f"{machine['cpu']} (a busy machine: seconds are wall time, indicative only).", "",
             "| configuration | rel L2 mean | rel L2 median | x FNO | train rel L2 | sensors | trunk rank "
             "| trunk span error | seconds | CPU seconds |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = f"{r['rel_l2_mean'] / fno['rel_l2_mean']:.1f}" if fno else "-"
        span = f"{100 * r['trunk_span_error']:.2f} %" if "trunk_span_error" in r else "-"
        cpu = f"{r['cpu_seconds']:.0f}" if "cpu_seconds" in r else "-"  # rows of runs before it was recorded
        train = f"{100 * r['train_loss']:.2f} %" if r.get("train_loss") is not None else "-"
        lines.append(f"| {r['method']} | {100 * r['rel_l2_mean']:.2f} % | {100 * r['rel_l2_median']:.2f} % | {ratio} "
                     f"| {train} | {r.get('sensors', '-')} | {r.get('trunk_rank', '-')} | {span} | {r['seconds']:.0f} | {cpu} |")
    lines += ["", "Command: `" + settings["command"] + "`. Each row is `train_operator` / `train_deeponet` on the file "
              "(`data=`), with the options in `ROWS` of `benchmarks/deeponet_cli.py`. Trunk rank: singular values "
              "of the MLP trunk's features at the nodes above 1e-3 of the largest; trunk span error: the test "
              "solutions projected onto the span of all its features (`trunk_diagnostics`); train rel L2: the "
              "full-batch loss at the last step.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from _common import machine_info, results_path, save_partial, settings, write_results

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test), writes *.quick.json")
    parser.add_argument("--resolution", type=int, default=33)
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--n-test", type=int, default=100)
    parser.add_argument("--steps", type=int, default=5000, help="DeepONet full-batch steps (the CLI's default)")
    parser.add_argument("--epochs", type=int, default=50, help="FNO epochs (the CLI's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", default=None, metavar="ROW", help="rows to run (names of ROWS)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the finished rows of an interrupted run, or of the results file, with the same settings")
    parser.add_argument("--rerun", nargs="+", default=[], metavar="ROW",
                        help="with --resume: train these rows again (e.g. to time them on a quieter machine)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.resolution, args.n_train, args.n_test, args.steps, args.epochs = 17, 40, 8, 20, 1
    args.out = results_path(RESULTS, args.out, args.quick)

    import torch

    torch.set_num_threads(1)
    import sciml
    from sciml.data import generate

    names = list(ROWS) if args.only is None else args.only
    del args.only  # which rows run is not a setting: --resume keeps finished rows whatever --only says
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        raise SystemExit(f"unknown rows {unknown}; expected some of {list(ROWS)}")
    machine = machine_info(torch.get_num_threads())
    problem = sciml.load_problem("poisson")
    work = RUNS / ("quick" if args.quick else f"r{args.resolution}")
    data = generate(problem, args.n_train + args.n_test, problem.resolve_grid(args.resolution), seed=args.seed,
                    path=work / f"data_{args.resolution}.h5", progress=False)
    partial = args.out.with_suffix(".partial.json")
    resume, rerun = args.resume, args.rerun
    del args.resume, args.rerun  # not settings either (and not part of the recorded command)
    done = {k: v for k, v in finished_rows(args).items() if k[0] not in rerun} if resume else {}
    rows: list[dict[str, Any]] = []
    for name in names:
        kind, options = ROWS[name]
        row = done.get((name, args.seed))
        slug = "".join(c if c.isalnum() else "_" for c in name)[:60]
        if row is None:
            shutil.rmtree(work / slug, ignore_errors=True)  # a fresh run: the Trainer refuses old checkpoints
            row = {"method": name, "kind": kind, "options": options, "seed": args.seed,
                   **run_row(kind, options, args, data, work / slug)}
        if kind == "deeponet" and "trunk_rank" not in row and (work / slug).is_dir():
            row.update(trunk_diagnostics(work / slug, args, data))
        if kind in ("deeponet", "pod") and "train_loss" not in row:  # full batch: the training set's error
            row["train_loss"] = last_train_loss(work / slug)
        rows.append(row)
        print(f"{name:55s} rel L2 mean {row['rel_l2_mean']:.4f} median {row['rel_l2_median']:.4f} "
              f"{row['seconds']:.0f} s", flush=True)
        save_partial(partial, {"rows": rows}, args)
    command = "python benchmarks/deeponet_cli.py" + (" --quick" if args.quick else "")
    report_settings = {**settings(args), "command": command, "data": str(Path(data).name),
                       "split": "first n_train train, last n_test test"}
    report = {"benchmark": "deeponet_cli", "machine": machine, "settings": report_settings, "rows": rows}
    write_results(args.out, report, markdown(rows, report_settings, machine), args.quick)
    if partial.is_file():
        partial.unlink()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
