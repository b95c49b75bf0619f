"""PINNTask, samplers and inverse PINNs (sciml.pinn)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from sciml import diff
from sciml.errors import ConfigError, NonFiniteError, ProblemError, SciMLWarning, ShapeError
from sciml.geometry import Domain
from sciml.models.mlp import MLP
from sciml.optim import MConFIG
from sciml.pinn import (
    RAD,
    RAR,
    ActiveTermsCallback,
    PINNTask,
    PrecisionSwitch,
    Sampler,
    Unknown,
    UnknownField,
    noisy_observations,
    pinn_phases,
    sample_boundary,
)
from sciml.problem import Dirichlet, Initial, Neumann, Periodic, Problem, load_problem
from sciml.train import Trainer

NU = 0.01 / math.pi


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # these nets are tiny: threads only add overhead
    yield
    torch.set_num_threads(threads)


# -- exact solutions as modules -------------------------------------------------------------------
class ColeHopf(nn.Module):
    """The exact Burgers solution in torch (float64, differentiable): Gauss-Hermite Cole-Hopf."""

    def __init__(self, n_quad: int = 100) -> None:
        super().__init__()
        from scipy.special import roots_hermite

        z, w = roots_hermite(n_quad)
        keep = w > 0
        self.register_buffer("z", torch.as_tensor(z[keep]))
        self.register_buffer("logw", torch.as_tensor(np.log(w[keep])))

    def forward(self, xt):
        x, t = xt[:, :1], xt[:, 1:].clamp_min(1e-12)
        spread = torch.sqrt(4 * NU * t)
        potential = (torch.cos(math.pi * (x - spread * self.z)) - 1) / math.pi
        p = torch.softmax(self.logw - potential / (2 * NU), dim=1)
        u = 2 * torch.sqrt(NU / t) * (p * self.z).sum(1, keepdim=True)
        return torch.where(xt[:, 1:] > 0, u, -torch.sin(math.pi * x))  # the data at t = 0


class Formula(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)[:, None]


def _poisson_1d(k: float = 1.0) -> Problem:
    """-k u'' = k pi^2 sin(pi x) on [0, 1], u(0) = u(1) = 0: u = sin(pi x) when the param k is the true k."""

    def equation(u, x, inputs):
        return -inputs["k"] * diff.partial(u, x, 0, order=2) - k * math.pi**2 * torch.sin(math.pi * x[:, 0])

    return Problem(name="poisson1d", inputs=[], outputs=["u"], domain=Domain.interval(0.0, 1.0),
                   equation=equation, conditions=[Dirichlet(0.0)], params={"k": k})


# -- residuals of exact solutions -----------------------------------------------------------------
def test_exact_burgers_solution_has_zero_residual():
    problem = load_problem("burgers1d_pinn")
    task = PINNTask(problem, ColeHopf(), n_interior=64, dtype=torch.float64, reference=None)
    x = torch.as_tensor(Domain.rectangle([-1, 0.05], [1, 0.99]).sample_interior(200, seed=1))
    x.requires_grad_(True)
    r = task.residuals(x)["pde"].detach()
    assert r.abs().max() < 1e-7
    terms = {k: float(v.detach()) for k, v in task.loss_terms().items()}
    assert terms["bc"] < 1e-20 and terms["ic"] < 1e-20


def test_exact_poisson_and_darcy_solutions_have_zero_residual():
    sin = torch.sin
    poisson = load_problem("poisson")
    exact = Formula(lambda x: sin(math.pi * x[:, 0]) * sin(math.pi * x[:, 1]))
    task = PINNTask(poisson, exact, dtype=torch.float64, reference=None, n_interior=200,
                    inputs={"g": 0.0, "f": "2*pi**2*sin(pi*x)*sin(pi*y)"})
    assert {k: float(v.detach()) for k, v in task.loss_terms().items()}["pde"] < 1e-20
    darcy = load_problem("darcy")
    exact = Formula(lambda x: x[:, 0] * (1 - x[:, 0]) / 24.0)  # -div(12 grad u) = 1
    task = PINNTask(darcy, exact, dtype=torch.float64, reference=None, n_interior=200, inputs={"a": 12.0})
    assert float(task.loss_terms()["pde"].detach()) < 1e-20
    assert task.term_names == ["pde", "bc"]


# -- terms, constraints, points -------------------------------------------------------------------
def test_burgers_terms_are_separate_and_reference_metrics():
    problem = load_problem("burgers1d_pinn")
    task = PINNTask(problem, ColeHopf(), n_interior=64, n_boundary=16, n_initial=16, dtype=torch.float64)
    assert task.term_names == ["pde", "bc", "ic"]
    sets = task.point_sets()
    assert np.allclose(np.abs(sets["bc"][:, 0]), 1.0) and (sets["bc"][:, 1] > 0).all()
    assert np.allclose(sets["ic"][:, 1], 0.0)
    metrics = task.metrics()
    assert metrics["rel_l2"] < 1e-12 and set(metrics) >= {"pde", "bc", "ic", "loss", "rel_l2", "mse"}


def test_hard_constraints_hold_exactly():
    problem = load_problem("burgers1d_pinn")
    torch.manual_seed(0)
    task = PINNTask(problem, MLP(2, 1, hidden=[16], activation="tanh"), hard=True, n_interior=32,
                    reference=None)
    assert task.term_names == ["pde"]
    x = np.array([[-1.0, 0.3], [1.0, 0.7], [0.3, 0.0], [-0.6, 0.0]])
    expected = np.array([0.0, 0.0, -np.sin(0.3 * np.pi), np.sin(0.6 * np.pi)])
    np.testing.assert_allclose(task.predict(x)[:, 0], expected, atol=1e-6)
    # periodic embedding: advection u_t + u_x = 0 on [0, 2 pi) x [0, 1]
    advection = Problem(name="advection", inputs=[], outputs=["u"],
                        domain=Domain.rectangle([0, 0], [2 * math.pi, 1]),
                        equation=lambda u, x, inputs: diff.partial(u, x, 1) + diff.partial(u, x, 0),
                        conditions=[Periodic(axis=0), Initial("sin(x)", time_axis=1)])
    task = PINNTask(advection, MLP(3, 1, hidden=[16], activation="tanh"), hard=["periodic"], n_interior=32)
    assert task.term_names == ["pde", "ic"]
    t = np.linspace(0, 1, 7)
    ends = task.predict(np.stack([np.r_[np.zeros(7), np.full(7, 2 * math.pi)], np.r_[t, t]], 1))[:, 0]
    np.testing.assert_allclose(ends[:7], ends[7:], atol=1e-6)
    with pytest.raises(ShapeError, match="MLP input"):
        PINNTask(advection, MLP(2, 1, hidden=[8]), hard=["periodic"], n_interior=8)
    # a formula is evaluated with torch, so it can be a hard lift; a numpy callable cannot
    task = PINNTask(advection, MLP(2, 1, hidden=[8]), hard=["initial"], n_interior=8)
    x0 = np.stack([np.linspace(0, 2 * math.pi, 9), np.zeros(9)], 1)
    np.testing.assert_allclose(task.predict(x0)[:, 0], np.sin(x0[:, 0]), atol=1e-6)
    numpy_initial = Problem(name="advection_np", inputs=[], outputs=["u"], domain=advection.domain,
                            equation=advection.equation,
                            conditions=[Periodic(axis=0), Initial(lambda x, t: np.sin(x), time_axis=1)])
    with pytest.raises(ConfigError, match="torch tensors"):
        PINNTask(numpy_initial, MLP(2, 1, hidden=[8]), hard=["initial"], n_interior=8)


@pytest.mark.parametrize("hard", [True, ["dirichlet"]])
def test_a_formula_hard_dirichlet_condition_trains_and_holds_on_the_boundary(hard):
    """Dirichlet("sin(pi*x)*y") with hard=...: the formula is compiled to torch, differentiated by the
    equation, and the trained network meets it on the boundary."""
    problem = Problem(name="laplace_formula", inputs=[], outputs=["u"], domain=Domain.rectangle([0, 0], [1, 1]),
                      equation=lambda u, x, inputs: -diff.laplacian(u, x),
                      conditions=[Dirichlet("sin(pi*x)*y")])
    torch.manual_seed(0)
    task = PINNTask(problem, MLP(2, 1, hidden=[16, 16], activation="tanh").double(), hard=hard, n_interior=64,
                    dtype=torch.float64)
    assert task.term_names == ["pde"]
    before = float(task.loss_terms()["pde"].detach())
    Trainer(task, steps=30, lr=1e-2, progress=False).fit()
    assert float(task.loss_terms()["pde"].detach()) < before  # the formula's Laplacian reached the loss
    x = sample_boundary(problem.domain, 200, "uniform", 0)
    exact = np.sin(np.pi * x[:, 0]) * x[:, 1]
    np.testing.assert_allclose(task.predict(x)[:, 0], exact, rtol=0, atol=1e-6)


def test_soft_periodic_and_neumann_terms():
    problem = Problem(name="mixed", inputs=[], outputs=["u"], domain=Domain.rectangle([0, 0], [1, 1]),
                      equation=lambda u, x, inputs: diff.laplacian(u, x),
                      conditions=[Periodic(axis=0), Neumann(1.0, where=lambda x: np.isclose(x[:, 1], 1.0)),
                                  Dirichlet(0.0, where=lambda x: np.isclose(x[:, 1], 0.0))])
    task = PINNTask(problem, Formula(lambda x: x[:, 1]), n_interior=16, n_boundary=8, dtype=torch.float64)
    terms = {k: float(v.detach()) for k, v in task.loss_terms().items()}
    assert terms == {"pde": 0.0, "periodic": 0.0, "neumann": pytest.approx(0.0, abs=1e-24), "bc": 0.0}
    task = PINNTask(problem, Formula(lambda x: x[:, 0] + 2 * x[:, 1]), n_interior=16, n_boundary=8,
                    dtype=torch.float64)
    terms = {k: float(v.detach()) for k, v in task.loss_terms().items()}
    assert terms["periodic"] == pytest.approx(1.0) and terms["neumann"] == pytest.approx(1.0)


def test_bad_point_sets_are_rejected():
    problem = load_problem("burgers1d_pinn")
    task = PINNTask(problem, MLP(2, 1, hidden=[8]), n_interior=16, n_boundary=8, n_initial=8, reference=None)
    with pytest.raises(ShapeError):
        task.set_points("interior", np.zeros((5, 3)))
    with pytest.raises(NonFiniteError):
        task.set_points("interior", np.array([[0.0, np.nan]]))
    with pytest.raises(ConfigError, match="inside the domain"):
        task.set_points("interior", np.array([[0.0, 0.5], [2.0, 0.5]]))
    with pytest.raises(ConfigError, match="on the boundary"):
        task.set_points("bc", np.array([[0.0, 0.5]]))
    with pytest.raises(ConfigError, match="first time"):
        task.set_points("ic", np.array([[0.0, 0.5]]))
    with pytest.raises(ConfigError, match="unknown point set"):
        task.set_points("nope", np.zeros((2, 2)))
    with pytest.raises(ConfigError):
        PINNTask(problem, MLP(2, 1, hidden=[8]), points={"interior": np.full((4, 2), 5.0)})
    good = np.array([[0.1, 0.2], [0.5, 0.9]])
    task.set_points("interior", good)
    np.testing.assert_allclose(task.point_sets()["interior"], good, atol=1e-7)


def test_bad_configuration_is_rejected():
    problem = load_problem("burgers1d_pinn")
    net = MLP(2, 1, hidden=[8])
    with pytest.raises(ConfigError, match="hard"):
        PINNTask(problem, net, hard=["periodic"])
    with pytest.raises(ConfigError, match="n_interior"):
        PINNTask(problem, net, n_interior=0)
    with pytest.raises(ProblemError, match="random input"):
        PINNTask(load_problem("poisson"), net)
    with pytest.raises(ProblemError, match="equation"):
        PINNTask(Problem(name="none", inputs=[], outputs=["u"], domain=Domain.interval(0, 1)), net)
    with pytest.raises(ConfigError, match="not inputs"):
        PINNTask(problem, net, inputs={"q": 1.0})
    with pytest.raises(ShapeError):
        PINNTask(problem, MLP(2, 2, hidden=[8]))


def test_fixed_resampled_and_reproducible_points():
    problem = load_problem("burgers1d_pinn")
    fixed = PINNTask(problem, MLP(2, 1, hidden=[8]), n_interior=32, seed=3, reference=None)
    before = fixed.point_sets()
    fixed.on_step_end(1)
    fixed.sample()
    assert all(np.array_equal(before[k], v) for k, v in fixed.point_sets().items())
    fresh = PINNTask(problem, MLP(2, 1, hidden=[8]), n_interior=32, seed=3, resample_every=1,
                     resample_until=2, sampler="sobol", reference=None)
    first = fresh.point_sets()["interior"]
    fresh.on_step_end(1)
    fresh.sample()
    second = fresh.point_sets()["interior"]
    assert not np.array_equal(first, second)
    state = fresh.state_for_checkpoint()
    fresh.on_step_end(2)
    fresh.sample()  # resample_until reached: the points stay
    assert np.array_equal(second, fresh.point_sets()["interior"])
    twin = PINNTask(problem, MLP(2, 1, hidden=[8]), n_interior=32, seed=3, resample_every=1, sampler="sobol",
                    reference=None)
    assert np.array_equal(first, twin.point_sets()["interior"])
    # checkpoint state restores points, RNG and step: the next draw is the same
    twin.load_state_for_checkpoint(state)
    assert np.array_equal(twin.point_sets()["interior"], second)
    twin.on_step_end(2)
    twin.sample()
    fresh.resample_until = None
    fresh.load_state_for_checkpoint(state)
    fresh.on_step_end(2)
    fresh.sample()
    assert np.array_equal(twin.point_sets()["interior"], fresh.point_sets()["interior"])


def test_samplers():
    domain = Domain.rectangle([0, 0], [1, 1])
    rng = np.random.default_rng(0)
    for method in ("uniform", "sobol", "halton", "lhs"):
        x = Sampler(method).sample(domain, 100, rng)
        assert x.shape == (100, 2) and domain.inside(x).all()

    def peak(x):  # residual concentrated near (0.8, 0.8)
        return np.exp(-200 * ((x - 0.8) ** 2).sum(1))

    points = Sampler().sample(domain, 200, rng)
    rar = RAR(every=10, n_candidates=2000, n_add=5)
    assert rar.adapt(5, points, peak, domain, rng) is None  # not due
    grown = rar.adapt(10, points, peak, domain, rng)
    assert grown.shape == (205, 2) and np.array_equal(grown[:200], points)
    assert np.all(np.linalg.norm(grown[200:] - 0.8, axis=1) < 0.05)
    rad = RAD(every=1, n_candidates=5000, k=2.0, c=0.0)
    moved = rad.adapt(1, points, peak, domain, rng)
    near = lambda p: np.mean(np.linalg.norm(p - 0.8, axis=1) < 0.15)  # noqa: E731
    assert moved.shape == points.shape and near(moved) > 0.8 > 0.1 > near(points)
    with pytest.raises(ConfigError):
        RAD(k=0, c=0)
    with pytest.raises(ConfigError, match="where"):
        sample_boundary(domain, 10, where=lambda x: np.zeros(len(x), bool))
    # boxes are sampled directly: faces in proportion to their area, lateral faces only in space-time
    box = Domain.box([0, 0, 0], [1, 2, 3])
    x = sample_boundary(box, 6000, "sobol", 0)
    shares = [np.mean(np.isclose(x[:, a], box.bbox[s, a])) for a in range(3) for s in (0, 1)]
    assert box.on_boundary(x).all()
    np.testing.assert_allclose(shares, np.array([6, 6, 3, 3, 2, 2]) / 22, atol=0.01)
    lateral = sample_boundary(box, 500, "halton", 0, time_axis=2)
    on_side = np.isclose(lateral[:, 0], 0) | np.isclose(lateral[:, 0], 1) | np.isclose(lateral[:, 1], 0) | \
        np.isclose(lateral[:, 1], 2)
    assert on_side.all() and (lateral[:, 2] > 0).all() and (lateral[:, 2] < 3).all()
    ends = sample_boundary(Domain.interval(0, 1), 200, "uniform", 0)
    assert set(np.unique(ends)) == {0.0, 1.0}


# -- Taylor-mode (jet) derivatives ------------------------------------------------------------------
def _advection_burgers() -> Problem:
    sin = lambda x, t: torch.sin(x) if isinstance(x, torch.Tensor) else np.sin(x)  # noqa: E731
    return Problem(name="viscous", inputs=[], outputs=["u"],
                   domain=Domain.rectangle([0, 0], [2 * math.pi, 1]),
                   equation=lambda u, x, inputs: (diff.partial(u, x, 1) + u[:, 0] * diff.partial(u, x, 0)
                                                  - 0.1 * diff.partial(u, x, (0, 0))),
                   conditions=[Periodic(axis=0), Initial(sin, time_axis=1)])


@pytest.mark.parametrize("hard", [(), ("periodic",), True])
def test_jet_matches_nested_autograd(hard):
    torch.manual_seed(0)
    net = MLP(3 if hard else 2, 1, hidden=[16, 16], activation="tanh")
    auto = PINNTask(_advection_burgers(), net, hard=hard, n_interior=64, n_boundary=8, n_initial=8)
    jet = PINNTask(_advection_burgers(), net, hard=hard, n_interior=64, n_boundary=8, n_initial=8,
                   derivatives="jet")
    # u_t, u_x and u_xx in the coordinates; with the cos/sin embedding every second derivative of
    # the embedding coordinates enters through the chain rule
    if hard:
        assert jet._jet.first == [0, 1, 2] and (0, 1) in jet._jet.second
    else:
        assert jet._jet.first == [0, 1] and jet._jet.second == [(0, 0)]
    ta, tj = auto.loss_terms(), jet.loss_terms()
    for name in ta:
        assert float(tj[name].detach()) == pytest.approx(float(ta[name].detach()), rel=1e-5, abs=1e-9)
    params = list(net.parameters())
    ga = torch.autograd.grad(sum(ta.values()), params)
    gj = torch.autograd.grad(sum(tj.values()), params)
    for a, b in zip(ga, gj):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def test_jet_laplacian_and_refusals():
    torch.manual_seed(0)
    net = MLP(2, 1, hidden=[16, 16], activation="sin")
    task = PINNTask(load_problem("poisson"), net, inputs={"g": 0.0, "f": 1.0}, n_interior=64,
                    derivatives="jet", reference=None)
    assert task._jet.first == [0, 1] and task._jet.second == [(0, 0), (1, 1)]  # no mixed derivative
    auto = PINNTask(load_problem("poisson"), net, inputs={"g": 0.0, "f": 1.0}, n_interior=64, reference=None)
    expected = float(auto.loss_terms()["pde"].detach())
    assert float(task.loss_terms()["pde"].detach()) == pytest.approx(expected, rel=1e-5)
    third = Problem(name="third", inputs=[], outputs=["u"], domain=Domain.rectangle([0, 0], [1, 1]),
                    equation=lambda u, x, inputs: diff.partial(u, x, 0, order=3))
    with pytest.raises(ConfigError, match="third derivatives"):
        PINNTask(third, MLP(2, 1, hidden=[8], activation="tanh"), n_interior=16, derivatives="jet")
    # A model the jet cannot take falls back to autograd with one warning (issue 18), never an error.
    with pytest.warns(SciMLWarning, match="tanh and sin"):
        PINNTask(third, MLP(2, 1, hidden=[8], activation="gelu"), n_interior=16, derivatives="jet")
    with pytest.raises(ConfigError, match="derivatives='jet'"):
        PINNTask(third, MLP(2, 1, hidden=[8]), n_interior=16, compile=True)


@pytest.mark.slow
def test_compiled_jet_trains_like_autograd():
    problem = load_problem("burgers1d_pinn")
    losses = []
    for kwargs in ({}, {"derivatives": "jet", "compile": True}):
        torch.manual_seed(0)
        task = PINNTask(problem, MLP(2, 1, hidden=[20] * 3, activation="tanh"), n_interior=512,
                        reference=None, **kwargs)
        Trainer(task, steps=100, progress=False).fit()
        losses.append(sum(float(v.detach()) for v in task.loss_terms().values()))
    assert losses[1] == pytest.approx(losses[0], rel=1e-3)


# -- training ---------------------------------------------------------------------------------------
def test_adam_then_lbfgs_learns_and_lbfgs_really_iterates():
    torch.manual_seed(0)
    task = PINNTask(_poisson_1d(), MLP(1, 1, hidden=[16, 16], activation="tanh"), n_interior=64, n_boundary=2,
                    reference=(np.linspace(0, 1, 101)[:, None], np.sin(np.pi * np.linspace(0, 1, 101))))
    start = task.relative_error()["rel_l2"]
    trainer = Trainer(task, phases=pinn_phases(300, 4, lr=1e-2, max_iter=25), progress=False)
    result = trainer.fit()
    assert trainer.optimizer.state[trainer.params[0]]["n_iter"] == 4 * 25  # no early stop
    assert result.metrics["val/rel_l2"] < 2e-3 < start


def test_precision_switch_runs_lbfgs_in_float64_and_resumes(tmp_path):
    def make():
        torch.manual_seed(0)
        return PINNTask(_poisson_1d(), MLP(1, 1, hidden=[8], activation="tanh"), n_interior=32, n_boundary=2,
                        reference=None)

    def run(task, out=None, resume=False):
        trainer = Trainer(task, phases=pinn_phases(20, 3, max_iter=5), callbacks=[PrecisionSwitch(20)],
                          progress=False, out_dir=out, checkpoint_every=22 if out else None, resume=resume)
        trainer.fit()
        return trainer

    task = make()
    trainer = run(task)
    assert task.dtype == torch.float64 and all(p.dtype == torch.float64 for p in task.parameters())
    assert trainer.optimizer.state[trainer.params[0]]["n_iter"] == 3 * 5
    # a float64 state turns a fresh float32 task to float64 instead of rounding the weights
    fresh = make()
    fresh.load_state_dict(task.state_dict())
    assert fresh.dtype == torch.float64
    assert all(torch.equal(a, b) for a, b in zip(fresh.parameters(), task.parameters()))
    # resuming from the checkpoint taken in the float64 phase repeats the uninterrupted run
    partial = tmp_path / "b"
    run(make(), partial)
    for f in sorted(partial.glob("*.pt"))[1:]:
        f.unlink()  # keep the step-22 checkpoint only
    resumed = make()
    run(resumed, partial, resume=True)
    assert all(torch.equal(a, b) for a, b in zip(resumed.parameters(), task.parameters()))
    with pytest.raises(ConfigError, match="end of a phase"):
        Trainer(make(), phases=pinn_phases(20, 2), callbacks=[PrecisionSwitch(7)], progress=False).fit()


def test_a_trained_pinn_is_restored_from_its_run_and_solver_load_says_how(tmp_path):
    import sciml
    from sciml.errors import CheckpointError
    from sciml.train import restore

    def make():
        torch.manual_seed(0)
        return PINNTask(_poisson_1d(), MLP(1, 1, hidden=[8], activation="tanh"), n_interior=32, n_boundary=2,
                        reference=None)

    task = make()
    Trainer(task, steps=40, lr=1e-2, progress=False, out_dir=tmp_path / "run").fit()
    x = np.linspace(0, 1, 7)[:, None]
    fresh = make()
    assert not np.allclose(fresh.predict(x), task.predict(x))
    assert restore(fresh, tmp_path / "run").name == "ckpt_00000040.pt"
    np.testing.assert_array_equal(fresh.predict(x), task.predict(x))
    np.testing.assert_array_equal(fresh.point_sets()["interior"], task.point_sets()["interior"])
    with pytest.raises(CheckpointError, match="PINNTask run.*restore"):
        sciml.Solver.load(tmp_path / "run")
    with pytest.raises(CheckpointError, match="does not match"):
        restore(PINNTask(_poisson_1d(), MLP(1, 1, hidden=[9], activation="tanh"), n_interior=32, n_boundary=2,
                         reference=None), tmp_path / "run")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        restore(make(), tmp_path)


def test_burgers_loss_decreases_with_sampling_options():
    problem = load_problem("burgers1d_pinn")
    for kwargs in ({"sampler": "halton", "resample_every": 1}, {"sampler": RAD(every=50, n_candidates=2000)},
                   {"hard": True}):
        torch.manual_seed(0)
        task = PINNTask(problem, MLP(2, 1, hidden=[16, 16], activation="tanh"), n_interior=256, n_boundary=32,
                        n_initial=32, reference=None, **kwargs)
        before = sum(float(v.detach()) for v in task.loss_terms().values())
        Trainer(task, steps=150, lr=5e-3, progress=False).fit()
        after = sum(float(v.detach()) for v in task.loss_terms().values())
        assert after < 0.5 * before, kwargs


def test_mconfig_with_active_terms_computes_one_group_per_step():
    problem = load_problem("burgers1d_pinn")
    torch.manual_seed(0)
    task = PINNTask(problem, MLP(2, 1, hidden=[16], activation="tanh"), n_interior=128, n_boundary=16,
                    n_initial=16, reference=None)
    calls = []
    original = task.pde_terms
    task.pde_terms = lambda x: calls.append(1) or original(x)
    Trainer(task, steps=12, optimizer="sgd", lr=1e-3, combiner=MConFIG(), callbacks=[ActiveTermsCallback()],
            progress=False, eval_every=100).fit()
    assert len(calls) == 4 + 1  # every third step, plus the final evaluation


# -- inverse ----------------------------------------------------------------------------------------
def test_inverse_identifies_a_coefficient_from_noisy_data():
    x = np.linspace(0, 1, 41)[:, None]
    obs = noisy_observations(x, np.sin(np.pi * x[:, 0]), noise=0.01, seed=0)
    torch.manual_seed(0)
    task = PINNTask(_poisson_1d(k=2.0), MLP(1, 1, hidden=[16, 16], activation="tanh"), n_interior=64,
                    n_boundary=2, unknowns={"k": Unknown(1.0, positive=True)}, observations=obs,
                    reference=None)
    assert task.term_names == ["pde", "bc", "data"]
    Trainer(task, phases=pinn_phases(400, 5, lr=1e-2, max_iter=40), progress=False).fit()
    assert task.unknown_values()["k"] == pytest.approx(2.0, rel=0.02)
    assert task.metrics()["param_k"] == pytest.approx(task.unknown_values()["k"])


def test_inverse_identifies_a_coefficient_field():
    # -a(x) u'' = a pi^2 sin(pi x) with a = 1 + x and u = sin(pi x) observed: a = -f / u''
    def equation(u, x, inputs):
        source = (1 + x[:, 0]) * math.pi**2 * torch.sin(math.pi * x[:, 0])
        return -inputs["a"] * diff.partial(u, x, 0, order=2) - source

    problem = Problem(name="field", inputs=[], outputs=["u"], domain=Domain.interval(0.0, 1.0),
                      equation=equation, conditions=[Dirichlet(0.0)])
    x = np.linspace(0, 1, 41)[:, None]
    torch.manual_seed(0)
    field = UnknownField(MLP(1, 1, hidden=[16], activation="tanh"), positive=True)
    task = PINNTask(problem, MLP(1, 1, hidden=[16, 16], activation="tanh"), n_interior=64, n_boundary=2,
                    unknowns={"a": field}, observations=(x, np.sin(np.pi * x[:, 0])), reference=None)
    Trainer(task, phases=pinn_phases(400, 10, lr=1e-2, max_iter=40), callbacks=[PrecisionSwitch(400)],
            progress=False).fit()
    probe = torch.linspace(0.2, 0.8, 7, dtype=torch.float64)[:, None]
    with torch.no_grad():
        a = field(probe).numpy()
    np.testing.assert_allclose(a, 1 + probe[:, 0].numpy(), rtol=0.05)


@pytest.mark.slow
def test_inverse_burgers_viscosity_within_two_percent():
    problem = load_problem("burgers1d_pinn")
    rng = np.random.default_rng(0)
    x = np.stack([rng.uniform(-1, 1, 2000), rng.uniform(0, 0.99, 2000)], 1)
    from sciml.numerics.burgers import cole_hopf

    obs = noisy_observations(x, cole_hopf(x[:, 0], x[:, 1], NU), noise=0.01, seed=1)
    torch.manual_seed(0)
    task = PINNTask(problem, MLP(2, 1, hidden=[20] * 4, activation="tanh", init="xavier_normal"),
                    n_interior=2540, n_boundary=80, n_initial=160, observations=obs,
                    unknowns={"nu": Unknown(0.01, positive=True)})
    Trainer(task, phases=pinn_phases(8000, 250, max_iter=20), callbacks=[PrecisionSwitch(8000)],
            progress=False).fit()
    assert task.unknown_values()["nu"] == pytest.approx(NU, rel=0.02)


def test_inverse_helpers_check_inputs():
    with pytest.raises(ConfigError):
        Unknown(-1.0, positive=True)
    with pytest.raises(ShapeError):
        noisy_observations(np.zeros((3, 2)), np.zeros(4))
    x, u = noisy_observations(np.zeros((1000, 1)), np.linspace(0, 1, 1000), noise=0.1, seed=0)
    exact = np.linspace(0, 1, 1000)
    assert np.std(u - exact) == pytest.approx(0.1 * np.std(exact), rel=0.1)
    with pytest.raises(ConfigError, match="clash"):
        PINNTask(_poisson_1d(), MLP(1, 1, hidden=[4]), unknowns={"u": 1.0})
