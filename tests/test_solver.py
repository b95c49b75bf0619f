"""Train an operator end to end, then answer new boundary conditions with the Solver."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sciml.errors import (
    CheckpointError,
    ConfigError,
    NonFiniteError,
    ProblemError,
    ShapeError,
    UnknownNameError,
)
from sciml.fields import Field, Grid
from sciml.operators.solver import Solver
from sciml.workflows import resume_operator, train_operator

SMALL = {"n_modes": [6, 6], "width": 16, "n_layers": 3, "padding": 0}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("poisson_run")
    return train_operator(
        "poisson", model="fno", model_kwargs=SMALL, n_train=160, n_test=20, resolution=17,
        out_dir=out, epochs=12, batch_size=16, lr=5e-3, progress=False,
    )


def test_training_learned_the_operator(run):
    # Untrained, the relative error is about 1; a linear operator this smooth is learned to a few percent.
    assert run.mean_error < 0.08, run.test_errors
    assert run.median_error <= run.test_errors.max()
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert summary["test_rel_l2_mean"] == pytest.approx(run.mean_error)
    assert (run.run_dir / "loss_curve.png").is_file() and (run.run_dir / "metrics.jsonl").is_file()
    # Validated at the training resolution and on every second node (discretisation invariance).
    final = run.result.metrics
    assert final["test@17/rel_l2"] < 0.08 and final["test@9/rel_l2"] < 0.15, final


def test_solver_answers_a_new_boundary_condition_given_as_a_formula(run):
    solver = run.solver
    fields = solver(g="sin(pi*x)*y", f=0.0)
    assert set(fields) == {"u"} and isinstance(fields["u"], Field)
    assert fields["u"].values.shape == (17, 17)
    reference = solver.reference(g="sin(pi*x)*y", f=0.0)["u"]
    x, y = reference.disc.coord_arrays().values()
    boundary = reference.disc.boundary_mask()
    np.testing.assert_allclose(reference.numpy()[boundary], (np.sin(np.pi * x) * y)[boundary], atol=1e-12)
    assert solver.error(g="sin(pi*x)*y", f=0.0)["u"] < 0.15


def test_solver_load_rebuilds_the_same_solver_from_the_checkpoint(run):
    loaded = Solver.load(run.run_dir, device="cpu")
    assert loaded.input_names == ("g", "f") and loaded.grid == Grid(17, ndim=2)
    inputs = {"g": lambda x, y: x * y, "f": "10*sin(pi*x)"}
    a = run.solver(**inputs)["u"].numpy()
    b = loaded(**inputs)["u"].numpy()
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # Fields on another grid are resampled onto the training grid first.
    fine = Grid(33, ndim=2)
    fx, fy = fine.coord_arrays().values()
    c = loaded(g=Field(fx * fy, fine, "g"), f=Field(10 * np.sin(np.pi * fx), fine, "f"))["u"].numpy()
    np.testing.assert_allclose(b, c, rtol=1e-5, atol=1e-6)
    assert "poisson" in repr(loaded)


def test_solver_rejects_bad_inputs(run):
    solver = run.solver
    with pytest.raises(UnknownNameError, match="'h'"):
        solver(g=0.0, f=0.0, h=1.0)
    with pytest.raises(ProblemError, match="missing"):
        solver(g="x")
    with pytest.raises(ShapeError):
        solver(g=np.zeros((16, 16)), f=0.0)
    with pytest.raises(NonFiniteError):
        solver(g=np.full((17, 17), np.nan), f=0.0)
    with pytest.raises(ConfigError, match="batch"):
        solver(g=np.zeros((2, 17, 17)), f=0.0)
    assert solver.predict({"g": np.zeros((2, 17, 17)), "f": 0.0})["u"].shape == (2, 17, 17)


def test_load_refuses_missing_or_corrupt_runs(run, tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        Solver.load(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in run.run_dir.glob("ckpt_*.pt"):
        data = bytearray(f.read_bytes())
        data[len(data) // 2] ^= 0xFF
        (broken / f.name).write_bytes(bytes(data))
    (broken / "latest").write_bytes((run.run_dir / "latest").read_bytes())
    with pytest.raises(CheckpointError):
        Solver.load(broken)


def test_resume_of_a_finished_run_keeps_its_result(run):
    again = resume_operator(run.run_dir, progress=False)
    assert again.result.steps == run.result.steps
    assert again.mean_error == pytest.approx(run.mean_error, rel=1e-6)


def test_train_operator_checks_its_settings_before_any_work(tmp_path):
    for bad in ({"n_train": 0}, {"epochs": -1}, {"batch_size": 2.5}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            train_operator("poisson", out_dir=tmp_path / "x", **bad)
    with pytest.raises(UnknownNameError, match="nosuch"):
        train_operator("nosuch", out_dir=tmp_path / "y")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
