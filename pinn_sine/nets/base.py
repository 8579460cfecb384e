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

from ..kernels.dispatch import backend_for, requested_backend
from ..kernels.native import as_terms, split_jet, stack_jet, term_products

#: the exact classes with a fused Triton kernel (:func:`fused_kernel`); a subclass may
#: change sigma, which the kernel would not know, so it takes the native path
_FUSED: set[type] = set()


def fused_kernel(cls: type) -> type:
    """Mark the activation class ``cls`` (exactly it, not its subclasses) as computed by
    its ``kernel_*`` methods wherever :func:`pinn_sine.kernels.backend_for` picks Triton."""
    _FUSED.add(cls)
    return cls


class Activation(nn.Module):
    """Base class of the elementwise activations.

    Subclasses implement :meth:`derivatives` (sigma and its first ``order`` derivatives
    with respect to z, all of shape (n, C)) and may override :meth:`init_linear` and
    :meth:`for_layer`. The default :meth:`jet` maps the derivative inputs of a layer
    through the chain rule:

        u      = sigma(z)
        du_a   = sigma'(z) dz_a
        d2u_q  = sigma'(z) d2z_q + sigma''(z) sum_{(a, b) in T_q} dz_a dz_b
    (a second-order stream q sums the mixed derivatives of the pairs in its term T_q:
    one pair, or the diagonal pairs of a Laplacian).
    """

    #: short name used by the CLI and in tables
    name: str = "activation"
    #: whether the SIREN initialisation (and the omega knobs of MLP) apply
    sine_init: bool = False

    def derivatives(self, z: Tensor, order: int = 3) -> tuple[Tensor, ...]:
        """Return (sigma(z), sigma'(z), ..., sigma^(order)(z)), each shaped like z."""
        raise NotImplementedError

    def forward(self, z: Tensor) -> Tensor:
        """sigma(z), z (..., C) channels last: the fused kernel where
        :func:`~pinn_sine.kernels.backend_for` picks Triton, else :meth:`derivatives`."""
        if z.dim() > 0 and self._fused(z):
            return self.kernel_value(z.reshape(-1, z.shape[-1])).reshape(z.shape)
        return native_value(self, z)

    def jet(
        self,
        z: Tensor,
        dz: Tensor,
        d2z: Tensor | None,
        pairs: tuple,
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Push a jet through the activation.

        Args:
            z: pre-activations (n, C).
            dz: first derivatives of z, one slice per direction (m, n, C).
            d2z: second-order streams of z, one slice per entry of ``pairs`` (p, n, C),
                or None when they are zero (straight after the first linear layer).
            pairs: the p second-order streams: pairs (a, b) of direction slots in
                ``dz``, or tuples of pairs whose sum a stream carries (a Laplacian).
        Returns:
            (u (n, C), du (m, n, C), d2u (p, n, C) or None when no stream is requested).

        The fused kernel for CUDA tensors of Sine/Finer/MetaSin, else the native path
        (:meth:`native_jet_stacked`). The derivative engine calls :meth:`jet_stacked`.
        """
        terms = as_terms(pairs)
        if self._fused(z):
            return self.kernel_jet(z, dz, d2z, terms)
        return native_jet(self, z, dz, d2z, terms)

    def jet_stacked(self, Z: Tensor, bias: Tensor | None, m: int, terms) -> Tensor:
        """The jet on stacked slabs, what the derivative engine calls per layer.

        Args:
            Z: the linear layer's output before its bias, (1 + m [+ p], n, C): value, m
                first derivatives and, unless they are zero, the p second-order streams.
            bias: the layer's bias (C,), added to the value slab here, or None.
            m: the number of first-derivative slabs.
            terms: the p second-order streams (:func:`~pinn_sine.kernels.native.as_terms`).
        Returns:
            H (1 + m + p, n, C). One autograd node whichever backend
            (:func:`~pinn_sine.kernels.backend_for`) runs it: the fused kernel
            (:meth:`kernel_jet_stacked`), the compiled node (:meth:`compiled_jet_stacked`)
            or :meth:`native_jet_stacked`.
        """
        backend = self._backend(Z)
        if backend == "triton":
            return self.kernel_jet_stacked(Z, bias, m, terms)
        if backend == "compiled":
            return self.compiled_jet_stacked(Z, bias, m, terms)
        return self.native_jet_stacked(Z, bias, m, terms)

    def native_jet_stacked(self, Z: Tensor, bias: Tensor | None, m: int, terms) -> Tensor:
        """The stacked jet in plain PyTorch: :class:`ElementwiseJet`, one autograd node that
        saves only its inputs and recomputes the derivatives of sigma in the backward
        pass. Families with a cheaper node (SIREN, MetaSin) override it."""
        return elementwise_jet(self, Z, bias, m, terms)

    # ----- the fused kernels (families marked with fused_kernel) --------------------------
    def kernel_value(self, z: Tensor) -> Tensor:
        """sigma(z) by the fused kernel, z (n, C)."""
        raise NotImplementedError(f"{type(self).__name__} has no fused kernel.")

    def kernel_jet(self, z: Tensor, dz: Tensor, d2z: Tensor | None, terms) -> tuple:
        """:meth:`jet` by the fused kernel."""
        raise NotImplementedError(f"{type(self).__name__} has no fused kernel.")

    def kernel_jet_stacked(self, Z: Tensor, bias: Tensor | None, m: int, terms) -> Tensor:
        """:meth:`jet_stacked` by the fused kernel."""
        raise NotImplementedError(f"{type(self).__name__} has no fused kernel.")

    def compiled_jet_stacked(self, Z: Tensor, bias: Tensor | None, m: int, terms) -> Tensor:
        """:meth:`jet_stacked` under the "compiled" backend: the families with a compiled
        node (:mod:`pinn_sine.kernels.compiled`: SIREN, FINER) override it; the others run
        :meth:`native_jet_stacked`."""
        return self.native_jet_stacked(Z, bias, m, terms)

    def _backend(self, z: Tensor) -> str:
        """The backend that runs this activation on ``z``: "triton", "compiled" or "native"
        (an exact class marked :func:`fused_kernel`, else "native"; the backend choice is
        validated either way)."""
        if type(self) not in _FUSED:
            requested_backend()
            return "native"
        return backend_for(z)

    def _fused(self, z: Tensor) -> bool:
        """Whether the fused kernel runs on ``z``."""
        return self._backend(z) == "triton"

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


def stacked_outputs(s0: Tensor, s1: Tensor, s2: Tensor, Z: Tensor, m: int, terms) -> Tensor:
    """H (1 + m + p, n, C) from sigma, sigma', sigma'' at z and the stacked inputs Z
    (1 + m [+ p], n, C), without autograd (the forward of the jet nodes):

        H_0 = s0,   H_k = s1 Z_k (every derivative slab),   H_{1+m+q} += s2 P_q
    """
    S_in = Z.shape[0]
    H = Z.new_empty((1 + m + len(terms),) + tuple(s0.shape))
    H[0] = s0
    torch.mul(Z[1:], s1, out=H[1:S_in])
    for q, P in enumerate(term_products(Z[1:1 + m], terms)):
        if S_in > 1 + m:
            H[1 + m + q].addcmul_(P, s2)
        else:
            torch.mul(P, s2, out=H[1 + m + q])
    return H


def stacked_coefficients(Z: Tensor, G: Tensor, m: int, terms) -> tuple[Tensor, Tensor]:
    """G1 = sum_k G_k Z_k over the derivative slabs of Z and G2 = sum_q G_{1+m+q} P_q.

    With them the loss is locally sum(G_0 s0 + G1 s1 + G2 s2), s_k the k-th derivative
    of sigma at z: what the backward of every activation jet needs. (Accumulated in
    place: one (n, C) buffer each, whatever the number of slabs.)
    """
    if Z.shape[0] == 1:  # no derivative slabs
        return torch.zeros_like(G[0]), torch.zeros_like(G[0])
    G1 = G[1] * Z[1]
    for k in range(2, Z.shape[0]):
        G1.addcmul_(G[k], Z[k])
    G2 = torch.zeros_like(G1)
    for q, P in enumerate(term_products(Z[1:1 + m], terms)):
        G2.addcmul_(G[1 + m + q], P)
    return G1, G2


def stacked_input_grads(s1, s2, s3, G1, G2, Z: Tensor, G: Tensor, m: int, terms) -> Tensor:
    """dL/dZ (shaped like Z) from dL/dH = G (see :func:`stacked_coefficients`):

        dL/dZ_0     = G_0 s1 + G1 s2 + G2 s3                      (the value)
        dL/dZ_k     = G_k s1                                       (every derivative slab)
        dL/dZ_{1+a} += s2 G_{1+m+q} dz_b,  dL/dZ_{1+b} += s2 G_{1+m+q} dz_a   for (a, b) in T_q
    """
    S_in = Z.shape[0]
    gZ = Z.new_empty(Z.shape)
    torch.mul(G[0], s1, out=gZ[0])
    gZ[0].addcmul_(G1, s2).addcmul_(G2, s3)
    torch.mul(G[1:S_in], s1, out=gZ[1:S_in])
    for q, term in enumerate(terms):
        w = G[1 + m + q] * s2
        for a, b in term:
            if a == b:
                gZ[1 + a].addcmul_(w, Z[1 + a], value=2.0)
            else:
                gZ[1 + a].addcmul_(w, Z[1 + b])
                gZ[1 + b].addcmul_(w, Z[1 + a])
    return gZ


class ElementwiseJet(torch.autograd.Function):
    """(Z, bias) -> H for an activation without parameters, as one autograd node:
    z = Z_0 + bias, then H_0 = s0, H_k = s1 Z_k and H_{1+m+q} += s2 P_q
    (s_k the k-th derivative of sigma at z, P_q from :func:`term_products`).

    The forward keeps no intermediates: the backward recomputes s1, s2, s3 from z (one
    evaluation of the activation's sines and cosines) and applies
    :func:`stacked_coefficients` and :func:`stacked_input_grads`. First-order only
    (``once_differentiable``): training needs no more, and the composite
    :meth:`Activation.derivatives` path serves higher orders (the autograd engine).
    """

    @staticmethod
    def forward(ctx, Z, bias, act, m, terms):
        with torch.no_grad():
            z = Z[0] if bias is None else Z[0] + bias
            s0, s1, s2 = act.derivatives(z, 2)
            H = stacked_outputs(s0, s1, s2, Z, m, terms)
        ctx.save_for_backward(Z, bias)
        ctx.act, ctx.m, ctx.terms = act, m, terms
        return H

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, G):
        Z, bias = ctx.saved_tensors
        z = Z[0] if bias is None else Z[0] + bias
        _, s1, s2, s3 = ctx.act.derivatives(z, 3)
        G1, G2 = stacked_coefficients(Z, G, ctx.m, ctx.terms)
        gZ = stacked_input_grads(s1, s2, s3, G1, G2, Z, G, ctx.m, ctx.terms)
        return gZ, (None if bias is None else gZ[0].sum(0)), None, None, None


def elementwise_jet(act, Z: Tensor, bias: Tensor | None, m: int, terms) -> Tensor:
    """The stacked jet of a parameter-free activation through :class:`ElementwiseJet`;
    arguments as :meth:`Activation.jet_stacked`."""
    return ElementwiseJet.apply(Z, bias, act, m, tuple(terms))


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


def native_jet(act: Activation, z: Tensor, dz: Tensor, d2z: Tensor | None,
               pairs) -> tuple[Tensor, Tensor, Tensor | None]:
    """The jet of ``act`` in plain PyTorch, unstacked; arguments as :meth:`Activation.jet`
    (the reference the fused kernels are tested against)."""
    terms = as_terms(pairs)
    H = act.native_jet_stacked(stack_jet(z, dz, d2z, terms), None, dz.shape[0], terms)
    return split_jet(H, dz.shape[0], terms)


def native_value(act: Activation, z: Tensor) -> Tensor:
    """sigma(z) in plain PyTorch (autograd stores what the composite needs)."""
    return act.derivatives(z, 0)[0]
