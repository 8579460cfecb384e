"""SciPy finite-difference reference solvers, each verified against analytic solutions,
and what a problem author needs beside them: ``FDSolution`` and its one conversion
``FDSolution.to_reference()``, ``on_grid`` (a function of points as a function of grid
arrays), ``evaluate_on_grid``, ``sparse_lu``/``sparse_solve`` (BLAS held to one thread)."""
from ._solution import FDSolution, evaluate_on_grid, on_grid
from ._sparse import sparse_lu, sparse_solve
from .helmholtz import ResolutionError, helmholtz_2d, points_per_wavelength
from .inpaint import inpaint_biharmonic, inpaint_harmonic, inpaint_tv
from .linear import linear_2d
from .poisson import poisson_2d
from .richardson import richardson
from .wave import wave_1d, wave_2d

__all__ = ["FDSolution", "evaluate_on_grid", "on_grid", "sparse_lu", "sparse_solve", "ResolutionError", "poisson_2d",
           "helmholtz_2d", "richardson", "points_per_wavelength", "wave_1d", "wave_2d", "inpaint_harmonic",
           "inpaint_biharmonic", "inpaint_tv", "linear_2d"]
