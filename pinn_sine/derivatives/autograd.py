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
    spec.check_names(names)
    x = x.detach().requires_grad_(True)
    u = net(x)
    index = {n: i for i, n in enumerate(names)}
    grads = []  # per output: (n, d)
    for o in range(u.shape[1]):
        grads.append(grad_or_zero(u[:, o], x, create_graph=True))  # zero for a constant output
    first = {n: torch.stack([g[:, index[n]] for g in grads], dim=1) for n in spec.directions()}
    hess_rows = {}  # (output, a) -> d(du/da)/dx, (n, d)

    def d2(o, a, b):
        if (o, a) not in hess_rows:
            hess_rows[(o, a)] = grad_or_zero(grads[o][:, index[a]], x, create_graph=True)  # zero: linear
        return hess_rows[(o, a)][:, index[b]]

    outs = range(u.shape[1])
    second = {(a, b): torch.stack([d2(o, a, b) for o in outs], dim=1) for a, b in spec.pairs()}
    laplacians = {group: torch.stack([sum(d2(o, a, a) for a in group) for o in outs], dim=1)
                  for group in spec.laplacian_groups()}
    return Jet(u, first, second, laplacians)


def grad_or_zero(y: Tensor, x: Tensor, *, create_graph: bool = False) -> Tensor:
    """d(sum y)/dx (the shape of x) by autograd, zero where y does not depend on x: a
    constant u, or the constant gradient of a linear one, has no graph to differentiate
    (plain ``autograd.grad`` raises). For problem data such as a user's exact solution."""
    if not (isinstance(y, Tensor) and y.requires_grad):
        return torch.zeros_like(x)
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=create_graph, retain_graph=True, allow_unused=True)
    return torch.zeros_like(x) if g is None else g
