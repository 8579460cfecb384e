"""Time windows of Wave1D (issue 27, item 2): t_start, InitialData (closed form or from a
frozen network's jet), the hard constraint of a window that starts in motion, params."""
import math

import pytest
import torch

from pinn_sine.derivatives import DerivativeSpec, autograd_jet, forward_jet
from pinn_sine.nets import MLP, Sine
from pinn_sine.problems import Wave1D, Wave2D, check_problem
from pinn_sine.problems.base import FunctionNet
from pinn_sine.problems.windows import InitialData, state_digest

TOL = 1e-12  # float64


def _net(seed=0, in_dim=2):
    return MLP(in_dim, 1, width=16, depth=2, activation=Sine(), first_omega=2.0, seed=seed).double()


def _draw(problem, n=64, seed=1):
    return {k: v.double() for k, v in problem.draw(n, torch.Generator().manual_seed(seed)).items()}


def _u_and_ut(net, x):
    """net(x) and d net / dt at x (n, 2), by autograd."""
    x = x.clone().requires_grad_(True)
    u = net(x)
    (g,) = torch.autograd.grad(u.sum(), x)
    return u.detach(), g[:, :1]


def test_hand_off_gives_the_next_window_the_networks_value_and_velocity():
    first = Wave1D(t_max=0.5)
    net = _net()
    data = InitialData.from_network(net, first, 0.5)
    second = Wave1D(t_start=0.5, initial=data)
    batch = _draw(second)
    pts = batch["initial"]
    assert torch.all(pts[:, 0] == 0.5)
    u_k, v_k = second.initial_data(pts[:, 1:])
    u, u_t = _u_and_ut(net, pts)
    assert torch.allclose(u_k, u, rtol=0, atol=TOL) and torch.allclose(v_k, u_t, rtol=0, atol=TOL)
    # the same network continued into the next window meets its initial data: both terms ~0
    losses = second.compute_losses(net, batch)
    assert float(losses["initial"].detach()) < TOL ** 2 and float(losses["initial_velocity"].detach()) < TOL ** 2
    # the data are a frozen copy: training the network on does not move them
    digest = data.digest
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.01)
    u_after, v_after = second.initial_data(pts[:, 1:].clone())
    assert torch.equal(u_after, u_k) and torch.equal(v_after, v_k)
    assert data.digest == digest != state_digest(net)


@pytest.mark.parametrize("start", ["rest", "motion"])
def test_hand_off_from_a_hard_window(start):
    # a hard window from rest (closed-form g) or in motion (g of callables, derivatives by autograd)
    first = Wave1D(t_max=0.5, constraint="hard") if start == "rest" else \
        Wave1D(t_start=0.25, t_max=0.5, initial=InitialData(_value, _velocity), constraint="hard")
    net = first.constrain(_net(seed=3)).double()
    second = Wave1D(t_start=0.5, initial=InitialData.from_network(net, first, 0.5))
    pts = _draw(second)["initial"]
    u_k, v_k = second.initial_data(pts[:, 1:])
    u, u_t = _u_and_ut(net, pts)
    assert torch.allclose(u_k, u, rtol=0, atol=TOL) and torch.allclose(v_k, u_t, rtol=0, atol=TOL)


def test_window_samples_its_own_time_interval():
    p = Wave1D(t_start=0.25, t_max=0.75, curriculum_end=0.5, curriculum_t0=0.2)
    assert p.bounds[0] == (0.25, 0.75)
    assert p.time_window(0.0) == pytest.approx(0.25 + 0.2 * 0.5)
    assert p.time_window(1.0) == 0.75
    b = p.draw(500, torch.Generator().manual_seed(0), progress=0.0)
    assert torch.all(b["interior"][:, 0] >= 0.25) and torch.all(b["interior"][:, 0] <= 0.35 + 1e-6)
    assert torch.all(b["boundary"][:, 0] >= 0.25) and torch.all(b["initial"][:, 0] == 0.25)


@pytest.mark.parametrize("constraint", ["soft", "hard"])
def test_closed_form_window_passes_check_problem_with_the_exact_solution(constraint):
    p = Wave1D(t_start=0.3, constraint=constraint)
    assert "exact" in check_problem(p)  # the exact solution's loss terms are ~0 in float64


