"""Trainer, combiners and the training helpers, on small tasks defined here."""

# The legacy global numpy RNG is used on purpose: saving and restoring it is under test.
# ruff: noqa: NPY002

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from sciml.errors import ConfigError, DivergenceError, ShapeError, UnknownNameError
from sciml.optim import (
    Combiner,
    Sum,
    Weighted,
    get_combiner,
    register_combiner,
    set_gradients,
    term_gradients,
)
from sciml.train import (
    Callback,
    EarlyStopping,
    Task,
    Trainer,
    move_to_device,
    plot_history,
    read_history,
    resolve_device,
)
from sciml.train.progress import Progress, format_duration, progress_mode


# -- tasks --------------------------------------------------------------------------------------
class Regression(Task):
    """Linear-target regression with an MLP; batches are (x, y) tuples."""

    def __init__(self, dropout: float = 0.0, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.model = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Dropout(dropout), nn.Linear(16, 1))
        with torch.no_grad():
            for p in self.model.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)

    def loss_terms(self, batch):
        x, y = batch
        return {"mse": (self.model(x) - y).pow(2).mean()}

    def metrics(self, batch):
        x, y = batch
        return {"mse": float((self.model(x) - y).pow(2).mean())}


def regression_data(n: int = 64, seed: int = 0) -> TensorDataset:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=gen)
    y = (x @ torch.tensor([[1.0], [-2.0], [0.5]])) + 0.3
    return TensorDataset(x, y)


class SelfSampling(Task):
    """PINN-like: no data; draws its points in sample(); optional NaN injection by call count."""

    def __init__(self, nan_calls=(), grad_nan_calls=()):
        super().__init__()
        torch.manual_seed(1)
        self.model = nn.Linear(2, 1)
        self.calls = 0
        self.nan_calls, self.grad_nan_calls = set(nan_calls), set(grad_nan_calls)
        self.sampled = 0
        self.ended: list[int] = []

    def sample(self):
        self.sampled += 1
        self.x = torch.rand(32, 2)

    def loss_terms(self, batch):
        assert batch is None
        self.calls += self.training  # count training evaluations only (metrics() calls this too)
        target = (self.x[:, :1] * 2 - self.x[:, 1:])
        fit = (self.model(self.x) - target).pow(2).mean()
        reg = 1e-3 * self.model.weight.pow(2).sum()
        if self.calls in self.nan_calls:
            fit = fit * float("nan")
        if self.calls in self.grad_nan_calls:  # finite value, NaN gradient: d sqrt(u^2)/du at 0
            reg = reg + torch.sqrt((self.model.weight * 0).sum() ** 2)
        return {"fit": fit, "reg": reg}

    def on_step_end(self, step):
        self.ended.append(step)


def params_of(task: Task) -> list[torch.Tensor]:
    return [p.detach().clone() for p in task.parameters()]


# -- combiners ----------------------------------------------------------------------------------
def _two_terms():
    torch.manual_seed(0)
    lin = nn.Linear(3, 2)
    unused = nn.Parameter(torch.ones(4))
    x = torch.randn(5, 3)
    out = lin(x)
    return lin, unused, {"a": out[:, 0].pow(2).mean(), "b": out[:, 1].abs().mean()}


def test_sum_sets_the_gradient_of_the_sum_and_leaves_unused_params_none():
    lin, unused, terms = _two_terms()
    params = [*lin.parameters(), unused]
    expected = torch.autograd.grad(terms["a"] + terms["b"], list(lin.parameters()), retain_graph=True)
    loss = Sum()(terms, params)
    assert torch.allclose(loss, (terms["a"] + terms["b"]).detach())
    for p, g in zip(lin.parameters(), expected):
        assert torch.allclose(p.grad, g)
    assert unused.grad is None


