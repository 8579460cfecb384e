"""Regenerate the small reference fields under tests/data/ (a few hundred kB in all).

    python tests/data/make_data.py

Each file is written by ``save_reference``, so it records the problem, its parameters
(and their hash), the solver, its order and the grid spacing. The cases and sizes are
listed in CASES; tests/test_regression.py recomputes each with the same parameters and
holds the solvers and short training runs against these files.
"""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def cases():
    """(file stem, problem, reference resolution): small grids, the default physics."""
    from pinn_sine.problems import Inpainting, Poisson2D, Wave1D, Wave2D

    out = [
        ("poisson2d", Poisson2D(), 33),
        ("wave1d", Wave1D(time_resolution=33), 33),
        ("wave2d", Wave2D(source_width=0.15, snapshot_times=(0.0, 0.2, 0.4), fd_refine=2), 33),
        ("inpainting", Inpainting("camera", "random:0.5", size=32), None),
    ]
    try:
        from pinn_sine.problems import Helmholtz2D
    except ImportError:  # not every checkout has it
        return out
    return out + [("helmholtz2d", Helmholtz2D(), 33)]


def main() -> None:
    from pinn_sine.validation import save_reference

    for stem, problem, resolution in cases():
        ref = problem.reference(resolution, cache=False)
        path = save_reference(ref, HERE / f"{stem}.h5")
        print(f"{path.name}: {ref.solver} on {ref.grid_shape}, {path.stat().st_size / 1024:.0f} kB")


if __name__ == "__main__":
    main()
