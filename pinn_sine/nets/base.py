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
        return self.derivatives(z, 0)[0]

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
        """
        s0, s1, s2 = self.derivatives(z, 2)
        du = s1 * dz
        if not pairs:
            return s0, du, None
        a, b = _pair_index(pairs, z.device)
        d2u = s2 * dz[a] * dz[b]
        if d2z is not None:
            d2u = d2u + s1 * d2z
        return s0, du, d2u

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


def _pair_index(pairs: tuple[tuple[int, int], ...], device) -> tuple[Tensor, Tensor]:
    a = torch.tensor([p[0] for p in pairs], device=device)
    b = torch.tensor([p[1] for p in pairs], device=device)
    return a, b


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
