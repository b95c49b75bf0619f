"""Train the shipped 2-D DCDM network (``sciml/linalg/weights/dcdm_2d.pt``) and measure it on fresh layouts.

The shipped network (``--network multilevel``, the default) is
:class:`~sciml.models.dcdm_multilevel.MultilevelSPDNet`: a symmetric positive definite linear
multilevel map by construction (learned BPX-like level operators; its module notes). The first
network tried, the paper's :class:`~sciml.models.dcdm_net.DCDMNet` with tied weights
(``--network tied``, described below), is kept for comparison: it reached 60 iterations at 64^2
where CG needs about 200 and the untrained multilevel network already needs 47, and one level of
pooling cannot follow the grid as it grows.

What it does
------------
1. **Data.** ``--layouts`` random obstacle layouts (``problems/poisson_obstacles.py``, :class:`ObstacleLayout`,
   seed ``--seed``) on a ``--n`` x ``--n`` grid, each with its system :func:`obstacle_system` and, per
   layout, ``--ritz`` Ritz right-hand sides (:func:`sciml.linalg.lanczos.training_rhs` from
   ``--lanczos`` Lanczos steps: the reference recipe, low modes weighted by 9), ``--smoke`` smoke-
   projection right-hand sides, ``--range`` ``A g`` and ``--white`` white-noise right-hand sides, all
   scaled to unit norm (:func:`~sciml.linalg.dcdm.dcdm_dataset`), with their solutions for the
   ``energy`` loss (``--loss``, the default). Four more layouts (seed ``--seed + 1``) make a
   validation set whose loss the Trainer reports. The defaults hold no Ritz vectors: with the energy
   loss white ``b`` (smooth solutions) and ``A g`` (rough solutions) cover both ends of the spectrum,
   and the reference's low-mode bias is what misleads its one-step loss (module notes of
   :mod:`sciml.linalg.dcdm`). ``--loss dcdm --ritz 48 --white 0 --range 8`` is the reference's recipe.
2. **Training.** :class:`~sciml.linalg.dcdm.DCDMTask` through the one :class:`~sciml.train.Trainer`:
   Adam, ``--lr`` with a cosine schedule to 0, batch ``--batch``, on one CPU thread. The number of
   steps fills ``--minutes`` of training time: a few timed steps estimate the cost of one, and the
   count is stored in ``runs/bench/dcdm_train/plan.json``, so that a resumed run (the Trainer's exact
   resume from the checkpoints there) keeps the same schedule. ``--steps`` sets the count directly.
3. **Evaluation** on layouts never trained on (seed ``--eval-seed``), the same layouts drawn at every
   size of ``--eval-sizes``: iterations to a relative residual of ``--rtol`` of the trained DCDM, of the
   untrained starting network, of CG and of AMG-PCG, for a smoke right-hand side per layout.
4. **Outputs.** The network's state dict and JSON metadata (how it was made, what it scored) through
   :func:`~sciml.linalg.dcdm.save_weights`, then reloaded with :meth:`DCDM.pretrained` and checked to
   give the same iterations; ``benchmarks/results/dcdm_train.json`` and ``dcdm_train.md``.

The tied network: a symmetric positive definite linear map
----------------------------------------------------------
With ``--network tied`` the shipped model is a plain :class:`~sciml.models.dcdm_net.DCDMNet` (``mask_channel=False``, the
paper's single input), loaded by :meth:`DCDM.pretrained` like any other. During training its weights
are *tied* (:class:`SPDLinearDCDM`), so that the network computes ``q = M r`` with ``M`` linear,
symmetric and positive definite on the fluid cells:

* all biases are 0 and every layer works on channel pairs ``(u, -u)``. Since ``relu(z) - relu(-z) = z``,
  each residual pair then adds a linear function ``J K s`` to the signal ``s`` (the difference of the
  two halves), so the whole network is linear in its input;
* the layers after the pool are the transposes of those before it, in reverse order (a 'same'
  zero-padded convolution's transpose is the convolution with the kernel flipped and its channels
  swapped). The nearest-neighbour upsampling is 4 times the transpose of the 2 x 2 average pool; the
  head is the stem's transpose; and the middle coarse pair has ``J = K^T``, so it is ``I + K^T K``.
  ``M`` is then ``G^T (I + P C P^T / 4) G`` with ``C`` symmetric positive definite, and the output mask
  keeps it symmetric on the fluid cells.

DCDM with a symmetric positive definite linear ``M`` is preconditioned CG with ``M``, so it cannot
stall. The free ReLU network does stall. Trained here on the same data (600-800 steps, runs of this
script's design), its DCDM stopped at a relative residual of 0.15-0.6 on fresh layouts and never
reached 1e-6 in 300-500 iterations. Several set-ups were tried: biases and the mask channel (the
default network), biases frozen at 0, zero-initialised residual branches, an identity-like start,
extra low-mode Ritz vectors, residuals collected from DCDM's own iterations, and a linear but
unsymmetric network. They all stalled. The training loss is invariant to the sign of ``q``, so
nothing keeps the map positive: a network that is good on most right-hand sides can still be
orthogonal to some residual, and DCDM stalls there. The tied network had a training loss about as
low (0.17 against 0.13-0.16) and needed 80 and 69 iterations where CG needs 209 and 196 at 64^2.

Run: ``OMP_NUM_THREADS=1 nohup python benchmarks/dcdm_train.py > runs/bench/dcdm_train.log 2>&1 &``
(about ``--minutes`` of training plus a few minutes of data and evaluation; rerun the same command to
resume), ``--quick`` for a one-minute smoke test that writes ``dcdm_train.quick.json`` and its weights
to a temporary folder, never the shipped ones.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import machine_info, problem_module, results_path, saved_plan, write_results
from torch import Tensor, nn
from torch.func import functional_call
from torch.utils.data import Subset

from sciml.train.callbacks import Callback

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "dcdm_train.json"
RUN_DIR = ROOT / "runs" / "bench" / "dcdm_train"
WEIGHTS = ROOT / "sciml" / "linalg" / "weights" / "dcdm_2d.pt"
# --network -> (registry name, constructor kwargs) of the network that is shipped.
NETWORKS = {"multilevel": ("dcdm_multilevel", {"ndim": 2}),
            "tied": ("dcdm_net", {"ndim": 2, "mask_channel": False})}  # DCDMNet: 16 channels, 2/3/2 pairs
VAL_LAYOUTS = 4


# -- the tied (symmetric positive definite, linear) parametrisation ----------------------------------------
def conv_transpose(w: Tensor) -> Tensor:
    """The kernel of the transpose of a stride-1, zero-padded 'same' convolution with kernel ``w``."""
    return w.transpose(0, 1).flip(tuple(range(2, w.ndim)))


def paired(k: Tensor) -> Tensor:
    """The ``(2c, 2c, ...)`` kernel that maps channel pairs ``(u, -u)`` to ``(k u, -k u)``."""
    top = torch.cat([k, -k], 1)
    return torch.cat([top, -top], 0)


class SPDLinearDCDM(nn.Module):
    """Free parameters that fill every weight of a :class:`DCDMNet` so that it computes ``M r`` with ``M``
    linear, symmetric and positive definite (see the module notes). ``forward`` runs the network with
    those weights; :meth:`materialize` writes them into it, for saving as a plain state dict.

    The free parameters: the stem's ``c = channels / 2`` centre taps ``k``, the two kernels ``(K, J)``
    of every pair before the pool and of the coarse pairs before the middle one, and the kernel of the
    middle coarse pair.
    """

    def __init__(self, net: nn.Module, init_scale: float = 0.1) -> None:
        super().__init__()
        if net.mask_channel or net.channels % 2:
            raise ValueError("SPDLinearDCDM needs a DCDMNet without the mask channel and with an even channel count")
        if len(net.before) != len(net.after) or len(net.coarse) % 2 != 1:
            raise ValueError("SPDLinearDCDM needs as many pairs after the pool as before, and an odd number "
                             "of coarse pairs")
        self._net = [net]  # a list: the network's own parameters are overwritten, never trained
        self.ndim, self.model_spec = net.ndim, getattr(net, "model_spec", None)
        c, d = net.channels // 2, net.ndim

        def kernel() -> nn.Parameter:
            w = torch.empty(c, c, *([3] * d))
            nn.init.kaiming_uniform_(w, a=math.sqrt(5))  # torch's default for a convolution
            return nn.Parameter(w * init_scale)

        k = 0.05 * torch.randn(c)
        k[0] = math.sqrt(0.5)  # so that the start is close to I + P P^T / 4 (the signal is 2 k r)
        self.k = nn.Parameter(k)
        self.before_k = nn.ParameterList([kernel() for _ in net.before])
        self.before_j = nn.ParameterList([kernel() for _ in net.before])
        half = len(net.coarse) // 2
        self.coarse_k = nn.ParameterList([kernel() for _ in range(half)])
        self.coarse_j = nn.ParameterList([kernel() for _ in range(half)])
        self.middle = kernel()

    @property
    def net(self) -> nn.Module:
        return self._net[0]

    def weights(self) -> dict[str, Tensor]:
        """Every parameter of the DCDMNet, as functions of the free parameters."""
        net, d = self.net, self.ndim
        c, dev = self.k.numel(), self.k.device
        centre = (slice(None), 0) + (1,) * d
        stem = torch.zeros(2 * c, 1, *([3] * d), device=dev)
        stem[centre] = torch.cat([self.k, -self.k])
        w = {"stem.weight": stem, "head.weight": torch.cat([self.k, -self.k]).reshape(1, 2 * c, *([1] * d))}
        n = len(self.before_k)
        for i in range(n):
            w[f"before.{i}.conv1.weight"] = paired(self.before_k[i])
            w[f"before.{i}.conv2.weight"] = paired(self.before_j[i])
            # after = before^T in reverse order; (I + J K)^T = I + K^T J^T
            w[f"after.{i}.conv1.weight"] = paired(conv_transpose(self.before_j[n - 1 - i]))
            w[f"after.{i}.conv2.weight"] = paired(conv_transpose(self.before_k[n - 1 - i]))
        half = len(self.coarse_k)
        for i in range(half):
            w[f"coarse.{i}.conv1.weight"] = paired(self.coarse_k[i])
            w[f"coarse.{i}.conv2.weight"] = paired(self.coarse_j[i])
            mirror = 2 * half - i
            w[f"coarse.{mirror}.conv1.weight"] = paired(conv_transpose(self.coarse_j[i]))
            w[f"coarse.{mirror}.conv2.weight"] = paired(conv_transpose(self.coarse_k[i]))
        w[f"coarse.{half}.conv1.weight"] = paired(self.middle)  # I + K^T K
        w[f"coarse.{half}.conv2.weight"] = paired(conv_transpose(self.middle))
        for name, p in net.named_parameters():
            if name.endswith(".bias"):
                w[name] = torch.zeros(p.shape, device=dev)
        missing = {name for name, _ in net.named_parameters()} ^ set(w)
        if missing:
            raise RuntimeError(f"SPDLinearDCDM: weights left unset or unknown: {sorted(missing)}")
        return w

    def forward(self, b: Tensor, mask: Tensor | None = None) -> Tensor:
        return functional_call(self.net, self.weights(), (b, mask))

    def materialize(self) -> nn.Module:
        """The DCDMNet with the tied weights written into it (a copy: ``self.net`` is not changed)."""
        net = copy.deepcopy(self.net)
        with torch.no_grad():
            net.load_state_dict({k: v.detach().cpu().clone() for k, v in self.weights().items()})
        return net.eval()


class Plain(nn.Module):
    """A network that is SPD by construction, trained as it is: the counterpart of :class:`SPDLinearDCDM`'s
    ``forward`` / ``materialize``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, b: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.net(b, mask)

    def materialize(self) -> nn.Module:
        return copy.deepcopy(self.net).cpu().eval()


