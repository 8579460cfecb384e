"""Fused Triton kernels for the activation jets, registered as torch custom operators.

    from pinn_sine.kernels import activation_jet, activation_value, backend_for

``activation_jet_stacked(act, Z, bias, m, terms)`` (what the derivative engine calls),
``activation_jet(act, z, dz, d2z, pairs)`` (the same, unstacked) and
``activation_value(act, z)`` are the only entry points the networks need; :mod:`~pinn_sine.kernels.dispatch` picks Triton
(CUDA) or the native path (elsewhere), overridable with ``PINN_SINE_KERNELS``.
Importing this package does not import Triton.

Fused: the forward jet (value, first and requested second derivatives), the plain
value, and their first-order backward (gradients for z, dz, d2z and MetaSin's c0, c,
f, p). Differentiating the backward again (create_graph=True) runs the native
composite jet instead (see :mod:`pinn_sine.kernels.ops`).
"""
from .dispatch import (BACKENDS, ENV_VAR, KernelUnavailableError, activation_jet, activation_jet_stacked,
                       activation_value, backend_for, requested_backend)
from .native import as_terms, native_jet, native_jet_stacked, native_value

__all__ = ["activation_jet", "activation_jet_stacked", "activation_value", "backend_for", "requested_backend",
           "as_terms", "native_jet", "native_jet_stacked", "native_value", "KernelUnavailableError", "ENV_VAR", "BACKENDS"]
