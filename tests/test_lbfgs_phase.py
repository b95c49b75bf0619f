"""L-BFGS phases in iterations with a tolerance, and the ``precision`` option of a phase."""

from __future__ import annotations

import math
import shutil

import pytest
import torch
from torch import nn

from sciml import diff
from sciml.errors import ConfigError
from sciml.geometry import Domain
from sciml.models.mlp import MLP
from sciml.pinn import PINNTask, pinn_phases
from sciml.problem import Dirichlet, Problem
from sciml.train import Callback, Task, Trainer
from sciml.train.phases import LBFGSBudget, Phase, parse_phases


class LeastSquares(Task):
    """A linear least-squares fit that an exact solution zeroes: L-BFGS converges in a few iterations."""

    def __init__(self, n_in: int = 4) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.model = nn.Linear(n_in, 1)
        torch.nn.init.zeros_(self.model.weight)
        torch.nn.init.zeros_(self.model.bias)
        x = torch.randn(48, n_in, generator=gen)
        self.register_buffer("x", x)
        self.register_buffer("y", x @ torch.arange(1.0, n_in + 1)[:, None] - 0.5)

    def loss_terms(self, batch):
        residual = self.model(self.x) - self.y
        return {"head": residual[:24].pow(2).mean(), "tail": residual[24:].pow(2).mean()}


