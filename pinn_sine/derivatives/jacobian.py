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

from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from ..constraints import unconstrained
from .forward import JetLayers


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
    term names returning one). Columns follow :func:`jacobian_parameters` (then the
    problem's coefficients). Returns also the slice of rows of each term. The dense form
    of :func:`~pinn_sine.derivatives.linearization.linearize` (``.materialize()``).
    """
    from .linearization import linearize

    lin = linearize(problem, net, batch, weights)
    return lin.r, lin.materialize(), lin.slices
