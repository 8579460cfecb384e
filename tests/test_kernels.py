"""The fused Triton activation jets against the native PyTorch jets.

On CPU the kernels run under Triton's interpreter, which must be switched on
(TRITON_INTERPRET=1) before Triton is first imported in the process: Triton builds
its own library functions as interpreted or compiled at that moment, for the whole
process. So this module sets the variable at its very top and leaves it set, and
runs the kernel checks in this process only when it is the first to import Triton
on a machine without a GPU. Otherwise (Triton already imported, e.g. by an earlier
torch.compile, or a GPU machine whose later tests need compiled Triton) the same
checks rerun in a subprocess under the interpreter, and with a GPU once more on CUDA
with the real compiled kernels.

Every run draws fresh random inputs (the seed is printed, so a failure can be
replayed with PINN_SINE_TEST_SEED=<seed>), and every kernel output buffer is poisoned
with NaN before the kernels run, so an element a kernel forgets to write fails.
"""
import os
import sys

import torch

_MODE_VAR = "PINN_SINE_KERNEL_TEST_DEVICE"  # set only in the reruns: "interpret" or "cuda"
_MODE = os.environ.get(_MODE_VAR)
if _MODE == "interpret" or (_MODE is None and "triton" not in sys.modules and not torch.cuda.is_available()):
    os.environ["TRITON_INTERPRET"] = "1"  # before anything imports Triton

import secrets  # noqa: E402
import subprocess  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from pinn_sine.kernels import ops  # noqa: E402
from pinn_sine.kernels import dispatch  # noqa: E402
from pinn_sine.kernels.native import as_terms, flatten_terms, split_jet, stack_jet  # noqa: E402
from pinn_sine.nets.base import native_jet, native_value  # noqa: E402
from pinn_sine.nets import Finer, MetaSin, Sine, Tanh  # noqa: E402
from pinn_sine.nets.metasin import metasin_jet  # noqa: E402

try:
    from pinn_sine.kernels import triton_jet  # noqa: E402  (the kernels are built now)
except ImportError:  # pragma: no cover - Triton is a test dependency
    triton_jet = None

DEVICE = "cuda" if _MODE == "cuda" else "cpu"
RUNNABLE_HERE = triton_jet is not None and (_MODE == "cuda" or ops.interpreter_active())
needs_kernels = pytest.mark.skipif(not RUNNABLE_HERE, reason="Triton was imported without its interpreter "
                                   "in this process; test_rerun_under_interpreter runs these checks")

# Relative tolerance (against the largest reference magnitude) per dtype.
TOL = {torch.float32: 2e-5, torch.float64: 1e-12}


# ----- fixtures -------------------------------------------------------------------

@pytest.fixture
def gen():
    seed = int(os.environ.get("PINN_SINE_TEST_SEED", secrets.randbits(31)))
    print(f"seed = {seed} (replay with PINN_SINE_TEST_SEED={seed})")
    return torch.Generator().manual_seed(seed)


@pytest.fixture(autouse=True)
def _poisoned_outputs(monkeypatch):
    """Every kernel output starts as NaN: an unwritten element cannot pass."""
    if triton_jet is not None:
        monkeypatch.setattr(triton_jet, "_new_output",
                            lambda shape, like: torch.full(shape, float("nan"), dtype=like.dtype, device=like.device))


def _randn(gen, *shape, dtype, scale=1.0):
    return (scale * torch.randn(*shape, generator=gen, dtype=torch.float64)).to(dtype=dtype, device=DEVICE)


def _uniform(gen, lo, hi, *shape, dtype):
    return (lo + (hi - lo) * torch.rand(*shape, generator=gen, dtype=torch.float64)).to(dtype=dtype, device=DEVICE)


def _layout(t, how):
    """The same values as ``t`` in a non-contiguous layout."""
    if how == "contiguous":
        return t.contiguous()
    if how == "transposed":  # channels-first storage seen through a transpose
        return t.transpose(-1, -2).contiguous().transpose(-1, -2)
    if how == "strided":  # every other channel of a wider buffer; for (m, n, C) the slot axis in the middle
        lead = t if t.dim() == 2 else t.transpose(0, 1)
        wide = torch.full(lead.shape[:-1] + (2 * lead.shape[-1],), float("nan"), dtype=t.dtype, device=t.device)
        wide[..., ::2] = lead
        view = wide[..., ::2]
        return view if t.dim() == 2 else view.transpose(0, 1)
    raise ValueError(how)


def _close(out, ref, dtype, what):
    assert out.shape == ref.shape, f"{what}: shape {tuple(out.shape)} != {tuple(ref.shape)}"
    scale = max(ref.abs().max().item(), 1.0) if ref.numel() else 1.0
    err = (out - ref).abs().max().item() if ref.numel() else 0.0
    assert err <= TOL[dtype] * scale, f"{what}: max error {err:.3e} > {TOL[dtype]:.0e} x {scale:.3e}"


