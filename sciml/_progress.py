"""Progress of a run, shown wherever it runs: a bar on a terminal, plain lines everywhere else.

On a terminal a tqdm bar shows the loss, its terms and the latest validation error. Without one (CI,
``nohup``, ``| tee``, a notebook's captured output) a bar would print nothing useful, so a plain line is
written to stderr instead every ``every_s`` seconds (15 by default) and at every tenth of the run; a
loss of several terms (a PINN's ``pde``, ``bc``...) shows them after it::

    [train] step 120/800 (15%)  loss 1.230e-02 (pde 1.01e-02 bc 2.20e-03)  test@33/rel_l2 3.410e-02
        elapsed 0:00:31  eta 0:02:55

(one line, broken here to fit).

Data generation counts samples instead of steps (``unit="sample"``) and has no loss to show.

Only rank 0 of a DDP run reports. ``mode``: ``"bar"``, ``"lines"``, ``"off"``, or ``"auto"`` (a bar
when stderr is a terminal, lines otherwise). The Trainer's ``progress=False`` means ``"lines"`` (no
bar, but a run in a log still says how it goes); only ``"off"`` silences it.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from .errors import ConfigError

__all__ = ["Progress", "progress_mode", "format_duration"]

MODES = ("auto", "bar", "lines", "off")


def progress_mode(progress: bool | str | None) -> str:
    """The Trainer's ``progress`` argument as a mode.

    None -> ``"auto"``, True -> ``"bar"``, False -> ``"lines"`` (no bar, still a plain line with the
    loss terms every ~15 s and every tenth of the run), or a mode name (``"off"``: nothing at all).

    Raises
    ------
    ConfigError
        Anything else.
    """
    if progress is None:
        return "auto"
    if isinstance(progress, bool):
        return "bar" if progress else "lines"
    if isinstance(progress, str) and progress in MODES:
        return progress
    raise ConfigError(f"progress: expected None, True, False or one of {list(MODES)}, got {progress!r}")


def format_duration(seconds: float) -> str:
    """``h:mm:ss`` (``?`` when unknown)."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _headline(metrics: Mapping[str, float]) -> tuple[str, float] | None:
    """The validation number worth showing: the first relative-L2-like metric, else the first one."""
    finite = [(k, v) for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)]
    for key, value in finite:
        if "rel" in key or "l2" in key:
            return key, float(value)
    return finite[0] if finite else None


