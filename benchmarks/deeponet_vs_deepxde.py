"""sciml's DeepONet against DeepXDE's ``DeepONetCartesianProd`` (PyTorch backend) on identical work.

The DeepONet paper's aligned antiderivative benchmark, trained by both libraries in one process:

* the same data: 150 training and 1000 test functions of ``sciml.load_problem("antiderivative")``
  (``u`` at 100 sensors, ``s`` at the same 100 points: the Cartesian-product layout);
* the same network: branch [100, 40, 40], trunk [1, 40, 40], ReLU (also after the trunk's last layer,
  DeepXDE's convention), Glorot-normal weights and zero biases, a trainable output bias; both start
  from **the same initial weights** (sciml's are copied into DeepXDE's network);
* the same optimiser, loss and length: full-batch Adam, lr 1e-3, the same number of steps; the loss is
  the paper's MSE (``--loss mse``, the default) or the mean per-function relative L2 error
  (``--loss rel_l2``: DeepXDE's ``"mean l2 relative error"`` loss, sciml's ``loss="rel_l2"``);
* the same evaluation: the mean relative L2 error on the test set every ``--eval-every`` steps.

Differences that remain, by design of each library: sciml trains through its ``Trainer`` (NaN/Inf
guard, logging, checkpoint-ready state) with torch's fused CPU Adam kernel on its single flat weight
vector and a hand-written fused backward (:mod:`sciml.models.deeponet`); DeepXDE uses torch's default
(single-tensor) Adam on its nine parameter tensors and autograd through ``nn.Linear`` layers, and
differentiates with respect to its inputs as well (it marks them ``requires_grad``). Both are exact
Adam on the same loss; their iterates differ only by floating-point rounding.

Measured per run: seconds per training step (median over steps after a warm-up of 100 steps, so
evaluation steps do not count), total training time, the final test error (recomputed here with
the same NumPy code for both), and the training time each needs to reach a common error level
(the worse of the two final errors of that seed; evaluation time excluded, i.e. per-step times
summed with evaluation steps counted at the median), and, the headline speed, seconds per step taken
in alternating blocks of 300 steps of each library (:func:`interleaved_timing`: a shared machine's
speed drifts over seconds, and blocks taken in turns see the same drift). Two more sciml runs
isolate the causes:
``sciml_no_trainer`` trains the same model with a bare loop (forward, ``torch.autograd.grad``, fused
Adam): the difference to ``sciml`` is the Trainer's per-step overhead; ``sciml_default_adam`` uses
torch's default single-tensor Adam (DeepXDE's): its iterates equal DeepXDE's up to rounding, so the
final errors show that the two networks compute the same thing. Runs alternate their order from
seed to seed.

Run: ``python benchmarks/deeponet_vs_deepxde.py --threads 1 [--loss rel_l2]`` (10 seeds by default,
35 to 50 seconds per seed on one core); writes ``benchmarks/results/deeponet_vs_deepxde.json``
(``deeponet_vs_deepxde_rel_l2.json`` for the relative loss). Importing DeepXDE prints its backend and writes
``~/.deepxde/config.json``; both happen here only, never in sciml.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import machine_info

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "deeponet_vs_deepxde.json"
sys.path.insert(0, str(ROOT))

BRANCH, TRUNK = [100, 40, 40], [1, 40, 40]
WARMUP = 100


def errors(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Test MSE and mean per-function relative L2, ``pred`` and ``y`` of shape (N, P)."""
    rel = np.linalg.norm(pred - y, axis=1) / np.linalg.norm(y, axis=1)
    return {"mse": float(np.mean((pred - y) ** 2)), "rel_l2_mean": float(rel.mean())}


