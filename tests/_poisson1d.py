"""A cheap 1-D operator-learning data set for tests: random sources f and the FD solutions of -u'' = f."""

from __future__ import annotations

import math

import torch


def poisson_1d(n_samples: int, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-hand sides f (random sine series) and solutions of -u'' = f, u(0) = u(1) = 0 (FD)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.linspace(0, 1, n, dtype=torch.float64)
    k = torch.arange(1, 9, dtype=torch.float64)
    f = (torch.randn(n_samples, 8, generator=gen, dtype=torch.float64) / k) @ torch.sin(
        math.pi * k[:, None] * x
    )
    m = n - 2
    off = torch.ones(m - 1, dtype=torch.float64)
    lap = (2 * torch.eye(m, dtype=torch.float64) - torch.diag(off, 1) - torch.diag(off, -1)) * (n - 1) ** 2
    u = torch.zeros_like(f)
    u[:, 1:-1] = torch.linalg.solve(lap, f[:, 1:-1].T).T
    return f[:, None].float(), u[:, None].float()
