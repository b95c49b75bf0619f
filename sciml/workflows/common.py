"""What the workflows share: the run file, the run object they return, seeded model building."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..problem import Problem

__all__ = ["RUN_FILE", "OperatorRun", "build_seeded_model", "problem_spec"]

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
