"""Solve time of fd.poisson_2d at 256^2 .. 1024^2 for the sine-transform and sparse paths.

    python benchmarks/fd_poisson.py [--repeats 5] [--sizes 257,513,1025]

Prints a markdown table of median wall times over the repeats and the max error
against the manufactured solution u = sin(pi x) sin(2 pi y) (zero Dirichlet data).
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from pinn_sine.validation import fd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sizes", default="257,513,1025")
    ap.add_argument("--sparse-max", type=int, default=513, help="largest size for the sparse path (1025 takes ~40 s)")
    args = ap.parse_args()

    def u(X, Y):
        return np.sin(np.pi * X) * np.sin(2 * np.pi * Y)

    def f(X, Y):
        return -5 * np.pi**2 * u(X, Y)

    print("| n (nodes per side) | method | median time [s] | min [s] | max error |")
    print("|---|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        for method in ("dst", "sparse"):
            if method == "sparse" and n > args.sparse_max:
                continue
            times = []
            for _ in range(args.repeats if method == "dst" else max(1, args.repeats // 2)):
                t = time.perf_counter()
                sol = fd.poisson_2d(f, None, n=(n, n), method=method)
                times.append(time.perf_counter() - t)
            X, Y = np.meshgrid(sol.coords["x"], sol.coords["y"], indexing="ij")
            err = np.abs(sol.fields["u"] - u(X, Y)).max()
            print(f"| {n} | {method} | {statistics.median(times):.3f} | {min(times):.3f} | {err:.2e} |")


if __name__ == "__main__":
    main()