def spd_check(model: nn.Module, shape: tuple[int, int] = (12, 12)) -> dict[str, float]:
    """The network as a dense matrix on a small grid with an obstacle: its asymmetry ``max|M - M^T| /
    max|M|`` and the extreme eigenvalues of its symmetric part."""
    from sciml.linalg.dcdm import network_matrix

    mask = torch.ones(*shape)
    mask[4:7, 5:9] = 0
    M = network_matrix(model, mask)
    eig = torch.linalg.eigvalsh((M + M.T) / 2)
    return {"asymmetry": float((M - M.T).abs().max() / M.abs().max()), "min_eig": float(eig[0]),
            "max_eig": float(eig[-1])}


class SolverSelection(Callback):
    """Every ``every`` steps (and at the start), the mean DCDM iterations to ``rtol`` on the validation
    layouts; the weights with the fewest are kept and become the shipped ones.

    The training loss does not follow the solver closely: it is a one-step residual, invariant to the
    scale of ``q``, and it keeps moving as Adam goes on. Selecting on the solver itself, on layouts not
    trained on, keeps the best network seen rather than the last one. The state (the history, the
    best weights) is stored in the Trainer's checkpoints, so that a resumed run selects exactly as an
    uninterrupted one would.
    """

    def __init__(self, cases: list[tuple[Any, np.ndarray, np.ndarray]], every: int, rtol: float,
                 maxiter: int) -> None:
        self.cases, self.every, self.rtol, self.maxiter = cases, every, rtol, maxiter
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Tensor] | None = None
        self.best_step = -1
        self.best_score = math.inf

    def score(self, model: SPDLinearDCDM | Plain) -> tuple[float, list[int]]:
        from sciml.linalg import solve
        from sciml.linalg.dcdm import DCDM

        method, its = DCDM(model.materialize()), []
        for A, mask, b in self.cases:
            sol = solve(A, b, method=method, rtol=self.rtol, maxiter=self.maxiter, mask=mask, throw=False)
            its.append(int(sol.iterations) if sol.converged else 2 * self.maxiter)  # a failure scores worst
        return float(np.mean(its)), its

    def check(self, trainer: Any, step: int) -> None:
        if any(h["step"] == step for h in self.history):
            return
        model = trainer.task.model
        score, its = self.score(model)
        self.history.append({"step": step, "iterations": its, "mean": score})
        better = score < self.best_score
        if better:
            self.best_score, self.best_step = score, step
            self.best = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        print(f"[select] step {step}: DCDM iterations on the validation layouts {its} (mean {score:.1f})"
              + (" best so far" if better else f"; best {self.best_score:.1f} at step {self.best_step}"),
              flush=True)

    def on_fit_start(self, trainer: Any) -> None:
        self.check(trainer, trainer.step)

    def on_step_end(self, trainer: Any, step: int, logs: Any) -> None:
        if step % self.every == 0 or step == trainer.total_steps:
            self.check(trainer, step)

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "best": self.best, "best_step": self.best_step,
                "best_score": self.best_score}

    def load_state_dict(self, state: Any) -> None:
        self.history, self.best = list(state["history"]), state["best"]
        self.best_step, self.best_score = int(state["best_step"]), float(state["best_score"])


