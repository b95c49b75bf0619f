"""Adversarial adaptive sampling (sciml.pinn.aas) and its test problems (peak2d, exponential_nd)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from sciml.errors import ConfigError, NonFiniteError, ShapeError
from sciml.geometry import Domain
from sciml.models.mlp import MLP
from sciml.pinn import PINNTask
from sciml.pinn.aas import AAS, BoundedFlow
from sciml.problem import load_problem
from sciml.train import Trainer

PROBLEMS = Path(__file__).resolve().parents[1] / "problems"


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks: threads only add overhead
    yield
    torch.set_num_threads(threads)


def _module(name):
    spec = importlib.util.spec_from_file_location(f"test_aas_{name}", PROBLEMS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _perturbed(flow: BoundedFlow, scale: float, seed: int = 3) -> BoundedFlow:
    """The flow with random weights (it starts as the uniform density, which would test little)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return flow


class Exact(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)[:, None]


# -- the flow ---------------------------------------------------------------------------------------
def test_flow_density_integrates_to_one_and_samples_stay_in_the_box():
    flow = _perturbed(BoundedFlow([-1.0, 0.0], [1.0, 3.0], seed=1), 0.1)
    n = 200  # midpoint rule on a 200 x 200 grid of the box
    gx = -1 + 2 * (np.arange(n) + 0.5) / n
    gy = 3 * (np.arange(n) + 0.5) / n
    pts = np.stack(np.meshgrid(gx, gy, indexing="ij"), -1).reshape(-1, 2)
    density = torch.exp(flow.log_prob(pts)).detach().numpy()
    assert density.max() > 10 * density.min()  # really not uniform
    assert density.sum() * (2 / n) * (3 / n) == pytest.approx(1.0, abs=1e-3)
    x = flow.sample(4000, seed=0)
    assert x.shape == (4000, 2) and torch.all(x[:, 0].abs() <= 1) and torch.all((x[:, 1] >= 0) & (x[:, 1] <= 3))
    assert torch.equal(x, flow.sample(4000, seed=0)) and not torch.equal(x, flow.sample(4000, seed=1))
    # the samples follow the density: mass of the left half, by sampling and by quadrature
    left = density.reshape(n, n)[: n // 2].sum() * (2 / n) * (3 / n)
    assert float((x[:, 0] < 0).double().mean()) == pytest.approx(left, abs=0.03)
    # the log-density is the change of variables of the sampling map, exactly
    u = torch.rand(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for row in u:
        jac = torch.autograd.functional.jacobian(lambda v: flow._unit_forward(v[None])[0], row)
        y = flow._unit_forward(row[None])
        assert float(flow.unit_log_prob(y).detach()) == pytest.approx(-float(torch.log(torch.det(jac).abs())), abs=1e-8)
    assert torch.isinf(flow.log_prob([[1.5, 1.0]]))[0]  # no mass outside the box


def test_flow_in_one_and_five_dimensions():
    flow = _perturbed(BoundedFlow([2.0], [4.0], n_bins=6), 0.5)
    x = np.linspace(2, 4, 4001)[:, None]
    p = torch.exp(flow.log_prob(x)).detach().numpy()
    assert np.trapezoid(p, x[:, 0]) == pytest.approx(1.0, abs=1e-5)
    flow5 = _perturbed(BoundedFlow(-np.ones(5), np.ones(5), n_couplings=3, n_bins=8), 0.1)
    # Monte Carlo: E_U[p] * volume = 1
    u = np.random.default_rng(0).uniform(-1, 1, (40_000, 5))
    mc = torch.exp(flow5.log_prob(u)).detach().numpy() * 2.0**5
    assert mc.mean() == pytest.approx(1.0, abs=4 * mc.std() / np.sqrt(len(mc)))
    s = flow5.sample(500, seed=np.random.default_rng(1))
    assert torch.all(s.abs() <= 1)


# -- the problems ------------------------------------------------------------------------------------
def test_exact_solutions_have_zero_residual():
    peak = _module("peak2d")
    for problem, peaks in ((load_problem("peak2d"), 1), (peak.two_peaks, 2)):
        exact = Exact(lambda x, peaks=peaks: peak.exact(x[:, 0], x[:, 1], 1000.0, peaks))
        task = PINNTask(problem, exact, n_interior=500, dtype=torch.float64, reference="auto")
        x = torch.as_tensor(Domain.rectangle([-1, -1], [1, 1]).sample_interior(2000, seed=0))
        x[:100] = torch.as_tensor(peak.CENTERS[:peaks]).repeat(100 // peaks, 1) + 0.02 * x[:100]  # on the peaks
        r = task.residuals(x.requires_grad_(True))["pde"].detach()
        f = peak.source(x[:, 0], x[:, 1], 1000.0, peaks).detach()
        assert f.abs().max() > 1000 and r.abs().max() < 1e-9 * f.abs().max()
        assert task.relative_error()["rel_l2"] < 1e-12  # the grid reference is the exact solution
        assert float(task.loss_terms()["bc"]) < 1e-30  # zero data: the solution is < 1e-108 there
    nd = _module("exponential_nd")
    for d in (5, 10):
        problem = nd.make_problem(d)
        ref = nd.reference_points(d, 400)
        task = PINNTask(problem, Exact(nd.exact_array), n_interior=200, n_boundary=300, dtype=torch.float64,
                        reference=ref)
        x = torch.as_tensor(ref[0]).requires_grad_(True)
        r = task.residuals(x)["pde"].detach()
        assert r.abs().max() < 1e-10 * max(1.0, float(nd.source_array(x.detach()).abs().max()))
        assert float(task.loss_terms()["bc"]) < 1e-28  # the boundary data are the exact solution there
        assert task.relative_error()["rel_l2"] < 1e-14
    # ... but not inside (a hard constraint's lifting must not be the solution)
    g = problem.conditions[0].value
    inside = np.zeros((1, 10))
    assert g(*inside.T)[0] < 1e-4 < nd.exact_array(inside)[0]


# -- the adversarial sampler --------------------------------------------------------------------------
def test_ascent_increases_the_objective_and_moves_points_to_the_peak():
    domain = Domain.rectangle([-1, -1], [1, 1])

    def peak(x):
        return np.exp(-50 * ((x - 0.5) ** 2).sum(1))

    def near(p):
        return float(np.mean(np.linalg.norm(p - 0.5, axis=1) < 0.25))

    points = np.random.default_rng(0).uniform(-1, 1, (1000, 2))
    aas = AAS(every=2, ascent_steps=25, n_candidates=600, flow={"n_couplings": 2, "n_bins": 8})
    assert aas.adapt(1, points, peak, domain, np.random.default_rng(1)) is None  # not due
    new = aas.adapt(2, points, peak, domain, np.random.default_rng(1))
    record = aas.history[-1]
    assert record["objective_before"] == pytest.approx(1.0, rel=0.05)  # uniform start: J = 1
    assert record["objective"] > 1.5 * record["objective_before"]
    assert new.shape == points.shape and domain.inside(new).all()
    assert near(new) > 3 * near(points) and record["residual_ratio"] > 2
    fresh = aas.sample(domain, 1000, np.random.default_rng(2))  # a resampling PINN draws from the flow too
    assert domain.inside(fresh).all() and near(fresh) > 3 * near(points)
    # the H^1 penalty holds the density back: a larger beta moves less mass
    stiff = AAS(every=2, ascent_steps=25, beta=1.0, n_candidates=600, flow={"n_couplings": 2, "n_bins": 8})
    held = stiff.adapt(2, points, peak, domain, np.random.default_rng(1))
    assert near(held) < near(new) and stiff.history[-1]["penalty"] < record["penalty"]
    # the same seeds give the same points
    again = AAS(every=2, ascent_steps=25, n_candidates=600, flow={"n_couplings": 2, "n_bins": 8})
    np.testing.assert_array_equal(again.adapt(2, points, peak, domain, np.random.default_rng(1)), new)


def test_tiny_aas_run_on_one_peak_learns():
    # the one-peak problem with a milder peak (k = 100): k = 1000 takes far more than a test's steps
    problem = _module("peak2d").make_problem(peaks=1, k=100.0)
    torch.manual_seed(0)
    aas = AAS(every=100, ascent_steps=10, n_candidates=500, rounds=2, flow={"n_couplings": 2, "n_bins": 8})
    task = PINNTask(problem, MLP(2, 1, [16, 16], "tanh", init="xavier_normal"), n_interior=300, sampler=aas,
                    hard=True, seed=0, resample_until=300)
    rng = np.random.default_rng(5)
    probe = np.concatenate([rng.uniform(-1, 1, (1000, 2)), 0.5 + 0.05 * rng.standard_normal((300, 2))])
    before = np.mean(task.pointwise_residual(probe) ** 2)
    Trainer(task, steps=300, lr=3e-3, progress=False, eval_every=300, seed=0).fit()
    assert [h["step"] for h in aas.history] == [100.0, 200.0]
    assert all(h["objective"] > h["objective_before"] for h in aas.history)
    near = np.mean(np.linalg.norm(task.point_sets()["interior"] - 0.5, axis=1) < 0.2)
    assert near > 0.07  # a uniform set has 3% of its points there
    assert np.mean(task.pointwise_residual(probe) ** 2) < 0.7 * before


def test_resume_continues_the_same_adversarial_game(tmp_path):
    # the flow, its Adam state and the history are in the checkpoint: resuming at step 10 (after two
    # stages) repeats the uninterrupted run bit for bit, points and flow included
    problem = _module("peak2d").make_problem(peaks=1, k=100.0)

    def run(out=None, resume=False):
        torch.manual_seed(0)
        aas = AAS(every=5, ascent_steps=4, n_candidates=200, flow={"n_couplings": 2, "n_bins": 4, "hidden": 8})
        task = PINNTask(problem, MLP(2, 1, [8], "tanh"), n_interior=64, sampler=aas, hard=True, seed=0,
                        reference=None)
        Trainer(task, steps=17, lr=3e-3, progress=False, eval_every=100, seed=0, out_dir=out,
                checkpoint_every=10 if out else None, resume=resume).fit()
        return task, aas

    whole, whole_aas = run()
    partial = tmp_path / "run"
    run(partial)
    for f in sorted(partial.glob("ckpt_*.pt"))[1:]:
        f.unlink()  # keep the step-10 checkpoint only
    resumed, resumed_aas = run(partial, resume=True)
    assert [h["step"] for h in resumed_aas.history] == [5.0, 10.0, 15.0] == [h["step"] for h in whole_aas.history]
    assert resumed_aas.history == whole_aas.history
    np.testing.assert_array_equal(resumed.point_sets()["interior"], whole.point_sets()["interior"])
    for a, b in zip(resumed_aas.flow.parameters(), whole_aas.flow.parameters()):
        assert torch.equal(a, b)
    assert all(torch.equal(a, b) for a, b in zip(resumed.parameters(), whole.parameters()))
    # a checkpoint of another sampler's state is refused with the reason
    state = whole.state_for_checkpoint()
    plain = PINNTask(problem, MLP(2, 1, [8], "tanh"), n_interior=64, hard=True, seed=0, reference=None)
    with pytest.raises(ConfigError, match="another sampler"):
        plain.load_state_for_checkpoint(state)
    other = AAS(flow={"n_couplings": 3})
    with pytest.raises(ConfigError, match="does not fit"):
        other.load_state_for_checkpoint(state["sampler"], whole.domain)


def test_bad_inputs_are_rejected():
    with pytest.raises(ConfigError, match="lo < hi"):
        BoundedFlow([0, 1], [1, 1])
    with pytest.raises(ShapeError):
        BoundedFlow([0, 0], [1, 1, 1])
    with pytest.raises(ConfigError):
        BoundedFlow([0], [1], n_bins=0)
    with pytest.raises(ConfigError):
        BoundedFlow([0], [1], dtype=torch.int64)
    flow = BoundedFlow([0, 0], [1, 1])
    with pytest.raises(ShapeError):
        flow.log_prob(np.zeros((3, 3)))
    with pytest.raises(NonFiniteError):
        flow.log_prob([[np.nan, 0.5]])
    with pytest.raises(ConfigError):
        flow.sample(10, seed=-1)
    for kwargs in ({"every": 0}, {"beta": -1.0}, {"lr": 0.0}, {"uniform_fraction": 0.0},
                   {"uniform_fraction": 1.5}, {"flow": {"width": 3}}, {"seed": 1.5}, {"n_candidates": 0},
                   {"rounds": 0}, {"ascent_steps": 2, "rounds": 3}):
        with pytest.raises(ConfigError):
            AAS(**kwargs)
    rng = np.random.default_rng(0)
    points = np.zeros((10, 2))
    with pytest.raises(ConfigError, match="box"):
        AAS(every=1).adapt(1, points, lambda x: np.ones(len(x)), Domain.disk([0, 0], 1.0), rng)
    with pytest.raises(NonFiniteError):
        AAS(every=1, n_candidates=50).adapt(1, points, lambda x: np.full(len(x), np.nan),
                                            Domain.rectangle([0, 0], [1, 1]), rng)
    with pytest.raises(ShapeError):
        AAS(every=1, n_candidates=50).adapt(1, points, lambda x: np.ones(3), Domain.rectangle([0, 0], [1, 1]), rng)
    used = AAS(every=1, ascent_steps=1, n_candidates=50)
    used.adapt(1, points, lambda x: np.ones(len(x)) + x[:, 0], Domain.rectangle([0, 0], [1, 1]), rng)
    with pytest.raises(ConfigError, match="one AAS per PINN"):
        used.adapt(1, points, lambda x: np.ones(len(x)), Domain.rectangle([0, 0], [2, 1]), rng)
    with pytest.raises(ConfigError):
        _module("peak2d").make_problem(peaks=3)
    with pytest.raises(ConfigError):
        _module("exponential_nd").make_problem(1)
