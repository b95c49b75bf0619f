"""Partial results of the benchmarks that spawn one process per run, so an interrupted one can resume.

After every finished run the driver writes ``<out>.partial.json`` (the settings and the runs so far);
``--resume`` reuses the runs whose settings match, keyed by ``(what, seed)``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

_NOT_SETTINGS = ("worker", "out", "resume", "seeds", "jobs")


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """The arguments that change results (not where they go, which seeds, how many at once)."""
    return json.loads(json.dumps({k: v for k, v in vars(args).items() if k not in _NOT_SETTINGS}, default=str))


def save_partial(path: Path, runs: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> None:
    """Write the runs finished so far next to the final results."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"settings": settings(args), "runs": runs}, default=str))
    tmp.replace(path)  # atomic: an interrupted write never leaves half a file


def load_partial(path: Path, args: argparse.Namespace, key: str) -> dict[tuple[str, int], dict[str, Any]]:
    """Runs of an interrupted benchmark with the same settings, by ``(run[key], run["seed"])``."""
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    if data.get("settings") != settings(args):
        print(f"{path}: other settings, starting afresh", flush=True)
        return {}
    return {(r[key], r["seed"]): r for rs in data["runs"].values() for r in rs}