def test_weighted_and_scale_give_the_weighted_gradient_times_scale():
    lin, unused, terms = _two_terms()
    params = list(lin.parameters())
    expected = torch.autograd.grad(2.0 * terms["a"] + 0.25 * terms["b"], params, retain_graph=True)
    loss = Weighted({"a": 2.0, "b": 0.25})(terms, params, scale=1024.0)
    assert torch.allclose(loss, (2.0 * terms["a"] + 0.25 * terms["b"]).detach())
    for p, g in zip(params, expected):
        assert torch.allclose(p.grad, 1024.0 * g, rtol=1e-5)
    with pytest.raises(ConfigError, match="no weight for term 'b'"):
        Weighted({"a": 1.0})(terms, params)
    with pytest.raises(ConfigError, match="typo"):
        Weighted({"a": 1.0, "b": 1.0, "typo": 1.0})(terms, params)
    with pytest.raises(ConfigError):
        Weighted({"a": -1.0})


def test_term_gradients_rows_are_per_term_gradients_with_zeros_for_unused():
    lin, unused, terms = _two_terms()
    params = [*lin.parameters(), unused]
    ga = torch.autograd.grad(terms["a"], list(lin.parameters()), retain_graph=True)
    matrix, used = term_gradients(terms, params, scale=8.0)
    assert matrix.shape == (2, sum(p.numel() for p in params))
    assert used == [True, True, False]
    flat_a = torch.cat([g.reshape(-1) for g in ga])
    assert torch.allclose(matrix[0, : flat_a.numel()], flat_a)  # unscaled despite scale=8
    assert torch.count_nonzero(matrix[:, flat_a.numel():]) == 0  # `unused` contributes zeros
    set_gradients(matrix.sum(0), params, scale=2.0, used=used)
    assert unused.grad is None
    assert torch.allclose(lin.weight.grad.reshape(-1), 2.0 * matrix.sum(0)[: lin.weight.numel()])
    with pytest.raises(ShapeError):
        set_gradients(torch.zeros(3), params)


def test_combiner_input_checks_and_registry():
    lin, _, terms = _two_terms()
    with pytest.raises(ShapeError):
        Sum()({"v": lin.weight.sum(0)}, list(lin.parameters()))
    with pytest.raises(ConfigError):
        Sum()({}, list(lin.parameters()))
    with pytest.raises(ConfigError, match="requires grad"):
        Sum()({"c": torch.tensor(1.0)}, list(lin.parameters()))
    with pytest.raises(UnknownNameError):
        get_combiner("nope")
    with pytest.raises(ConfigError, match="needs arguments"):
        get_combiner("weighted")
    assert isinstance(get_combiner("sum"), Sum)


@register_combiner("test-normalized")
class NormalizedSum(Combiner):
    """A nonlinear combiner (sum of unit per-term gradients), the shape ConFIG-like methods take."""

    reduces_itself = True

    def combine(self, terms, params, *, scale, reduce):
        grads, used = term_gradients(terms, params, scale=scale, reduce=reduce)
        direction = (grads / grads.norm(dim=1, keepdim=True).clamp_min(1e-12)).sum(0)
        set_gradients(direction, params, scale=scale, used=used)
        return sum(t.detach() for t in terms.values())


def test_a_new_registered_combiner_slots_into_the_trainer():
    task = SelfSampling()
    trainer = Trainer(task, steps=3, combiner="test-normalized", lr=0.1, optimizer="sgd", device="cpu")
    before = params_of(task)
    trainer.fit()
    # SGD with lr 0.1 and a direction that is a sum of two unit vectors: each step moves at most 0.2
    moved = torch.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(params_of(task), before)))
    assert 0 < float(moved) <= 3 * 0.2 + 1e-6


