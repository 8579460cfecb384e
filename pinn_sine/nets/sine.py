"""SIREN: sigma(z) = sin(omega z) (Sitzmann et al. 2020)."""
from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from .base import Activation, check_positive, siren_init


class Sine(Activation):
    """SIREN activation sigma(z) = sin(omega * z).

    Derivatives: sigma' = omega cos(omega z), sigma'' = -omega^2 sin(omega z),
    sigma''' = -omega^3 cos(omega z).

    Args:
        omega: frequency factor (30 in the SIREN paper; PDE problems usually want a
            smaller first-layer omega, set through ``MLP(first_omega=...)``).
    """

    name = "siren"
    sine_init = True

    def __init__(self, omega: float = 30.0):
        super().__init__()
        self.omega = check_positive("omega", omega, "use e.g. Sine(omega=30.0).")

    def derivatives(self, z: Tensor, order: int = 3) -> tuple[Tensor, ...]:
        w = self.omega
        a = w * z
        s = torch.sin(a)
        if order == 0:
            return (s,)
        c = torch.cos(a)
        out = (s, w * c, -(w * w) * s, -(w ** 3) * c)
        return out[: order + 1]

    def for_layer(self, channels, *, first, omega, generator):
        layer_act = copy.deepcopy(self)
        if omega is not None:
            layer_act.omega = check_positive("omega", omega, "use a positive first_omega/hidden_omega.")
        return layer_act

    def init_linear(self, layer: nn.Linear, *, first: bool, generator: torch.Generator) -> None:
        siren_init(layer, first=first, omega=self.omega, generator=generator)

    def extra_repr(self) -> str:
        return f"omega={self.omega:g}"