def _metasin_params(gen, C, K, dtype):
    c0 = _randn(gen, C, dtype=dtype)
    c = _randn(gen, C, K, dtype=dtype, scale=K ** -0.5)
    f = _uniform(gen, 0.5, 8.0, C, K, dtype=dtype)
    p = _uniform(gen, 0.0, 6.3, C, K, dtype=dtype)
    return [t.requires_grad_() for t in (c0, c, f, p)]


class Family:
    """One activation family: its fused jet/value and the native reference."""

    def __init__(self, name, K=0):
        self.name, self.K = name, K

    def __repr__(self):
        return f"{self.name}{self.K or ''}"

    def make(self, gen, C, dtype):
        if self.name == "metasin":
            self.params = _metasin_params(gen, C, self.K, dtype)
        else:
            self.params = []
            self.omega = float(_uniform(gen, 1.0, 4.0, 1, dtype=torch.float64).item())

    def fused_jet(self, z, dz, d2z, pairs):
        if self.name == "metasin":
            return ops.metasin_jet_triton(z, dz, d2z, *self.params, pairs)
        return ops.sine_jet_triton(z, dz, d2z, self.omega, pairs, finer=self.name == "finer")

    def native_jet(self, z, dz, d2z, pairs):
        if self.name == "metasin":
            terms, m = as_terms(pairs), dz.shape[0]
            H = metasin_jet(stack_jet(z, dz, d2z, terms), None, *self.params, m, terms)
            return split_jet(H, m, terms)
        act = Finer(self.omega) if self.name == "finer" else Sine(self.omega)
        return native_jet(act, z, dz, d2z, pairs)

    def fused_value(self, z):
        if self.name == "metasin":
            return ops.metasin_value_triton(z, *self.params)
        return ops.sine_value_triton(z, self.omega, finer=self.name == "finer")

    def native_value(self, z):
        if self.name == "metasin":  # the composite sigma, materialising (n, C, K)
            c0, c, f, p = self.params
            return c0 * torch.relu(z) + (c * torch.sin(z.unsqueeze(-1) * f + p)).sum(-1)
        act = Finer(self.omega) if self.name == "finer" else Sine(self.omega)
        return native_value(act, z)


LAPLACE_2D = ((0, 0), (1, 1))
MIXED = ((1, 0), (1, 1), (0, 0))          # a > b, a shared slot, out of order
HESSIAN_3D = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))
# Laplacian streams (terms: several pairs summed into one stream) beside single pairs
LAP_GROUP_2D = (((0, 0), (1, 1)), (1, 0))
LAP_GROUP_3D = ((2, 2), ((1, 1), (0, 0), (2, 2)), ((0, 0), (1, 1)))

# (family, n, C, m, pairs, d2z: "given"/"none", layout, dtype, programs of the backward)
# Odd n, channel counts that are not powers of two (and above one channel block of 64),
# K from 1 to 16, both dtypes, and layouts the engine produces (a stride-0 expanded dz
# after the first layer) or that users may pass (transposed, strided).
JET_CASES = [
    (Family("metasin", 1), 37, 70, 2, LAPLACE_2D, "given", "contiguous", torch.float32, None),
    (Family("metasin", 3), 5, 3, 3, HESSIAN_3D, "given", "strided", torch.float64, None),
    (Family("metasin", 7), 129, 19, 2, MIXED, "none", "expanded", torch.float32, 2),
    (Family("metasin", 10), 13, 67, 2, LAPLACE_2D, "given", "transposed", torch.float64, 2),
    (Family("metasin", 16), 17, 13, 1, ((0, 0),), "given", "strided", torch.float32, None),
    (Family("metasin", 5), 23, 11, 2, (), "none", "contiguous", torch.float64, None),
    (Family("sine"), 37, 70, 2, MIXED, "given", "strided", torch.float32, 2),
    (Family("sine"), 9, 5, 3, HESSIAN_3D, "none", "expanded", torch.float64, None),
    (Family("finer"), 41, 6, 2, LAPLACE_2D, "given", "transposed", torch.float64, 1),
    (Family("finer"), 7, 66, 1, ((0, 0),), "none", "contiguous", torch.float32, None),
    (Family("metasin", 4), 21, 9, 2, LAP_GROUP_2D, "given", "strided", torch.float32, 2),
    (Family("metasin", 2), 6, 5, 3, LAP_GROUP_3D, "none", "expanded", torch.float64, None),
    (Family("sine"), 33, 10, 3, LAP_GROUP_3D, "given", "transposed", torch.float64, None),
    (Family("finer"), 15, 7, 2, LAP_GROUP_2D, "none", "contiguous", torch.float32, 1),
]


def _jet_inputs(gen, n, C, m, pairs, d2z_kind, layout, dtype):
    """z (n, C), dz (m, n, C), d2z (p, n, C) or None, all requiring grad, in ``layout``."""
    z = _layout(_randn(gen, n, C, dtype=dtype), "transposed" if layout == "transposed" else "contiguous")
    z.requires_grad_()
    if layout == "expanded":  # the first layer: dz_a is the weight column a, broadcast over rows
        dz = _randn(gen, m, 1, C, dtype=dtype).requires_grad_().expand(m, n, C)
    else:
        dz = _layout(_randn(gen, m, n, C, dtype=dtype, scale=2.0), layout).requires_grad_()
    d2z = None
    if d2z_kind == "given" and pairs:
        d2z = _layout(_randn(gen, len(pairs), n, C, dtype=dtype), layout).requires_grad_()
    return z, dz, d2z


