"""Progress as a user sees it without a terminal (CI, nohup, `| tee`): plain lines while training,
and a resumed run saying where it continues from."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

# 360 steps, interrupted at the first progress line (step 36): the run must still have most of its
# length ahead when the signal lands, also when a busy machine makes this process slow to read.
TRAIN = ["train", "poisson", "--resolution", "17", "--n-train", "48", "--n-test", "8", "--epochs", "30",
         "--batch-size", "4", "--model-arg", "width=8", "--model-arg", "n_modes=[4,4]",
         "--model-arg", "n_layers=2"]


# About half a minute of training on an idle 2-core CPU (longer on a busy one): long enough for the
# clock's lines (every ~15 s) as well as the one at every tenth of the run.
LONG = ["train", "poisson", "--resolution", "17", "--n-train", "96", "--n-test", "8", "--epochs", "40",
        "--batch-size", "4", "--model-arg", "width=8", "--model-arg", "n_modes=[4,4]", "--model-arg", "n_layers=2"]


def _sciml(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    # stdout and stderr are pipes, as under CI or `| tee`: no TTY, so no progress bar can draw.
    return subprocess.run([sys.executable, "-m", "sciml.cli", *args], capture_output=True, text=True,
                          env=env, timeout=900)


def _default_sigint() -> None:
    """In the child before it starts Python: Ctrl-C's default disposition, as in a terminal's
    foreground job. A shell without job control (CI runners, ``cmd &`` in a script) starts background
    commands with SIGINT *ignored*, every descendant inherits that, and Python then installs no
    KeyboardInterrupt handler: the run would ignore the signal and train to its end (this is what
    failed under CI, not a slow reader)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt_after_step(args: list[str], step: int) -> tuple[int, str]:
    """Start ``sciml ARGS``, wait for a progress line at ``step`` or later, press Ctrl-C; its exit code
    and stderr."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "sciml.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env, preexec_fn=_default_sigint)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        found = re.match(r"\[train\] step (\d+)/", line)
        if found and int(found.group(1)) >= step:
            proc.send_signal(signal.SIGINT)
            break
    _, rest = proc.communicate(timeout=600)
    return proc.returncode, "".join(seen) + rest


def test_an_interrupted_run_says_how_to_resume_and_resume_says_where(tmp_path):
    run = tmp_path / "run"
    code, err = _interrupt_after_step([*TRAIN, "--out", str(run)], 36)  # past three epoch checkpoints
    assert code == 130, err
    assert f"interrupted; the run keeps its checkpoints: continue it with `sciml resume {run}`" in err
    resumed = _sciml("resume", str(run))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    total = 360
    found = re.search(rf"resuming from step (\d+)/{total} \(checkpoint .*\)", resumed.stderr)
    assert found and int(found.group(1)) >= 24, resumed.stderr[-2000:]
    assert f"[train] step {total}/{total}" in resumed.stderr


def test_training_without_a_terminal_prints_progress_lines_and_resume_says_where(tmp_path):
    run = tmp_path / "run"
    done = _sciml(*LONG, "--out", str(run))
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("[train] step")]
    # A line at every tenth of the run and every ~15 s: step, loss, the validation error, times.
    assert len(lines) >= 10, done.stderr[-2000:]
    steps = [int(re.search(r"step (\d+)/960", ln).group(1)) for ln in lines]
    assert steps == sorted(steps) and steps[-1] == 960
    last = lines[-1]
    assert re.search(r"loss \d\.\d{3}e[-+]\d\d", last) and "test@17/rel_l2" in last
    assert "elapsed 0:" in last and "eta 0:" in last
    assert "\r" not in done.stderr  # no bar redrawing into a log file

    resumed = _sciml("resume", str(run))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert re.search(r"resuming from step 960/960 \(checkpoint .*ckpt", resumed.stderr), resumed.stderr[-2000:]
