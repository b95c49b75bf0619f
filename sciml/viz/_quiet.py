"""Off-screen renders that keep VTK's and the GL driver's chatter off the user's screen.

VTK writes warnings such as ``vtkXOpenGLRenderWindow ... WARN| bad X server connection`` (it tries
X before falling back to EGL/OSMesa on a machine without a display) from C++ straight to file
descriptor 2, as do Mesa and libEGL; ``sys.stderr`` never sees them. :func:`quiet_render` points
fd 2 at a temporary file around a render and then sorts what was written: lines that are VTK or
graphics-driver noise go to the ``sciml.viz`` logger at DEBUG level (``logging.getLogger(
"sciml.viz").setLevel("DEBUG")`` with a handler shows them), anything else (a Python warning
raised meanwhile, say) is written back to stderr unchanged.

The redirect is process-wide for its duration, so it is used only around off-screen renders.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator

__all__ = ["quiet_render", "logger"]

logger = logging.getLogger("sciml.viz")

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# What VTK's logger, VTK's output window, Mesa, libEGL/GLX and X client libraries print.
_NOISE = re.compile(
    r"vtk|x server|display=|mesa|libgl|libegl|\begl\b|glx|\bdri\d?\b|xdg_runtime|\bdrm\b|"
    r"^\s*(debug|modified time|reference count|registered events|request|from_output_port|"
    r"algorithm_after_forward|forward_direction)\b|^\s*$",
    re.IGNORECASE,
)


def _sort(text: str) -> str:
    """Log the noise lines of ``text`` and return the rest (the lines to give back to stderr)."""
    keep = []
    for line in _ANSI.sub("", text).splitlines(keepends=True):
        if _NOISE.search(line):
            if line.strip():
                logger.debug("render: %s", line.rstrip())
        else:
            keep.append(line)
    return "".join(keep)


@contextlib.contextmanager
def quiet_render(enabled: bool = True) -> Iterator[None]:
    """Capture fd 2 around a render; VTK and GL noise goes to logging, the rest back to stderr."""
    if not enabled:
        yield
        return
    try:
        fd = sys.__stderr__.fileno() if sys.__stderr__ is not None else 2
        saved = os.dup(fd)
    except (OSError, ValueError, AttributeError):  # no usable fd 2 (embedded interpreters)
        yield
        return
    for stream in (sys.stderr, sys.__stderr__):
        with contextlib.suppress(Exception):
            stream.flush()
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), fd)
        try:
            yield
        finally:
            for stream in (sys.stderr, sys.__stderr__):
                with contextlib.suppress(Exception):
                    stream.flush()
            os.dup2(saved, fd)
            os.close(saved)
            sink.seek(0)
            rest = _sort(sink.read().decode("utf-8", errors="replace"))
            if rest:
                os.write(fd, rest.encode("utf-8", errors="replace"))
