"""SIREN: sigma(z) = sin(omega z) (Sitzmann et al. 2020)."""
from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from .._checks import positive
from ..kernels import ops
from ..kernels.compiled import compiled_jet_stacked
from ..kernels.native import sine_derivatives
from .base import (Activation, elementwise_jet, fused_kernel, siren_init, stacked_coefficients, stacked_input_grads,
                   stacked_outputs)


@fused_kernel
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
        self.omega = positive("omega", omega, "use e.g. Sine(omega=30.0).")

    def derivatives(self, z: Tensor, order: int = 3) -> tuple[Tensor, ...]:
        return sine_derivatives(z, self.omega, order)

    def for_layer(self, channels, *, first, omega, generator):
        layer_act = copy.deepcopy(self)
        if omega is not None:
            layer_act.omega = positive("omega", omega, "use a positive first_omega/hidden_omega.")
        return layer_act

    def init_linear(self, layer: nn.Linear, *, first: bool, generator: torch.Generator) -> None:
        siren_init(layer, first=first, omega=self.omega, generator=generator)

    def native_jet_stacked(self, Z, bias, m, terms):
        if type(self) is Sine:  # sin and cos once per step (a subclass may change sigma)
            return sine_jet(Z, bias, self.omega, m, terms)
        return elementwise_jet(self, Z, bias, m, terms)

    def compiled_jet_stacked(self, Z, bias, m, terms):
        return compiled_jet_stacked(Z, bias, "sine", self.omega, m, terms)

    def kernel_value(self, z):
        return ops.sine_value_triton(z, self.omega)

    def kernel_jet(self, z, dz, d2z, terms):
        return ops.sine_jet_triton(z, dz, d2z, self.omega, terms)

    def kernel_jet_stacked(self, Z, bias, m, terms):
        return ops.jet_stacked_triton(Z, bias, m, terms, omega=self.omega)

    def extra_repr(self) -> str:
        return f"omega={self.omega:g}"


class SineJet(torch.autograd.Function):
    """(Z, bias) -> H for sigma(z) = sin(omega z) on stacked jets: the SIREN special case
    of :class:`~pinn_sine.nets.base.ElementwiseJet`.

    sin and cos of omega z are evaluated once, in the forward: the backward reads
    sigma = H_0 (the output, alive anyway as the next layer's saved input) and keeps
    s1 = omega cos(omega z) (one (n, C) buffer), since the second and third derivatives
    are -omega^2 sigma and -omega^2 s1. A training step so evaluates each sine and
    cosine once, not twice.
    """

    @staticmethod
    def forward(ctx, Z, bias, omega, m, terms):
        with torch.no_grad():
            a = Z[0] * omega if bias is None else torch.add(Z[0], bias).mul_(omega)
            s0 = torch.sin(a)
            s1 = a.cos_().mul_(omega)
            H = stacked_outputs(s0, s1, s0 * -(omega * omega), Z, m, terms)
        ctx.save_for_backward(Z, s1, H)
        ctx.omega, ctx.m, ctx.terms, ctx.has_bias = omega, m, terms, bias is not None
        return H

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, G):
        Z, s1, H = ctx.saved_tensors
        w2 = ctx.omega * ctx.omega
        G1, G2 = stacked_coefficients(Z, G, ctx.m, ctx.terms)
        gZ = stacked_input_grads(s1, H[0] * -w2, s1 * -w2, G1, G2, Z, G, ctx.m, ctx.terms)
        return gZ, (gZ[0].sum(0) if ctx.has_bias else None), None, None, None


def sine_jet(Z, bias, omega: float, m: int, terms):
    """The stacked SIREN jet through :class:`SineJet`; arguments as
    :meth:`~pinn_sine.nets.Activation.jet_stacked`."""
    return SineJet.apply(Z, bias, float(omega), m, tuple(terms))
