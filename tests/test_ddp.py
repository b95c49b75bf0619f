"""DDP under torchrun: two CPU ranks with batch b train exactly like one process with batch 2b.

Both ranks run tests/ddp_worker.py (gloo). The data order makes the comparison exact up to
float rounding: the sampler gives rank r the indices r, r+2, ... of the epoch's permutation, so the
union of the two ranks' k-th batches is the single process's k-th batch, and the average of the
two per-rank mean losses is the mean over that batch.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("ddp_worker", HERE / "ddp_worker.py")
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)

pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="torch.distributed with gloo is not available")


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "PYTHONPATH": str(HERE.parent), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(HERE / "ddp_worker.py"), str(out)],
        env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, torch.load(out / "ddp.pt", weights_only=True)


@pytest.mark.parametrize("combiner", ["sum", "ddp-normalized"])
def test_two_ranks_equal_one_process_with_the_double_batch(ddp_run, combiner):
    _, saved = ddp_run
    assert saved[combiner]["world"] == 2
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        trainer, result = worker.train(combiner, 2 * worker.BATCH, None)
    finally:
        torch.set_num_threads(before)
    single = [p.detach() for p in trainer.task.parameters()]
    start = [p.detach() for p in worker.TwoTermRegression().parameters()]
    for got, want, init in zip(saved[combiner]["params"], single, start):
        assert not torch.allclose(want, init)  # training moved the weights
        assert torch.allclose(got, want, rtol=0, atol=1e-6), float((got - want).abs().max())
    # validation: 11 samples split 6/5 over the ranks, reduced with sample-count weights
    assert saved[combiner]["val"] == pytest.approx(result.metrics["v/mse"], rel=1e-6)


def test_only_rank_zero_writes_and_logs_reduced_values(ddp_run):
    out, _ = ddp_run
    run = out / "sum"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    starts = [r for r in records if r.get("event") == "start"]
    assert len(starts) == 1 and starts[0]["world_size"] == 2  # one writer
    assert [r["step"] for r in records if r["kind"] == "train"] == list(range(1, worker.STEPS + 1))
    assert sorted(p.name for p in run.glob("ckpt_*.pt")) == ["ckpt_00000002.pt", "ckpt_00000004.pt",
                                                             "ckpt_00000005.pt"]
    state = torch.load(run / "ckpt_00000005.pt", weights_only=True)
    assert len(state["rng_per_rank"]) == 2  # each rank's RNG streams, for an exact resume


def test_a_nan_on_one_rank_stops_both_ranks_together(ddp_run):
    _, saved = ddp_run
    # rank 1's third step is NaN; the terms are averaged before the guard, so rank 0 stops too
    assert saved["nan"] == {"reason": "diverged", "steps": 2}
