"""One optimisation step: forward, combiner, DDP average, NaN/Inf guard, optimiser update.

:class:`StepEngine` is the numerical core of the Trainer, kept apart from the bookkeeping
(epochs, logging, checkpoints). Its guarantee: when a loss term, a gradient or (L-BFGS) a new
iterate is not finite, :class:`NonFiniteStep` is raised and the weights are exactly what they were
before the step: first-order optimisers are never called, L-BFGS iterates are restored.

Cost of the guard: one host read per step, which also delivers the logged term values (so logging
adds no synchronisation of its own). It reads the terms, the combined loss and one screening scalar
per gradient (its sum of squares, finite iff every entry is, barring overflow, which is then
confirmed entry by entry). Deferring the check to every k-th step would leave k-1 updates applied
after a bad one, breaking the guarantee above, so it is not done.

Mixed precision: the forward pass (``task.loss_terms``) runs under autocast; the combiner runs
outside it. With fp16 the combiner differentiates ``scale * term`` with the GradScaler's current
scale (a power of two) and leaves ``p.grad`` scaled; ``scaler.unscale_`` then recovers the true
gradient and skips the step on overflow, which is normal fp16 behaviour and not divergence, so
gradients are checked by the guard only in fp32/bf16. Loss terms are checked in every precision.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from ..errors import ConfigError
from ..optim.combine import Combiner, check_terms
from .device import autocast
from .distributed import DistInfo, all_reduce_mean, average_gradients
from .task import Task

__all__ = ["StepEngine", "NonFiniteStep"]


class NonFiniteStep(Exception):
    """A loss term, gradient or iterate was NaN/Inf; the weights were left untouched."""

    def __init__(self, what: str, detail: str) -> None:
        super().__init__(f"non-finite {what}: {detail}")
        self.what, self.detail = what, detail


def _is_compile_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith(("torch._dynamo", "torch._inductor"))


class StepEngine:
    """Computes optimisation steps for a task.

    Parameters
    ----------
    task : Task
    params : sequence of Parameter
        The trained parameters (``requires_grad``), in a fixed order.
    combiner : Combiner
    dist : DistInfo
    device : torch.device
    amp_dtype : torch.dtype or None
        Autocast dtype (None for fp32).
    scaler : torch.amp.GradScaler or None
        fp16 loss scaler.
    grad_clip : float or None
        Global gradient-norm clipping for first-order optimisers.
    compiled : bool
        The model was compiled: a failure of the first step inside torch._dynamo / inductor is
        reported as a ConfigError about compile=True.
    """

    def __init__(
        self, task: Task, params: Sequence[Tensor], combiner: Combiner, dist: DistInfo, device: torch.device,
        amp_dtype: torch.dtype | None, scaler: Any, grad_clip: float | None, compiled: bool = False,
    ) -> None:
        self.task, self.params, self.combiner = task, list(params), combiner
        self.dist, self.device, self.amp_dtype = dist, device, amp_dtype
        self.scaler, self.grad_clip = scaler, grad_clip
        self.term_names: list[str] = []
        #: the last step's update was skipped by the fp16 GradScaler (gradient overflow)
        self.skipped = False
        self._compile_checked = not compiled
        #: wall seconds of the first two steps of this engine (the first includes torch.compile's compilation)
        self.first_steps: list[float] = []
        # float64 bookkeeping of the terms where the device has it (MPS has no float64)
        self._vec_dtype = torch.float32 if device.type == "mps" else torch.float64

    def step(self, batch: Any, optimizer: torch.optim.Optimizer, closure_based: bool) -> list[float]:
        """One update; returns ``[term values..., combined loss]`` averaged over ranks.

        Raises
        ------
        NonFiniteStep
            Weights untouched.
        ConfigError
            If ``compile=True`` fails on this platform at the first step.
        """
        self.skipped = False
        start = time.perf_counter() if len(self.first_steps) < 2 else None
        try:
            if closure_based:
                values = self._closure_step(batch, optimizer)
            else:
                values = self._first_order_step(batch, optimizer)
        except NonFiniteStep:
            raise
        except Exception as exc:
            if not self._compile_checked and _is_compile_error(exc):
                # the first paragraph of dynamo's message names the backend and its error
                head = " ".join(str(exc).strip().split("\n\n")[0].split())[:400]
                raise ConfigError(f"compile=True failed on this platform ({type(exc).__name__}: {head}); "
                                  "use compile=False") from exc
            raise
        self._compile_checked = True
        if start is not None:
            self.first_steps.append(time.perf_counter() - start)
        return values

    def timing(self) -> dict[str, float]:
        """``first_step_s`` and ``compile_s``: the first step's wall time and its excess over the second's
        (compilation and warm-up; with torch's on-disk compile cache a later run compiles in seconds)."""
        if not self.first_steps:
            return {}
        out = {"first_step_s": round(self.first_steps[0], 4)}
        if len(self.first_steps) > 1:
            out["compile_s"] = round(max(0.0, self.first_steps[0] - self.first_steps[1]), 4)
        return out

    # -- pieces ---------------------------------------------------------------------------------
    def forward_backward(self, batch: Any, scale: float, grad_check: bool = False) -> tuple[list[float], Tensor]:
        """Loss terms, combiner (sets ``p.grad``), DDP average.

        Returns ``values = [terms..., combined]`` as floats (averaged over ranks) and the combined loss
        as a tensor (the value L-BFGS minimises). With ``grad_check`` the values continue with one
        number per set gradient (after the DDP average) that is finite when every entry of that
        gradient is (see :meth:`_grad_screens`), so that one host transfer serves the log and the
        whole NaN/Inf guard.
        """
        if self.amp_dtype is None:  # no context manager at all in full precision (cheaper per step)
            terms = self.task.loss_terms(batch)
        else:
            with autocast(self.device, self.amp_dtype):
                terms = self.task.loss_terms(batch)
        names = check_terms(terms, f"{type(self.task).__name__}.loss_terms")
        if names != self.term_names:
            if self.term_names:
                # the log, the NaN guard and stateful combiners rely on a fixed set of terms
                raise ConfigError(f"{type(self.task).__name__}.loss_terms returned terms {names}, earlier "
                                  f"{self.term_names}; a task must return the same terms at every step")
            self.term_names = names
        reduce = None
        if self.dist.is_distributed and self.combiner.reduces_itself:
            def reduce(t: Tensor) -> Tensor:
                return all_reduce_mean(t, self.dist)
        loss = self.combiner(terms, self.params, scale=scale, reduce=reduce)
        parts = [*terms.values(), loss]
        if not self.dist.is_distributed:
            if grad_check:
                parts.extend(self._grad_screens())
            if self.device.type == "cpu" and len(parts) <= 4:
                # On the CPU reading a scalar is one small op and no synchronisation, cheaper than
                # stack + read: every op costs microseconds in a small full-batch model's step.
                return [t.item() for t in parts], loss
            # one transfer from an accelerator; stack promotes half-precision terms
            return torch.stack([t.detach().reshape(()) for t in parts]).tolist(), loss
        vec = torch.stack([t.detach().reshape(()) for t in parts]).to(self._vec_dtype)
        if self.combiner.reduces_itself:  # gradients are global already
            vec = all_reduce_mean(vec, self.dist)
        else:  # gradients and terms in one collective
            vec = average_gradients(self.params, self.dist, extra=vec)
        if grad_check:
            screens = self._grad_screens()
            if screens:
                vec = torch.cat([vec, torch.stack(screens).to(vec.dtype)])
        return vec.tolist(), vec[len(parts) - 1]

    def _grad_screens(self) -> list[Tensor]:
        """One scalar per set gradient, finite when all its entries are (barring overflow).

        The sum of squares (one dot product for a single flat gradient, otherwise one multi-tensor
        norm kernel) is several times cheaper than ``isfinite().all()`` or the max-abs norm, which have
        no vectorised CPU kernels. It overflows for entries around 1e19 in float32: :meth:`_check_screens`
        confirms an alarm entry by entry.
        """
        grads = [p.grad for p in self.params if p.grad is not None]
        if not grads:
            return []
        if len(grads) == 1 and grads[0].ndim == 1:
            return [torch.dot(grads[0], grads[0])]
        return list(torch._foreach_norm(grads, 2))

    def _split(self, values: list[float]) -> tuple[list[float], list[float]]:
        n = len(self.term_names) + 1
        return values[:n], values[n:]

    def check_values(self, values: Sequence[float]) -> None:
        """Raise NonFiniteStep naming every non-finite loss term (or the combined loss)."""
        names = [*self.term_names, "combined"]
        bad = [f"{n}={v}" for n, v in zip(names, values) if not math.isfinite(v)]
        if bad:
            raise NonFiniteStep("loss term", ", ".join(bad))

    def check_grads(self) -> None:
        """Raise NonFiniteStep naming the parameters with NaN/Inf gradients."""
        screens = self._grad_screens()
        if screens:
            self._check_screens(torch.stack(screens).tolist())

    def _check_screens(self, screens: Sequence[float]) -> None:
        """Given :meth:`_grad_screens` values: confirm an alarm entry by entry, raise NonFiniteStep."""
        if all(math.isfinite(n) for n in screens):
            return
        names = [n for n, p in self.task.named_parameters()
                 if p.grad is not None and not bool(torch.isfinite(p.grad).all())]
        if names:
            raise NonFiniteStep("gradient", f"NaN/Inf in the gradient of {names[:5]}")
        # every entry is finite: only the sum of squares overflowed, the step is legitimate

    def _first_order_step(self, batch: Any, optimizer: torch.optim.Optimizer) -> list[float]:
        scale = 1.0
        if self.scaler is not None:  # scale() also initialises a fresh or just-loaded scaler
            scale = float(self.scaler.scale(torch.ones((), device=self.device)))
        # fp16 gradients are checked by the scaler (an overflow is a skipped step, not divergence);
        # otherwise one host read gives the log values and everything the guard checks
        values, _ = self.forward_backward(batch, scale, grad_check=self.scaler is None)
        values, screens = self._split(values)
        self.check_values(values)
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)
        else:
            self._check_screens(screens)
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        if self.scaler is not None:
            before = self.scaler.get_scale()
            self.scaler.step(optimizer)
            self.scaler.update()
            # the scaler skips the update (and backs off) when the fp16 gradients overflowed
            self.skipped = self.scaler.get_scale() < before
        else:
            optimizer.step()
        return values

    def _closure_step(self, batch: Any, optimizer: torch.optim.Optimizer) -> list[float]:
        """L-BFGS: the closure re-evaluates terms and gradients; every evaluation is guarded."""
        first: list[list[float]] = []
        backup = [p.detach().clone() for p in self.params]

        def closure() -> Tensor:
            values, loss = self.forward_backward(batch, 1.0, grad_check=True)
            values, screens = self._split(values)
            self.check_values(values)
            self._check_screens(screens)
            if not first:
                first.append(values)
            return loss

        try:
            optimizer.step(closure)
            if not all(bool(torch.isfinite(p).all()) for p in self.params):
                raise NonFiniteStep("parameter", "L-BFGS produced non-finite weights")
        except NonFiniteStep:
            with torch.no_grad():  # the line search may have moved the weights before the bad value
                for p, b in zip(self.params, backup):
                    p.copy_(b)
            raise
        return first[0]
