"""Continue a killed or finished run from its newest good checkpoint, whatever it trained."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import ConfigError
from ..problem import load_problem
from .common import RUN_FILE, OperatorRun
from .deeponet import train_deeponet
from .operator import train_operator

__all__ = ["resume_operator"]


def resume_operator(run_dir: str | os.PathLike[str], progress: bool | None = None) -> OperatorRun:
    """Continue a run from its newest good checkpoint with the settings in ``run.json``."""
    run_dir = Path(run_dir)
    path = run_dir / RUN_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a run directory (no {RUN_FILE}); start it with `sciml train`")
    s = json.loads(path.read_text())
    problem = load_problem(s["problem"]["path"] or s["problem"]["name"])
    if s.get("kind") == "deeponet":
        return train_deeponet(
            problem, model_kwargs=s["model_kwargs"], n_train=s["n_train"], n_test=s["n_test"],
            resolution=s["resolution"], max_sensors=s["max_sensors"], out_dir=run_dir, steps=s["steps"], lr=s["lr"],
            loss=s["loss"], normalize=s["normalize"], device=s["device"], seed=s["seed"],
            checkpoint_every=s["checkpoint_every"], progress=progress, resume=True)
    return train_operator(
        problem, model=s["model"], model_kwargs=s["model_kwargs"], data=s["data"], n_train=s["n_train"],
        n_test=s["n_test"], out_dir=run_dir, epochs=s["epochs"], batch_size=s["batch_size"], lr=s["lr"],
        weight_decay=s["weight_decay"], schedule=s["schedule"], loss=s["loss"], device=s["device"],
        precision=s["precision"], compile=s["compile"], seed=s["seed"], checkpoint_every=s["checkpoint_every"],
        progress=progress, resume=True,
    )