class Progress:
    """Report a run's progress (see the module docstring).

    Parameters
    ----------
    total : int
        Steps of the whole run.
    initial : int
        Steps already done (a resumed run).
    mode : {"auto", "bar", "lines", "off"}
    enabled : bool
        False on ranks other than 0: nothing is shown.
    every_s : float
        Seconds between plain lines.
    label : str
        Prefix of the plain lines.
    stream : file, optional
        Where to write (stderr by default).
    unit : str
        What is counted ("step" for training, "sample" for data generation).
    clock : callable, optional
        Seconds of a monotonic clock (``time.perf_counter`` by default; tests pass a fake one).
    """

    def __init__(self, total: int, initial: int = 0, mode: str = "auto", enabled: bool = True,
                 every_s: float = 15.0, label: str = "train", stream: TextIO | None = None,
                 unit: str = "step", clock: Callable[[], float] | None = None) -> None:
        if mode not in MODES:
            raise ConfigError(f"progress mode: expected one of {list(MODES)}, got {mode!r}")
        self.stream = stream if stream is not None else sys.stderr
        if mode == "auto":
            mode = "bar" if bool(getattr(self.stream, "isatty", lambda: False)()) else "lines"
        self.mode = mode if enabled else "off"
        self.total, self.step, self.every_s, self.label = int(total), int(initial), float(every_s), label
        self.unit = unit
        self.clock = clock if clock is not None else time.perf_counter
        self.loss: float | None = None  # None until a loss is reported; generation never has one
        self.terms: Mapping[str, float] = {}  # the loss terms of the latest step (shown when >= 2)
        self.val: tuple[str, float] | None = None
        self._t0 = self.clock()
        self._start_step = self.step
        self._last_line = self._t0
        self._next_fraction = self._fraction_mark(self.step)
        self._bar: Any = None
        if self.mode == "bar":
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total, initial=self.step, dynamic_ncols=True, file=self.stream,
                             unit=unit)

    def _fraction_mark(self, step: int) -> int:
        """The next step at a tenth of the run."""
        tenth = max(1, self.total // 10)
        return (step // tenth + 1) * tenth

    def update(self, step: int, loss: float | None = None, terms: Mapping[str, float] | None = None) -> None:
        """The run is at ``step`` (steps may go back after a rollback).

        Parameters
        ----------
        step : int
            Steps done.
        loss : float, optional
            Loss of the latest step.
        terms : mapping, optional
            Its terms by name (``{"pde": ..., "bc": ...}``), shown after the loss when there are two
            or more.
        """
        moved = int(step) - self.step
        self.step = int(step)
        if loss is not None:
            self.loss = float(loss)
        if terms is not None:
            self.terms = terms
        if self._bar is not None:
            if moved >= 0:
                self._bar.update(moved)
            else:
                self._bar.n = self.step
                self._bar.refresh()
            if loss is not None and (self.step % 10 == 0 or self.step == self.total):
                self._bar.set_postfix(self._postfix(), refresh=False)
        elif self.mode == "lines":
            now = self.clock()
            if now - self._last_line >= self.every_s or self.step >= self._next_fraction:
                self._line(now)

    def set_total(self, total: int) -> None:
        """The run's length changed (an L-BFGS phase converged early)."""
        self.total = int(total)
        self._next_fraction = self._fraction_mark(self.step)
        if self._bar is not None:
            self._bar.total = self.total
            self._bar.refresh()

    def set_validation(self, metrics: Mapping[str, float]) -> None:
        """The latest evaluation's metrics; the headline one is shown with the loss."""
        self.val = _headline(metrics) or self.val
        if self._bar is not None:
            self._bar.set_postfix(self._postfix(), refresh=False)

    def message(self, text: str) -> None:
        """A one-off line (resumed from ..., phase switch, ...) that does not break the bar."""
        if self.mode == "off":
            return
        if self._bar is not None:
            self._bar.write(f"[{self.label}] {text}", file=self.stream)
        else:
            print(f"[{self.label}] {text}", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.mode == "lines" and self.step > self._start_step and self._last_printed != self.step:
            self._line(self.clock())
        self.mode = "off"

    # -- formatting ------------------------------------------------------------------------------
    _last_printed = -1

    def _postfix(self) -> dict[str, str]:
        out = {"loss": f"{self.loss:.3e}"} if self.loss is not None else {}
        if self.loss is not None and len(self.terms) > 1:
            out.update({name: f"{value:.2e}" for name, value in self.terms.items()})
        if self.val is not None:
            out[self.val[0]] = f"{self.val[1]:.3e}"
        return out

    def _line(self, now: float) -> None:
        elapsed = now - self._t0
        done = self.step - self._start_step
        rate = done / elapsed if elapsed > 0 and done > 0 else float("nan")
        eta = (self.total - self.step) / rate if rate == rate and rate > 0 else float("nan")
        pct = 100.0 * self.step / max(1, self.total)
        parts = [f"[{self.label}] {self.unit} {self.step}/{self.total} ({pct:.0f}%)"]
        if self.loss is not None:
            shown = f"loss {self.loss:.3e}"
            if len(self.terms) > 1:
                shown += " (" + " ".join(f"{name} {value:.2e}" for name, value in self.terms.items()) + ")"
            parts.append(shown)
        if self.val is not None:
            parts.append(f"{self.val[0]} {self.val[1]:.3e}")
        parts += [f"elapsed {format_duration(elapsed)}", f"eta {format_duration(eta)}"]
        print("  ".join(parts), file=self.stream, flush=True)
        self._last_line = now
        self._last_printed = self.step
        self._next_fraction = self._fraction_mark(self.step)
