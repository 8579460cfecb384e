"""AllenCahn1D (issue 29): conformance in its four variants (periodicity by encoding or a
soft term, initial data soft or hard), the periodic pair term, the hard constraint, the
spectral reference (its residual through the problem's own loss code, its estimate, its
t = 0 row), the Gauss-Newton Jacobian against reverse mode, and the parameter errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pinn_sine.derivatives import DerivativeSpec, autograd_jet, forward_jet
from pinn_sine.derivatives.linearization import fitted_parameters, linearize
from pinn_sine.nets import MLP, Sine, build_net
from pinn_sine.problems import AllenCahn1D, FunctionNet, check_problem
from pinn_sine.problems.allen_cahn import OVERSAMPLE, initial_value
from pinn_sine.validation.spectral import allen_cahn_1d

VARIANTS = [pytest.param({}, id="encoding-soft"), pytest.param({"constraint": "hard"}, id="encoding-hard"),
            pytest.param({"periodicity": "soft"}, id="soft-soft"),
            pytest.param({"periodicity": "soft", "constraint": "hard"}, id="soft-hard")]


def _net(problem, seed=0, width=7):
    return problem.constrain(MLP(2, 1, width, 2, activation=Sine(3.0), seed=seed).double())


def _batch(problem, n=9, seed=0):
    return {k: v.double() for k, v in problem.sample(n, torch.Generator().manual_seed(seed)).items()}


# ----- the declarations -------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", VARIANTS)
def test_every_variant_conforms(kwargs):
    problem = AllenCahn1D(**kwargs)
    checks = check_problem(problem)
    assert {"contract", "terms", "engines", "pointwise", "params", "reference", "bad_params"} <= set(checks)
    expected = ["pde"] + (["initial"] if problem.constraint == "soft" else []) \
        + (["periodic"] if problem.periodicity == "soft" else [])
    assert [t.name for t in problem.terms()] == expected
    # one reference for all four: neither the constraint nor the periodicity changes the solution
    assert problem.reference_params(33) == AllenCahn1D().reference_params(33)
    assert problem.params()["periodicity"] == kwargs.get("periodicity", "encoding")


def test_encoding_declares_the_period_and_no_boundary_term():
    problem = AllenCahn1D()
    assert problem.periodic == {"x": 2.0}
    assert not any(t.kind == "boundary" for t in problem.terms())
    assert set(problem.derivatives) == {"interior", "initial"} and set(_batch(problem)) == {"interior", "initial"}


def test_build_net_makes_the_encoding_variant_exactly_periodic_in_x():
    t = torch.linspace(0, 1, 7, dtype=torch.float64).reshape(-1, 1)
    ends = {s: torch.cat([t, torch.full_like(t, s)], 1) for s in (-1.0, 1.0)}
    spec = DerivativeSpec(first=("x",), second=(("x", "x"),))
    net = build_net(AllenCahn1D(), "siren", width=8, depth=2, seed=0).double()
    left, right = (forward_jet(net, ends[s], ("t", "x"), spec) for s in (-1.0, 1.0))
    for a, b in ((left.u, right.u), (left.d("x"), right.d("x")), (left.d2("x", "x"), right.d2("x", "x"))):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    plain = build_net(AllenCahn1D(periodicity="soft"), "siren", width=8, depth=2, seed=0).double()
    assert float((plain(ends[-1.0]) - plain(ends[1.0])).detach().abs().max()) > 1e-3


def test_soft_periodicity_pairs_the_two_ends_at_equal_times():
    problem = AllenCahn1D(periodicity="soft", periodic_fraction=0.5)
    assert problem.periodic == {}
    (term,) = [t for t in problem.terms() if t.name == "periodic"]
    assert (term.sets, term.kind) == (("left", "right"), "boundary")
    batch = _batch(problem, n=40)
    left, right = batch["left"], batch["right"]
    assert left.shape == right.shape == (20, 2)
    assert torch.equal(left[:, 0], right[:, 0]) and bool((left[:, 1] == -1).all() and (right[:, 1] == 1).all())
    assert float(left[:, 0].min()) >= 0 and float(left[:, 0].max()) <= 1


def _periodic_rows(problem, fn, n=12):
    batch = _batch(problem, n=n)
    jets = problem.jets(FunctionNet(fn), batch, engine="autograd")
    return problem.residuals(jets, batch)["periodic"].detach()


def test_the_periodic_term_is_zero_for_a_periodic_function_and_not_otherwise():
    problem = AllenCahn1D(periodicity="soft")
    # period 2 in x, any t: both columns vanish
    periodic = _periodic_rows(problem, lambda x: torch.sin(math.pi * x[:, 1:2] + x[:, :1]) * torch.exp(-x[:, :1])
                              + torch.cos(2 * math.pi * x[:, 1:2]))
    assert periodic.shape == (3, 2) and float(periodic.abs().max()) < 1e-14
    # u = x + t: u jumps by -2 across the period, u_x does not
    jump = _periodic_rows(problem, lambda x: x[:, 1:2] + x[:, :1])
    torch.testing.assert_close(jump[:, 0], torch.full((3,), -2.0 / problem._scale_u, dtype=torch.float64))
    assert float(jump[:, 1].abs().max()) < 1e-14
    # u = x^2: equal values, the slope jumps by -4 (the initial value's own kink)
    kink = _periodic_rows(problem, lambda x: x[:, 1:2] ** 2)
    assert float(kink[:, 0].abs().max()) < 1e-14
    torch.testing.assert_close(kink[:, 1], torch.full((3,), -4.0 / problem._scale_x, dtype=torch.float64))


def test_terms_are_normalised_by_the_means_of_u0():
    """<u0^2>, <u0'^2>, <u_t(0)^2> over [-1, 1] against a fine midpoint rule."""
    problem = AllenCahn1D()
    x = np.linspace(-1, 1, 200001)
    x = (x[1:] + x[:-1]) / 2
    u0 = initial_value(x)
    du = 2 * x * np.cos(np.pi * x) - np.pi * x * x * np.sin(np.pi * x)
    d2u = (2 - np.pi ** 2 * x * x) * np.cos(np.pi * x) - 4 * np.pi * x * np.sin(np.pi * x)
    rate = problem.eps * d2u + problem.a * (u0 - u0 ** 3)
    for got, want in ((problem._scale_u, u0), (problem._scale_x, du), (problem._scale_t, rate)):
        assert got == pytest.approx(math.sqrt(np.mean(want ** 2)), rel=1e-9)


