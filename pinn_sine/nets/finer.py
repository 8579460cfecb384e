"""FINER: sigma(z) = sin(omega (|z| + 1) z) (Liu et al., CVPR 2024)."""
from __future__ import annotations

import copy
import math
import numbers

import torch
from torch import Tensor, nn

from .._checks import positive
from ..kernels import ops
from ..kernels.compiled import compiled_jet_stacked
from ..kernels.native import finer_derivatives
from .base import Activation, fused_kernel, siren_init


@fused_kernel
class Finer(Activation):
    """FINER's variable-periodic activation sigma(z) = sin(omega * (|z| + 1) * z).

    With a(z) = omega (|z| + 1) z the derivatives are (away from z = 0, and with
    sign(0) = 0 exactly where autograd puts it):

        a'  = omega (2|z| + 1),   a'' = 2 omega sign(z),   a''' = 0
        sigma'   = a' cos a
        sigma''  = a'' cos a - a'^2 sin a
        sigma''' = -3 a' a'' sin a - a'^3 cos a

    The scale (|z| + 1) is part of the function: its derivative is never dropped.
    Weights use the SIREN initialisation; the first layer's bias is drawn from
    U(-k, k) with k = ``first_bias_k`` (larger k widens the frequency support, the
    FINER paper's NTK argument).

    Args:
        omega: frequency factor (30 by default, as in SIREN).
        first_bias_k: half-width k of the first layer's bias distribution.
    """

    name = "finer"
    sine_init = True

    def __init__(self, omega: float = 30.0, first_bias_k: float = 1.0):
        super().__init__()
        self.omega = positive("omega", omega, "use e.g. Finer(omega=30.0).")
        if isinstance(first_bias_k, bool) or not (isinstance(first_bias_k, numbers.Real)
                                                  and math.isfinite(first_bias_k) and first_bias_k >= 0):
            raise ValueError(f"first_bias_k must be a finite number >= 0, got first_bias_k={first_bias_k!r}; "
                             "use e.g. 1.0.")
        self.first_bias_k = float(first_bias_k)

    def derivatives(self, z: Tensor, order: int = 3) -> tuple[Tensor, ...]:
        return finer_derivatives(z, self.omega, order)

    def for_layer(self, channels, *, first, omega, generator):
        layer_act = copy.deepcopy(self)
        if omega is not None:
            layer_act.omega = positive("omega", omega, "use a positive first_omega/hidden_omega.")
        return layer_act

    @torch.no_grad()
    def init_linear(self, layer: nn.Linear, *, first: bool, generator: torch.Generator) -> None:
        siren_init(layer, first=first, omega=self.omega, generator=generator)
        if first:
            layer.bias.uniform_(-self.first_bias_k, self.first_bias_k, generator=generator)

    def compiled_jet_stacked(self, Z, bias, m, terms):
        return compiled_jet_stacked(Z, bias, "finer", self.omega, m, terms)

    def kernel_value(self, z):
        return ops.sine_value_triton(z, self.omega, finer=True)

    def kernel_jet(self, z, dz, d2z, terms):
        return ops.sine_jet_triton(z, dz, d2z, self.omega, terms, finer=True)

    def kernel_jet_stacked(self, Z, bias, m, terms):
        return ops.jet_stacked_triton(Z, bias, m, terms, omega=self.omega, finer=True)

    def extra_repr(self) -> str:
        return f"omega={self.omega:g}, first_bias_k={self.first_bias_k:g}"
