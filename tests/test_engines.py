"""The forward-jet engine against the autograd reference, and the MetaSin jet's backward."""
from __future__ import annotations

import random

import pytest
import torch

from pinn_sine.derivatives import DerivativeSpec, Jet, autograd_jet, forward_jet, func_jet, get_engine
from pinn_sine.nets import MLP, Finer, FourierFeatures, MetaSin, ReLU, Sine, Tanh
from pinn_sine.nets.metasin import metasin_jet

NAMES = {2: ("x", "y"), 3: ("t", "x", "y")}

# Moderate omega keeps derivative magnitudes sane so a 1e-10 relative tolerance is fair.
ACTIVATIONS = {
    "sine": lambda: Sine(3.0),
    "finer": lambda: Finer(3.0, first_bias_k=0.5),
    "metasin": lambda: MetaSin(K=5),
    "metasin-relu-start": lambda: MetaSin(K=3, relu_start=True),
    "tanh": lambda: Tanh(),
    "relu": lambda: ReLU(),
}


def _specs(names):
    return {
        "laplacian": DerivativeSpec.laplacian(names),
        "diagonal": DerivativeSpec(second=tuple((n, n) for n in names)),
        "hessian": DerivativeSpec.hessian(names),
        "first-only": DerivativeSpec(first=names),
        # a first derivative that no pair needs, one off-diagonal pair given in reverse
        # order, one diagonal pair
        "mixed": DerivativeSpec(first=(names[0],), second=((names[-1], names[1]), (names[1], names[1]))),
        # a Laplacian over a subset beside a pair (Wave2D's u_tt - c^2 (u_xx + u_yy))
        "pair+partial-laplacian": DerivativeSpec(second=((names[0], names[0]),), laplacians=(names[1:],)),
    }


def _net(act_name, fourier, in_dim, seed):
    rnd = random.Random(seed)
    width, depth, out_dim = rnd.choice([5, 8, 13]), rnd.choice([1, 2, 3]), rnd.choice([1, 2])
    net = MLP(in_dim, out_dim, width=width, depth=depth, activation=ACTIVATIONS[act_name](),
              fourier=FourierFeatures(6, scale=0.5) if fourier else None, seed=seed).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for act in net.activations:
            if isinstance(act, MetaSin) and not act.relu_start:
                # c0 != 0, so the ReLU branch of sigma' is exercised
                act.c0.copy_(torch.randn(act.c0.shape, generator=g, dtype=torch.float64))
    return net


def _points(in_dim, seed, n=12):
    g = torch.Generator().manual_seed(seed + 100)
    return 2.0 * torch.rand(n, in_dim, generator=g, dtype=torch.float64) - 1.0


def _quantities(jet: Jet, spec: DerivativeSpec):
    out = {"u": jet.u}
    for n in spec.directions():
        out[f"d{n}"] = jet.d(n)
    for a, b in spec.pairs():
        out[f"d{a}d{b}"] = jet.d2(a, b)
        out[f"d{b}d{a}"] = jet.d2(b, a)
    for group in spec.laplacian_groups():
        out[f"lap{group}"] = jet.laplacian(group)
        out[f"lap{group[::-1]}"] = jet.laplacian(group[::-1])
    return out


def _assert_close(a, b, what):
    scale = max(1.0, float(b.detach().abs().max()))
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10 * scale, msg=what)


CASES = [(act, fourier, in_dim, spec)
         for act in ACTIVATIONS for fourier in (False, True) for in_dim in (2, 3)
         for spec in ("laplacian", "diagonal", "hessian", "first-only", "mixed", "pair+partial-laplacian")]


@pytest.mark.parametrize("act_name, fourier, in_dim, spec_name", CASES)
def test_jet_equals_autograd(act_name, fourier, in_dim, spec_name):
    _engine_equals_autograd(forward_jet, act_name, fourier, in_dim, spec_name)


FUNC_CASES = [c for c in CASES if c[2] == 3 and (not c[1] or c[3] == "mixed")]


@pytest.mark.parametrize("act_name, fourier, in_dim, spec_name", FUNC_CASES)
def test_func_engine_equals_autograd(act_name, fourier, in_dim, spec_name):
    """Forward-over-reverse through torch.func (the benchmark's strongest baseline) gives
    the same jets and weight gradients as reverse-over-reverse."""
    _engine_equals_autograd(func_jet, act_name, fourier, in_dim, spec_name)


