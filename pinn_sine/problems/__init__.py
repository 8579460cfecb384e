"""PDE problems: each defines its inputs, samplers, residual losses and reference solver.

The extension API (docs/design.md, "Extending: a new PDE"): subclass :class:`Problem`,
name derivatives with :class:`~pinn_sine.derivatives.DerivativeSpec`, read them from
the :class:`~pinn_sine.derivatives.Jet`, draw points with :mod:`pinn_sine.sampling`,
check the class with :func:`check_problem` and make it known to the CLI and
``compare`` with :func:`register_problem`.
"""
from .allen_cahn import AllenCahn1D
from .base import TERM_KINDS, FixedSets, FunctionNet, Problem, Term, fixed_sets_digest
from .burgers import Burgers1D
from .conformance import ConformanceError, check_problem
from .helmholtz import Helmholtz2D, HelmholtzPointSource
from .inpainting import Inpainting
from .poisson import Poisson2D, Poisson2DImage
from .registry import PROBLEMS, problem_class, register_problem, unregister_problem
from .wave import Wave1D, Wave2D

for _cls in (Poisson2D, Helmholtz2D, HelmholtzPointSource, Wave1D, Wave2D, Inpainting, Burgers1D, AllenCahn1D):
    register_problem(_cls)
del _cls

__all__ = ["Problem", "Term", "TERM_KINDS", "FixedSets", "fixed_sets_digest", "FunctionNet", "Poisson2D", "Poisson2DImage", "Wave1D", "Wave2D", "Inpainting", "Burgers1D", "AllenCahn1D", "Helmholtz2D",
           "HelmholtzPointSource", "PROBLEMS", "register_problem", "unregister_problem", "problem_class",
           "check_problem", "ConformanceError"]