# ----- fused against native ----------------------------------------------------------

@needs_kernels
@pytest.mark.parametrize("fam,n,C,m,pairs,d2z_kind,layout,dtype,programs", JET_CASES,
                         ids=[f"{c[0]}-n{c[1]}-C{c[2]}-m{c[3]}-p{len(c[4])}-{c[5]}-{c[6]}-{str(c[7])[6:]}"
                              for c in JET_CASES])
def test_jet_forward_backward_match_native(gen, monkeypatch, fam, n, C, m, pairs, d2z_kind, layout, dtype,
                                           programs):
    if programs is not None:  # few programs: each walks several row blocks of the reduction
        monkeypatch.setattr(triton_jet, "BWD_PROGRAMS", programs)
    fam.make(gen, C, dtype)
    z, dz, d2z = _jet_inputs(gen, n, C, m, pairs, d2z_kind, layout, dtype)
    assert dz.is_contiguous() == (layout == "contiguous")
    wrt = [t for t in (z, dz, d2z, *fam.params) if t is not None]  # the strided views themselves

    out = fam.fused_jet(z, dz, d2z, pairs)
    ref = fam.native_jet(z, dz, d2z, pairs)
    assert (out[2] is None) == (ref[2] is None) == (not pairs)
    for name, o, r in zip(("u", "du", "d2u"), out, ref):
        if r is not None:
            assert o.is_contiguous()
            _close(o, r.detach(), dtype, f"forward {name}")

    grads = [_layout(_randn(gen, *r.shape, dtype=dtype), "contiguous" if layout == "expanded" else layout)
             for r in ref if r is not None]
    g_out = torch.autograd.grad([o for o in out if o is not None], wrt, grads)
    g_ref = torch.autograd.grad([r for r in ref if r is not None], wrt, grads)
    names = [nm for nm, t in zip(("z", "dz", "d2z", "c0", "c", "f", "p"), (z, dz, d2z, *fam.params))
             if t is not None]
    for nm, o, r in zip(names, g_out, g_ref):
        _close(o, r, dtype, f"grad {nm}")


VALUE_CASES = [
    (Family("metasin", 1), 31, 7, torch.float32),
    (Family("metasin", 12), 19, 65, torch.float64),
    (Family("sine"), 45, 3, torch.float32),
    (Family("finer"), 8, 100, torch.float64),
]


@needs_kernels
@pytest.mark.parametrize("fam,n,C,dtype", VALUE_CASES, ids=[f"{c[0]}-n{c[1]}-C{c[2]}-{str(c[3])[6:]}"
                                                           for c in VALUE_CASES])
def test_value_forward_backward_match_native(gen, fam, n, C, dtype):
    fam.make(gen, C, dtype)
    z = _layout(_randn(gen, n, C, dtype=dtype), "transposed").requires_grad_()
    wrt = [z, *fam.params]
    u, ref = fam.fused_value(z), fam.native_value(z)
    _close(u, ref.detach(), dtype, "value")
    g = _randn(gen, n, C, dtype=dtype)
    for o, r, nm in zip(torch.autograd.grad(u, wrt, g), torch.autograd.grad(ref, wrt, g), ["z", "c0", "c", "f", "p"]):
        _close(o, r, dtype, f"grad {nm}")


# ----- the opt-in fast sines and cosines -------------------------------------------------

def _sin_cos_through_the_kernel(x):
    """(sin x, cos x) from the fused SIREN jet with omega = 1: u = sin z, du = cos z dz, dz = 1."""
    z = x.reshape(-1, 64)
    u, du, _ = ops.sine_jet_op(z, torch.ones(1, *z.shape, dtype=x.dtype, device=x.device), None, 1.0, False,
                               [], [], [])
    return u.reshape(-1), du[0].reshape(-1)


