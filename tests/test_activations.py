"""Activations: analytic derivatives against nested autograd, initialisation, errors."""
from __future__ import annotations

import math

import pytest
import torch

from pinn_sine.nets import MetaSin, ReLU, Sine, Tanh, Finer


def _nested_autograd(act, z: torch.Tensor, order: int = 3) -> list[torch.Tensor]:
    """sigma, sigma', ..., sigma^(order) by repeated autograd of the forward value.

    The activation is elementwise, so the gradient of sum(sigma^(k)) is sigma^(k+1).
    A derivative that no longer depends on z (ReLU's) is zero from there on.
    """
    z = z.detach().clone().requires_grad_(True)
    out = [act.derivatives(z, 0)[0]]
    for _ in range(order):
        prev = out[-1]
        if not prev.requires_grad:
            out.append(torch.zeros_like(z))
            continue
        (g,) = torch.autograd.grad(prev.sum(), z, create_graph=True, allow_unused=True)
        out.append(torch.zeros_like(z) if g is None else g)
    return out


def _metasin(channels=5, *, seed=0, **kw) -> MetaSin:
    g = torch.Generator().manual_seed(seed)
    act = MetaSin(**kw).for_layer(channels, first=False, omega=None, generator=g).double()
    return act.requires_grad_(False)  # only derivatives in z are compared here


