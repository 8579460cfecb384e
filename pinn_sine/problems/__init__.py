"""PDE problems: each defines its inputs, samplers, residual losses and reference solver."""
from .base import FunctionNet, Problem
from .helmholtz import Helmholtz2D, HelmholtzPointSource
from .inpainting import Inpainting
from .poisson import Poisson2D
from .wave import Wave1D, Wave2D

PROBLEMS: dict[str, type[Problem]] = {"poisson2d": Poisson2D, "helmholtz2d": Helmholtz2D,
                                   "helmholtz-point-source": HelmholtzPointSource, "wave1d": Wave1D,
                                   "wave2d": Wave2D, "inpainting": Inpainting}

__all__ = ["Problem", "FunctionNet", "Poisson2D", "Wave1D", "Wave2D", "Inpainting", "Helmholtz2D", "HelmholtzPointSource",
           "PROBLEMS"]
