"""The default engine: derivatives propagated forward through the layers.

For a linear layer z = h W^T + b the jet maps as
    z = h W^T + b,   dz_a = dh_a W^T,   d2z_q = d2h_q W^T
(the bias touches the value only; for the first layer dh_a is the unit vector e_a, so
dz_a is the weight column W[:, a], broadcast, and d2z = 0). An activation maps
(z, dz, d2z) -> (sigma(z), sigma'(z) dz, sigma'(z) d2z_q + sigma''(z) P_q) with
P_q = sum_{(a, b) in T_q} dz_a dz_b: a second-order stream q is a single pair (a, b) or
a Laplacian (the diagonal pairs of a group of inputs, carried as one stream, Li et al.
2023's forward Laplacian). One forward pass gives every requested derivative, and
training needs only ordinary first-order backpropagation through it.

The streams of a layer are stacked in one tensor (value, m first derivatives, p
second-order streams) of shape (1 + m + p, n, C): one matrix product per layer maps
them all, and the activations take and return that layout
(:meth:`~pinn_sine.nets.Activation.jet_stacked`), so nothing is concatenated or split
between layers.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from ..constraints import ConstrainedNet
from .jet import DerivativeSpec, Jet


@runtime_checkable
class JetLayers(Protocol):
    """The layer protocol the jet engine propagates through (docs/design.md, "The layer
    protocol"); :class:`~pinn_sine.nets.MLP` is one, any module with these attributes
    whose forward is the same chain is another:

        u(x) = linears[L]( act_{L-1}( ... act_0( linears[0]( gamma(x) ) ) ... ) )

    Attributes:
        linears: L + 1 ``nn.Linear`` layers (weights (C_out, C_in), biases (C_out,)).
        activations: L objects with ``jet_stacked(Z, bias, m, terms) -> H``
            (:meth:`~pinn_sine.nets.Activation.jet_stacked`), elementwise.
        encoding: None (gamma = identity) or an input encoding with
            ``jet_stacked(x, dirs, terms) -> H`` (:class:`~pinn_sine.nets.FourierFeatures`).
    """

    linears: Sequence[nn.Linear]
    activations: Sequence[nn.Module]
    encoding: nn.Module | None


def forward_jet(net, x: Tensor, names: tuple[str, ...], spec: DerivativeSpec, *,
                trace: list | None = None) -> Jet:
    """Evaluate a network of the layer protocol (:class:`JetLayers`, e.g. an
    :class:`~pinn_sine.nets.MLP`) and the derivatives in ``spec`` at x (n, d).

    A :class:`~pinn_sine.nets.piecewise.PiecewiseInTime` (what :func:`pinn_sine.march`
    returns): each window's jet on its rows. An :class:`~pinn_sine.nets.ensemble.Ensemble`:
    the mean of its members' jets. A :class:`~pinn_sine.constraints.ConstrainedNet`
    u = g + d N: the jet of its inner network N for the same ``spec`` (``trace`` records N's layers), combined with the
    transform's closed-form derivatives by the product rule
    (:meth:`~pinn_sine.constraints.HardConstraint.combine`).

    ``trace``: a list that receives, per linear layer in order, ``(H, Z)``: the stacked
    streams the layer maps, H (S, n, C_in) (None for the first layer without an input
    encoding, whose streams are x and unit vectors, see :func:`first_layer_streams`),
    and its output Z = H W^T (S', n, C_out) before the bias. Row i of every stream
    belongs to point i, which is what the per-point residual Jacobian
    (:mod:`pinn_sine.derivatives.jacobian`) reads.
    """
    if spec.empty and trace is None:
        return Jet(net(x), {}, {})
    spec.check_names(names)
    if isinstance(net, ConstrainedNet):
        if tuple(names) != net.transform.names:
            raise ValueError(f"the points' inputs {names} are not the constraint's {net.transform.names}.")
        return net.transform.combine(x, spec, forward_jet(net.inner, x, names, spec, trace=trace))
    from ..nets.piecewise import PiecewiseInTime

    if isinstance(net, PiecewiseInTime):  # each window's network on its rows (pinn_sine.march)
        if trace is not None:
            raise ValueError("a network piecewise in time has no single layer trace; take the Jacobian of one "
                             "window's network (net.nets[k]).")
        return net.jet(x, lambda piece, rows: forward_jet(piece, rows, names, spec))
    from ..nets.ensemble import Ensemble

    if isinstance(net, Ensemble):  # the mean of the members' jets (a snapshot ensemble)
        if trace is not None:
            raise ValueError("an ensemble of networks has no single layer trace; take the Jacobian of one member "
                             "(net.nets[k]).")
        return net.jet(lambda member: forward_jet(member, x, names, spec))
    if not isinstance(net, JetLayers):
        raise TypeError(f"the jet engine propagates through networks of the layer protocol (linears, activations, "
                        f"encoding: pinn_sine.derivatives.JetLayers); {type(net).__name__} has "
                        f"{[a for a in ('linears', 'activations', 'encoding') if hasattr(net, a)]} of them. "
                        'Use engine="autograd" for other callables.')
    if len(net.linears) != len(net.activations) + 1:
        raise ValueError(f"{type(net).__name__} has {len(net.linears)} linears and {len(net.activations)} "
                         "activations; the layer protocol needs one linear more than activations (the output layer).")
    dirs_names = spec.directions()
    pairs_names = spec.pairs()
    groups = spec.laplacian_groups()
    dirs = tuple(names.index(n) for n in dirs_names)
    slot = {n: i for i, n in enumerate(dirs_names)}
    terms = (tuple(((slot[a], slot[b]),) for a, b in pairs_names)
             + tuple(tuple((slot[n], slot[n]) for n in group) for group in groups))
    n, m = x.shape[0], len(dirs)

    layers = list(net.linears)
    if net.encoding is not None:
        H = net.encoding.jet_stacked(x, dirs, terms)
        Z = H @ layers[0].weight.T
    else:
        H = None
        W0 = layers[0].weight
        # Input derivatives of the first layer are the weight columns: no product needed.
        dz = W0.T[list(dirs)].unsqueeze(1).expand(m, n, W0.shape[0])
        Z = torch.cat([(x @ W0.T).unsqueeze(0), dz])
    if trace is not None:
        trace.append((H, Z))
    for k, act in enumerate(net.activations):
        H = act.jet_stacked(Z, layers[k].bias, m, terms)
        Z = H @ layers[k + 1].weight.T
        if trace is not None:
            trace.append((H, Z))
    u = Z[0] + layers[-1].bias
    first = {name: Z[1 + i] for i, name in enumerate(dirs_names)}
    second = {pair: Z[1 + m + q] for q, pair in enumerate(pairs_names)}
    laplacians = {group: Z[1 + m + len(pairs_names) + g] for g, group in enumerate(groups)}
    return Jet(u, first, second, laplacians)
