"""The Jacobian of a problem's stacked residual vector with respect to the weights, from
one forward jet pass and one backward pass per residual column.

A residual r_i at point i depends on that point's streams only: every layer maps the
rows of its stacked streams (S, n, C) independently, and the activations act
elementwise. Hence the gradient of sum_i r_i with respect to a layer's output streams
Z (S, n, C_out) holds, in row i, the gradient of r_i alone, and with the layer's input
streams H (S, n, C_in), Z = H W^T,

    dr_i / dW = sum_s  G[s, i, :]^T  H[s, i, :]        (an outer product per point)
    dr_i / db = G[0, i, :]                             (the bias enters the value stream)

for G = d(sum_j r_j)/dZ. One einsum per layer (the cost of a GEMM) turns the ordinary
backward pass into all n rows of the Jacobian, where reverse mode row by row would
need n backward passes.

A hard-constrained network (:class:`~pinn_sine.constraints.ConstrainedNet`, u = g + d N)
keeps this bookkeeping: g and d act point by point and have no parameters, so the
traces and the columns are those of the inner network N, and the transform enters
through G (the backward pass runs through the product rule of the combined jet).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from ..constraints import unconstrained
from .forward import JetLayers, forward_jet


def jacobian_parameters(net: nn.Module) -> list[Tensor]:
    """The trainable parameters the residual Jacobian has columns for, in its column
    order: each linear layer's weight (row-major) then bias. Raises when the network
    has other trainable parameters (e.g. MetaSin's activation coefficients), which the
    per-point bookkeeping of the linear layers does not cover. A
    :class:`~pinn_sine.constraints.ConstrainedNet` has its inner network's columns."""
    net = unconstrained(net)
    if not isinstance(net, JetLayers):
        raise TypeError(f"the residual Jacobian propagates jets through networks of the layer protocol "
                        f"(pinn_sine.derivatives.JetLayers: linears, activations, encoding); got {type(net).__name__}.")
    if any(layer.bias is None for layer in net.linears):
        raise ValueError("the residual Jacobian expects every linear layer of the MLP to have a bias.")
    params = [p for layer in net.linears for p in (layer.weight, layer.bias)]
    known = {id(p) for p in params}
    extra = [name for name, p in net.named_parameters() if p.requires_grad and id(p) not in known]
    if extra:
        raise ValueError(f"Gauss-Newton builds the Jacobian of the linear layers' weights and biases; the network "
                         f"also trains {extra[:4]}{' ...' if len(extra) > 4 else ''} (activation parameters). Freeze "
                         "them first (for p in net.activations.parameters(): p.requires_grad_(False)), or use "
                         "Adam / L-BFGS for this network.")
    frozen = [p for p in params if not p.requires_grad]
    if frozen:
        raise ValueError(f"{len(frozen)} weight or bias tensors of the linear layers are frozen; Gauss-Newton "
                         "updates all of them. Unfreeze them or use Adam / L-BFGS.")
    return params


def first_layer_streams(x: Tensor, dirs: tuple[int, ...], n_streams: int) -> Tensor:
    """The first layer's input streams without an encoding, (n_streams, n, d): the
    value x, the unit vector e_a for each differentiated input a, zeros after."""
    H = x.new_zeros((n_streams,) + tuple(x.shape))
    H[0] = x
    for s, a in enumerate(dirs):
        H[1 + s, :, a] = 1.0
    return H


def residual_jacobian(problem, net: nn.Module, batch: Mapping[str, Tensor],
                      weights: Mapping[str, float] | Callable[[list[str]], Mapping[str, float]]
                      ) -> tuple[Tensor, Tensor, dict[str, slice]]:
    """The weighted residual vector r (N,) and its Jacobian J (N, p) for ``batch``.

    Entry (k, i, c) of r is sqrt(w_k / n_k) r_{k,i,c} over the problem's
    :meth:`~pinn_sine.problems.Problem.residuals`, so that ||r||^2 is the training loss
    sum_k w_k L_k (``weights``: a dict, missing terms 1, or a function of the list of
    term names returning one). Columns follow :func:`jacobian_parameters`. Returns also the slice of
    rows of each term.
    """
    params = jacobian_parameters(net)
    if not problem.has_residuals:
        problem.residuals({}, {})  # raises, saying what to implement
    traces: dict[str, list] = {}
    jets = {}
    dirs: dict[str, tuple[int, ...]] = {}
    for key, spec in problem.derivatives.items():
        if key in batch:
            traces[key] = []
            jets[key] = forward_jet(net, batch[key], problem.input_names, spec, trace=traces[key])
            dirs[key] = tuple(problem.input_names.index(n) for n in spec.directions())
    residuals = problem.residuals(jets, batch)
    if callable(weights):
        weights = weights(list(residuals))
    keys = list(traces)
    flat_Z = [Z for key in keys for _, Z in traces[key]]
    depth = len(unconstrained(net).linears)
    p = sum(q.numel() for q in params)
    total = sum(r.shape[0] * r.shape[1] for r in residuals.values())
    first = next(iter(residuals.values()))
    r_out = first.new_empty(total)
    J = first.new_zeros((total, p))  # rows stay zero where a residual is constant in the weights
    slices, start = {}, 0
    for term, r in residuals.items():
        if r.ndim != 2:
            raise ValueError(f"{type(problem).__name__}.residuals()[{term!r}] has shape {tuple(r.shape)}; "
                             "expected (n, c): one row per point.")
        scale = math.sqrt(float(weights.get(term, 1.0)) / max(r.shape[0], 1))  # an empty set has no rows
        n_rows = r.shape[0]
        for c in range(r.shape[1]):
            rows = slice(start + c * n_rows, start + (c + 1) * n_rows)
            r_out[rows] = r[:, c].detach() * scale
            grads = torch.autograd.grad(r[:, c].sum(), flat_Z, retain_graph=True, allow_unused=True)
            used = [key for j, key in enumerate(keys) if any(g is not None for g in grads[j * depth:(j + 1) * depth])]
            if len(used) > 1:
                raise ValueError(f"the residual term {term!r} depends on the point sets {used}; a per-point "
                                 "Jacobian needs each term's rows to come from one point set.")
            if used:
                key = used[0]
                j = keys.index(key)
                if batch[key].shape[0] != n_rows:
                    raise ValueError(f"the residual term {term!r} has {n_rows} rows but its point set {key!r} "
                                     f"has {batch[key].shape[0]} points; give one residual row per point.")
                _fill_rows(J[rows], traces[key], grads[j * depth:(j + 1) * depth], batch[key], dirs[key], scale)
        slices[term] = slice(start, start + n_rows * r.shape[1])
        start = slices[term].stop
    return r_out, J, slices


def _fill_rows(out: Tensor, trace: list, grads, x: Tensor, dirs: tuple[int, ...], scale: float) -> None:
    """Write the per-point gradient rows (n, p) of one residual column, times ``scale``,
    into ``out`` from its layer traces."""
    col = 0
    for (H, Z), G in zip(trace, grads):
        if G is None:
            G = torch.zeros_like(Z)
        H = first_layer_streams(x.to(Z.dtype), dirs, Z.shape[0]) if H is None else H.detach()
        n_out, n_in = Z.shape[2], H.shape[2]
        block = out[:, col:col + n_out * n_in].view(-1, n_out, n_in)
        block.copy_(torch.einsum("sio,sij->ioj", G, H)).mul_(scale)
        col += n_out * n_in
        out[:, col:col + n_out] = G[0] * scale
        col += n_out
