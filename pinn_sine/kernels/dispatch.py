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

:func:`auto_backend` is the policy an entry point (``pinn-sine solve``) applies before a
run whose length it knows: "compiled" for a long enough SIREN/FINER run on the CPU, where
the compilation pays for itself (``benchmarks/breakeven.py``), else the rule.

This module takes tensors only: each activation asks :func:`backend_for` and calls its
own kernel (:mod:`pinn_sine.kernels.ops`) or its own native jet
(:class:`~pinn_sine.nets.Activation`), so the kernels never import the networks.
"""
from __future__ import annotations

import functools
import math
import os
import sys
import sysconfig
from collections.abc import Iterable

import torch
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


# ----- the automatic choice of the compiled backend -----------------------------------
#: What the compiled backend costs and saves on the CPU, per dtype: the measured
#: ``pinn-sine solve`` cases as (case, compile overhead [s], saving [s/step]), from
#: ``OMP_NUM_THREADS=1 python benchmarks/breakeven.py --cases
#: poisson2d,wave1d,poisson2d-finer,helmholtz2d-f64,helmholtz2d-f64-gn``
#: and, for poisson2d, its rerun ``... --cases poisson2d`` (10 rounds of alternating blocks;
#: the first run's 16.2 s and 6.5 ms agree), on 2026-12-06: torch 2.13, g++ 12, one
#: thread on a shared 2-core machine, medians of 3 fresh processes. The overhead is the
#: first step with an empty Inductor cache minus the native one (a warm cache, a later
#: run of the same net, costs 4-6 s, but a policy cannot know the cache is warm); the
#: saving the median difference of native and compiled steps timed in alternating
#: blocks in one process. The Gauss-Newton step (helmholtz2d SIREN 32x2 float64) runs
#: the compiled nodes in its Jacobian but was not faster (126 vs 132 ms), so only Adam
#: steps count.
BREAK_EVEN_CASES: dict[torch.dtype, tuple[tuple[str, float, float], ...]] = {
    torch.float32: (("poisson2d SIREN 128x3, batch 2048", 17.4, 0.00655),  # 48.3 -> 40.3 ms/step
                    ("wave1d SIREN 128x3, batch 2048", 21.5, 0.0119),      # 60.4 -> 47.6 ms/step
                    ("poisson2d FINER 128x3, batch 2048", 17.3, 0.0193)),  # 62.4 -> 40.8 ms/step
    torch.float64: (("helmholtz2d SIREN 32x2, batch 2000", 17.3, 0.00078),),  # 13.6 -> 12.3 ms/step
}
#: the compiled backend is chosen only beyond this many times the largest break-even:
#: the saving varies with the net, the batch and the load, and a cold compile took
#: 17-29 s for the same case on the loaded machine
SAFETY = 2.0
#: the activation names (``pinn-sine solve --activation``, and the compiled families'
#: own) whose jet nodes the compiled backend compiles; the others run natively under it
COMPILED_ACTIVATIONS = frozenset({"siren", "sine", "finer"})


def break_even(dtype: torch.dtype) -> tuple[float, str, float, float] | None:
    """The largest measured break-even of ``dtype``'s cases (:data:`BREAK_EVEN_CASES`) as
    (steps, case, overhead [s], saving [s/step]); inf steps where a case's compiled steps
    were not faster; None for a dtype not measured."""
    cases = BREAK_EVEN_CASES.get(dtype)
    if not cases:
        return None
    return max(((overhead / saving if saving > 0 else math.inf), case, overhead, saving)
               for case, overhead, saving in cases)


@functools.lru_cache(maxsize=1)
def compile_unavailable() -> str | None:
    """Why ``torch.compile`` cannot build the compiled backend's CPU programs here, or None
    when it can: Dynamo supports this Python, Inductor finds its C++ compiler (``$CXX``
    or g++, as :func:`torch._inductor.cpp_builder.get_cpp_compiler` searches) and the
    Python headers it compiles against exist. Checked once per process (imports
    Inductor, about a second). A compiler that is found can still fail on a program;
    :mod:`pinn_sine.kernels.compiled` then raises :class:`KernelUnavailableError`."""
    try:
        import torch._dynamo
        from torch._inductor.cpp_builder import get_cpp_compiler
    except ImportError as err:
        return f"torch.compile cannot be imported ({err})"
    if not torch._dynamo.is_dynamo_supported():
        return f"torch.compile does not support Python {sys.version.split()[0]}"
    try:
        get_cpp_compiler()
    except (RuntimeError, OSError) as err:  # Inductor's InvalidCxxCompiler is a RuntimeError
        return f"no C++ compiler for torch.compile ({type(err).__name__}; it looks for $CXX or g++)"
    include = sysconfig.get_path("include")
    if not include or not os.path.exists(os.path.join(include, "Python.h")):
        return f"no Python.h in {include} for torch.compile (install the Python development headers)"
    return None


def _dtype(value) -> torch.dtype:
    if isinstance(value, torch.dtype):
        return value
    found = getattr(torch, str(value), None) if isinstance(value, str) else None
    if not isinstance(found, torch.dtype):
        raise ValueError(f"dtype must be a torch.dtype or its name (e.g. 'float32'), got {value!r}.")
    return found


def auto_backend(*, device: str | torch.device, steps: int, families: Iterable[str],
                 dtype: torch.dtype | str) -> tuple[str | None, str]:
    """The kernel backend for a run of ``steps`` Adam steps: "compiled" where its
    compilation pays for itself, else None (the rule: Triton on CUDA, native elsewhere),
    and a one-line reason naming the measured numbers.

    "compiled" only on the CPU, only when every activation of the net is SIREN or FINER
    (:data:`COMPILED_ACTIVATIONS`), only for a measured dtype, only when ``steps``
    exceeds :data:`SAFETY` times the largest break-even of the cold compile among that
    dtype's cases (:data:`BREAK_EVEN_CASES`: about 2600 steps in float32, so runs of
    more than about 5300 steps; about 22000 in float64, where the measured small net
    saves little), and only when :func:`compile_unavailable` finds nothing missing
    (checked last, so a short run never imports Inductor).

    Args:
        device: where the net runs ("cpu", "cuda", "cuda:1" or a torch.device).
        steps: the run's Adam steps (>= 0). Gauss-Newton steps do not count (their
            compiled steps were measured no faster); nor do L-BFGS steps (not measured).
        families: the names of the net's activations, as ``pinn-sine solve
            --activation`` takes them ("siren", "finer", "metasin", "tanh", ...; "sine"
            is SIREN's family name).
        dtype: the net's dtype (a torch.dtype or its name).
    Returns:
        (backend, reason): backend "compiled" or None, for :func:`set_backend`.
    Raises:
        ValueError: ``steps`` not an integer >= 0, no family, or an unknown dtype name.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}.")
    names = sorted({str(f).lower() for f in families})
    if not names:
        raise ValueError("families is empty; give the net's activation names, e.g. {'siren'}.")
    dtype = _dtype(dtype)
    kind = torch.device(device).type
    if kind == "cuda":
        return None, "auto: CUDA runs the fused Triton kernels (no compilation to amortise)"
    if kind != "cpu":
        return None, f"native: the compiled backend is chosen automatically on the CPU only (device {kind})"
    others = [n for n in names if n not in COMPILED_ACTIVATIONS]
    if others:
        return None, f"native: no compiled jet node for {', '.join(others)} (only SIREN and FINER have one)"
    measured = break_even(dtype)
    if measured is None:
        return None, f"native: the compiled backend was not measured for {dtype} (only {_dtype_names()})"
    n_star, case, overhead, saving = measured
    if math.isinf(n_star):
        return None, (f"native: compiled {dtype} steps were not faster ({case}: {saving * 1e3:+.1f} ms/step "
                      f"against a {overhead:.0f} s cold compile)")
    numbers = (f"break-even ~{n_star:.0f} steps ({case}: compile ~{overhead:.0f} s cold, "
               f"saves ~{saving * 1e3:.1f} ms/step)")
    threshold = math.ceil(SAFETY * n_star)
    if steps <= threshold:
        return None, f"native: {steps} Adam steps <= {SAFETY:g} x {numbers}"
    missing = compile_unavailable()
    if missing is not None:
        return None, f"native: {missing}"
    return "compiled", f"compiled: {steps} Adam steps > {SAFETY:g} x {numbers}"


def _dtype_names() -> str:
    return ", ".join(str(d).removeprefix("torch.") for d in BREAK_EVEN_CASES)


__all__ = ["backend_for", "requested_backend", "set_backend", "parse_backend", "KernelUnavailableError",
           "ENV_VAR", "BACKENDS", "auto_backend", "compile_unavailable", "break_even", "BREAK_EVEN_CASES",
           "SAFETY", "COMPILED_ACTIVATIONS"]