# -- data ---------------------------------------------------------------------------------------
def layouts(po: Any, n: int, count: int, seed: int) -> list[np.ndarray]:
    from sciml.fields import Grid

    return list(po.ObstacleLayout().draw(count, Grid(n, ndim=2), np.random.default_rng(seed)))


def right_hand_sides(po: Any, A: Any, mask: np.ndarray, rng: np.random.Generator, n_ritz: int, lanczos: int,
                     n_smoke: int, n_range: int, n_white: int = 0) -> np.ndarray:
    """The mix for one layout: Ritz (reference weighting), smoke, range and white right-hand sides, stacked."""
    from sciml.linalg.lanczos import training_rhs

    parts = []
    if n_ritz:
        parts.append(training_rhs(A, n_ritz, rng, m=lanczos))
    parts += [po.rhs("smoke", mask, rng) for _ in range(n_smoke)]
    parts += [po.rhs("range", mask, rng, A=A) for _ in range(n_range)]
    parts += [po.rhs("white", mask, rng) for _ in range(n_white)]
    return np.vstack([np.atleast_2d(p) for p in parts])


def validation_cases(po: Any, args: argparse.Namespace) -> list[tuple[Any, np.ndarray, np.ndarray]]:
    """One smoke right-hand side on each validation layout, for :class:`SolverSelection`."""
    cases = []
    for i, solid in enumerate(layouts(po, args.select_n, args.val_layouts, args.seed + 1)):
        A, mask = po.obstacle_system(solid)
        cases.append((A, mask, po.rhs("smoke", mask, np.random.default_rng([args.seed + 1, 2, i]))))
    return cases


