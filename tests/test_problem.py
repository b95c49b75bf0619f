"""Problem definition, problem files, input preparation and formulas."""

from __future__ import annotations

import numpy as np
import pytest

import sciml
from sciml.errors import ConfigError, NonFiniteError, ProblemError, ShapeError, UnknownNameError
from sciml.fields import Field, Grid
from sciml.formula import compile_formula
from sciml.problem import Input, Problem, list_problems, load_problem


class _Ramp:
    """A tiny random space for these tests: random slopes a * x."""

    def sample(self, n, grid, rng):
        slopes = rng.normal(size=n)
        return slopes.reshape(-1, *([1] * grid.ndim)) * grid.coord_arrays()["x"][None]

    def to_dict(self):
        return {"kind": "ramp"}


def _cumsum_reference(inputs, grid, params):
    return {"u": np.cumsum(inputs["a"], axis=-1) * params["scale"]}


def _toy(**kw) -> Problem:
    base = dict(
        name="toy",
        inputs=[Input("a", _Ramp()), Input("c", value=2.0)],
        outputs=["u"],
        grid=Grid(9, ndim=2),
        reference=_cumsum_reference,
        params={"scale": 0.5},
    )
    base.update(kw)
    return Problem(**base)


def test_builtin_problems_are_listed_and_load():
    names = list_problems()
    assert {"darcy", "poisson"} <= set(names)
    darcy = load_problem("darcy")
    assert darcy is sciml.load_problem("darcy")  # cached
    assert darcy.input_names == ("a",) and darcy.outputs == ("u",)
    assert darcy.solve_stride == 5 and darcy.solve_grid(Grid(85, ndim=2)).shape == (421, 421)


def test_user_problem_file_loads_like_a_builtin(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(
        "from sciml.problem import Problem, Input\n"
        "problem = Problem(name='mine', inputs=[Input('k', value=1.0)], outputs=['u'])\n"
    )
    assert load_problem(path).name == "mine"
    assert load_problem(str(path)).name == "mine"


def test_unknown_and_bad_problem_files(tmp_path):
    with pytest.raises(UnknownNameError, match="darcy"):
        load_problem("no_such_problem")
    with pytest.raises(ProblemError, match="no such problem file"):
        load_problem(tmp_path / "missing.py")
    bad = tmp_path / "bad.py"
    bad.write_text("problem = 3\n")
    with pytest.raises(ProblemError, match="must define `problem`"):
        load_problem(bad)


def test_problem_definition_is_checked():
    with pytest.raises(ProblemError, match="unique"):
        _toy(outputs=["a"])
    with pytest.raises(ProblemError, match="at least one output"):
        _toy(outputs=[])
    with pytest.raises(ConfigError, match="exactly one"):
        Input("a")
    with pytest.raises(ConfigError, match="identifier"):
        Input("not a name", value=1.0)
    with pytest.raises(UnknownNameError):
        Input("a", value=1.0, on="edge")


def test_prepare_inputs_accepts_arrays_numbers_callables_formulas_and_fields():
    p = _toy()
    g = Grid(9, ndim=2)
    x, y = g.coord_arrays()["x"], g.coord_arrays()["y"]
    expected = np.sin(np.pi * x) * y
    for value in (expected, "sin(pi*x)*y", lambda x, y: np.sin(np.pi * x) * y, Field(expected, g, "a")):
        out = p.prepare_inputs({"a": value}, g)
        assert out["a"].shape == (1, 9, 9)
        np.testing.assert_allclose(out["a"][0], expected, atol=1e-12)
        np.testing.assert_allclose(out["c"], 2.0)  # fixed input filled in
    fine = Grid(17, ndim=2)
    xf, yf = fine.coord_arrays()["x"], fine.coord_arrays()["y"]
    resampled = p.prepare_inputs({"a": Field(xf + 2 * yf, fine, "a")}, g)["a"][0]
    np.testing.assert_allclose(resampled, x + 2 * y, atol=1e-12)  # exact subgrid: striding
    batch = p.prepare_inputs({"a": np.zeros((3, 9, 9)), "c": 1.0}, g)
    assert batch["a"].shape == batch["c"].shape == (3, 9, 9)


def test_prepare_inputs_rejects_bad_input():
    p = _toy()
    g = Grid(9, ndim=2)
    with pytest.raises(ShapeError, match=r"expected shape"):
        p.prepare_inputs({"a": np.zeros((8, 8))}, g)
    with pytest.raises(NonFiniteError, match="NaN"):
        p.prepare_inputs({"a": np.full((9, 9), np.nan)}, g)
    with pytest.raises(UnknownNameError, match="'b'"):
        p.prepare_inputs({"b": 1.0}, g)
    with pytest.raises(ProblemError, match=r"missing input\(s\) \['a'\]"):
        p.prepare_inputs({}, g)
    with pytest.raises(ShapeError, match="batch"):
        p.prepare_inputs({"a": np.zeros((2, 9, 9)), "c": np.zeros((3, 9, 9))}, g)


def test_sampling_is_seeded_and_solve_returns_fields():
    p = _toy()
    g = Grid(9, ndim=2)
    a1, a2, a3 = (p.sample_inputs(4, g, s)["a"] for s in (0, 0, 1))
    np.testing.assert_array_equal(a1, a2)
    assert not np.allclose(a1, a3)
    fields = p.solve(g, a="x")
    assert isinstance(fields["u"], Field) and fields["u"].values.shape == (9, 9)
    np.testing.assert_allclose(fields["u"].values, 0.5 * np.cumsum(g.coord_arrays()["x"], axis=-1))


def test_solve_stride_subsamples_fine_solutions():
    p = _toy(solve_stride=2)
    g = Grid(5, ndim=2)
    inputs, outputs = p.make_samples(3, g, seed=0)
    assert inputs["a"].shape == outputs["u"].shape == (3, 5, 5)
    fine_inputs = p.sample_inputs(3, Grid(9, ndim=2), 0)
    np.testing.assert_allclose(inputs["a"], fine_inputs["a"][:, ::2, ::2])


def test_formula_is_safe_and_clear():
    f = compile_formula("sin(pi*x)*y + x**2 - (x > 0.5)")
    x = np.array([0.25, 0.75])
    np.testing.assert_allclose(f(x=x, y=2.0), np.sin(np.pi * x) * 2 + x**2 - (x > 0.5))
    with pytest.raises(ConfigError, match="failed to evaluate"):
        compile_formula("9**9**9")(x=1.0)  # floats overflow at once instead of hanging
    for evil in ("__import__('os').system('true')", "x.__class__", "[x for x in y]", "open('f')", "lambda: 1"):
        with pytest.raises(ConfigError):
            compile_formula(evil)
    with pytest.raises(UnknownNameError, match="'q'"):
        compile_formula("q*x")
    with pytest.raises(ConfigError, match="syntax"):
        compile_formula("sin(")
    with pytest.raises(ConfigError, match="uses"):
        compile_formula("x*z")(x=1.0, y=2.0)


def test_problem_without_inputs_solves_one_instance():
    problem = load_problem("burgers1d_pinn")  # no random inputs: the reference is one field
    fields = problem.solve()
    assert set(fields) == {"u"} and fields["u"].values.shape == problem.grid.shape
    np.testing.assert_allclose(fields["u"].values[:, 0], -np.sin(np.pi * problem.grid.axes[0]), atol=1e-12)
