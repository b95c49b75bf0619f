"""Checkpoints: atomic writes, safe loading, corruption fallback, exact resume (also after SIGKILL)."""

# The legacy global numpy RNG is used on purpose: saving and restoring it is under test.
# ruff: noqa: NPY002

from __future__ import annotations

import importlib.util
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from sciml.errors import CheckpointError, ConfigError
from sciml.train import (
    Task,
    Trainer,
    capture_rng_state,
    find_resumable,
    list_checkpoints,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from sciml.train import checkpoint as ckpt_module

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("resume_worker", HERE / "resume_worker.py")
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)


def minimal_state(value: float = 1.0) -> dict:
    return {"epoch": 0, "batch_in_epoch": 0, "model": {"w": torch.full((3,), value)}, "optimizer": {},
            "rng": capture_rng_state(), "model_spec": "null", "problem": "null"}


# -- format and atomicity -----------------------------------------------------------------------
def test_save_load_roundtrip_index_and_pruning(tmp_path):
    for step in (1, 2, 3, 4):
        path = save_checkpoint(tmp_path, minimal_state(step), step=step, keep=2)
        assert path.name == f"ckpt_{step:08d}.pt"
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt_00000003.pt", "ckpt_00000004.pt"]
    index = json.loads((tmp_path / "latest").read_text())
    assert index["latest"] == "ckpt_00000004.pt" and [e["step"] for e in index["checkpoints"]] == [3, 4]
    state = load_checkpoint(tmp_path / "ckpt_00000004.pt")
    assert torch.equal(state["model"]["w"], torch.full((3,), 4.0))
    assert state["step"] == 4 and state["format_version"] == ckpt_module.FORMAT_VERSION
    assert set(state["versions"]) == {"sciml", "torch", "python"}
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
    # plain data only: loadable by torch itself with weights_only=True
    torch.load(tmp_path / "ckpt_00000004.pt", weights_only=True)


def test_a_crash_during_the_write_leaves_the_previous_state(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, minimal_state(1.0), step=1)
    before = (tmp_path / "latest").read_text()

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_module.os, "replace", crash)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path, minimal_state(2.0), step=2)
    monkeypatch.undo()
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith(("ckpt", ".ckpt"))]
    assert left == ["ckpt_00000001.pt"]
    assert (tmp_path / "latest").read_text() == before
    assert find_resumable(tmp_path).name == "ckpt_00000001.pt"


def test_state_that_weights_only_could_not_load_is_refused_at_save(tmp_path):
    state = minimal_state()
    state["task_state"] = {"normaliser": object()}
    with pytest.raises(CheckpointError, match="task_state.*normaliser"):
        save_checkpoint(tmp_path, state, step=1)
    assert list_checkpoints(tmp_path) == []


# -- refusing bad files -------------------------------------------------------------------------
def test_truncated_and_flipped_files_raise_checkpoint_error(tmp_path):
    path = save_checkpoint(tmp_path, minimal_state(), step=5)
    data = path.read_bytes()
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match=r"ckpt_00000005\.pt.*sha256 mismatch"):
        load_checkpoint(path)
    (tmp_path / "latest").unlink()  # without the index: the zip/pickle layer must catch truncation
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match=r"ckpt_00000005\.pt.*cannot be loaded safely"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "ckpt_00000099.pt")