class Wiggle(Task):
    """A small tanh network fitting a wiggly curve: L-BFGS keeps improving for hundreds of iterations."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.model = nn.Sequential(nn.Linear(1, 12), nn.Tanh(), nn.Linear(12, 1))
        x = torch.linspace(-1, 1, 64)[:, None]
        self.register_buffer("x", x)
        self.register_buffer("y", torch.sin(6 * x) + 0.3 * torch.cos(17 * x))

    def loss_terms(self, batch):
        return {"fit": (self.model(self.x) - self.y).pow(2).mean()}


class DtypeLog(Callback):
    """Records the dtype of the first parameter after every step."""

    def __init__(self) -> None:
        self.dtypes: dict[int, torch.dtype] = {}

    def on_step_end(self, trainer, step, logs):
        self.dtypes[step] = trainer.params[0].dtype


def _lbfgs_iterations(trainer: Trainer) -> int:
    return int(trainer.optimizer.state[trainer.params[0]]["n_iter"])


def _final_loss(task: Task) -> float:
    with torch.no_grad():
        return float(sum(task.loss_terms(None).values()))


def _events(result, name: str) -> list[dict]:
    return [r for r in result.history if r.get("event") == name]


# -- iterations, tolerance, early end ----------------------------------------------------------------
def test_a_converging_lbfgs_phase_ends_early_and_the_run_says_so():
    task = LeastSquares().double()
    trainer = Trainer(task, phases=[("lbfgs", {"iterations": 400, "tolerance": 1e-10})], device="cpu",
                      progress="off")
    assert trainer.total_steps == 20  # ceil(400 / 20) steps at most
    result = trainer.fit()
    used = _lbfgs_iterations(trainer)
    assert used < 400 and result.steps < 20  # stopped well before its budget
    assert result.reason == "converged" and "converged after" in result.message
    assert trainer.total_steps == result.steps  # the run's length follows the phase
    (event,) = _events(result, "converged")
    assert event["phase"] == 0 and event["iterations"] == used and event["budget"] == 400
    # the loss stopped changing by more than tolerance_change = 1e-12 (train/loss is the loss
    # before the last step, so the task is asked)
    assert _final_loss(task) < 1e-10


def test_the_next_phase_starts_when_lbfgs_converges():
    task = LeastSquares().double()
    phases = [("adam", 10, {"lr": 0.05}), ("lbfgs", {"iterations": 400, "tolerance": 1e-10}),
              ("adam", {"steps": 5, "lr": 1e-6})]
    result = Trainer(task, phases=phases, device="cpu", progress="off").fit()
    (converged,) = _events(result, "converged")
    end = 10 + converged["steps"]
    assert [(e["step"], e["optimizer"]) for e in _events(result, "phase")] == [(10, "lbfgs"), (end, "adam")]
    assert result.steps == end + 5 and result.reason == "completed"
    assert "phase 1 (lbfgs) converged after" in result.message


def test_the_iteration_budget_is_exact_when_lbfgs_does_not_converge():
    task = Wiggle()
    trainer = Trainer(task, phases=[("lbfgs", {"iterations": 45, "tolerance": 1e-30, "max_eval": 200})],
                      device="cpu", progress="off")
    result = trainer.fit()
    assert result.steps == 3 and result.reason == "completed"  # 20 + 20 + 5 iterations
    assert _lbfgs_iterations(trainer) == 45
    assert trainer.optimizer.param_groups[0]["max_iter"] == 5  # the last step was trimmed
    assert not _events(result, "converged")


def test_budget_shares_make_up_for_steps_cut_short_by_max_eval():
    param = nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.LBFGS([param], max_iter=20, max_eval=25)
    budget = LBFGSBudget(Phase("lbfgs", 3, iterations=50), optimizer)
    state = optimizer.state[param]
    group = optimizer.param_groups[0]

    def run(iters: int, evals: int) -> bool:  # what optimizer.step would have done
        state["n_iter"] = state.get("n_iter", 0) + iters
        state["func_evals"] = state.get("func_evals", 0) + evals
        return budget.after_step()

    budget.before_step(steps_left=3)
    assert group["max_iter"] == 20
    assert run(12, 25) is False  # stopped at max_eval: not converged
    budget.before_step(steps_left=2)
    assert group["max_iter"] == 20
    assert run(20, 22) is False
    budget.before_step(steps_left=1)  # 18 left, one step: it takes them all
    assert group["max_iter"] == 18 and group["max_eval"] == 25
    assert run(5, 7) is True and budget.converged  # fewer than allowed, within max_eval: converged
    assert budget.used == 37


def test_the_tolerance_sets_lbfgs_tolerances_and_old_forms_are_unchanged():
    phases = parse_phases([("adam", 5), ("lbfgs", 3, {"max_iter": 7}),
                           ("lbfgs", {"iterations": 41, "tolerance": 1e-9, "max_iter": 10})],
                          optimizer="adam", steps=None, lr=1e-3, weight_decay=0.0, schedule=None,
                          schedule_kwargs=None)
    assert [p.steps for p in phases] == [5, 3, 5]
    assert phases[1].iterations is None and phases[1].options["max_iter"] == 7
    assert phases[2].iterations == 41
    assert phases[2].options["tolerance_grad"] == 1e-9
    assert phases[2].options["tolerance_change"] == pytest.approx(1e-11)
    assert "tolerance" not in phases[2].options and "iterations" not in phases[2].options


@pytest.mark.parametrize(("phases", "match"), [
    ([("lbfgs", {"iterations": -5})], "iterations: expected a positive integer, got -5"),
    ([("lbfgs", {"iterations": 0})], "iterations"),
    ([("lbfgs", 10, {"iterations": 100})], "both n_steps=10 and iterations=100"),
    ([("lbfgs", {"steps": 10, "iterations": 100})], "both steps=10 and iterations=100"),
    ([("lbfgs", {"tolerance": 1e-9})], "expected 'steps' or"),
    ([("lbfgs", 10, {"tolerance": 1e-9})], "'tolerance' ends an L-BFGS phase given in iterations"),
    ([("lbfgs", {"iterations": 100, "tolerance": -1.0})], "tolerance: expected a finite positive"),
    ([("lbfgs", {"iterations": 100, "tolerance": 1e-9, "tolerance_grad": 1e-5})], "tolerance_grad"),
    ([("adam", {"iterations": 100})], "'iterations' counts L-BFGS iterations"),
    ([("lbfgs", {"iterations": 100, "precision": "float128"})], "expected one of .*float64.*'float128'"),
    ([("adam", 10, {"precision": torch.int64})], "floating-point dtype"),
    ([("adam", 10, {"precision": "float64", "dtype": "float32"})], "both precision"),
])
def test_bad_phase_options_say_what_was_expected(phases, match):
    with pytest.raises(ConfigError, match=match):
        Trainer(LeastSquares(), phases=phases, device="cpu", progress="off")


# -- precision ------------------------------------------------------------------------------------
def test_the_precision_option_converts_the_task_when_its_phase_starts():
    task = LeastSquares()
    log = DtypeLog()
    phases = [("adam", 6, {"lr": 0.05}), ("lbfgs", {"iterations": 200, "tolerance": 1e-10, "precision": "float64"})]
    trainer = Trainer(task, phases=phases, device="cpu", progress="off", callbacks=[log])
    result = trainer.fit()
    assert {log.dtypes[s] for s in range(1, 7)} == {torch.float32}  # Adam ran in float32
    assert {log.dtypes[s] for s in range(7, result.steps + 1)} == {torch.float64}
    assert all(p.dtype == torch.float64 for p in task.parameters()) and task.x.dtype == torch.float64
    assert result.reason == "converged" and _final_loss(task) < 1e-10
    assert trainer.settings()["phases"][1]["precision"] == "float64"


def test_later_phases_keep_the_precision_and_may_set_their_own():
    task = LeastSquares()
    log = DtypeLog()
    phases = [("adam", 2, {"precision": torch.float64}), ("sgd", 2, {"lr": 1e-3}),
              ("adam", 2, {"dtype": "fp32"})]
    Trainer(task, phases=phases, device="cpu", progress="off", callbacks=[log]).fit()
    assert [log.dtypes[s] for s in range(1, 7)] == [torch.float64] * 4 + [torch.float32] * 2


def _resumable_run(out, resume=False, checkpoint_every=None, keep=3):
    task = LeastSquares()
    phases = [("adam", 6, {"lr": 0.05}),
              ("lbfgs", {"iterations": 200, "tolerance": 1e-10, "max_iter": 4, "precision": "float64"}),
              ("adam", {"steps": 3, "lr": 1e-4})]
    trainer = Trainer(task, phases=phases, device="cpu", progress="off", out_dir=out, resume=resume,
                      checkpoint_every=checkpoint_every, keep_checkpoints=keep)
    return task, trainer, trainer.fit()


@pytest.mark.parametrize("where", ["in_lbfgs", "at_convergence"])
def test_resuming_after_the_precision_switch_repeats_the_uninterrupted_run(tmp_path, where):
    task, _, full = _resumable_run(tmp_path / "full", checkpoint_every=1, keep=100)
    (converged,) = _events(full, "converged")
    end = 6 + converged["steps"]
    assert end < 6 + 50  # converged before its budget of 50 steps
    step = 8 if where == "in_lbfgs" else end
    partial = tmp_path / "partial"
    shutil.copytree(tmp_path / "full", partial)
    for f in partial.glob("ckpt_*.pt"):
        if int(f.stem.split("_")[1]) > step:
            f.unlink()  # as if the run had stopped right after the checkpoint of `step`
    resumed_task, trainer, resumed = _resumable_run(partial, resume=True)
    assert resumed.steps == full.steps == end + 3 and trainer.total_steps == full.steps
    assert all(p.dtype == torch.float64 for p in resumed_task.parameters())
    assert all(torch.equal(a, b) for a, b in zip(resumed_task.parameters(), task.parameters()))
    # the converged phase was not run again: one convergence, one switch to the last Adam phase
    assert len(_events(resumed, "converged")) == 1
    assert {e["step"] for e in _events(resumed, "phase") if e["optimizer"] == "adam"} == {end}


def test_a_float64_checkpoint_of_a_plain_task_is_not_rounded_on_resume(tmp_path):
    _, _, full = _resumable_run(tmp_path / "run")
    task, trainer, again = _resumable_run(tmp_path / "run", resume=True)  # resumes at the end
    assert again.steps == full.steps and again.reason == "completed"
    assert trainer.params[0].dtype == torch.float64


# -- PINNs ----------------------------------------------------------------------------------------
def _poisson_1d() -> Problem:
    def equation(u, x, inputs):
        return -diff.partial(u, x, 0, order=2) - math.pi**2 * torch.sin(math.pi * x[:, 0])

    return Problem(name="poisson1d", inputs=[], outputs=["u"], domain=Domain.interval(0.0, 1.0),
                   equation=equation, conditions=[Dirichlet(0.0)])


def test_pinn_phases_in_iterations_run_lbfgs_in_float64_without_a_callback():
    torch.manual_seed(0)
    task = PINNTask(_poisson_1d(), MLP(1, 1, hidden=[8], activation="tanh"), n_interior=32, n_boundary=2,
                    reference=None)
    phases = pinn_phases(30, lbfgs_iterations=25, max_iter=10, lr=1e-2)
    assert phases[1][0] == "lbfgs" and phases[1][1]["iterations"] == 25
    log = DtypeLog()
    trainer = Trainer(task, phases=phases, progress="off", callbacks=[log])
    result = trainer.fit()
    assert log.dtypes[30] == torch.float32 and log.dtypes[result.steps] == torch.float64
    assert task.dtype == torch.float64
    assert _lbfgs_iterations(trainer) <= 25 and result.steps <= 30 + 3
    # the older positional form is unchanged: fixed steps, no precision
    old = pinn_phases(400, 10, max_iter=20)
    assert old[1][:2] == ("lbfgs", 10) and "precision" not in old[1][2] and "iterations" not in old[1][2]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"lbfgs_steps": 3, "lbfgs_iterations": 60}, "give one of them"),
    ({"lbfgs_tolerance": 1e-9}, "needs lbfgs_iterations"),
    ({"lbfgs_iterations": 60, "lbfgs_precision": "double-ish"}, "lbfgs_precision"),
    ({"lbfgs_iterations": -1}, "lbfgs_iterations: expected a positive integer"),
])
def test_pinn_phases_rejects_mixed_forms(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        pinn_phases(10, **kwargs)
