"""Fused Triton kernels for the activation jets, registered as torch custom operators.

    from pinn_sine.kernels import backend_for, set_backend

The kernels take tensors and scalars, never activation objects: each activation asks
:func:`backend_for` (:mod:`~pinn_sine.kernels.dispatch`: Triton for CUDA tensors, the
native path elsewhere, overridable with ``PINN_SINE_KERNELS``, read once, or
:func:`set_backend`; :func:`auto_backend` says when a run is long enough for the
compiled CPU backend) and calls its own op in :mod:`~pinn_sine.kernels.ops` or its own
native jet. Nothing here imports :mod:`pinn_sine.nets`. Importing this package does
not import Triton.

Fused: the forward jet (value, first and requested second derivatives), the plain
value, and their first-order backward (gradients for z, dz, d2z and MetaSin's c0, c,
f, p). The float32 kernels can evaluate sin and cos faster and slightly less
accurately (:func:`set_fast_sincos`, ``PINN_SINE_FAST_SINCOS=1``; off by default).
Differentiating the backward again (create_graph=True) runs the native
composite jet instead (see :mod:`pinn_sine.kernels.ops`).
"""
from .dispatch import (BACKENDS, ENV_VAR, KernelUnavailableError, auto_backend, backend_for, compile_unavailable,
                       requested_backend, set_backend)
from .native import as_terms
from .ops import FAST_SINCOS_VAR, fast_sincos, set_fast_sincos

__all__ = ["backend_for", "requested_backend", "set_backend", "auto_backend", "compile_unavailable", "as_terms",
           "KernelUnavailableError", "ENV_VAR", "BACKENDS", "fast_sincos", "set_fast_sincos", "FAST_SINCOS_VAR"]
