"""Lazy, contained access to ``deepxde.geometry``.

Importing deepxde has side effects that a library must not impose on its users: it takes seconds,
prints "Using backend: ..." to stderr, writes ``~/.deepxde/config.json`` when no backend is
configured, and its PyTorch backend calls ``torch.set_default_device("cuda")`` whenever a GPU is
visible. Its geometry classes also cast coordinates to ``deepxde.config.real`` (float32 by default).

This module contains all of that:

* :func:`contained_import` imports a module with stdout/stderr captured, warnings recorded, ``HOME``
  pointed at a throw-away directory and torch's default dtype and device restored afterwards;
  whatever was captured goes to this module's logger at DEBUG level.
* :func:`load_geometry` imports deepxde that way once (``DDE_BACKEND=pytorch`` unless the user set a
  backend) and returns ``deepxde.geometry``.
* :func:`float64` is a context manager that switches deepxde's precision to float64 only for the
  duration of a call, so a user's own deepxde models keep their precision.
* :func:`geometry_classes` defines, on first use, small subclasses that fix two deepxde defects:
  ``Disk``/``Sphere`` normals are NaN at the centre (0/0), and ``Polygon.boundary_normal`` truncates
  normals to integers when its first query point is not on the boundary (``np.vectorize`` takes the
  output dtype from the first call). The polygon subclass delegates to sciml's own polygon maths.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import shutil
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["contained_import", "load_geometry", "float64", "geometry_classes", "quiet"]

_LOG = logging.getLogger(__name__)
# Re-entrant: building a CSG tree calls float64() while the import may still hold the lock.
_LOCK = threading.RLock()
_CLASSES: dict[str, type] = {}

# Environment variables that locate a user's home directory (POSIX, Windows).
_HOME_VARS = ("HOME", "USERPROFILE")


def _torch_defaults() -> tuple[Any, Any] | None:
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    return torch.get_default_dtype(), torch.get_default_device()


def _restore_torch(before: tuple[Any, Any] | None) -> None:
    """Put torch's default dtype and device back to what they were (or to torch's own defaults)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return
    dtype, device = before if before is not None else (torch.float32, torch.device("cpu"))
    if torch.get_default_dtype() != dtype:
        torch.set_default_dtype(dtype)
    if torch.get_default_device() != device:
        # ``None`` removes the device context instead of installing a "cpu" one, which would add a
        # dispatch hook to every tensor factory call.
        torch.set_default_device(None if device.type == "cpu" else device)


def _pin_matplotlib_dirs() -> None:
    """Resolve matplotlib's config and cache directories against the real ``HOME``.

    deepxde imports ``matplotlib.pyplot``. matplotlib caches the directories it resolves on first
    use; if that happened while ``HOME`` points to the throw-away directory, the user's
    ``matplotlibrc`` would be ignored for the rest of the process and later cache writes would go to
    a deleted folder. Resolving them first keeps matplotlib behaving exactly as if the user had
    imported it (including its usual font cache, or ``MPLCONFIGDIR`` when set).
    """
    try:
        import matplotlib
    except ImportError:  # deepxde will fail with a clear message of its own
        return
    matplotlib.get_configdir()
    matplotlib.get_cachedir()


def contained_import(name: str, env: Mapping[str, str] | None = None) -> ModuleType:
    """Import module ``name`` with its import-time side effects contained.

    Parameters
    ----------
    name : str
        Module to import. If it is already imported it is returned untouched.
    env : mapping, optional
        Environment variables to set during the import only, and only where the user has not set
        them already (e.g. ``{"DDE_BACKEND": "pytorch"}``).

    Returns
    -------
    module

    Notes
    -----
    During the import stdout and stderr are captured, warnings are recorded, ``HOME`` (and
    ``USERPROFILE``) point to a fresh temporary directory that is deleted afterwards, and torch's
    default dtype and device are restored when the import returns (or fails). Captured output and
    any file the import wrote are reported on this module's logger at DEBUG level.
    """
    with _LOCK:
        if name in sys.modules:
            return sys.modules[name]
        torch_before = _torch_defaults()
        extra = {k: v for k, v in (env or {}).items() if k not in os.environ}
        saved = {k: os.environ.get(k) for k in (*_HOME_VARS, *extra)}
        home = tempfile.mkdtemp(prefix="sciml-import-home-")
        out, err = io.StringIO(), io.StringIO()
        try:
            os.environ.update(extra)
            for var in _HOME_VARS:
                os.environ[var] = home
            with (
                contextlib.redirect_stdout(out),
                contextlib.redirect_stderr(err),
                warnings.catch_warnings(record=True) as caught,
            ):
                warnings.simplefilter("always")
                module = importlib.import_module(name)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            _restore_torch(torch_before)
            written = [os.path.relpath(os.path.join(d, f), home) for d, _, fs in os.walk(home) for f in fs]
            shutil.rmtree(home, ignore_errors=True)
        if _LOG.isEnabledFor(logging.DEBUG):
            captured = (out.getvalue() + err.getvalue()).strip()
            if captured:
                _LOG.debug("import %s printed (suppressed): %s", name, captured)
            for w in caught:
                _LOG.debug("import %s warned (suppressed): %s", name, w.message)
            if written:
                _LOG.debug("import %s wrote %s in a throw-away HOME (discarded)", name, written)
        return module


