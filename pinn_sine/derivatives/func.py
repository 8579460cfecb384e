"""Forward-over-reverse derivatives through ``torch.func``: the strongest PyTorch baseline.

Per point x_i, with u_i(x) = net(x)[0] the network at one point (out,):

    g_i(x)       = jacrev(u_i)(x)                          (out, d)   reverse mode
    H_i(x) e_b   = jvp(g_i, (x,), (e_b,))                  (out, d)   forward over reverse

vmapped over the points and over the needed directions e_b, so one batched program gives
the gradient and every Hessian column the spec needs: pair (a, b) reads column b, row a;
a Laplacian group sums the diagonal entries of its columns. This is what the collapsed-
Taylor paper (Dangel et al., NeurIPS 2025) measures the Taylor-mode Laplacian against. It
works for any pointwise network written with ``torch.func``-compatible operations (a
fused Triton kernel is not); the network's weights are closed over, so the loss
backpropagates to them with ordinary autograd.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import jacrev, jvp, vmap

from .jet import DerivativeSpec, Jet


def func_jet(net: nn.Module, x: Tensor, names: tuple[str, ...], spec: DerivativeSpec) -> Jet:
    """Evaluate ``net`` at x (n, d) and the derivatives in ``spec`` by forward-over-reverse
    ``torch.func`` transforms (module docstring): one ``jacrev`` for the gradient, one
    ``jvp`` of it per input column that a pair or a Laplacian group needs."""
    if spec.empty:
        return Jet(net(x), {}, {})
    spec.check_names(names)
    index = {n: i for i, n in enumerate(names)}
    pairs, groups = spec.pairs(), spec.laplacian_groups()
    columns = list(dict.fromkeys([b for _, b in pairs] + [a for group in groups for a in group]))

    def point(xi: Tensor) -> Tensor:
        return net(xi.unsqueeze(0))[0]

    gradient = jacrev(point)
    u = net(x)
    if not columns:
        g = vmap(gradient)(x)  # (n, out, d)
        return Jet(u, {n: g[:, :, index[n]] for n in spec.directions()}, {})
    basis = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)[[index[b] for b in columns]]

    def columns_at(xi: Tensor) -> tuple[Tensor, Tensor]:
        g, h = vmap(lambda v: jvp(gradient, (xi,), (v,)))(basis)
        return g[0], h  # (out, d) (the same for every direction), (columns, out, d)

    g, h = vmap(columns_at)(x)
    col = {b: k for k, b in enumerate(columns)}
    first = {n: g[:, :, index[n]] for n in spec.directions()}
    second = {(a, b): h[:, col[b], :, index[a]] for a, b in pairs}
    laplacians = {group: sum(h[:, col[a], :, index[a]] for a in group) for group in groups}
    return Jet(u, first, second, laplacians)