@needs_kernels
def test_fast_sincos_error_is_bounded_over_the_argument_range_of_the_nets(gen, monkeypatch):
    """|fast - exact| <= 2e-7 (about 2 float32 ulps of 1; libdevice's sinf: 1) for arguments
    up to 1e5 in magnitude (a SIREN's omega z stays far below: omega = 30, |z| of a few
    units), at small arguments, and at the quadrant boundaries j pi / 2 and their float32
    neighbours, where the reduction and the quadrant choice meet."""
    monkeypatch.setattr(ops, "_fast", True)
    k = torch.arange(-4096, 4096, dtype=torch.float64)
    boundaries = (k * torch.pi / 2).float()
    xs = [boundaries, torch.nextafter(boundaries, boundaries + 1), torch.nextafter(boundaries, boundaries - 1),
          torch.linspace(-1e-3, 1e-3, 1024, dtype=torch.float32)]
    xs += [(torch.rand(16384, generator=gen, dtype=torch.float64) * 2 - 1).float() * r for r in (1.0, 30.0, 1e3, 1e5)]
    x = torch.cat(xs).to(DEVICE)
    sin, cos = _sin_cos_through_the_kernel(x)
    exact = x.double()
    err_sin = (sin.double() - torch.sin(exact)).abs().max().item()
    err_cos = (cos.double() - torch.cos(exact)).abs().max().item()
    assert err_sin <= 2e-7 and err_cos <= 2e-7, (err_sin, err_cos)
    monkeypatch.setattr(ops, "_fast", False)  # and the accurate path on the same arguments, for scale
    sin_acc, cos_acc = _sin_cos_through_the_kernel(x)
    assert (sin_acc.double() - torch.sin(exact)).abs().max().item() <= 1.2e-7


@needs_kernels
@pytest.mark.filterwarnings("ignore:invalid value encountered in cast")  # the interpreter's inf -> int
def test_fast_sincos_special_values(monkeypatch):
    monkeypatch.setattr(ops, "_fast", True)
    x = torch.tensor([0.0, -0.0, float("inf"), float("-inf"), float("nan")] + [0.0] * 59, device=DEVICE)
    sin, cos = _sin_cos_through_the_kernel(x)
    assert sin[0] == 0 and cos[0] == 1 and cos[1] == 1
    assert torch.isnan(sin[2:5]).all() and torch.isnan(cos[2:5]).all()


@needs_kernels
@pytest.mark.parametrize("fam", [Family("sine"), Family("finer"), Family("metasin", 10)], ids=repr)
def test_fast_sincos_jets_match_native(gen, monkeypatch, fam):
    """Forward and backward of each family's float32 jet with the fast sines and cosines,
    against the native jet, at the float32 tolerance of the accurate kernels."""
    monkeypatch.setattr(ops, "_fast", True)
    fam.make(gen, 70, torch.float32)
    z, dz, d2z = _jet_inputs(gen, 37, 70, 2, LAP_GROUP_2D, "given", "contiguous", torch.float32)
    z = (3.0 * z.detach()).requires_grad_()  # arguments over several periods
    wrt = [z, dz, d2z, *fam.params]
    out = fam.fused_jet(z, dz, d2z, LAP_GROUP_2D)
    ref = fam.native_jet(z, dz, d2z, LAP_GROUP_2D)
    for name, o, r in zip(("u", "du", "d2u"), out, ref):
        _close(o, r.detach(), torch.float32, f"forward {name}")
    grads = [_randn(gen, *r.shape, dtype=torch.float32) for r in ref]
    for nm, o, r in zip(("z", "dz", "d2z", "c0", "c", "f", "p"), torch.autograd.grad(out, wrt, grads),
                        torch.autograd.grad(ref, wrt, grads)):
        _close(o, r, torch.float32, f"grad {nm}")


@needs_kernels
def test_fast_sincos_leaves_float64_exact(gen, monkeypatch):
    """The fast functions are float32 only: a float64 launch is the same with the switch on."""
    x = (1e3 * torch.randn(64 * 8, generator=gen, dtype=torch.float64)).to(DEVICE)
    monkeypatch.setattr(ops, "_fast", False)
    accurate = _sin_cos_through_the_kernel(x)
    monkeypatch.setattr(ops, "_fast", True)
    for a, b in zip(_sin_cos_through_the_kernel(x), accurate):
        assert torch.equal(a, b)


def test_fast_sincos_switch(monkeypatch):
    monkeypatch.setattr(ops, "_fast", None)
    monkeypatch.setenv(ops.FAST_SINCOS_VAR, "sometimes")
    with pytest.raises(ValueError, match=r'Invalid PINN_SINE_FAST_SINCOS="sometimes"\. Must be one of 1, 0'):
        ops.fast_sincos()
    monkeypatch.setenv(ops.FAST_SINCOS_VAR, " On ")
    assert ops.fast_sincos() is True
    monkeypatch.setenv(ops.FAST_SINCOS_VAR, "0")
    assert ops.fast_sincos() is True  # read once
    assert ops.set_fast_sincos(False) is True and ops.fast_sincos() is False
    with pytest.raises(TypeError, match=r"set_fast_sincos takes True or False, got 'yes'"):
        ops.set_fast_sincos("yes")
    monkeypatch.setattr(ops, "_fast", None)
    monkeypatch.delenv(ops.FAST_SINCOS_VAR)
    assert ops.fast_sincos() is False


@needs_kernels
def test_parameter_gradients_are_deterministic(gen, monkeypatch):
    monkeypatch.setattr(triton_jet, "BWD_PROGRAMS", 3)
    fam = Family("metasin", 6)
    fam.make(gen, 21, torch.float32)
    z, dz, d2z = _jet_inputs(gen, 101, 21, 2, LAPLACE_2D, "given", "contiguous", torch.float32)
    out = fam.fused_jet(z, dz, d2z, LAPLACE_2D)
    grads = [torch.randn_like(o) for o in out]
    first = torch.autograd.grad(out, fam.params, grads, retain_graph=True)
    second = torch.autograd.grad(out, fam.params, grads)
    for a, b in zip(first, second):
        assert torch.equal(a, b)


