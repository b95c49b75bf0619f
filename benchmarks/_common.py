"""What several benchmarks share: the machine they ran on, problem files as modules, resumable runs.

Partial results: after every finished run a driver writes ``<out>.partial.json`` (the settings and the
runs so far); ``--resume`` reuses the runs whose settings match, keyed by ``(what, seed)``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

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


def saved_plan(run_dir: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The plan of a long training run (``run_dir/plan.json``) when it was made with ``settings``, else
    None (no plan, or one with other settings: the caller starts afresh)."""
    path = run_dir / "plan.json"
    if not path.is_file():
        return None
    plan = json.loads(path.read_text())
    if plan["settings"] == settings:
        print(f"[plan] resuming {run_dir} ({plan['steps']} steps)", flush=True)
        return plan
    print(f"[plan] {run_dir} holds a run with other settings: starting afresh", flush=True)
    return None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; the platform's processor or machine elsewhere)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return cpu


def machine_info(threads: int) -> dict[str, Any]:
    """CPU model, cores, torch threads, versions and the load average when the benchmark started."""
    import numpy
    import torch

    return {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": threads, "python": platform.python_version(),
            "torch": torch.__version__, "numpy": numpy.__version__, "platform": platform.platform(),
            "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def problem_module(name: str) -> ModuleType:
    """``problems/<name>.py`` as a module, for its factories (``make_problem(...)``) and helpers."""
    path = ROOT / "problems" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"benchmark_problem_{name}", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def results_path(default: Path, out: Path | None, quick: bool) -> Path:
    """Where a run writes: ``--out`` if given; a smoke test (``--quick``) next to the committed results
    as ``NAME.quick.json`` (ignored by git), so that it never replaces measured numbers."""
    if out is not None:
        return out
    return default.with_name(default.stem + ".quick.json") if quick else default


def write_results(out: Path, report: dict[str, Any], table: str, quick: bool) -> None:
    """The report as JSON at ``out`` and, for a full run, the markdown ``table`` beside it (``.md``); a
    ``--quick`` run writes no table, so the committed one always comes from a full run."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str) + "\n")
    if not quick:
        out.with_suffix(".md").write_text(table)
    print("\n" + table)
    print(f"wrote {out}" + ("" if quick else f" and {out.with_suffix('.md').name}"), flush=True)
