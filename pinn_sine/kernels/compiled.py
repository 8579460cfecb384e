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

import types
from collections.abc import Callable

import torch
from torch import Tensor

from .native import finer_derivatives, sine_derivatives, term_products
from .ops import KernelUnavailableError

#: the families with a compiled node: name -> (params -> (z, order) -> (s0, ..., s_order)),
#: the params (omega,) as a 0-d tensor. MetaSin has none: the same scheme with its K
#: components unrolled and its parameter gradients reduced in the program
#: (:func:`~pinn_sine.kernels.native.metasin_backward_terms`) ran 1.46x slower than its
#: native node (610 vs 419 ms, SIREN-sized 128x3 step, one CPU thread).
FAMILIES: dict[str, Callable] = {
    "sine": lambda omega: lambda z, order: sine_derivatives(z, omega, order),
    "finer": lambda omega: lambda z, order: finer_derivatives(z, omega, order),
}
_PROGRAMS: dict[tuple, Callable] = {}


def _jet_forward(sigma, m: int, terms, Z: Tensor, bias: Tensor | None) -> Tensor:
    """H (1 + m + p, n, C) from Z (1 + m [+ p], n, C): the forward of the module docstring;
    ``sigma(z, 2)`` gives s0, s1, s2."""
    z = Z[0] if bias is None else Z[0] + bias
    s0, s1, s2 = sigma(z, 2)
    slabs = [s0] + [s1 * Z[k] for k in range(1, Z.shape[0])]
    for q, P in enumerate(term_products(Z[1:1 + m], terms)):
        k = 1 + m + q
        if k < len(slabs):
            slabs[k] = slabs[k] + s2 * P
        else:
            slabs.append(s2 * P)
    return torch.stack(slabs)


def _jet_backward(sigma, m: int, terms, Z: Tensor, bias: Tensor | None, G: Tensor) -> tuple[Tensor, ...]:
    """(dL/dZ, dL/dbias) from dL/dH = G: the backward of the module docstring (no
    parameter gradients: omega is fixed); ``sigma(z, 3)`` gives s0, ..., s3."""
    z = Z[0] if bias is None else Z[0] + bias
    S_in = Z.shape[0]
    dz = Z[1:1 + m]
    G1 = sum((G[k] * Z[k] for k in range(1, S_in)), torch.zeros_like(z))
    products = term_products(dz, terms)
    G2 = sum((G[1 + m + q] * P for q, P in enumerate(products)), torch.zeros_like(z))
    _, s1, s2, s3 = sigma(z, 3)
    grads = [G[k] * s1 for k in range(1, S_in)]
    for q, term in enumerate(terms):
        w = G[1 + m + q] * s2
        for a, b in term:
            if a == b:
                grads[a] = grads[a] + 2.0 * w * dz[a]
            else:
                grads[a] = grads[a] + w * dz[b]
                grads[b] = grads[b] + w * dz[a]
    g0 = G[0] * s1 + G1 * s2 + G2 * s3
    return torch.stack([g0] + grads), g0.sum(0)


def _program(kind: str, family: str, m: int, terms, has_bias: bool) -> Callable:
    """The compiled forward ``(Z, bias, *params) -> H`` or backward
    ``(Z, bias, G, *params) -> (dZ, dbias)`` for one layer signature, built on
    first use."""
    key = (kind, family, m, terms, has_bias)
    program = _PROGRAMS.get(key)
    if program is None:
        if kind == "forward":
            def run(Z, bias, *params):
                return _jet_forward(FAMILIES[family](*params), m, terms, Z, bias if has_bias else None)
        else:
            def run(Z, bias, G, *params):
                return _jet_backward(FAMILIES[family](*params), m, terms, Z, bias if has_bias else None, G)
        # A code object of its own: Dynamo caches compiled graphs per code object, up to a
        # small limit, and every signature's closure would otherwise share one.
        name = f"jet_{kind}_{family}_{len(_PROGRAMS)}"
        run = types.FunctionType(run.__code__.replace(co_name=name, co_qualname=name), run.__globals__, name,
                                 run.__defaults__, run.__closure__)
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
    """(Z, bias, *params) -> H for a family of :data:`FAMILIES` as one autograd node whose
    forward and backward are the compiled programs of the module docstring (first-order
    only: training needs no more). Saves only its inputs."""

    @staticmethod
    def forward(ctx, Z, bias, family, m, terms, *params):
        b = Z.new_zeros(()) if bias is None else bias
        H = _run(_program("forward", family, m, terms, bias is not None), Z, b, *params)
        ctx.save_for_backward(Z, b, *params)
        ctx.family, ctx.m, ctx.terms, ctx.has_bias = family, m, terms, bias is not None
        return H

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, G):
        Z, b, *params = ctx.saved_tensors
        program = _program("backward", ctx.family, ctx.m, ctx.terms, ctx.has_bias)
        gZ, g_bias = _run(program, Z, b, G.contiguous(), *params)
        return (gZ, (g_bias if ctx.has_bias else None), None, None, None) + (None,) * len(params)


def compiled_jet_stacked(Z: Tensor, bias: Tensor | None, family: str, omega: float, m: int, terms) -> Tensor:
    """The stacked jet of a family of :data:`FAMILIES` ("sine", "finer") with frequency
    ``omega`` through :class:`CompiledJet`; the other arguments as
    :meth:`~pinn_sine.nets.Activation.jet_stacked`."""
    if family not in FAMILIES:
        raise ValueError(f"no compiled jet for family {family!r}; the families are {sorted(FAMILIES)}.")
    w = torch.tensor(float(omega), dtype=Z.dtype, device=Z.device)
    return CompiledJet.apply(Z, bias, family, int(m), tuple(terms), w)


__all__ = ["compiled_jet_stacked", "CompiledJet", "FAMILIES"]
