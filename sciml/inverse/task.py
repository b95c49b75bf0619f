"""Learning an unknown coefficient from boundary measurements: the Task NIO and its baselines train with.

A batch is ``{"m": (B, L, M), "y": (B, C, *grid)}`` (:class:`~sciml.inverse.data.MeasurementData`).
The task normalises the measurements, calls the network, decodes its output and compares it with
the unknown on the grid.

* **Measurement normalisation** (:meth:`MeasurementTask.from_dataset`). Probe ``l``'s measurement is
  centred by its training mean at every sensor and scaled by one number per probe (the RMS of the
  centred training data), so that no single low-variance sensor (a corner, a symmetry point) is
  blown up when noisy data arrive (``normalize="global"``: one mean and scale for all). Statistics
  are indexed by probe, so a subset of the probes is normalised exactly as in training: say which
  probes a subset holds (``patterns=``).
* **Any number of measurements.** NIO averages over measurements and takes any subset; a network
  that reads a fixed number (``model.n_measurements``, the flattened DeepONet and the FNO on stacked
  measurements) is refused any other count with an error that says so, instead of answering
  garbage.
* **Losses.** ``"rel_l1"`` (NIO's: ``mean|p - y| / mean|y|`` per sample) or ``"rel_l2"``, on decoded
  outputs; ``"bce"`` for a 0/1 target (an inclusion map, the EIT transformer's): the network outputs
  logits, the loss is the per-pixel binary cross-entropy with logits weighted per sample by
  ``1 / sqrt(sum of the target)`` (normalised to mean 1: small inclusions count, as in the paper),
  and the task's answer is ``sigmoid(logits)``, a probability. Metrics are always the relative L1
  and L2 of the answer (for ``"bce"`` of the probabilities, the map that is reported: the reference
  computes them on raw logits).
* **Out of distribution.** The per-sample RMS of the normalised measurements is profiled on the
  training set; an input far outside it (noise never seen in training, another kind of probe, a
  coefficient far from the training family) is flagged by the solver.
"""

from __future__ import annotations

import inspect
import json
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.normalize import IdentityNormalizer, UnitGaussianNormalizer, normalizer_from_state
from ..errors import ConfigError, DTypeError, ShapeError, UnknownNameError
from ..grid import Grid
from ..train.task import Task

__all__ = ["MeasurementTask", "MeasurementProfile", "relative_l1_per_sample"]

_LOSSES = ("rel_l1", "rel_l2", "bce")


