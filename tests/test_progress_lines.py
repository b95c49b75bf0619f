"""Plain progress lines (no terminal, or ``progress=False``): the clock, the loss terms, ``"off"``."""

from __future__ import annotations

import io
import math

import torch

from sciml import diff
from sciml.geometry import Domain
from sciml.models.mlp import MLP
from sciml.pinn import PINNTask, pinn_phases
from sciml.problem import Dirichlet, Problem
from sciml.train import Trainer
from sciml.train.progress import Progress, progress_mode


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _lines(stream: io.StringIO) -> list[str]:
    return [ln for ln in stream.getvalue().splitlines() if ln.startswith("[train] step")]


def test_a_line_every_fifteen_seconds_of_the_clock():
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress(10**6, 0, "lines", stream=stream, clock=clock)  # tenths of the run out of reach
    for step in range(1, 41):
        clock.now += 1.0  # one second per step
        progress.update(step, loss=0.5, terms={"pde": 0.4, "bc": 0.1})
    assert [int(ln.split()[2].split("/")[0]) for ln in _lines(stream)] == [15, 30]
    assert "elapsed 0:00:15" in _lines(stream)[0]
    progress.close()  # the last step is reported when the run ends
    assert _lines(stream)[-1].startswith("[train] step 40/")


def test_the_line_shows_the_loss_terms_when_there_are_several():
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress(10, 0, "lines", stream=stream, clock=clock)
    progress.update(1, loss=0.012, terms={"pde": 0.01, "bc": 0.002})
    progress.update(2, loss=0.5, terms={"mse": 0.5})
    first, second = _lines(stream)
    assert "loss 1.200e-02 (pde 1.00e-02 bc 2.00e-03)" in first
    assert "loss 5.000e-01  elapsed" in second  # one term: nothing to add


def test_a_shorter_run_moves_the_total():
    stream = io.StringIO()
    progress = Progress(100, 0, "lines", stream=stream, clock=FakeClock())
    progress.update(5, loss=1.0)
    progress.set_total(8)
    progress.update(8, loss=1.0)
    assert _lines(stream)[-1].startswith("[train] step 8/8 (100%)")


def _pinn() -> PINNTask:
    def equation(u, x, inputs):
        return -diff.partial(u, x, 0, order=2) - math.pi**2 * torch.sin(math.pi * x[:, 0])

    problem = Problem(name="poisson1d", inputs=[], outputs=["u"], domain=Domain.interval(0.0, 1.0),
                      equation=equation, conditions=[Dirichlet(0.0)])
    torch.manual_seed(0)
    return PINNTask(problem, MLP(1, 1, hidden=[8], activation="tanh"), n_interior=32, n_boundary=2,
                    reference=None)


def test_progress_false_still_prints_lines_with_the_pinn_terms(capsys):
    assert progress_mode(False) == "lines"
    Trainer(_pinn(), steps=20, lr=1e-2, progress=False).fit()
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("[train] step")]
    assert len(lines) == 10 and lines[-1].startswith("[train] step 20/20 (100%)")
    assert all(" (pde " in ln and " bc " in ln for ln in lines), lines[-1]


def test_progress_off_prints_nothing_and_lines_say_when_lbfgs_converged(capsys):
    Trainer(_pinn(), steps=10, progress="off").fit()
    assert capsys.readouterr().err == ""
    result = Trainer(_pinn(), phases=pinn_phases(5, lbfgs_iterations=2000, lbfgs_tolerance=1e-3), progress=False).fit()
    err = capsys.readouterr().err
    assert result.reason == "converged"
    assert "[train] phase 1 (lbfgs) converged after" in err
    assert f"[train] step {result.steps}/{result.steps} (100%)" in err