def test_the_hard_constraint_holds_the_initial_value_and_leaves_the_rate_free():
    problem = AllenCahn1D(constraint="hard")
    net = _net(problem, seed=3)
    s = torch.linspace(-1, 1, 21, dtype=torch.float64).reshape(-1, 1)
    jet = autograd_jet(net, torch.cat([torch.zeros_like(s), s], 1), problem.input_names, DerivativeSpec(first=("t",)))
    torch.testing.assert_close(jet.u, initial_value(s), rtol=0, atol=1e-15)
    assert float(jet.d("t").detach().abs().min()) > 0  # u_t(0) is the network's (phi'(0) = 1 / t_max)
    x = torch.rand(16, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * torch.tensor([1.0, 2.0]) \
        - torch.tensor([0.0, 1.0])
    spec = problem.derivatives["interior"]
    fast, ref = forward_jet(net, x, problem.input_names, spec), autograd_jet(net, x, problem.input_names, spec)
    for a, b in ((fast.u, ref.u), (fast.d("t"), ref.d("t")), (fast.d2("x", "x"), ref.d2("x", "x"))):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bad, match", [
    ({"eps": 0.0}, "eps must be > 0"), ({"a": -5.0}, "a must be > 0"), ({"t_max": 0.0}, "t_max must be > 0"),
    ({"initial_fraction": 0.0}, "initial_fraction must be > 0"),
    ({"periodic_fraction": -1.0}, "periodic_fraction must be > 0"),
    ({"periodicity": "exact"}, 'Invalid periodicity "exact". Must be one of'),
    ({"constraint": "strong"}, 'Invalid constraint "strong"'), ({"sampler": "grid"}, 'Invalid sampler "grid"')])
def test_bad_parameters_raise_naming_them(bad, match):
    with pytest.raises(ValueError, match=match):
        AllenCahn1D(**bad)


