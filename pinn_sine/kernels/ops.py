"""The fused activation jets as torch custom operators (namespace ``pinn_sine``).

Eight operators, each with a fake (meta) implementation so torch.compile and
torch.export can trace them as opaque nodes:

    metasin_value(z, c0, c, f, p) -> u
    metasin_jet(z, dz, d2z?, c0, c, f, p, a, b, q) -> (u, du, d2u)
    sine_value(z, omega, finer) -> u
    sine_jet(z, dz, d2z?, omega, finer, a, b, q) -> (u, du, d2u)

and their ``*_backward`` operators. ``finer`` selects FINER's sin(omega (|z|+1) z)
over SIREN's sin(omega z); (a, b) are the direction slots of each pair and q the
second-order stream it adds to (a stream sums its pairs: one pair, or a Laplacian's
diagonal; see :func:`pinn_sine.kernels.native.as_terms`).

Gradient orders. The first-order backward of every forward operator is a fused
Triton kernel (registered with ``register_autograd``). When the backward itself is
being differentiated (``create_graph=True``, e.g. gradgradcheck or a Hessian-vector
product through the fused layer), the backward instead recomputes the native
composite jet of :mod:`pinn_sine.kernels.native` and differentiates it with autograd,
so second and higher orders are exact but unfused.

The functions ``*_triton`` at the bottom call the operators directly, whatever the
device: on CUDA, or on CPU when Triton's interpreter is on (``TRITON_INTERPRET=1`` in
the environment before the process first imports Triton; Triton fixes the mode for
the whole process at that moment). The public entry points that choose
between these and the native path are in :mod:`pinn_sine.kernels.dispatch`.
"""
from __future__ import annotations

import os
from typing import Optional

import torch
from torch import Tensor

from .native import (Pairs, Terms, as_terms, chain_rule, finer_derivatives, flatten_terms, metasin_sigmas,
                     sine_derivatives, unflatten_terms)

SUPPORTED_DTYPES = (torch.float32, torch.float64)


class KernelUnavailableError(RuntimeError):
    """The Triton kernels were asked for where they cannot run."""


# ----- fast sines and cosines (opt-in) ----------------------------------------------

FAST_SINCOS_VAR = "PINN_SINE_FAST_SINCOS"
_SWITCH = {"1": True, "true": True, "on": True, "yes": True, "0": False, "false": False, "off": False,
           "no": False, "": False}
_fast: bool | None = None  # None until first read


def parse_switch(value: str | None, *, source: str = FAST_SINCOS_VAR) -> bool:
    """``value`` ("1"/"0", "true"/"false", "on"/"off", "yes"/"no"; unset or "": off) as a bool."""
    text = (value or "").strip().lower()
    if text not in _SWITCH:
        raise ValueError(f'Invalid {source}="{value}". Must be one of 1, 0, true, false, on, off, yes, no '
                         "(or unset: off).")
    return _SWITCH[text]


def fast_sincos() -> bool:
    """Whether the float32 Triton kernels evaluate sin and cos with one shared range
    reduction and two polynomials (:func:`pinn_sine.kernels.triton_jet._fast_sincos`,
    at most 2e-7 absolute error for arguments up to 1e5 in magnitude, degrading beyond)
    instead of libdevice's ``sinf``/``cosf``: off unless ``PINN_SINE_FAST_SINCOS=1``
    (read at the first kernel launch) or :func:`set_fast_sincos`. Float64 kernels and
    the native and compiled paths always use the accurate functions."""
    global _fast
    if _fast is None:
        _fast = parse_switch(os.environ.get(FAST_SINCOS_VAR))
    return _fast


def set_fast_sincos(on: bool) -> bool:
    """Switch the fast float32 sines and cosines of the Triton kernels on or off from now
    on (see :func:`fast_sincos`); returns the previous setting. The environment
    variable is not read after this."""
    global _fast
    if not isinstance(on, bool):
        raise TypeError(f"set_fast_sincos takes True or False, got {on!r}.")
    previous = fast_sincos()
    _fast = on
    return previous


# ----- the Triton module, imported on first use -----------------------------------

def triton_module():
    """:mod:`pinn_sine.kernels.triton_jet` (imports Triton), or a clear error."""
    try:
        from . import triton_jet
    except ImportError as err:
        raise KernelUnavailableError(
            f"the fused kernels need Triton, which failed to import ({err}). Install it "
            '(pip install "pinn-sine[gpu]") or set PINN_SINE_KERNELS=native (or call '
            'pinn_sine.kernels.set_backend("native")).'
        ) from err
    return triton_jet