def test_window_from_a_network_passes_check_problem():
    first = Wave1D(t_max=0.5)
    p = Wave1D(t_start=0.5, initial=InitialData.from_network(_net(), first, 0.5))
    done = check_problem(p)
    assert "exact" not in done and {"terms", "engines", "params", "reference"} <= set(done)
    assert p.exact_solution is None


def _exact_data(whole, t_k):
    def value(s):
        return whole.exact(torch.cat([torch.full_like(s, t_k), s], dim=1))

    def velocity(s):
        return whole._standing_waves(torch.cat([torch.full_like(s, t_k), s], dim=1), rate=True)

    return InitialData(value, velocity, time=t_k)


def test_closed_form_initial_data_of_the_exact_solution_give_zero_residuals():
    whole = Wave1D()
    p = Wave1D(t_start=0.35, initial=_exact_data(whole, 0.35))
    batch = _draw(p)
    def losses(problem, net):
        return {k: float(v.detach()) for k, v in problem.compute_losses(net, batch, engine="autograd").items()}

    exact, generic = losses(p, FunctionNet(whole.exact)), losses(p, _net())
    for k in ("pde", "initial", "initial_velocity", "boundary"):
        assert exact[k] <= 1e-12 * max(generic[k], 1.0), k
    # and another time's data (untimed, so accepted at t_start = 0.35) are not a solution of this window
    earlier = _exact_data(whole, 0.2)
    wrong = Wave1D(t_start=0.35, initial=InitialData(earlier.value, earlier.velocity))
    assert losses(wrong, FunctionNet(whole.exact))["initial"] > 1e-3


def _value(s):
    return 0.3 * torch.sin(math.pi * s) - 0.2 * torch.sin(3 * math.pi * s)


def _velocity(s):
    return 2.0 * torch.sin(2 * math.pi * s)


@pytest.mark.parametrize("initial", [None, "callables"])
def test_hard_window_starting_in_motion_is_exact_for_any_network(initial):
    t_k = 0.3
    data = None if initial is None else InitialData(_value, _velocity, time=t_k)
    p = Wave1D(t_start=t_k, initial=data, constraint="hard")
    whole = Wave1D()
    s = torch.linspace(0.0, 1.0, 33, dtype=torch.float64).reshape(-1, 1)
    x = torch.cat([torch.full_like(s, t_k), s], dim=1)
    if data is None:
        u_k = whole.exact(x)
        v_k = whole._standing_waves(x, rate=True)
    else:
        u_k, v_k = _value(s), _velocity(s)
    spec = DerivativeSpec(first=("t", "x"), second=(("t", "t"), ("x", "x")))
    for seed in (0, 1):
        net = p.constrain(_net(seed=seed)).double()
        jet = forward_jet(net, x, p.input_names, spec)
        ref = autograd_jet(net, x, p.input_names, spec)
        assert torch.allclose(jet.u, u_k, rtol=0, atol=TOL) and torch.allclose(ref.u, u_k, rtol=0, atol=TOL)
        assert torch.allclose(jet.d("t"), v_k, rtol=0, atol=TOL)
        assert torch.allclose(ref.d("t"), v_k, rtol=0, atol=TOL)
        assert torch.allclose(jet.d2("x", "x"), ref.d2("x", "x"), rtol=0, atol=1e-9)
        walls = torch.tensor([[0.6, 0.0], [0.9, 1.0]], dtype=torch.float64)
        assert float(net(walls).detach().abs().max()) < TOL
    assert "exact" in check_problem(p) if data is None else "engines" in check_problem(p)


def test_closed_form_window_hard_constraint_description_names_the_start():
    d = Wave1D(t_start=0.3, constraint="hard").hard_constraint().describe()
    assert "(t - 0.3)" in d["d"] and "(t - 0.3)" in d["g"]
    assert Wave1D(constraint="hard").hard_constraint() != Wave1D(t_start=0.3, constraint="hard").hard_constraint()