# ----- the reference ----------------------------------------------------------------------------
def _spectral_field(problem, t_star: float, delta: float, *, eps: float | None = None):
    """The reference solve as a function of (t, x) near t_star, in torch (differentiable):
    the Fourier series in x at the five times t_star + j delta (j = -2..2), joined by their
    Lagrange polynomial in t. ``eps`` solves another diffusion instead (a wrong field)."""
    n, dt = problem.spectral_grid()
    nodes = t_star + delta * np.arange(-2, 3)
    grid, states = allen_cahn_1d(problem.eps if eps is None else eps, problem.a, initial_value, nodes, n_modes=n,
                                 dt=dt, oversample=OVERSAMPLE)
    weight = np.full(grid.n // 2 + 1, 2.0)
    weight[0], weight[-1] = 1.0, 0.0
    re = torch.from_numpy((states.real * weight / grid.n).T)
    im = torch.from_numpy((states.imag * weight / grid.n).T)
    k, tn = torch.from_numpy(grid.k), torch.from_numpy(nodes)

    def u(x):
        t, phase = x[:, :1], (x[:, 1:2] + 1.0) * k
        series = torch.cos(phase) @ re - torch.sin(phase) @ im  # (m, 5): u(t_j, x)
        basis = [math.prod(((t - tn[i]) / (tn[j] - tn[i]) for i in range(5) if i != j), start=torch.ones_like(t))
                 for j in range(5)]
        return (torch.cat(basis, 1) * series).sum(1, keepdim=True)

    return u


@pytest.mark.parametrize("t_star", [0.5, 0.9])
def test_the_reference_solves_the_equation_through_the_problems_loss_code(t_star):
    """The spectral solution, evaluated as a network (Fourier series in x, a degree-4
    interpolant in t of steps 1e-3), has a "pde" term ~1e-20 (rms residual 1e-10 of u_t's
    size) and a "periodic" term at rounding; the solution for eps 1% off has a pde term
    of 2e-9 (t = 0.5) and 3e-7 (t = 0.9), so the check sees a small error in the solver's
    equation."""
    problem = AllenCahn1D(periodicity="soft")
    g = torch.Generator().manual_seed(0)
    x = 2 * torch.rand(200, 1, generator=g, dtype=torch.float64) - 1
    t = t_star + 1e-3 * (2 * torch.rand(200, 1, generator=g, dtype=torch.float64) - 1)
    ends = torch.full((20, 1), t_star, dtype=torch.float64)
    batch = {"interior": torch.cat([t, x], 1), "initial": torch.cat([torch.zeros_like(x), x], 1),
             "left": torch.cat([ends, -torch.ones_like(ends)], 1), "right": torch.cat([ends, torch.ones_like(ends)], 1)}
    losses = problem.compute_losses(FunctionNet(_spectral_field(problem, t_star, 1e-3)), batch, engine="autograd")
    losses = {k: float(v.detach()) for k, v in losses.items()}
    assert losses["pde"] < 1e-16 and losses["periodic"] < 1e-24, losses
    wrong = problem.compute_losses(FunctionNet(_spectral_field(problem, t_star, 1e-3, eps=1.01 * problem.eps)), batch,
                                   engine="autograd")
    assert float(wrong["pde"].detach()) > 1e-12, wrong


def test_the_reference_starts_at_u0_is_periodic_and_carries_its_estimate():
    problem = AllenCahn1D()
    ref = problem.reference(9, cache=False)
    assert (ref.solver, ref.order, ref.attrs["error_method"]) == ("fourier-etdrk4", 4, "refinement")
    assert 0 < ref.error_estimate < 1e-8
    assert (ref.attrs["n_modes"], ref.attrs["dt"]) == (2048, 2.5e-3) == problem.spectral_grid()
    u = ref.fields["u"]
    np.testing.assert_array_equal(u[0], initial_value(ref.coords["x"]))
    np.testing.assert_allclose(u[:, 0], u[:, -1], rtol=0, atol=1e-12)  # x = -1 and x = 1 are one point
    assert float(np.abs(u[-1]).max()) <= 1.0 + 1e-6  # the reaction holds u within its stable states
    # the solve the estimate compares with: 2n modes and half the step
    fine = problem.solve(ref.coords["t"], ref.coords["x"], refine=2)
    assert ref.error_estimate == pytest.approx(float(np.linalg.norm(u - fine) / np.linalg.norm(fine)), rel=1e-12)


def test_the_spectral_grid_follows_the_interface_width_and_the_rate():
    assert AllenCahn1D().spectral_grid() == (2048, 2.5e-3)
    assert AllenCahn1D(eps=1e-2).spectral_grid() == (256, 2.5e-3)  # 190 modes asked, 256 at least
    assert AllenCahn1D(eps=2.5e-5, a=10.0).spectral_grid() == (8192, 1.25e-3)


# ----- Gauss-Newton ------------------------------------------------------------------------------
def _dense_jacobian(problem, net, batch, weights):
    """r and J row by row, one reverse-mode pass per entry of the weighted residual."""
    params = fitted_parameters(problem, net)
    jets = {k: forward_jet(net, batch[k], problem.input_names, s) for k, s in problem.derivatives.items()}
    rows = [(r * math.sqrt(weights.get(name, 1.0) / r.shape[0])).T.reshape(-1)
            for name, r in problem.residuals(jets, batch).items()]
    vec = torch.cat(rows)
    J = torch.stack([torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                                for p, g in zip(params, torch.autograd.grad(v, params, retain_graph=True,
                                                                            allow_unused=True))]) for v in vec])
    return vec.detach(), J


@pytest.mark.parametrize("kwargs", [pytest.param({"periodicity": "soft"}, id="soft"),
                                    pytest.param({"periodicity": "soft", "constraint": "hard"}, id="soft-hard"),
                                    pytest.param({}, id="encoding")])
def test_gauss_newton_jacobian_equals_reverse_mode(kwargs):
    problem = AllenCahn1D(**kwargs)
    net = _net(problem, seed=1)
    batch = _batch(problem, n=12)
    weights = {"periodic": 3.0, "initial": 2.0}
    lin = linearize(problem, net, batch, weights)
    r, J = _dense_jacobian(problem, net, batch, weights)
    torch.testing.assert_close(lin.r, r, rtol=0, atol=1e-12)
    torch.testing.assert_close(lin.materialize(), J, rtol=0, atol=1e-10 * max(float(J.abs().max()), 1.0))
    v = torch.randn(J.shape[1], generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    torch.testing.assert_close(lin.mv(v), J @ v, rtol=0, atol=1e-9 * max(float(J.abs().max()), 1.0))
    assert list(lin.slices) == [t.name for t in problem.terms()]
    if "periodic" in lin.slices:  # two columns of 3 pairs
        rows = lin.slices["periodic"]
        assert rows.stop - rows.start == 2 * batch["left"].shape[0]
