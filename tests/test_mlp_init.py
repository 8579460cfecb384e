"""MLP construction: the SIREN / Glorot / FINER initialisations, seeding, validation."""
from __future__ import annotations

import math

import pytest
import torch

from pinn_sine.nets import MLP, Finer, FourierFeatures, MetaSin, ReLU, Sine, Tanh


def _uniform_inputs(n=1024, d=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    return 2.0 * torch.rand(n, d, generator=g) - 1.0


def _siren_stats(net: MLP, x: torch.Tensor):
    """Per hidden layer: the sine's argument omega*z, its weight part omega*(z - b), and
    the layer output sin(omega*z)."""
    with torch.no_grad():
        zs = net.preactivations(x)
        out = []
        for z, act, lin in zip(zs, net.activations, net.linears):
            arg = act.omega * z
            out.append((arg, act.omega * (z - lin.bias), torch.sin(arg), lin.bias.detach()))
    return out


def _arcsine_ks(h: torch.Tensor) -> float:
    """Kolmogorov-Smirnov distance of the values in h to the arcsine law on [-1, 1],
    F(y) = 1/2 + arcsin(y)/pi."""
    hs = torch.sort(h.flatten().double())[0]
    cdf = 0.5 + torch.arcsin(hs.clamp(-1, 1)) / math.pi
    n = len(hs)
    hi = torch.arange(1, n + 1, dtype=torch.float64) / n
    return float(torch.maximum((cdf - hi + 1.0 / n).abs(), (cdf - hi).abs()).max())


def _siren():
    return MLP(2, 1, width=512, depth=6, activation=Sine(30.0), hidden_omega=30.0, seed=0)


def test_siren_init_keeps_unit_arguments_and_arcsine_outputs():
    # Measured (seed 0, 1024 points): omega*(z - b) std 0.98-1.01; omega*z std 1.23-1.28;
    # output std 0.696-0.706; KS distance to arcsine 0.012-0.025 for hidden layers 2..6.
    #
    # The weight part is the SIREN lemma: W ~ U(+-sqrt(6/n)/omega) and arcsine inputs
    # (variance 1/2) give omega W h ~ N(0, 1). The bias U(+-1/sqrt(n)) (SIREN's PyTorch
    # default) is multiplied by omega too and adds omega^2 E[b^2] = 900/(3*512) ~ 0.59
    # to the variance, so the full argument has std sqrt(1 + 0.59) ~ 1.26.
    stats = _siren_stats(_siren(), _uniform_inputs())
    for layer, (arg, weight_part, h, b) in enumerate(stats[1:], start=2):
        assert abs(float(arg.mean())) < 0.15, layer
        assert abs(float(weight_part.std()) - 1.0) < 0.1, layer
        predicted = math.sqrt(1.0 + 30.0**2 * float((b**2).mean()))
        assert abs(float(arg.std()) - predicted) < 0.15, layer
        assert abs(float(h.std()) - 1 / math.sqrt(2)) < 0.03, layer
        assert _arcsine_ks(h) < 0.05, layer


@pytest.mark.parametrize("wrong", ["no-divide-by-omega", "pytorch-default"])
def test_wrong_siren_init_is_detected(wrong):
    """The statistics above separate the right init from the usual mistakes."""
    net = _siren()
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for lin in net.linears[1:-1]:
            n = lin.weight.shape[1]
            bound = math.sqrt(6.0 / n) if wrong == "no-divide-by-omega" else 1.0 / math.sqrt(n)
            lin.weight.uniform_(-bound, bound, generator=g)
    stats = _siren_stats(net, _uniform_inputs())
    for arg, weight_part, _, _ in stats[1:]:
        assert float(weight_part.std()) > 5.0  # measured ~30 and ~12
        assert float(arg.std()) > 5.0


def test_too_small_init_loses_arcsine():
    net = _siren()
    with torch.no_grad():
        for lin in net.linears[1:-1]:
            lin.weight.mul_(0.1)
            lin.bias.mul_(0.1)
    stats = _siren_stats(net, _uniform_inputs())
    assert _arcsine_ks(stats[-1][2]) > 0.15  # outputs collapse towards 0


def test_siren_bounds():
    net = MLP(3, 2, width=64, depth=3, activation=Sine(30.0), first_omega=5.0, hidden_omega=20.0, seed=2)
    assert [a.omega for a in net.activations] == [5.0, 20.0, 20.0]
    first = net.linears[0].weight
    assert float(first.detach().abs().max()) <= 1 / 3 and float(first.detach().abs().max()) > 0.9 / 3
    for lin in net.linears[1:]:  # hidden and output layers use the hidden omega
        bound = math.sqrt(6 / 64) / 20.0
        assert float(lin.weight.detach().abs().max()) <= bound and float(lin.weight.detach().abs().max()) > 0.9 * bound


@pytest.mark.parametrize("act", [Tanh(), ReLU()])
def test_glorot_for_classic(act):
    net = MLP(2, 3, width=48, depth=2, activation=act, seed=0)
    for lin in net.linears:
        fan_out, fan_in = lin.weight.shape
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        m = float(lin.weight.detach().abs().max())
        assert 0.85 * bound < m <= bound, (fan_in, fan_out)
        assert torch.count_nonzero(lin.bias) == 0


def test_finer_first_bias():
    net = MLP(2, 1, width=256, depth=2, activation=Finer(30.0, first_bias_k=5.0), seed=0)
    b = net.linears[0].bias.detach()
    assert float(b.abs().max()) <= 5.0
    assert float(b.abs().max()) > 4.5
    assert abs(float(b.std()) - 5.0 / math.sqrt(3)) < 0.4  # U(-5, 5) over 256 draws
    # Hidden biases keep SIREN's U(+-1/sqrt(n)).
    assert float(net.linears[1].bias.detach().abs().max()) <= 1 / math.sqrt(256)


def _state(net):
    return {k: v.clone() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("make", [
    lambda s: MLP(2, 1, width=16, depth=3, activation=Sine(30.0), seed=s),
    lambda s: MLP(2, 1, width=16, depth=2, activation=Finer(first_bias_k=2.0), seed=s),
    lambda s: MLP(3, 2, width=16, depth=2, activation=MetaSin(K=4, freq_init="random"), seed=s),
    lambda s: MLP(2, 1, width=16, depth=2, activation=Tanh(), fourier=FourierFeatures(8), seed=s),
])
def test_seeding(make):
    a, b, c = _state(make(7)), _state(make(7)), _state(make(8))
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].numel() > 1 and a[k].float().std() > 0)


