"""The training pieces the operator recipes need: H1 losses, evaluation at other resolutions, the cost
of a run (parameters, seconds per epoch), and the inverse Darcy problem (noisy u -> a on a coarse grid)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from sciml.errors import ConfigError, ShapeError, UnknownNameError
from sciml.fields import Grid
from sciml.operators import OperatorTask
from sciml.operators.solver import Solver
from sciml.problem import load_problem
from sciml.train.losses import relative_h1_per_sample, relative_h1_seminorm_per_sample, relative_l2_per_sample
from sciml.train.runinfo import RunClock, count_parameters
from sciml.workflows import train_operator

ROOT = Path(__file__).resolve().parents[1]
TINY_FNO = {"n_modes": [4, 4], "width": 8, "n_layers": 2}


def _darcy_inverse(**kwargs):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _common import problem_module

    return problem_module("darcy_inverse").make_problem(**kwargs)


def _fields(n: int = 101) -> tuple[torch.Tensor, torch.Tensor]:
    """Target ``x y`` and prediction ``x y + x^2`` on the unit square, ``(1, 1, n, n)``."""
    x, y = torch.meshgrid(torch.linspace(0, 1, n, dtype=torch.float64), torch.linspace(0, 1, n, dtype=torch.float64),
                          indexing="ij")
    target = (x * y)[None, None]
    return target + (x**2)[None, None], target


def test_h1_seminorm_of_a_known_field():
    # grad e = (2x, 0), grad t = (y, x): ||grad e||^2 = 4/3, ||grad t||^2 = 2/3 on the unit square,
    # so the relative seminorm is sqrt(2) (finite differences: exact inside, O(h) at the edges).
    prediction, target = _fields()
    assert float(relative_h1_seminorm_per_sample(prediction, target)) == pytest.approx(2**0.5, rel=2e-2)
    # an offset has no gradient: the seminorm does not see it, the L2 and H1 norms do
    assert float(relative_h1_seminorm_per_sample(target + 3.0, target)) == pytest.approx(0.0, abs=1e-12)
    assert float(relative_h1_per_sample(target + 3.0, target)) > 1.0
    # the spacing scales the derivatives: on a box [0, 2]^2 sampled by the same array both
    # gradients halve, the ratio stays
    same = relative_h1_seminorm_per_sample(prediction, target, spacing=[0.02, 0.02])
    assert float(same) == pytest.approx(float(relative_h1_seminorm_per_sample(prediction, target)), rel=1e-12)
    with pytest.raises(ShapeError):
        relative_h1_seminorm_per_sample(prediction, target, spacing=[0.01])


def test_operator_task_h1_losses_are_weighted_terms():
    prediction, target = _fields()
    batch = {"x": prediction.float(), "y": target.float()}
    grid = Grid(101, ndim=2)
    task = OperatorTask(nn.Identity(), grid, ["a"], ["u"], loss="rel_l2+h1", h1_weight=0.5)
    terms = task.loss_terms(batch)
    assert set(terms) == {"rel_l2", "h1_seminorm"}
    assert float(terms["rel_l2"]) == pytest.approx(float(relative_l2_per_sample(prediction, target)), rel=1e-5)
    assert float(terms["h1_seminorm"]) == pytest.approx(0.5 * 2**0.5, rel=2e-2)
    full = OperatorTask(nn.Identity(), grid, ["a"], ["u"], loss="rel_h1", h1_weight=0.25).loss_terms(batch)
    assert float(full["rel_h1"]) == pytest.approx(0.25 * float(relative_h1_per_sample(prediction, target)), rel=1e-5)
    assert set(OperatorTask(nn.Identity(), grid, ["a"], ["u"]).loss_terms(batch)) == {"rel_l2"}
    with pytest.raises(UnknownNameError):
        OperatorTask(nn.Identity(), grid, ["a"], ["u"], loss="h2")
    with pytest.raises(ConfigError):
        OperatorTask(nn.Identity(), grid, ["a"], ["u"], h1_weight=-1.0)


def test_output_grid_reads_targets_and_fine_answers_at_the_coarse_nodes():
    grid = Grid(17, ndim=2)
    y = torch.arange(17 * 17, dtype=torch.float32).reshape(1, 1, 17, 17)
    task = OperatorTask(nn.Identity(), grid, ["u"], ["a"], output_size=5)
    assert torch.equal(task.on_output_grid(y), y[..., ::4, ::4])  # every fourth node: 0, 4, ..., 16
    prediction, target = task._per_sample({"x": y, "y": y})  # a model answering on the input grid
    assert prediction.shape == target.shape == (1, 1, 5, 5) and torch.equal(prediction, target)
    assert torch.equal(task.on_output_grid(y[..., ::4, ::4]), y[..., ::4, ::4])  # already there
    with pytest.raises(ShapeError):
        task.on_output_grid(torch.zeros(1, 1, 16, 16))  # 15 is no multiple of 4
    with pytest.raises(ConfigError):
        OperatorTask(nn.Identity(), grid, ["u"], ["a"], output_size=1)


def test_per_sample_errors_are_the_eval_mode_model_s_in_any_mode():
    """Right after training the task is in train mode: errors must still be without dropout (the
    Galerkin Transformer rows of session 9 were measured with it), and the mode comes back."""
    grid = Grid(9, ndim=2)
    torch.manual_seed(0)
    task = OperatorTask(nn.Sequential(nn.Conv2d(1, 1, 1), nn.Dropout(0.5)), grid, ["u"], ["a"])
    x = torch.randn(6, 1, 9, 9)
    data = [{"x": x, "y": 2 * x + 1}]
    task.eval()
    reference = task.per_sample_errors(data)
    task.train()
    first, second = task.per_sample_errors(data), task.per_sample_errors(data)
    assert task.training
    np.testing.assert_array_equal(first, reference)
    np.testing.assert_array_equal(second, reference)


def test_run_clock_and_parameter_count():
    assert count_parameters([torch.zeros(3, 4), torch.zeros(2, dtype=torch.complex64)]) == 16
    clock = RunClock()
    clock.start(step=5)
    with clock.paused():
        pass
    timing = clock.stop(step=15, steps_per_epoch=5)
    assert timing["steps"] == 10 and timing["s_per_epoch"] == pytest.approx(timing["train_seconds"] / 2, abs=1e-3)


def test_train_operator_reports_cost_and_errors_at_other_resolutions(tmp_path):
    # Data at 17, training on every second node (9), evaluated at 17 on the same test samples and
    # at 33 on freshly generated ones; H1-regularised loss and one-cycle options pass through.
    from sciml.data import generate

    data = generate("darcy", 60, Grid(17, ndim=2), seed=0, path=tmp_path / "d17.h5", progress=False)
    out = tmp_path / "run"
    run = train_operator("darcy", model="fno", model_kwargs=TINY_FNO, data=data, n_train=48, n_test=12,
                         resolution=9, epochs=2, batch_size=12, out_dir=out, loss="rel_l2+h1", h1_weight=0.5,
                         schedule_kwargs={"div_factor": 1e4, "final_div_factor": 1e4, "pct_start": 0.3},
                         grad_clip=0.99, eval_resolutions=[17, 33], progress=False)
    summary = json.loads((out / "summary.json").read_text())
    params = sum(p.numel() * (2 if p.is_complex() else 1) for p in run.solver.task.model.parameters())
    assert summary["params"] == run.result.params == params > 0
    assert summary["s_per_epoch"] > 0 and summary["epochs"] == 2 and summary["resolution"] == 9
    for n in (9, 17, 33):
        assert 0 < summary[f"test@{n}/rel_l2_mean"] < 10 and f"test@{n}/rel_l2" in run.result.metrics
    assert summary["test@9/rel_l2_mean"] == pytest.approx(summary["test_rel_l2_mean"])
    assert "same test samples" in summary["eval_sets"]["test@17"]
    assert "fresh samples" in summary["eval_sets"]["test@33"] and (out / "data_33_test.h5").is_file()
    events = [r for r in run.result.history if r["kind"] == "event"]
    assert events[0]["event"] == "start" and events[0]["params"] == params
    timing = [e for e in events if e["event"] == "timing"][0]
    assert timing["s_per_epoch"] == pytest.approx(summary["s_per_epoch"]) and timing["steps"] == 8
    phase = json.loads((out / "config.json").read_text())["phases"][0]
    assert phase["schedule"] == "onecycle" and phase["schedule_kwargs"]["div_factor"] == 1e4
    lrs = [r["lr"] for r in run.result.history if r["kind"] == "train"]
    assert min(lrs) < 1e-3 / 100  # one cycle per step from max_lr / div_factor
    # a resume continues with the recorded settings for what the call leaves unset
    again = train_operator("darcy", model="fno", model_kwargs=TINY_FNO, data=data, n_train=48, n_test=12,
                           epochs=2, batch_size=12, out_dir=out, loss="rel_l2+h1", progress=False, resume=True)
    assert again.solver.task.h1_weight == 0.5 and again.solver.grid.shape == (9, 9)
    resumed = json.loads((out / "summary.json").read_text())
    assert resumed["test@33/rel_l2_mean"] == pytest.approx(summary["test@33/rel_l2_mean"])
    assert resumed["s_per_epoch"] == summary["s_per_epoch"]  # nothing was left to train: the old timing stays


def test_inverse_darcy_shapes_noise_and_seeding():
    grid = Grid(17, ndim=2)
    clean_a, clean_u = load_problem("darcy").make_samples(16, grid, seed=3)
    problem = _darcy_inverse(noise=0.05, output_size=5)
    assert problem.input_names == ("u",) and problem.outputs == ("a",)
    assert problem.params["noise"] == 0.05 and problem.params["output_size"] == 5
    inputs, outputs = problem.make_samples(16, grid, seed=3)
    assert inputs["u"].shape == outputs["a"].shape == (16, 17, 17)
    np.testing.assert_array_equal(outputs["a"], clean_a["a"])  # the same instances as darcy's, seed for seed
    noise = inputs["u"] - clean_u["u"]
    rel = np.linalg.norm(noise, axis=(1, 2)) / np.linalg.norm(clean_u["u"], axis=(1, 2))
    assert rel.mean() == pytest.approx(0.05, rel=0.05) and rel.min() > 0.04 and rel.max() < 0.06
    rms = np.sqrt((clean_u["u"] ** 2).mean(axis=(1, 2)))[:, None, None]
    z = noise / (0.05 * rms)  # standard normal at every node
    assert abs(z.mean()) < 0.03 and z.std() == pytest.approx(1.0, abs=0.03)
    assert problem.fingerprint() != _darcy_inverse(noise=0.1, output_size=5).fingerprint()
    exact, _ = _darcy_inverse(noise=0.0, output_size=5).make_samples(16, grid, seed=3)
    np.testing.assert_array_equal(exact["u"], clean_u["u"])
    with pytest.raises(ConfigError):
        _darcy_inverse(noise=-0.1)


def test_fno_learns_inverse_darcy_on_a_coarse_output_grid(tmp_path):
    problem = _darcy_inverse(noise=0.01, output_size=5)
    run = train_operator(problem, model="fno", model_kwargs={"n_modes": [6, 6], "width": 16, "n_layers": 3},
                         n_train=160, n_test=20, resolution=17, epochs=15, batch_size=10, lr=3e-3,
                         out_dir=tmp_path / "inv", progress=False)
    from sciml.data import GridDataset

    test = GridDataset(tmp_path / "inv" / "data_17.h5", indices=np.arange(160, 180))
    _, y = test.tensors()
    coarse = y[..., ::4, ::4].double().numpy()
    mean_a = GridDataset(tmp_path / "inv" / "data_17.h5", indices=np.arange(160)).tensors()[1].double().mean()
    baseline = (np.linalg.norm((coarse - float(mean_a)).reshape(20, -1), axis=1)
                / np.linalg.norm(coarse.reshape(20, -1), axis=1)).mean()  # predicting the mean coefficient
    assert run.mean_error < 0.75 * baseline, (run.mean_error, baseline)
    with pytest.warns(RuntimeWarning, match="params differ"):  # the file's default problem has output_size 22
        loaded = Solver.load(tmp_path / "inv", device="cpu")  # the output grid travels in the checkpoint
    assert loaded.task.output_size == (5, 5)
    with torch.no_grad():
        answer = loaded.task(test.tensors()[0][:2])
    assert answer.shape == (2, 1, 17, 17)  # FNO answers on the input grid, compared at the coarse nodes


def test_inverse_benchmark_noise_matches_generate(tmp_path):
    # operators_inverse_darcy adds the noise to the forward Darcy file itself instead of solving every
    # sample again per noise level; it must give the data `generate(darcy_inverse)` makes (40 samples:
    # two shards of 32 and 8).
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import _operators as ops
    from operators_inverse_darcy import noisy_inverse_data

    from sciml.data import generate

    grid = Grid(9, ndim=2)
    problem = _darcy_inverse(noise=0.1, output_size=5)
    forward = ops.load(generate("darcy", 40, grid, seed=7, path=tmp_path / "f.h5", progress=False), np.arange(40))
    derived = noisy_inverse_data(problem, forward, seed=7)
    made = ops.load(generate(problem, 40, grid, seed=7, path=tmp_path / "i.h5", progress=False), np.arange(40))
    assert derived.input_names == made.input_names == ("u",) and derived.output_names == ("a",)
    torch.testing.assert_close(derived.y, made.y, rtol=0, atol=0)
    torch.testing.assert_close(derived.x, made.x, rtol=1e-5, atol=1e-9)  # u stored in float32 before the noise
    assert not torch.allclose(derived.x, forward.y)  # the noise is there


def test_benchmark_rows_resume_by_recipe_and_merge_processes(tmp_path, capsys):
    # The operator benchmarks keep finished rows with their recipes: a rerun reuses a row only with
    # the same recipe, a row finished by another process (another Rows object) is merged, not lost,
    # and other shared settings discard everything, checkpoints included.
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import _operators as ops

    calls = []

    def make(value):
        def _make():
            calls.append(value)
            return {"method": "m", "params": 1, "epochs": 1, "rel_l2_mean": value, "rel_l2_median": value,
                    "infer_ms_per_sample": 1.0}
        return _make

    root = tmp_path / "bench" / "b"
    first, second = ops.Rows(tmp_path / "b.json", {"n": 1}, root), ops.Rows(tmp_path / "b.json", {"n": 1}, root)
    first.run("a", {"epochs": 1}, make(0.1))
    second.run("b", {"epochs": 1}, make(0.2))  # another process, at the same time
    first.run("c", {"epochs": 1}, make(0.3))
    assert set(ops.Rows(tmp_path / "b.json", {"n": 1}, root).stored()) == {"a", "b", "c"}
    assert first.run("a", {"epochs": 1}, make(9.0))["rel_l2_mean"] == 0.1  # reused
    (root / "a" / "ckpt.pt").write_text("x")  # a checkpoint of the old recipe
    assert first.run("a", {"epochs": 2}, make(0.4))["rel_l2_mean"] == 0.4  # another recipe: trained again
    assert not (root / "a" / "ckpt.pt").exists() and calls == [0.1, 0.2, 0.3, 0.4]
    assert [r["rel_l2_mean"] for r in first.table(lambda r: r["rel_l2_mean"])] == [0.2, 0.3, 0.4]
    assert ops.Rows(tmp_path / "b.json", {"n": 2}, root).stored() == {} and not (root / "b").exists()
    assert "other shared settings" in capsys.readouterr().out


def test_periodic_axes_hide_the_repeated_node_from_the_network():
    # burgers1d's 33-node grid is 32 periodic points plus x = 1, a copy of x = 0: the network must see
    # the 32 distinct points (an FFT over 33 would see a period one node too long).
    from sciml.operators.task import periodic_node_axes

    grid = Grid(33, ndim=1)
    assert periodic_node_axes(load_problem("burgers1d"), grid) == (0,)
    assert periodic_node_axes(load_problem("darcy"), Grid(9, ndim=2)) == ()
    seen = []

    class Recorder(torch.nn.Module):
        def forward(self, z):
            seen.append(tuple(z.shape))
            return 2 * z

    task = OperatorTask(Recorder(), grid, ["u0"], ["u"], periodic_axes=(0,))
    x = torch.sin(2 * math.pi * torch.linspace(0, 1, 33))[None, None]
    out = task(x)
    assert seen == [(1, 1, 32)] and out.shape == (1, 1, 33)
    torch.testing.assert_close(out, 2 * x, atol=1e-6, rtol=0)  # the last node is the first again
    again = OperatorTask(Recorder(), grid, ["u0"], ["u"])
    again.load_state_for_checkpoint(task.state_for_checkpoint())
    assert again.periodic_axes == (0,)
    with pytest.raises(ConfigError, match="periodic_axes"):
        OperatorTask(Recorder(), grid, ["u0"], ["u"], periodic_axes=(1,))
