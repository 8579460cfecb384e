"""The Jacobian operator of the least-squares objective (pinn_sine.derivatives.linearize):
J v, J^T u, J J^T, diag(J^T J), submatrices, the materialized J and the residual at
moved parameters (residual_at) against the dense
Jacobian built row by row by reverse mode, in float64 to 1e-10, for every built-in
least-squares problem (soft and hard constraints, with and without Fourier features), a
term that reads two aligned point sets (a periodic pair) and a trainable coefficient."""
from __future__ import annotations

import math

import pytest
import torch

from pinn_sine.derivatives import DerivativeSpec, forward_jet
from pinn_sine.derivatives.jacobian import jacobian_parameters
from pinn_sine.derivatives.linearization import fitted_parameters, linearize, residual_vector
from pinn_sine.nets import MLP, FourierFeatures, Sine, Tanh
from pinn_sine.problems import Helmholtz2D, HelmholtzPointSource, Poisson2D, Problem, Term, Wave1D, Wave2D

CASES = {
    "poisson": lambda: Poisson2D(),
    "poisson-hard": lambda: Poisson2D(constraint="hard"),
    "helmholtz": lambda: Helmholtz2D(),
    "helmholtz-hard": lambda: Helmholtz2D(a1=1.5, a2=2.5, constraint="hard"),
    "point-source": lambda: HelmholtzPointSource(),
    "wave1d": lambda: Wave1D(),
    "wave1d-hard": lambda: Wave1D(constraint="hard"),
    "wave2d": lambda: Wave2D(),
    "wave2d-absorbing-hard": lambda: Wave2D(boundary="absorbing", source_center=(0.3, 0.0), constraint="hard"),
}


def _net(problem, width=7, depth=2, fourier=False):
    act = Tanh() if problem.name == "wave2d" else Sine(3.0)
    net = MLP(problem.in_dim, problem.out_dim, width, depth, seed=1, activation=act,
              fourier=FourierFeatures(4, 1.0) if fourier else None).double()
    return problem.constrain(net)


def _batch(problem, n=9, seed=0):
    return {k: v.double() for k, v in problem.sample(n, torch.Generator().manual_seed(seed)).items()}


def _reference(problem, net, batch, weights):
    """r and J row by row: one reverse-mode pass per entry of the weighted residual."""
    params = fitted_parameters(problem, net)
    jets = {k: forward_jet(net, batch[k], problem.input_names, s) for k, s in problem.derivatives.items()
            if k in batch}
    rows = []
    for name, r in problem.residuals(jets, batch).items():
        rows.append((r * math.sqrt(weights.get(name, 1.0) / r.shape[0])).T.reshape(-1))
    vec = torch.cat(rows)
    J = torch.stack([torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in
                                zip(params, torch.autograd.grad(v, params, retain_graph=True, allow_unused=True))])
                     for v in vec])
    return vec.detach(), J


