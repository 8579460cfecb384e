"""The one place that chooses between the fused Triton kernels and the native path.

Rule: CUDA float32/float64 tensors of a fused family (Sine, Finer, MetaSin) use the
Triton kernels; everything else uses the native PyTorch path. The environment
variable ``PINN_SINE_KERNELS`` overrides the rule:

* ``native``: always the native path;
* ``triton``: always the kernels for the fused families, and a
  :class:`KernelUnavailableError` where they cannot run (no Triton, a dtype other
  than float32/float64, or CPU tensors without Triton's interpreter). CPU tensors
  run the kernels only under the interpreter (``TRITON_INTERPRET=1`` in the
  environment before the process first imports Triton), which is how the CPU test
  suite exercises them.
* unset, empty or ``auto``: the rule above.

Families without a fused kernel (Tanh, ReLU, any other Activation) always take the
native path; the variable is still validated for them.
"""
from __future__ import annotations

import os

from torch import Tensor

from . import ops
from .native import Pairs, Terms, as_terms, native_jet, native_jet_stacked, native_value
from .ops import KernelUnavailableError

ENV_VAR = "PINN_SINE_KERNELS"
BACKENDS = ("triton", "native")


def requested_backend() -> str | None:
    """The backend forced by ``PINN_SINE_KERNELS`` ("triton" or "native"), or None."""
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if value in ("", "auto"):
        return None
    if value not in BACKENDS:
        raise ValueError(
            f'Invalid {ENV_VAR}="{os.environ[ENV_VAR]}". Must be one of {list(BACKENDS)} '
            "(or unset/auto: Triton for CUDA tensors, native otherwise)."
        )
    return value


def backend_for(z: Tensor) -> str:
    """"triton" or "native" for an activation of a fused family applied to ``z``.

    Raises :class:`KernelUnavailableError` when Triton is forced but cannot run, or
    when the automatic rule picks Triton (a CUDA tensor) and Triton is missing.
    """
    forced = requested_backend()
    if forced == "native":
        return "native"
    if forced is None and not (z.device.type == "cuda" and z.dtype in ops.SUPPORTED_DTYPES):
        return "native"
    ops.check_runnable(z)
    return "triton"


def _fused_family(act) -> str | None:
    """The fused family of ``act`` ("metasin", "sine", "finer") or None.

    Exact types only: a subclass may change sigma, and the kernels would not know.
    """
    from ..nets.finer import Finer
    from ..nets.metasin import MetaSin
    from ..nets.sine import Sine

    return {MetaSin: "metasin", Sine: "sine", Finer: "finer"}.get(type(act))


def _metasin_params(act, z: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    act._require_params()
    return tuple(t.to(z.dtype) for t in (act.c0, act.c, act.f, act.p))


def activation_jet(act, z: Tensor, dz: Tensor, d2z: Tensor | None,
                   pairs: Pairs) -> tuple[Tensor, Tensor, Tensor | None]:
    """Push an unstacked jet through ``act`` on the backend :func:`backend_for` picks.

    Args:
        act: an :class:`~pinn_sine.nets.Activation`.
        z: pre-activations (n, C).
        dz: first derivatives of z, one slice per direction (m, n, C) (any strides,
            e.g. the stride-0 expansion of the first layer's weight columns).
        d2z: second-order streams (p, n, C), or None when they are zero.
        pairs: the p streams: pairs (a, b) of direction slots in ``dz`` or terms
            (tuples of pairs whose sum the stream is; :func:`~pinn_sine.kernels.native.as_terms`).
    Returns:
        (u (n, C), du (m, n, C), d2u (p, n, C) or None when ``pairs`` is empty).
    """
    terms = as_terms(pairs)
    if _use_native(act, z):
        return native_jet(act, z, dz, d2z, terms)
    return _triton_jet(act, z, dz, d2z, terms)


def activation_jet_stacked(act, Z: Tensor, bias: Tensor | None, m: int, terms: Terms) -> Tensor:
    """Push a stacked jet through ``act``: what the derivative engine calls per layer.

    Args:
        Z: the linear layer's output before its bias, (1 + m [+ p], n, C): value, m
            first derivatives and, unless they are zero, the p second-order streams.
        bias: the layer's bias (C,), added to the value slab here, or None.
        m: the number of first-derivative slabs.
        terms: the p second-order streams (:func:`~pinn_sine.kernels.native.as_terms`).
    Returns:
        H (1 + m + p, n, C).

    Both paths are one autograd node in and out. The Triton path runs the fused
    kernels on views of Z and of dL/dH and stacks their outputs (one copy of H
    forward, one of dL/dZ backward).
    """
    if _use_native(act, Z):
        return native_jet_stacked(act, Z, bias, m, terms)
    family = _fused_family(act)
    if family == "metasin":
        return ops.jet_stacked_triton(Z, bias, m, terms, metasin_params=_metasin_params(act, Z))
    return ops.jet_stacked_triton(Z, bias, m, terms, omega=act.omega, finer=family == "finer")


def _use_native(act, z: Tensor) -> bool:
    """Whether ``act`` runs natively on ``z`` (validating PINN_SINE_KERNELS either way)."""
    if _fused_family(act) is None:
        requested_backend()
        return True
    return backend_for(z) == "native"


def _triton_jet(act, z, dz, d2z, terms):
    if _fused_family(act) == "metasin":
        return ops.metasin_jet_triton(z, dz, d2z, *_metasin_params(act, z), terms)
    return ops.sine_jet_triton(z, dz, d2z, act.omega, terms, finer=_fused_family(act) == "finer")


def activation_value(act, z: Tensor) -> Tensor:
    """sigma(z) on the backend :func:`backend_for` picks (no derivative inputs).

    z is (..., C): channels last, any leading shape (flattened to rows for the kernel).
    """
    family = _fused_family(act)
    if family is None:
        requested_backend()
        return native_value(act, z)
    if z.dim() == 0 or backend_for(z) == "native":
        return native_value(act, z)
    z2 = z.reshape(-1, z.shape[-1])
    if family == "metasin":
        u = ops.metasin_value_triton(z2, *_metasin_params(act, z))
    else:
        u = ops.sine_value_triton(z2, act.omega, finer=family == "finer")
    return u.reshape(z.shape)


__all__ = ["activation_jet", "activation_jet_stacked", "activation_value", "backend_for", "requested_backend",
           "KernelUnavailableError", "ENV_VAR", "BACKENDS"]