def _engine_equals_autograd(engine, act_name, fourier, in_dim, spec_name):
    seed = CASES.index((act_name, fourier, in_dim, spec_name))
    net = _net(act_name, fourier, in_dim, seed)
    names = NAMES[in_dim]
    spec = _specs(names)[spec_name]
    x = _points(in_dim, seed)

    jet = engine(net, x, names, spec)
    ref = autograd_jet(net, x, names, spec)
    q_jet, q_ref = _quantities(jet, spec), _quantities(ref, spec)
    assert q_jet.keys() == q_ref.keys()
    for k in q_ref:
        assert q_jet[k].shape == (x.shape[0], net.out_dim), k
        _assert_close(q_jet[k], q_ref[k], f"{act_name} fourier={fourier} {spec_name}: {k}")
    if act_name == "relu" and not fourier:
        # The baseline's point: a ReLU network has no curvature (a Fourier encoding
        # in front of it does).
        second = [v for k, v in q_jet.items() if k.startswith("lap") or k.count("d") == 2]
        assert all(float(v.detach().abs().max()) == 0 for v in second)

    # Training backpropagates through the jet: the weight gradients of a loss built
    # from it must equal those through the autograd engine (double backward).
    params = [p for p in net.parameters() if p.requires_grad]

    def loss(q):
        return sum((v**2).mean() * (i + 1) for i, v in enumerate(q.values()))

    g_jet = torch.autograd.grad(loss(q_jet), params, allow_unused=True)
    g_ref = torch.autograd.grad(loss(q_ref), params, allow_unused=True)
    for (pname, _), a, b in zip(net.named_parameters(), g_jet, g_ref):
        a = torch.zeros_like(_) if a is None else a
        b = torch.zeros_like(_) if b is None else b
        _assert_close(a, b, f"{act_name} fourier={fourier} {spec_name}: grad {pname}")


def test_metasin_jet_matches_eager_default_jet():
    """The recomputing custom Function against the composite Activation.jet."""
    net = _net("metasin", False, 3, 0)
    act = net.activations[0]
    g = torch.Generator().manual_seed(1)
    C = act.channels
    z = torch.randn(7, C, generator=g, dtype=torch.float64)
    dz = torch.randn(3, 7, C, generator=g, dtype=torch.float64)
    d2z = torch.randn(3, 7, C, generator=g, dtype=torch.float64)
    d2z = torch.randn(4, 7, C, generator=g, dtype=torch.float64)
    pairs = ((0, 0), (0, 2), (1, 1), ((0, 0), (2, 2)))  # the last stream is a Laplacian
    for d2 in (d2z, None):
        got = act.jet(z, dz, d2, pairs)
        want = super(MetaSin, act).jet(z, dz, d2, pairs)  # Activation.jet on derivatives()
        for a, b in zip(got, want):
            _assert_close(a, b, "metasin jet")
    u, du, d2u = act.jet(z, dz, None, ())
    assert d2u is None


TERMS = {
    "diag+offdiag": (((0, 0),), ((0, 1),)),
    "offdiag-reversed": (((1, 0),),),
    "laplacian+pair": (((0, 0), (1, 1)), ((0, 1),)),
    "no-terms": (),
}


@pytest.mark.parametrize("terms", TERMS.values(), ids=TERMS.keys())
@pytest.mark.parametrize("with_d2z", [True, False], ids=["d2z", "first-layer"])
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no-bias"])
def test_metasin_jet_gradcheck(terms, with_d2z, with_bias):
    """The stacked MetaSin node (recomputing backward) against finite differences, for
    the slabs, the bias and the parameters c0, c, f, p."""
    g = torch.Generator().manual_seed(0)
    n, C, K, m = 4, 3, 2, 2

    def r(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    S = 1 + m + (len(terms) if with_d2z else 0)
    Z = r(S, n, C)
    Z[0] = torch.where(Z[0].abs() < 0.3, Z[0].sign() * 0.5 + Z[0], Z[0])  # away from ReLU's kink
    inputs = [Z, r(C) * 0.05, r(C), r(C, K), r(C, K).abs() + 0.5, r(C, K)]
    if not with_bias:
        inputs.pop(1)
    inputs = [t.requires_grad_(True) for t in inputs]

    def fn(*xs):
        Z, bias, rest = (xs[0], xs[1], xs[2:]) if with_bias else (xs[0], None, xs[1:])
        H = metasin_jet(Z, bias, *rest, m, terms)
        assert H.shape == (1 + m + len(terms), n, C)
        return H

    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-8, rtol=1e-6)


def test_jet_errors_name_the_missing_derivative():
    net = _net("sine", False, 2, 0)
    jet = forward_jet(net, _points(2, 0), ("x", "y"), DerivativeSpec.laplacian(("x", "y")))
    with pytest.raises(KeyError, match=r"d2u/dxdy was not requested; requested pairs: \[\], "
                       r"Laplacians \(sums only\): \[\('x', 'y'\)\]"):
        jet.d2("x", "y")
    with pytest.raises(KeyError, match=r"d2u/dxdx was not requested"):
        jet.d2("x", "x")  # the Laplacian stream carries only the sum
    torch.testing.assert_close(jet.laplacian(("y", "x")), jet.laplacian(("x", "y")), rtol=0, atol=0)
    with pytest.raises(KeyError, match=r"the Laplacian over \('x',\) was not requested"):
        jet.laplacian(("x",))
    with pytest.raises(ValueError, match="non-empty tuple of distinct input names"):
        DerivativeSpec(laplacians=(("x", "x"),))
    jet = forward_jet(net, _points(2, 0), ("x", "y"), DerivativeSpec(first=("x",)))
    with pytest.raises(KeyError, match=r"du/dy was not requested; requested first derivatives: \['x'\]"):
        jet.d("y")
    with pytest.raises(KeyError, match="DerivativeSpec"):
        jet.d2("x", "x")


