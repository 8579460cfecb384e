"""The native (PyTorch) activation jets: the reference the Triton kernels match.

Every activation maps a jet through the chain rule

    u = sigma(z),   du_a = sigma'(z) dz_a,
    d2u_q = sigma'(z) d2z_q + sigma''(z) sum_{(a, b) in T_q} dz_a dz_b

with sigma and its derivatives from :meth:`Activation.derivatives`. A second-order
stream q is a *term* T_q: a tuple of pairs (a, b) of direction slots whose mixed second
derivatives it sums. A single pair is the derivative d2/da db; the diagonal pairs of
several directions give a Laplacian, carried as one stream (Li et al. 2023's forward
Laplacian) instead of one stream per direction.

The engine works on *stacked* jets: one tensor Z (S, n, C) whose slab 0 is the value,
slabs 1..m the first derivatives and slabs 1+m.. the second-order streams (absent
straight after the first linear layer, where they are zero). One matrix product then
maps every stream of a layer at once, and the activation returns its outputs stacked
the same way, so nothing is concatenated or split between layers.

MetaSin runs through :func:`pinn_sine.nets.metasin.metasin_jet`, which loops over its K
components and recomputes them in the backward pass instead of storing (n, C, K)
intermediates; the other families through :func:`pinn_sine.nets.base.elementwise_jet`.
"""
from __future__ import annotations

import torch
from torch import Tensor

Pair = tuple[int, int]
Terms = tuple[tuple[Pair, ...], ...]
#: what the unstacked entry points accept: pairs (a, b) or terms (tuples of pairs)
Pairs = tuple


def as_terms(pairs) -> Terms:
    """Normalise a request for second-order streams to terms.

    Each entry is a pair (a, b) of direction slots (the stream d2/da db) or a tuple of
    pairs, whose sum the stream is: ``((0, 0), (1, 1))`` is the Laplacian over slots 0
    and 1. ``(((0, 0), (1, 1)), (0, 1))`` asks for that Laplacian and the mixed pair.
    """
    terms = []
    for q, entry in enumerate(pairs):
        entry = tuple(entry)
        if len(entry) == 2 and all(isinstance(v, int) for v in entry):
            terms.append((entry,))
            continue
        term = tuple(tuple(p) for p in entry)
        if not term or any(len(p) != 2 or not all(isinstance(v, int) for v in p) for p in term):
            raise ValueError(f"second-order entry {q} must be a pair (a, b) of direction slots or a "
                             f"non-empty tuple of such pairs, got {entry!r}.")
        terms.append(term)
    return tuple(terms)


def flatten_terms(terms: Terms) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(a, b, q): the pairs of all terms in order, and the stream q each belongs to."""
    a = tuple(p[0] for term in terms for p in term)
    b = tuple(p[1] for term in terms for p in term)
    q = tuple(k for k, term in enumerate(terms) for _ in term)
    return a, b, q


def unflatten_terms(a, b, q) -> Terms:
    """Inverse of :func:`flatten_terms`."""
    n_streams = max(q) + 1 if len(q) else 0
    return tuple(tuple((int(a[i]), int(b[i])) for i in range(len(q)) if q[i] == k) for k in range(n_streams))


def chain_rule(s0: Tensor, s1: Tensor, s2: Tensor, dz: Tensor, d2z: Tensor | None,
               pairs: Pairs) -> tuple[Tensor, Tensor, Tensor | None]:
    """(sigma, sigma', sigma'') at z (n, C) and the unstacked jet inputs -> (u, du, d2u or
    None), as a composite of torch ops (differentiable to any order)."""
    from ..nets.base import jet_outputs

    return jet_outputs(s0, s1, s2, dz, d2z, as_terms(pairs))


def native_jet_stacked(act, Z: Tensor, bias: Tensor | None, m: int, terms: Terms) -> Tensor:
    """The stacked jet of ``act`` in plain PyTorch.

    Args:
        act: the activation.
        Z: pre-activation jet (1 + m [+ p], n, C) before the bias: value, m first
            derivatives, and (unless they are zero) the p = len(terms) second-order streams.
        bias: (C,) added to the value slab, or None.
        m: number of first-derivative slabs.
        terms: the p second-order streams (:func:`as_terms`).
    Returns:
        H (1 + m + p, n, C): sigma(z), sigma'(z) dz, and the second-order streams.

    One autograd node with a first-order backward: MetaSin's
    :func:`~pinn_sine.nets.metasin.metasin_jet` (recomputing its K components), SIREN's
    :func:`~pinn_sine.nets.sine.sine_jet` (keeping omega cos(omega z) from the forward),
    the others' :func:`~pinn_sine.nets.base.elementwise_jet` (recomputing sigma').
    """
    from ..nets.base import elementwise_jet
    from ..nets.metasin import MetaSin, metasin_jet
    from ..nets.sine import Sine, sine_jet

    if isinstance(act, MetaSin):
        act._require_params()
        return metasin_jet(Z, bias, act.c0, act.c, act.f, act.p, m, terms)
    if type(act) is Sine:  # sin and cos once per step (a subclass may change sigma)
        return sine_jet(Z, bias, act.omega, m, terms)
    return elementwise_jet(act, Z, bias, m, terms)


def stack_jet(z: Tensor, dz: Tensor, d2z: Tensor | None, terms: Terms) -> Tensor:
    """(z, dz, d2z) -> Z (1 + m [+ p], n, C); d2z is dropped when no term is requested."""
    parts = [z.unsqueeze(0), dz] + ([d2z] if (d2z is not None and terms) else [])
    return torch.cat(parts)


def split_jet(H: Tensor, m: int, terms: Terms) -> tuple[Tensor, Tensor, Tensor | None]:
    """H (1 + m + p, n, C) -> (u, du, d2u or None when no term is requested)."""
    return H[0], H[1:1 + m], (H[1 + m:] if terms else None)


def native_jet(act, z: Tensor, dz: Tensor, d2z: Tensor | None,
               pairs: Pairs) -> tuple[Tensor, Tensor, Tensor | None]:
    """The jet of ``act`` in plain PyTorch, unstacked; arguments as :meth:`Activation.jet`."""
    terms = as_terms(pairs)
    H = native_jet_stacked(act, stack_jet(z, dz, d2z, terms), None, dz.shape[0], terms)
    return split_jet(H, dz.shape[0], terms)


def native_value(act, z: Tensor) -> Tensor:
    """sigma(z) in plain PyTorch (autograd stores what the composite needs)."""
    return act.derivatives(z, 0)[0]
