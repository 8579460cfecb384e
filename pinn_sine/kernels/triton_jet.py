"""Triton kernels for the activation jets of SIREN, FINER and MetaSin.

This module imports Triton at import time; the rest of ``pinn_sine`` imports it only
when a Triton path actually runs (see :mod:`pinn_sine.kernels.dispatch`).

One forward kernel and one backward kernel serve all three families (``FAMILY`` is a
compile-time constant). Both walk tiles of (BLOCK_N rows x BLOCK_C channels) of z:

* forward: evaluate sigma, sigma', sigma'' once per tile, each sine and cosine once
  per component, and write u = sigma, du_m = sigma' dz_m and
  d2u_s = sigma' d2z_s + sigma'' sum_{q in s} dz_aq dz_bq (a second-order stream s
  sums the pairs q of its term: one pair, or the diagonal of a Laplacian). With
  M = P = 0 it is the plain value-only activation.
* backward: from the saved inputs only (nothing K-fold is stored), recompute the
  sines and cosines and write dL/dz, dL/ddz, dL/dd2z. MetaSin's parameter gradients
  are reduced over the batch deterministically: every program owns one row of a
  partial-sum buffer, reduces its tiles with tl.sum (a tree within the block) into
  register accumulators, writes its row once; the caller sums the rows with torch.sum.
  No atomics. The partial sums use the input's precision (float32 for float32 inputs,
  float64 for float64).

Sines and cosines: ``tl.sin``/``tl.cos`` (libdevice's accurate ``sinf``/``cosf``, each
with its own range reduction and a Payne-Hanek slow path through local memory), or
with ``FAST`` (the opt-in :func:`~pinn_sine.kernels.ops.set_fast_sincos`, float32 only)
:func:`_fast_sincos`: one shared Cody-Waite reduction and two polynomials.

The pairs (a_q, b_q) of direction slots and the stream s_q each belongs to are
compile-time constants packed base 64 into ``PAIR_A``/``PAIR_B``/``PAIR_Q``, so the pair
loops unroll and the slot tests resolve at compile time. Inputs may be non-contiguous (any strides, including the stride-0 expanded dz
of the first layer); outputs are contiguous.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .ops import fast_sincos

METASIN, SINE, FINER = 0, 1, 2
FAMILIES = {"metasin": METASIN, "sine": SINE, "finer": FINER}

#: pair slots are packed base 64 into one compile-time integer (so at most 64 directions)
_SLOT_BASE = tl.constexpr(64)
#: target number of programs of the backward kernel (rows of the partial-sum buffer
#: times channel blocks). It depends on nothing but the shape, so the reduction order
#: and hence the parameter gradients are reproducible run to run and across devices.
BWD_PROGRAMS = 1024
#: elements per tile (halved for float64) and warps per program. Larger tiles spill
#: registers once several directions and pairs are live (checked with ptxas for sm_90).
FWD_TILE = 1024
BWD_TILE = 512
NUM_WARPS = 4


#: pi/2 as three float32 parts (8, 11 and 24 significant bits: the first two products
#: j * part are exact for |j| < 2**13, and the sum is pi/2 to 2e-15)
_PIO2_1 = tl.constexpr(1.5703125)
_PIO2_2 = tl.constexpr(4.837512969970703125e-4)
_PIO2_3 = tl.constexpr(7.54978995489188216e-8)
_TWO_OVER_PI = tl.constexpr(0.636619772367581343)


@triton.jit
def _fast_sincos(x):
    """(sin x, cos x) in float32 from one range reduction: j = round(2x / pi),
    r = x - j pi/2 in three Cody-Waite steps (|r| <= pi/4), the degree-7 and degree-8
    minimax polynomials of sin and cos on [-pi/4, pi/4], and the quadrant j mod 4
    choosing and signing them. At most 2e-7 absolute error for |x| <= 1e5 (the tests
    bound it; 9e-8 measured under the interpreter, also at 1e6); no slow path, so far
    larger arguments lose accuracy (8e-5 at |x| ~ 1e7, where the float32 x itself is
    coarse). inf and NaN give NaN."""
    j = tl.floor(x * _TWO_OVER_PI + 0.5)
    r = tl.fma(-j, _PIO2_1, x)
    r = tl.fma(-j, _PIO2_2, r)
    r = tl.fma(-j, _PIO2_3, r)
    r2 = r * r
    ps = r + r * r2 * ((-1.9515295891e-4 * r2 + 8.3321608736e-3) * r2 - 1.6666654611e-1)
    pc = 1.0 - 0.5 * r2 + r2 * r2 * ((2.443315711809948e-5 * r2 - 1.388731625493765e-3) * r2
                                     + 4.166664568298827e-2)
    quadrant = j.to(tl.int32) & 3
    odd = (quadrant & 1) != 0
    sn = tl.where(odd, pc, ps)
    cs = tl.where(odd, ps, pc)
    sn = tl.where((quadrant & 2) != 0, -sn, sn)
    cs = tl.where(((quadrant + 1) & 2) != 0, -cs, cs)
    return sn, cs


@triton.jit
def _sincos(x, FAST: tl.constexpr):
    """(sin x, cos x): :func:`_fast_sincos` with ``FAST``, else libdevice's."""
    if FAST:
        sn, cs = _fast_sincos(x)
    else:
        sn = tl.sin(x)
        cs = tl.cos(x)
    return sn, cs