def _randomise_metasin(act: MetaSin, seed: int) -> MetaSin:
    """Non-trivial amplitudes, including c0 != 0 so the ReLU branch matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        act.c0.copy_(torch.randn(act.c0.shape, generator=g, dtype=torch.float64))
        act.c.copy_(torch.randn(act.c.shape, generator=g, dtype=torch.float64))
    return act


def _z_for(channels: int, seed: int, *, near_zero: bool = False) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    z = 1.5 * torch.randn(64, channels, generator=g, dtype=torch.float64)
    if near_zero:
        # FINER's |z| has a kink at 0: check both sides close to it (never at it).
        z[:4] = torch.tensor([1e-3, -1e-3, 1e-6, -1e-6], dtype=torch.float64).unsqueeze(1)
    assert (z < 0).any() and (z > 0).any()
    return z


ACTIVATIONS = {
    "sine-30": lambda: Sine(30.0),
    "sine-1.5": lambda: Sine(1.5),
    "finer-30": lambda: Finer(30.0),
    "finer-2": lambda: Finer(2.0),
    "metasin-default": lambda: _randomise_metasin(_metasin(), 1),
    "metasin-relu-start": lambda: _metasin(relu_start=True),
    "metasin-relu-start-random-c0": lambda: _randomise_metasin(_metasin(relu_start=True), 2),
    "metasin-K1": lambda: _randomise_metasin(_metasin(K=1), 3),
    "metasin-K7-linear": lambda: _randomise_metasin(_metasin(K=7, freq_init="linear"), 4),
    "metasin-K7-uniform": lambda: _randomise_metasin(_metasin(K=7, freq_init="uniform"), 5),
    "metasin-K7-random": lambda: _randomise_metasin(_metasin(K=7, freq_init="random"), 6),
    "tanh": lambda: Tanh(),
    "relu": lambda: ReLU(),
}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_derivatives_match_nested_autograd(name):
    act = ACTIVATIONS[name]()
    channels = act.channels if isinstance(act, MetaSin) else 5
    z = _z_for(channels, seed=len(name), near_zero=name.startswith("finer"))
    analytic = act.derivatives(z, 3)
    reference = _nested_autograd(act, z, 3)
    assert len(analytic) == 4
    for k, (a, r) in enumerate(zip(analytic, reference)):
        scale = max(1.0, float(r.detach().abs().max()))
        torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-10 * scale, msg=f"{name}: derivative {k}")
    # Lower orders are prefixes of the full tuple.
    for order in range(4):
        lower = act.derivatives(z, order)
        assert len(lower) == order + 1
        for a, b in zip(lower, analytic):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_metasin_relu_part_matters():
    """The test above would not see a dropped c0 term if every z were positive."""
    act = _randomise_metasin(_metasin(K=3), 7)
    z = _z_for(act.channels, 0)
    s0, s1 = act.derivatives(z, 1)
    with torch.no_grad():
        act.c0.zero_()
    t0, t1 = act.derivatives(z, 1)
    pos = z > 0
    assert torch.allclose(s0[~pos], t0[~pos]) and not torch.allclose(s0[pos], t0[pos])
    assert not torch.allclose(s1[pos], t1[pos])


# ----- MetaSin initialisation -------------------------------------------------------------
def test_metasin_relu_start_init():
    act = _metasin(channels=6, K=4, relu_start=True)
    assert torch.equal(act.c0, torch.ones(6, dtype=torch.float64))
    assert torch.equal(act.c, torch.zeros(6, 4, dtype=torch.float64))
    z = _z_for(6, 1)
    torch.testing.assert_close(act(z), torch.relu(z), rtol=0, atol=0)


def test_metasin_default_amplitudes():
    act = _metasin(channels=3, K=9)
    assert torch.equal(act.c0, torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(act.c, torch.full((3, 9), 1 / 3, dtype=torch.float64))


def test_metasin_linear_frequencies():
    act = _metasin(channels=4, K=7, freq_init="linear")
    expected = torch.arange(1, 8, dtype=torch.float64).expand(4, 7)
    assert torch.equal(act.f, expected)


def test_metasin_uniform_frequencies():
    act = _metasin(channels=4, K=7, freq_init="uniform")
    expected = torch.linspace(1.0, 35.0, 7, dtype=torch.float64).expand(4, 7)
    torch.testing.assert_close(act.f, expected, rtol=0, atol=1e-5)
    assert act.f[0, 0] == 1.0 and act.f[0, -1] == 35.0
    gaps = act.f[0].diff()
    torch.testing.assert_close(gaps, torch.full_like(gaps, 34.0 / 6), rtol=0, atol=1e-5)


def test_metasin_random_frequencies_in_range():
    act = _metasin(channels=4, K=50, freq_init="random", freq_range=(2.0, 5.0))
    assert float(act.f.min()) >= 2.0 and float(act.f.max()) <= 5.0
    assert float(act.f.std()) > 0.5  # spread over the range, not one value


def test_metasin_phases_uniform_on_circle():
    act = _metasin(channels=64, K=10)
    p = act.p
    assert float(p.min()) >= 0.0 and float(p.max()) < 2 * math.pi
    # U(0, 2 pi): mean pi, std 2 pi / sqrt(12) ~ 1.81 over 640 draws.
    assert abs(float(p.mean()) - math.pi) < 0.25
    assert abs(float(p.std()) - 2 * math.pi / math.sqrt(12)) < 0.15


def test_metasin_params_per_layer_and_seeded():
    a = _metasin(channels=8, seed=3)
    b = _metasin(channels=8, seed=3)
    c = _metasin(channels=8, seed=4)
    assert torch.equal(a.p, b.p) and not torch.equal(a.p, c.p)
    assert {n for n, _ in a.named_parameters()} == {"c0", "c", "f", "p"}


def test_metasin_template_has_no_parameters():
    with pytest.raises(RuntimeError, match="for_layer"):
        MetaSin().derivatives(torch.zeros(2, 3), 1)


# ----- errors -------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: Sine(omega=0), lambda: Sine(-1), lambda: Sine(float("nan")),
                                  lambda: Finer(omega=0), lambda: Finer(omega=-3.0)])
def test_bad_omega(make):
    with pytest.raises(ValueError, match=r"omega must be > 0, got omega="):
        make()


def test_finer_bad_bias_k():
    with pytest.raises(ValueError, match="first_bias_k"):
        Finer(first_bias_k=-1.0)


def test_metasin_bad_K():
    with pytest.raises(ValueError, match=r"K must be an integer >= 1, got K=0"):
        MetaSin(K=0)


def test_metasin_bad_freq_init_lists_valid():
    with pytest.raises(ValueError, match=r"Invalid freq_init \"bad\".*'linear', 'uniform', 'random'"):
        MetaSin(freq_init="bad")


def test_metasin_bad_freq_range():
    with pytest.raises(ValueError, match="freq_range"):
        MetaSin(freq_range=(5.0, 1.0))


def test_for_layer_omega():
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="MetaSin has no omega"):
        MetaSin().for_layer(4, first=False, omega=3.0, generator=g)
    with pytest.raises(ValueError, match="Tanh has no omega"):
        Tanh().for_layer(4, first=True, omega=3.0, generator=g)
    with pytest.raises(ValueError, match="omega"):
        Sine().for_layer(4, first=True, omega=0.0, generator=g)
    # Sine/Finer take the override, and the template keeps its own omega.
    template = Finer(30.0)
    assert template.for_layer(4, first=True, omega=3.0, generator=g).omega == 3.0
    assert template.omega == 30.0