def test_foreign_version_and_missing_keys(tmp_path):
    torch.save({"weights": torch.ones(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a sciml checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    state = {**minimal_state(), "format": ckpt_module.FORMAT, "versions": {}, "step": 1}
    torch.save({**state, "format_version": 99}, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="format version 99"):
        load_checkpoint(tmp_path / "future.pt")
    del state["optimizer"]
    torch.save({**state, "format_version": 1}, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match=r"missing keys \['optimizer'\]"):
        load_checkpoint(tmp_path / "partial.pt")


class Payload:
    """Pickles to a call of os.system that would create a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "ckpt_00000001.pt"
    torch.save({**minimal_state(), "format": ckpt_module.FORMAT, "format_version": 1, "versions": {},
                "step": 1, "evil": Payload(marker)}, path)
    with pytest.raises(CheckpointError, match=r"ckpt_00000001\.pt.*cannot be loaded safely"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError):
        find_resumable(tmp_path)
    assert not marker.exists()


def test_find_resumable_falls_back_past_a_corrupt_newest(tmp_path):
    assert find_resumable(tmp_path) is None
    for step in (3, 6):
        save_checkpoint(tmp_path, minimal_state(step), step=step)
    newest = tmp_path / "ckpt_00000006.pt"
    newest.write_bytes(newest.read_bytes()[:100])
    with pytest.warns(RuntimeWarning, match=r"ckpt_00000006\.pt.*falling back to ckpt_00000003\.pt"):
        assert find_resumable(tmp_path).name == "ckpt_00000003.pt"


def test_rng_state_roundtrip():
    state = capture_rng_state()
    expected = (torch.rand(4), np.random.rand(3), random.random(), np.random.standard_normal())
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    restore_rng_state(torch.load(buf, weights_only=True))
    got = (torch.rand(4), np.random.rand(3), random.random(), np.random.standard_normal())
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    assert got[2:] == expected[2:]
    with pytest.raises(CheckpointError, match="malformed RNG state"):
        restore_rng_state({"python": {}})


# -- exact resume -------------------------------------------------------------------------------
def _params(trainer: Trainer) -> list[torch.Tensor]:
    return [p.detach().clone() for p in trainer.task.parameters()]


@pytest.fixture
def one_thread():
    """The worker's arithmetic: one intra-op thread (restored afterwards)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_resume_from_any_checkpoint_reproduces_the_run(tmp_path, one_thread):
    full = worker.make_trainer(tmp_path / "full")
    full.checkpoint_every, full.keep_checkpoints = 1, 100
    result = full.fit()
    final = _params(full)
    assert result.steps == worker.STEPS
    checkpoints = {int(p.stem.split("_")[1]): p for p in list_checkpoints(tmp_path / "full")}
    # 7: mid-epoch; 10: an epoch's last batch (its end-of-epoch evaluation comes after the resume)
    for step in (7, 10):
        resumed = worker.make_trainer(None).resume(checkpoints[step])
        assert resumed.step == step
        resumed.fit()
        assert all(torch.equal(a, b) for a, b in zip(_params(resumed), final)), f"resume from step {step}"
    state = load_checkpoint(checkpoints[worker.STEPS])
    assert json.loads(state["model_spec"]) == {"name": "test-mlp", "kwargs": {"width": 32}}
    assert set(state["model"]) == {"0.weight", "0.bias", "3.weight", "3.bias"}
    assert state["model_prefix"] == "model."


@pytest.mark.parametrize("options,resume_at", [
    ({"precision": "fp16", "schedule": "onecycle"}, 7),  # GradScaler and OneCycle state
    ({"phases": [("adam", 8, {"lr": 1e-2}), ("lbfgs", 4, {"max_iter": 4})]}, 10),  # inside L-BFGS
    ({"phases": [("adam", 8, {"lr": 1e-2}), ("lbfgs", 4, {"max_iter": 4})]}, 8),  # at the switch
    ({"schedule": "step", "schedule_interval": "epoch", "steps": 12, "drop_last": True}, 6),
])
def test_resume_is_exact_across_precision_schedules_and_phases(tmp_path, one_thread, options, resume_at):
    def make(out_dir):
        opts = dict(options)
        if "phases" not in opts:
            opts.setdefault("steps", 12)
        return Trainer(worker.NoisyRegression(), train_data=worker.data(), batch_size=7, lr=1e-2, seed=1,
                       device="cpu", out_dir=out_dir, checkpoint_every=1, keep_checkpoints=50, log_every=1,
                       **opts)

    full = make(tmp_path / "full")
    result = full.fit()
    assert result.steps == 12
    resumed = make(None).resume(tmp_path / "full" / f"ckpt_{resume_at:08d}.pt")
    assert resumed.fit().steps == 12
    assert all(torch.equal(a, b) for a, b in zip(_params(resumed), _params(full)))
    assert type(resumed.optimizer) is type(full.optimizer)
    again = make(tmp_path / "full")
    again.resume_requested = True
    assert again.fit().steps == 12 and again.step == 12  # a finished run resumes to its end at once


def test_resume_with_a_user_dataloader_skips_the_consumed_batches(tmp_path, one_thread):
    from torch.utils.data import DataLoader

    def make(out_dir):
        loader = DataLoader(worker.data(), batch_size=8, shuffle=False)  # deterministic order
        return Trainer(worker.NoisyRegression(), train_data=loader, epochs=3, seed=2, device="cpu",
                       out_dir=out_dir, checkpoint_every=1, keep_checkpoints=50)

    full = make(tmp_path / "full")
    assert full.fit().steps == 15
    resumed = make(None).resume(tmp_path / "full" / "ckpt_00000007.pt")
    assert (resumed.epoch, resumed.batch_in_epoch) == (1, 2)
    resumed.fit()
    assert all(torch.equal(a, b) for a, b in zip(_params(resumed), _params(full)))


class Other(Task):
    def __init__(self):
        super().__init__()
        self.model = torch.nn.Linear(3, 2)

    def loss_terms(self, batch):
        return {"w": self.model.weight.pow(2).sum()}


def test_resume_into_a_different_task_is_refused(tmp_path):
    worker.make_trainer(tmp_path).fit()
    with pytest.raises(CheckpointError, match="does not match the task Other"):
        Trainer(Other(), steps=5, device="cpu").resume(tmp_path)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        Trainer(Other(), steps=5, device="cpu").resume(tmp_path / "missing.pt")


def test_resume_true_without_checkpoints_starts_fresh(tmp_path):
    result = worker.make_trainer(tmp_path / "new", resume=True).fit()
    assert result.steps == worker.STEPS
    assert [r["event"] for r in result.history if r["kind"] == "event"][0] == "start"
    with pytest.raises(ConfigError):
        worker.make_trainer(tmp_path / "new").fit()  # fresh run over an existing one


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path, one_thread):
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    script = str(HERE / "resume_worker.py")
    trigger = tmp_path / "trigger"
    run = tmp_path / "run"
    victim = subprocess.Popen([sys.executable, script, str(run), str(tmp_path / "x.pt"),
                               "--kill-after", "11", str(trigger)], env=env)
    reference = worker.make_trainer(None)  # the uninterrupted run, here while the worker starts up
    assert reference.fit().steps == worker.STEPS
    deadline = time.monotonic() + 900  # wall clock: generous, a busy machine only slows the worker
    while not trigger.exists():
        assert victim.poll() is None, "the worker ended before the kill"
        assert time.monotonic() < deadline, "the worker did not reach the kill step"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    assert find_resumable(run).name == "ckpt_00000009.pt"  # mid-epoch: epoch 1, 4 of 5 batches done
    log_steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(log_steps) == 11  # records past the checkpoint, to be dropped on resume
    resumed = subprocess.run([sys.executable, script, str(run), str(tmp_path / "resumed.pt"), "--resume"],
                             env=env, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    a = torch.load(tmp_path / "resumed.pt", weights_only=True)
    assert a["steps"] == worker.STEPS
    assert all(torch.equal(x, y) for x, y in zip(a["params"], _params(reference)))
    train_steps = [r["step"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
                   if r["kind"] == "train"]
    assert train_steps == list(range(1, worker.STEPS + 1))  # the log reads like one uninterrupted run
    with zipfile.ZipFile(run / "ckpt_00000020.pt") as zf:  # torch's format is a zip archive
        assert zf.testzip() is None