@triton.jit
def _sine_sigmas(z, omega, IS_FINER: tl.constexpr, FAST: tl.constexpr):
    """sigma, sigma', sigma'', sigma''' of sin(omega z) or sin(omega (|z| + 1) z)."""
    if IS_FINER:
        az = tl.abs(z)
        arg = omega * (az + 1.0) * z
        sn, cs = _sincos(arg, FAST)
        a1 = omega * (2.0 * az + 1.0)
        sgn = (z > 0).to(z.dtype) - (z < 0).to(z.dtype)
        a2 = (2.0 * omega) * sgn
        s1 = a1 * cs
        s2 = a2 * cs - a1 * a1 * sn
        s3 = -3.0 * a1 * a2 * sn - a1 * a1 * a1 * cs
    else:
        arg = omega * z
        sn, cs = _sincos(arg, FAST)
        s1 = omega * cs
        s2 = -(omega * omega) * sn
        s3 = -(omega * omega * omega) * cs
    return sn, s1, s2, s3


@triton.jit
def _metasin_sigmas(z, c0_ptr, c_ptr, f_ptr, p_ptr, cols, cmask, K: tl.constexpr, FAST: tl.constexpr):
    """sigma, sigma', sigma'' of MetaSin on a tile, one sine and one cosine per component."""
    c0 = tl.load(c0_ptr + cols, mask=cmask, other=0.0)[None, :]
    pos = z > 0
    s0 = c0 * tl.where(pos, z, 0.0)
    s1 = tl.where(pos, c0, 0.0)
    s2 = tl.zeros_like(z)
    for j in range(K):
        cj = tl.load(c_ptr + cols * K + j, mask=cmask, other=0.0)[None, :]
        fj = tl.load(f_ptr + cols * K + j, mask=cmask, other=0.0)[None, :]
        pj = tl.load(p_ptr + cols * K + j, mask=cmask, other=0.0)[None, :]
        theta = z * fj + pj
        sn, cs = _sincos(theta, FAST)
        cf = cj * fj
        s0 += cj * sn
        s1 += cf * cs
        s2 -= cf * fj * sn
    return s0, s1, s2