def relative_l1_per_sample(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean|p - y| / mean|y|`` per sample (NIO's error, in the reference's metric)."""
    diff = (prediction - target).flatten(1).abs().mean(1)
    return diff / target.flatten(1).abs().mean(1).clamp_min(1e-30)


def _relative_l2_per_sample(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (prediction - target).flatten(1).norm(dim=1) / target.flatten(1).norm(dim=1).clamp_min(1e-30)


class MeasurementProfile:
    """What the normalised training measurements looked like: the range of their per-sample RMS."""

    def __init__(self, rms_max: float, rms_median: float) -> None:
        self.rms_max, self.rms_median = float(rms_max), float(rms_median)

    @classmethod
    def fit(cls, z: torch.Tensor) -> MeasurementProfile:
        rms = z.double().flatten(1).pow(2).mean(1).sqrt()
        return cls(float(rms.max()), float(rms.median()))

    def check(self, z: torch.Tensor) -> list[str]:
        """Messages for samples far outside the training data (non-finite, or 1.5x the largest RMS)."""
        rms = z.double().flatten(1).pow(2).mean(1).sqrt()
        out = []
        for i, value in enumerate(rms.tolist()):
            if not math.isfinite(value):
                out.append(f"sample {i}: the measurements hold NaN or Inf")
            elif value > 1.5 * self.rms_max + 1e-12:
                out.append(f"sample {i}: the measurements lie outside the training data (RMS {value:.3g} in "
                           f"training units; training samples reached {self.rms_max:.3g}, median "
                           f"{self.rms_median:.3g}): more noise or another kind of coefficient than trained on")
        return out

    def to_json(self) -> str:
        return json.dumps({"rms_max": self.rms_max, "rms_median": self.rms_median})

    @classmethod
    def from_json(cls, text: str) -> MeasurementProfile:
        data = json.loads(text)
        return cls(data["rms_max"], data["rms_median"])


class MeasurementTask(Task):
    """Boundary measurements ``(B, L, M)`` to the unknown ``(B, C, *grid)`` (see the module docstring).

    Parameters
    ----------
    model : nn.Module
        ``(B, L', M) -> (B, C, *grid)`` (NIO, ``flat_deeponet``, ``extended_fno``), built by the registry.
    grid : Grid
        The grid of the unknown.
    measurement_name : str
        The problem's name for the measurement array (``"dtn"``, ``"voltages"``...).
    output_names : sequence of str
    n_patterns, n_sensors : int
        L and M of the training data.
    loss : {"rel_l1", "rel_l2"}
    problem : dict, optional
        ``{"name": ..., "params": ...}`` recorded in checkpoints.
    """

    def __init__(self, model: nn.Module, grid: Grid, measurement_name: str, output_names: Any, n_patterns: int,
                 n_sensors: int, loss: str = "rel_l1", problem: dict[str, Any] | None = None,
                 probe_tags: bool = False) -> None:
        super().__init__()
        if loss not in _LOSSES:
            raise UnknownNameError("measurement loss", loss, _LOSSES)
        if not isinstance(grid, Grid):
            raise ConfigError(f"MeasurementTask: expected a Grid, got {type(grid).__name__}")
        self.model = model
        self.grid, self.measurement_name = grid, str(measurement_name)
        self.output_names = tuple(output_names)
        self.n_patterns, self.n_sensors, self.loss = int(n_patterns), int(n_sensors), loss
        self.problem_spec = dict(problem or {})
        self.register_buffer("m_mean", torch.zeros(self.n_patterns, self.n_sensors))
        self.register_buffer("m_scale", torch.ones(self.n_patterns, 1))
        # Probe tags: each probe's normalised mean response, appended to its measurement (see from_dataset)
        self.probe_tags = bool(probe_tags)
        self.register_buffer("m_tag", torch.zeros(self.n_patterns, self.n_sensors))
        self.y_normalizer: Any = IdentityNormalizer()
        self.logits = loss == "bce"  # the network's output is a logit map, the answer its sigmoid
        self.profile: MeasurementProfile | None = None
        self._takes_out_shape = "out_shape" in inspect.signature(model.forward).parameters

    # -- construction ----------------------------------------------------------------------------------
    @classmethod
    def from_dataset(cls, model: nn.Module, data: Any, loss: str = "rel_l1", problem: dict[str, Any] | None = None,
                     normalize: str | None = None, probe_tags: bool | None = None) -> MeasurementTask:
        """A task whose normalisers are fitted on ``data`` (the training split only).

        ``normalize``: ``"probe"`` (default) centres every probe's measurement by its training mean at
        every sensor and scales it per probe; ``"global"`` uses one mean and one scale for everything,
        which keeps each probe's background response in the data (a network that averages over
        measurements could tell the probes apart by it; measured on a small Calderon run, NIO did
        worse with it: 7.6% against 6.5% relative L1).

        ``probe_tags`` (default: on for networks that take any number of measurements, NIO): append to
        every centred measurement its probe's training-mean response (normalised over all probes), so
        the network reads ``(B, L, 2 M)``. NIO's shared branch sees one measurement at a time and its
        output is averaged over measurements: centred measurements of different probes look alike,
        so without a tag the branch cannot tell which probe made which perturbation and the average
        mixes them. Measured on Calderon (17 x 17, 512 training samples, 25 epochs, NIO without random
        subsets): relative L1 median 4.6% -> 4.2% with the tags, with half of the probes 7.5% -> 5.7%;
        a flattened DeepONet reached 1.7% on the same budget, so the tags are not the whole story.
        """
        if problem is None:
            problem = {"name": data.attrs.get("problem"), "params": data.attrs.get("params", {})}
        if probe_tags is None:
            probe_tags = getattr(model, "n_measurements", None) is None
        task = cls(model, data.grid, data.measurement_name, data.output_names, data.n_measurements,
                   data.n_sensors, loss=loss, problem=problem, probe_tags=probe_tags)
        normalize = "probe" if normalize is None else normalize
        if normalize not in ("probe", "global"):
            raise UnknownNameError("measurement normalisation", normalize, ("probe", "global"))
        m = data.m.double()
        if normalize == "probe":
            mean = m.mean(0)
            scale = (m - mean).pow(2).mean(dim=(0, 2)).sqrt()  # one number per probe
        else:
            mean = torch.full_like(m[0], float(m.mean()))
            scale = torch.full((m.shape[1],), float((m - m.mean()).pow(2).mean().sqrt()), dtype=m.dtype)
        scale = scale.clamp_min(1e-6 * float(scale.max()) + 1e-30)
        task.m_mean.copy_(mean.float())
        task.m_scale.copy_(scale[:, None].float())
        background = m.mean(0)
        task.m_tag.copy_(((background - background.mean()) / background.std().clamp_min(1e-30)).float())
        expected = getattr(model, "n_sensors", None)
        width = data.n_sensors * (2 if probe_tags else 1)
        if expected is not None and expected != width:
            raise ConfigError(f"MeasurementTask: the network reads {expected} values per measurement, the task hands it "
                              f"{width} ({data.n_sensors} sensors{' and as many probe-tag values' if probe_tags else ''}); "
                              f"build it with n_sensors={width}")
        if loss == "bce":
            values = torch.unique(data.y)
            if not bool(((values == 0) | (values == 1)).all()):
                raise ConfigError(f"MeasurementTask loss 'bce': expected a 0/1 target (an inclusion map), got values "
                                  f"{values[:6].tolist()}...; use rel_l1 or rel_l2")
        else:
            task.y_normalizer = UnitGaussianNormalizer(mode="channel").fit(data, key="y")
        task.profile = MeasurementProfile.fit(task.encode(data.m))
        return task

    @classmethod
    def from_config(cls, model: nn.Module, config: dict[str, Any]) -> MeasurementTask:
        """Rebuild from :meth:`config` (a checkpoint's record); normalisers come with the state."""
        return cls(model, Grid.from_dict(config["grid"]), config["measurement_name"], config["outputs"],
                   config["n_patterns"], config["n_sensors"], loss=config["loss"], problem=config["problem"],
                   probe_tags=config.get("probe_tags", False))

    def config(self) -> dict[str, Any]:
        return {"grid": self.grid.to_dict(), "measurement_name": self.measurement_name,
                "outputs": list(self.output_names), "n_patterns": self.n_patterns, "n_sensors": self.n_sensors,
                "loss": self.loss, "problem": self.problem_spec, "probe_tags": self.probe_tags}

    # -- inputs ----------------------------------------------------------------------------------------
    @property
    def fixed_measurements(self) -> int | None:
        """The number of measurements the network must be given, or None (any, like NIO)."""
        n = getattr(self.model, "n_measurements", None)
        return None if n is None else int(n)

    def check_measurements(self, m: Any, patterns: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(m, pattern indices)`` validated: shape ``(B, L', M)``, float, probes known and distinct."""
        if not isinstance(m, torch.Tensor):
            raise DTypeError(f"measurements: expected a torch.Tensor, got {type(m).__name__}")
        if not m.is_floating_point():
            raise DTypeError(f"measurements: expected floating-point values, got {m.dtype}")
        if m.ndim != 3 or m.shape[2] != self.n_sensors or not 1 <= m.shape[1] <= self.n_patterns:
            raise ShapeError(f"{self.measurement_name} measurements",
                             f"(B, L, {self.n_sensors}) with 1 <= L <= {self.n_patterns} (one value per boundary "
                             f"node of the {'x'.join(map(str, self.grid.shape))} grid)", tuple(m.shape))
        count = int(m.shape[1])
        if patterns is None:
            if count != self.n_patterns:
                raise ConfigError(
                    f"{count} of the {self.n_patterns} training measurements were given: say which probes they "
                    f"are with patterns=[...] (indices in 0..{self.n_patterns - 1}, in the order given)")
            index = torch.arange(count, device=m.device)
        else:
            index = torch.as_tensor(np.asarray(patterns), device=m.device)
            if (index.ndim != 1 or len(index) != count or index.dtype in (torch.float32, torch.float64, torch.bool)
                    or len(set(index.tolist())) != count or int(index.min()) < 0
                    or int(index.max()) >= self.n_patterns):
                raise ConfigError(f"patterns: expected {count} distinct probe indices in 0..{self.n_patterns - 1} "
                                  f"(one per measurement given), got {patterns!r}")
        fixed = self.fixed_measurements
        if fixed is not None and count != fixed:
            raise ShapeError(f"{type(self.model).__name__} input",
                             f"exactly {fixed} measurements (this network reads a fixed number; NIO takes any)",
                             tuple(m.shape))
        return m, index.long()

    def encode(self, m: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised measurements (probe ``index[k]`` for row ``k``; all probes in order by default)."""
        mean, scale = (self.m_mean, self.m_scale) if index is None else (self.m_mean[index], self.m_scale[index])
        return (m - mean.to(m.dtype)) / scale.to(m.dtype)

    # -- the Task contract -----------------------------------------------------------------------------
    def forward(self, m: torch.Tensor, patterns: Any = None) -> torch.Tensor:
        """Physical measurements ``(B, L', M)`` to the physical unknown ``(B, C, *grid)`` (for ``"bce"``
        the probability map)."""
        out = self._raw(m, patterns)
        return torch.sigmoid(out) if self.logits else self.y_normalizer.decode(out)

    def _raw(self, m: torch.Tensor, patterns: Any = None) -> torch.Tensor:
        """The network's own output (normalised values, or logits)."""
        m, index = self.check_measurements(m, patterns)
        z = self.encode(m, index)
        if self.probe_tags:
            z = torch.cat([z, self.m_tag[index].to(z.dtype).expand(z.shape[0], -1, -1)], dim=-1)
        return self.model(z, out_shape=self.grid.shape) if self._takes_out_shape else self.model(z)

    def _errors(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        prediction, y = self(batch["m"]), batch["y"]
        if prediction.shape != y.shape:
            raise ShapeError("network output", tuple(y.shape), tuple(prediction.shape))
        return relative_l1_per_sample(prediction.float(), y.float()), _relative_l2_per_sample(prediction.float(),
                                                                                              y.float())

    def loss_terms(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.logits:
            logits, y = self._raw(batch["m"]).float(), batch["y"].float()
            if logits.shape != y.shape:
                raise ShapeError("network output", tuple(y.shape), tuple(logits.shape))
            per_sample = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
            weight = y.flatten(1).sum(1).clamp_min(1.0).rsqrt()
            return {"bce": (per_sample.flatten(1).mean(1) * weight / weight.mean()).mean()}
        rel_l1, rel_l2 = self._errors(batch)
        return {self.loss: (rel_l1 if self.loss == "rel_l1" else rel_l2).mean()}

    @torch.no_grad()
    def metrics(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        rel_l1, rel_l2 = self._errors(batch)
        return {"rel_l1": float(rel_l1.mean()), "rel_l2": float(rel_l2.mean())}

    def per_sample_errors(self, data: Any, patterns: Any = None, batch_size: int = 64) -> dict[str, np.ndarray]:
        """Relative L1 and L2 of every sample of ``data`` (all probes, or the subset ``patterns``), in
        eval mode whatever mode the task is in (:meth:`~sciml.train.Task.evaluating`)."""
        device = self.m_mean.device
        l1, l2 = [], []
        with self.evaluating():
            for start in range(0, len(data), batch_size):
                m, y = data.m[start:start + batch_size].to(device), data.y[start:start + batch_size].to(device)
                if patterns is not None:
                    m = m[:, torch.as_tensor(np.asarray(patterns), device=device)]
                prediction = self(m, patterns)
                l1.append(relative_l1_per_sample(prediction.float(), y.float()).cpu())
                l2.append(_relative_l2_per_sample(prediction.float(), y.float()).cpu())
        return {"rel_l1": torch.cat(l1).double().numpy(), "rel_l2": torch.cat(l2).double().numpy()}

    # -- checkpoints -----------------------------------------------------------------------------------
    @property
    def model_spec(self) -> dict[str, Any] | None:
        return getattr(self.model, "model_spec", None)

    def state_for_checkpoint(self) -> dict[str, Any]:
        profile = {} if self.profile is None else {"input_profile": self.profile.to_json()}
        return {**profile, "measurement": json.dumps(self.config()), "y_normalizer": self.y_normalizer.state_dict()}

    def load_state_for_checkpoint(self, state: dict[str, Any]) -> None:
        self.y_normalizer = normalizer_from_state(state["y_normalizer"])
        text = state.get("input_profile")
        self.profile = None if text is None else MeasurementProfile.from_json(text)