# -- the loop -----------------------------------------------------------------------------------
def test_fit_on_data_learns_logs_and_writes_the_run(tmp_path):
    data = regression_data()
    task = Regression()
    out = tmp_path / "run"
    trainer = Trainer(task, train_data=data, val_data={"a": data, "b": regression_data(10, seed=3)},
                      batch_size=16, epochs=15, lr=2e-2, device="cpu", out_dir=out, log_every=4)
    first = trainer.evaluate()["a/mse"]
    result = trainer.fit()
    assert result.reason == "completed" and result.steps == 60 and result.epochs == 15
    assert result.metrics["a/mse"] < 0.1 * first
    assert set(result.metrics) == {"a/mse", "b/mse", "train/loss"}
    assert {"metrics.jsonl", "config.json", "result.json", "loss_curve.png", "latest"} <= {
        p.name for p in out.iterdir()}
    records = read_history(out / "metrics.jsonl")
    assert records == result.history
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == list(range(4, 61, 4))
    assert len([r for r in records if r["kind"] == "val"]) == 15  # end of every epoch
    assert json.loads((out / "result.json").read_text())["reason"] == "completed"
    assert (out / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_validation_metrics_are_exact_sample_weighted_means():
    data = regression_data(13, seed=5)  # 13 = 5 + 5 + 3: batches of unequal size
    task = Regression()
    trainer = Trainer(task, train_data=data, val_data=data, val_batch_size=5, steps=1, device="cpu")
    x, y = data.tensors
    with torch.no_grad():
        exact = float((task.model(x) - y).pow(2).mean())
    assert trainer.evaluate()["val/mse"] == pytest.approx(exact, rel=1e-6)


def test_self_sampling_task_hooks_and_default_metrics():
    task = SelfSampling()
    result = Trainer(task, steps=20, lr=0.05, device="cpu", log_every=5).fit()
    assert task.sampled == 20 and task.ended == list(range(1, 21))
    assert {"val/fit", "val/reg", "val/loss"} <= set(result.metrics)  # metrics(None), ten times a run
    assert len([r for r in result.history if r["kind"] == "val"]) == 10


def test_same_seed_same_run_and_evaluation_leaves_the_rng_alone():
    def run():
        task = Regression(dropout=0.3)
        Trainer(task, train_data=regression_data(), val_data=regression_data(8), batch_size=8, steps=12,
                device="cpu", seed=4).fit()
        return params_of(task)

    a, b = run(), run()
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    task = Regression(dropout=0.3)
    trainer = Trainer(task, train_data=regression_data(), val_data=regression_data(8), steps=1, device="cpu")
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    trainer.evaluate()
    got = (torch.rand(3), np.random.rand(), random.random())
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    assert torch.equal(got[0], torch.rand(3)) and got[1] == np.random.rand() and got[2] == random.random()


def test_adam_then_lbfgs_phases():
    task = SelfSampling()
    result = Trainer(task, phases=[("adam", 30, {"lr": 0.05}), ("lbfgs", 5, {"max_iter": 10})],
                     device="cpu", log_every=5).fit()
    trainer_events = [r for r in result.history if r.get("event") == "phase"]
    assert [(e["step"], e["optimizer"]) for e in trainer_events] == [(30, "lbfgs")]
    adam_loss = [r["loss"] for r in result.history if r["kind"] == "train" and r["step"] == 30][0]
    assert result.metrics["val/fit"] < 1e-3 * adam_loss  # L-BFGS finishes the fit of a linear map


def test_grad_clip_bounds_the_update():
    task = Regression()
    before = params_of(task)
    Trainer(task, train_data=regression_data(), batch_size=64, steps=1, optimizer="sgd", lr=1.0,
            grad_clip=1e-3, device="cpu").fit()
    moved = torch.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(params_of(task), before)))
    assert 0 < float(moved) <= 1e-3 * (1 + 1e-5)


@pytest.mark.parametrize("schedule,interval,expected", [
    ("cosine", "step", 0.0), ("step", "step", 0.1 * 0.1 ** 3), ("onecycle", "step", None),
    # per epoch: a schedule steps when a new epoch starts, so after 3 epochs it made 2 of its 3 steps
    ("cosine", "epoch", 0.1 * (1 + math.cos(math.pi * 2 / 3)) / 2)])
def test_schedules(schedule, interval, expected):
    task = Regression()
    trainer = Trainer(task, train_data=regression_data(32), batch_size=8, steps=12, lr=0.1, schedule=schedule,
                      schedule_interval=interval, device="cpu", log_every=1)
    result = trainer.fit()
    lrs = [r["lr"] for r in result.history if r["kind"] == "train"]
    if expected is None:  # one cycle: up to the peak, then far below the start
        assert lrs[0] == pytest.approx(0.1 / 25) and max(lrs) == pytest.approx(0.1, rel=0.05)
        assert lrs[-1] == pytest.approx(0.1 / 25 / 1e4)
    else:
        assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(expected, abs=1e-12)
    if interval == "epoch":  # four steps per epoch: the lr changes only at epoch boundaries
        assert lrs[0] == lrs[1] == lrs[2] == lrs[3] == 0.1 and lrs[3] != lrs[4]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_on_cpu_trains(precision):
    task = Regression()
    trainer = Trainer(task, train_data=regression_data(), val_data=regression_data(), batch_size=16, epochs=6,
                      lr=2e-2, precision=precision, device="cpu")
    first = trainer.evaluate()["val/mse"]
    result = trainer.fit()
    assert result.metrics["val/mse"] < 0.5 * first
    assert (trainer.scaler is not None) == (precision == "fp16")