@pytest.mark.parametrize("kwargs, match", [
    ({"t_start": 1.0}, r"t_start must be in \[0, t_max\)"),
    ({"t_start": 2.0}, "t_start"),
    ({"t_start": -0.1}, "t_start"),
    ({"t_start": float("nan")}, "t_start"),
    ({"t_start": "0.5"}, "t_start"),
    ({"initial": "sin"}, "initial must be an InitialData"),
    ({"t_start": 0.5, "initial": InitialData(_value, None)}, "no velocity"),
    ({"t_start": 0.5, "initial": InitialData(_value, _velocity, time=0.25)}, "give t_start=0.25"),
])
def test_bad_window_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Wave1D(**kwargs)


def test_initial_data_of_the_wrong_problem_is_refused():
    w2 = Wave2D(t_max=0.2)
    with pytest.raises(ValueError, match="wave2d"):
        Wave1D(t_start=0.1, initial=InitialData.from_network(_net(in_dim=3), w2, 0.1))
    other = Wave1D(c=1.0, t_max=0.5)
    with pytest.raises(ValueError, match="c=1.0"):
        Wave1D(t_start=0.5, initial=InitialData.from_network(_net(), other, 0.5))
    with pytest.raises(ValueError, match="outside the problem's time interval"):
        InitialData.from_network(_net(), Wave1D(t_max=0.5), 0.75)
    with pytest.raises(ValueError, match="3 inputs"):
        InitialData.from_network(_net(in_dim=3), Wave1D(), 0.5)
    with pytest.raises(ValueError, match="t_k must be a finite time"):
        InitialData.from_network(_net(), Wave1D(), -1.0)
    with pytest.raises(ValueError, match="n = 2 values"):
        Wave1D(t_start=0.5, initial=InitialData(lambda s: torch.ones(3), _velocity))


def test_hard_window_refuses_network_data_and_data_on_the_walls():
    data = InitialData.from_network(_net(), Wave1D(t_max=0.5), 0.5)
    with pytest.raises(ValueError, match="closed-form initial data"):
        Wave1D(t_start=0.5, initial=data, constraint="hard")
    with pytest.raises(ValueError, match="on the walls"):
        Wave1D(t_start=0.5, initial=InitialData(lambda s: torch.cos(s), _velocity), constraint="hard")


def test_params_tell_windows_apart():
    whole = Wave1D()
    assert "t_start" not in whole.params() and "initial" not in whole.params()  # the keys of before windows
    a, b = Wave1D(t_start=0.25), Wave1D(t_start=0.5)
    assert a.params()["t_start"] == 0.25 and a.params() != b.params()
    first = Wave1D(t_max=0.5)
    n1, n2 = _net(seed=0), _net(seed=1)
    w1 = Wave1D(t_start=0.5, initial=InitialData.from_network(n1, first, 0.5))
    w2 = Wave1D(t_start=0.5, initial=InitialData.from_network(n2, first, 0.5))
    r1 = w1.params()["initial"]
    assert r1 == {"kind": "network", "time": 0.5, "problem": "wave1d", "sha256": state_digest(n1)}
    assert w1.params() != w2.params() != Wave1D(t_start=0.5).params()
    c = Wave1D(t_start=0.5, initial=InitialData(_value, _velocity)).params()["initial"]
    assert c["kind"] == "closed_form" and c["value_fn"] and c["velocity_fn"] and c["value_fn"] != c["velocity_fn"]
    # the reference is the whole problem's in the window, whatever the data
    assert w1.reference_params(9) == w2.reference_params(9) == Wave1D(t_start=0.5).reference_params(9)
    assert w1.reference_params(9) != a.reference_params(9)


def test_window_reference_is_the_whole_problem_on_the_window():
    p = Wave1D(t_start=0.5, time_resolution=11)
    ref = p.reference(17, cache=False)
    assert ref.coords["t"][0] == 0.5 and ref.coords["t"][-1] == 1.0
    whole = Wave1D(time_resolution=21).reference(17, cache=False)
    assert torch.allclose(torch.from_numpy(ref.fields["u"]), torch.from_numpy(whole.fields["u"][10:]), rtol=0,
                          atol=1e-12)
    assert ref.attrs["error_estimate"] < 1e-3  # the 5-point stencil's dispersion at h = 1/64


