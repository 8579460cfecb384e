"""The activation interface every family implements.

An activation is an elementwise function sigma applied to pre-activations z of shape
(n, C). It knows its own derivatives (up to third order) and how it wants the linear
layer in front of it initialised, so the MLP, the derivative engines and the kernels
never special-case a family.
"""
from __future__ import annotations

import copy
import math

import torch
from torch import Tensor, nn

from ..kernels import activation_jet, activation_value


class Activation(nn.Module):
    """Base class of the elementwise activations.

    Subclasses implement :meth:`derivatives` (sigma and its first ``order`` derivatives
    with respect to z, all of shape (n, C)) and may override :meth:`init_linear` and
    :meth:`for_layer`. The default :meth:`jet` maps the derivative inputs of a layer
    through the chain rule:

        u      = sigma(z)
        du_a   = sigma'(z) dz_a
        d2u_ab = sigma'(z) d2z_ab + sigma''(z) dz_a dz_b
    """

    #: short name used by the CLI and in tables
    name: str = "activation"
    #: whether the SIREN initialisation (and the omega knobs of MLP) apply
    sine_init: bool = False

    def derivatives(self, z: Tensor, order: int = 3) -> tuple[Tensor, ...]:
        """Return (sigma(z), sigma'(z), ..., sigma^(order)(z)), each shaped like z."""
        raise NotImplementedError

    def forward(self, z: Tensor) -> Tensor:
        """sigma(z), on the backend :mod:`pinn_sine.kernels` picks."""
        return activation_value(self, z)

    def jet(
        self,
        z: Tensor,
        dz: Tensor,
        d2z: Tensor | None,
        pairs: tuple[tuple[int, int], ...],
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Push a jet through the activation.

        Args:
            z: pre-activations (n, C).
            dz: first derivatives of z, one slice per direction (m, n, C).
            d2z: second derivatives of z, one slice per pair (p, n, C), or None when
                they are zero (straight after the first linear layer).
            pairs: the p pairs (a, b) of direction slots in ``dz``.
        Returns:
            (u (n, C), du (m, n, C), d2u (p, n, C) or None when no pair is requested).

        Runs on the backend :mod:`pinn_sine.kernels` picks: the fused Triton kernel for
        CUDA tensors of Sine/Finer/MetaSin, else the native path (for parameter-free
        activations :class:`ElementwiseJet`, one autograd node that saves only its inputs
        and recomputes the derivatives of sigma in the backward pass).
        """
        return activation_jet(self, z, dz, d2z, pairs)

    # ----- construction -------------------------------------------------------------
    def for_layer(self, channels: int, *, first: bool, omega: float | None,
                  generator: torch.Generator) -> "Activation":
        """A fresh copy of this activation for one hidden layer of ``channels`` units.

        ``omega`` overrides the frequency of sine-type activations for this layer
        (MLP's ``first_omega``/``hidden_omega``); families without an omega reject it.
        """
        if omega is not None:
            raise ValueError(
                f"{type(self).__name__} has no omega; got omega={omega}. "
                "Pass first_omega/hidden_omega only with Sine or Finer."
            )
        return copy.deepcopy(self)

    @torch.no_grad()
    def init_linear(self, layer: nn.Linear, *, first: bool, generator: torch.Generator) -> None:
        """Glorot-uniform weights and zero bias (the classic choice for tanh/ReLU)."""
        fan_out, fan_in = layer.weight.shape
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        layer.weight.uniform_(-bound, bound, generator=generator)
        layer.bias.zero_()

    def extra_repr(self) -> str:
        return ""


def jet_outputs(s0, s1, s2, dz, d2z, a, b):
    du = s1 * dz
    if not a:
        return s0, du, None
    d2u = s2 * dz[list(a)] * dz[list(b)]
    if d2z is not None:
        d2u = d2u + s1 * d2z
    return s0, du, d2u


def jet_coefficients(dz, d2z, a, b, gDU, gD2U):
    """G1 = sum_m gDU_m dz_m + sum_q gD2U_q d2z_q and G2 = sum_q gD2U_q dz_aq dz_bq.

    With them the loss is locally sum(gU s0 + G1 s1 + G2 s2), s_k the k-th derivative
    of sigma at z: what the backward of every activation jet needs.
    """
    G1 = (gDU * dz).sum(0)
    if not a:
        return G1, torch.zeros_like(G1)
    if d2z is not None:
        G1 = G1 + (gD2U * d2z).sum(0)
    return G1, (gD2U * dz[list(a)] * dz[list(b)]).sum(0)


def jet_input_grads(s1, s2, s3, G1, G2, dz, d2z, a, b, gU, gDU, gD2U):
    """Gradients of a jet's inputs from those of its outputs (see :func:`jet_coefficients`):

        dL/dz     = gU s1 + G1 s2 + G2 s3
        dL/ddz_m  = gDU_m s1 + s2 sum_q gD2U_q (dz_bq [aq = m] + dz_aq [bq = m])
        dL/dd2z_q = gD2U_q s1
    Returns (gz, gdz, gd2z or None when d2z is None).
    """
    gz = gU * s1 + G1 * s2 + G2 * s3
    gdz = gDU * s1
    if a:
        s2g = gD2U * s2
        for q, (ia, ib) in enumerate(zip(a, b)):
            gdz[ia] += s2g[q] * dz[ib]
            gdz[ib] += s2g[q] * dz[ia]
    gd2z = gD2U * s1 if (a and d2z is not None) else None
    return gz, gdz, gd2z


class ElementwiseJet(torch.autograd.Function):
    """(z, dz, d2z) -> (s0, s1 dz, s1 d2z + s2 dz_a dz_b) for an activation without
    parameters (s_k the k-th derivative of sigma at z), as one autograd node.

    The forward keeps no intermediates: the backward recomputes s1, s2, s3 from z (one
    evaluation of the activation's sines and cosines) and applies
    :func:`jet_coefficients` and :func:`jet_input_grads`. First-order only (``once_differentiable``): training needs
    no more, and the composite :meth:`Activation.derivatives` path serves higher orders
    (the autograd engine).
    """

    @staticmethod
    def forward(ctx, z, dz, d2z, act, a, b):
        with torch.no_grad():
            s0, s1, s2 = act.derivatives(z, 2)
            out = jet_outputs(s0, s1, s2, dz, d2z, a, b)
        ctx.save_for_backward(z, dz, d2z)
        ctx.act, ctx.a, ctx.b = act, a, b
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gU, gDU, gD2U):
        z, dz, d2z = ctx.saved_tensors
        _, s1, s2, s3 = ctx.act.derivatives(z, 3)
        G1, G2 = jet_coefficients(dz, d2z, ctx.a, ctx.b, gDU, gD2U)
        gz, gdz, gd2z = jet_input_grads(s1, s2, s3, G1, G2, dz, d2z, ctx.a, ctx.b, gU, gDU, gD2U)
        return gz, gdz, gd2z, None, None, None


def elementwise_jet(act, z, dz, d2z, pairs):
    """The jet of a parameter-free activation through :class:`ElementwiseJet`."""
    a = tuple(p[0] for p in pairs)
    b = tuple(p[1] for p in pairs)
    return ElementwiseJet.apply(z, dz, d2z, act, a, b)


@torch.no_grad()
def siren_init(layer: nn.Linear, *, first: bool, omega: float, generator: torch.Generator) -> None:
    """SIREN initialisation (Sitzmann et al. 2020).

    First layer: W ~ U(-1/n, 1/n). Hidden layers: W ~ U(-sqrt(6/n)/omega, sqrt(6/n)/omega),
    so that the weight part omega W x of the next sine's argument is about N(0, 1).
    Bias ~ U(-1/sqrt(n), 1/sqrt(n)) as in the SIREN code (PyTorch's default range, drawn
    from the explicit generator); multiplied by omega it adds omega^2/(3n) to the
    argument's variance, which spreads it over more periods and keeps the sine's output
    arcsine-distributed (std 1/sqrt(2)) through the layers.
    """
    n = layer.weight.shape[1]
    bound = 1.0 / n if first else math.sqrt(6.0 / n) / omega
    layer.weight.uniform_(-bound, bound, generator=generator)
    b = 1.0 / math.sqrt(n)
    layer.bias.uniform_(-b, b, generator=generator)


def check_positive(name: str, value: float, fix: str) -> float:
    """Raise a ValueError naming ``value`` unless it is a finite positive number."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {name}={value!r}; {fix}")
    return float(value)
