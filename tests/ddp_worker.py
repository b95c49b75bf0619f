"""Data-parallel training script for tests/test_ddp.py.

    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/ddp_worker.py OUT_DIR

Under torchrun each rank trains the same small MLP regression with a per-rank batch of
``BATCH``; the Trainer creates (and at the end destroys) the gloo process group itself. Three runs
in one launch: the plain sum of the loss terms, a nonlinear combiner that averages its per-term
gradients across ranks itself, and a run where only rank 1 produces a NaN (both ranks must stop
together). Rank 0 saves the final parameters and results to OUT_DIR/ddp.pt.

The test imports :func:`train` to make the single-process reference with a batch of
``2 * BATCH``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sciml.optim import Combiner, register_combiner, set_gradients, term_gradients  # noqa: E402
from sciml.optim.combine import available_combiners  # noqa: E402
from sciml.train import Task, Trainer  # noqa: E402

BATCH = 4  # per rank
STEPS = 5
N_TRAIN = 2 * BATCH * STEPS  # one epoch of 5 global batches
N_VAL = 11  # odd: the ranks' evaluation shards differ in size (6 and 5)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(3, 16), nn.Linear(16, 1)

    def forward(self, x):
        return self.b(torch.tanh(self.a(x)))


class TwoTermRegression(Task):
    def __init__(self, nan_rank: int | None = None, nan_call: int = 3) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.model = Net()
        with torch.no_grad():
            for p in self.model.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
        self.nan_rank, self.nan_call, self.calls = nan_rank, nan_call, 0

    def loss_terms(self, batch):
        x, y = batch
        pred = self.model(x)
        mse = (pred - y).pow(2).mean()
        self.calls += self.training
        if self.nan_rank is not None and self.calls == self.nan_call and _rank() == self.nan_rank:
            mse = mse * float("nan")
        return {"mse": mse, "smooth": 0.1 * pred.pow(2).mean()}

    def metrics(self, batch):
        x, y = batch
        return {"mse": float((self.model(x) - y).pow(2).mean())}


def _rank() -> int:
    return torch.distributed.get_rank() if torch.distributed.is_initialized() else 0


if "ddp-normalized" not in available_combiners():

    @register_combiner("ddp-normalized")
    class NormalizedTerms(Combiner):
        """Sum of the unit per-term gradients: nonlinear, so it must see the global per-term gradients."""

        reduces_itself = True

        def combine(self, terms, params, *, scale, reduce):
            grads, used = term_gradients(terms, params, scale=scale, reduce=reduce)
            direction = (grads / grads.norm(dim=1, keepdim=True).clamp_min(1e-12)).sum(0)
            set_gradients(direction, params, scale=scale, used=used)
            return sum(t.detach() for t in terms.values())


def data(n: int, seed: int) -> TensorDataset:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=gen)
    return TensorDataset(x, torch.sin(x @ torch.tensor([[1.0], [0.5], [-1.0]])))


def train(combiner: str, batch_size: int, out_dir: Path | None, nan_rank: int | None = None):
    """Train and return (trainer, result)."""
    task = TwoTermRegression(nan_rank=nan_rank)
    trainer = Trainer(task, train_data=data(N_TRAIN, 1), val_data={"v": data(N_VAL, 2)},
                      batch_size=batch_size, val_batch_size=4, steps=STEPS, lr=1e-2, combiner=combiner,
                      device="cpu", seed=7, out_dir=out_dir, checkpoint_every=2, log_every=1,
                      nan_policy="stop" if nan_rank else "raise")
    return trainer, trainer.fit()


def main() -> None:
    out = Path(sys.argv[1])
    torch.set_num_threads(1)
    saved = {}
    for combiner in ("sum", "ddp-normalized"):
        trainer, result = train(combiner, BATCH, out / combiner)
        saved[combiner] = {"params": [p.detach().clone() for p in trainer.task.parameters()],
                           "val": result.metrics["v/mse"], "world": trainer.dist.world_size}
    _, result = train("sum", BATCH, None, nan_rank=1)
    saved["nan"] = {"reason": result.reason, "steps": result.steps}
    if trainer.dist.rank == 0:
        torch.save(saved, out / "ddp.pt")


if __name__ == "__main__":
    main()
