"""Tensor helpers of the activation jets (the stacked layout, terms): what the native
jets in :mod:`pinn_sine.nets` and the Triton kernels share.

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

The native jets, each one autograd node, live with their activations: MetaSin's
:func:`pinn_sine.nets.metasin.metasin_jet` (it loops over its K components and
recomputes them in the backward pass instead of storing (n, C, K) intermediates),
SIREN's :func:`pinn_sine.nets.sine.sine_jet`, the others'
:func:`pinn_sine.nets.base.elementwise_jet`. This module imports nothing from
:mod:`pinn_sine.nets`.
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
    return jet_outputs(s0, s1, s2, dz, d2z, as_terms(pairs))


def stack_jet(z: Tensor, dz: Tensor, d2z: Tensor | None, terms: Terms) -> Tensor:
    """(z, dz, d2z) -> Z (1 + m [+ p], n, C); d2z is dropped when no term is requested."""
    parts = [z.unsqueeze(0), dz] + ([d2z] if (d2z is not None and terms) else [])
    return torch.cat(parts)


def split_jet(H: Tensor, m: int, terms: Terms) -> tuple[Tensor, Tensor, Tensor | None]:
    """H (1 + m + p, n, C) -> (u, du, d2u or None when no term is requested)."""
    return H[0], H[1:1 + m], (H[1 + m:] if terms else None)


def term_products(dz: Tensor, terms) -> list[Tensor]:
    """P_q = sum_{(a, b) in T_q} dz_a dz_b for every term T_q: the factor of sigma'' in
    the q-th second-order stream. dz is (m, n, C); returns p tensors (n, C).
    Differentiable (the composite path uses it); with grad mode off it accumulates in place."""
    out = []
    inplace = not torch.is_grad_enabled()
    for term in terms:
        (a, b), rest = term[0], term[1:]
        P = dz[a] * dz[b]
        for a, b in rest:
            P = P.addcmul_(dz[a], dz[b]) if inplace else P + dz[a] * dz[b]
        out.append(P)
    return out


def jet_outputs(s0, s1, s2, dz, d2z, terms):
    """The chain rule as a composite of torch ops (differentiable to any order):
    (u, du, d2u or None) from sigma, sigma', sigma'' at z and the unstacked inputs."""
    du = s1 * dz
    if not terms:
        return s0, du, None
    d2u = torch.stack([s2 * P for P in term_products(dz, terms)])
    if d2z is not None:
        d2u = d2u + s1 * d2z
    return s0, du, d2u


# ----- the families' sigma and its derivatives (the activations and the composite path share them)
def sine_derivatives(z: Tensor, omega: float, order: int = 3) -> tuple[Tensor, ...]:
    """sigma = sin(omega z) and its first ``order`` derivatives (SIREN), each shaped like z."""
    w = omega
    a = w * z
    s = torch.sin(a)
    if order == 0:
        return (s,)
    c = torch.cos(a)
    out = (s, w * c, -(w * w) * s, -(w ** 3) * c)
    return out[: order + 1]


def finer_derivatives(z: Tensor, omega: float, order: int = 3) -> tuple[Tensor, ...]:
    """sigma = sin(omega (|z| + 1) z) and its first ``order`` derivatives (FINER), each shaped like z."""
    w = omega
    absz = z.abs()
    a = w * (absz + 1.0) * z
    s = torch.sin(a)
    if order == 0:
        return (s,)
    c = torch.cos(a)
    a1 = w * (2.0 * absz + 1.0)
    s1 = a1 * c
    if order == 1:
        return s, s1
    a2 = (2.0 * w) * torch.sign(z)
    s2 = a2 * c - a1 * a1 * s
    if order == 2:
        return s, s1, s2
    s3 = -3.0 * a1 * a2 * s - a1 * a1 * a1 * c
    return s, s1, s2, s3


def metasin_backward_terms(z: Tensor, G0: Tensor, G1: Tensor, G2: Tensor, c0: Tensor, c: Tensor, f: Tensor,
                           p: Tensor) -> tuple[Tensor, ...]:
    """MetaSin's first three derivatives s1, s2, s3 at z and its parameter gradients, one
    component at a time (no (n, C, K) tensor), for a loss that is locally
    sum(G0 s0 + G1 s1 + G2 s2).

    With theta_j = f_j z + p_j and D_j = G0 cos theta_j - G1 f_j sin theta_j
    - G2 f_j^2 cos theta_j, summed over the points:
        dL/dc_j = sum G0 sin theta_j + G1 f_j cos theta_j - G2 f_j^2 sin theta_j
        dL/dp_j = sum c_j D_j
        dL/df_j = sum c_j (z D_j + G1 cos theta_j - 2 G2 f_j sin theta_j)
        dL/dc0  = sum G0 relu(z) + G1 1[z > 0]
    Returns (s1, s2, s3, dL/dc0 (C,), dL/dc, dL/df, dL/dp (C, K)).
    """
    pos = (z > 0).to(z.dtype)
    s1 = c0 * pos
    s2 = torch.zeros_like(z)
    s3 = torch.zeros_like(z)
    g_c, g_f, g_p = [], [], []
    for j in range(c.shape[1]):
        cj, fj = c[:, j], f[:, j]
        theta = z * fj + p[:, j]
        sn, cs = torch.sin(theta), torch.cos(theta)
        s1 = s1 + (cj * fj) * cs
        s2 = s2 - (cj * fj * fj) * sn
        s3 = s3 - (cj * fj * fj * fj) * cs
        dth = G0 * cs - G1 * fj * sn - G2 * fj * fj * cs
        g_c.append((G0 * sn + G1 * fj * cs - G2 * fj * fj * sn).sum(0))
        g_p.append((cj * dth).sum(0))
        # f_j enters through theta (times z) and through the explicit f, f^2 factors
        g_f.append((cj * (z * dth + G1 * cs - 2.0 * G2 * fj * sn)).sum(0))
    g_c0 = (G0 * torch.relu(z) + G1 * pos).sum(0)
    return s1, s2, s3, g_c0, torch.stack(g_c, 1), torch.stack(g_f, 1), torch.stack(g_p, 1)


def metasin_sigmas(z: Tensor, c0: Tensor, c: Tensor, f: Tensor, p: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """MetaSin's sigma, sigma', sigma'' accumulated one component at a time (no (n, C, K) tensor)."""
    s0 = c0 * torch.relu(z)
    s1 = c0 * (z > 0).to(z.dtype)
    s2 = torch.zeros_like(z)
    for j in range(c.shape[1]):
        cj, fj = c[:, j], f[:, j]
        theta = z * fj + p[:, j]
        sn, cs = torch.sin(theta), torch.cos(theta)
        s0 = s0 + cj * sn
        s1 = s1 + (cj * fj) * cs
        s2 = s2 - (cj * fj * fj) * sn
    return s0, s1, s2
