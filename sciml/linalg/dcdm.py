"""DCDM, the deep conjugate-direction method (Kaneda et al., ICML 2023): a learned solver for SPD
pressure-Poisson systems on cell-centred grids.

The unknowns of a system are the fluid cells of a grid (``mask`` True), numbered in C order over
them. A network ``f`` (the paper's :class:`~sciml.models.dcdm_net.DCDMNet`, or the symmetric positive
definite :class:`~sciml.models.dcdm_multilevel.MultilevelSPDNet` that :meth:`DCDM.pretrained` ships)
maps a residual laid on that grid to a search direction that approximates ``A^{-1} r``. The network
does not have to be accurate, because the solver corrects it.

Training (:class:`DCDMLoss`, :class:`DCDMTask`)
    Unsupervised and invariant to the scale of the output. For a right-hand side ``b`` with
    ``q = f(b)`` and the best step ``alpha = (q.b) / (q.A q)``, the loss is
    ``||b - alpha A q||^2 / ||b||^2``: the squared relative residual left by the step that DCDM's
    exact line search would take along ``q``. The reference divides by nothing, but its ``b`` have
    unit norm. One batch may mix systems of the same grid shape (different obstacles). Each sample
    says which system it belongs to, and the products with ``A`` (float32 sparse, as in the
    reference) are done one system at a time.

    ``kind="energy"`` (ours): ``||q - x||_A^2 / ||x||_A^2`` with the solution ``x = A^{-1} b`` (the data
    set solves for it once, :func:`dcdm_dataset` ``with_solutions=True``). The one-step loss asks only
    for the best *multiple* of ``q``: when ``b`` is close to one eigenvector (Ritz vectors are), any
    map that keeps that eigenvector scores zero whatever it does to the others, so nothing in it ties
    the modes' relative scales, which is what decides CG's convergence with a linear ``M``. Trained
    with it, the multilevel SPD network (:mod:`sciml.models.dcdm_multilevel`) got worse at every
    learning rate tried (73.5 -> 158 iterations at 128^2 in 900 steps); the energy error fixes the
    scale of every mode.

Solving (:class:`DCDM`, a method object of :func:`sciml.linalg.solve`)
    Section 1.6 of the research note. Every iteration takes ``q = f(r / ||r||)``, A-orthogonalises
    it against the last ``k`` directions, does an exact line search and recomputes the *true* residual
    ``b - A x``. The network runs in float32 and everything from the gathered direction on runs in
    float64. A poor network slows the iteration down, but it cannot make the A-norm of the error grow:
    every step is an exact line search along some direction.

Pitfall 1.9 of the note: the reference keeps solid cells as all-zero rows of an ``N^d`` matrix and lets
the network's output in them leak into its dot products. Here the matrices are over the fluid cells
only, and the network's output is gathered at them.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from ..errors import CheckpointError, ConfigError, NonFiniteError, ShapeError
from ..train.task import Task
from .solution import check_mask, check_system
from .solve import LinearMethod, from_grid, to_grid

__all__ = ["DCDM", "network_matrix", "DCDMLoss", "DCDMTask", "DCDMDataset", "dcdm_dataset", "save_weights", "WEIGHTS_DIR"]

#: Where :meth:`DCDM.pretrained` looks for ``dcdm_{dim}d.pt`` and ``dcdm_{dim}d.json``.
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

SPAN_BREAKDOWN = "breakdown: the network's direction lies in the span of the previous ones"


# -- checks ------------------------------------------------------------------------------------------
def _matrix(A: Any, where: str) -> tuple[sp.csr_matrix, int]:
    """``(A as float64 CSR, its size)`` checked: square, non-empty, finite."""
    if not sp.issparse(A) and np.ndim(A) != 2:
        raise ShapeError(f"{where} A", "a square matrix (scipy sparse or 2-D array)", np.shape(A))
    n = A.shape[0] if sp.issparse(A) else np.shape(A)[0]
    A, _, _ = check_system(A, np.zeros(n))
    return A, n


def _system(A: Any, mask: Any, where: str) -> tuple[sp.csr_matrix, np.ndarray]:
    """``(A as float64 CSR, mask as bool)`` checked: square, finite, one True cell per unknown."""
    A, n = _matrix(A, where)
    return A, check_mask(mask, n)


def _check_systems(systems: Sequence[tuple[Any, Any]], where: str) -> list[tuple[sp.csr_matrix, np.ndarray]]:
    """A non-empty list of checked ``(A, mask)`` pairs that all share one grid shape."""
    if isinstance(systems, tuple) and len(systems) == 2 and not isinstance(systems[0], (tuple, list)):
        systems = [systems]  # a single (A, mask) pair
    systems = list(systems)
    if not systems:
        raise ConfigError(f"{where}: expected at least one (A, mask) system, got none")
    out = []
    for i, pair in enumerate(systems):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ConfigError(f"{where}: system {i} should be an (A, mask) pair, got {type(pair).__name__}")
        out.append(_system(pair[0], pair[1], f"{where} system {i}"))
    shape = out[0][1].shape
    for i, (_, mask) in enumerate(out):
        if mask.shape != shape:
            raise ShapeError(f"{where} system {i} mask", f"the grid shape {shape} of system 0", mask.shape)
    return out


def _torch_sparse(A: sp.csr_matrix, device: torch.device) -> Tensor:
    """``A`` as a coalesced float32 COO tensor (COO: stable autograd through ``A @ dense``)."""
    coo = A.tocoo()
    indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    values = torch.from_numpy(coo.data.astype(np.float32))
    return torch.sparse_coo_tensor(indices, values, A.shape, device=device,
                                   check_invariants=True).coalesce()


# -- training data --------------------------------------------------------------------------------
class DCDMDataset(Dataset):
    """Right-hand sides of one or more systems of one grid shape, laid on the grid, for DCDM training.

    Item ``i`` is ``{"b": (1, *grid) float32, "mask": (1, *grid) float32, "system": long scalar}``, so
    that torch's default collation makes the batch that :meth:`DCDMTask.loss_terms` reads. Build it
    with :func:`dcdm_dataset`. The checked systems are kept in :attr:`systems`, to hand to
    :class:`DCDMTask`.
    """

    def __init__(self, systems: list[tuple[sp.csr_matrix, np.ndarray]], b: Tensor, system: Tensor,
                 x: Tensor | None = None) -> None:
        self.systems = systems
        self.shape = systems[0][1].shape
        self._b, self._system, self._x = b, system, x
        self._masks = [torch.from_numpy(mask.astype(np.float32))[None] for _, mask in systems]

    def __len__(self) -> int:
        return int(self._b.shape[0])

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        k = int(self._system[i])
        item = {"b": self._b[i], "mask": self._masks[k], "system": self._system[i]}
        if self._x is not None:
            item["x"] = self._x[i]
        return item


def dcdm_dataset(systems: Sequence[tuple[Any, Any]], rhs: Sequence[Any],
                 normalize: bool = True, with_solutions: bool = False) -> DCDMDataset:
    """A :class:`DCDMDataset` from systems and right-hand sides.

    Parameters
    ----------
    systems : list of (A, mask)
        Sparse SPD matrices over the fluid cells and their boolean fluid masks, all on grids of one shape
        (a single pair is accepted too).
    rhs : list of arrays, one per system
        Right-hand sides of system ``k``, either as vectors of its unknowns ``(m_k, n_k)`` or laid on the
        grid ``(m_k, *grid)``. For the grid form only the fluid cells are read. For example, take them
        from :func:`sciml.linalg.lanczos.training_rhs`.
    normalize : bool
        Scale every right-hand side to unit norm, as the reference does. At solve time the network
        sees ``r / ||r||``, so it should be trained on the same scale.
    with_solutions : bool
        Also solve ``A x = b`` (SuperLU, float64, one factorisation per system) and store ``x`` with
        ``b`` (item key ``"x"``), for the ``"energy"`` loss.

    Raises
    ------
    ConfigError, ShapeError, NonFiniteError
        If the counts or shapes disagree, a right-hand side is zero or not finite.
    """
    systems = _check_systems(systems, "dcdm_dataset")
    if len(systems) == 1 and not isinstance(rhs, (list, tuple)):
        rhs = [rhs]
    if len(rhs) != len(systems):
        raise ConfigError(f"dcdm_dataset: expected one right-hand-side array per system ({len(systems)}), "
                          f"got {len(rhs)}")
    shape = systems[0][1].shape
    grids, labels, solutions = [], [], []
    for k, ((A, mask), arr) in enumerate(zip(systems, rhs)):
        arr = np.asarray(arr, dtype=np.float64)
        n = A.shape[0]
        if arr.ndim == 1 + len(shape) and arr.shape[1:] == shape:
            arr = arr[:, mask]
        elif arr.ndim == 1 and arr.shape == (n,):
            arr = arr[None]
        elif not (arr.ndim == 2 and arr.shape[1] == n):
            grid_shape = ", ".join(map(str, shape))
            raise ShapeError(f"dcdm_dataset rhs[{k}]", f"(m, {n}) vectors or (m, {grid_shape}) grids",
                             arr.shape)
        if not np.isfinite(arr).all():
            raise NonFiniteError(f"dcdm_dataset rhs[{k}]: expected finite entries, got NaN or Inf")
        norms = np.linalg.norm(arr, axis=1)
        if (norms == 0).any():
            raise ConfigError(f"dcdm_dataset rhs[{k}]: right-hand side {int(np.argmin(norms))} is zero")
        if normalize:
            arr = arr / norms[:, None]
        grid = np.zeros((arr.shape[0], *shape), dtype=np.float32)
        grid[:, mask] = arr  # the leading axis is kept, the mask picks the fluid cells in C order
        grids.append(grid)
        if with_solutions:
            from scipy.sparse.linalg import splu

            x = splu(A.tocsc()).solve(arr.T).T
            sol = np.zeros_like(grid)
            sol[:, mask] = x
            solutions.append(sol)
        labels.append(np.full(arr.shape[0], k, dtype=np.int64))
    b = torch.from_numpy(np.concatenate(grids))[:, None]
    x = torch.from_numpy(np.concatenate(solutions))[:, None] if with_solutions else None
    return DCDMDataset(systems, b, torch.from_numpy(np.concatenate(labels)), x)


# -- the loss -------------------------------------------------------------------------------------
LOSS_KINDS = ("dcdm", "energy")


class DCDMLoss(nn.Module):
    """The scale-invariant DCDM loss ``||b - alpha A q||^2 / ||b||^2`` with ``alpha = (q.b) / (q.A q)``,
    or (``kind="energy"``) the relative energy error ``||q - x||_A^2 / ||x||_A^2`` (module notes).

    Parameters
    ----------
    systems : list of (A, mask), or a :class:`DCDMDataset`
        The systems that a batch's ``system`` entry indexes, all on one grid shape. The matrices are
        kept as float32 torch COO tensors and copied to the device of the batch on first use.
    kind : {"dcdm", "energy"}
        The loss; ``"energy"`` needs the solutions (``forward(..., x=...)``).
    """

    def __init__(self, systems: Sequence[tuple[Any, Any]] | DCDMDataset, kind: str = "dcdm") -> None:
        super().__init__()
        if isinstance(systems, DCDMDataset):
            systems = systems.systems
        if kind not in LOSS_KINDS:
            raise ConfigError(f"DCDMLoss kind: expected one of {list(LOSS_KINDS)}, got {kind!r}")
        self.kind = kind
        self.systems = _check_systems(systems, "DCDMLoss")
        self.shape = self.systems[0][1].shape
        # Not buffers: the matrices are data, not state, and must stay out of checkpoints.
        self._cache: dict[tuple[int, str], tuple[Tensor, Tensor]] = {}

    def _operator(self, k: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """``(A_k as float32 sparse, flat indices of its unknowns on the grid)`` on ``device``."""
        key = (k, str(device))
        if key not in self._cache:
            A, mask = self.systems[k]
            idx = torch.from_numpy(np.flatnonzero(mask)).to(device)  # C order: the unknowns' numbering
            self._cache[key] = (_torch_sparse(A, device), idx)
        return self._cache[key]

    def forward(self, q: Tensor, b: Tensor, system: Tensor, x: Tensor | None = None) -> Tensor:
        """Per-sample losses ``(B,)`` of directions ``q`` for right-hand sides ``b`` (both ``(B, 1, *grid)``)
        of the systems ``system`` ``(B,)``; ``x`` (same shape), the solutions, for ``kind="energy"``."""
        batch = q.shape[0]
        expected = (batch, 1, *self.shape)
        if self.kind == "energy" and x is None:
            raise ConfigError("DCDMLoss(kind='energy'): expected the solutions x (dcdm_dataset(..., "
                              "with_solutions=True)), got none")
        for name, t in (("q", q), ("b", b)) + ((("x", x),) if self.kind == "energy" else ()):
            if tuple(t.shape) != expected:
                raise ShapeError(f"DCDMLoss {name}", expected, tuple(t.shape))
        system = torch.as_tensor(system, device=q.device).reshape(-1).long()
        if system.shape[0] != batch:
            raise ShapeError("DCDMLoss system", (batch,), tuple(system.shape))
        if batch and (int(system.min()) < 0 or int(system.max()) >= len(self.systems)):
            raise ConfigError(f"DCDMLoss: system indices must lie in [0, {len(self.systems)}), got "
                              f"{int(system.min())}..{int(system.max())}")
        # Float32 whatever the network's precision, and outside autocast: q.A q and ||b||^2 are sums
        # over every unknown, and the sparse product (and its backward) wants one dtype throughout.
        with torch.autocast(device_type=q.device.type, enabled=False):
            if self.kind == "energy":
                return self._losses(q.reshape(batch, -1).float(), x.reshape(batch, -1).float(), system, energy=True)
            return self._losses(q.reshape(batch, -1).float(), b.reshape(batch, -1).float(), system)

    def _losses(self, qf: Tensor, bf: Tensor, system: Tensor, energy: bool = False) -> Tensor:
        """:meth:`forward` on flattened float32 grids ``(B, cells)``."""
        losses, rows_all = [], []
        for k in torch.unique(system).tolist():  # one sparse product per system in the batch
            A, idx = self._operator(k, qf.device)
            rows = torch.nonzero(system == k).reshape(-1)
            qk, bk = qf[rows][:, idx], bf[rows][:, idx]  # (n_b, n_k): the unknowns of system k
            if energy:  # bk holds the solutions x here
                e = qk - bk
                Ae, Ax = torch.sparse.mm(A, torch.cat([e, bk]).T.contiguous()).T.split(len(rows))
                losses.append((e * Ae).sum(1) / (bk * Ax).sum(1))
                rows_all.append(rows)
                continue
            Aq = torch.sparse.mm(A, qk.T.contiguous()).T
            qb, qAq = (qk * bk).sum(1), (qk * Aq).sum(1)
            # A zero direction has no best step; it leaves all of b (loss 1) instead of 0/0 = NaN.
            safe = qAq > 0
            alpha = torch.where(safe, qb / torch.where(safe, qAq, torch.ones_like(qAq)), torch.zeros_like(qb))
            residual = bk - alpha[:, None] * Aq
            losses.append((residual ** 2).sum(1) / (bk ** 2).sum(1))
            rows_all.append(rows)
        if not losses:
            return qf.new_zeros(0)
        out = torch.cat(losses)
        # Back to the batch's order, out of place so that autograd follows.
        return torch.zeros_like(out).index_copy(0, torch.cat(rows_all), out)


class DCDMTask(Task):
    """Trains a DCDM network with the unsupervised loss of :class:`DCDMLoss` (term ``"dcdm"``), or with
    the energy error of the solutions (``loss="energy"``, term ``"energy"``).

    Parameters
    ----------
    model : nn.Module
        The network, called as ``model(b, mask)`` on ``(B, 1, *grid)`` tensors (for example
        ``build_model("dcdm_net", ndim=2)``). Its ``model_spec`` is recorded in checkpoints.
    systems : list of (A, mask), or a :class:`DCDMDataset`
        The systems that the batches' ``system`` entries index.
    loss : {"dcdm", "energy"}
        :class:`DCDMLoss`'s kind; ``"energy"`` reads the batches' ``x`` (``with_solutions=True``).

    Notes
    -----
    A batch is ``{"b": (B, 1, *grid), "mask": (B, 1, *grid) float, "system": (B,) long}``, as a
    ``DataLoader`` over :func:`dcdm_dataset` makes it. The samples of a batch may come from different
    systems of the same grid shape.
    """

    def __init__(self, model: nn.Module, systems: Sequence[tuple[Any, Any]] | DCDMDataset,
                 loss: str = "dcdm") -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise ConfigError(f"DCDMTask model: expected an nn.Module, got {type(model).__name__}")
        self.model = model
        self.loss = DCDMLoss(systems, kind=loss)
        ndim = getattr(model, "ndim", None)
        if ndim is not None and ndim != len(self.loss.shape):
            raise ShapeError("DCDMTask systems' grid", f"a {ndim}-D grid for the {ndim}-D model",
                             self.loss.shape)
        self.model_spec = getattr(model, "model_spec", None)

    def loss_terms(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``{"dcdm": mean over the batch of ||b - alpha A q||^2 / ||b||^2}`` (or ``{"energy": mean of
        ||q - x||_A^2 / ||x||_A^2}``)."""
        keys = {"b", "mask", "system"} | ({"x"} if self.loss.kind == "energy" else set())
        if not isinstance(batch, Mapping) or not keys <= set(batch):
            got = sorted(batch) if isinstance(batch, Mapping) else type(batch).__name__
            raise ConfigError(f"DCDMTask batch: expected a dict with {sorted(keys)}, got {got}")
        q = self.model(batch["b"], batch["mask"])
        return {self.loss.kind: self.loss(q, batch["b"], batch["system"], batch.get("x")).mean()}


