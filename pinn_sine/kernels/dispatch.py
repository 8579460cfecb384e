"""The one place that chooses between the fused Triton kernels and the native path.

Rule: CUDA float32/float64 tensors of a fused family (Sine, Finer, MetaSin) use the
Triton kernels; everything else uses the native PyTorch path. The environment
variable ``PINN_SINE_KERNELS``, read once (at the first activation call of the
process), overrides the rule; :func:`set_backend` changes the choice afterwards:

* ``native``: always the native path;
* ``triton``: always the kernels for the fused families, and a
  :class:`KernelUnavailableError` where they cannot run (no Triton, a dtype other
  than float32/float64, or CPU tensors without Triton's interpreter). CPU tensors
  run the kernels only under the interpreter (``TRITON_INTERPRET=1`` in the
  environment before the process first imports Triton), which is how the CPU test
  suite exercises them.
* ``compiled``: the native nodes of SIREN and FINER with their arithmetic compiled by
  ``torch.compile`` into one fused loop per pass (:mod:`pinn_sine.kernels.compiled`),
  on any device; the other families run natively. The first step compiles (tens of
  seconds on a CPU), which is why the rule never picks it.
* unset, empty or ``auto``: the rule above.

This module takes tensors only: each activation asks :func:`backend_for` and calls its
own kernel (:mod:`pinn_sine.kernels.ops`) or its own native jet
(:class:`~pinn_sine.nets.Activation`), so the kernels never import the networks.
"""
from __future__ import annotations

import os

from torch import Tensor

from . import ops
from .ops import KernelUnavailableError

ENV_VAR = "PINN_SINE_KERNELS"
BACKENDS = ("triton", "native", "compiled")
_UNREAD = object()
#: the forced backend ("triton", "native" or None for the rule); _UNREAD until first use
_forced: object = _UNREAD


def parse_backend(value: str | None, *, source: str = ENV_VAR) -> str | None:
    """``value`` as a forced backend: "triton", "native", "compiled", or None (unset, "" or "auto")."""
    text = (value or "").strip().lower()
    if text in ("", "auto"):
        return None
    if text not in BACKENDS:
        raise ValueError(f'Invalid {source}="{value}". Must be one of {list(BACKENDS)} '
                         "(or unset/auto: Triton for CUDA tensors, native otherwise).")
    return text


def requested_backend() -> str | None:
    """The forced backend ("triton", "native" or "compiled"), or None for the rule: from
    ``PINN_SINE_KERNELS`` as read at the first call, or the last :func:`set_backend`."""
    global _forced
    if _forced is _UNREAD:
        _forced = parse_backend(os.environ.get(ENV_VAR))
    return _forced


def set_backend(value: str | None) -> str | None:
    """Force "triton", "native" or "compiled" from now on (None or "auto": the rule); returns the
    previous choice (None when none was made yet). The environment variable is not
    read after this."""
    global _forced
    chosen = parse_backend(value, source="backend")
    previous = None if _forced is _UNREAD else _forced
    _forced = chosen
    return previous


def backend_for(z: Tensor) -> str:
    """"triton", "native" or "compiled" for an activation of a fused family applied to ``z``
    ("compiled" only when forced).

    Raises :class:`KernelUnavailableError` when Triton is forced but cannot run, or
    when the automatic rule picks Triton (a CUDA tensor) and Triton is missing.
    """
    forced = requested_backend()
    if forced in ("native", "compiled"):
        return forced
    if forced is None and not (z.device.type == "cuda" and z.dtype in ops.SUPPORTED_DTYPES):
        return "native"
    ops.check_runnable(z)
    return "triton"


__all__ = ["backend_for", "requested_backend", "set_backend", "parse_backend", "KernelUnavailableError",
           "ENV_VAR", "BACKENDS"]
