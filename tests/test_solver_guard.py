"""A trained solver knows what it was trained on: it refuses another value of a fixed input, warns
when an input is outside the training data (and only then), carries the flag in its answer, and
imposes the Dirichlet data the problem knows exactly."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from sciml.answers import Answer
from sciml.data.profile import FEATURES, TrainingProfile, sample_features
from sciml.errors import FixedInputError, OutOfDistributionWarning, SciMLWarning
from sciml.fields import Grid
from sciml.models import build_model
from sciml.numerics.fd import solve_elliptic
from sciml.operators import OperatorTask, Solver
from sciml.problem import Dirichlet, Input, Problem, load_problem
from sciml.spaces import GRF

GRID = Grid(17, ndim=2)


def _solver(problem: Problem, n: int = 64, seed: int = 0, **kwargs) -> Solver:
    """An (untrained) FNO solver whose profile comes from ``n`` samples of the problem: the guard
    does not depend on what the network learned."""
    inputs, _ = problem.make_samples(n, GRID, seed=seed)
    torch.manual_seed(0)
    model = build_model("fno", in_channels=len(problem.input_names), out_channels=len(problem.outputs),
                        n_modes=[4, 4], width=8, n_layers=2)
    task = OperatorTask(model, GRID, problem.input_names, problem.outputs,
                        profile=TrainingProfile.fit(inputs, GRID))
    return Solver(task, problem, **kwargs)


def _scaled_source(inputs, grid, params):
    return {"u": solve_elliptic(1.0, inputs["f"] * inputs["s"], 0.0, grid)}


def _problem(variable: bool = False) -> Problem:
    return Problem(
        name="scaled_source",
        inputs=[Input("f", value=1.0, variable=variable), Input("s", GRF(alpha=2.0, tau=3.0))],
        outputs=["u"], grid=GRID, conditions=[Dirichlet(0.0)], reference=_scaled_source)


def _no_warnings(call):
    with warnings.catch_warnings():
        warnings.simplefilter("error", SciMLWarning)
        return call()


def test_a_fixed_input_given_another_value_is_refused():
    solver = _solver(_problem())
    s = "sin(pi*x)*cos(pi*y)"
    answer = _no_warnings(lambda: solver(s=s))             # the fixed value filled in
    assert isinstance(answer, Answer) and not answer.out_of_distribution
    _no_warnings(lambda: solver(s=s, f=1.0))                # the same value given: fine
    _no_warnings(lambda: solver(s=s, f="1 + 0*x"))          # the same value as a formula: fine
    with pytest.raises(FixedInputError, match=r"input 'f' was fixed .*f = 1\.0.*largest difference 0\.05"):
        solver(s=s, f=1.05)
    with pytest.raises(FixedInputError, match="variable=True"):
        solver.predict({"s": s, "f": "1 + x"})


def test_a_variable_fixed_input_is_allowed_but_flagged_as_an_extrapolation():
    solver = _solver(_problem(variable=True))
    s = solver.problem.sample_inputs(1, GRID, seed=99)["s"][0]  # an in-distribution s
    with pytest.warns(OutOfDistributionWarning, match=r"input 'f' is outside the training data: mean 2") as record:
        answer = solver(s=s, f=2.0)
    assert len(record) == 1
    assert answer.out_of_distribution and "input 'f'" in answer.warnings[0]


@pytest.fixture(scope="module")
def poisson_solver():
    return _solver(load_problem("poisson"), n=200)


def test_fresh_draws_from_the_training_distribution_do_not_warn(poisson_solver):
    problem = poisson_solver.problem
    fresh, _ = problem.make_samples(20, GRID, seed=123)  # other seed: not training samples
    _no_warnings(lambda: poisson_solver.predict(fresh))
    # the same inputs on a finer grid of the same box are still in distribution
    fine = Grid(33, ndim=2)
    fresh_fine = problem.sample_inputs(5, fine, seed=321)
    _no_warnings(lambda: poisson_solver.predict(fresh_fine, fine))
    # flatter or smoother than training is not an extrapolation: a zero source, a constant boundary
    _no_warnings(lambda: poisson_solver(g=0.5, f=0.0))
    with pytest.warns(OutOfDistributionWarning, match="input 'f'.*roughness"):  # rougher than training
        poisson_solver(g=0.5, f="20*sin(4*pi*x)*sin(4*pi*y)")


@pytest.mark.parametrize("name", ["g", "f"])
def test_an_input_ten_standard_deviations_off_warns_and_names_it(poisson_solver, name):
    problem = poisson_solver.problem
    inputs = problem.sample_inputs(1, GRID, seed=7)
    stats = poisson_solver.task.profile.inputs[name]
    shift = 10.0 * max(stats.std[FEATURES.index("mean")], stats.mean[FEATURES.index("std")])
    inputs[name] = inputs[name] + shift
    with pytest.warns(OutOfDistributionWarning) as record:
        answer = poisson_solver(**{k: v[0] for k, v in inputs.items()})
    assert answer.out_of_distribution
    assert len(record) == 1 and f"input {name!r} is outside the training data: mean" in str(record[0].message)
    assert "training" in str(record[0].message) and "range" in str(record[0].message)


def test_the_answer_meets_the_dirichlet_data_exactly_and_carries_its_inputs(poisson_solver):
    g = "sin(pi*x)*y + 0.5*cos(2*pi*y)*x"
    answer = _no_warnings(lambda: poisson_solver(g=g, f="5*sin(pi*x)*sin(2*pi*y)"))
    x, y = GRID.coord_arrays().values()
    boundary = GRID.boundary_mask()
    exact = np.sin(np.pi * x) * y + 0.5 * np.cos(2 * np.pi * y) * x
    np.testing.assert_array_equal(answer["u"].numpy()[boundary], exact[boundary])  # to rounding: equal
    assert set(answer.inputs) == {"g", "f"} and answer.inputs["g"].values.shape == GRID.shape
    free = _solver(load_problem("poisson"), n=20, impose_boundary=False)
    raw = free(g=g, f=0.0)["u"].numpy()[boundary]
    assert not np.allclose(raw, exact[boundary])  # the untrained network alone does not meet them


def test_the_profile_survives_the_checkpoint_and_reads_features_right():
    grid = Grid(9, ndim=2)
    x, y = grid.coord_arrays().values()
    values = np.stack([3.0 * x, 2.0 + 0 * x])
    features = sample_features(values, grid)
    assert features[0].tolist() == pytest.approx([1.5, np.std(3.0 * x), 0.0, 3.0, 3.0])
    assert features[1].tolist() == pytest.approx([2.0, 0.0, 2.0, 2.0, 0.0])
    solver = _solver(_problem())
    state = solver.task.state_for_checkpoint()
    task = OperatorTask(solver.task.model, GRID, ("f", "s"), ("u",))
    task.load_state_for_checkpoint(state)
    assert task.profile.to_json() == solver.task.profile.to_json()
    assert task.profile.inputs["f"].constant and not task.profile.inputs["s"].constant
