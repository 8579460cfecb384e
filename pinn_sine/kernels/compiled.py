"""The stacked jet node with its arithmetic compiled by ``torch.compile`` (Inductor): the
"compiled" backend, for SIREN and FINER on any device (a C++ compiler on the CPU).

The native nodes (:class:`~pinn_sine.nets.sine.SineJet`,
:class:`~pinn_sine.nets.base.ElementwiseJet`) run the chain rule as a sequence of torch
ops, each one pass over the (n, C) slabs, memory-bound: on one CPU thread a SIREN
128x3 Laplacian step spends about a third of its time there. Here the same arithmetic,
written as pure functions of the stacked tensors, is compiled once per layer shape
(one program for the forward, one for the backward), so that Inductor fuses each into
a single loop over the points. With z = Z_0 + bias and s_k = sigma^(k)(z):

    forward:   H_0 = s0,   H_k = s1 Z_k,   H_{1+m+q} (+)= s2 P_q,
               P_q = sum_{(a, b) in T_q} Z_{1+a} Z_{1+b}
    backward:  G1 = sum_k G_k Z_k,   G2 = sum_q G_{1+m+q} P_q,
               dZ_0 = G_0 s1 + G1 s2 + G2 s3,   dZ_k = G_k s1
                      + s2 G_{1+m+q} (dP_q / dZ_k) for the terms holding k,
               dbias = sum over points of dZ_0

(:func:`pinn_sine.nets.base.stacked_outputs` and friends are the same equations, run
op by op). The node saves only its inputs: the backward recomputes sigma and its
derivatives inside the fused loop, where the sines and cosines cost little next to
reading the slabs.

A program is compiled for each (family, m, terms, bias or not) on first use, with
dynamic point counts (a new batch size does not recompile). The first step of a run
pays the compilation (tens of seconds on a CPU), so the backend is opt-in:
``PINN_SINE_KERNELS=compiled`` or :func:`pinn_sine.kernels.set_backend`. Nothing here
imports :mod:`pinn_sine.nets`.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .native import finer_derivatives, sine_derivatives, term_products
from .ops import KernelUnavailableError

#: the families with a compiled node and their sigma-with-derivatives functions
#: ``(z, omega, order) -> (s0, ..., s_order)``
FAMILIES: dict[str, Callable] = {"sine": sine_derivatives, "finer": finer_derivatives}
_PROGRAMS: dict[tuple, Callable] = {}


def _jet_forward(derivatives, m: int, terms, Z: Tensor, bias: Tensor | None, omega: Tensor) -> Tensor:
    """H (1 + m + p, n, C) from Z (1 + m [+ p], n, C): the forward of the module docstring."""
    z = Z[0] if bias is None else Z[0] + bias
    s0, s1, s2 = derivatives(z, omega, 2)
    slabs = [s0] + [s1 * Z[k] for k in range(1, Z.shape[0])]
    for q, P in enumerate(term_products(Z[1:1 + m], terms)):
        k = 1 + m + q
        if k < len(slabs):
            slabs[k] = slabs[k] + s2 * P
        else:
            slabs.append(s2 * P)
    return torch.stack(slabs)


def _jet_backward(derivatives, m: int, terms, Z: Tensor, bias: Tensor | None, omega: Tensor,
                  G: Tensor) -> tuple[Tensor, Tensor]:
    """(dL/dZ, dL/dbias) from dL/dH = G: the backward of the module docstring."""
    z = Z[0] if bias is None else Z[0] + bias
    _, s1, s2, s3 = derivatives(z, omega, 3)
    S_in = Z.shape[0]
    dz = Z[1:1 + m]
    grads = [G[k] * s1 for k in range(1, S_in)]
    G1 = sum((G[k] * Z[k] for k in range(1, S_in)), torch.zeros_like(z))
    G2 = torch.zeros_like(z)
    for q, (P, term) in enumerate(zip(term_products(dz, terms), terms)):
        Gq = G[1 + m + q]
        G2 = G2 + Gq * P
        w = Gq * s2
        for a, b in term:
            if a == b:
                grads[a] = grads[a] + 2.0 * w * dz[a]
            else:
                grads[a] = grads[a] + w * dz[b]
                grads[b] = grads[b] + w * dz[a]
    g0 = G[0] * s1 + G1 * s2 + G2 * s3
    return torch.stack([g0] + grads), g0.sum(0)


def _program(kind: str, family: str, m: int, terms, has_bias: bool) -> Callable:
    """The compiled forward or backward for one layer signature, built on first use."""
    key = (kind, family, m, terms, has_bias)
    program = _PROGRAMS.get(key)
    if program is None:
        derivatives = FAMILIES[family]
        if kind == "forward":
            def run(Z, bias, omega):
                return _jet_forward(derivatives, m, terms, Z, bias if has_bias else None, omega)
        else:
            def run(Z, bias, omega, G):
                return _jet_backward(derivatives, m, terms, Z, bias if has_bias else None, omega, G)
        program = _PROGRAMS[key] = torch.compile(run, dynamic=True, fullgraph=True)
    return program


def _compiler_errors() -> tuple[type, ...]:
    """The exception types of a failed compilation (Dynamo's backend failure, Inductor's)."""
    from torch._dynamo.exc import BackendCompilerFailed
    from torch._inductor import exc as inductor_exc

    return (BackendCompilerFailed,) + tuple(getattr(inductor_exc, n) for n in ("InductorError", "CppCompileError")
                                            if hasattr(inductor_exc, n))


def _run(program: Callable, *args) -> tuple:
    try:
        return program(*args)
    except _compiler_errors() as err:
        raise KernelUnavailableError(
            f"the compiled jet node failed to compile ({type(err).__name__}: {str(err).splitlines()[0][:200]}). "
            "On the CPU torch.compile needs a working C++ compiler; set PINN_SINE_KERNELS=native (or call "
            "pinn_sine.kernels.set_backend('native')) to run the native nodes.") from err


class CompiledJet(torch.autograd.Function):
    """(Z, bias) -> H for a family of :data:`FAMILIES` as one autograd node whose forward
    and backward are the compiled programs of the module docstring (first-order only:
    training needs no more). Saves only Z and the bias."""

    @staticmethod
    def forward(ctx, Z, bias, family, omega, m, terms):
        w = torch.tensor(omega, dtype=Z.dtype, device=Z.device)
        b = Z.new_zeros(()) if bias is None else bias
        H = _run(_program("forward", family, m, terms, bias is not None), Z, b, w)
        ctx.save_for_backward(Z, b, w)
        ctx.family, ctx.m, ctx.terms, ctx.has_bias = family, m, terms, bias is not None
        return H

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, G):
        Z, b, w = ctx.saved_tensors
        program = _program("backward", ctx.family, ctx.m, ctx.terms, ctx.has_bias)
        gZ, g_bias = _run(program, Z, b, w, G.contiguous())
        return gZ, (g_bias if ctx.has_bias else None), None, None, None, None


def compiled_jet_stacked(Z: Tensor, bias: Tensor | None, family: str, omega: float, m: int, terms) -> Tensor:
    """The stacked jet of a sine-type activation (``family`` "sine" or "finer" with its
    ``omega``) through :class:`CompiledJet`; the other arguments as
    :meth:`~pinn_sine.nets.Activation.jet_stacked`."""
    if family not in FAMILIES:
        raise ValueError(f"no compiled jet for family {family!r}; the families are {sorted(FAMILIES)}.")
    return CompiledJet.apply(Z, bias, family, float(omega), int(m), tuple(terms))


__all__ = ["compiled_jet_stacked", "CompiledJet", "FAMILIES"]