def summarise(step_end: list[float], start: float, curve: list[tuple[int, float]],
              cpu_end: list[float] | None = None, cpu_start: float = 0.0) -> dict[str, Any]:
    """Per-step durations, training time with evaluation steps counted at the median, and the curve.

    ``cpu_end``: the thread's CPU clock at the same instants; its per-step median does not count the
    time the process waits for a core, so it is the steadier measure on a shared machine.
    """
    times = np.diff(np.array([start, *step_end]))
    median = float(np.median(times[WARMUP:]))
    evaluated = {step for step, _ in curve}
    clean = np.array([median if (i + 1) in evaluated else t for i, t in enumerate(times)])
    cumulative = np.cumsum(clean)
    out = {"s_per_step_median": median, "s_per_step_mean": float(times[WARMUP:].mean()),
           "train_seconds": float(cumulative[-1]), "wall_seconds": float(step_end[-1] - start),
           "curve": [[step, err, float(cumulative[step - 1])] for step, err in curve]}
    if cpu_end is not None:
        cpu = np.diff(np.array([cpu_start, *cpu_end]))
        out["cpu_s_per_step_median"] = float(np.median(cpu[WARMUP:]))
    return out


def time_to(curve: list[list[float]], target: float) -> float | None:
    for _, err, seconds in curve:
        if err <= target:
            return seconds
    return None


def initial_weights(seed: int) -> dict[str, Any]:
    """The initial state of sciml's network for ``seed`` (what :func:`run_sciml` starts from)."""
    import torch

    from sciml.models import build_model

    torch.manual_seed(seed)
    model = build_model("deeponet", branch=BRANCH, trunk=TRUNK, activation="relu", init="xavier_normal")
    return {k: v.clone() for k, v in model.state_dict().items()}


def run_sciml(data: dict, seed: int, steps: int, eval_every: int, loss: str,
              fused: bool = True) -> tuple[dict, Any]:
    import torch

    from sciml.deeponet.task import DeepONetTask
    from sciml.models import build_model
    from sciml.train import Callback, Trainer

    torch.manual_seed(seed)
    model = build_model("deeponet", branch=BRANCH, trunk=TRUNK, activation="relu", init="xavier_normal")
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    task = DeepONetTask(model, data["sensors"], ["s"], train=data["train"], loss=loss)

    class Clock(Callback):
        def __init__(self) -> None:
            self.ends: list[float] = []
            self.cpu: list[float] = []
            self.curve: list[tuple[int, float]] = []
            self.start = self.cpu_start = 0.0

        def on_fit_start(self, trainer: Any) -> None:
            self.start, self.cpu_start = time.perf_counter(), time.thread_time()

        def on_step_end(self, trainer: Any, step: int, logs: dict) -> None:
            self.ends.append(time.perf_counter())
            self.cpu.append(time.thread_time())

        def on_evaluate(self, trainer: Any, step: int, metrics: dict) -> None:
            self.curve.append((step, float(metrics["test/rel_l2"])))

    clock = Clock()
    Trainer(task, phases=[("adam", steps, {"lr": 1e-3, "fused": fused})],
            val_data={"test": data["test"].loader()}, eval_every=eval_every, log_every=1000, device="cpu",
            progress=False, seed=seed, callbacks=[clock]).fit()
    with torch.no_grad():
        pred = task(data["test"].u, data["test"].x)[:, 0].double().numpy()
    out = summarise(clock.ends, clock.start, clock.curve, clock.cpu, clock.cpu_start)
    out["final"] = errors(pred, data["y_test"])
    return out, initial


def run_bare(data: dict, initial: dict, steps: int, loss_name: str) -> dict:
    """The same sciml model and loss without the Trainer: forward + autograd.grad + fused Adam."""
    import torch

    from sciml.models import build_model

    model = build_model("deeponet", branch=BRANCH, trunk=TRUNK, activation="relu", init="xavier_normal")
    model.load_state_dict(initial)
    params = [p for p in model.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3, fused=True)
    u, x, y = data["train"].u, data["train"].x, data["train"].y
    ends, cpu, start, cpu_start = [], [], time.perf_counter(), time.thread_time()
    for _ in range(steps):
        loss = model.mse(u, x, y) if loss_name == "mse" else model.relative_l2(u, x, y)
        for p, g in zip(params, torch.autograd.grad(loss, params)):
            p.grad = g
        opt.step()
        ends.append(time.perf_counter())
        cpu.append(time.thread_time())
    with torch.no_grad():
        pred = model(data["test"].u, data["test"].x)[:, 0].double().numpy()
    out = summarise(ends, start, [], cpu, cpu_start)
    out["final"] = errors(pred, data["y_test"])
    return out


