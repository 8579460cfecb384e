"""The native (PyTorch) activation jets: the reference the Triton kernels match.

Every activation maps a jet through the chain rule

    u = sigma(z),   du_a = sigma'(z) dz_a,   d2u_ab = sigma'(z) d2z_ab + sigma''(z) dz_a dz_b

with sigma and its derivatives from :meth:`Activation.derivatives` (a composite of
torch ops, differentiable to any order). MetaSin instead runs through
:func:`pinn_sine.nets.metasin.metasin_jet`, which loops over its K components and
recomputes them in the backward pass instead of storing (n, C, K) intermediates.
"""
from __future__ import annotations

from torch import Tensor

Pairs = tuple[tuple[int, int], ...]


def chain_rule(s0: Tensor, s1: Tensor, s2: Tensor, dz: Tensor, d2z: Tensor | None,
               pairs: Pairs) -> tuple[Tensor, Tensor, Tensor | None]:
    """(sigma, sigma', sigma'') at z (n, C) and the jet inputs -> (u, du, d2u or None),
    as a composite of torch ops (differentiable to any order)."""
    from ..nets.base import jet_outputs

    return jet_outputs(s0, s1, s2, dz, d2z, tuple(p[0] for p in pairs), tuple(p[1] for p in pairs))


def native_jet(act, z: Tensor, dz: Tensor, d2z: Tensor | None,
               pairs: Pairs) -> tuple[Tensor, Tensor, Tensor | None]:
    """The jet of ``act`` in plain PyTorch; arguments as :meth:`Activation.jet`.

    One autograd node per call with a recomputing, first-order backward: MetaSin's
    :func:`~pinn_sine.nets.metasin.metasin_jet`, the others'
    :func:`~pinn_sine.nets.base.elementwise_jet`.
    """
    from ..nets.base import elementwise_jet
    from ..nets.metasin import MetaSin, metasin_jet

    if isinstance(act, MetaSin):
        act._require_params()
        return metasin_jet(z, dz, d2z, act.c0, act.c, act.f, act.p, tuple(p[0] for p in pairs),
                           tuple(p[1] for p in pairs))
    return elementwise_jet(act, z, dz, d2z, pairs)


def native_value(act, z: Tensor) -> Tensor:
    """sigma(z) in plain PyTorch (autograd stores what the composite needs)."""
    return act.derivatives(z, 0)[0]
