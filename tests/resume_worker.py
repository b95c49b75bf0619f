"""Training script for the exact-resume tests (run as a subprocess by tests/test_checkpoint.py).

    python tests/resume_worker.py RUN_DIR OUT.pt [--resume] [--kill-after M TRIGGER]

Trains a small MLP with dropout on shuffled data, with noise drawn from the torch, numpy and
python RNGs, a cosine schedule and an evaluation at every epoch end, checkpointing every 3 steps.
With ``--kill-after M TRIGGER`` it writes TRIGGER after step M and then waits to be killed; the
test sends SIGKILL. With ``--resume`` it continues the run in RUN_DIR. On completion it saves the
final parameters to OUT.pt.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sciml.train import Callback, Task, Trainer  # noqa: E402

STEPS = 20  # 40 samples, batch 8: 5 batches per epoch, 4 epochs
CHECKPOINT_EVERY = 3


class NoisyRegression(Task):
    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(11)
        self.model = nn.Sequential(nn.Linear(3, 32), nn.Tanh(), nn.Dropout(0.2), nn.Linear(32, 1))
        with torch.no_grad():
            for p in self.model.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.4)
        self.model_spec = {"name": "test-mlp", "kwargs": {"width": 32}}

    def loss_terms(self, batch):
        x, y = batch
        # input noise from all three global RNGs: a resume must restore every one of them
        noise = torch.from_numpy(np.random.standard_normal(x.shape).astype(np.float32)) * 0.05  # noqa: NPY002
        x = x + noise * random.random() + 0.01 * torch.randn_like(x)
        return {"mse": (self.model(x) - y).pow(2).mean(), "l2": 1e-4 * self.model[0].weight.pow(2).sum()}

    def metrics(self, batch):
        x, y = batch
        return {"mse": float((self.model(x) - y).pow(2).mean())}


def data(n: int = 40) -> TensorDataset:
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(n, 3, generator=gen)
    return TensorDataset(x, torch.sin(x.sum(1, keepdim=True)))


class KillSwitch(Callback):
    """After step ``at``: announce it through ``trigger`` and wait for the SIGKILL."""

    def __init__(self, at: int, trigger: Path) -> None:
        self.at, self.trigger = at, trigger

    def on_step_end(self, trainer, step, logs):
        if step == self.at:
            self.trigger.write_text(str(step))
            while True:  # block until the test's SIGKILL, however long a busy machine makes it wait
                time.sleep(3600)


def make_trainer(run_dir: Path | None, *, resume: bool = False, callbacks=()) -> Trainer:
    return Trainer(NoisyRegression(), train_data=data(), val_data=data(12), batch_size=8, steps=STEPS,
                   lr=5e-3, schedule="cosine", seed=3, device="cpu", out_dir=run_dir,
                   checkpoint_every=CHECKPOINT_EVERY,
                   keep_checkpoints=2, log_every=1, early_stopping={"patience": 50}, resume=resume,
                   callbacks=list(callbacks))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--kill-after", nargs=2, metavar=("STEP", "TRIGGER"))
    args = parser.parse_args()
    torch.set_num_threads(1)  # the same arithmetic in every process
    callbacks = [KillSwitch(int(args.kill_after[0]), Path(args.kill_after[1]))] if args.kill_after else []
    trainer = make_trainer(args.run_dir, resume=args.resume, callbacks=callbacks)
    result = trainer.fit()
    torch.save({"params": [p.detach() for p in trainer.task.parameters()], "steps": result.steps}, args.out)


if __name__ == "__main__":
    main()