# ----- gradient orders ----------------------------------------------------------------

def _small_metasin(gen):
    fam = Family("metasin", 2)
    fam.make(gen, 3, torch.float64)
    z, dz, d2z = _jet_inputs(gen, 4, 3, 2, MIXED, "given", "contiguous", torch.float64)
    return fam, z, dz, d2z


@needs_kernels
def test_gradcheck_first_order_is_fused(gen, monkeypatch):
    fam, z, dz, d2z = _small_metasin(gen)

    def composite_not_allowed(*args, **kwargs):
        raise AssertionError("first-order backward must run the fused kernel")

    monkeypatch.setattr(ops, "_composite_vjp", composite_not_allowed)
    assert torch.autograd.gradcheck(lambda *t: fam.fused_jet(t[0], t[1], t[2], MIXED),
                                    (z, dz, d2z), eps=1e-6, atol=1e-6, fast_mode=True)
    fam.params = [t.detach().requires_grad_() for t in fam.params]
    assert torch.autograd.gradcheck(lambda c0, c, f, p: ops.metasin_jet_triton(z.detach(), dz.detach(), d2z.detach(),
                                                                               c0, c, f, p, MIXED),
                                    tuple(fam.params), eps=1e-6, atol=1e-6, fast_mode=True)


@needs_kernels
@pytest.mark.parametrize("name", ["metasin", "sine", "finer"])
def test_gradgradcheck_through_composite_fallback(gen, name):
    if name == "metasin":
        fam, z, dz, d2z = _small_metasin(gen)
        fn = lambda z, dz, d2z, c0, c, f, p: ops.metasin_jet_triton(z, dz, d2z, c0, c, f, p, MIXED)  # noqa: E731
        inputs = (z, dz, d2z, *fam.params)
    else:
        fam = Family(name)
        fam.make(gen, 3, torch.float64)
        z, dz, d2z = _jet_inputs(gen, 4, 3, 2, MIXED, "given", "contiguous", torch.float64)
        fn = lambda z, dz, d2z: fam.fused_jet(z, dz, d2z, MIXED)  # noqa: E731
        inputs = (z, dz, d2z)
    assert torch.autograd.gradgradcheck(fn, inputs, eps=1e-6, atol=1e-5, fast_mode=True)


