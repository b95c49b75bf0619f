"""Dataset generation throughput of the reference solvers (samples per second).

Cases: Darcy at 85 solved at 421 (the FNO benchmark: stride 5) and solved directly at 85;
Darcy at 211 solved at 421 (stride 2) and directly at 211; Poisson at 64. The shipped problems
run with 1 and 2 worker processes; the re-strided Darcy variants are in-memory copies of the
problem and run in one process. Every case writes a real HDF5 file through ``sciml.data.generate``
(sampling, solving, subsampling, writing), so the numbers are end-to-end.

Prints a table and writes ``benchmarks/results/generation_throughput.json``.

Run: ``python benchmarks/generation_throughput.py [--n 32]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import sciml
from sciml.data import generate


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32, help="samples per case (Poisson uses 8x more)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "generation_throughput.json")
    args = parser.parse_args()

    darcy = sciml.load_problem("darcy")
    poisson = sciml.load_problem("poisson")
    cases = [
        ("darcy", darcy, 85, 5, 1),
        ("darcy", darcy, 85, 5, 2),
        ("darcy", dataclasses.replace(darcy, solve_stride=1), 85, 1, 1),
        ("darcy", dataclasses.replace(darcy, solve_stride=2), 211, 2, 1),
        ("darcy", dataclasses.replace(darcy, solve_stride=1), 211, 1, 1),
        ("poisson", poisson, 64, 1, 1),
        ("poisson", poisson, 64, 1, 2),
    ]
    rows = []
    print(f"load average at start: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, problem, res, stride, workers) in enumerate(cases):
            n = args.n * (8 if name == "poisson" else 1)
            start = time.perf_counter()
            # Small shards so that two workers both get work even for a few dozen samples.
            shard = max(1, n // 8)
            generate(problem, n, res, seed=i, path=Path(tmp) / f"{i}.h5", workers=workers, shard_size=shard,
                     progress=False)
            seconds = time.perf_counter() - start
            row = {
                "problem": name, "resolution": res, "solved_at": (res - 1) * stride + 1, "workers": workers,
                "n": n, "shard_size": shard, "seconds": round(seconds, 3), "samples_per_s": round(n / seconds, 3),
            }
            rows.append(row)
            print(f"{name:8s} {res:4d} solved at {row['solved_at']:4d}  workers {workers}  "
                  f"{n:4d} samples  {seconds:7.2f} s  {row['samples_per_s']:8.2f} samples/s", flush=True)
    result = {
        "benchmark": "generation_throughput",
        "machine": {"cpu": _cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "loadavg_end": os.getloadavg()},
        "note": "end-to-end sciml.data.generate: GRF sampling, float64 sparse direct solves, HDF5 writing",
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