def interpreter_active() -> bool:
    """Whether the kernels were built by Triton's CPU interpreter (TRITON_INTERPRET=1
    was set when :mod:`pinn_sine.kernels.triton_jet` was first imported)."""
    from triton.runtime.interpreter import InterpretedFunction

    return isinstance(triton_module()._jet_fwd_kernel, InterpretedFunction)


def check_runnable(t: Tensor) -> None:
    """Raise :class:`KernelUnavailableError` unless the Triton kernels can run on ``t``."""
    if t.dtype not in SUPPORTED_DTYPES:
        raise KernelUnavailableError(
            f"the Triton kernels support float32 and float64, got {t.dtype}; "
            "convert the inputs or set PINN_SINE_KERNELS=native (or call "
            "pinn_sine.kernels.set_backend('native'))."
        )
    triton_module()
    if t.device.type == "cuda":
        return
    if t.device.type == "cpu" and interpreter_active():
        return
    raise KernelUnavailableError(
        f"the Triton kernels cannot run on {t.device.type} tensors: they need CUDA tensors, "
        "or CPU tensors with Triton's interpreter (TRITON_INTERPRET=1 in the environment before "
        "the process first imports Triton, e.g. before importing pinn_sine). Use CUDA tensors, or "
        "set PINN_SINE_KERNELS=native (or call pinn_sine.kernels.set_backend('native'))."
    )


def _kernels_for(z: Tensor):
    check_runnable(z)
    return triton_module()


def _empty(like: Tensor, M: int) -> Tensor:
    return like.new_empty((M,) + tuple(like.shape))


# ----- MetaSin ---------------------------------------------------------------------

@torch.library.custom_op("pinn_sine::metasin_value", mutates_args=())
def metasin_value_op(z: Tensor, c0: Tensor, c: Tensor, f: Tensor, p: Tensor) -> Tensor:
    tj = _kernels_for(z)
    return tj.jet_forward(tj.METASIN, z, _empty(z, 0), None, (c0, c, f, p), None, (), (), ())[0]


@metasin_value_op.register_fake
def _(z, c0, c, f, p):
    return torch.empty_like(z, memory_format=torch.contiguous_format)