def test_get_engine():
    assert get_engine("jet") is forward_jet and get_engine("autograd") is autograd_jet
    assert get_engine("func") is func_jet
    with pytest.raises(ValueError, match=r"Invalid engine \"bad\". Must be one of \['autograd', 'func', 'jet'\]"):
        get_engine("bad")


def test_jet_engine_rejects_non_mlp():
    with pytest.raises(TypeError, match=r'layer protocol \(linears, activations, encoding.*engine="autograd"'):
        forward_jet(torch.nn.Linear(2, 1), _points(2, 0).float(), ("x", "y"), DerivativeSpec(first=("x",)))


class MixedChain(torch.nn.Module):
    """Not an MLP: a module of the layer protocol (linears, activations, encoding) with a
    different activation per layer and no bias on the output layer's input."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.linears = torch.nn.ModuleList([torch.nn.Linear(2, 6), torch.nn.Linear(6, 5), torch.nn.Linear(5, 1)])
        for layer in self.linears:
            torch.nn.init.uniform_(layer.weight, -1.0, 1.0, generator=g)
        self.activations = torch.nn.ModuleList([Sine(1.5), Tanh()])
        self.encoding = None

    def forward(self, x):
        for layer, act in zip(self.linears, self.activations):
            x = act(layer(x))
        return self.linears[-1](x)


def test_jet_engine_runs_any_module_of_the_layer_protocol():
    from pinn_sine.derivatives import JetLayers

    net = MixedChain().double()
    assert isinstance(net, JetLayers) and not isinstance(torch.nn.Linear(2, 1), JetLayers)
    x = _points(2, 0)
    spec = DerivativeSpec(first=("x",), second=(("x", "y"),), laplacians=(("x", "y"),))
    fast, ref = forward_jet(net, x, ("x", "y"), spec), autograd_jet(net, x, ("x", "y"), spec)
    for a, b in [(fast.u, ref.u), (fast.d("x"), ref.d("x")), (fast.d2("x", "y"), ref.d2("x", "y")),
                 (fast.laplacian(("x", "y")), ref.laplacian(("x", "y")))]:
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    net.activations.append(Tanh())
    with pytest.raises(ValueError, match="one linear more than activations"):
        forward_jet(net, x, ("x", "y"), spec)


def test_empty_spec_is_plain_forward():
    net = _net("tanh", False, 2, 0)
    x = _points(2, 0)
    for engine in (forward_jet, autograd_jet, func_jet):
        jet = engine(net, x, ("x", "y"), DerivativeSpec())
        torch.testing.assert_close(jet.u, net(x), rtol=0, atol=0)


@pytest.mark.parametrize("act", [Sine(2.0), Finer(1.5), Tanh()], ids=["sine", "finer", "tanh"])
@pytest.mark.parametrize("first_layer", [False, True], ids=["with-d2z", "d2z-none"])
def test_elementwise_jet_gradcheck(act, first_layer):
    """The one-node stacked jet of the parameter-free activations against finite
    differences: pairs, a Laplacian stream and the fused bias."""
    from pinn_sine.nets.base import elementwise_jet

    g = torch.Generator().manual_seed(3)
    n, C, m = 5, 3, 2
    terms = (((0, 0),), ((0, 1),), ((0, 0), (1, 1)))
    S = 1 + m + (0 if first_layer else len(terms))
    Z = torch.randn(S, n, C, generator=g, dtype=torch.float64, requires_grad=True)
    bias = (0.1 * torch.randn(C, generator=g, dtype=torch.float64)).requires_grad_(True)

    def fn(Z, bias):
        return elementwise_jet(act, Z, bias, m, terms)

    assert torch.autograd.gradcheck(fn, (Z, bias), eps=1e-6, atol=1e-7, rtol=1e-6)
    if type(act) is Sine:  # SIREN's own node (sin and cos kept from the forward)
        from pinn_sine.nets.sine import sine_jet

        for b in (bias, None):
            torch.testing.assert_close(sine_jet(Z, b, act.omega, m, terms), elementwise_jet(act, Z, b, m, terms),
                                       rtol=1e-13, atol=1e-13)
        assert torch.autograd.gradcheck(lambda Z, bias: sine_jet(Z, bias, act.omega, m, terms), (Z, bias),
                                        eps=1e-6, atol=1e-7, rtol=1e-6)
        assert torch.autograd.gradcheck(lambda Z: sine_jet(Z, None, act.omega, m, terms), (Z,),
                                        eps=1e-6, atol=1e-7, rtol=1e-6)