def test_early_stopping_stops_after_patience_evaluations():
    class Stuck(Regression):
        def metrics(self, batch):
            return {"score": 1.0}

    result = Trainer(Stuck(), train_data=regression_data(32), val_data=regression_data(8), batch_size=8,
                     epochs=50, early_stopping={"metric": "val/score", "patience": 3}, device="cpu").fit()
    assert result.reason == "early_stopped"
    # best at the first evaluation (end of epoch 1), then 3 without improvement
    assert result.steps == 4 * 4 and "val/score" in result.message


def test_callbacks_see_steps_and_can_stop():
    seen = []

    class Stop(Callback):
        def on_step_end(self, trainer, step, logs):
            seen.append((step, sorted(logs)))
            if step == 3:
                trainer.request_stop("user", "enough")

    result = Trainer(SelfSampling(), steps=10, callbacks=[Stop()], device="cpu").fit()
    assert result.reason == "user" and result.steps == 3
    assert seen[0] == (1, ["loss", "loss/fit", "loss/reg"])


# -- NaN guard -----------------------------------------------------------------------------------
def test_nan_raise_names_term_and_step_and_leaves_weights_untouched():
    task = SelfSampling(nan_calls={6})
    with pytest.raises(DivergenceError, match=r"fit=nan.*|step 6") as info:
        Trainer(task, steps=10, lr=0.05, device="cpu").fit()
    assert "step 6" in str(info.value) and "fit" in str(info.value)
    reference = SelfSampling()
    Trainer(reference, steps=5, lr=0.05, device="cpu").fit()
    assert all(torch.equal(a, b) for a, b in zip(params_of(task), params_of(reference)))


def test_nan_gradient_is_caught_although_the_loss_is_finite():
    with pytest.raises(DivergenceError, match="gradient"):
        Trainer(SelfSampling(grad_nan_calls={3}), steps=5, device="cpu").fit()


class HugeGradient(Task):
    """Loss ``scale * sum(w)``: gradient ``scale`` everywhere, finite but past float32's sqrt(max)."""

    def __init__(self, scale: float):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(4))
        self.scale = scale

    def loss_terms(self, batch):
        return {"lin": (self.w * self.scale).sum()}


def test_guard_tells_an_overflowing_gradient_norm_from_a_non_finite_gradient():
    # 1e25 per entry: the float32 2-norm overflows to inf, yet every entry is finite, so the step runs
    task = HugeGradient(1e25)
    assert not math.isfinite(float(torch.linalg.vector_norm(torch.full((4,), 1e25))))
    result = Trainer(task, steps=2, optimizer="sgd", lr=1e-30, device="cpu").fit()
    assert result.reason == "completed" and torch.allclose(task.w.detach(), torch.full((4,), -2e-5))
    # the same screen still stops a genuinely non-finite gradient (finite loss, NaN gradient)
    task = SelfSampling(grad_nan_calls={2})
    with pytest.raises(DivergenceError, match=r"gradient of \['model.weight'\]"):
        Trainer(task, steps=3, device="cpu").fit()


def test_nan_rollback_restores_reduces_lr_and_completes():
    task = SelfSampling(nan_calls={6})
    trainer = Trainer(task, steps=10, lr=0.05, nan_policy="rollback", snapshot_every=2, lr_factor=0.5,
                      device="cpu", log_every=1)
    result = trainer.fit()
    assert result.reason == "completed" and result.steps == 10 and result.rollbacks == 1
    event = [r for r in result.history if r.get("event") == "rollback"][0]
    assert event["failed_step"] == 6 and event["to_step"] == 4 and event["lr"] == pytest.approx(0.025)
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.025)
    assert all(torch.isfinite(p).all() for p in task.parameters())


