"""MetaSin: a learnable sum of sines plus a ReLU (Cherepanov et al., NeurIPS 2023)."""
from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor, nn

from ..kernels import ops
from ..kernels.native import metasin_backward_terms, metasin_sigmas
from .base import Activation, fused_kernel, siren_init, stacked_coefficients, stacked_input_grads, stacked_outputs

FREQ_INITS = ("linear", "uniform", "random")


@fused_kernel
class MetaSin(Activation):
    """MetaSin activation, per channel:

        sigma(z) = c0 relu(z) + sum_{j=1..K} c_j sin(f_j z + p_j)

    with learnable c0 (C,), c, f, p (C, K). Derivatives (sigma'' and sigma''' drop the
    ReLU, whose second derivative is zero almost everywhere):

        sigma'   = c0 1[z > 0] + sum_j c_j f_j   cos(f_j z + p_j)
        sigma''  =             - sum_j c_j f_j^2 sin(f_j z + p_j)
        sigma''' =             - sum_j c_j f_j^3 cos(f_j z + p_j)

    Initialisation: frequencies ``"linear"`` f_j = j, ``"uniform"`` evenly over
    ``freq_range`` (the paper's [1, 35]), or ``"random"`` U(freq_range); phases
    U(0, 2 pi); amplitudes c_j = 1/sqrt(K) and c0 = 0, so that with random phases the
    output variance matches a single sine's (1/2). The linear layers get the SIREN
    initialisation with omega = f_rms, the root mean square of the initial frequencies:
    hidden pre-activations z then have std about 1/f_rms and f_j z about f_j/f_rms, as
    omega z does in SIREN. (With omega = 1 instead, z ~ N(0, 1) and sin(10 z) turns the
    hidden layers into noise: Poisson2D stalled at rel L2 1.28 after 600 steps, against
    1.4e-2 with f_rms; scratch experiment, width 64 depth 3.) ``relu_start=True`` sets c0 = 1
    and c_j = 0: the network starts as a ReLU network (the paper's KD bootstrap).

    Its native jet (:func:`metasin_jet`, chosen by :mod:`pinn_sine.kernels` where the
    fused Triton kernel does not run) keeps no (n, C, K) intermediates: it loops over
    the K components and recomputes them in the backward pass. It is the reference the
    fused kernel is tested against.

    Args:
        K: number of sine components (10 in the paper).
        freq_init: one of ``"linear"``, ``"uniform"``, ``"random"``.
        freq_range: (lo, hi) used by ``"uniform"`` and ``"random"``.
        relu_start: start as ReLU (c0 = 1, c_j = 0).
    """

    name = "metasin"
    sine_init = True

    def __init__(self, K: int = 10, freq_init: str = "linear", freq_range: tuple[float, float] = (1.0, 35.0),
                 relu_start: bool = False):
        super().__init__()
        if isinstance(K, bool) or not (isinstance(K, numbers.Integral) and K >= 1):
            raise ValueError(f"K must be an integer >= 1, got K={K!r}; use e.g. MetaSin(K=10).")
        if K >= 2**31:
            raise ValueError(f"K must be an integer >= 1 and < 2**31 (a torch size), got K={K!r}; use e.g. "
                             "MetaSin(K=10).")
        if not isinstance(freq_init, str) or freq_init not in FREQ_INITS:
            raise ValueError(f'Invalid freq_init "{freq_init}". Must be one of {list(FREQ_INITS)}.')
        try:
            lo, hi = freq_range
        except (TypeError, ValueError):
            lo = hi = None
        if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) for v in (lo, hi)) \
                or not 0 < lo <= hi:
            raise ValueError(f"freq_range must be a pair (lo, hi) of finite numbers with 0 < lo <= hi, got "
                             f"freq_range={freq_range!r}; use e.g. (1.0, 35.0).")
        if not isinstance(relu_start, bool):
            raise ValueError(f"relu_start must be True or False, got relu_start={relu_start!r}.")
        self.K = int(K)
        self.freq_init = freq_init
        self.freq_range = (float(lo), float(hi))
        self.relu_start = relu_start
        self.channels = 0  # set by for_layer; the template itself holds no parameters

    def for_layer(self, channels, *, first, omega, generator):
        if omega is not None:
            raise ValueError(
                f"MetaSin has no omega (its frequencies f_j are learnable); got omega={omega}. "
                "Set the frequency range with MetaSin(freq_init=..., freq_range=...)."
            )
        layer_act = MetaSin(self.K, self.freq_init, self.freq_range, self.relu_start)
        layer_act.channels = channels
        K = self.K
        if self.freq_init == "linear":
            f = torch.arange(1, K + 1, dtype=torch.float32)
        elif self.freq_init == "uniform":
            f = torch.linspace(self.freq_range[0], self.freq_range[1], K)
        else:
            f = torch.empty(K).uniform_(*self.freq_range, generator=generator)
        p = torch.empty(channels, K).uniform_(0.0, 2.0 * math.pi, generator=generator)
        if self.relu_start:
            c0 = torch.ones(channels)
            c = torch.zeros(channels, K)
        else:
            c0 = torch.zeros(channels)
            c = torch.full((channels, K), 1.0 / math.sqrt(K))
        layer_act.c0 = nn.Parameter(c0)
        layer_act.c = nn.Parameter(c)
        layer_act.f = nn.Parameter(f.expand(channels, K).clone())
        layer_act.p = nn.Parameter(p)
        return layer_act

    def _require_params(self) -> None:
        if self.channels == 0:
            raise RuntimeError("This MetaSin is a template without parameters; MLP creates one per layer "
                               "with for_layer(channels, ...).")

    def init_linear(self, layer: nn.Linear, *, first: bool, generator: torch.Generator) -> None:
        self._require_params()
        f_rms = float(self.f.detach().pow(2).mean().sqrt())
        siren_init(layer, first=first, omega=f_rms, generator=generator)

    def derivatives(self, z: Tensor, order: int = 3) -> tuple[Tensor, ...]:
        """Composite (differentiable to any order) evaluation; materialises (n, C, K)."""
        self._require_params()
        theta = z.unsqueeze(-1) * self.f + self.p
        sin = torch.sin(theta)
        out = [self.c0 * torch.relu(z) + (self.c * sin).sum(-1)]
        if order >= 1:
            cos = torch.cos(theta)
            cf = self.c * self.f
            out.append(self.c0 * (z > 0).to(z.dtype) + (cf * cos).sum(-1))
            if order >= 2:
                cff = cf * self.f
                out.append(-(cff * sin).sum(-1))
                if order >= 3:
                    out.append(-(cff * self.f * cos).sum(-1))
        return tuple(out)

    def native_jet_stacked(self, Z, bias, m, terms):
        self._require_params()
        return metasin_jet(Z, bias, self.c0, self.c, self.f, self.p, m, terms)

    def _kernel_params(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        self._require_params()
        return tuple(t.to(z.dtype) for t in (self.c0, self.c, self.f, self.p))

    def kernel_value(self, z):
        return ops.metasin_value_triton(z, *self._kernel_params(z))

    def kernel_jet(self, z, dz, d2z, terms):
        return ops.metasin_jet_triton(z, dz, d2z, *self._kernel_params(z), terms)

    def kernel_jet_stacked(self, Z, bias, m, terms):
        return ops.jet_stacked_triton(Z, bias, m, terms, metasin_params=self._kernel_params(Z))

    def extra_repr(self) -> str:
        return f"K={self.K}, freq_init={self.freq_init!r}, relu_start={self.relu_start}, channels={self.channels}"


class _MetaSinJet(torch.autograd.Function):
    """(Z, bias, params) -> H on stacked jets (z = Z_0 + bias; H_0 = s0, H_k = s1 Z_k,
    H_{1+m+q} += s2 P_q with s_k the k-th derivative of sigma at z), without any
    (n, C, K) tensor.

    The backward recomputes the sines and cosines from the saved inputs, one component
    at a time: with G0 = dL/dH_0 and the coefficients G1, G2 of
    :func:`~pinn_sine.nets.base.stacked_coefficients` the loss is locally
    sum(G0 s0 + G1 s1 + G2 s2), whose parameter gradients and s1, s2, s3 are
    :func:`~pinn_sine.kernels.native.metasin_backward_terms`; the input gradients follow
    (:func:`~pinn_sine.nets.base.stacked_input_grads`).
    """

    @staticmethod
    def forward(ctx, Z, bias, c0, c, f, p, m, terms):
        with torch.no_grad():
            z = Z[0] if bias is None else Z[0] + bias
            s0, s1, s2 = metasin_sigmas(z, c0, c, f, p)
            H = stacked_outputs(s0, s1, s2, Z, m, terms)
        ctx.save_for_backward(Z, bias, c0, c, f, p)
        ctx.m, ctx.terms = m, terms
        return H

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, G):
        Z, bias, c0, c, f, p = ctx.saved_tensors
        m, terms = ctx.m, ctx.terms
        z = Z[0] if bias is None else Z[0] + bias
        G1, G2 = stacked_coefficients(Z, G, m, terms)
        s1, s2, s3, g_c0, g_c, g_f, g_p = metasin_backward_terms(z, G[0], G1, G2, c0, c, f, p)
        gZ = stacked_input_grads(s1, s2, s3, G1, G2, Z, G, m, terms)
        g_bias = None if bias is None else gZ[0].sum(0)
        return gZ, g_bias, g_c0, g_c, g_f, g_p, None, None


def metasin_jet(Z, bias, c0, c, f, p, m, terms):
    """Native MetaSin jet on stacked slabs with a recomputing backward (:class:`_MetaSinJet`).

    Shapes: Z (1 + m [+ P], n, C) before the bias; bias (C,) or None; c0 (C,);
    c, f, p (C, K); ``terms`` the P second-order streams
    (:func:`pinn_sine.kernels.native.as_terms`). Returns H (1 + m + P, n, C).
    """
    return _MetaSinJet.apply(Z, bias, c0, c, f, p, m, tuple(terms))