# ----- Wave2D ---------------------------------------------------------------------------------
def _bump(s):
    """0.1 sin(pi (x + 1) / 2) sin(pi (y + 1) / 2): vanishes on the walls of [-1, 1]^2."""
    return 0.1 * torch.sin(math.pi * (s[:, :1] + 1) / 2) * torch.sin(math.pi * (s[:, 1:2] + 1) / 2)


def _spin(s):
    return -0.3 * torch.sin(math.pi * (s[:, :1] + 1)) * torch.sin(math.pi * (s[:, 1:2] + 1) / 2)


def test_wave2d_hand_off_and_check_problem():
    first = Wave2D(t_max=0.25)  # t_k = 0.25 is a float32 number: the drawn (float32) points lie at it exactly
    net = _net(in_dim=3)
    second = Wave2D(t_start=0.25, initial=InitialData.from_network(net, first, 0.25))
    batch = _draw(second)
    pts = batch["initial"]
    assert torch.all(pts[:, 0] == 0.25) and torch.all(batch["interior"][:, 0] >= 0.25)
    u_k, v_k = second.initial.at(pts[:, 1:])
    u, u_t = _u_and_ut(net, pts)
    assert torch.allclose(u_k, u, rtol=0, atol=TOL) and torch.allclose(v_k, u_t, rtol=0, atol=TOL)
    losses = second.compute_losses(net, batch)
    assert float(losses["initial"].detach()) < TOL ** 2 and float(losses["initial_velocity"].detach()) < TOL ** 2
    assert {"terms", "engines", "params", "reference"} <= set(check_problem(second))
    assert second.snapshot_times[0] == 0.25 and "t_start" not in first.params()
    assert second.reference_params(9)["t_start"] == 0.25 and "initial" not in second.reference_params(9)


def test_wave2d_hard_window_starting_in_motion_is_exact_for_any_network():
    t_k = 0.1
    p = Wave2D(t_start=t_k, initial=InitialData(_bump, _spin, time=t_k), constraint="hard")
    s = torch.rand(40, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    x = torch.cat([torch.full_like(s[:, :1], t_k), s], dim=1)
    spec = DerivativeSpec(first=("t",))
    for seed in (0, 1):
        net = p.constrain(_net(seed=seed, in_dim=3)).double()
        jet = forward_jet(net, x, p.input_names, spec)
        assert torch.allclose(jet.u, _bump(s), rtol=0, atol=TOL)
        assert torch.allclose(jet.d("t"), _spin(s), rtol=0, atol=TOL)
    assert "engines" in check_problem(p)


def test_wave2d_bad_windows():
    with pytest.raises(ValueError, match="no closed-form solution at t_start"):
        Wave2D(t_start=0.1)
    with pytest.raises(ValueError, match="t_start"):
        Wave2D(t_start=0.5)
    with pytest.raises(ValueError, match="wave1d"):
        Wave2D(t_start=0.1, initial=InitialData.from_network(_net(), Wave1D(), 0.1))
    with pytest.raises(ValueError, match="source_width"):
        Wave2D(t_start=0.1, initial=InitialData.from_network(_net(in_dim=3), Wave2D(source_width=0.1), 0.1))
    with pytest.raises(ValueError, match="on the walls"):
        Wave2D(t_start=0.1, initial=InitialData(lambda s: 1.0 + 0 * s[:, :1], _spin), constraint="hard")
    with pytest.raises(ValueError, match=r"outside \[t_start, t_max\]"):
        Wave2D(t_start=0.1, initial=InitialData(_bump, _spin), snapshot_times=[0.0, 0.4])


def test_the_two_initial_terms_of_a_step_share_one_jet_of_the_frozen_network(monkeypatch):
    import pinn_sine.problems.windows as windows

    calls = []
    real = windows.forward_jet

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(windows, "forward_jet", counting)
    p = Wave1D(t_start=0.5, initial=InitialData.from_network(_net(), Wave1D(t_max=0.5), 0.5))
    net = _net(seed=2)
    p.compute_losses(net, _draw(p, seed=1))
    assert len(calls) == 1  # "initial" and "initial_velocity" read the same points
    p.compute_losses(net, _draw(p, seed=2))
    assert len(calls) == 2  # new points, a new jet