@torch.library.custom_op("pinn_sine::metasin_value_backward", mutates_args=())
def metasin_value_backward_op(gu: Tensor, z: Tensor, c0: Tensor, c: Tensor, f: Tensor,
                              p: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    tj = _kernels_for(z)
    none = _empty(z, 0)
    gz, _, _, grads = tj.jet_backward(tj.METASIN, gu, none, none, z, none, None, (c0, c, f, p), None, (), (), ())
    return (gz, *grads)


@metasin_value_backward_op.register_fake
def _(gu, z, c0, c, f, p):
    return (torch.empty_like(z, memory_format=torch.contiguous_format), torch.empty_like(c0),
            torch.empty_like(c), torch.empty_like(f), torch.empty_like(p))


@torch.library.custom_op("pinn_sine::metasin_jet", mutates_args=())
def metasin_jet_op(z: Tensor, dz: Tensor, d2z: Optional[Tensor], c0: Tensor, c: Tensor, f: Tensor,
                   p: Tensor, a: list[int], b: list[int], q: list[int]) -> tuple[Tensor, Tensor, Tensor]:
    tj = _kernels_for(z)
    return tj.jet_forward(tj.METASIN, z, dz, d2z, (c0, c, f, p), None, a, b, q)


@metasin_jet_op.register_fake
def _(z, dz, d2z, c0, c, f, p, a, b, q):
    return _jet_fake(z, dz, q)


@torch.library.custom_op("pinn_sine::metasin_jet_backward", mutates_args=())
def metasin_jet_backward_op(gu: Tensor, gdu: Tensor, gd2u: Tensor, z: Tensor, dz: Tensor,
                            d2z: Optional[Tensor], c0: Tensor, c: Tensor, f: Tensor, p: Tensor,
                            a: list[int], b: list[int], q: list[int]
                            ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """(gz, gdz, gd2z, g_c0, g_c, g_f, g_p); gd2z is empty (0,) when d2z is None."""
    tj = _kernels_for(z)
    gz, gdz, gd2z, grads = tj.jet_backward(tj.METASIN, gu, gdu, gd2u, z, dz, d2z, (c0, c, f, p), None, a, b, q)
    return (gz, gdz, z.new_empty(0) if gd2z is None else gd2z, *grads)


@metasin_jet_backward_op.register_fake
def _(gu, gdu, gd2u, z, dz, d2z, c0, c, f, p, a, b, q):
    return (*_jet_backward_fake(z, dz, d2z, q), torch.empty_like(c0), torch.empty_like(c),
            torch.empty_like(f), torch.empty_like(p))


# ----- SIREN and FINER --------------------------------------------------------------

def _sine_family(finer: bool) -> int:
    from .triton_jet import FINER, SINE

    return FINER if finer else SINE


@torch.library.custom_op("pinn_sine::sine_value", mutates_args=())
def sine_value_op(z: Tensor, omega: float, finer: bool) -> Tensor:
    tj = _kernels_for(z)
    return tj.jet_forward(_sine_family(finer), z, _empty(z, 0), None, (), omega, (), (), ())[0]


@sine_value_op.register_fake
def _(z, omega, finer):
    return torch.empty_like(z, memory_format=torch.contiguous_format)


@torch.library.custom_op("pinn_sine::sine_value_backward", mutates_args=())
def sine_value_backward_op(gu: Tensor, z: Tensor, omega: float, finer: bool) -> Tensor:
    tj = _kernels_for(z)
    none = _empty(z, 0)
    return tj.jet_backward(_sine_family(finer), gu, none, none, z, none, None, (), omega, (), (), ())[0]


@sine_value_backward_op.register_fake
def _(gu, z, omega, finer):
    return torch.empty_like(z, memory_format=torch.contiguous_format)


@torch.library.custom_op("pinn_sine::sine_jet", mutates_args=())
def sine_jet_op(z: Tensor, dz: Tensor, d2z: Optional[Tensor], omega: float, finer: bool,
                a: list[int], b: list[int], q: list[int]) -> tuple[Tensor, Tensor, Tensor]:
    tj = _kernels_for(z)
    return tj.jet_forward(_sine_family(finer), z, dz, d2z, (), omega, a, b, q)


@sine_jet_op.register_fake
def _(z, dz, d2z, omega, finer, a, b, q):
    return _jet_fake(z, dz, q)


@torch.library.custom_op("pinn_sine::sine_jet_backward", mutates_args=())
def sine_jet_backward_op(gu: Tensor, gdu: Tensor, gd2u: Tensor, z: Tensor, dz: Tensor,
                         d2z: Optional[Tensor], omega: float, finer: bool, a: list[int],
                         b: list[int], q: list[int]) -> tuple[Tensor, Tensor, Tensor]:
    """(gz, gdz, gd2z); gd2z is empty (0,) when d2z is None."""
    tj = _kernels_for(z)
    gz, gdz, gd2z, _ = tj.jet_backward(_sine_family(finer), gu, gdu, gd2u, z, dz, d2z, (), omega, a, b, q)
    return gz, gdz, z.new_empty(0) if gd2z is None else gd2z


@sine_jet_backward_op.register_fake
def _(gu, gdu, gd2u, z, dz, d2z, omega, finer, a, b, q):
    return _jet_backward_fake(z, dz, d2z, q)


def _n_streams(q) -> int:
    return max(q) + 1 if len(q) else 0


def _jet_fake(z, dz, q):
    n, C = z.shape
    return z.new_empty(n, C), z.new_empty(dz.shape[0], n, C), z.new_empty(_n_streams(q), n, C)


def _jet_backward_fake(z, dz, d2z, q):
    n, C = z.shape
    gd2z = z.new_empty(0) if d2z is None else z.new_empty(_n_streams(q), n, C)
    return z.new_empty(n, C), z.new_empty(dz.shape[0], n, C), gd2z


# ----- autograd ---------------------------------------------------------------------
# The fused backward runs when the backward is not itself differentiated; under
# create_graph=True (grad mode on inside backward) the composite path runs instead.

def _composite_vjp(sigmas, z, dz, d2z, params, pairs, grads):
    """Vector-Jacobian product of the native composite jet, differentiable again.

    Recomputes (u, du, d2u) from the saved inputs with torch ops and differentiates
    them with autograd (create_graph=True), so it serves every order above the first.
    Returns one gradient (or None) per tensor of (z, dz, d2z, *params).
    """
    inputs = (z, dz, d2z, *params)
    with torch.enable_grad():
        s0, s1, s2 = sigmas(z, *params)
        outs = chain_rule(s0, s1, s2, dz, d2z, pairs)
    pick = [(o, g) for o, g in zip(outs, grads) if o is not None and g is not None and o.numel()]
    wrt = [t for t in inputs if t is not None and t.requires_grad]
    if not wrt or not pick:
        return tuple(None for _ in inputs)
    got = iter(torch.autograd.grad([o for o, _ in pick], wrt, [g for _, g in pick],
                                   create_graph=True, allow_unused=True))
    return tuple(next(got) if t is not None and t.requires_grad else None for t in inputs)


def _metasin_sigmas(z, c0, c, f, p):
    return metasin_sigmas(z, c0, c, f, p)


def _sine_sigmas(omega: float, finer: bool):
    derivatives = finer_derivatives if finer else sine_derivatives
    return lambda z: derivatives(z, omega, 2)




def _zeros_if_none(g, like):
    return torch.zeros_like(like) if g is None else g


def _setup_metasin_value(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _backward_metasin_value(ctx, gu):
    z, c0, c, f, p = ctx.saved_tensors
    gu = _zeros_if_none(gu, z)
    if torch.is_grad_enabled():
        gz, _, _, *grads = _composite_vjp(_metasin_sigmas, z, _empty(z, 0), None, (c0, c, f, p), (),
                                          (gu, None, None))
        return (gz, *grads)
    return metasin_value_backward_op(gu, z, c0, c, f, p)


def _setup_metasin_jet(ctx, inputs, output):
    z, dz, d2z, c0, c, f, p, a, b, q = inputs
    ctx.save_for_backward(z, dz, d2z, c0, c, f, p)
    ctx.pairs = (list(a), list(b), list(q))


def _backward_metasin_jet(ctx, gu, gdu, gd2u):
    z, dz, d2z, c0, c, f, p = ctx.saved_tensors
    a, b, q = ctx.pairs
    gu, gdu = _zeros_if_none(gu, z), _zeros_if_none(gdu, dz)
    gd2u = z.new_zeros((_n_streams(q),) + tuple(z.shape)) if gd2u is None else gd2u
    if torch.is_grad_enabled():
        return (*_composite_vjp(_metasin_sigmas, z, dz, d2z, (c0, c, f, p), unflatten_terms(a, b, q),
                                (gu, gdu, gd2u)), None, None, None)
    gz, gdz, gd2z, *grads = metasin_jet_backward_op(gu, gdu, gd2u, z, dz, d2z, c0, c, f, p, a, b, q)
    return (gz, gdz, None if d2z is None else gd2z, *grads, None, None, None)


def _setup_sine_value(ctx, inputs, output):
    z, omega, finer = inputs
    ctx.save_for_backward(z)
    ctx.family = (omega, finer)


def _backward_sine_value(ctx, gu):
    (z,) = ctx.saved_tensors
    omega, finer = ctx.family
    gu = _zeros_if_none(gu, z)
    if torch.is_grad_enabled():
        gz = _composite_vjp(_sine_sigmas(omega, finer), z, _empty(z, 0), None, (), (), (gu, None, None))[0]
        return gz, None, None
    return sine_value_backward_op(gu, z, omega, finer), None, None


def _setup_sine_jet(ctx, inputs, output):
    z, dz, d2z, omega, finer, a, b, q = inputs
    ctx.save_for_backward(z, dz, d2z)
    ctx.family = (omega, finer)
    ctx.pairs = (list(a), list(b), list(q))


def _backward_sine_jet(ctx, gu, gdu, gd2u):
    z, dz, d2z = ctx.saved_tensors
    omega, finer = ctx.family
    a, b, q = ctx.pairs
    gu, gdu = _zeros_if_none(gu, z), _zeros_if_none(gdu, dz)
    gd2u = z.new_zeros((_n_streams(q),) + tuple(z.shape)) if gd2u is None else gd2u
    if torch.is_grad_enabled():
        gz, gdz, gd2z = _composite_vjp(_sine_sigmas(omega, finer), z, dz, d2z, (), unflatten_terms(a, b, q),
                                       (gu, gdu, gd2u))
        return gz, gdz, gd2z, None, None, None, None, None
    gz, gdz, gd2z = sine_jet_backward_op(gu, gdu, gd2u, z, dz, d2z, omega, finer, a, b, q)
    return gz, gdz, None if d2z is None else gd2z, None, None, None, None, None


metasin_value_op.register_autograd(_backward_metasin_value, setup_context=_setup_metasin_value)
metasin_jet_op.register_autograd(_backward_metasin_jet, setup_context=_setup_metasin_jet)
sine_value_op.register_autograd(_backward_sine_value, setup_context=_setup_sine_value)
sine_jet_op.register_autograd(_backward_sine_jet, setup_context=_setup_sine_jet)


# ----- direct entry points (the Triton path, whatever the dispatch would choose) ----

def _check_jet_inputs(z: Tensor, dz: Tensor, d2z: Tensor | None, terms: Terms) -> None:
    if z.dim() != 2:
        raise ValueError(f"z must be (n, C), got shape {tuple(z.shape)}.")
    if dz.dim() != 3 or tuple(dz.shape[1:]) != tuple(z.shape):
        raise ValueError(f"dz must be (m, n, C) = (m, {z.shape[0]}, {z.shape[1]}), got {tuple(dz.shape)}.")
    M = dz.shape[0]
    if M > 64:
        raise ValueError(f"the fused kernels take at most 64 directions, got m={M}.")
    for q, term in enumerate(terms):
        for a, b in term:
            if not (0 <= a < M and 0 <= b < M):
                raise ValueError(f"pair ({a}, {b}) of second-order stream {q} names a direction slot "
                                 f"outside 0..{M - 1}.")
    if len(terms) > 64 or sum(len(t) for t in terms) > 10:
        raise ValueError(f"the fused kernels take at most 10 pairs in all (packed into compile-time "
                         f"constants), got {sum(len(t) for t in terms)}; set PINN_SINE_KERNELS=native "
                         "(or call pinn_sine.kernels.set_backend('native')).")
    if d2z is not None and tuple(d2z.shape) != (len(terms),) + tuple(z.shape):
        raise ValueError(f"d2z must be (p, n, C) = ({len(terms)}, {z.shape[0]}, {z.shape[1]}) for "
                         f"{len(terms)} second-order streams, got {tuple(d2z.shape)}.")
    for name, t in (("dz", dz), ("d2z", d2z)):
        if t is not None and (t.dtype != z.dtype or t.device != z.device):
            raise ValueError(f"{name} must match z's dtype and device ({z.dtype}, {z.device}), "
                             f"got ({t.dtype}, {t.device}).")


def _check_metasin_params(z: Tensor, c0: Tensor, c: Tensor, f: Tensor, p: Tensor) -> None:
    C = z.shape[-1]
    K = c.shape[-1] if c.dim() == 2 else -1
    if tuple(c0.shape) != (C,) or any(tuple(t.shape) != (C, K) for t in (c, f, p)):
        raise ValueError(f"MetaSin parameters must be c0 (C,) and c, f, p (C, K) with C = {C}; got "
                         f"{[tuple(t.shape) for t in (c0, c, f, p)]}.")
    for t in (c0, c, f, p):
        if t.dtype != z.dtype or t.device != z.device:
            raise ValueError(f"MetaSin parameters must match z's dtype and device ({z.dtype}, {z.device}), "
                             f"got ({t.dtype}, {t.device}).")


def metasin_value_triton(z: Tensor, c0: Tensor, c: Tensor, f: Tensor, p: Tensor) -> Tensor:
    """Fused MetaSin value sigma(z) (n, C); c0 (C,), c, f, p (C, K)."""
    _check_metasin_params(z, c0, c, f, p)
    return metasin_value_op(z, c0, c, f, p)


def metasin_jet_triton(z: Tensor, dz: Tensor, d2z: Tensor | None, c0: Tensor, c: Tensor, f: Tensor,
                       p: Tensor, pairs: Pairs) -> tuple[Tensor, Tensor, Tensor | None]:
    """Fused MetaSin jet; arguments (pairs or terms) and result as :meth:`Activation.jet`."""
    terms = as_terms(pairs)
    _check_jet_inputs(z, dz, d2z, terms)
    _check_metasin_params(z, c0, c, f, p)
    u, du, d2u = metasin_jet_op(z, dz, d2z if terms else None, c0, c, f, p, *map(list, flatten_terms(terms)))
    return u, du, (d2u if terms else None)


def sine_value_triton(z: Tensor, omega: float, *, finer: bool = False) -> Tensor:
    """Fused sin(omega z) (or FINER's sin(omega (|z| + 1) z) with ``finer=True``)."""
    return sine_value_op(z, float(omega), bool(finer))


def sine_jet_triton(z: Tensor, dz: Tensor, d2z: Tensor | None, omega: float, pairs: Pairs, *,
                    finer: bool = False) -> tuple[Tensor, Tensor, Tensor | None]:
    """Fused SIREN (or FINER) jet; arguments (pairs or terms) and result as :meth:`Activation.jet`."""
    terms = as_terms(pairs)
    _check_jet_inputs(z, dz, d2z, terms)
    u, du, d2u = sine_jet_op(z, dz, d2z if terms else None, float(omega), bool(finer),
                             *map(list, flatten_terms(terms)))
    return u, du, (d2u if terms else None)


# ----- the engine's stacked layout ----------------------------------------------------

class _StackedJet(torch.autograd.Function):
    """The fused jet on the engine's stacked slabs, as one autograd node.

    Forward: z = Z_0 + bias, the fused kernel on views of Z (no copy of the inputs),
    then its three outputs stacked into H (one copy). Backward: the fused backward
    kernel on views of dL/dH, its three gradients stacked into dL/dZ (one copy) and
    dL/dbias = sum_n dL/dz. Letting autograd differentiate z = Z_0 + bias and the
    slicing of Z instead would cost a zero-filled (S, n, C) buffer and an accumulation
    per slice. First order only; higher orders go through the unstacked
    :func:`metasin_jet_triton`/:func:`sine_jet_triton`.
    """

    @staticmethod
    def forward(ctx, Z, bias, c0, c, f, p, omega, finer, m, terms):
        z = Z[0] if bias is None else Z[0] + bias
        dz = Z[1:1 + m]
        d2z = Z[1 + m:] if (terms and Z.shape[0] > 1 + m) else None
        a, b, q = (list(v) for v in flatten_terms(terms))
        if c0 is not None:
            u, du, d2u = metasin_jet_op(z, dz, d2z, c0, c, f, p, a, b, q)
        else:
            u, du, d2u = sine_jet_op(z, dz, d2z, omega, finer, a, b, q)
        ctx.save_for_backward(z, Z, c0, c, f, p)
        ctx.jet = (omega, finer, m, terms, a, b, q, bias is not None)
        return torch.cat([u.unsqueeze(0), du] + ([d2u] if terms else []))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, G):
        z, Z, c0, c, f, p = ctx.saved_tensors
        omega, finer, m, terms, a, b, q, has_bias = ctx.jet
        dz = Z[1:1 + m]
        d2z = Z[1 + m:] if (terms and Z.shape[0] > 1 + m) else None
        gu, gdu = G[0], G[1:1 + m]
        gd2u = G[1 + m:] if terms else z.new_zeros((0,) + tuple(z.shape))
        grads = (None, None, None, None)
        if c0 is not None:
            gz, gdz, gd2z, *grads = metasin_jet_backward_op(gu, gdu, gd2u, z, dz, d2z, c0, c, f, p, a, b, q)
        else:
            gz, gdz, gd2z = sine_jet_backward_op(gu, gdu, gd2u, z, dz, d2z, omega, finer, a, b, q)
        gZ = torch.cat([gz.unsqueeze(0), gdz] + ([gd2z] if d2z is not None else []))
        return (gZ, gz.sum(0) if has_bias else None, *grads, None, None, None, None)


def jet_stacked_triton(Z: Tensor, bias: Tensor | None, m: int, terms, *, omega: float | None = None,
                       finer: bool = False, metasin_params=None) -> Tensor:
    """Fused jet on stacked slabs, arguments and result as
    :meth:`pinn_sine.nets.Activation.kernel_jet_stacked`: MetaSin when ``metasin_params``
    = (c0, c, f, p) is given, else SIREN (or FINER with ``finer=True``) with ``omega``."""
    terms = as_terms(terms)
    if Z.dim() != 3 or Z.shape[0] not in (1 + m, 1 + m + len(terms)):
        raise ValueError(f"Z must be (1 + m [+ p], n, C) with m = {m} and p = {len(terms)}, got {tuple(Z.shape)}.")
    _check_jet_inputs(Z[0], Z[1:1 + m], Z[1 + m:] if Z.shape[0] > 1 + m else None, terms)
    if metasin_params is not None:
        _check_metasin_params(Z[0], *metasin_params)
        return _StackedJet.apply(Z, bias, *metasin_params, None, False, m, terms)
    return _StackedJet.apply(Z, bias, None, None, None, None, float(omega), bool(finer), m, terms)
