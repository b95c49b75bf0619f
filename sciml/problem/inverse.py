"""Inverse problems: measurements of a forward problem in, its unknown coefficient out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .._checks import check_positive_int
from ..errors import ConfigError, ProblemError, UnknownNameError
from ..fields import Grid
from .core import Input, Problem

__all__ = ["InverseProblem", "NOISE_MODELS"]

NOISE_MODELS = ("relative", "multiplicative")



@dataclass
class InverseProblem(Problem):
    """Swap roles: measurements of a forward problem are the inputs, its coefficient the output.

    Build with :meth:`from_forward`; data are made by sampling the forward problem, solving it,
    observing the solution and keeping ``(measurements -> unknown coefficient)`` pairs.

    ``noise`` adds relative Gaussian noise to every measurement: ``m + noise * rms(m) * xi`` with
    ``xi`` standard normal at every node and ``rms(m)`` the root mean square of that sample's
    measurement, so the noise has about ``noise`` times the measurement's L2 norm (0.01 is "1%
    noise"). ``noise_model="multiplicative"`` draws ``m * (1 + noise * xi)`` instead, entry by entry
    (NIO's model for boundary measurements, whose entries differ in scale). The forward samples use the generator exactly as the forward problem does and the noise
    an independent child of it, so the same seed gives the same coefficients and solutions at every
    noise level. ``output_size`` says that the unknown is sought on a coarser grid of that many nodes
    per axis over the same box, a stride of the data grid (data still hold it on the data grid, as
    every sciml dataset holds inputs and outputs on one grid; :class:`~sciml.operators.OperatorTask`
    compares there). Both are recorded in ``params``.
    """

    forward: Problem | None = None
    unknown: str = ""
    noise: float = 0.0
    output_size: int | None = None
    noise_model: str = "relative"

    @classmethod
    def from_forward(cls, forward: Problem, unknown: str, measurements: Sequence[str], name: str | None = None,
                     noise: float = 0.0, output_size: int | None = None, grid: Grid | None = None,
                     noise_model: str = "relative") -> InverseProblem:
        """The inverse of ``forward``: ``measurements`` (names its ``observe`` returns) to its input ``unknown``.

        ``noise`` and ``output_size`` as in the class docstring; ``grid`` the default data grid
        (the forward problem's by default).
        """
        if forward.observe is None:
            raise ProblemError(f"problem {forward.name!r} has no observe(); it cannot be inverted")
        forward.input(unknown)  # raises if unknown is not an input
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not (np.isfinite(noise) and noise >= 0):
            raise ConfigError(f"InverseProblem noise: expected a finite number >= 0, got {noise!r}")
        if noise_model not in NOISE_MODELS:
            raise UnknownNameError("InverseProblem noise_model", noise_model, NOISE_MODELS)
        if output_size is not None and check_positive_int("InverseProblem output_size", output_size) < 2:
            raise ConfigError(f"InverseProblem output_size: expected at least 2 nodes, got {output_size}")
        # Measurements are data, not sampled: mark them as fixed placeholders (value 0) so the
        # generic input machinery validates names; make_samples produces the real values.
        inputs = [Input(m, value=0.0, description=f"measurement of {forward.name}") for m in measurements]
        params = {**forward.params, "noise": float(noise), "forward_fingerprint": forward.fingerprint()}
        if noise_model != "relative":  # recorded only where it differs: older datasets keep their settings
            params["noise_model"] = noise_model
        if output_size is not None:
            params["output_size"] = output_size
        extra = f" with {100 * noise:g}% noise" if noise else ""
        coarse = f" on {output_size} nodes per axis" if output_size is not None else ""
        return cls(
            name=name or f"{forward.name}_inverse",
            inputs=inputs,
            outputs=(unknown,),
            grid=grid or forward.grid,
            params=params,
            solve_stride=forward.solve_stride,
            array_shapes=forward.array_shapes,  # by name: a measurement keeps its shape as an input
            description=f"inverse of {forward.name}: {', '.join(measurements)}{extra} -> {unknown}{coarse}",
            forward=forward,
            unknown=unknown,
            noise=float(noise),
            output_size=output_size,
            noise_model=noise_model,
        )

    def make_samples(self, n: int, grid: Grid, seed: int | np.random.Generator) -> tuple[dict, dict]:
        assert self.forward is not None
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        fwd_inputs, fwd_outputs = self.forward.make_samples(n, grid, rng)
        measured = self.forward.observe(fwd_inputs, fwd_outputs, grid, dict(self.forward.params))
        missing = set(self.input_names) - set(measured)
        if missing:
            raise ProblemError(f"observe() of {self.forward.name!r} did not return {sorted(missing)}")
        measured = {k: np.asarray(measured[k], dtype=np.float64) for k in self.input_names}
        return self.add_noise(measured, rng.spawn(1)[0]), {self.unknown: fwd_inputs[self.unknown]}

    def add_noise(self, measured: Mapping[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``measured`` (``{name: (B, *grid)}``) with the relative Gaussian noise of the class docstring."""
        out = {name: np.asarray(measured[name], dtype=np.float64) for name in self.input_names}
        for name, m in out.items() if self.noise else ():  # one draw per measurement, in the problem's order
            if self.noise_model == "multiplicative":
                out[name] = m * (1.0 + self.noise * rng.standard_normal(m.shape))
                continue
            rms = np.sqrt(np.mean(m.reshape(m.shape[0], -1) ** 2, axis=1)).reshape((-1,) + (1,) * (m.ndim - 1))
            out[name] = m + self.noise * rms * rng.standard_normal(m.shape)
        return out
