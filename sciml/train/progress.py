"""Progress of a run: :class:`~sciml._progress.Progress` (a bar on a terminal, plain lines elsewhere).

It lives in the base layer (:mod:`sciml._progress`) so that data generation, below the Trainer,
reports the same way; this module keeps the Trainer's import path.
"""

from .._progress import Progress, format_duration, progress_mode

__all__ = ["Progress", "progress_mode", "format_duration"]
