"""Random Fourier-feature input encoding (Tancik et al. 2020)."""
from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor, nn


class FourierFeatures(nn.Module):
    """gamma(x) = [cos(2 pi x B^T), sin(2 pi x B^T)] with fixed B ~ N(0, scale^2), B (m, d).

    Derivatives with z = 2 pi x B^T (so dz/dx_a = 2 pi B[:, a], d2z = 0):
        d cos z / dx_a = -sin z * dz_a,   d2 cos z / dx_a dx_b = -cos z * dz_a dz_b
        d sin z / dx_a =  cos z * dz_a,   d2 sin z / dx_a dx_b = -sin z * dz_a dz_b

    Args:
        n_features: m, the number of frequencies (the output has 2 m channels).
        scale: standard deviation of the frequencies.
    """

    def __init__(self, n_features: int = 64, scale: float = 1.0):
        super().__init__()
        if isinstance(n_features, bool) or not (isinstance(n_features, numbers.Integral) and n_features >= 1):
            raise ValueError(f"n_features must be an integer >= 1, got {n_features!r}.")
        if n_features >= 2**31:
            raise ValueError(f"n_features must be an integer >= 1 and < 2**31 (a torch size), got {n_features!r}; "
                             "use e.g. 64.")
        if isinstance(scale, bool) or not (isinstance(scale, numbers.Real) and math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a finite number > 0, got scale={scale!r}; use e.g. 1.0.")
        self.n_features = int(n_features)
        self.scale = float(scale)
        self.in_dim = 0

    def build(self, in_dim: int, generator: torch.Generator) -> "FourierFeatures":
        """A copy with its frequency matrix drawn for ``in_dim`` inputs."""
        enc = FourierFeatures(self.n_features, self.scale)
        enc.in_dim = in_dim
        B = torch.randn(self.n_features, in_dim, generator=generator) * self.scale
        enc.register_buffer("B", B)
        return enc

    @property
    def out_dim(self) -> int:
        return 2 * self.n_features

    def forward(self, x: Tensor) -> Tensor:
        z = (2.0 * math.pi) * x @ self.B.T.to(x.dtype)
        return torch.cat([torch.cos(z), torch.sin(z)], dim=-1)

    def jet(self, x: Tensor, dirs: tuple[int, ...], pairs: tuple):
        """Value (n, 2m), first derivatives (len(dirs), 1, 2m) and second-order streams
        (len(pairs), n, 2m) or None; the first derivatives broadcast over the points.

        ``pairs`` are pairs (i, j) of slots in ``dirs`` or terms (tuples of pairs whose
        sum a stream is, e.g. a Laplacian; see :func:`pinn_sine.kernels.native.as_terms`).
        """
        from ..kernels.native import as_terms

        W = (2.0 * math.pi) * self.B.to(x.dtype)  # (m, d)
        z = x @ W.T
        cz, sz = torch.cos(z), torch.sin(z)
        Wd = W.T[list(dirs)]  # (k, m): dz_k, constant in x
        dz = Wd.unsqueeze(1)
        du = torch.cat([-sz * dz, cz * dz], dim=-1)
        d2u = None
        terms = as_terms(pairs)
        if terms:
            prod = torch.stack([sum(Wd[i] * Wd[j] for i, j in term) for term in terms]).unsqueeze(1)
            d2u = torch.cat([-cz * prod, -sz * prod], dim=-1)
        return torch.cat([cz, sz], dim=-1), du, d2u

    def jet_stacked(self, x: Tensor, dirs: tuple[int, ...], terms) -> Tensor:
        """:meth:`jet` stacked to (1 + len(dirs) + len(terms), n, 2m), the engine's layout."""
        h, dh, d2h = self.jet(x, dirs, terms)
        parts = [h.unsqueeze(0), dh.expand(len(dirs), *h.shape)]
        return torch.cat(parts if d2h is None else parts + [d2h])

    def extra_repr(self) -> str:
        return f"n_features={self.n_features}, scale={self.scale:g}"
