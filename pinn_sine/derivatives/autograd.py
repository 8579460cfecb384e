"""The reference engine: derivatives by reverse-mode autograd (create_graph=True)."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .jet import DerivativeSpec, Jet


def autograd_jet(net: nn.Module, x: Tensor, names: tuple[str, ...], spec: DerivativeSpec) -> Jet:
    """Evaluate ``net`` at x (n, d) and the derivatives in ``spec`` by nested autograd.

    Works for any pointwise network (row i of the output depends only on row i of x),
    including callables that are not MLPs (exact solutions wrapped as modules). This is
    reverse-over-reverse: slow and memory hungry, but it is the reference.
    """
    if spec.empty:
        return Jet(net(x), {}, {})
    x = x.detach().requires_grad_(True)
    u = net(x)
    index = {n: i for i, n in enumerate(names)}
    grads = []  # per output: (n, d)
    for o in range(u.shape[1]):
        (g,) = torch.autograd.grad(u[:, o].sum(), x, create_graph=True)
        grads.append(g)
    first = {n: torch.stack([g[:, index[n]] for g in grads], dim=1) for n in spec.directions()}
    second = {}
    for a, b in spec.pairs():
        cols = []
        for g in grads:
            (h,) = torch.autograd.grad(g[:, index[a]].sum(), x, create_graph=True)
            cols.append(h[:, index[b]])
        second[(a, b)] = torch.stack(cols, dim=1)
    return Jet(u, first, second)
