"""Derivative engines: forward jets (default), autograd (the reference) and
forward-over-reverse through ``torch.func`` (the strongest PyTorch baseline).

Each returns a :class:`Jet` for a network, points and a :class:`DerivativeSpec`.
"""
from __future__ import annotations

from .autograd import autograd_jet
from .forward import JetLayers, forward_jet
from .func import func_jet
from .jet import DerivativeSpec, Jet
from .linearization import Linearization, fitted_parameters, linearize

ENGINES = {"jet": forward_jet, "autograd": autograd_jet, "func": func_jet}


def get_engine(name: str):
    """The engine function for ``name`` ("jet", "autograd" or "func")."""
    try:
        return ENGINES[name]
    except KeyError:
        raise ValueError(f'Invalid engine "{name}". Must be one of {sorted(ENGINES)}.') from None


def compute_jet(net, x, names, spec: DerivativeSpec, engine: str = "jet") -> Jet:
    return get_engine(engine)(net, x, names, spec)


__all__ = ["DerivativeSpec", "Jet", "JetLayers", "autograd_jet", "forward_jet", "func_jet", "get_engine", "compute_jet", "ENGINES",
           "Linearization", "linearize", "fitted_parameters"]