def deepxde_model(data: dict, initial: dict, seed: int, loss: str) -> Any:
    """DeepXDE's ``DeepONetCartesianProd`` on the same data, starting from sciml's initial weights."""
    import deepxde as dde
    import torch

    dde.config.set_random_seed(seed)
    train, test = data["train"], data["test"]
    dataset = dde.data.TripleCartesianProd(
        X_train=(train.u.numpy(), train.x.numpy()), y_train=train.y[:, 0].numpy(),
        X_test=(test.u.numpy(), test.x.numpy()), y_test=test.y[:, 0].numpy())
    net = dde.nn.DeepONetCartesianProd(BRANCH, TRUNK, "relu", "Glorot normal")
    with torch.no_grad():  # identical initial weights: sciml's packed layers, in order
        from sciml.models import build_model

        ours = build_model("deeponet", branch=BRANCH, trunk=TRUNK)
        ours.load_state_dict(initial)
        layers = ours.linear_layers()
        for part, mine in (("branch", net.branch), ("trunk", net.trunk)):
            for linear, (w, b) in zip(mine.linears, layers[part][0]):
                linear.weight.copy_(w)
                linear.bias.copy_(b)
        net.b[0].copy_(ours.bias[0])
    model = dde.Model(dataset, net)
    model.compile("adam", lr=1e-3, loss="mse" if loss == "mse" else "mean l2 relative error",
                  metrics=["mean l2 relative error"])
    return model


