"""SciPy finite-difference reference solvers, each verified against analytic solutions."""
from ._solution import FDSolution
from .poisson import poisson_2d

__all__ = ["FDSolution", "poisson_2d"]
