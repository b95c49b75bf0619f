"""What the workflows share: the run file, the run object they return, seeded model building."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..problem import Problem

__all__ = ["RUN_FILE", "OperatorRun", "build_seeded_model", "problem_spec", "split_indices"]

RUN_FILE = "run.json"


@dataclass
class OperatorRun:
    """What :func:`train_operator` returns."""

    run_dir: Path
    solver: Any
    result: Any
    test_errors: np.ndarray = field(repr=False)

    @property
    def mean_error(self) -> float:
        """Mean per-sample relative L2 on the test split (the papers' metric)."""
        return float(np.mean(self.test_errors))

    @property
    def median_error(self) -> float:
        return float(np.median(self.test_errors))


def build_seeded_model(name: str, seed: int, **kwargs: Any) -> Any:
    """``build_model(name, **kwargs)`` with initial weights drawn from ``seed``.

    The Trainer seeds the run only when it starts, after the model exists; without this the initial
    weights came from whatever state the process's global RNG was in (a fresh random seed per
    process), so the same ``seed`` did not give the same run. The caller's RNG state is left as it was.
    """
    import torch

    from ..models import build_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(name, **kwargs)


def problem_spec(problem: Problem) -> dict[str, Any]:
    return {"name": problem.name, "params": problem.params, "path": problem.source}


def split_indices(n_samples: int, n_train: int, n_test: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """The train and test sample indices of a data file of ``n_samples``: the first ``n_train`` and the
    last ``n_test``. Every workflow that trains on a file uses this split, so that models trained by
    different workflows on the same file are tested on the same instances. Raises ConfigError (naming
    ``what``) when the file holds fewer than ``n_train + n_test`` samples."""
    if n_samples < n_train + n_test:
        raise ConfigError(f"{what} holds {n_samples} samples, expected n_train + n_test = {n_train + n_test}")
    return np.arange(n_train), np.arange(n_samples - n_test, n_samples)
