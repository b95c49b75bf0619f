"""ConFIG, M-ConFIG and PCGrad combiners (sciml.optim.config) against the `conflictfree` package."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sciml.errors import ConfigError, ShapeError
from sciml.optim import ConFIG, MConFIG, PCGrad, config_direction, get_combiner, pcgrad_direction

conflictfree = pytest.importorskip("conflictfree", reason="test dependency (pip install '.[test]')")
from conflictfree.grad_operator import ConFIG_update, ConFIGOperator, PCGradOperator  # noqa: E402
from conflictfree.momentum_operator import PseudoMomentumOperator  # noqa: E402


@pytest.fixture
def float64_default():
    # conflictfree creates its weights and momenta with the default dtype
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _conflicting(m: int, n: int, seed: int) -> torch.Tensor:
    g = torch.randn(m, n, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    g[1] = -0.8 * g[0] + 0.3 * g[1]  # a strongly conflicting pair
    return g


@pytest.mark.parametrize("m", [2, 3, 5])
def test_config_matches_conflictfree(m, float64_default):
    for seed in range(3):
        g = _conflicting(m, 400, seed) * torch.logspace(-3, 2, m, dtype=torch.float64)[:, None]
        ours = config_direction(g)
        general = ConFIG_update(g)  # least-squares form
        operator = ConFIGOperator().calculate_gradient(g)  # closed form for two gradients
        scale = general.abs().max()
        assert (ours - general).abs().max() <= 1e-12 * scale
        assert (ours - operator).abs().max() <= 1e-12 * scale


def test_config_zero_gradient_rows_match_conflictfree(float64_default):
    g = _conflicting(3, 50, 7)
    g[2] = 0.0  # a term that does not depend on the weights
    assert (config_direction(g) - ConFIG_update(g)).abs().max() <= 1e-12 * g.abs().max()
    zeros = torch.zeros(2, 5, dtype=torch.float64)
    assert torch.equal(config_direction(zeros), zeros[0])


def test_conflict_free_property_for_independent_gradients():
    g = _conflicting(4, 300, 3)
    assert (g[0] @ g[1]) < 0  # the raw sum conflicts with some term
    update = config_direction(g)
    cos = (g @ update) / (g.norm(dim=1) * update.norm())
    assert torch.all(cos > 0)
    assert (cos.max() - cos.min()) <= 1e-12
    # length: the sum of the projections of the gradients on the direction
    unit = update / update.norm()
    assert update.norm().item() == pytest.approx(float((g @ unit).sum()), rel=1e-12)


def test_pcgrad_matches_conflictfree(float64_default):
    for m in (2, 3, 4):
        g = _conflicting(m, 200, m)
        reference = PCGradOperator().calculate_gradient(g)
        assert (pcgrad_direction(g) - reference).abs().max() <= 1e-12 * g.abs().max()
    # without conflicts PCGrad is the plain sum
    g = torch.rand(3, 10, dtype=torch.float64)
    assert torch.allclose(pcgrad_direction(g), g.sum(0), rtol=0, atol=1e-15)


def _quadratic_terms(p: torch.Tensor, mats: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"t{i}": 0.5 * (a @ p - 1.0).square().sum() for i, a in enumerate(mats)}


@pytest.mark.parametrize("m", [2, 3])
def test_mconfig_matches_pseudo_momentum_operator(m, float64_default):
    gen = torch.Generator().manual_seed(m)
    mats = [torch.randn(6, 8, generator=gen) for _ in range(m)]
    init = torch.randn(8, generator=gen)
    ours_p = nn.Parameter(init.clone())
    ref_p = nn.Parameter(init.clone())
    combiner = MConFIG()
    ours_opt = torch.optim.SGD([ours_p], lr=1e-2)
    ref_opt = torch.optim.SGD([ref_p], lr=1e-2)
    operator = PseudoMomentumOperator(num_vectors=m)
    for step in range(12):
        ours_opt.zero_grad()
        combiner(_quadratic_terms(ours_p, mats), [ours_p])
        ours_opt.step()
        index = step % m
        loss = _quadratic_terms(ref_p, mats)[f"t{index}"]
        (grad,) = torch.autograd.grad(loss, ref_p)
        ref_p.grad = operator.calculate_gradient(index, grad).clone()
        ref_opt.step()
        assert (ours_p - ref_p).abs().max().item() <= 1e-12
    assert combiner.next_terms(["a", "b", "c"][:m]) == [["a", "b", "c"][12 % m]]


def test_mconfig_state_roundtrip_continues_identically():
    gen = torch.Generator().manual_seed(0)
    mats = [torch.randn(4, 5, generator=gen) for _ in range(3)]
    p = nn.Parameter(torch.randn(5, generator=gen))
    first = MConFIG()
    for _ in range(5):
        first(_quadratic_terms(p, mats), [p])
    second = MConFIG()
    second.load_state_dict(first.state_dict())
    first(_quadratic_terms(p, mats), [p])
    g1 = p.grad.clone()
    second(_quadratic_terms(p, mats), [p])
    assert torch.equal(g1, p.grad)


def test_parameters_without_gradient_for_a_term_count_as_zero():
    a, b = nn.Parameter(torch.tensor([1.0, 2.0])), nn.Parameter(torch.tensor([0.5]))
    terms = {"first": (a * a).sum() + b[0] * a[0], "second": (a[1] - 3.0) ** 2, "third": b[0] ** 2 - a[0]}
    ConFIG()(terms, [a, b])
    rows = torch.tensor([[2 * 1.0 + 0.5, 4.0, 1.0], [0.0, -2.0, 0.0], [-1.0, 0.0, 1.0]])
    expected = config_direction(rows)
    assert torch.allclose(torch.cat([a.grad, b.grad]), expected, atol=1e-6)
    # a parameter no term depends on keeps grad=None, as after loss.backward()
    c = nn.Parameter(torch.ones(2))
    PCGrad()({"x": (a * a).sum(), "y": a.sum()}, [a, c])
    assert c.grad is None


def test_nonlinear_combiners_average_per_term_gradients_themselves():
    p = nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))

    def terms():
        return {"u": (p * p).sum(), "v": (p[0] - p[1]) ** 2}

    calls = []

    def reduce(t):
        calls.append(t.shape)
        return 2.0 * t  # a fake all-reduce; ConFIG is positively homogeneous of degree one

    combiner = get_combiner("config")
    assert isinstance(combiner, ConFIG) and combiner.reduces_itself
    combiner(terms(), [p])
    plain = p.grad.clone()
    combiner(terms(), [p], reduce=reduce)
    assert calls == [(2, 3)]
    assert torch.allclose(p.grad, 2 * plain)
    # fp16-style loss scaling leaves scale * the true update in p.grad
    combiner(terms(), [p], scale=1024.0)
    assert torch.allclose(p.grad, 1024.0 * plain)


def test_trainer_runs_with_every_combiner():
    from sciml.train import Task, Trainer

    class TwoTerms(Task):
        def __init__(self):
            super().__init__()
            self.model = nn.Linear(2, 1)

        def loss_terms(self, batch):
            # two halves of one consistent fit: minimisable together, but their gradients conflict
            x = torch.stack([torch.linspace(-1, 1, 16), torch.linspace(1, -1, 16) ** 2], dim=1)
            err = (self.model(x)[:, 0] - 2 * x[:, 0] - 1).square()
            return {"left": err[:8].mean(), "right": err[8:].mean()}

    for name in ("config", "pcgrad", "mconfig"):
        torch.manual_seed(0)
        task = TwoTerms()
        before = sum(float(v.detach()) for v in task.loss_terms(None).values())
        optimizer = "sgd" if name == "mconfig" else "adam"
        Trainer(task, steps=300, optimizer=optimizer, lr=2e-2, combiner=name, progress=False).fit()
        assert sum(float(v.detach()) for v in task.loss_terms(None).values()) < 0.05 * before, name


def test_bad_inputs_raise():
    with pytest.raises(ShapeError):
        config_direction(torch.zeros(5))
    with pytest.raises(ConfigError):
        MConFIG(beta1=1.0)
    with pytest.raises(ConfigError):
        MConFIG(eps=0.0)
    combiner = MConFIG()
    p = nn.Parameter(torch.ones(2))
    combiner({"a": p.sum(), "b": (p * p).sum()}, [p])
    with pytest.raises(ConfigError, match="terms changed"):
        combiner({"a": p.sum(), "c": (p * p).sum()}, [p])
