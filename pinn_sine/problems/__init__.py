"""PDE problems: each defines its inputs, samplers, residual losses and reference solver."""
from .base import FunctionNet, Problem
from .poisson import Poisson2D

PROBLEMS: dict[str, type[Problem]] = {"poisson2d": Poisson2D}

__all__ = ["Problem", "FunctionNet", "Poisson2D", "PROBLEMS"]
