"""Cost and accuracy of every registered problem's default reference.

    python benchmarks/references.py [--problems poisson2d,wave1d] [--repeats 3] [--resolution N]

For each problem (default constructor, default reference resolution unless
``--resolution``) the reference is computed with ``cache=False`` ``--repeats`` times.
Prints a markdown table: problem, solver, order, grid shape, the reference's own error
estimate and how it was obtained ("-" when the problem gives none), and the median
wall time. A problem whose reference fails is listed with the error instead of a time.
"""
from __future__ import annotations

import argparse
import statistics
import time

from pinn_sine.problems import PROBLEMS


def measure(name: str, repeats: int, resolution: int | None) -> list[str]:
    """One table row for problem ``name``."""
    problem = PROBLEMS[name]()
    times, ref = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        ref = problem.reference(resolution, cache=False)
        times.append(time.perf_counter() - start)
    estimate = "-" if ref.error_estimate is None else f"{ref.error_estimate:.2e}"
    method = ref.error_method or "-"
    shape = " x ".join(str(n) for n in ref.grid_shape)
    return [name, ref.solver, str(ref.order), f"{shape} ({', '.join(ref.coords)})", estimate, method,
            f"{statistics.median(times):.3g}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", default=None, help=f"comma-separated names (default: all of {sorted(PROBLEMS)})")
    ap.add_argument("--repeats", type=int, default=1, help="computations per problem; the median time is shown")
    ap.add_argument("--resolution", type=int, default=None, help="reference resolution (default: each problem's)")
    args = ap.parse_args()
    names = args.problems.split(",") if args.problems else list(PROBLEMS)
    unknown = [n for n in names if n not in PROBLEMS]
    if unknown:
        raise SystemExit(f"Invalid problem(s) {unknown}. Must be among {sorted(PROBLEMS)}.")
    if args.repeats < 1:
        raise SystemExit(f"--repeats must be >= 1, got {args.repeats}.")

    print("| problem | solver | order | resolution | error estimate | method | seconds (median) |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        try:
            row = measure(name, args.repeats, args.resolution)
        except Exception as err:  # one broken solver should not hide the others' numbers
            row = [name, "-", "-", "-", "-", "-", f"failed: {type(err).__name__}: {err}"]
        print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