@needs_kernels
def test_value_gradgradcheck(gen):
    fam = Family("metasin", 3)
    fam.make(gen, 2, torch.float64)
    z = _randn(gen, 3, 2, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradgradcheck(lambda z, *p: ops.metasin_value_triton(z, *p), (z, *fam.params),
                                        eps=1e-6, atol=1e-5, fast_mode=True)
    s = Family("finer")
    s.make(gen, 2, torch.float64)
    assert torch.autograd.gradgradcheck(s.fused_value, (z,), eps=1e-6, atol=1e-5, fast_mode=True)


# ----- torch.library registration ------------------------------------------------------

def _op_samples(gen):
    dt = torch.float64
    fam = Family("metasin", 3)
    fam.make(gen, 5, dt)
    c0, c, f, p = fam.params
    z, dz, d2z = _jet_inputs(gen, 6, 5, 2, LAP_GROUP_2D, "given", "contiguous", dt)
    a, b, q = (list(v) for v in flatten_terms(as_terms(LAP_GROUP_2D)))  # 3 pairs into 2 streams
    g = lambda *s: _randn(gen, *s, dtype=dt)  # noqa: E731
    det = lambda ts: [t.detach() for t in ts]  # noqa: E731
    return [
        (ops.metasin_value_op, (z, c0, c, f, p)),
        (ops.metasin_jet_op, (z, dz, d2z, c0, c, f, p, a, b, q)),
        (ops.metasin_jet_op, (z, dz, None, c0, c, f, p, a, b, q)),
        (ops.sine_value_op, (z, 2.5, True)),
        (ops.sine_jet_op, (z, dz, d2z, 1.5, False, a, b, q)),
        (ops.metasin_value_backward_op, (g(6, 5), *det((z, c0, c, f, p)))),
        (ops.metasin_jet_backward_op, (g(6, 5), g(2, 6, 5), g(2, 6, 5), *det((z, dz, d2z, c0, c, f, p)), a, b, q)),
        (ops.sine_value_backward_op, (g(6, 5), z.detach(), 2.0, False)),
        (ops.sine_jet_backward_op, (g(6, 5), g(2, 6, 5), g(2, 6, 5), *det((z, dz)), None, 2.0, True, a, b, q)),
    ]


@needs_kernels
def test_opcheck(gen):
    for op, args in _op_samples(gen):
        torch.library.opcheck(op, args)


@needs_kernels
def test_torch_compile_matches_eager(gen):
    fam = Family("metasin", 4)
    fam.make(gen, 9, torch.float32)
    z, dz, d2z = _jet_inputs(gen, 11, 9, 2, LAPLACE_2D, "given", "contiguous", torch.float32)

    def loss(z, dz, d2z, *params):
        u, du, d2u = ops.metasin_jet_triton(z, dz, d2z, *params, LAPLACE_2D)
        return (u.square().sum() + (du * du).sum() + d2u.sin().sum())

    inputs = (z, dz, d2z, *fam.params)
    eager = torch.autograd.grad(loss(*inputs), inputs)
    compiled_loss = torch.compile(loss, backend="aot_eager", fullgraph=True)
    compiled = torch.autograd.grad(compiled_loss(*inputs), inputs)
    for e, c in zip(eager, compiled):
        _close(c, e, torch.float32, "compiled grad")


# ----- dispatch ---------------------------------------------------------------------------

def _metasin_layer(C=5, K=3):
    return MetaSin(K=K).for_layer(C, first=False, omega=None, generator=torch.Generator().manual_seed(0))


def _force(monkeypatch, backend: str) -> None:
    """Force ``backend`` for one test (the environment variable is read once per process)."""
    monkeypatch.setattr(dispatch, "_forced", dispatch.parse_backend(backend))


def test_invalid_backend_name_is_rejected(monkeypatch):
    from pinn_sine.kernels import backend_for, set_backend

    monkeypatch.setattr(dispatch, "_forced", dispatch._UNREAD)
    monkeypatch.setenv("PINN_SINE_KERNELS", "cuda")
    choices = r"\[.triton., .native., .compiled.\]"
    with pytest.raises(ValueError, match=rf'Invalid PINN_SINE_KERNELS="cuda". Must be one of {choices}'):
        backend_for(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="Invalid PINN_SINE_KERNELS"):
        Tanh()(torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r'Invalid backend="gpu"'):
        set_backend("gpu")


def test_the_environment_variable_is_read_once(monkeypatch):
    from pinn_sine.kernels import backend_for, set_backend

    monkeypatch.setattr(dispatch, "_forced", dispatch._UNREAD)
    monkeypatch.setenv("PINN_SINE_KERNELS", "native")
    assert backend_for(torch.zeros(1, 1)) == "native"
    monkeypatch.setenv("PINN_SINE_KERNELS", "cuda")  # not read again: no error
    assert backend_for(torch.zeros(1, 1)) == "native"
    assert set_backend("auto") == "native" and dispatch.requested_backend() is None


def test_kernels_do_not_import_the_networks():
    """No cycle: no module of pinn_sine.kernels imports pinn_sine.nets, at the top or
    inside a function (the activations call their kernels, never the other way round)."""
    import ast

    root = Path(__file__).resolve().parents[1] / "pinn_sine" / "kernels"
    offending = []
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                target = ("pinn_sine." if node.level == 2 else "") + (node.module or "")
                if target.startswith("pinn_sine.nets") or (node.level == 1 and (node.module or "").startswith("..")):
                    offending.append(f"{path.name}:{node.lineno}")
            elif isinstance(node, ast.Import):
                offending += [f"{path.name}:{node.lineno}" for a in node.names if a.name.startswith("pinn_sine.nets")]
    assert offending == []


def test_auto_on_cpu_is_native_and_never_touches_triton(monkeypatch):
    from pinn_sine.kernels import backend_for

    _force(monkeypatch, "auto")

    def no_triton(*args, **kwargs):
        raise AssertionError("the native path must not reach the Triton ops")

    monkeypatch.setattr(ops, "metasin_jet_triton", no_triton)
    act = _metasin_layer()
    z, dz = torch.randn(4, 5), torch.randn(2, 4, 5)
    assert backend_for(z) == "native"
    u, du, d2u = act.jet(z, dz, None, LAPLACE_2D)
    ref = native_jet(act, z, dz, None, LAPLACE_2D)
    assert torch.equal(u, ref[0]) and torch.equal(du, ref[1]) and torch.equal(d2u, ref[2])


def test_forced_native(monkeypatch):
    from pinn_sine.kernels import backend_for

    _force(monkeypatch, "native")
    assert backend_for(torch.zeros(1, 1)) == "native"


@needs_kernels
def test_forced_triton_runs_the_kernels_through_the_public_api(gen, monkeypatch):
    from pinn_sine.kernels import backend_for

    _force(monkeypatch, "triton")
    calls = []
    real = ops.metasin_jet_triton
    monkeypatch.setattr(ops, "metasin_jet_triton", lambda *a: calls.append(1) or real(*a))
    act = _metasin_layer(C=6, K=4).to(DEVICE)
    z = _randn(gen, 9, 6, dtype=torch.float32)
    dz = _randn(gen, 2, 9, 6, dtype=torch.float32)
    assert backend_for(z) == "triton"
    out = act.jet(z, dz, None, MIXED)
    ref = native_jet(act, z, dz, None, MIXED)
    assert calls == [1]
    for o, r in zip(out, ref):
        _close(o, r.detach(), torch.float32, "public jet")
    _close(act(z.reshape(3, 3, 6)), native_value(act, z).reshape(3, 3, 6).detach(),
           torch.float32, "public value")
    sine = Sine(2.0)
    _close(sine.jet(z, dz, None, ())[1], native_jet(sine, z, dz, None, ())[1], torch.float32, "sine")


@needs_kernels
@pytest.mark.parametrize("act_name", ["sine", "finer", "metasin"])
def test_forward_jet_engine_on_the_kernels_matches_native(gen, monkeypatch, act_name):
    """The engine's stacked path (bias fused, Laplacian stream beside a pair) on the fused
    kernels against the native nodes: values, derivatives and weight gradients."""
    from pinn_sine.derivatives import DerivativeSpec, forward_jet
    from pinn_sine.nets import MLP, Finer, MetaSin

    act = {"sine": Sine(2.0), "finer": Finer(2.0), "metasin": MetaSin(K=3)}[act_name]
    net = MLP(3, 2, width=7, depth=2, activation=act, seed=int(torch.randint(0, 2**31, (1,), generator=gen)))
    net = net.to(DEVICE).double()
    x = _uniform(gen, -1.0, 1.0, 11, 3, dtype=torch.float64)
    names = ("t", "x", "y")
    spec = DerivativeSpec(first=("t",), second=(("t", "t"),), laplacians=(("x", "y"),))

    def run(backend):
        _force(monkeypatch, backend)
        jet = forward_jet(net, x, names, spec)
        outs = [jet.u, jet.d("t"), jet.d2("t", "t"), jet.laplacian(("x", "y"))]
        loss = sum((o ** 2).mean() * (k + 1) for k, o in enumerate(outs))
        return outs, torch.autograd.grad(loss, list(net.parameters()))

    (out_t, g_t), (out_n, g_n) = run("triton"), run("native")
    for k, (o, r) in enumerate(zip(out_t, out_n)):
        _close(o, r.detach(), torch.float64, f"jet output {k}")
    for (name, _), o, r in zip(net.named_parameters(), g_t, g_n):
        _close(o, r, torch.float64, f"grad {name}")


# (family, dtype, M, terms, has_d2z, backward, arch, fast): each kernel variant the engine
# launches for Poisson/Helmholtz (2 directions + Laplacian stream) and Wave2D (3
# directions, a pair and a partial Laplacian), both passes, Hopper and Ampere, with
# libdevice's and the fast sines and cosines.
COMPILE_CASES = [
    ("metasin", torch.float32, 2, (((0, 0), (1, 1)),), True, False, 90, False),
    ("metasin", torch.float32, 2, (((0, 0), (1, 1)),), True, True, 90, False),
    ("metasin", torch.float64, 3, (((0, 0),), ((1, 1), (2, 2))), False, True, 80, False),
    ("sine", torch.float32, 2, (((0, 0), (1, 1)),), False, False, 90, False),
    ("sine", torch.float32, 3, (((0, 0),), ((1, 1), (2, 2))), True, True, 90, False),
    ("finer", torch.float32, 2, (((0, 0), (1, 1)), ((0, 1),)), True, True, 90, False),
    ("metasin", torch.float32, 2, (((0, 0), (1, 1)),), True, True, 90, True),
    ("sine", torch.float32, 2, (((0, 0), (1, 1)),), True, False, 80, True),
    ("finer", torch.float32, 3, (((0, 0),), ((1, 1), (2, 2))), True, True, 90, True),
]


_COMPILE_SCRIPT = """
import sys, torch
from pinn_sine.kernels import triton_jet as tj
for fam, dtype, M, terms, has_d2z, backward, arch, fast in eval(sys.argv[1]):
    k = tj.compile_ahead(arch, tj.FAMILIES[fam], getattr(torch, dtype), M, terms, has_d2z=has_d2z,
                         backward=backward, fast=fast)
    ptx = k.asm["ptx"]
    assert f".target sm_{arch}" in ptx and k.asm["cubin"], (fam, arch, "no PTX/cubin")
    assert ".entry _jet_" in ptx, (fam, "no kernel entry point")
    # libdevice's sin/cos (inlined, their slow path's reduction table in local memory) or none
    assert ("__nv_" in ptx) != fast and ("ld.local" in ptx) != fast, (fam, dtype, fast, "libdevice")
    print("compiled", fam, dtype, M, terms, "bwd" if backward else "fwd", f"sm_{arch}", fast, flush=True)
"""


@pytest.mark.skipif(_MODE is not None, reason="runs once, in the top-level test process")
def test_kernels_compile_for_gpus_without_one():
    """The full Triton pipeline down to a cubin (the bundled ptxas) for every variant in
    COMPILE_CASES: what the interpreter cannot check. Runs on the CPU, in a process
    without TRITON_INTERPRET (the interpreter replaces the JIT functions)."""
    if triton_jet is None:
        pytest.skip("Triton is not importable")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    cases = repr([(f, str(d).split(".")[1], M, t, h, b, a, fast) for f, d, M, t, h, b, a, fast in COMPILE_CASES])
    proc = subprocess.run([sys.executable, "-c", _COMPILE_SCRIPT, cases], env=env, capture_output=True,
                          text=True, timeout=600)
    if proc.returncode and ("ptxas" in proc.stderr and "No such file" in proc.stderr):
        pytest.skip(f"Triton's CUDA toolchain is missing here: {proc.stderr[-300:]}")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert proc.stdout.count("compiled") == len(COMPILE_CASES)


@needs_kernels
@pytest.mark.parametrize("fam_name", ["metasin", "sine", "finer"])
@pytest.mark.parametrize("with_d2z", [True, False], ids=["d2z", "first-layer"])
def test_stacked_triton_node_gradcheck(gen, fam_name, with_d2z):
    """The engine's stacked node on the kernels (bias fused, Laplacian stream beside a
    pair) against finite differences, and equal to the native stacked node."""
    terms = (((0, 0), (1, 1)), ((1, 0),))
    n, C, m = 5, 3, 2
    fam = Family(fam_name, 2)
    fam.make(gen, C, torch.float64)
    S = 1 + m + (len(terms) if with_d2z else 0)
    Z = _randn(gen, S, n, C, dtype=torch.float64).requires_grad_()
    bias = _randn(gen, C, dtype=torch.float64, scale=0.1).requires_grad_()
    if fam_name == "metasin":
        def fn(Z, bias, *params):
            return ops.jet_stacked_triton(Z, bias, m, terms, metasin_params=params)
        act = MetaSin(K=2).for_layer(C, first=False, omega=None, generator=torch.Generator())
        act = act.to(DEVICE).double()
        with torch.no_grad():
            for mine, theirs in zip((act.c0, act.c, act.f, act.p), fam.params):
                mine.copy_(theirs)
        inputs = (Z, bias, *fam.params)
    else:
        def fn(Z, bias):
            return ops.jet_stacked_triton(Z, bias, m, terms, omega=fam.omega, finer=fam_name == "finer")
        act = Finer(fam.omega) if fam_name == "finer" else Sine(fam.omega)
        inputs = (Z, bias)
    _close(fn(*inputs), act.native_jet_stacked(Z, bias, m, terms).detach(), torch.float64, "stacked forward")
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-7, rtol=1e-6, fast_mode=True)


