"""train_deeponet / `sciml train --model deeponet`: default sensors, a run that learns, load, resume, solve."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import sciml
from sciml.deeponet.solver import PointSolver
from sciml.errors import ConfigError
from sciml.workflows import resume_operator
from sciml.workflows.deeponet import default_sensors, is_affine, train_deeponet


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_default_sensors_respect_the_limit_and_the_boundary():
    poisson = sciml.load_problem("poisson")
    grid = sciml.Grid(33, ndim=2)
    sensors = default_sensors(poisson, grid, max_sensors=64)
    assert sensors.names == ("g", "f")
    g, f = sensors.nodes["g"], sensors.nodes["f"]
    assert len(g) <= 64 and len(f) <= 64 and len(f) >= 25  # 33 nodes, stride 5: 7 x 7
    on_boundary = (g == 0) | (g == 32)
    assert on_boundary.any(axis=1).all()  # every g sensor is a boundary node
    with pytest.raises(ConfigError):
        default_sensors(poisson, grid, max_sensors=0)


def test_a_run_learns_and_is_loaded_resumed_and_solved(tmp_path, capsys):
    run = train_deeponet("antiderivative", n_train=100, n_test=20, steps=2000, out_dir=tmp_path / "run",
                         device="cpu", progress=False, model_kwargs={"branch": [100, 64, 64], "trunk": [1, 64, 64]})
    assert run.mean_error < 0.1, run.mean_error  # an untrained network is near 1
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["test_rel_l2_mean"] == pytest.approx(run.mean_error) and summary["sensors"] == 100
    loaded = sciml.Solver.load(tmp_path / "run", device="cpu")
    assert isinstance(loaded, PointSolver)
    x = np.linspace(0, 1, 11)[:, None]
    np.testing.assert_allclose(loaded(u="cos(3*x)")(x)["s"], run.solver(u="cos(3*x)")(x)["s"], rtol=1e-5)
    again = resume_operator(tmp_path / "run", progress=False)  # a finished run keeps its result
    assert again.result.steps == 2000 and again.mean_error == pytest.approx(run.mean_error, rel=1e-5)
    from sciml.cli import main

    assert main(["solve", str(tmp_path / "run"), "--set", "u=cos(3*x)"]) == 0
    assert "relative L2 error vs reference" in capsys.readouterr().out
    assert main(["train", "antiderivative", "--model", "deeponet", "--compile"]) == 2
    assert "drop --precision" in capsys.readouterr().err


def test_the_same_seed_gives_the_same_run_whatever_the_global_rng(tmp_path):
    errors = []
    for k, global_seed in enumerate((1, 2)):
        torch.manual_seed(global_seed)  # the state a user's script happens to leave behind
        run = train_deeponet("antiderivative", n_train=10, n_test=5, steps=5, out_dir=tmp_path / str(k),
                             device="cpu", progress=False, seed=3)
        errors.append(run.mean_error)
    assert errors[0] == errors[1]


def test_is_affine_tells_a_linear_solution_map_from_a_nonlinear_one():
    assert is_affine(sciml.load_problem("poisson"), sciml.Grid(17, ndim=2))  # -Laplace u = f, u = g: linear
    reaction = sciml.load_problem("diffusion_reaction")
    assert not is_affine(reaction, reaction.resolve_grid(None))


def test_a_run_on_a_data_file_tests_on_its_last_samples_with_the_new_defaults(tmp_path):
    from sciml.cli import main
    from sciml.data import generate
    from sciml.data.dataset import load_arrays

    problem = sciml.load_problem("antiderivative")
    path = generate(problem, 30, seed=0, path=tmp_path / "d.h5", progress=False)
    run = train_deeponet(problem, data=path, n_train=20, n_test=6, steps=5, out_dir=tmp_path / "run", device="cpu",
                         progress=False)
    settings = json.loads((tmp_path / "run" / "run.json").read_text())
    assert settings["data"] == str(path.resolve()) and settings["lr"] == 3e-3
    # an affine problem gets a one-layer branch; every layer torch's initialisation (random biases)
    assert settings["linear_branch"] is True and settings["model_kwargs"]["branch"] == [100, 128]
    assert settings["model_kwargs"]["init"] == "default"
    last = load_arrays(path, indices=np.arange(24, 30), dtype=np.float64)  # train_operator's test split
    pred = run.solver.predict(last.x[:, 0], last.grid.points())["s"]  # 100 sensors: every node of u
    errors = np.linalg.norm(pred - last.y[:, 0], axis=1) / np.linalg.norm(last.y[:, 0], axis=1)
    np.testing.assert_allclose(run.test_errors, errors, rtol=1e-4)
    assert main(["train", "antiderivative", "--model", "deeponet", "--data", str(path), "--n-train", "20",
                 "--n-test", "6", "--steps", "2", "--out", str(tmp_path / "cli")]) == 0
    assert json.loads((tmp_path / "cli" / "run.json").read_text())["lr"] == 3e-3  # the DeepONet's CLI default