def _check_operator(lin, r_ref, J_ref):
    tol = 1e-10 * max(float(J_ref.abs().max()), 1.0)
    g = torch.Generator().manual_seed(3)
    N, p = J_ref.shape
    assert (lin.n_rows, lin.n_cols) == (N, p)
    torch.testing.assert_close(lin.r, r_ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(lin.materialize(), J_ref, rtol=0, atol=tol)
    v = torch.randn(p, generator=g, dtype=torch.float64)
    u = torch.randn(N, generator=g, dtype=torch.float64)
    V = torch.randn(p, 3, generator=g, dtype=torch.float64)
    U = torch.randn(N, 4, generator=g, dtype=torch.float64)
    torch.testing.assert_close(lin.mv(v), J_ref @ v, rtol=0, atol=tol * p ** 0.5 * 4)
    torch.testing.assert_close(lin.mv(V), J_ref @ V, rtol=0, atol=tol * p ** 0.5 * 4)
    torch.testing.assert_close(lin.rmv(u), J_ref.T @ u, rtol=0, atol=tol * N ** 0.5 * 4)
    torch.testing.assert_close(lin.rmv(U), J_ref.T @ U, rtol=0, atol=tol * N ** 0.5 * 4)
    K = J_ref @ J_ref.T
    torch.testing.assert_close(lin.gram(), K, rtol=0, atol=1e-10 * max(float(K.abs().max()), 1.0))
    D = (J_ref * J_ref).sum(0)
    torch.testing.assert_close(lin.normal_diagonal(), D, rtol=0, atol=1e-10 * max(float(D.max()), 1.0))
    rows = torch.tensor([0, N - 1, N // 2, 3])
    cols = torch.randperm(p, generator=g)[: min(p, 11)]
    torch.testing.assert_close(lin.submatrix(rows, cols), J_ref[rows][:, cols], rtol=0, atol=tol)
    torch.testing.assert_close(lin.submatrix(), J_ref, rtol=0, atol=tol)


def _check_residual_at(problem, net, batch, weights, lin):
    """r(theta + step) from the linearization equals r of a linearization built at
    theta + step, and leaves the parameters as they were."""
    params = fitted_parameters(problem, net)
    before = [q.detach().clone() for q in params]
    torch.testing.assert_close(lin.residual_at(torch.zeros(lin.n_cols, dtype=torch.float64)), lin.r,
                               rtol=0, atol=1e-13)
    step = 1e-2 * torch.randn(lin.n_cols, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    moved = lin.residual_at(step)
    assert all(torch.equal(q, q0) for q, q0 in zip(params, before))
    with torch.no_grad():
        col = 0
        for q in params:
            q.add_(step[col:col + q.numel()].view_as(q))
            col += q.numel()
    expected = linearize(problem, net, batch, weights).r
    with torch.no_grad():
        for q, q0 in zip(params, before):
            q.copy_(q0)
    torch.testing.assert_close(moved, expected, rtol=0, atol=1e-12 * max(float(expected.abs().max()), 1.0))
    assert float((moved - lin.r).norm()) > 0  # the step moved the residual
    with pytest.raises(ValueError, match="residual_at"):
        lin.residual_at(step[:-1])


@pytest.mark.parametrize("fourier", [False, True], ids=["plain", "fourier"])
@pytest.mark.parametrize("case", list(CASES))
def test_operator_equals_dense_jacobian(case, fourier):
    problem = CASES[case]()
    net = _net(problem, fourier=fourier)
    batch = _batch(problem)
    weights = {"boundary": 3.0} if "boundary" in problem.derivatives else {}
    lin = linearize(problem, net, batch, weights)
    r_ref, J_ref = _reference(problem, net, batch, weights)
    _check_operator(lin, r_ref, J_ref)
    _check_residual_at(problem, net, batch, weights, lin)
    loss = sum(weights.get(k, 1.0) * v for k, v in problem.compute_losses(net, batch).items())
    assert float(lin.r @ lin.r) == pytest.approx(float(loss.detach()), rel=1e-12)
    assert list(lin.slices) == list(problem.compute_losses(net, batch))


class _Periodic1D(Problem):
    """u'' = -pi^2 sin(pi x)... on [0, 2] with the periodic pair u(x_i) = u(x_i + 2) for
    x_i on a line: the "periodic" term reads point i of "left" and of "right"."""

    name = "test-periodic"
    input_names = ("x",)
    bounds = ((0.0, 2.0),)
    derivatives = {"interior": DerivativeSpec(second=(("x", "x"),)), "left": DerivativeSpec(first=("x",)),
                   "right": DerivativeSpec(first=("x",))}

    def sample(self, n, generator, *, progress=1.0):
        x = 2 * torch.rand(n, 1, generator=generator)
        e = torch.rand(max(n // 3, 2), 1, generator=generator) * 0.1
        return {"interior": x, "left": e, "right": e + 2.0}

    def terms(self):
        def pde(jets, batch):
            x = batch["interior"]
            return jets["interior"].d2("x", "x") + math.pi ** 2 * torch.sin(math.pi * x)

        def periodic(jets, batch):
            return torch.cat([jets["left"].u - jets["right"].u, jets["left"].d("x") - jets["right"].d("x")], 1)

        return (Term("pde", ("interior",), "pde", pde), Term("periodic", ("left", "right"), "boundary", periodic))

    def params(self):
        return {}


class _Coefficient(Problem):
    """u_xx = k f with a trainable k (the inverse-problem slot): two coefficient columns."""

    name = "test-coefficient"
    input_names = ("x",)
    bounds = ((0.0, 1.0),)
    derivatives = {"interior": DerivativeSpec(second=(("x", "x"),)), "boundary": DerivativeSpec()}

    def __init__(self):
        self.k = torch.tensor([1.5, -0.5], dtype=torch.float64, requires_grad=True)

    def sample(self, n, generator, *, progress=1.0):
        return {"interior": torch.rand(n, 1, generator=generator), "boundary": torch.tensor([[0.0], [1.0]])}

    def coefficients(self):
        return {"k": self.k}

    def terms(self):
        def pde(jets, batch):
            x = batch["interior"]
            return jets["interior"].d2("x", "x") - self.k[0] * torch.sin(x) - self.k[1] ** 2 * x

        return (Term("pde", ("interior",), "pde", pde),
                Term("boundary", ("boundary",), "boundary", lambda jets, batch: jets["boundary"].u))

    def params(self):
        return {}


@pytest.mark.parametrize("make", [_Periodic1D, _Coefficient], ids=["periodic-pair", "coefficient"])
def test_operator_on_aligned_sets_and_coefficients(make):
    problem = make()
    net = MLP(1, 1, 6, 2, seed=2, activation=Sine(2.0)).double()
    batch = _batch(problem, n=8)
    lin = linearize(problem, net, batch, {"pde": 0.5})
    r_ref, J_ref = _reference(problem, net, batch, {"pde": 0.5})
    _check_operator(lin, r_ref, J_ref)
    _check_residual_at(problem, net, batch, {"pde": 0.5}, lin)
    assert len(lin.params) == len(jacobian_parameters(net)) + len(problem.coefficients())


def test_residual_vector_is_linearize_r_and_casts_the_points():
    problem = Poisson2D()
    net = _net(problem)
    batch32 = problem.sample(9, torch.Generator().manual_seed(1))  # float32 points, a float64 network
    weights = {"boundary": 2.0}
    lin = linearize(problem, net, batch32, weights)
    r = residual_vector(problem, net, batch32, weights)
    assert r.dtype == torch.float64
    torch.testing.assert_close(r, lin.r, rtol=0, atol=1e-14)


def test_declared_sets_are_enforced():
    class Wrong(_Periodic1D):
        def terms(self):
            pde, periodic = super().terms()
            return (pde, Term("periodic", ("left",), "boundary", periodic.residual))

    problem = Wrong()
    net = MLP(1, 1, 4, 1, seed=0, activation=Sine(2.0)).double()
    with pytest.raises(ValueError, match=r"reads the point sets \['right'\], which its Term does not declare"):
        linearize(problem, net, _batch(problem), {})


def test_misaligned_sets_and_bad_coefficients_raise():
    class Misaligned(_Periodic1D):
        def sample(self, n, generator, *, progress=1.0):
            b = super().sample(n, generator)
            return {**b, "right": b["right"][:-1]}

        def terms(self):
            pde, _ = super().terms()
            return (pde, Term("periodic", ("left", "right"), "boundary",
                              lambda jets, batch: jets["left"].u + 0 * jets["right"].u.sum()))

    net = MLP(1, 1, 4, 1, seed=0, activation=Sine(2.0)).double()
    problem = Misaligned()
    with pytest.raises(ValueError, match="the sets of one term must be aligned"):
        linearize(problem, net, _batch(problem), {})

    class Frozen(_Coefficient):
        def coefficients(self):
            return {"k": self.k.detach()}

    problem = Frozen()
    with pytest.raises(ValueError, match=r"coefficients\(\)\['k'\] must be a floating-point tensor with requires_grad"):
        linearize(problem, net, _batch(problem), {})
    lin = linearize(Poisson2D(), _net(Poisson2D()), _batch(Poisson2D()), {})
    with pytest.raises(ValueError, match=r"Linearization.mv: expected a vector \(\d+,\)"):
        lin.mv(torch.zeros(3, dtype=torch.float64))


class _InverseSine(Problem):
    """u_xx + k pi^2 sin(pi x) = 0 with u observed (data term) and k unknown (true 1): the
    coefficient slot end to end."""

    name = "test-inverse-sine"
    input_names = ("x",)
    bounds = ((0.0, 1.0),)
    derivatives = {"interior": DerivativeSpec(second=(("x", "x"),)), "data": DerivativeSpec()}

    def __init__(self):
        self.k = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)

    def sample(self, n, generator, *, progress=1.0):
        return {"interior": torch.rand(n, 1, generator=generator), "data": torch.rand(n, 1, generator=generator)}

    def coefficients(self):
        return {"k": self.k}

    def terms(self):
        def pde(jets, batch):
            return jets["interior"].d2("x", "x") + self.k * math.pi ** 2 * torch.sin(math.pi * batch["interior"])

        def data(jets, batch):
            return jets["data"].u - torch.sin(math.pi * batch["data"])

        return (Term("pde", ("interior",), "pde", pde), Term("data", ("data",), "data", data))

    def params(self):
        return {}


def test_a_trainable_coefficient_is_fitted_by_adam_and_gauss_newton():
    from pinn_sine import train
    from pinn_sine.optim import Adam, GaussNewton

    problem = _InverseSine()
    net = MLP(1, 1, 16, 2, seed=0, activation=Sine(2.0)).double()
    train(problem, net, stages=[Adam(300, lr=1e-2)], batch=64, seed=0, progress=False)
    after_adam = float(problem.k.detach())
    assert after_adam != 0.3  # Adam moves it: the coefficient is among the run's parameters
    train(problem, net, stages=[GaussNewton(30)], batch=64, seed=0, progress=False)
    assert abs(float(problem.k) - 1.0) < 1e-4, (after_adam, float(problem.k))