def test_nan_rollback_gives_up_after_max_rollbacks():
    task = SelfSampling(nan_calls=set(range(4, 100)))
    with pytest.raises(DivergenceError, match="after 2 rollbacks"):
        Trainer(task, steps=10, nan_policy="rollback", max_rollbacks=2, snapshot_every=1, device="cpu").fit()


def test_nan_stop_policy_returns_diverged():
    result = Trainer(SelfSampling(nan_calls={4}), steps=10, nan_policy="stop", device="cpu").fit()
    assert result.reason == "diverged" and result.steps == 3 and "fit" in result.message


def test_lbfgs_nan_restores_the_iterate():
    task = SelfSampling(nan_calls={12})
    snapshots = []

    class Keep(Callback):
        def on_step_end(self, trainer, step, logs):
            snapshots.append(params_of(trainer.task))

    with pytest.raises(DivergenceError):
        Trainer(task, phases=[("lbfgs", 10, {"max_iter": 3})], device="cpu", callbacks=[Keep()]).fit()
    assert snapshots, "the NaN should come after at least one L-BFGS step"
    assert all(torch.equal(a, b) for a, b in zip(params_of(task), snapshots[-1]))


# -- configuration errors -----------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,match", [
    ({}, "needs a length"),
    ({"steps": 5, "epochs": 2}, "either steps or epochs"),
    ({"epochs": 2}, "epochs needs sized"),
    ({"steps": 5, "optimizer": "adamx"}, "adamx"),
    ({"steps": 5, "precision": "fp8"}, "fp8"),
    ({"steps": 5, "lr": -1.0}, "lr"),
    ({"steps": 5, "nan_policy": "ignore"}, "ignore"),
    ({"steps": 5, "schedule": "linear"}, "linear"),
    ({"steps": 5, "grad_clip": 0.0}, "grad_clip"),
    ({"steps": 5, "precision": "fp16", "optimizer": "lbfgs"}, "L-BFGS"),
    ({"phases": [("adam", 0)]}, "n_steps"),
    ({"phases": [("adam", 5)], "steps": 5}, "not both"),
    ({"steps": 5, "resume": True}, "out_dir"),
    ({"steps": 5, "device": "tpu"}, "tpu"),
])
def test_config_errors(kwargs, match):
    with pytest.raises((ConfigError, UnknownNameError), match=match):
        Trainer(SelfSampling(), **kwargs)


def test_task_contract_errors():
    class NoParams(Task):
        def loss_terms(self, batch):
            return {}

    with pytest.raises(ConfigError, match="no trainable parameters"):
        Trainer(NoParams(), steps=1)
    with pytest.raises(ConfigError, match="Task"):
        Trainer(nn.Linear(2, 2), steps=1)

    class BadTerms(SelfSampling):
        def loss_terms(self, batch):
            return {"vector": self.model(torch.rand(4, 2)).reshape(-1)}

    with pytest.raises(ShapeError, match="vector"):
        Trainer(BadTerms(), steps=1, device="cpu").fit()


def test_fresh_run_refuses_a_directory_with_checkpoints(tmp_path):
    Trainer(SelfSampling(), steps=2, out_dir=tmp_path, device="cpu").fit()
    with pytest.raises(ConfigError, match="resume=True"):
        Trainer(SelfSampling(), steps=2, out_dir=tmp_path, device="cpu").fit()


# -- helpers ------------------------------------------------------------------------------------
def test_resolve_device_and_move_to_device():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    mps = getattr(torch.backends, "mps", None)
    if not torch.cuda.is_available() and mps is not None and mps.is_available():
        expected = "mps"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda")
    batch = {"x": torch.ones(2), "pair": (torch.zeros(1), "label"), "n": 3}
    moved = move_to_device(batch, torch.device("cpu"))
    assert moved["pair"][1] == "label" and moved["n"] == 3 and torch.equal(moved["x"], batch["x"])


