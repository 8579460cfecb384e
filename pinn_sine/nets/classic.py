"""The classic baselines: tanh and ReLU (Glorot initialisation)."""
from __future__ import annotations

import torch
from torch import Tensor

from .base import Activation


class Tanh(Activation):
    """sigma(z) = tanh(z); sigma' = 1 - t^2, sigma'' = -2 t sigma', sigma''' = sigma' (4 t^2 - 2 sigma')."""

    name = "tanh"

    def derivatives(self, z: Tensor, order: int = 3) -> tuple[Tensor, ...]:
        t = torch.tanh(z)
        if order == 0:
            return (t,)
        s1 = 1.0 - t * t
        s2 = -2.0 * t * s1
        s3 = s1 * (4.0 * t * t - 2.0 * s1)
        return (t, s1, s2, s3)[: order + 1]


class ReLU(Activation):
    """sigma(z) = max(z, 0); sigma' = 1[z > 0]; sigma'' = sigma''' = 0 almost everywhere.

    Its second derivative vanishes, so a ReLU network cannot represent a Laplacian:
    it is here as the baseline that shows why periodic activations are used.
    """

    name = "relu"

    def derivatives(self, z: Tensor, order: int = 3) -> tuple[Tensor, ...]:
        r = torch.relu(z)
        if order == 0:
            return (r,)
        s1 = (z > 0).to(z.dtype)
        zero = torch.zeros_like(z)
        return (r, s1, zero, zero)[: order + 1]