def build_data(po: Any, args: argparse.Namespace) -> tuple[Any, Subset, Subset]:
    """One dataset over the training and validation systems (so that one DCDMTask knows them all), split."""
    from sciml.linalg.dcdm import dcdm_dataset

    systems, rhs = [], []
    plan = [(args.seed, args.layouts, args.ritz, args.smoke, args.range, args.white),
            (args.seed + 1, args.val_layouts, -(-args.ritz // 3), -(-args.smoke // 2), -(-args.range // 2),
             -(-args.white // 2))]
    for seed, count, n_ritz, n_smoke, n_range, n_white in plan:
        rng = np.random.default_rng([seed, 1])  # right-hand sides; the layouts use default_rng(seed)
        for solid in layouts(po, args.n, count, seed):
            A, mask = po.obstacle_system(solid)
            systems.append((A, mask))
            rhs.append(right_hand_sides(po, A, mask, rng, n_ritz, args.lanczos, n_smoke, n_range, n_white))
    data = dcdm_dataset(systems, rhs, with_solutions=args.loss == "energy")
    labels = np.repeat(np.arange(len(rhs)), [len(r) for r in rhs])  # the system of every sample, in order
    train = Subset(data, np.flatnonzero(labels < args.layouts).tolist())
    val = Subset(data, np.flatnonzero(labels >= args.layouts).tolist())
    return data, train, val


# -- training -----------------------------------------------------------------------------------
def new_model(seed: int, network: str, extra: dict[str, Any] | None = None) -> SPDLinearDCDM | Plain:
    from sciml.models import build_model

    torch.manual_seed(seed)
    name, kwargs = NETWORKS[network]
    net = build_model(name, **{**kwargs, **(extra or {})})
    return SPDLinearDCDM(net) if network == "tied" else Plain(net)


def seconds_per_step(task_model: SPDLinearDCDM | Plain, data: Any, train: Subset, batch: int, lr: float,
                     loss_kind: str) -> float:
    """Median time of one Adam step on a throw-away copy of the model (after two warm-up steps)."""
    from torch.utils.data import DataLoader

    from sciml.linalg.dcdm import DCDMTask

    task = DCDMTask(copy.deepcopy(task_model), data, loss=loss_kind)
    opt = torch.optim.Adam(task.parameters(), lr=lr)
    loader = iter(DataLoader(train, batch_size=batch, shuffle=True))
    times = []
    for _ in range(12):
        t0 = time.perf_counter()
        loss = task.loss_terms(next(loader))[loss_kind]
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[2:]))


def plan_steps(args: argparse.Namespace, model: SPDLinearDCDM, data: Any, train: Subset) -> dict[str, Any]:
    """The run's plan (its settings and step count), reused on resume; a run with other settings
    starts afresh."""
    settings = {k: v for k, v in vars(args).items() if k in TRAIN_SETTINGS}
    plan = saved_plan(args.run_dir, settings)
    if plan is not None:
        return plan
    path = args.run_dir / "plan.json"
    if args.run_dir.exists():
        shutil.rmtree(args.run_dir)
    args.run_dir.mkdir(parents=True)
    if args.steps:
        steps, per_step = args.steps, None
    else:
        per_step = seconds_per_step(model, data, train, args.batch, args.lr, args.loss)
        steps = max(100, int(args.minutes * 60 / per_step) // 50 * 50)
        print(f"[plan] {per_step:.3f} s per step: {steps} steps fill {args.minutes:g} minutes", flush=True)
    plan = {"settings": settings, "steps": steps, "estimated_s_per_step": per_step, "sessions": []}
    path.write_text(json.dumps(plan, indent=1))
    return plan


TRAIN_SETTINGS = ("network", "model_kwargs", "loss", "select_n", "n", "layouts", "val_layouts", "ritz", "lanczos", "smoke", "range", "white", "seed", "lr", "lr2",
                  "warm_steps", "batch",
                  "minutes", "steps", "selections", "rtol")


def phases(args: argparse.Namespace, steps: int) -> list[tuple[str, int, dict[str, Any]]]:
    """Adam at ``--lr`` with a cosine schedule over ``--warm-steps``, then at ``--lr2``, cosine over the rest.

    A single cosine schedule from 1e-3 over thousands of steps is unstable here: the loss fell to 0.33,
    then climbed to 0.97 within 200 steps at a learning rate still near 1e-3, and the validation solves
    went from 82 iterations to no convergence in 400. A run of 800 steps with the cosine down to 0 was
    stable; the rest of the budget goes to a second, gentler phase (the reference's 1e-4).
    """
    warm = min(args.warm_steps, steps)
    out = [("adam", warm, {"lr": args.lr, "schedule": "cosine"})]
    if steps > warm:
        out.append(("adam", steps - warm, {"lr": args.lr2, "schedule": "cosine"}))
    return out


def train(args: argparse.Namespace, po: Any) -> tuple[nn.Module, dict[str, Any]]:
    from sciml.linalg.dcdm import DCDMTask
    from sciml.train import Trainer

    t0 = time.perf_counter()
    data, train_set, val_set = build_data(po, args)
    data_seconds = time.perf_counter() - t0
    print(f"[data] {len(train_set)} training and {len(val_set)} validation right-hand sides on "
          f"{args.layouts} + {args.val_layouts} layouts of {args.n}^2 in {data_seconds:.1f} s", flush=True)
    model = new_model(args.seed, args.network, args.model_kwargs)
    plan = plan_steps(args, model, data, train_set)
    steps = plan["steps"]
    task = DCDMTask(model, data, loss=args.loss)
    every = max(1, steps // 8)
    select_every = max(1, steps // args.selections)
    selection = SolverSelection(validation_cases(po, args), select_every, args.rtol, maxiter=400)
    trainer = Trainer(
        task, train_data=train_set, val_data={"val": val_set}, batch_size=args.batch, val_batch_size=50,
        phases=phases(args, steps), device="cpu", seed=args.seed,
        out_dir=args.run_dir, checkpoint_every=min(250, every), keep_checkpoints=1, log_every=min(50, every),
        eval_every=every, progress="lines", resume=True, callbacks=[selection],
    )
    result = trainer.fit()
    plan["sessions"].append({"train_seconds": result.train_seconds, "end_step": result.steps,
                             "date": datetime.datetime.now().isoformat(timespec="seconds")})
    (args.run_dir / "plan.json").write_text(json.dumps(plan, indent=1))
    train_log = [r for r in trainer.history if r.get("kind") == "train"]
    window = [r["loss"] for r in train_log[-5:]]
    near_best = [r["loss"] for r in train_log if abs(r["step"] - selection.best_step) <= 2 * min(50, every)]
    model.load_state_dict(selection.best)
    info = {
        "optimizer": "adam", "lr": args.lr, "lr2": args.lr2, "warm_steps": min(args.warm_steps, steps),
        "schedule": f"cosine from {args.lr:g} to 0 over {min(args.warm_steps, steps)} steps, then (new Adam "
                    f"state) cosine from {args.lr2:g} to 0 over the rest",
        "phases": [[name, n, opts] for name, n, opts in phases(args, steps)], "batch_size": args.batch,
        "steps": result.steps, "epochs": round(result.steps * args.batch / len(train_set), 2),
        "train_seconds": round(sum(s["train_seconds"] for s in plan["sessions"]), 1),
        "sessions": len(plan["sessions"]), "budget_minutes": args.minutes if not args.steps else None,
        "estimated_s_per_step": plan["estimated_s_per_step"], "threads": torch.get_num_threads(),
        "device": "cpu", "seed": args.seed, "reason": result.reason,
        "final_loss": float(np.mean(window)) if window else result.metrics.get("train/loss"),
        "final_loss_note": f"mean train loss of the last {len(window)} log windows ({min(50, every)} steps each)",
        "loss": args.loss, "val_loss": result.metrics.get(f"val/{args.loss}"), "data_seconds": round(data_seconds, 1),
        "selected_step": selection.best_step,
        "loss_at_selected_step": float(np.mean(near_best)) if near_best else None,
        "selection": {"metric": f"mean DCDM iterations to {args.rtol:g} for a smoke right-hand side on the "
                                f"{args.val_layouts} validation layouts (seed {args.seed + 1}) at {args.select_n}^2",
                      "every_steps": select_every, "history": selection.history},
        "free_parameters": sum(p.numel() for p in model.parameters()),
    }
    print(f"[train] {result.steps} steps, final loss {info['final_loss']:.4f}, validation loss "
          f"{info['val_loss']}; shipping the weights of step {selection.best_step} "
          f"({selection.best_score:.1f} iterations on the validation layouts)", flush=True)
    return model.materialize(), info


# -- evaluation ---------------------------------------------------------------------------------
def evaluate(po: Any, methods: dict[str, Any], sizes: list[int], count: int, seed: int, rtol: float,
             maxiter: int, skip: dict[str, int]) -> list[dict[str, Any]]:
    """Iterations of every method on ``count`` fresh layouts (drawn with ``seed``) at every size."""
    from sciml.linalg import solve

    rows = []
    for n in sizes:
        cases = []
        for i, solid in enumerate(layouts(po, n, count, seed)):
            A, mask = po.obstacle_system(solid)
            cases.append((A, mask, po.rhs("smoke", mask, np.random.default_rng([seed, n, i]))))
        for name, method in methods.items():
            if n > skip.get(name, n):
                continue
            its, secs, ok = [], [], True
            for A, mask, b in cases:
                sol = solve(A, b, method=method, rtol=rtol, maxiter=maxiter, mask=mask, throw=False)
                its.append(int(sol.iterations))
                secs.append(sol.setup_seconds + sol.solve_seconds)
                ok = ok and sol.converged
            row = {"method": name, "n": n, "layouts": count, "iterations": its,
                   "iterations_mean": float(np.mean(its)), "iterations_max": int(max(its)), "converged": ok,
                   "seconds_mean": float(np.mean(secs)), "unknowns_mean": float(np.mean([c[0].shape[0] for c in cases]))}
            rows.append(row)
            print(f"[eval] {n:4d}^2 {name:14s} iterations {its} (mean {row['iterations_mean']:.1f}), "
                  f"{row['seconds_mean']:.3f} s per solve{'' if ok else ', NOT CONVERGED'}", flush=True)
    cg = {r["n"]: r["iterations_mean"] for r in rows if r["method"] == "CG"}
    for r in rows:
        r["vs_cg"] = round(r["iterations_mean"] / cg[r["n"]], 3) if cg.get(r["n"]) else None
    return rows


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    tr, data = meta["training"], meta["data"]
    lines = ["# DCDM: the shipped 2-D network against CG and AMG-PCG on fresh obstacle layouts", "",
             f"Iterations to a relative residual of {meta['evaluation']['rtol']:g} for a smoke right-hand side, "
             f"on {rows[0]['layouts']} layouts (seed {meta['evaluation']['layout_seed']}) never trained on, "
             "drawn at every size.", "",
             "| method | n | iterations per layout | mean | vs CG | seconds per solve |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['n']}^2 | {', '.join(map(str, r['iterations']))} | "
                     f"{r['iterations_mean']:.1f} | {r['vs_cg']:.2f} | {r['seconds_mean']:.3f} |")
    lines += ["", f"Training: {data['layouts']} layouts of {data['grid'][0]}^2 (seed {data['layout_seed']}), per layout "
              f"{data['rhs_per_layout']['ritz']} Ritz ({data['ritz']['lanczos_steps']} Lanczos steps), "
              f"{data['rhs_per_layout']['smoke']} smoke, {data['rhs_per_layout']['range']} range and "
              f"{data['rhs_per_layout']['white']} white-noise right-hand sides; "
              f"Adam, {tr['schedule']}, batch {tr['batch_size']}, {tr['steps']} steps "
              f"({tr['epochs']} epochs) in {tr['train_seconds']:.0f} s on {tr['threads']} CPU thread(s); "
              f"final loss {tr['final_loss']:.4f}, validation loss {tr['val_loss']:.4f}.",
              "", "DCDM (untrained) is the same network at its starting weights (" + meta["start"] + "); DCDM uses the "
              "shipped weights (`DCDM.pretrained()`, k = 2). "
              "Seconds: set-up plus solve, one thread, DCDM's network in float32 on the CPU. "
              "The network and why it is this one: the docstring of `benchmarks/dcdm_train.py`.", ""]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--network", choices=sorted(NETWORKS), default="multilevel", help="the network to train")
    p.add_argument("--model-kwargs", type=json.loads, default={}, help="JSON object of constructor arguments "
                   "added to the network's defaults, e.g. '{\"depth\": 3}'")
    p.add_argument("--loss", choices=["dcdm", "energy"], default="energy", help="DCDM's one-step loss or the "
                   "energy error of the solutions (sciml.linalg.dcdm module notes)")
    p.add_argument("--select-n", type=int, default=128, help="grid size of the validation solves that pick "
                   "the shipped weights")
    p.add_argument("--minutes", type=float, default=25.0, help="training time to fill (default 25)")
    p.add_argument("--steps", type=int, default=0, help="training steps (default: as many as --minutes allow)")
    p.add_argument("--n", type=int, default=64, help="training grid size")
    p.add_argument("--layouts", type=int, default=48, help="training layouts")
    p.add_argument("--val-layouts", type=int, default=VAL_LAYOUTS)
    p.add_argument("--ritz", type=int, default=0, help="Ritz right-hand sides per layout")
    p.add_argument("--lanczos", type=int, default=150, help="Lanczos steps per layout")
    p.add_argument("--smoke", type=int, default=8, help="smoke right-hand sides per layout")
    p.add_argument("--range", type=int, default=16, help="range (A g) right-hand sides per layout")
    p.add_argument("--white", type=int, default=16, help="white-noise right-hand sides per layout")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate in the first phase")
    p.add_argument("--warm-steps", type=int, default=800, help="steps of the first phase")
    p.add_argument("--lr2", type=float, default=1e-4, help="Adam's learning rate in the second phase")
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--selections", type=int, default=24, help="solver checks on the validation layouts per run")
    p.add_argument("--seed", type=int, default=0, help="training layouts (validation: seed + 1) and weights")
    p.add_argument("--eval-seed", type=int, default=1000, help="the fresh evaluation layouts")
    p.add_argument("--eval-layouts", type=int, default=4)
    p.add_argument("--eval-sizes", type=int, nargs="+", default=[64, 128, 256])
    p.add_argument("--rtol", type=float, default=1e-6)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="a smoke test: tiny data, 40 steps, temporary weights")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--weights", type=Path, default=None, help=f"where to write the weights (default {WEIGHTS})")
    p.add_argument("--run-dir", type=Path, default=None, help=f"training run directory (default {RUN_DIR})")
    args = p.parse_args()
    if args.quick:
        args.n, args.layouts, args.val_layouts, args.ritz, args.lanczos = 32, 4, 1, 8, 40
        args.smoke, args.range, args.steps, args.eval_layouts, args.eval_sizes = 2, 2, 40, 1, [32, 64]
        args.select_n = 32
    if args.run_dir is None:
        args.run_dir = RUN_DIR.with_name("dcdm_train_quick") if args.quick else RUN_DIR
    if args.quick and args.run_dir.exists():
        shutil.rmtree(args.run_dir)
    if args.weights is None:
        args.weights = (Path(tempfile.mkdtemp(prefix="dcdm_quick_")) / "dcdm_2d.pt") if args.quick else WEIGHTS
    args.out = results_path(RESULTS, args.out, args.quick)
    torch.set_num_threads(args.threads)
    machine = machine_info(torch.get_num_threads())
    started = time.perf_counter()
    po = problem_module("poisson_obstacles")

    from sciml.linalg import AMGPCG, CG
    from sciml.linalg.dcdm import DCDM, save_weights

    model, training = train(args, po)
    check = spd_check(model)
    print(f"[spd] asymmetry {check['asymmetry']:.2e}, eigenvalues of the symmetric part in "
          f"[{check['min_eig']:.4g}, {check['max_eig']:.4g}]", flush=True)
    untrained = new_model(args.seed, args.network, args.model_kwargs).materialize()
    methods = {"DCDM": DCDM(model), "DCDM (untrained)": DCDM(untrained), "CG": CG(), "AMG-PCG": AMGPCG()}
    skip = {"DCDM (untrained)": 128}  # the starting network is a reference point, not worth 256^2
    maxiter = 20 * max(args.eval_sizes)
    rows = evaluate(po, methods, args.eval_sizes, args.eval_layouts, args.eval_seed, args.rtol, maxiter, skip)

    layout_space = po.ObstacleLayout().params()
    meta = {
        "description": "DCDM network for 2-D pressure-Poisson systems past obstacles (problems/poisson_obstacles.py): "
                       + ("a DCDMNet without the mask channel whose weights are tied during training so that it is a "
                          "symmetric positive definite linear map" if args.network == "tied" else
                          "a MultilevelSPDNet, a symmetric positive definite linear multilevel (BPX-like) map with "
                          "learned level operators") + " (docstring of benchmarks/dcdm_train.py)",
        "parametrisation": ("tied: zero biases, channel pairs (u, -u), layers after the pool the transposes of those "
                            "before, middle coarse pair I + K^T K" if args.network == "tied" else
                            "multilevel: M = D (e^eps I + sum_l e^{s_l} P_l K_l^T K_l P_l^T) D"),
        "spd_check": check,
        "start": ("close to the symmetric positive definite `I + P P^T / 4`" if args.network == "tied" else
                  "a classical BPX preconditioner with [1, 2, 1] / 4 smoothing"),
        "data": {"grid": [args.n, args.n], "layouts": args.layouts, "layout_seed": args.seed,
                 "rhs_seed": [args.seed, 1], "layout_space": layout_space,
                 "rhs_per_layout": {"ritz": args.ritz, "smoke": args.smoke, "range": args.range, "white": args.white},
                 "ritz": {"lanczos_steps": args.lanczos, "low_fraction": 0.55, "low_weight": 9.0,
                          "function": "sciml.linalg.lanczos.training_rhs"},
                 "normalized": True, "samples": args.layouts * (args.ritz + args.smoke + args.range + args.white),
                 "validation": {"layouts": args.val_layouts, "layout_seed": args.seed + 1}},
        "training": training,
        "evaluation": {"rtol": args.rtol, "rhs": "smoke", "layout_seed": args.eval_seed, "layouts": args.eval_layouts,
                       "k": 2, "rows": [{k: r[k] for k in ("method", "n", "iterations", "iterations_mean")}
                                        for r in rows]},
        "params": sum(p.numel() for p in model.parameters()),
        "torch": torch.__version__, "numpy": np.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "script": "benchmarks/dcdm_train.py" + (" --quick" if args.quick else ""),
    }
    meta_path = save_weights(model, args.weights, meta)
    size = args.weights.stat().st_size
    print(f"[weights] {args.weights} ({size / 1024:.1f} KiB) and {meta_path.name}", flush=True)

    # The saved pair must load offline and behave exactly as the model just evaluated.
    reloaded = DCDM.pretrained(dim=2, weights_dir=args.weights.parent)
    first = next(r for r in rows if r["method"] == "DCDM")
    again = evaluate(po, {"DCDM": reloaded}, [first["n"]], args.eval_layouts, args.eval_seed, args.rtol, maxiter, {})
    if again[0]["iterations"] != first["iterations"]:
        raise SystemExit(f"the reloaded weights give {again[0]['iterations']} iterations, not {first['iterations']}")

    report = {
        "benchmark": "dcdm_train", "machine": {**machine, "load_average_at_end": list(os.getloadavg())},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "rows": rows, "training": training, "spd_check": check,
        "weights": {"path": str(args.weights.relative_to(ROOT)) if args.weights.is_relative_to(ROOT)
                    else str(args.weights), "bytes": size, "params": meta["params"]},
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    write_results(args.out, report, markdown(rows, meta), args.quick)


if __name__ == "__main__":
    sys.exit(main())