@triton.jit
def _term_product(dz_ptr, sdm, dz_rc, mask, like, S: tl.constexpr, P: tl.constexpr,
                  PAIR_A: tl.constexpr, PAIR_B: tl.constexpr, PAIR_Q: tl.constexpr):
    """P_S = sum over the pairs q of second-order stream S of dz_aq dz_bq on a tile (the
    factor of sigma'' in that stream), shaped like ``like``; the pair loop unrolls."""
    pp = tl.zeros_like(like)
    for q in tl.static_range(P):
        if (PAIR_Q // (_SLOT_BASE ** q)) % _SLOT_BASE == S:
            a = (PAIR_A // (_SLOT_BASE ** q)) % _SLOT_BASE
            b = (PAIR_B // (_SLOT_BASE ** q)) % _SLOT_BASE
            da = tl.load(dz_ptr + a * sdm + dz_rc, mask=mask, other=0.0)
            db = tl.load(dz_ptr + b * sdm + dz_rc, mask=mask, other=0.0)
            pp += da * db
    return pp


@triton.jit
def _jet_fwd_kernel(
    z_ptr, dz_ptr, d2z_ptr,
    c0_ptr, c_ptr, f_ptr, p_ptr, omega_ptr,
    u_ptr, du_ptr, d2u_ptr,
    n, C,
    s_zn, s_zc,
    s_dm, s_dn, s_dc,
    s_2m, s_2n, s_2c,
    FAMILY: tl.constexpr, K: tl.constexpr, M: tl.constexpr, P: tl.constexpr, PS: tl.constexpr,
    PAIR_A: tl.constexpr, PAIR_B: tl.constexpr, PAIR_Q: tl.constexpr, HAS_D2Z: tl.constexpr,
    FAST: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_C: tl.constexpr,
):
    rows = (tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)).to(tl.int64)
    cols = (tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)).to(tl.int64)
    cmask = cols < C
    mask = (rows < n)[:, None] & cmask[None, :]
    r = rows[:, None]
    cc = cols[None, :]
    z = tl.load(z_ptr + r * s_zn + cc * s_zc, mask=mask, other=0.0)
    if FAMILY == 0:
        s0, s1, s2 = _metasin_sigmas(z, c0_ptr, c_ptr, f_ptr, p_ptr, cols, cmask, K, FAST)
    else:
        omega = tl.load(omega_ptr)
        s0, s1, s2, s3 = _sine_sigmas(z, omega, FAMILY == 2, FAST)
    # Slot offsets in int64: a slab index times a slab stride can pass 2**31.
    slab = tl.cast(n, tl.int64) * C
    sdm = tl.cast(s_dm, tl.int64)
    s2m = tl.cast(s_2m, tl.int64)
    out = r * C + cc
    tl.store(u_ptr + out, s0, mask=mask)
    dz_rc = r * s_dn + cc * s_dc
    for m in tl.static_range(M):
        d = tl.load(dz_ptr + m * sdm + dz_rc, mask=mask, other=0.0)
        tl.store(du_ptr + m * slab + out, s1 * d, mask=mask)
    for s in tl.static_range(PS):
        v = s2 * _term_product(dz_ptr, sdm, dz_rc, mask, z, s, P, PAIR_A, PAIR_B, PAIR_Q)
        if HAS_D2Z:
            v += s1 * tl.load(d2z_ptr + s * s2m + r * s_2n + cc * s_2c, mask=mask, other=0.0)
        tl.store(d2u_ptr + s * slab + out, v, mask=mask)


@triton.jit
def _jet_bwd_kernel(
    z_ptr, dz_ptr, d2z_ptr, gu_ptr, gdu_ptr, gd2u_ptr,
    c0_ptr, c_ptr, f_ptr, p_ptr, omega_ptr,
    gz_ptr, gdz_ptr, gd2z_ptr,
    part_c0_ptr, part_c_ptr, part_f_ptr, part_p_ptr,
    n, C,
    s_zn, s_zc,
    s_dm, s_dn, s_dc,
    s_2m, s_2n, s_2c,
    s_gn, s_gc,
    s_gdm, s_gdn, s_gdc,
    s_g2m, s_g2n, s_g2c,
    FAMILY: tl.constexpr, K: tl.constexpr, KP: tl.constexpr, M: tl.constexpr, P: tl.constexpr,
    PS: tl.constexpr, PAIR_A: tl.constexpr, PAIR_B: tl.constexpr, PAIR_Q: tl.constexpr,
    HAS_D2Z: tl.constexpr, FAST: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """With G0 = gU, G1 = sum_m gDU_m dz_m + sum_s gD2U_s d2z_s and G2 = sum_q gD2U_s(q) dz_aq dz_bq
    (pair q belongs to second-order stream s(q)):

        dL/dz     = G0 sigma' + G1 sigma'' + G2 sigma'''
        dL/ddz_m  = gDU_m sigma' + sigma'' sum_q gD2U_s(q) (dz_bq [aq = m] + dz_aq [bq = m])
        dL/dd2z_s = gD2U_s sigma'

    and for MetaSin, with theta_j = f_j z + p_j and
    dth_j = G0 cos - G1 f_j sin - G2 f_j^2 cos (all at theta_j):

        dL/dc0  = sum_n G0 relu(z) + G1 [z > 0]
        dL/dc_j = sum_n G0 sin + G1 f_j cos - G2 f_j^2 sin
        dL/dp_j = c_j sum_n dth_j
        dL/df_j = c_j sum_n (z dth_j + G1 cos - 2 G2 f_j sin)
    """
    pid_n = tl.program_id(0)
    n_prog = tl.num_programs(0)
    cols = (tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)).to(tl.int64)
    cmask = cols < C
    cc = cols[None, :]
    slab = tl.cast(n, tl.int64) * C
    sdm = tl.cast(s_dm, tl.int64)
    s2m = tl.cast(s_2m, tl.int64)
    sgdm = tl.cast(s_gdm, tl.int64)
    sg2m = tl.cast(s_g2m, tl.int64)
    dtype = z_ptr.dtype.element_ty
    kk = tl.arange(0, KP)
    acc_c0 = tl.zeros([BLOCK_C], dtype=dtype)
    acc_c = tl.zeros([BLOCK_C, KP], dtype=dtype)
    acc_f = tl.zeros([BLOCK_C, KP], dtype=dtype)
    acc_p = tl.zeros([BLOCK_C, KP], dtype=dtype)
    if FAMILY == 0:
        c0 = tl.load(c0_ptr + cols, mask=cmask, other=0.0)[None, :]
    else:
        omega = tl.load(omega_ptr)
    n_blocks = tl.cdiv(n, BLOCK_N)
    for blk in range(pid_n, n_blocks, n_prog):
        rows = (blk * BLOCK_N + tl.arange(0, BLOCK_N)).to(tl.int64)
        mask = (rows < n)[:, None] & cmask[None, :]
        r = rows[:, None]
        dz_rc = r * s_dn + cc * s_dc
        z = tl.load(z_ptr + r * s_zn + cc * s_zc, mask=mask, other=0.0)
        G0 = tl.load(gu_ptr + r * s_gn + cc * s_gc, mask=mask, other=0.0)
        G1 = tl.zeros_like(z)
        G2 = tl.zeros_like(z)
        for m in tl.static_range(M):
            d = tl.load(dz_ptr + m * sdm + dz_rc, mask=mask, other=0.0)
            G1 += tl.load(gdu_ptr + m * sgdm + r * s_gdn + cc * s_gdc, mask=mask, other=0.0) * d
        for s in tl.static_range(PS):
            g2 = tl.load(gd2u_ptr + s * sg2m + r * s_g2n + cc * s_g2c, mask=mask, other=0.0)
            if HAS_D2Z:
                G1 += g2 * tl.load(d2z_ptr + s * s2m + r * s_2n + cc * s_2c, mask=mask, other=0.0)
            G2 += g2 * _term_product(dz_ptr, sdm, dz_rc, mask, z, s, P, PAIR_A, PAIR_B, PAIR_Q)
        if FAMILY == 0:
            pos = z > 0
            s1 = tl.where(pos, c0, 0.0)
            s2 = tl.zeros_like(z)
            gz = G0 * s1
            acc_c0 += tl.sum(G0 * tl.where(pos, z, 0.0) + tl.where(pos, G1, 0.0), axis=0)
            for j in range(K):
                cj = tl.load(c_ptr + cols * K + j, mask=cmask, other=0.0)
                fj = tl.load(f_ptr + cols * K + j, mask=cmask, other=0.0)
                pj = tl.load(p_ptr + cols * K + j, mask=cmask, other=0.0)
                cj2 = cj[None, :]
                fj2 = fj[None, :]
                theta = z * fj2 + pj[None, :]
                sn, cs = _sincos(theta, FAST)
                cf = cj2 * fj2
                s1 += cf * cs
                s2 -= cf * fj2 * sn
                # G1 = 0 without directions and G2 = 0 without pairs: leave their terms out.
                dth = G0 * cs
                e_c = G0 * sn
                if M > 0:
                    g1f = G1 * fj2
                    dth -= g1f * sn
                    e_c += g1f * cs
                if P > 0:
                    g2ff = G2 * fj2 * fj2
                    dth -= g2ff * cs
                    e_c -= g2ff * sn
                e_f = z * dth
                if M > 0:
                    e_f += G1 * cs
                if P > 0:
                    e_f -= 2.0 * (G2 * fj2) * sn
                gz += cf * dth
                g_c = tl.sum(e_c, axis=0)
                g_p = cj * tl.sum(dth, axis=0)
                g_f = cj * tl.sum(e_f, axis=0)
                onehot = (kk == j)[None, :]
                acc_c += tl.where(onehot, g_c[:, None], 0.0)
                acc_p += tl.where(onehot, g_p[:, None], 0.0)
                acc_f += tl.where(onehot, g_f[:, None], 0.0)
        else:
            s0, s1, s2, s3 = _sine_sigmas(z, omega, FAMILY == 2, FAST)
            gz = G0 * s1 + G1 * s2 + G2 * s3
        out = r * C + cc
        tl.store(gz_ptr + out, gz, mask=mask)
        for m in tl.static_range(M):
            g = tl.load(gdu_ptr + m * sgdm + r * s_gdn + cc * s_gdc, mask=mask, other=0.0) * s1
            for q in tl.static_range(P):
                a = (PAIR_A // (_SLOT_BASE ** q)) % _SLOT_BASE
                b = (PAIR_B // (_SLOT_BASE ** q)) % _SLOT_BASE
                sq = (PAIR_Q // (_SLOT_BASE ** q)) % _SLOT_BASE
                if a == m:
                    g2 = tl.load(gd2u_ptr + sq * sg2m + r * s_g2n + cc * s_g2c, mask=mask, other=0.0)
                    g += g2 * s2 * tl.load(dz_ptr + b * sdm + dz_rc, mask=mask, other=0.0)
                if b == m:
                    g2 = tl.load(gd2u_ptr + sq * sg2m + r * s_g2n + cc * s_g2c, mask=mask, other=0.0)
                    g += g2 * s2 * tl.load(dz_ptr + a * sdm + dz_rc, mask=mask, other=0.0)
            tl.store(gdz_ptr + m * slab + out, g, mask=mask)
        if HAS_D2Z:
            for s in tl.static_range(PS):
                g2 = tl.load(gd2u_ptr + s * sg2m + r * s_g2n + cc * s_g2c, mask=mask, other=0.0)
                tl.store(gd2z_ptr + s * slab + out, g2 * s1, mask=mask)
    if FAMILY == 0:
        tl.store(part_c0_ptr + pid_n * C + cols, acc_c0, mask=cmask)
        pk = pid_n * C * K + cols[:, None] * K + kk[None, :]
        pmask = cmask[:, None] & (kk < K)[None, :]
        tl.store(part_c_ptr + pk, acc_c, mask=pmask)
        tl.store(part_f_ptr + pk, acc_f, mask=pmask)
        tl.store(part_p_ptr + pk, acc_p, mask=pmask)


# ----- launchers ----------------------------------------------------------------------

def _new_output(shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """Every output buffer of the kernels comes from here (tests poison it)."""
    return torch.empty(shape, dtype=like.dtype, device=like.device)


def _pack_slots(slots) -> int:
    code = 0
    for q, s in enumerate(slots):
        code += int(s) * _SLOT_BASE.value ** q
    return code


def _blocks(C: int, dtype: torch.dtype, tile: int) -> tuple[int, int]:
    block_c = min(64, triton.next_power_of_2(max(C, 1)))
    if dtype == torch.float64:
        tile //= 2
    return max(1, tile // block_c), block_c


def _strides(t: torch.Tensor | None, ndim: int) -> tuple[int, ...]:
    return (0,) * ndim if t is None else tuple(t.stride())


def _family_args(family: int, z: torch.Tensor, params, omega: float | None):
    """(c0, c, f, p, omega_tensor, K) as the kernels take them; unused slots point at z."""
    if family == METASIN:
        c0, c, f, p = (t.contiguous() for t in params)
        return c0, c, f, p, z, c.shape[1]
    omega_t = torch.full((1,), omega, dtype=z.dtype, device=z.device)
    return z, z, z, z, omega_t, 1


def _streams(q) -> int:
    return max(q) + 1 if len(q) else 0


def _constants(family: int, K: int, M: int, a, b, q, has_d2z: bool, C: int, dtype: torch.dtype,
               backward: bool, fast: bool | None = None) -> dict:
    """The compile-time constants of a launch: one place for the launchers and
    :func:`compile_ahead`, so that the latter compiles what the former launch. ``fast``
    (default: :func:`~pinn_sine.kernels.ops.fast_sincos`) applies to float32 only."""
    if fast is None:
        fast = fast_sincos()
    block_n, block_c = _blocks(C, dtype, BWD_TILE if backward else FWD_TILE)
    consts = dict(FAMILY=family, K=K, M=M, P=len(a), PS=_streams(q), PAIR_A=_pack_slots(a),
                  PAIR_B=_pack_slots(b), PAIR_Q=_pack_slots(q), HAS_D2Z=has_d2z,
                  FAST=bool(fast) and dtype == torch.float32, BLOCK_N=block_n, BLOCK_C=block_c)
    if backward:
        consts["KP"] = triton.next_power_of_2(K)
    return consts


def jet_forward(family: int, z, dz, d2z, params, omega, a, b, q):
    """Launch the forward kernel. Pairs (a_i, b_i) belong to second-order stream q_i.
    Shapes: z (n, C), dz (M, n, C), d2z (PS, n, C) or None, PS = max(q) + 1.

    Returns (u (n, C), du (M, n, C), d2u (PS, n, C)), contiguous.
    """
    n, C = z.shape
    M, PS = dz.shape[0], _streams(q)
    u = _new_output((n, C), z)
    du = _new_output((M, n, C), z)
    d2u = _new_output((PS, n, C), z)
    if n == 0 or C == 0:
        return u, du, d2u
    c0, c, f, p, omega_t, K = _family_args(family, z, params, omega)
    consts = _constants(family, K, M, a, b, q, d2z is not None, C, z.dtype, backward=False)
    grid = (triton.cdiv(n, consts["BLOCK_N"]), triton.cdiv(C, consts["BLOCK_C"]))
    _jet_fwd_kernel[grid](
        z, dz, z if d2z is None else d2z,
        c0, c, f, p, omega_t,
        u, du, d2u,
        n, C,
        *z.stride(), *dz.stride(), *_strides(d2z, 3),
        **consts, num_warps=NUM_WARPS,
    )
    return u, du, d2u


def jet_backward(family: int, gu, gdu, gd2u, z, dz, d2z, params, omega, a, b, q):
    """Launch the backward kernel and reduce the parameter partial sums.

    Returns (gz (n, C), gdz (M, n, C), gd2z (PS, n, C) or None when d2z is None,
    parameter gradients (g_c0 (C,), g_c, g_f, g_p (C, K)) or () for Sine/Finer).
    """
    n, C = z.shape
    M, PS = dz.shape[0], _streams(q)
    gz = _new_output((n, C), z)
    gdz = _new_output((M, n, C), z)
    gd2z = None if d2z is None else _new_output((PS, n, C), z)
    c0, c, f, p, omega_t, K = _family_args(family, z, params, omega)
    consts = _constants(family, K, M, a, b, q, d2z is not None, C, z.dtype, backward=True)
    n_cblocks = triton.cdiv(C, consts["BLOCK_C"]) if C else 0
    n_rprog = min(triton.cdiv(n, consts["BLOCK_N"]), max(1, BWD_PROGRAMS // max(n_cblocks, 1)))
    if family == METASIN:
        part_c0 = _new_output((n_rprog, C), z)
        part_c, part_f, part_p = (_new_output((n_rprog, C, K), z) for _ in range(3))
    else:
        part_c0 = part_c = part_f = part_p = z
    if n_rprog > 0 and n_cblocks > 0:
        _jet_bwd_kernel[(n_rprog, n_cblocks)](
            z, dz, z if d2z is None else d2z, gu, gdu, gd2u,
            c0, c, f, p, omega_t,
            gz, gdz, z if gd2z is None else gd2z,
            part_c0, part_c, part_f, part_p,
            n, C,
            *z.stride(), *dz.stride(), *_strides(d2z, 3),
            *gu.stride(), *gdu.stride(), *gd2u.stride(),
            **consts, num_warps=NUM_WARPS,
        )
    if family != METASIN:
        return gz, gdz, gd2z, ()
    # One deterministic final sum over the per-program rows.
    grads = tuple(t.sum(0) for t in (part_c0, part_c, part_f, part_p))
    return gz, gdz, gd2z, grads


# ----- ahead-of-time compilation (no GPU needed) ---------------------------------------

def compile_ahead(arch: int, family: int, dtype: torch.dtype, M: int, terms, *, has_d2z: bool,
                  backward: bool, C: int = 256, K: int = 10, fast: bool = False):
    """Compile the forward or backward kernel for an NVIDIA GPU of compute capability
    ``arch`` (e.g. 90 for H100) through Triton's full pipeline (TTIR, TTGIR, LLVM IR,
    PTX and a cubin from the bundled ptxas), without a GPU.

    The interpreter runs the kernels' arithmetic on the CPU but not the GPU compiler;
    this catches what only the compiler rejects (unsupported ops, type errors in the
    unrolled pair loops, launch constants that do not fit), with the launchers' constants
    (:func:`_constants`; ``fast``: the :func:`_fast_sincos` variant). Returns Triton's
    CompiledKernel (``.asm["ptx"]`` etc.).
    """
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from .native import flatten_terms

    a, b, q = flatten_terms(terms)
    kernel = _jet_bwd_kernel if backward else _jet_fwd_kernel
    if not isinstance(kernel, triton.runtime.JITFunction):
        raise RuntimeError("compile_ahead needs the compiled kernels: this process imported Triton with "
                           "TRITON_INTERPRET=1, which replaces them by the interpreter. Run it in a process "
                           "without TRITON_INTERPRET.")
    consts = _constants(family, K if family == METASIN else 1, M, a, b, q, has_d2z, C, dtype, backward, fast)
    ptr = "*fp64" if dtype == torch.float64 else "*fp32"
    names = kernel.arg_names
    signature = {n: ("constexpr" if n in consts else ptr if n.endswith("_ptr") else "i32") for n in names}
    constexprs = {(names.index(k),): v for k, v in consts.items()}
    source = ASTSource(kernel, signature, constexprs=constexprs)
    return triton.compile(source, target=GPUTarget("cuda", arch, 32), options={"num_warps": NUM_WARPS})
