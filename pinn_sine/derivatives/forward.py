"""The default engine: derivatives propagated forward through the layers.

For a linear layer z = h W^T + b the jet maps as
    z = h W^T + b,   dz_a = dh_a W^T,   d2z_ab = d2h_ab W^T
(the bias touches the value only; for the first layer dh_a is the unit vector e_a, so
dz_a is the weight column W[:, a], broadcast, and d2z = 0). An activation maps
(z, dz, d2z) -> (sigma(z), sigma'(z) dz, sigma'(z) d2z + sigma''(z) dz_a dz_b).
One forward pass gives every requested derivative, and training needs only ordinary
first-order backpropagation through it (Li et al. 2023's forward Laplacian).
"""
from __future__ import annotations

import torch
from torch import Tensor

from .jet import DerivativeSpec, Jet


def forward_jet(net, x: Tensor, names: tuple[str, ...], spec: DerivativeSpec) -> Jet:
    """Evaluate an :class:`~pinn_sine.nets.MLP` and the derivatives in ``spec`` at x (n, d)."""
    if spec.empty:
        return Jet(net(x), {}, {})
    if not hasattr(net, "linears"):
        raise TypeError(f"the jet engine propagates through an MLP; got {type(net).__name__}. "
                        'Use engine="autograd" for other callables.')
    dirs_names = spec.directions()
    pairs_names = spec.pairs()
    dirs = tuple(names.index(n) for n in dirs_names)
    slot = {n: i for i, n in enumerate(dirs_names)}
    pairs = tuple((slot[a], slot[b]) for a, b in pairs_names)
    n = x.shape[0]

    layers = list(net.linears)
    if net.encoding is not None:
        h, dh, d2h = net.encoding.jet(x, dirs, pairs)
        dh = dh.expand(len(dirs), n, dh.shape[-1])
        if d2h is not None:
            d2h = d2h.expand(len(pairs), n, d2h.shape[-1])
        z, dz, d2z = _linear(layers[0], h, dh, d2h)
    else:
        W0 = layers[0].weight
        z = x @ W0.T + layers[0].bias
        # Input derivatives of the first layer are the weight columns: no product needed.
        dz = W0.T[list(dirs)].unsqueeze(1).expand(len(dirs), n, W0.shape[0])
        d2z = None
    for k, act in enumerate(net.activations):
        h, dh, d2h = act.jet(z, dz, d2z, pairs)
        z, dz, d2z = _linear(layers[k + 1], h, dh, d2h)
    first = {name: dz[i] for i, name in enumerate(dirs_names)}
    second = {pair: d2z[q] for q, pair in enumerate(pairs_names)} if pairs else {}
    return Jet(z, first, second)


def _linear(layer, h: Tensor, dh: Tensor, d2h: Tensor | None):
    """One matrix product for the value and every derivative stream (the bias touches
    the value only): fewer, larger GEMMs in the forward and the backward pass."""
    parts = [h.unsqueeze(0), dh] if d2h is None else [h.unsqueeze(0), dh, d2h]
    out = torch.cat(parts) @ layer.weight.T
    m = dh.shape[0]
    z = out[0] + layer.bias
    return z, out[1:1 + m], (None if d2h is None else out[1 + m:])
