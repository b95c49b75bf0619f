"""Crash-safe, pickle-free checkpoints and the RNG state they carry.

Layout of a run directory::

    run/
      ckpt_00000100.pt   one file per save, named by the number of completed steps
      ckpt_00000200.pt
      latest             JSON index: newest file name and sha256 of every retained checkpoint

Writing (:func:`save_checkpoint`) is atomic: the bytes go to a hidden temporary file in the same
directory, are flushed and ``fsync``-ed, the file is ``os.replace``-d onto its final name and the
directory is fsynced; only then is ``latest`` rewritten the same way. A crash at any moment leaves
either the old or the new state, never a half-written file under a checkpoint name.

Reading (:func:`load_checkpoint`) always uses ``torch.load(weights_only=True)``: the unpickler only
rebuilds tensors and plain containers, so a crafted file whose objects would run code on load
(``__reduce__`` calling ``os.system``) is rejected before anything runs. Every failure (missing or
truncated file, flipped bytes, sha256 mismatch with the index, foreign or newer format, missing
keys, unsafe payload) raises :class:`~sciml.errors.CheckpointError` naming the file and the reason.
:func:`find_resumable` returns the newest checkpoint that loads, warning about and skipping
corrupt newer ones.

Everything stored is plain data so that ``weights_only=True`` can load it: the Python ``random``
state as a list of ints, numpy's legacy global state as a dict of a tensor and numbers, JSON
strings for the model and problem specs.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import random
import re
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "REQUIRED_KEYS",
    "checkpoint_name",
    "list_checkpoints",
    "save_checkpoint",
    "load_checkpoint",
    "load_latest",
    "find_resumable",
    "capture_rng_state",
    "restore_rng_state",
    "seed_everything",
    "atomic_write_bytes",
    "save_weights_pair",
]

FORMAT = "sciml-checkpoint"
FORMAT_VERSION = 1
INDEX_NAME = "latest"
#: keys every checkpoint written by the Trainer holds (checked on load)
REQUIRED_KEYS = (
    "format", "format_version", "versions", "step", "epoch", "batch_in_epoch",
    "model", "optimizer", "rng", "model_spec", "problem",
)
_NAME_RE = re.compile(r"^ckpt_(\d{8,})\.pt$")
_PLAIN = (int, float, bool, str, bytes, complex, type(None), torch.Size)


def checkpoint_name(step: int) -> str:
    """File name of the checkpoint after ``step`` completed steps: ``ckpt_{step:08d}.pt``."""
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise CheckpointError(f"checkpoint step: expected an int >= 0, got {step!r}")
    return f"ckpt_{step:08d}.pt"


def list_checkpoints(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Checkpoint files in ``run_dir``, oldest first (by step number in the name)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in run_dir.iterdir() if (m := _NAME_RE.match(p.name)) and p.is_file()]
    return [p for _, p in sorted(found)]


# -- atomic file writing -------------------------------------------------------------------------
def _fsync_dir(directory: Path) -> None:
    """Persist a rename: fsync the directory entry (not possible on every platform, e.g. Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` via a fsynced temporary file in the same directory and a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def save_weights_pair(state: Mapping[str, Any], path: str | os.PathLike[str], meta: Mapping[str, Any]) -> Path:
    """Shipped weights: ``state`` (tensors, moved to the CPU) to ``path`` and ``meta`` as JSON beside it
    (``path`` with the suffix ``.json``), each written atomically; the JSON last, so that a present JSON
    means its weights are complete. Returns the JSON's path. Loaded with ``torch.load(...,
    weights_only=True)``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in state.items()}, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return atomic_write_bytes(path.with_suffix(".json"), (json.dumps(dict(meta), indent=2, sort_keys=True)
                                                          + "\n").encode())


# -- the index file ------------------------------------------------------------------------------
def _read_index(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / INDEX_NAME
    if not path.is_file():
        return None
    try:
        index = json.loads(path.read_text())
        if not isinstance(index, dict) or not isinstance(index.get("checkpoints"), list):
            raise ValueError("not a checkpoint index")
        return index
    except (OSError, ValueError) as exc:
        warnings.warn(f"{path}: unreadable checkpoint index ({exc}); checkpoints are not verified by sha256",
                      RuntimeWarning, stacklevel=3)
        return None


def _indexed_sha(path: Path) -> str | None:
    index = _read_index(path.parent)
    if index is None:
        return None
    for entry in index["checkpoints"]:
        if isinstance(entry, dict) and entry.get("file") == path.name:
            return entry.get("sha256")
    return None


def _versions() -> dict[str, str]:
    from .. import __version__

    return {"sciml": str(__version__), "torch": str(torch.__version__), "python": platform.python_version()}


def _check_plain(obj: Any, where: str) -> None:
    """Refuse at save time what ``weights_only=True`` could not load back later.

    Exact types on purpose: subclasses of the plain types (``numpy.float64`` is a float,
    ``torch.__version__`` a str, a namedtuple a tuple) pickle as their own class, which the safe
    unpickler rejects.
    """
    kind = type(obj)
    if kind in (dict, OrderedDict):
        for key, value in obj.items():
            if type(key) not in (str, int):
                raise CheckpointError(f"checkpoint entry {where}: keys must be str or int, got {key!r}")
            _check_plain(value, f"{where}[{key!r}]")
    elif kind in (list, tuple, set):
        for i, value in enumerate(obj):
            _check_plain(value, f"{where}[{i}]")
    elif not (kind in _PLAIN or isinstance(obj, (torch.Tensor, torch.dtype, torch.device))):
        raise CheckpointError(
            f"checkpoint entry {where}: {kind.__module__}.{kind.__name__} cannot be loaded with "
            "weights_only=True; store tensors, plain numbers, strings, lists or dicts"
        )


def save_checkpoint(
    run_dir: str | os.PathLike[str], state: Mapping[str, Any], *, step: int, keep: int | None = None
) -> Path:
    """Write ``state`` as ``run_dir/ckpt_{step:08d}.pt`` atomically and update the ``latest`` index.

    Parameters
    ----------
    run_dir : path
        Run directory (created if needed).
    state : mapping
        Plain data (tensors, numbers, strings, lists, dicts). ``format``, ``format_version``,
        ``versions`` and ``step`` are added.
    step : int
        Completed steps; names the file.
    keep : int, optional
        Keep only the newest ``keep`` checkpoints (older ones are deleted after the index no
        longer lists them).

    Returns
    -------
    Path
        The checkpoint file.
    """
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
        raise CheckpointError(f"keep: expected None or an int >= 1, got {keep!r}")
    if not isinstance(state, Mapping):
        raise CheckpointError(
            f"save_checkpoint: expected a mapping of plain data, got {type(state).__name__}")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    name = checkpoint_name(step)
    payload = dict(state)
    payload.update(format=FORMAT, format_version=FORMAT_VERSION, versions=_versions(), step=step)
    _check_plain(payload, "state")
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    for stale in run_dir.glob(".ckpt_*.pt.tmp.*"):  # left by a writer that was killed
        stale.unlink(missing_ok=True)
    path = atomic_write_bytes(run_dir / name, data)

    index = _read_index(run_dir) or {"checkpoints": []}
    entries = [
        e for e in index["checkpoints"]
        if isinstance(e, dict) and e.get("file") != name and (run_dir / str(e.get("file"))).is_file()
    ]
    entries.append({"file": name, "sha256": digest, "step": step})
    entries.sort(key=lambda e: int(e.get("step", -1)))
    dropped = entries[:-keep] if keep is not None else []
    entries = entries[-keep:] if keep is not None else entries
    index = {"format": FORMAT + "-index", "latest": name, "sha256": digest, "step": step,
             "checkpoints": entries}
    atomic_write_bytes(run_dir / INDEX_NAME, json.dumps(index, indent=1).encode())
    if keep is not None:
        kept = {e["file"] for e in entries}
        for old in {str(e.get("file")) for e in dropped} | {p.name for p in list_checkpoints(run_dir)}:
            if old not in kept and _NAME_RE.match(old):
                (run_dir / old).unlink(missing_ok=True)
    return path


def load_checkpoint(
    path: str | os.PathLike[str], *, map_location: Any = "cpu", required: tuple[str, ...] = REQUIRED_KEYS
) -> dict[str, Any]:
    """Load and validate one checkpoint file with ``torch.load(weights_only=True)``.

    The file's sha256 is compared with the run's ``latest`` index when the index lists it.

    Raises
    ------
    CheckpointError
        Naming the file and the reason: missing, unreadable, sha256 mismatch, not loadable
        safely (truncated, corrupt, or holding objects other than plain data), foreign format,
        unsupported format version, or missing keys.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc})") from exc
    expected = _indexed_sha(path)
    if expected is not None:
        got = hashlib.sha256(data).hexdigest()
        if got != expected:
            raise CheckpointError(
                f"{path}: sha256 mismatch, the file is corrupt or was modified "
                f"(expected {expected[:16]}..., got {got[:16]}...)"
            )
    try:
        payload = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as exc:  # every failure of the safe unpickler means: do not trust this file
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        # the safe unpickler's own verdict ("Unsupported global: GLOBAL posix.system") when present
        reason = next((ln for ln in lines if "WeightsUnpickler error" in ln), lines[0] if lines else "")
        raise CheckpointError(
            f"{path}: cannot be loaded safely with weights_only=True "
            f"(truncated, corrupt or unsafe payload): {type(exc).__name__}: {reason[:300]}"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        got = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{path}: not a sciml checkpoint (expected format {FORMAT!r}, got {got!r})")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise CheckpointError(
            f"{path}: unsupported checkpoint format version {version!r}; this sciml reads versions "
            f"1 to {FORMAT_VERSION}"
        )
    missing = [k for k in required if k not in payload]
    if missing:
        raise CheckpointError(f"{path}: incomplete checkpoint, missing keys {missing}")
    return payload


def load_latest(
    run_dir: str | os.PathLike[str], *, map_location: Any = "cpu"
) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint of ``run_dir`` that loads, as ``(path, payload)``; None if there is none.

    Corrupt newer checkpoints are skipped with a RuntimeWarning naming the file and the reason.

    Raises
    ------
    CheckpointError
        If checkpoints exist but none of them loads.
    """
    files = list(reversed(list_checkpoints(run_dir)))
    if not files:
        return None
    errors = []
    for i, path in enumerate(files):
        try:
            return path, load_checkpoint(path, map_location=map_location)
        except CheckpointError as exc:
            errors.append(str(exc))
            if i + 1 < len(files):
                warnings.warn(f"{exc}; falling back to {files[i + 1].name}", RuntimeWarning, stacklevel=2)
    raise CheckpointError(f"{run_dir}: none of the {len(files)} checkpoints loads: " + " | ".join(errors))


def find_resumable(run_dir: str | os.PathLike[str]) -> Path | None:
    """Path of the newest good checkpoint in ``run_dir`` (see :func:`load_latest`), or None."""
    found = load_latest(run_dir)
    return None if found is None else found[0]


# -- random number generators --------------------------------------------------------------------
def capture_rng_state() -> dict[str, Any]:
    """The global RNG states (python ``random``, numpy legacy, torch CPU, CUDA, MPS) as plain data."""
    version, state, gauss = random.getstate()
    # The legacy global state on purpose: it is what np.random.* calls in user code draw from.
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # noqa: NPY002
    out: dict[str, Any] = {
        "python": {"version": int(version), "state": [int(v) for v in state], "gauss": gauss},
        "numpy": {
            "bit_generator": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        out["mps"] = torch.mps.get_rng_state()
    return out


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`capture_rng_state` returned.

    Raises
    ------
    CheckpointError
        If the state is malformed.
    """
    try:
        py = state["python"]
        random.setstate((int(py["version"]), tuple(int(v) for v in py["state"]), py["gauss"]))
        nps = state["numpy"]
        keys = nps["keys"].numpy().astype(np.uint32)
        legacy = (nps["bit_generator"], keys, int(nps["pos"]), int(nps["has_gauss"]),
                  float(nps["cached_gaussian"]))
        np.random.set_state(legacy)  # noqa: NPY002
        torch.set_rng_state(state["torch"].cpu())
        cuda = state.get("cuda") or []
        if cuda and torch.cuda.is_available():
            if len(cuda) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all([t.cpu() for t in cuda])
            else:
                warnings.warn(
                    f"checkpoint holds CUDA RNG states for {len(cuda)} devices, {torch.cuda.device_count()} "
                    "are visible; CUDA RNGs not restored", RuntimeWarning, stacklevel=2)
        mps = getattr(torch.backends, "mps", None)
        if "mps" in state and mps is not None and mps.is_available():
            torch.mps.set_rng_state(state["mps"].cpu())
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
        raise CheckpointError(f"malformed RNG state in checkpoint: {type(exc).__name__}: {exc}") from exc


def seed_everything(seed: int) -> None:
    """Seed python ``random``, numpy's global RNG and torch (CPU and all CUDA devices)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        from ..errors import ConfigError

        raise ConfigError(f"seed: expected an int, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002  (the global state user code draws from)
    torch.manual_seed(seed)