@pytest.mark.parametrize("kwargs, match", [
    ({"width": 0}, r"width must be an integer >= 1, got width=0"),
    ({"depth": 0}, r"depth must be an integer >= 1, got depth=0"),
    ({"width": 2.5}, r"width must be an integer"),
])
def test_mlp_bad_sizes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MLP(2, 1, **kwargs)


@pytest.mark.parametrize("act", [torch.nn.Tanh(), "siren", torch.sin])
def test_mlp_activation_must_be_activation(act):
    with pytest.raises(TypeError, match="activation must be an Activation instance"):
        MLP(2, 1, activation=act)


def test_omega_override_rejected_for_classic():
    with pytest.raises(ValueError, match="Tanh has no omega"):
        MLP(2, 1, activation=Tanh(), first_omega=3.0)


def test_fourier_features():
    enc = FourierFeatures(n_features=12, scale=2.0).build(3, torch.Generator().manual_seed(0))
    assert enc.out_dim == 24 and enc.B.shape == (12, 3)
    x = _uniform_inputs(10, 3)
    y = enc(x)
    assert y.shape == (10, 24)
    z = 2 * math.pi * x @ enc.B.T
    torch.testing.assert_close(y, torch.cat([torch.cos(z), torch.sin(z)], dim=1))

    net = MLP(3, 2, width=16, depth=2, activation=Sine(3.0), fourier=FourierFeatures(12), seed=0)
    assert net.linears[0].in_features == 24
    assert net(x).shape == (10, 2)
    # With an encoding, the first linear layer is initialised as a hidden layer.
    bound = math.sqrt(6 / 24) / 3.0
    assert float(net.linears[0].weight.detach().abs().max()) <= bound


@pytest.mark.parametrize("kwargs, match", [({"n_features": 0}, "n_features"), ({"scale": 0.0}, "scale")])
def test_fourier_bad_args(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FourierFeatures(**kwargs)


def test_metasin_hidden_weights_scale_with_the_rms_frequency():
    """MetaSin takes SIREN's init with omega = f_rms: f_rms * z is about N(0, 1) in the
    hidden layers (with omega = 1, z ~ N(0, 1) and sin(10 z) is noise)."""
    net = MLP(2, 1, width=256, depth=4, activation=MetaSin(K=10), seed=0)
    f_rms = math.sqrt(sum(j * j for j in range(1, 11)) / 10)
    with torch.no_grad():
        zs = net.preactivations(_uniform_inputs())
    for layer, z in enumerate(zs[1:], start=2):
        assert abs(float((f_rms * z).std()) - 1.0) < 0.25, layer