def test_forced_triton_on_cpu_without_interpreter_is_an_error(monkeypatch):
    from pinn_sine.kernels import KernelUnavailableError

    if triton_jet is None:
        pytest.skip("Triton is not installed")
    _force(monkeypatch, "triton")
    monkeypatch.setattr(ops, "interpreter_active", lambda: False)
    with pytest.raises(KernelUnavailableError, match="TRITON_INTERPRET=1"):
        _metasin_layer().jet(torch.zeros(2, 5), torch.zeros(1, 2, 5), None, ())
    with pytest.raises(KernelUnavailableError, match="cannot run on cpu"):
        ops.sine_value_triton(torch.zeros(2, 2), 1.0)


def test_forced_triton_rejects_other_dtypes(monkeypatch):
    from pinn_sine.kernels import KernelUnavailableError, backend_for

    _force(monkeypatch, "triton")
    with pytest.raises(KernelUnavailableError, match="float32 and float64, got torch.float16"):
        backend_for(torch.zeros(2, 2, dtype=torch.float16))


def test_unfused_families_stay_native_when_triton_is_forced(monkeypatch):
    _force(monkeypatch, "triton")
    z, dz = torch.randn(3, 4), torch.randn(1, 3, 4)
    u, du, _ = Tanh().jet(z, dz, None, ())
    assert torch.equal(u, torch.tanh(z))


