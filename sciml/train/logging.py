"""Metrics log (JSON lines) and the loss-curve plot (progress on screen: :mod:`sciml.train.progress`).

``metrics.jsonl`` holds one JSON object per line, each with ``kind`` (``"train"``, ``"val"`` or
``"event"``), ``step`` (completed optimiser steps), ``epoch`` and ``time`` (seconds since the run
started), plus:

* train: ``phase``, ``lr`` (of the step), ``loss`` and ``loss/<term>`` (means over the steps since
  the previous record), and with fp16 ``amp_skipped`` (updates the GradScaler skipped so far);
* val: ``<set>/<metric>`` for every validation set;
* event: ``event`` (``"start"``, ``"resume"``, ``"phase"``, ``"rollback"``, ``"stop"``...) and details.

The file is appended to as the run goes, so a crashed run keeps its log; on resume, records past
the checkpoint's step are dropped, so the log of a resumed run reads like an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DatasetError
from .checkpoint import atomic_write_bytes

__all__ = ["MetricsLogger", "read_history", "plot_history", "write_run_summary"]


def _encode(record: Mapping[str, Any]) -> str:
    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return str(v)  # "nan" / "inf": valid JSON everywhere, unlike bare NaN
        return v

    return json.dumps({k: clean(v) for k, v in record.items()}, sort_keys=False)


def _decode_value(v: Any) -> Any:
    if isinstance(v, str) and v in ("nan", "inf", "-inf"):
        return float(v)
    return v


class MetricsLogger:
    """Append-only JSONL metrics log; keeps the records in memory too.

    Parameters
    ----------
    path : path or None
        The ``.jsonl`` file; None keeps the records in memory only (non-zero DDP ranks).
    """

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = None if path is None else Path(path)
        self.records: list[dict[str, Any]] = []
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.is_file():
                self.records = read_history(self.path)

    def log(self, record: Mapping[str, Any]) -> None:
        """Append one record (a flat dict of JSON-serialisable values)."""
        record = dict(record)
        if "kind" not in record or "step" not in record:
            raise ConfigError(f"metrics record: expected 'kind' and 'step' keys, got {sorted(record)}")
        self.records.append(record)
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(_encode(record) + "\n")

    def truncate_after(self, step: int) -> None:
        """Drop records with ``step`` greater than ``step`` (used when resuming)."""
        self.records = [r for r in self.records if int(r.get("step", 0)) <= step]
        if self.path is not None and self.path.is_file():
            text = "".join(_encode(r) + "\n" for r in self.records)
            atomic_write_bytes(self.path, text.encode("utf-8"))


def read_history(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Records of a ``metrics.jsonl`` file; a torn last line (crash mid-write) is ignored.

    Raises
    ------
    DatasetError
        If the file is missing or a line other than the last is not valid JSON.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such metrics file")
    lines = path.read_text(encoding="utf-8").splitlines()
    records = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            if i == len(lines) - 1:
                break  # a record torn by a crash; everything before it is intact
            raise DatasetError(f"{path}:{i + 1}: expected a JSON object per line ({exc})") from None
        if not isinstance(raw, dict):
            raise DatasetError(f"{path}:{i + 1}: expected a JSON object, got {type(raw).__name__}")
        records.append({k: _decode_value(v) for k, v in raw.items()})
    return records


_NOT_PLOTTED = ("kind", "step", "epoch", "time", "lr", "phase", "amp_skipped")


def _series(records: Iterable[Mapping[str, Any]], kind: str) -> dict[str, tuple[list[float], list[float]]]:
    """Numeric series of one record kind against steps; a step logged twice (retried after a
    rollback) keeps its last value, so curves do not double back."""
    by_key: dict[str, dict[float, float]] = {}
    for rec in records:
        if rec.get("kind") != kind:
            continue
        for key, value in rec.items():
            if key in _NOT_PLOTTED or isinstance(value, bool):
                continue
            if isinstance(value, (int, float)):
                by_key.setdefault(key, {})[float(rec["step"])] = float(value)
    return {key: (sorted(points), [points[x] for x in sorted(points)]) for key, points in by_key.items()}


def plot_history(
    jsonl_path: str | os.PathLike[str], png_path: str | os.PathLike[str], *, keys: Sequence[str] | None = None
) -> Path:
    """Plot training losses and validation metrics of a ``metrics.jsonl`` file into a PNG.

    Left panel: ``loss`` and ``loss/<term>`` against steps; right panel (if any): validation
    metrics. Log scale where all values are positive; rollbacks and phase switches are marked
    by vertical lines. matplotlib is imported here, through its Agg canvas, so no GUI backend is
    touched and the global pyplot state is left alone.

    Parameters
    ----------
    keys : sequence of str, optional
        Only plot these series.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    records = read_history(jsonl_path)
    train, val = _series(records, "train"), _series(records, "val")
    if keys is not None:
        keys = list(keys)
        unknown = sorted(set(keys) - set(train) - set(val))
        if unknown:
            available = sorted(set(train) | set(val))
            raise ConfigError(f"plot_history: unknown keys {unknown}; available {available}")
        train = {k: v for k, v in train.items() if k in keys}
        val = {k: v for k, v in val.items() if k in keys}
    if not train and not val:
        raise DatasetError(f"{jsonl_path}: no train or val records to plot")
    panels = [(p, title) for p, title in ((train, "training loss"), (val, "validation")) if p]
    fig = Figure(figsize=(6.0 * len(panels), 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    events = [r for r in records if r.get("kind") == "event" and r.get("event") in ("rollback", "phase")]
    for i, (series, title) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        positive = True
        for name, (xs, ys) in series.items():
            finite = [(x, y) for x, y in zip(xs, ys) if math.isfinite(y)]
            if not finite:
                continue
            positive &= all(y > 0 for _, y in finite)
            ax.plot(*zip(*finite), label=name, lw=1.5 if name == "loss" else 1.0)
        for ev in events:
            ax.axvline(float(ev["step"]), color="red" if ev["event"] == "rollback" else "gray", ls=":", lw=1)
        if positive:
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=110)
    return png_path


def write_run_summary(out_dir: str | os.PathLike[str], result: Any) -> None:
    """``result.json`` (how the run ended) and ``loss_curve.png`` in the run directory.

    ``result`` is the Trainer's :class:`~sciml.train.trainer.TrainResult`.
    """
    out_dir = Path(out_dir)
    checkpoint = None if result.checkpoint is None else Path(result.checkpoint).name
    summary = {"reason": result.reason, "message": result.message, "steps": result.steps, "epochs": result.epochs,
               "metrics": result.metrics, "rollbacks": result.rollbacks, "wall_time": result.wall_time,
               "checkpoint": checkpoint}
    atomic_write_bytes(out_dir / "result.json", json.dumps(summary, indent=1).encode())
    try:
        plot_history(out_dir / "metrics.jsonl", out_dir / "loss_curve.png")
    except ImportError as exc:  # matplotlib is optional for training
        warnings.warn(f"loss_curve.png not written: {exc}", RuntimeWarning, stacklevel=2)