def run_deepxde(data: dict, initial: dict, seed: int, steps: int, eval_every: int, loss: str) -> dict:
    import deepxde as dde

    model = deepxde_model(data, initial, seed, loss)
    test = data["test"]

    class Clock(dde.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.ends: list[float] = []
            self.cpu: list[float] = []
            self.curve: list[tuple[int, float]] = []
            self.start = self.cpu_start = 0.0

        def on_train_begin(self) -> None:
            self.start, self.cpu_start = time.perf_counter(), time.thread_time()

        def on_batch_end(self) -> None:
            self.ends.append(time.perf_counter())
            self.cpu.append(time.thread_time())
            state = self.model.train_state
            if state.step % eval_every == 0:
                self.curve.append((int(state.step), float(state.metrics_test[0])))

    clock = Clock()
    model.train(iterations=steps, display_every=eval_every, callbacks=[clock], verbose=0)
    pred = model.predict((test.u.numpy(), test.x.numpy())).astype(np.float64)
    out = summarise(clock.ends, clock.start, clock.curve, clock.cpu, clock.cpu_start)
    out["final"] = errors(pred, data["y_test"])
    out["optimizer"] = repr(model.opt).split("\n")[0]
    return out


def interleaved_timing(data: dict, seed: int, loss: str, blocks: int, block_steps: int,
                       skip: int = 20) -> dict[str, Any]:
    """Seconds per step of both libraries measured in alternating blocks of ``block_steps`` steps.

    A shared machine's speed drifts over seconds; whole runs one after the other see different
    drifts, blocks of a fraction of a second taken in turns see the same. Per block the first
    ``skip`` steps (and DeepXDE's last, which includes its test evaluation) are left out; the
    medians over all kept steps are returned. Both trainings continue from block to block (sciml
    through a new Trainer on the same task each block, DeepXDE through ``model.train`` again).
    """
    import deepxde as dde

    from sciml.deeponet.task import DeepONetTask
    from sciml.models import build_model
    from sciml.train import Callback, Trainer

    initial = initial_weights(seed)
    model = build_model("deeponet", branch=BRANCH, trunk=TRUNK, activation="relu", init="xavier_normal")
    model.load_state_dict(initial)
    task = DeepONetTask(model, data["sensors"], ["s"], train=data["train"], loss=loss)
    theirs = deepxde_model(data, initial, seed, loss)

    class Ours(Callback):
        def __init__(self) -> None:
            self.ends: list[float] = []

        def on_step_end(self, trainer: Any, step: int, logs: dict) -> None:
            self.ends.append(time.perf_counter())

    class Theirs(dde.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.ends: list[float] = []

        def on_batch_end(self) -> None:
            self.ends.append(time.perf_counter())

    kept: dict[str, list[float]] = {"sciml": [], "deepxde": []}
    for block in range(blocks):
        for who in (("sciml", "deepxde") if block % 2 == 0 else ("deepxde", "sciml")):
            if who == "sciml":
                clock = Ours()
                Trainer(task, phases=[("adam", block_steps, {"lr": 1e-3, "fused": True})], eval_every=block_steps,
                        log_every=block_steps, device="cpu", progress=False, seed=seed, callbacks=[clock]).fit()
                kept["sciml"].extend(np.diff(clock.ends)[skip:])
            else:
                dclock = Theirs()
                theirs.train(iterations=block_steps, display_every=block_steps, callbacks=[dclock], verbose=0)
                kept["deepxde"].extend(np.diff(dclock.ends)[skip:-1])
    median = {k: float(np.median(v)) for k, v in kept.items()}
    return {"s_per_step_median": median, "speedup": median["deepxde"] / median["sciml"],
            "steps_kept": {k: len(v) for k, v in kept.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--blocks", type=int, default=20,
                        help="alternating timing blocks per seed (0: skip the interleaved timing)")
    parser.add_argument("--block-steps", type=int, default=300)
    parser.add_argument("--loss", choices=("mse", "rel_l2"), default="mse",
                        help="training loss of both libraries (mse: the paper's)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.out is None:
        args.out = RESULTS if args.loss == "mse" else RESULTS.with_name(f"{RESULTS.stem}_{args.loss}.json")
    os.environ["DDE_BACKEND"] = "pytorch"
    import torch

    torch.set_num_threads(args.threads)
    try:
        import deepxde  # noqa: F401  (prints its backend once)
    except ImportError:
        print("deepxde is not installed; nothing to compare")
        return
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # torch.optim's first use imports dynamo (~2 s)

    import sciml
    from sciml.deeponet import Sensors, make_deeponet_data

    problem = sciml.load_problem("antiderivative")
    sensors = Sensors.grid_nodes(problem.grid, "u")
    data = {"sensors": sensors, "train": make_deeponet_data(problem, 150, sensors, seed=0),
            "test": make_deeponet_data(problem, 1000, sensors, seed=1)}
    data["y_test"] = data["test"].y[:, 0].double().numpy()

    runs = []
    for seed in range(args.seeds):
        order = ["deepxde", "sciml", "bare", "default_adam"]
        order = order if seed % 2 == 0 else order[::-1]
        result: dict[str, Any] = {"seed": seed, "order": order}
        initial = initial_weights(seed)
        for name in order:
            if name == "sciml":
                result["sciml"], start = run_sciml(data, seed, args.steps, args.eval_every, args.loss)
                assert all(torch.equal(start[k], initial[k]) for k in initial)  # the same start for both
            elif name == "bare":
                result["sciml_no_trainer"] = run_bare(data, initial, args.steps, args.loss)
            elif name == "default_adam":
                result["sciml_default_adam"], _ = run_sciml(data, seed, args.steps, args.eval_every,
                                                            args.loss, fused=False)
            else:
                result["deepxde"] = run_deepxde(data, initial, seed, args.steps, args.eval_every, args.loss)
        # the worse of the two last evaluated errors: both runs reach it
        target = max(result["sciml"]["curve"][-1][1], result["deepxde"]["curve"][-1][1])
        result["target_rel_l2"] = target
        for name in ("sciml", "deepxde"):
            result[name]["seconds_to_target"] = time_to(result[name]["curve"], target)
        if args.blocks:
            result["interleaved"] = interleaved_timing(data, seed, args.loss, args.blocks, args.block_steps)
        runs.append(result)
        names = ("sciml", "sciml_no_trainer", "sciml_default_adam", "deepxde")
        ms = {k: result[k]["s_per_step_median"] * 1e3 for k in names}
        cpu = {k: result[k]["cpu_s_per_step_median"] * 1e3 for k in names}
        err = {k: result[k]["final"]["rel_l2_mean"] for k in names}
        print(f"seed {seed}: ms/step (wall | cpu) sciml {ms['sciml']:.3f} | {cpu['sciml']:.3f}, no Trainer "
              f"{ms['sciml_no_trainer']:.3f} | {cpu['sciml_no_trainer']:.3f}, default Adam "
              f"{ms['sciml_default_adam']:.3f} | {cpu['sciml_default_adam']:.3f}, DeepXDE {ms['deepxde']:.3f} | "
              f"{cpu['deepxde']:.3f}; final rel L2 sciml {err['sciml']:.4f} (default Adam "
              f"{err['sciml_default_adam']:.4f}), DeepXDE {err['deepxde']:.4f}", flush=True)
        if args.blocks:
            inter = result["interleaved"]
            print(f"  interleaved blocks: sciml {inter['s_per_step_median']['sciml'] * 1e3:.3f} ms/step, DeepXDE "
                  f"{inter['s_per_step_median']['deepxde'] * 1e3:.3f} ms/step: {inter['speedup']:.2f}x", flush=True)

    names = ("sciml", "sciml_no_trainer", "sciml_default_adam", "deepxde")

    def column(path: tuple[str, ...]) -> list[Any]:
        values = []
        for r in runs:
            v: Any = r
            for key in path:
                v = v[key]
            values.append(v)
        return values

    def med(path: tuple[str, ...]) -> float:
        values = column(path)
        return float(statistics.median(values)) if None not in values else float("nan")

    def spread(values: list[float]) -> dict[str, float]:
        """Mean, sample standard deviation and standard error of the mean over the seeds."""
        a = np.asarray(values, dtype=float)
        std = float(a.std(ddof=1)) if a.size > 1 else float("nan")
        return {"mean": float(a.mean()), "std": std, "sem": std / np.sqrt(a.size), "min": float(a.min()),
                "max": float(a.max())}

    rel = {k: column((k, "final", "rel_l2_mean")) for k in names}
    summary = {
        "s_per_step_median": {k: med((k, "s_per_step_median")) for k in names},
        "cpu_s_per_step_median": {k: med((k, "cpu_s_per_step_median")) for k in names},
        "final_rel_l2_over_seeds": {k: spread(rel[k]) for k in names},
        # paired by seed (same initial weights): the difference of each variant to DeepXDE
        "final_rel_l2_minus_deepxde": {k: spread(list(np.subtract(rel[k], rel["deepxde"])))
                                       for k in names if k != "deepxde"},
        "final_rel_l2_median_over_seeds": {k: float(statistics.median(rel[k])) for k in names},
        "final_mse": {"sciml": med(("sciml", "final", "mse")), "deepxde": med(("deepxde", "final", "mse"))},
        "seconds_to_target": {"sciml": med(("sciml", "seconds_to_target")),
                              "deepxde": med(("deepxde", "seconds_to_target"))},
        "train_seconds": {"sciml": med(("sciml", "train_seconds")),
                          "deepxde": med(("deepxde", "train_seconds"))},
    }
    for clock in ("s_per_step_median", "cpu_s_per_step_median"):
        s = summary[clock]
        key = "speedup_per_step" if clock == "s_per_step_median" else "speedup_per_step_cpu"
        summary[key] = {k: s["deepxde"] / s[k] for k in names if k != "deepxde"}
    # per seed: each pair of runs sees the same load, so the ratio is steadier than the ratio of medians
    for clock, key in (("s_per_step_median", "speedup_per_step_per_seed"),
                       ("cpu_s_per_step_median", "speedup_per_step_cpu_per_seed")):
        ratios = [r["deepxde"][clock] / r["sciml"][clock] for r in runs]
        summary[key] = {**spread(ratios), "median": float(statistics.median(ratios))}
    if args.blocks:
        ratios = [r["interleaved"]["speedup"] for r in runs]
        summary["speedup_per_step_interleaved"] = {**spread(ratios), "median": float(statistics.median(ratios))}
        summary["s_per_step_interleaved_median"] = {
            k: float(statistics.median(r["interleaved"]["s_per_step_median"][k] for r in runs))
            for k in ("sciml", "deepxde")}
    to_target = summary["seconds_to_target"]
    summary["speedup_to_target"] = to_target["deepxde"] / to_target["sciml"]
    import deepxde

    report = {
        "benchmark": "DeepONet, antiderivative (aligned): sciml vs DeepXDE DeepONetCartesianProd",
        "settings": {"train_functions": 150, "test_functions": 1000, "sensors": 100, "points": 100,
                     "branch": BRANCH, "trunk": TRUNK, "activation": "relu",
                     "init": "Glorot normal, zero biases (the same initial weights for both)",
                     "optimizer": "Adam lr 1e-3, full batch", "steps": args.steps,
                     "loss": {"mse": "MSE (the paper's)",
                              "rel_l2": "mean per-function relative L2 error"}[args.loss],
                     "eval_every": args.eval_every, "seeds": args.seeds, "warmup_steps_excluded": WARMUP,
                     "interleaved_blocks": args.blocks, "interleaved_block_steps": args.block_steps},
        "machine": machine_info(args.threads) | {"deepxde": deepxde.__version__},
        "summary": summary,
        "runs": runs,
        "notes": [
            "s/step: median over steps after the warm-up; evaluation steps do not move the median. "
            "cpu_s_per_step: the same median of the thread's CPU time per step, which leaves out the time "
            "spent waiting for a core on a shared machine.",
            "final_rel_l2_over_seeds: mean, sample std, standard error, min and max over the seeds of the "
            "final mean relative L2 test error; final_rel_l2_minus_deepxde: the same statistics of the "
            "per-seed difference to DeepXDE (paired: the same data and initial weights). Fused and default "
            "Adam are the same algorithm up to rounding; over 10k steps rounding differences grow into "
            "seed-to-seed-sized differences of the final error, so only the spread over seeds is meaningful.",
            "seconds_to_target: training time until the test error first reaches the worse of the two "
            "last evaluated errors of the seed, evaluation time excluded; medians over seeds.",
            "sciml uses torch's fused CPU Adam on one flat weight vector; DeepXDE torch's default "
            "single-tensor Adam on nine tensors. Both are Adam with the same hyperparameters.",
            "sciml_no_trainer: the same sciml model and loss in a bare loop (isolates the Trainer's cost).",
            "speedup_per_step_interleaved: per seed, both libraries train in alternating blocks of "
            "interleaved_block_steps steps (interleaved_blocks blocks each, the first 20 steps of a block "
            "left out); the ratio of the medians of the kept steps. Blocks of a fraction of a second see the "
            "same machine speed, whole runs taken one after the other do not; this is the headline number.",
            "sciml_default_adam: sciml through the Trainer with torch's default (single-tensor) Adam, the "
            "implementation DeepXDE uses: its iterates, hence final errors, match DeepXDE's up to rounding.",
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps(summary, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
