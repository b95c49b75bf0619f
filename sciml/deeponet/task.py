"""DeepONet training: the Task the Trainer runs (the sensors and data live in ``deeponet_data``).

:class:`DeepONetTask` trains full-batch from data it holds (``Trainer(task, train_data=None, ...)``,
no data loader in the loop) or from given ``{"u", "x", "y"}`` batches. :class:`Sensors`,
:class:`DeepONetData` and :func:`make_deeponet_data` are re-exported here from
:mod:`sciml.deeponet.data`.

Full-batch training keeps the training set on the task's device as non-persistent buffers, so a
step does no host-device copy and no collation: the loop is forward, loss, backward, update.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_name
from ..errors import ConfigError, ShapeError
from ..models.deeponet import relative_l2_per_function
from ..train.task import Task
from .data import QUERIES, DeepONetData, Sensors, make_deeponet_data

__all__ = ["Sensors", "DeepONetData", "make_deeponet_data", "DeepONetTask", "QUERIES"]

_LOSSES = ("mse", "rel_l2")


def _all_in_mode(module: torch.nn.Module, mode: bool) -> bool:
    """Whether ``module`` and all its submodules have ``training == mode``.

    Walks ``_modules`` directly: ``Module.modules()`` goes through two generator layers per module,
    several times the cost of this check for a model of a few modules.
    """
    if module.training is not mode:
        return False
    return all(_all_in_mode(child, mode) for child in module._modules.values() if child is not None)


# -- the task --------------------------------------------------------------------------------------
class DeepONetTask(Task):
    """Supervised DeepONet training; full batch from held data, or from ``{"u", "x", "y"}`` batches.

    Parameters
    ----------
    model : DeepONet
        The network (built by the registry to be rebuildable from checkpoints).
    sensors : Sensors
        Where the branch reads the inputs (must match ``model.n_sensors``).
    output_names : sequence of str
        One name per output channel.
    train : DeepONetData, optional
        Training set, kept on the device; ``loss_terms(None)`` uses all of it (full batch).
    loss : {"mse", "rel_l2"}
        Mean squared error over all values (the paper's), or the mean per-function relative L2.
    normalize : bool
        Standardise each input's sensor values and each output channel with statistics of
        ``train`` (stored in checkpoints); the loss is then taken on standardised outputs.
    problem : Problem or dict, optional
        The problem (or ``{"name", "params", "path"}``), recorded for the
        :class:`~sciml.deeponet.solver.PointSolver`.
    """

    def __init__(
        self,
        model: nn.Module,
        sensors: Sensors,
        output_names: Sequence[str],
        *,
        train: DeepONetData | None = None,
        loss: str = "mse",
        normalize: bool = False,
        problem: Any = None,
    ) -> None:
        super().__init__()
        if not isinstance(sensors, Sensors):
            raise ConfigError(f"DeepONetTask: expected Sensors, got {type(sensors).__name__}")
        check_name("DeepONet loss", loss, _LOSSES)
        n_sensors, n_out = getattr(model, "n_sensors", None), getattr(model, "n_outputs", None)
        if n_sensors != sensors.size:
            raise ShapeError("DeepONetTask sensors vs branch", f"{n_sensors} sensors (the branch's input)",
                             (sensors.size,))
        self.output_names = tuple(output_names)
        if n_out != len(self.output_names):
            raise ConfigError(f"DeepONetTask: the model has {n_out} outputs, got names "
                              f"{list(self.output_names)}")
        if getattr(model, "coord_dim", sensors.grid.ndim) != sensors.grid.ndim:
            raise ConfigError(f"DeepONetTask: the trunk reads {model.coord_dim} coordinates, the sensors' "
                              f"grid is {sensors.grid.ndim}-D")
        if not isinstance(normalize, bool):
            raise ConfigError(f"DeepONetTask normalize: expected a bool, got {normalize!r}")
        self.model = model
        self.sensors = sensors
        self.loss = loss
        self.normalize = normalize
        self.problem_spec = _problem_spec(problem)
        self.register_buffer("u_shift", torch.zeros(sensors.size))
        self.register_buffer("u_scale", torch.ones(sensors.size))
        self.register_buffer("y_shift", torch.zeros(n_out))
        self.register_buffer("y_scale", torch.ones(n_out))
        self._has_train = False
        if normalize:
            if train is None:
                raise ConfigError("DeepONetTask: normalize=True needs train data to fit the statistics")
            self._fit_normalizer(train)
        if train is not None:
            self.set_train(train)

    @classmethod
    def from_config(cls, model: nn.Module, config: Mapping[str, Any]) -> DeepONetTask:
        """Rebuild a task from :meth:`config` (normalisation statistics come with the weights)."""
        try:
            task = cls(model, Sensors.from_dict(config["sensors"]), config["outputs"], loss=config["loss"],
                       problem=config.get("problem"))
            normalize = config["normalize"]
        except KeyError as exc:
            raise ConfigError(f"DeepONetTask.from_config: missing key {exc} in {sorted(config)}") from None
        if not isinstance(normalize, bool):
            raise ConfigError(f"DeepONetTask.from_config: normalize must be a bool, got {normalize!r}")
        task.normalize = normalize
        return task

    def train(self, mode: bool = True) -> DeepONetTask:
        """Set train/eval mode; a no-op when every submodule is in that mode already.

        The Trainer calls ``task.train()`` before every step; ``nn.Module.train`` re-assigns the flag
        on every submodule (tens of microseconds), which is a sizeable part of a small DeepONet's
        step. Checking first is much cheaper and changes nothing.
        """
        if _all_in_mode(self, mode):
            return self
        return super().train(mode)

    # -- data and normalisation -------------------------------------------------------------------
    def _check_data(self, data: Any) -> DeepONetData:
        if not isinstance(data, DeepONetData):
            raise ConfigError(f"DeepONetTask: expected DeepONetData, got {type(data).__name__}")
        if data.u.shape[1] != self.sensors.size or data.y.shape[1] != len(self.output_names):
            expected = f"((N, {self.sensors.size}), (N, {len(self.output_names)}, P))"
            raise ShapeError("DeepONet data (u, y)", expected, (tuple(data.u.shape), tuple(data.y.shape)))
        return data

    @torch.no_grad()
    def _fit_normalizer(self, data: DeepONetData) -> None:
        data = self._check_data(data)
        start = 0
        for idx in self.sensors.nodes.values():  # one mean/std per input function, not per sensor
            block = data.u[:, start:start + len(idx)].double()
            self.u_shift[start:start + len(idx)] = block.mean()
            self.u_scale[start:start + len(idx)] = block.std().clamp_min(1e-12)
            start += len(idx)
        y = data.y.double().transpose(0, 1).reshape(len(self.output_names), -1)
        self.y_shift.copy_(y.mean(1))
        self.y_scale.copy_(y.std(1).clamp_min(1e-12))

    def set_train(self, data: DeepONetData) -> None:
        """Hold ``data`` (on the task's device, encoded once) for full-batch steps."""
        data = self._check_data(data)
        device = self.u_shift.device
        u, y = data.u.to(device), data.y.to(device)
        if self.normalize:
            u, y = self._encode_u(u), (y - self.y_shift[:, None]) / self.y_scale[:, None]
        # non-persistent: the data move with .to(device) but stay out of checkpoints
        self.register_buffer("_train_u", u.contiguous(), persistent=False)
        self.register_buffer("_train_x", data.x.to(device).contiguous(), persistent=False)
        self.register_buffer("_train_y", y.contiguous(), persistent=False)
        self._has_train = True

    def _encode_u(self, u: torch.Tensor) -> torch.Tensor:
        return (u - self.u_shift) / self.u_scale if self.normalize else u

    def _decode(self, out: torch.Tensor) -> torch.Tensor:
        return out * self.y_scale[:, None] + self.y_shift[:, None] if self.normalize else out

    # -- predictions --------------------------------------------------------------------------------
    def forward(self, u: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Physical predictions ``(N, C, P)`` from physical sensor values ``(N, m)`` and points."""
        return self._decode(self.model(self._encode_u(u), x))

    def loss_terms(self, batch: Any) -> dict[str, torch.Tensor]:
        if batch is None:
            if not self._has_train:
                raise ConfigError("DeepONetTask: no batch and no training data held (pass train=...)")
            u, x, target = self._train_u, self._train_x, self._train_y
        else:
            u, x, y = _unpack(batch)
            u = self._encode_u(u)
            target = (y - self.y_shift[:, None]) / self.y_scale[:, None] if self.normalize else y
        if self.loss == "mse":
            mse = getattr(self.model, "mse", None)  # DeepONet fuses the loss into its forward pass
            return {"mse": mse(u, x, target) if mse is not None else F.mse_loss(self.model(u, x), target)}
        fused = getattr(self.model, "relative_l2", None)
        if fused is not None and not self.normalize:  # normalised: the error is taken in physical units
            return {"rel_l2": fused(u, x, target)}
        pred = self.model(u, x)
        # the relative error is taken in physical units
        return {"rel_l2": relative_l2_per_function(self._decode(pred), self._decode(target)).mean()}

    @torch.no_grad()
    def metrics(self, batch: Any) -> dict[str, float]:
        if batch is None:
            if not self._has_train:
                raise ConfigError("DeepONetTask.metrics: no batch and no training data held")
            pred = self._decode(self.model(self._train_u, self._train_x))
            y = self._decode(self._train_y)
        else:
            u, x, y = _unpack(batch)
            pred = self(u, x)
        out = {"mse": float(F.mse_loss(pred, y))}
        if y.shape[-1] > 1:  # a relative error per function needs several points per function
            out["rel_l2"] = float(relative_l2_per_function(pred, y).mean())
        return out

    @torch.no_grad()
    def evaluate(self, data: DeepONetData, batch_size: int = 1024) -> dict[str, Any]:
        """Test metrics in the papers' terms: MSE over all values and per-function relative L2.

        Returns ``{"mse", "rel_l2_mean", "rel_l2_median", "rel_l2"}`` (the last an array per
        function; the relative errors only with several points per function).
        """
        data = self._check_data(data)
        device = self.u_shift.device
        sq, count, rel = 0.0, 0, []
        for start in range(0, len(data), batch_size):
            part = data.subset(slice(start, start + batch_size)).to(device)
            pred = self(part.u, part.x)
            sq += float(((pred.double() - part.y.double()) ** 2).sum())
            count += part.y.numel()
            rel.append(relative_l2_per_function(pred.double(), part.y.double()).cpu().numpy())
        out: dict[str, Any] = {"mse": sq / count}
        if data.y.shape[-1] > 1:
            errors = np.concatenate(rel)
            out.update(rel_l2_mean=float(errors.mean()), rel_l2_median=float(np.median(errors)),
                       rel_l2=errors)
        return out

    # -- checkpoint ---------------------------------------------------------------------------------
    @property
    def model_spec(self) -> dict[str, Any] | None:
        return getattr(self.model, "model_spec", None)

    def state_for_checkpoint(self) -> dict[str, Any]:
        return {"deeponet": json.dumps(self.config())}

    def config(self) -> dict[str, Any]:
        """JSON-ready description (sensors, names, loss, normalisation, problem) to rebuild the task."""
        return {"sensors": self.sensors.to_dict(), "outputs": list(self.output_names), "loss": self.loss,
                "normalize": self.normalize, "problem": self.problem_spec}

    def load_state_for_checkpoint(self, state: dict[str, Any]) -> None:
        info = json.loads(state["deeponet"])
        sensors = Sensors.from_dict(info["sensors"])
        if sensors.size != self.sensors.size or tuple(info["outputs"]) != self.output_names:
            raise ConfigError("DeepONetTask: the checkpoint's sensors or outputs differ from this task's")
        self.sensors, self.loss = sensors, info["loss"]
        self.normalize, self.problem_spec = bool(info["normalize"]), info["problem"]


def _unpack(batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if not isinstance(batch, Mapping) or not {"u", "x", "y"} <= set(batch):
        raise ConfigError(f"DeepONetTask: expected a batch {{'u', 'x', 'y'}}, got {type(batch).__name__}"
                          + (f" with keys {sorted(batch)}" if isinstance(batch, Mapping) else ""))
    return batch["u"], batch["x"], batch["y"]


def _problem_spec(problem: Any) -> dict[str, Any] | None:
    from ..problem import Problem

    if problem is None:
        return None
    if isinstance(problem, Problem):
        return {"name": problem.name, "params": problem.params, "path": problem.source}
    if isinstance(problem, Mapping) and "name" in problem:
        return dict(problem)
    raise ConfigError(f"DeepONetTask problem: expected a Problem or {{'name': ...}}, got {problem!r}")