def test_progress_without_a_terminal_prints_plain_lines():
    import io

    stream = io.StringIO()  # not a TTY: "auto" means plain lines, never a bar
    progress = Progress(100, 0, progress_mode(None), stream=stream, every_s=1e9)
    assert progress.mode == "lines"
    for step in range(1, 101):
        progress.update(step, loss=1.0 / step)
        if step == 30:
            progress.set_validation({"test@33/rel_l2": 0.0341, "test@33/mse": 1e-4})
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10  # every tenth of the run (the clock interval is out of reach here)
    assert lines[0].startswith("[train] step 10/100 (10%)  loss 1.000e-01")
    assert "test@33/rel_l2 3.410e-02" in lines[3] and "eta" in lines[3] and "elapsed" in lines[3]
    assert Progress(100, 0, "lines", enabled=False, stream=stream).mode == "off"  # ranks other than 0
    quiet = io.StringIO()
    off = Progress(10, 0, "off", stream=quiet)
    off.update(10, 1.0)
    off.message("hello")
    off.close()
    assert quiet.getvalue() == ""
    assert progress_mode(True) == "bar" and progress_mode(False) == "lines"
    assert format_duration(3725) == "1:02:05" and format_duration(float("nan")) == "?"
    with pytest.raises(ConfigError, match="progress"):
        progress_mode("loud")


def test_progress_lines_follow_the_clock():
    import io

    stream = io.StringIO()
    progress = Progress(10**6, 0, "lines", stream=stream, every_s=0.0)  # every update is due
    for step in range(1, 4):
        progress.update(step, loss=0.5)
    assert len(stream.getvalue().splitlines()) == 3


def test_plot_history_and_torn_log(tmp_path):
    log = tmp_path / "m.jsonl"
    lines = [{"kind": "train", "step": s, "epoch": 0, "loss": 1.0 / s, "loss/a": 0.5 / s}
             for s in range(1, 6)]
    lines.append({"kind": "val", "step": 5, "epoch": 0, "val/err": 0.2})
    lines.append({"kind": "event", "step": 3, "epoch": 0, "event": "rollback"})
    log.write_text("".join(json.dumps(r) + "\n" for r in lines) + '{"kind": "tr')  # torn last line
    assert len(read_history(log)) == 7
    png = plot_history(log, tmp_path / "c.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ConfigError, match="unknown keys"):
        plot_history(log, tmp_path / "d.png", keys=["nope"])


def test_early_stopping_validation():
    with pytest.raises(ConfigError):
        EarlyStopping(patience=0)
    with pytest.raises(UnknownNameError):
        EarlyStopping(mode="best")
    with pytest.raises(ConfigError, match="needs val_data"):
        Trainer(Regression(), train_data=regression_data(), steps=2, early_stopping=2)


class TwoLayer(nn.Module):
    """A user-defined module: torch.compile skips frames of torch.nn's own modules."""

    def __init__(self):
        super().__init__()
        self.inner, self.outer = nn.Linear(2, 8), nn.Linear(8, 1)

    def forward(self, x):
        return self.outer(torch.tanh(self.inner(x)))


class CompiledTask(SelfSampling):
    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.model = TwoLayer()
        self.model.weight = self.model.inner.weight  # SelfSampling's regulariser reads model.weight


@pytest.mark.slow  # inductor compiles C++: about a minute on a small CPU
def test_compile_option_trains_or_reports_a_config_error():
    # torch.compile is lazy: either the first step compiles (and training proceeds, matching eager
    # training), or the platform cannot compile and that is reported as a ConfigError.
    eager = CompiledTask()
    Trainer(eager, steps=3, device="cpu").fit()
    task = CompiledTask()
    try:
        result = Trainer(task, steps=3, compile=True, device="cpu").fit()
    except ConfigError as exc:
        assert "compile=True" in str(exc)
    else:
        assert result.steps == 3
        assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(params_of(task), params_of(eager)))
        assert set(task.state_dict()) == set(eager.state_dict())  # compiled in place: same keys


def test_compile_failure_is_a_config_error():
    def broken_backend(graph_module, example_inputs):
        raise RuntimeError("no compiler here")

    with pytest.raises(ConfigError, match="compile=True failed.*no compiler here"):
        Trainer(CompiledTask(), steps=2, compile={"backend": broken_backend}, device="cpu").fit()
