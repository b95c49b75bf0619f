"""The ``sciml`` command.

``sciml problems [PROBLEM_OR_FILE]`` · ``sciml generate PROBLEM --n N --resolution R --out FILE`` ·
``sciml train PROBLEM --model NAME ...`` (``--model pinn --set g=... --hard`` for a PINN) · ``sciml resume RUN`` ·
``sciml solve RUN --set g="sin(pi*x)*y" --resolution 65 --plot out.png --vtu out.vtu`` · ``sciml plot FILE`` ·
``sciml bench [NAME] [ARGS...]`` · ``sciml quickstart``.

Errors the user can fix (a SciMLError) are printed as one line and exit with status 2; anything
else is a bug and keeps its traceback. Warnings sciml gives on purpose while solving (a
:class:`~sciml.errors.SciMLWarning`, such as an input outside the training data) are printed as one
line each, ``warning: ...``, on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError, SciMLError, UnknownNameError

__all__ = ["main"]


def _cmd_problems(args: argparse.Namespace) -> int:
    from .problem import list_problems, load_problem

    if args.problem is not None:  # one problem, a built-in name or a user's file, in full
        p = load_problem(args.problem)
        if args.json:
            print(json.dumps({**p.describe(), "source": p.source,
                              "conditions": [_condition_text(c, p) for c in p.conditions]}, indent=2, default=str))
        else:
            print("\n".join(_problem_lines(p, detailed=True)))
        return 0
    names = list_problems()
    if args.json:
        print(json.dumps({n: load_problem(n).describe() for n in names}, indent=2))
        return 0
    for name in names:
        print("\n".join(_problem_lines(load_problem(name), detailed=False)))
    return 0


def _value_text(value: Any, problem: Any = None) -> str:
    """A condition's or fixed input's value in words (a condition value may name an input)."""
    if isinstance(value, str):
        return f"input {value}" if problem is not None and value in problem.input_names else f"{value!r}"
    if callable(value):
        return f"callable {getattr(value, '__name__', type(value).__name__)}"
    return repr(value)


def _condition_text(cond: Any, problem: Any) -> str:
    """One condition in words: ``Dirichlet: u = input g on the boundary``."""
    kind = type(cond).__name__
    if kind == "Periodic":
        period = "" if cond.period is None else f", period {cond.period:g}"
        return f"Periodic: along axis {cond.axis}{period}"
    outputs = ", ".join(problem.outputs) if getattr(cond, "output", None) is None else cond.output
    where = getattr(cond, "where", None)
    part = "on the boundary" if where is None else f"where {getattr(where, '__name__', 'where()')} holds"
    value = _value_text(cond.value, problem)
    if kind == "Neumann":
        return f"Neumann: d{outputs}/dn = {value} {part}"
    if kind == "Initial":
        return f"Initial: {outputs} = {value} at the first time (time axis {cond.time_axis})"
    return f"{kind}: {outputs} = {value} {part}"


def _problem_lines(p: Any, detailed: bool) -> list[str]:
    """What ``sciml problems`` prints for one problem (``detailed``: conditions, equation, file too)."""
    lines = [f"{p.name}: {p.description}"]
    if detailed and p.source:
        lines.append(f"    file   {p.source}")
    for inp in p.inputs:
        kind = inp.space if inp.is_random else f"fixed {_value_text(inp.value)}"
        where = " (boundary data)" if inp.on == "boundary" else ""
        about = f"  ({inp.description})" if detailed and inp.description else ""
        lines.append(f"    input  {inp.name}{where}: {kind}{about}")
    lines.append(f"    output {', '.join(p.outputs)}")
    if detailed:
        lines += [f"    condition {_condition_text(c, p)}" for c in p.conditions]
    if p.params:
        lines.append("    params " + ", ".join(f"{k}={v}" for k, v in p.params.items()))
    if p.grid is not None:
        extra = f", solved {p.solve_stride}x finer and subsampled" if p.solve_stride > 1 else ""
        box = " x ".join(f"[{lo:g}, {hi:g}]" for lo, hi in p.grid.bounds)
        lines.append(f"    grid   {'x'.join(map(str, p.grid.shape))}" + (f" on {box}" if detailed else "") + extra)
    if detailed:
        has = [k for k in ("equation", "reference", "system", "observe") if getattr(p, k) is not None]
        lines.append(f"    has    {', '.join(has) or 'nothing to solve with (no equation, no reference)'}")
    return lines


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


def _benchmarks_dir() -> Path:
    """``benchmarks/`` of the source tree this package runs from (it is not part of a wheel)."""
    here = Path(__file__).resolve().parents[1] / "benchmarks"
    if not (here / "_common.py").is_file():
        raise ConfigError(f"sciml bench: no benchmarks next to this installation ({here}); they ship with the "
                          "source repository: clone it and `pip install -e .`")
    return here


def _cmd_bench(args: argparse.Namespace) -> int:
    import subprocess

    folder = _benchmarks_dir()
    names = sorted(f.stem for f in folder.glob("*.py") if not f.name.startswith("_"))
    if args.name is None:
        for name in names:
            first = (folder / f"{name}.py").read_text().split('"""')[1].strip().splitlines()[0]
            print(f"{name}: {first}")
        return 0
    if args.name not in names:
        raise UnknownNameError("benchmark", args.name, names)
    # each benchmark is a script of its own (its own threads, imports and JSON under results/)
    return subprocess.call([sys.executable, str(folder / f"{args.name}.py"), *args.args])


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sciml", description="Scientific machine learning for PDEs.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("problems", help="list the built-in problems, or describe one (a name or your file)")
    p.add_argument("problem", nargs="?", default=None,
                   help="a problem name or a problem file: its inputs and spaces, conditions, params, grid")
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

    p = sub.add_parser("train", help="train an operator on a problem (data generated unless given), or a PINN")
    p.add_argument("problem", help="problem name or path to a problem file")
    p.add_argument("--model", default=None, help="model registry name (default fno; nio for problems whose "
                   "input is boundary measurements)")
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=JSON",
                   help="model constructor argument, e.g. --model-arg width=64 --model-arg 'n_modes=[16,16]'")
    p.add_argument("--data", default=None, help="existing dataset file (generated into the run otherwise)")
    p.add_argument("--n-train", type=int, default=1000)
    p.add_argument("--n-test", type=int, default=100)
    p.add_argument("--resolution", type=int, default=None)
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--steps", type=int, default=5000,
                   help="full-batch steps of --model deeponet and --model pinn (which have no epochs or batches)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=FORMULA",
                   help="--model pinn: the instance to solve, a value for each random input, e.g. --set g=\"sin(pi*x)*y\"")
    p.add_argument("--hard", nargs="?", const="all", default=None, metavar="KINDS",
                   help="--model pinn: impose the conditions exactly (all, or some of dirichlet,initial,periodic)")
    p.add_argument("--n-interior", type=int, default=1000, help="--model pinn: interior collocation points")
    p.add_argument("--n-boundary", type=int, default=200, help="--model pinn: boundary (and initial) points")
    p.add_argument("--batch-size", type=int, default=20)
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default 1e-3; 3e-3 for --model deeponet, measured in "
                        "benchmarks/deeponet_cli.py)")
    p.add_argument("--loss", default=None, choices=["rel_l2", "rel_h1", "rel_l2+h1", "mse", "rel_l1", "bce"],
                   help="operator loss (default rel_l2): relative L2; + relative H1 norm (MgNO's recipe); + "
                        "relative H1 seminorm (the Galerkin Transformer's); finite-difference derivatives. "
                        "Inverse operators: rel_l1 (NIO's, default), rel_l2, bce (a 0/1 map, default there)")
    p.add_argument("--h1-weight", type=float, default=None, help="weight of the H1 term (default 1)")
    p.add_argument("--grad-clip", type=float, default=None, help="clip the gradient norm (e.g. 0.99)")
    p.add_argument("--eval-resolution", type=int, action="append", default=[], metavar="N",
                   help="also report the test error at N nodes per axis (repeatable), e.g. a finer grid")
    p.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:1 ...")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="processes for data generation")
    p.add_argument("--out", default=None, help="run directory (default runs/PROBLEM_MODEL)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("resume", help="continue a killed or finished run from its newest good checkpoint")
    p.add_argument("run", help="run directory")
    p.set_defaults(func=_cmd_resume)

    p = sub.add_parser("solve", help="answer new inputs with a trained run")
    p.add_argument("run", help="run directory")
    p.add_argument("--set", action="append", default=[], metavar="NAME=FORMULA",
                   help='an input as a formula of x, y (z), e.g. --set g="sin(pi*x)*y" --set f=0')
    p.add_argument("--resolution", type=int, default=None,
                   help="answer on this many nodes per axis of the training box (default: the training grid)")
    p.add_argument("--plot", default=None, help="PNG with the inputs, prediction, reference and error")
    p.add_argument("--vtu", default=None, help="VTK file with prediction, reference and error")
    p.add_argument("--no-reference", action="store_true", help="skip the classical solver")
    p.add_argument("--noise", type=float, default=None, help="inverse runs: noise level of the measurements "
                   "made of the --set truth (default: the training data's)")
    p.set_defaults(func=_cmd_solve)

    p = sub.add_parser("plot", help="picture of a dataset sample (.h5), a VTK file or a run's loss curve")
    p.add_argument("file", help=".h5 dataset, .vti/.vtu/.vtk file or run directory")
    p.add_argument("--index", type=int, default=0, help="sample of a dataset")
    p.add_argument("--out", default=None, help="PNG to write (default: next to the file)")
    p.set_defaults(func=_cmd_plot)

    p = sub.add_parser("bench", help="list the benchmarks, or run one (it writes JSON under benchmarks/results/)")
    p.add_argument("name", nargs="?", default=None, help="benchmark name (without .py); none lists them")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments of the benchmark, e.g. --quick")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("quickstart", help="the whole story on the Poisson problem in under a minute")
    p.add_argument("--out", default="quickstart_out", help="output directory (a previous quickstart's run "
                   "in OUT/run is replaced)")
    p.add_argument("--epochs", type=int, default=None, help="training length (default 8)")
    p.add_argument("--n-train", type=int, default=None, help="training samples (default 1000)")
    p.add_argument("--resolution", type=int, default=None, help="nodes per axis (default 17)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data and of the weights")
    p.set_defaults(func=_cmd_quickstart)
    return parser


def _parse_assignments(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"{what}: expected NAME=VALUE, got {item!r}")
        out[name.strip()] = value.strip()
    return out


def _report(run: Any) -> None:
    # Under torchrun every rank runs the command; one line of output is enough.
    if os.environ.get("RANK", "0") == "0":
        print(f"run {run.run_dir}: test relative L2 mean {run.mean_error:.4f}, median {run.median_error:.4f} "
              f"({run.result.reason})")
        summary = Path(run.run_dir) / "summary.json"
        others = json.loads(summary.read_text()) if summary.is_file() else {}
        for key, value in others.items():  # errors at the other resolutions asked for (--eval-resolution)
            if key.startswith("test@") and key.endswith("/rel_l2_mean") and isinstance(value, float):
                print(f"  {key.split('/')[0]}: relative L2 mean {value:.4f}")


def _takes_measurements(problem: str) -> bool:
    """Whether the problem's input is an array of boundary measurements (an inverse operator's)."""
    from .problem import load_problem
    from .workflows.inverse import is_measurement_problem

    return is_measurement_problem(load_problem(problem))


def _cmd_train(args: argparse.Namespace) -> int:
    from .workflows.operator import train_operator

    model_kwargs = {}
    for key, text in _parse_assignments(args.model_arg, "--model-arg").items():
        try:
            model_kwargs[key] = json.loads(text)
        except json.JSONDecodeError:
            model_kwargs[key] = text
    name = Path(args.problem).stem
    measurements = args.model != "pinn" and _takes_measurements(args.problem)
    args.model = args.model or ("nio" if measurements else "fno")
    if args.lr is None:  # the full-batch DeepONet trains best at a higher rate than the mini-batch models
        args.lr = 3e-3 if args.model == "deeponet" else 1e-3
    out = args.run = args.out or f"runs/{name}_{args.model}"  # args.run: named if interrupted
    if measurements:  # boundary measurements in, a coefficient out: the inverse operators
        from .workflows.inverse import train_inverse

        if args.set or args.hard or args.precision != "fp32" or args.compile:
            raise ConfigError("sciml train: an inverse operator trains in fp32 without compile on its problem's "
                              "data; drop --set, --hard, --precision and --compile")
        run = train_inverse(args.problem, model=args.model, model_kwargs=model_kwargs, data=args.data,
                            n_train=args.n_train, n_test=args.n_test, resolution=args.resolution, out_dir=out,
                            epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, loss=args.loss,
                            device=args.device, seed=args.seed, workers=args.workers)
        if os.environ.get("RANK", "0") == "0":
            summary = json.loads((Path(run.run_dir) / "summary.json").read_text())
            half = (f"; with half of the measurements {summary['test_half_rel_l1_median']:.4f}"
                    if "test_half_rel_l1_median" in summary else "")
            print(f"run {run.run_dir}: test relative L1 median {summary['test_rel_l1_median']:.4f}, mean "
                  f"{summary['test_rel_l1_mean']:.4f}, relative L2 mean {summary['test_rel_l2_mean']:.4f}{half} "
                  f"({run.result.reason})")
        return 0
    if args.model != "pinn" and (args.set or args.hard):
        raise ConfigError("sciml train: --set and --hard are for --model pinn (an operator learns every "
                          "instance; give inputs to `sciml solve`)")
    if args.model == "pinn":  # one instance, no data: the equation and the conditions at points
        from .workflows.pinn import train_pinn

        if args.data is not None or args.precision != "fp32" or args.compile:
            raise ConfigError("sciml train --model pinn makes no data and trains in fp32 without compile; drop "
                              "--data, --precision and --compile")
        hard: Any = False if args.hard is None else True if args.hard == "all" else \
            [k.strip() for k in args.hard.split(",") if k.strip()]
        pinn = train_pinn(args.problem, inputs=_parse_assignments(args.set, "--set"), model_kwargs=model_kwargs,
                          hard=hard, n_interior=args.n_interior, n_boundary=args.n_boundary,
                          n_initial=args.n_boundary, steps=args.steps, lr=args.lr, device=args.device,
                          seed=args.seed, out_dir=out)
        if os.environ.get("RANK", "0") == "0":
            error = (f"relative L2 vs reference {pinn.errors['rel_l2']:.4f}" if "rel_l2" in pinn.errors
                     else "no reference to compare with")
            print(f"run {pinn.run_dir}: PINN, {error} ({pinn.result.reason})")
        return 0
    if args.model == "deeponet":  # answers at points: sensors, full-batch steps, a PointSolver
        from .workflows.deeponet import train_deeponet

        if args.precision != "fp32" or args.compile:
            raise ConfigError("sciml train --model deeponet trains in fp32 without compile; drop --precision "
                              "and --compile")
        run = train_deeponet(args.problem, model_kwargs=model_kwargs, n_train=args.n_train, n_test=args.n_test,
                             resolution=args.resolution, data=args.data, out_dir=out, steps=args.steps,
                             lr=args.lr, device=args.device, seed=args.seed)
        _report(run)
        return 0
    run = train_operator(
        args.problem, model=args.model, model_kwargs=model_kwargs, data=args.data, n_train=args.n_train,
        n_test=args.n_test, resolution=args.resolution, out_dir=out,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, loss=args.loss or "rel_l2", h1_weight=args.h1_weight,
        grad_clip=args.grad_clip, eval_resolutions=args.eval_resolution or None, device=args.device,
        precision=args.precision, compile=args.compile, seed=args.seed, workers=args.workers,
    )
    _report(run)
    return 0


def _cmd_resume(args: argparse.Namespace) -> int:
    from .workflows.resume import resume_operator

    run = resume_operator(args.run)
    _report(run)
    return 0


def _cmd_solve(args: argparse.Namespace) -> int:
    import warnings

    import numpy as np

    from .errors import SciMLWarning
    from .workflows.solve import describe_grid, solve_run, write_plot, write_vtu

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            solved = solve_run(args.run, _parse_assignments(args.set, "--set"), resolution=args.resolution,
                               reference=not args.no_reference, noise=args.noise)
        finally:  # what the solver warned about is said before the answer, or before the error
            for w in caught:
                if issubclass(w.category, SciMLWarning):
                    print("warning: " + " ".join(str(w.message).split()), file=sys.stderr)
                else:
                    warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    where = describe_grid(solved.grid)
    if solved.trained_grid is not None and solved.trained_grid != solved.grid:
        where += f" (trained on {describe_grid(solved.trained_grid)})"
    print(f"{solved.kind} answer on {where}")
    for name, pred in solved.prediction.items():
        values = pred.numpy()  # NaN outside a PINN's domain when that is not a box
        line = f"{name}: min {np.nanmin(values):.4g}, max {np.nanmax(values):.4g}"
        if name in solved.errors:
            line += f", relative L2 error vs {solved.reference_label} {solved.errors[name]:.3e}"
        print(line)
    if args.plot:
        print(f"wrote {write_plot(solved, args.plot)}")
    if args.vtu:
        print(f"wrote {write_vtu(solved, args.vtu)}")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from .workflows.plot_file import plot_file

    print(f"wrote {plot_file(args.file, out=args.out, index=args.index)}")
    return 0


def _cmd_quickstart(args: argparse.Namespace) -> int:
    from .workflows.quickstart import quickstart

    quickstart(out_dir=args.out, epochs=args.epochs, seed=args.seed, n_train=args.n_train,
               resolution=args.resolution)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SciMLError as exc:
        print(f"sciml {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        run = getattr(args, "run", None)
        hint = (f"; the run keeps its checkpoints: continue it with `sciml resume {run}`"
                if args.command in ("train", "resume") and run else "")
        print(f"sciml {args.command}: interrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