def network_matrix(model: nn.Module, mask: Tensor) -> Tensor:
    """A linear network as the dense matrix ``M`` (float64, ``(n, n)`` over the ``n`` True cells of the
    grid ``mask``, C order): column ``j`` is the network's output for the unit residual in cell ``j``.
    For checks on small grids (symmetry, definiteness); the model runs in its own dtype."""
    dtype = next(model.parameters()).dtype
    mask = mask.to(dtype)
    cells = torch.nonzero(mask.flatten()).flatten()
    basis = torch.zeros(len(cells), 1, *mask.shape, dtype=dtype)
    basis.view(len(cells), -1)[torch.arange(len(cells)), cells] = 1.0
    with torch.no_grad():
        out = model(basis, mask[None, None])
    return out.reshape(len(cells), -1)[:, cells].T.double()


# -- the solver -------------------------------------------------------------------------------------
@dataclass
class _State:
    """What :meth:`DCDM.setup` prepares for one matrix: the grid and where its unknowns lie on it."""

    n: int
    mask: np.ndarray | None
    mask_tensor: Tensor | None


class DCDM(LinearMethod):
    """The deep conjugate-direction method, a method object of :func:`sciml.linalg.solve`.

    Parameters
    ----------
    model : nn.Module, optional
        The network, called as ``model(r_grid, mask)`` on ``(1, 1, *grid)`` float32 tensors (a
        :class:`~sciml.models.dcdm_net.DCDMNet`). It is put in eval mode and moved to ``device``.
    k : int
        Directions kept for A-orthogonalisation (2 in the reference). With ``k = 0`` the method
        just follows the network, with an exact line search along each direction.
    device : str or torch.device
        Where the network runs. The Krylov arithmetic stays in float64 numpy on the CPU.
    network : callable, optional
        Instead of ``model``: a function from the normalised residual (a float64 vector of the
        unknowns) to the direction (a vector of the unknowns). Tests use it: the identity gives CG,
        and the exact inverse converges in one step. A method built this way needs no mask
        (``needs_mask`` is then False).
    span_tol : float
        Breakdown threshold. The iteration stops when A-orthogonalisation shrinks the direction's
        norm below ``span_tol`` times its norm before.

    Notes
    -----
    ``setup`` checks the mask and moves the network to its device. :func:`~sciml.linalg.solve` times
    it as set-up. ``run`` follows the protocol of :mod:`sciml.linalg.solve`: the driver records
    ``x0``, each iterate is recorded after its update, and the true residual that ``record`` computes
    (``record.residual``) is the next iteration's input. So DCDM pays for no extra matrix-vector
    product to get the true residual. ``q.A q <= 0`` ends the run with reason ``"not SPD: ..."``,
    which ``solve(..., throw=True)`` raises as NotSPDError. The default ``maxiter`` is ``10 n`` as
    for CG (the reference stops at 100: see :meth:`default_maxiter`).
    """

    name = "DCDM"
    needs_mask = True

    def __init__(
        self,
        model: nn.Module | None = None,
        k: int = 2,
        device: str | torch.device = "cpu",
        *,
        network: Callable[[np.ndarray], Any] | None = None,
        span_tol: float = 1e-10,
    ) -> None:
        if (model is None) == (network is None):
            raise ConfigError("DCDM: give exactly one of model (an nn.Module on grids) and network "
                              "(a function of vectors)")
        if model is not None and not isinstance(model, nn.Module):
            raise ConfigError(f"DCDM model: expected an nn.Module, got {type(model).__name__}; pass a "
                              "function of vectors as network=...")
        if network is not None and not callable(network):
            raise ConfigError(f"DCDM network: expected a callable, got {type(network).__name__}")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise ConfigError(f"DCDM k: expected an int >= 0, got {k!r}")
        if isinstance(span_tol, bool) or not isinstance(span_tol, (int, float)) or not 0 <= span_tol < 1:
            raise ConfigError(f"DCDM span_tol: expected a number in [0, 1), got {span_tol!r}")
        self.model, self.network, self.k = model, network, int(k)
        self.device = torch.device(device)
        self.span_tol = float(span_tol)
        # A plain function knows nothing of grids, so the driver need not ask for a mask.
        self.needs_mask = model is not None  # type: ignore[misc]

    def __repr__(self) -> str:
        what = type(self.model).__name__ if self.model is not None else "network=<function>"
        return f"DCDM({what}, k={self.k}, device={str(self.device)!r})"

    def default_maxiter(self, n: int) -> int:
        """``10 n``, as the CG family. The reference stops at 100, but on this package's obstacle
        systems a trained network needs more than that above about 64^2, and a solve that would
        converge should not raise DivergenceError for want of iterations."""
        return 10 * n

    # -- pretrained weights ----------------------------------------------------------------------
    @classmethod
    def pretrained(cls, dim: int = 2, k: int = 2, device: str | torch.device = "cpu",
                   weights_dir: str | Path | None = None) -> DCDM:
        """DCDM with the shipped network ``weights/dcdm_{dim}d.pt`` and its ``dcdm_{dim}d.json``.

        The JSON file holds at least ``{"model_spec": {"name": ..., "kwargs": {...}}}``, which names
        the network to rebuild. The ``.pt`` file holds its ``state_dict`` (or a Trainer checkpoint
        with the network under ``"model"``) and is loaded with ``weights_only=True``.
        :func:`save_weights` writes the pair. The JSON's contents are kept as the model's
        ``pretrained_metadata``.

        Raises
        ------
        CheckpointError
            If either file is missing or does not fit the network it describes.
        """
        from ..models.registry import model_from_spec

        if dim not in (2, 3) or isinstance(dim, bool):
            raise ConfigError(f"DCDM.pretrained dim: expected 2 or 3, got {dim!r}")
        folder = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
        weights, meta_file = folder / f"dcdm_{dim}d.pt", folder / f"dcdm_{dim}d.json"
        missing = [p.name for p in (weights, meta_file) if not p.is_file()]
        if missing:
            where = ("the package's weights folder" if weights_dir is None else "the given weights_dir")
            hint = (f"the {dim}-D weights have not been trained yet" if weights_dir is None
                    else "is it the folder benchmarks/dcdm_train.py --weights wrote to?")
            raise CheckpointError(f"DCDM.pretrained: {', '.join(missing)} not in {folder} ({where}); {hint} "
                                  "(train with benchmarks/dcdm_train.py)")
        try:
            meta = json.loads(meta_file.read_text())
            model = model_from_spec(meta["model_spec"])
            state = torch.load(weights, map_location="cpu", weights_only=True)
            if isinstance(state.get("model"), Mapping):  # a Trainer checkpoint keeps the network here
                state = state["model"]
            model.load_state_dict(state)
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
            raise CheckpointError(f"DCDM.pretrained: cannot load {weights} with {meta_file}: {exc}") from exc
        model.pretrained_metadata = meta
        return cls(model, k=k, device=device)

    # -- the method protocol -----------------------------------------------------------------------
    def setup(self, A: Any, mask: np.ndarray | None = None) -> _State:
        """Check the mask against ``A`` and the network, and put the network on its device."""
        A, n = _matrix(A, "DCDM")
        if self.model is None:  # a function of vectors: the mask is optional
            return _State(n, None if mask is None else check_mask(mask, n), None)
        if mask is None:
            raise ConfigError("DCDM: the network works on the grid; pass the fluid mask (mask=...) whose "
                              "True cells are the unknowns")
        mask = check_mask(mask, n)
        ndim = getattr(self.model, "ndim", mask.ndim)
        if ndim != mask.ndim:
            raise ShapeError("DCDM mask", f"a {ndim}-D grid for the {ndim}-D network", mask.shape)
        self.model.to(self.device).eval()
        mask_tensor = torch.from_numpy(mask.astype(np.float32)).to(self.device)[None, None]
        return _State(n, mask, mask_tensor)

    def direction(self, state: _State, r: np.ndarray) -> np.ndarray:
        """The network's direction for the (normalised) residual ``r``, as a float64 vector."""
        if self.network is not None:
            q = np.asarray(self.network(r.copy()), dtype=np.float64)  # a copy: the function may write
            if q.shape != (state.n,):
                raise ShapeError("DCDM network output", (state.n,), q.shape)
            return q
        grid = torch.from_numpy(to_grid(r, state.mask, np.float32)).to(self.device)[None, None]
        with torch.no_grad():
            out = self.model(grid, state.mask_tensor)
        if tuple(out.shape) != tuple(grid.shape):
            raise ShapeError("DCDM model output", tuple(grid.shape), tuple(out.shape))
        # Float64 from here on: the network is float32, but the Krylov arithmetic must not be.
        return from_grid(out[0, 0].cpu().numpy(), state.mask).astype(np.float64)

    def run(
        self,
        state: _State,
        A: Any,
        b: np.ndarray,
        x0: np.ndarray,
        rtol: float,
        maxiter: int,
        record: Callable[[np.ndarray], float],
    ) -> tuple[np.ndarray, int, str]:
        """Iterate from ``x0`` until the true relative residual is ``<= rtol`` or ``maxiter`` updates.

        Returns ``(x, iterations, reason)``. ``reason`` is ``"converged"``, ``"maxiter"``,
        ``"not SPD: ..."`` (a direction with ``q.A q <= 0``) or ``"breakdown: ..."`` (the network's
        direction was zero, non-finite or in the span of the kept directions). ``record(x)`` is called
        after every update and returns the true relative residual. If it has a ``residual``
        attribute, ``b - A x`` is read from there.
        """
        A = sp.csr_matrix(A, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        x = np.array(x0, dtype=np.float64, copy=True)  # x0 is the caller's: never modified
        r = getattr(record, "residual", None)
        r = b - A @ x if r is None else r
        # The last k directions p_j with A p_j and p_j.A p_j, newest last.
        kept: deque[tuple[np.ndarray, np.ndarray, float]] = deque(maxlen=self.k)
        for it in range(1, maxiter + 1):
            norm_r = float(np.linalg.norm(r))
            if norm_r == 0.0:  # x is exact (the driver stops before this; a bare caller may not)
                return x, it - 1, "converged"
            q = self.direction(state, r / norm_r)
            if not np.isfinite(q).all():
                return x, it - 1, f"breakdown: the network returned non-finite values at iteration {it}"
            norm_q = float(np.linalg.norm(q))
            if norm_q == 0.0:
                return x, it - 1, f"breakdown: the network returned a zero direction at iteration {it}"
            # Modified Gram-Schmidt in the A inner product: each coefficient uses the q of the step
            # before. That is more robust once the kept directions are only nearly A-orthogonal.
            for p, Ap, pAp in reversed(kept):
                q -= (q @ Ap) / pAp * p
            if float(np.linalg.norm(q)) <= self.span_tol * norm_q:
                return x, it - 1, f"{SPAN_BREAKDOWN} (iteration {it})"
            Aq = A @ q
            qAq = float(q @ Aq)
            if not np.isfinite(qAq):
                return x, it - 1, f"breakdown: q^T A q = {qAq} at iteration {it}"
            if qAq <= 0.0:
                # q is far from zero here (checked above), so this is a proof, not rounding.
                return x, it - 1, (f"not SPD: q^T A q = {qAq:.6g} <= 0 at iteration {it} "
                                   "(A is not positive definite)")
            x = x + (q @ r) / qAq * q  # exact line search; a new array, as record may keep x
            rel = record(x)
            fresh = getattr(record, "residual", None)
            # The TRUE residual, never a recurrence, so the network's errors do not build up.
            r = b - A @ x if fresh is None else fresh
            if rel is None:  # a bare record function that returns nothing
                norm_b = float(np.linalg.norm(b))
                rel = float(np.linalg.norm(r)) / (norm_b if norm_b > 0 else 1.0)
            if not np.isfinite(rel):
                return x, it, f"breakdown: non-finite residual at iteration {it}"
            if rel <= rtol:
                return x, it, "converged"
            kept.append((q, Aq, qAq))
        return x, maxiter, "maxiter"


def save_weights(model: nn.Module, path: str | Path, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write ``model``'s state dict to ``path`` (``.pt``) and its spec and ``metadata`` to the JSON beside it,
    each atomically.

    The pair is what :meth:`DCDM.pretrained` reads. ``model`` must have a ``model_spec`` (build it with
    :func:`sciml.models.build_model`). Returns the path of the JSON file.
    """
    spec = getattr(model, "model_spec", None)
    if spec is None:
        raise ConfigError("save_weights: the model has no model_spec; build it with sciml.models.build_model")
    from ..train.checkpoint import save_weights_pair

    return save_weights_pair(model.state_dict(), path, {"model_spec": spec, **dict(metadata or {})})