def load_geometry() -> ModuleType:
    """Return ``deepxde.geometry``, importing deepxde (contained) on first use."""
    if "deepxde" not in sys.modules:
        with _LOCK:
            _pin_matplotlib_dirs()
            try:
                contained_import("deepxde", env={"DDE_BACKEND": "pytorch"})
            except ImportError as exc:
                raise ImportError(
                    f"sciml.geometry.Domain needs deepxde with a working backend "
                    f"(DDE_BACKEND={os.environ.get('DDE_BACKEND', 'pytorch')}): {exc}"
                ) from exc
    return importlib.import_module("deepxde.geometry")


@contextlib.contextmanager
def float64() -> Iterator[ModuleType]:
    """Run deepxde geometry code in float64, restoring deepxde's precision afterwards.

    Yields ``deepxde.geometry``. Holds a lock because deepxde's precision is a global setting.
    """
    geometry = load_geometry()
    real = importlib.import_module("deepxde.config").real
    with _LOCK:
        previous = real.precision
        if previous != 64:
            real.set_float64()
        try:
            yield geometry
        finally:
            if previous != 64:
                {16: real.set_float16, 32: real.set_float32}.get(previous, real.set_float32)()


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Swallow deepxde's ``print`` warnings (e.g. box normals queried at corners) into the log."""
    out = io.StringIO()
    with _LOCK, contextlib.redirect_stdout(out):
        yield
    if out.getvalue().strip():
        _LOG.debug("deepxde printed (suppressed): %s", out.getvalue().strip())


def _safe_sphere_normal(x: np.ndarray, center: np.ndarray, radius: float, on: np.ndarray) -> np.ndarray:
    """Outward unit normal of a sphere at ``x`` where ``on`` is True, zero elsewhere (never NaN)."""
    offset = np.asarray(x, dtype=np.float64) - center
    length = np.linalg.norm(offset, axis=-1, keepdims=True)
    normal = np.zeros_like(offset)
    on = np.asarray(on, dtype=bool) & (length[:, 0] > 0)
    normal[on] = offset[on] / length[on]
    return normal


def geometry_classes() -> dict[str, type]:
    """deepxde geometry subclasses used by sciml: ``"disk"``, ``"sphere"``, ``"polygon"``.

    Defined on first call because their base classes live in deepxde, which is imported lazily.
    """
    with _LOCK:
        if _CLASSES:
            return _CLASSES
        geometry = load_geometry()

        class SafeDisk(geometry.Disk):
            """deepxde Disk whose normal is zero (not NaN) away from the circle, centre included."""

            def boundary_normal(self, x: np.ndarray) -> np.ndarray:
                return _safe_sphere_normal(x, self.center, self.radius, self.on_boundary(x))

        class SafeSphere(geometry.Sphere):
            """deepxde Sphere whose normal is zero (not NaN) away from the surface."""

            def boundary_normal(self, x: np.ndarray) -> np.ndarray:
                return _safe_sphere_normal(x, self.center, self.radius, self.on_boundary(x))

        class ShapePolygon(geometry.Geometry):
            """A deepxde Geometry backed by :class:`sciml.geometry._shapes.Polygon`.

            Unlike deepxde's Polygon it accepts triangles and rectangles, counts boundary points as
            inside (a closed set, like deepxde's boxes and disks, which CSG relies on), uses a tight
            distance tolerance for ``on_boundary`` and returns float normals.
            """

            def __init__(self, shape: Any) -> None:
                self.shape = shape
                lo, hi = shape.bbox()
                super().__init__(2, (lo, hi), float(np.linalg.norm(hi - lo)))

            def inside(self, x: np.ndarray) -> np.ndarray:
                return self.shape.contains(x)

            def on_boundary(self, x: np.ndarray) -> np.ndarray:
                return self.shape.near_boundary(x)

            def boundary_normal(self, x: np.ndarray) -> np.ndarray:
                return self.shape.normals(x)

            def random_points(self, n: int, random: str = "pseudo") -> np.ndarray:
                # Only for users who hand the geometry to deepxde themselves; sciml samples on its own.
                rng = np.random.default_rng()
                lo, hi = self.bbox
                out = np.empty((0, 2))
                while len(out) < n:
                    x = lo + rng.random((2 * n, 2)) * (hi - lo)
                    out = np.vstack([out, x[self.inside(x)]])
                return out[:n]

            def random_boundary_points(self, n: int, random: str = "pseudo") -> np.ndarray:
                u = np.random.default_rng().random((n, 1))
                return self.shape.boundary_points(u)

        _CLASSES.update({"disk": SafeDisk, "sphere": SafeSphere, "polygon": ShapePolygon})
        return _CLASSES
