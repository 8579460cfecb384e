"""SciPy finite-difference reference solvers, each verified against analytic solutions."""
from ._solution import FDSolution
from .helmholtz import helmholtz_2d, points_per_wavelength
from .inpaint import inpaint_biharmonic, inpaint_harmonic, inpaint_tv
from .poisson import poisson_2d
from .richardson import richardson
from .wave import wave_1d, wave_2d

__all__ = ["FDSolution", "poisson_2d", "helmholtz_2d", "richardson", "points_per_wavelength", "wave_1d", "wave_2d", "inpaint_harmonic", "inpaint_biharmonic",
           "inpaint_tv"]
