"""Device selection, batch transfer and mixed-precision contexts."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch

from .._checks import check_name
from ..errors import ConfigError

__all__ = ["resolve_device", "move_to_device", "autocast", "PRECISIONS", "check_precision"]

#: precision name -> autocast dtype (None: no autocast)
PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn a device request into a :class:`torch.device`.

    Parameters
    ----------
    device : str or torch.device or None
        ``"auto"`` (or None) picks CUDA, then MPS, then CPU. ``"cuda"``, ``"cuda:1"``, ``"mps"`` and
        ``"cpu"`` are checked for availability.

    Raises
    ------
    ConfigError
        If the string is not a device or the device is not available here.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if not isinstance(device, (str, torch.device)):
        raise ConfigError(f"device: expected 'auto', a device string or torch.device, got {device!r}")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(
            f"device: expected 'auto', 'cpu', 'cuda[:i]' or 'mps', got {device!r} ({exc})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {device!r} requested but CUDA is not available (torch {torch.__version__})")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ConfigError(f"device {device!r}: expected an index below {count}, got {dev.index}")
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
    elif dev.type == "mps":
        if not _mps_available():
            raise ConfigError(f"device {device!r} requested but MPS is not available")
    elif dev.type != "cpu":
        raise ConfigError(f"device: expected 'auto', 'cpu', 'cuda[:i]' or 'mps', got {device!r}")
    return dev


def move_to_device(batch: Any, device: torch.device, non_blocking: bool = True) -> Any:
    """Move the tensors of a batch (tensor, or nested dict / list / tuple) to ``device``.

    Non-tensor leaves are returned unchanged. ``non_blocking`` lets a pinned-memory host tensor
    overlap its copy to the GPU with computation; it is a no-op on CPU.
    """
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, dict):
        return type(batch)((k, move_to_device(v, device, non_blocking)) for k, v in batch.items())
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(move_to_device(v, device, non_blocking) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(v, device, non_blocking) for v in batch)
    return batch


def check_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """Validate a precision name for ``device`` and return its autocast dtype.

    fp16 and bf16 are probed with a tiny autocast matmul, so an unsupported combination (fp16
    autocast on an old CPU build, bf16 on an old GPU) fails here with a ConfigError instead of
    deep inside the first step.
    """
    check_name("precision", precision, PRECISIONS)
    dtype = PRECISIONS[precision]
    if dtype is None:
        return None
    if device.type == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"precision='bf16' is not supported on {torch.cuda.get_device_name(device)}")
    try:
        with torch.autocast(device_type=device.type, dtype=dtype):
            a = torch.ones(2, 2, device=device)
            out = a @ a
        if out.dtype != dtype:
            raise RuntimeError(f"autocast produced {out.dtype} instead of {dtype}")
    except Exception as exc:  # any failure means the platform cannot do it
        raise ConfigError(
            f"precision={precision!r} (autocast to {dtype}) is not supported on device {device} "
            f"with torch {torch.__version__}: {exc}; use precision='fp32'"
        ) from None
    return dtype


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """``torch.autocast`` for ``dtype``, or nothing at all for full precision."""
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def compile_in_place(model: Any, compile: bool | Mapping[str, Any]) -> bool:
    """``torch.compile`` the module in place when ``compile`` is True or a dict of compile options.

    In place, so that ``state_dict`` keys stay the same; compilation itself happens at the first call.
    Returns whether the model is compiled.
    """
    if not isinstance(compile, (bool, Mapping)):
        raise ConfigError(f"compile: expected a bool or a dict of torch.compile options, got {compile!r}")
    if not (bool(compile) or isinstance(compile, Mapping)):
        return False
    options = dict(compile) if isinstance(compile, Mapping) else {}
    try:
        model.compile(**options)
    except (TypeError, RuntimeError) as exc:
        raise ConfigError(f"compile={compile!r}: torch.compile refused ({exc})") from None
    return True
