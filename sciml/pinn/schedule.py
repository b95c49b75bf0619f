"""When a PINN task's collocation points change (:class:`PointSchedule`) and which sampler moves
them (:func:`get_sampler`: a static method, RAR, RAD or the adversarial AAS).

Kept apart from :mod:`~sciml.pinn.sampling` because AAS builds on that module's Sampler while the
factory here names AAS: the imports run ``schedule -> aas -> sampling``, one way.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import ConfigError, UnknownNameError
from .aas import AAS
from .sampling import METHODS, RAD, RAR, Sampler

__all__ = ["PointSchedule", "get_sampler"]


class PointSchedule:
    """When a PINN task's collocation points change: fresh draws and adaptive moves (a mixin).

    The task provides ``resample_every``, ``resample_until``, ``sampler``, ``rng``, ``domain``,
    ``_step``, ``_fixed``, ``_draw()``, ``_store(name, points)``, ``point_sets()``,
    ``pointwise_residual(x)``, ``_point_set_names()`` and ``_check_point_set(name)``; the Trainer
    calls :meth:`sample` before and :meth:`on_step_end` after every step. The same state makes the
    task's checkpoint (:meth:`state_for_checkpoint`).
    """

    def _resampling(self) -> bool:
        return self.resample_until is None or self._step < self.resample_until

    def sample(self) -> None:
        """Draw fresh points when ``resample_every`` says so (called by the Trainer before each step)."""
        if (self.resample_every is not None and self._step > 0 and self._step % self.resample_every == 0
                and self._resampling() and getattr(self, "_drawn_at", -1) != self._step):
            self._drawn_at = self._step
            self._draw()

    def on_step_end(self, step: int) -> None:
        """Track the step count; let an adaptive sampler move the interior points."""
        self._step = int(step)
        if self.sampler.adaptive and "interior" not in self._fixed and self._resampling():
            points = self.point_sets()["interior"]
            new = self.sampler.adapt(self._step, points, self.pointwise_residual, self.domain, self.rng)
            if new is not None:
                self._store("interior", new)


    # -- checkpoint ----------------------------------------------------------------------------------
    def state_for_checkpoint(self) -> dict[str, Any]:
        """Point sets, their RNG state, the step counter and the sampler's own state (plain data)."""
        sets = {name: getattr(self, f"_x_{name}").detach().cpu() for name in self._point_set_names()}
        return {"rng": json.dumps(self.rng.bit_generator.state), "points": sets, "step": self._step,
                "sampler": self.sampler.state_for_checkpoint()}

    def load_state_for_checkpoint(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_for_checkpoint`."""
        missing = {"rng", "points", "step"} - set(state)
        if missing:
            raise ConfigError(f"{type(self).__name__} checkpoint state lacks {sorted(missing)}")
        self.rng.bit_generator.state = json.loads(state["rng"])
        self._step = int(state["step"])
        self.sampler.load_state_for_checkpoint(state.get("sampler") or {}, self.domain)
        for name, x in state["points"].items():
            self._check_point_set(name)  # raises on a point set this task does not have
            self._store(name, x.double().numpy())


_NAMED: dict[str, type[Sampler]] = {"rar": RAR, "rad": RAD}


def get_sampler(spec: str | Sampler) -> Sampler:
    """A sampler from an instance, a static method name or ``"rar"`` / ``"rad"`` / ``"aas"`` (defaults)."""
    if isinstance(spec, Sampler):
        return spec
    if isinstance(spec, str):
        if spec in METHODS:
            return Sampler(spec)
        if spec in _NAMED:
            return _NAMED[spec]()
        if spec == "aas":
            return AAS()
        raise UnknownNameError("sampler", spec, [*METHODS, *_NAMED, "aas"])
    raise ConfigError(f"sampler: expected a method name, 'rar', 'rad', 'aas' or a Sampler, got {spec!r}")
