"""The ``sciml`` command.

``sciml problems`` · ``sciml generate PROBLEM --n N --resolution R --out FILE`` ·
``sciml train PROBLEM --model NAME ...`` · ``sciml resume RUN`` ·
``sciml solve RUN --set g="sin(pi*x)*y" --plot out.png --vtu out.vtu`` · ``sciml plot FILE`` ·
``sciml quickstart``.

Errors the user can fix (a SciMLError) are printed as one line and exit with status 2; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from .errors import SciMLError

__all__ = ["main"]


def _cmd_problems(args: argparse.Namespace) -> int:
    from .problem import list_problems, load_problem

    names = list_problems()
    if args.json:
        print(json.dumps({n: load_problem(n).describe() for n in names}, indent=2))
        return 0
    for name in names:
        p = load_problem(name)
        print(f"{name}: {p.description}")
        for inp in p.inputs:
            kind = inp.space if inp.is_random else f"fixed {inp.value!r}"
            where = " (boundary data)" if inp.on == "boundary" else ""
            print(f"    input  {inp.name}{where}: {kind}")
        print(f"    output {', '.join(p.outputs)}")
        if p.params:
            print("    params " + ", ".join(f"{k}={v}" for k, v in p.params.items()))
        if p.grid is not None:
            extra = f", solved {p.solve_stride}x finer and subsampled" if p.solve_stride > 1 else ""
            print(f"    grid   {'x'.join(map(str, p.grid.shape))}{extra}")
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from .data import generate

    path = generate(
        args.problem,
        n=args.n,
        grid=args.resolution,
        seed=args.seed,
        path=args.out,
        workers=args.workers,
        overwrite=args.overwrite,
    )
    print(f"wrote {path}")
    return 0


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sciml", description="Scientific machine learning for PDEs.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("problems", help="list the built-in problems with their inputs, outputs and params")
    p.add_argument("--json", action="store_true", help="print the descriptions as JSON")
    p.set_defaults(func=_cmd_problems)

    p = sub.add_parser("generate", help="make an HDF5 dataset with the problem's reference solver")
    p.add_argument("problem", help="problem name (see `sciml problems`) or path to a problem file")
    p.add_argument("--n", type=int, required=True, help="number of samples")
    p.add_argument("--resolution", type=int, default=None, help="nodes per axis (default: the problem's grid)")
    p.add_argument("--out", required=True, help="output .h5 file")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="processes solving in parallel")
    p.add_argument("--overwrite", action="store_true", help="replace a file made with other settings")
    p.set_defaults(func=_cmd_generate)

    _add_later_commands(sub)
    return parser


def _add_later_commands(sub: Any) -> None:
    """Training, solving and viewing commands live in sciml.workflows (imported when used)."""
    try:
        from . import workflows
    except ImportError:  # pragma: no cover - only while the package is partially installed
        return
    workflows.add_cli_commands(sub)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SciMLError as exc:
        print(f"sciml {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sciml {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
