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
from .native import Pairs, native_jet, native_value
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
    """Push a jet through ``act`` on the backend :func:`backend_for` picks.

    Args:
        act: an :class:`~pinn_sine.nets.Activation`.
        z: pre-activations (n, C).
        dz: first derivatives of z, one slice per direction (m, n, C) (any strides,
            e.g. the stride-0 expansion of the first layer's weight columns).
        d2z: second derivatives (p, n, C), or None when they are zero.
        pairs: the p pairs (a, b) of direction slots in ``dz``.
    Returns:
        (u (n, C), du (m, n, C), d2u (p, n, C) or None when ``pairs`` is empty).
    """
    family = _fused_family(act)
    if family is None:
        requested_backend()
        return native_jet(act, z, dz, d2z, pairs)
    if backend_for(z) == "native":
        return native_jet(act, z, dz, d2z, pairs)
    if family == "metasin":
        return ops.metasin_jet_triton(z, dz, d2z, *_metasin_params(act, z), pairs)
    return ops.sine_jet_triton(z, dz, d2z, act.omega, pairs, finer=family == "finer")


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


__all__ = ["activation_jet", "activation_value", "backend_for", "requested_backend",
           "KernelUnavailableError", "ENV_VAR", "BACKENDS"]
