"""The `sciml` command as a user meets it."""

from __future__ import annotations

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

from sciml.cli import main


def test_problems_lists_inputs_outputs_params(capsys):
    assert main(["problems"]) == 0
    out = capsys.readouterr().out
    assert "darcy:" in out and "poisson:" in out
    assert "input  a:" in out and "input  g (boundary data):" in out and "output u" in out
    assert main(["problems", "--json"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["darcy"]["params"]["f"] == 1.0


def test_generate_darcy_matches_the_fno_benchmark_statistics(tmp_path):
    out = tmp_path / "d.h5"
    assert main(["generate", "darcy", "--n", "4", "--resolution", "29", "--out", str(out)]) == 0
    with h5py.File(out) as f:
        a, u = f["inputs/a"][:], f["outputs/u"][:]
        assert a.shape == u.shape == (4, 1, 29, 29) and f.attrs["complete"]
        assert json.loads(f.attrs["solve_grid"])["shape"] == [141, 141]
    assert set(np.unique(a)) == {3.0, 12.0}
    assert 0.2 < np.mean(a == 12) < 0.8
    assert u.min() >= 0 and 5e-3 < u.max() < 3e-2


def test_user_errors_are_one_line_with_exit_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "sciml.cli", "generate", "nosuch", "--n", "2", "--out", str(tmp_path / "x.h5")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "unknown problem 'nosuch'" in result.stderr and "Traceback" not in result.stderr


def test_the_grid_workflow_refuses_point_operators_and_says_how(tmp_path):
    from sciml.errors import ConfigError
    from sciml.workflows import train_operator

    with pytest.raises(ConfigError, match="train_deeponet"):
        train_operator("antiderivative", model="deeponet", out_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()  # refused before any data were made


def test_train_solve_plot_resume_round_trip(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "poisson", "--resolution", "17", "--n-train", "32", "--n-test", "8", "--epochs", "2",
            "--batch-size", "8", "--model-arg", "width=8", "--model-arg", "n_modes=[4,4]",
            "--model-arg", "n_layers=2", "--out", str(run)]
    assert main(args) == 0
    assert "test relative L2 mean" in capsys.readouterr().out
    png, vtu = tmp_path / "solve.png", tmp_path / "solve.vtu"
    assert main(["solve", str(run), "--set", "g=sin(pi*x)*y", "--set", "f=0", "--plot", str(png), "--vtu", str(vtu)]) == 0
    out = capsys.readouterr().out
    assert "relative L2 error vs reference" in out and png.stat().st_size > 10_000
    import pyvista as pv

    assert {"u_prediction", "u_reference", "u_error"} <= set(pv.read(vtu).point_data.keys())
    assert main(["plot", str(run / "data_17.h5"), "--out", str(tmp_path / "sample.png")]) == 0
    assert main(["plot", str(run), "--out", str(tmp_path / "curve.png")]) == 0
    assert (tmp_path / "sample.png").is_file() and (tmp_path / "curve.png").is_file()
    assert main(["resume", str(run)]) == 0
    # Bad formulas and unknown inputs are user errors: one line, exit status 2.
    assert main(["solve", str(run), "--set", "g=import os"]) == 2
    assert main(["solve", str(run), "--set", "g=0", "--set", "f=0", "--set", "k=1"]) == 2
    assert "unknown input" in capsys.readouterr().err


def test_bench_lists_the_benchmarks_and_refuses_unknown_names(capsys):
    assert main(["bench"]) == 0
    listed = capsys.readouterr().out
    assert "deeponet_vs_deepxde: " in listed and "pinn_vs_deepxde: " in listed and "_common" not in listed
    assert main(["bench", "nosuch"]) == 2
    assert "unknown benchmark 'nosuch'" in capsys.readouterr().err