def test_kernels_module_is_imported_only_when_a_kernel_runs():
    """Importing pinn_sine and running the native path never builds the Triton kernels."""
    code = ("import sys, torch, pinn_sine, pinn_sine.kernels as k, pinn_sine.nets as nets; "
            "nets.Sine(2.0).jet(torch.zeros(2, 3), torch.zeros(1, 2, 3), None, ((0, 0),)); "
            "print('pinn_sine.kernels.triton_jet' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k not in ("PINN_SINE_KERNELS", "TRITON_INTERPRET")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "False"


# ----- reruns ------------------------------------------------------------------------------

def _rerun(env_update, drop=()):
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(env_update)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(Path(__file__))]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=Path(__file__).parent.parent)


@pytest.mark.skipif(RUNNABLE_HERE or _MODE is not None, reason="the kernels run in this process")
def test_rerun_under_interpreter():
    if triton_jet is None:
        pytest.skip("Triton is not installed")
    res = _rerun({_MODE_VAR: "interpret"}, drop=("TRITON_INTERPRET",))
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-2000:]


@pytest.mark.skipif(_MODE is not None or not torch.cuda.is_available(), reason="needs a CUDA device")
def test_rerun_on_cuda():
    res = _rerun({_MODE_VAR: "cuda"}, drop=("TRITON_INTERPRET",))
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-2000:]
