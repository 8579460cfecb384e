"""Optimizer stages: the residual Jacobian against autograd and torch.func, one
Gauss-Newton step against a dense solve, the damping rule, Gauss-Newton against Adam,
bit-identical resume inside every stage, and the stages' error messages."""
from __future__ import annotations

import math

import pytest
import torch

from pinn_sine import train
from pinn_sine.derivatives import forward_jet
from pinn_sine.derivatives.jacobian import jacobian_parameters, residual_jacobian
from pinn_sine.nets import MLP, FourierFeatures, MetaSin, Sine, Tanh
from pinn_sine.optim import LBFGS, Adam, GaussNewton
from pinn_sine.optim.gauss_newton import _damped_solve_lapack, _damped_solve_torch
from pinn_sine.optim.solvers import CG, Cholesky
from pinn_sine.problems import Helmholtz2D, HelmholtzPointSource, Inpainting, Poisson2D, Wave1D, Wave2D
from pinn_sine.train import load_checkpoint
from pinn_sine.optim.conformance import interrupting

LEAST_SQUARES = [Poisson2D, Helmholtz2D, HelmholtzPointSource, Wave1D, Wave2D]


def _net(problem, width=8, depth=2, seed=0, **kw):
    kw.setdefault("activation", Sine(3.0))
    return MLP(problem.in_dim, problem.out_dim, width, depth, seed=seed, **kw).double()


def _batch(problem, n=10, seed=0):
    return {k: v.double() for k, v in problem.sample(n, torch.Generator().manual_seed(seed)).items()}


def _reverse_mode_jacobian(problem, net, batch, weights):
    """The same residual vector differentiated entry by entry (n backward passes)."""
    params = jacobian_parameters(net)
    jets = {k: forward_jet(net, batch[k], problem.input_names, s) for k, s in problem.derivatives.items()
            if k in batch}
    rows = []
    for name, r in problem.residuals(jets, batch).items():
        rows.append((r * math.sqrt(weights.get(name, 1.0) / r.shape[0])).T.reshape(-1))
    vec = torch.cat(rows)
    J = torch.stack([torch.cat([g.reshape(-1) for g in torch.autograd.grad(v, params, retain_graph=True)])
                     for v in vec])
    return vec.detach(), J


@pytest.mark.parametrize("fourier", [False, True], ids=["plain", "fourier"])
@pytest.mark.parametrize("cls", LEAST_SQUARES, ids=lambda c: c.__name__)
def test_jacobian_equals_reverse_mode_rows(cls, fourier):
    problem = cls()
    net = _net(problem, activation=Tanh() if cls is Wave2D else Sine(3.0),
               fourier=FourierFeatures(4, 1.0) if fourier else None)
    batch = _batch(problem)
    weights = {"boundary": 3.0}
    r, J, slices = residual_jacobian(problem, net, batch, weights)
    r_ref, J_ref = _reverse_mode_jacobian(problem, net, batch, weights)
    assert J.shape == J_ref.shape == (r.numel(), sum(p.numel() for p in net.parameters()))
    torch.testing.assert_close(r, r_ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(J, J_ref, rtol=0, atol=1e-10 * float(J_ref.abs().max()))
    # ||r||^2 is the training loss with the same weights.
    jets = {k: forward_jet(net, batch[k], problem.input_names, s) for k, s in problem.derivatives.items()}
    loss = sum(weights.get(k, 1.0) * v for k, v in problem.losses(jets, batch).items())
    assert float(r @ r) == pytest.approx(float(loss.detach()), rel=1e-12)
    assert slices["boundary"].stop - slices["boundary"].start == batch["boundary"].shape[0] * problem.out_dim


HARD = [lambda: Poisson2D(constraint="hard"), lambda: Helmholtz2D(a1=1.5, a2=2.5, constraint="hard"),
        lambda: Wave1D(constraint="hard"), lambda: Wave2D(constraint="hard"),
        lambda: Wave2D(boundary="absorbing", source_center=(0.3, 0.0), constraint="hard")]


@pytest.mark.parametrize("make", HARD, ids=["poisson", "helmholtz", "wave1d", "wave2d", "wave2d-absorbing"])
def test_jacobian_of_a_constrained_net_equals_reverse_mode_rows(make):
    """u = g + d N: the traces and columns are the inner MLP's, the transform enters
    through the backward pass of the combined jet."""
    problem = make()
    net = problem.constrain(_net(problem, activation=Tanh() if problem.name == "wave2d" else Sine(3.0)))
    batch = _batch(problem)
    weights = {"boundary": 3.0}
    r, J, slices = residual_jacobian(problem, net, batch, weights)
    r_ref, J_ref = _reverse_mode_jacobian(problem, net, batch, weights)
    assert J.shape == J_ref.shape == (r.numel(), sum(p.numel() for p in net.inner.parameters()))
    torch.testing.assert_close(r, r_ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(J, J_ref, rtol=0, atol=1e-10 * float(J_ref.abs().max()))
    assert set(slices) == set(problem.losses({k: forward_jet(net, batch[k], problem.input_names, s)
                                              for k, s in problem.derivatives.items()}, batch))


def test_jacobian_equals_torch_func_jacrev_per_point():
    """An engine-independent reference: per point, torch.func.jacrev over the weights of
    the Poisson residual (Lap u - f) / sqrt(<f^2>), the Laplacian from torch.func.hessian."""
    problem = Poisson2D()
    net = _net(problem, width=6)
    batch = _batch(problem, n=6)
    r, J, slices = residual_jacobian(problem, net, batch, {})
    names = [n for n, _ in net.named_parameters()]
    theta = {n: p.detach() for n, p in net.named_parameters()}
    scale = math.sqrt(problem._f_scale_value)

    def residual(params, x, f):
        def u(y):
            return torch.func.functional_call(net, params, (y.unsqueeze(0),))[0, 0]
        return (torch.func.hessian(u)(x).diagonal().sum() - f[0]) / scale

    rows = torch.func.vmap(torch.func.jacrev(residual), in_dims=(None, 0, 0))(theta, batch["interior"], batch["f"])
    J_ref = torch.cat([rows[n].reshape(rows[n].shape[0], -1) for n in names], dim=1)
    n = batch["interior"].shape[0]
    pde = J[slices["pde"]] * math.sqrt(n)  # undo the 1/sqrt(n) of the mean
    torch.testing.assert_close(pde, J_ref, rtol=0, atol=1e-10 * float(J_ref.abs().max()))


def test_jacobian_refuses_activation_parameters_and_non_least_squares():
    problem = Poisson2D()
    net = _net(problem, activation=MetaSin(K=2))
    with pytest.raises(ValueError, match=r"also trains .*activation parameters.*requires_grad_\(False\)"):
        residual_jacobian(problem, net, _batch(problem), {})
    for p in net.activations.parameters():
        p.requires_grad_(False)
    r, J, _ = residual_jacobian(problem, net, _batch(problem), {})
    assert J.shape[1] == sum(p.numel() for p in net.linears.parameters())
    inpaint = Inpainting("camera", "random:0.5", size=16, prior="tv")
    with pytest.raises(ValueError, match="does not define residuals"):
        train(inpaint, MLP(2, 1, 8, 1, seed=0).double(), stages=[GaussNewton(1, batch=16)], progress=False)


def test_one_step_is_the_dense_damped_solve():
    problem = Poisson2D()
    net = _net(problem)
    theta0 = torch.cat([p.detach().reshape(-1) for p in jacobian_parameters(net)])
    result = train(problem, net, stages=[GaussNewton(1, batch=16, damping=1.0)], batch=16, seed=0,
                   progress=False, log_every=1)
    row = result.history[-1]
    assert row["accepted"] == 1 and row["gain"] > 0
    # The same batch (stage 0's generator) and the reverse-mode Jacobian at theta0.
    fresh = _net(problem)
    batch = {k: v.double() for k, v in problem.sample(16, torch.Generator().manual_seed(0)).items()}
    r, J = _reverse_mode_jacobian(problem, fresh, batch, {})
    lam = row["lambda"]
    d = -torch.linalg.solve(J.T @ J + lam * torch.eye(J.shape[1], dtype=J.dtype), J.T @ r)
    theta1 = torch.cat([p.detach().reshape(-1) for p in jacobian_parameters(net)])
    torch.testing.assert_close(theta1 - theta0, d, rtol=1e-8, atol=1e-10 * float(d.abs().max()))
    predicted = float(r @ r - (r + J @ d) @ (r + J @ d))
    assert row["loss"] == pytest.approx(float(r @ r) - row["gain"] * predicted, rel=1e-9)


class _Lin:
    """A dense stand-in for a Linearization (what the dense descent reads)."""

    def __init__(self, J, r):
        self.J, self.r, self._cache = J, r, {}

    def cached(self, key, make):
        return self._cache.setdefault(key, make())

    def materialize(self):
        return self.J

    def sum_over_ranks(self, x):
        return x


def test_column_scaled_damping_is_marquardts_with_a_running_maximum():
    from pinn_sine.optim.descents import Dense

    g = torch.Generator().manual_seed(0)
    J = torch.randn(30, 8, dtype=torch.float64, generator=g) * torch.logspace(-2, 1, 8, dtype=torch.float64)
    J[:, 5] = 0.0  # a column with no curvature yet: damped by the mean of D
    r = torch.randn(30, dtype=torch.float64, generator=g)
    for form in ("primal", "dual"):
        descent = Dense(form=form, scaling="columns")
        descent.start(torch.Generator())
        lin = _Lin(J, r)
        assert descent.frobenius2(lin) == 8.0  # unit columns: lambda is the relative damping itself
        D = (J * J).sum(0)
        D[5] = D[D > 0].mean()
        expected = -torch.linalg.solve(J.T @ J + 0.1 * torch.diag(D), J.T @ r)
        step = descent.direction(lin, 0.1, Cholesky())
        torch.testing.assert_close(step.d, expected, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(step.Jd, J @ expected)
        # a second batch with weaker columns: D keeps the larger diagonal met (More)
        J2 = J / 2
        step2 = descent.direction(_Lin(J2, r), 0.1, Cholesky())
        expected2 = -torch.linalg.solve(J2.T @ J2 + 0.1 * torch.diag(D), J2.T @ r)
        torch.testing.assert_close(step2.d, expected2, rtol=1e-10, atol=1e-12)
        state = descent.state_dict()
        again = Dense(form=form, scaling="columns")
        again.start(torch.Generator())
        again.load_state_dict(state)
        torch.testing.assert_close(again.direction(_Lin(J2, r), 0.1, Cholesky()).d, step2.d, rtol=0, atol=0)
    assert Dense(scaling="columns").describe() == {"name": "dense", "form": "auto", "scaling": "columns"}
    assert "scaling" not in Dense().describe()
    with pytest.raises(ValueError, match='invalid scaling "rows"'):
        Dense(scaling="rows")


class _QuadraticLin(_Lin):
    """r(theta + x) = r + J x + (x^T H_i x / 2)_i: a residual whose second directional
    derivative along v is exactly (v^T H_i v)_i, so the finite difference of the
    geodesic acceleration is exact."""

    def __init__(self, J, r, H):
        super().__init__(J, r)
        self.H = H

    def residual_at(self, x):
        return self.r + self.J @ x + 0.5 * torch.einsum("j,ijk,k->i", x, self.H, x)


def test_geodesic_acceleration_is_transtrum_and_sethnas_correction():
    from pinn_sine.optim.descents import Dense

    g = torch.Generator().manual_seed(1)
    n, p = 12, 5
    J = torch.randn(n, p, dtype=torch.float64, generator=g)
    r = torch.randn(n, dtype=torch.float64, generator=g)
    H = 0.05 * torch.randn(n, p, p, dtype=torch.float64, generator=g)
    H = H + H.transpose(1, 2)
    lam = 0.7
    for scaling in ("none", "columns"):
        D = (J * J).sum(0) if scaling == "columns" else torch.ones(p, dtype=torch.float64)
        M = J.T @ J + lam * torch.diag(D)
        v = -torch.linalg.solve(M, J.T @ r)
        r_vv = torch.einsum("j,ijk,k->i", v, H, v)
        a = -torch.linalg.solve(M, J.T @ r_vv)
        assert 2 * float(a.norm()) / float(v.norm()) < 0.75  # the case uses the correction
        for form in ("primal", "dual"):
            for solver in (Cholesky(), CG(rtol=1e-14, max_iter=100)):
                descent = Dense(form=form, scaling=scaling, acceleration=True)
                descent.start(torch.Generator())
                step = descent.direction(_QuadraticLin(J, r, H), lam, solver)
                torch.testing.assert_close(step.d, v + a / 2, rtol=1e-9, atol=1e-11)
                # the model of the corrected step: second order along the path
                torch.testing.assert_close(step.Jd, J @ (v + a / 2) + r_vv / 2, rtol=1e-9, atol=1e-11)
                assert step.info["accelerated"] == 1
                assert step.info["acceleration"] == pytest.approx(2 * float(a.norm()) / float(v.norm()), rel=1e-8)
        # a correction larger than max_ratio allows: the plain step
        strict = Dense(scaling=scaling, acceleration=True, max_ratio=1e-6)
        strict.start(torch.Generator())
        step = strict.direction(_QuadraticLin(J, r, H), lam, Cholesky())
        torch.testing.assert_close(step.d, v, rtol=1e-10, atol=1e-12)
        assert step.info["accelerated"] == 0
    # without acceleration the step is the plain one and no residual is evaluated elsewhere
    plain = Dense()
    plain.start(torch.Generator())
    torch.testing.assert_close(plain.direction(_Lin(J, r), lam, Cholesky()).d,
                               -torch.linalg.solve(J.T @ J + lam * torch.eye(p, dtype=torch.float64), J.T @ r))
    assert Dense(acceleration=True).describe() == {"name": "dense", "form": "auto", "acceleration": True,
                                                   "max_ratio": 0.75}
    assert "acceleration" not in Dense().describe()
    with pytest.raises(ValueError, match="acceleration must be True or False"):
        Dense(acceleration="yes")
    with pytest.raises(ValueError, match="max_ratio"):
        Dense(acceleration=True, max_ratio=0.0)


def test_the_dense_descent_skips_dampings_known_not_to_factor():
    from pinn_sine.optim.descents import Dense
    from pinn_sine.optim.solvers import LinearSolver

    class Indefinite(LinearSolver):
        """Cholesky that refuses any damping below 1.5e-3 ||J||_F^2, counting its calls."""
        name = "indefinite"

        def __init__(self):
            self.calls = 0

        def factored(self, J, lam, form="auto"):
            self.calls += 1
            if lam < 1.5e-3 * float((J * J).sum()):
                return None
            return Cholesky().factored(J, lam, form)

    g = torch.Generator().manual_seed(4)
    J = torch.randn(10, 4, dtype=torch.float64, generator=g)
    r = torch.randn(10, dtype=torch.float64, generator=g)
    fro2 = float((J * J).sum())
    solver, descent = Indefinite(), Dense()
    descent.start(torch.Generator())
    first = descent.direction(_Lin(J, r), 1e-7 * fro2, solver)
    assert solver.calls == 6 and first.lam == pytest.approx(1e-2 * fro2)  # 1e-7 ... 1e-3 fail
    solver.calls = 0
    again = descent.direction(_Lin(J, r), 1e-7 * fro2, solver)
    assert solver.calls == 1 and again.lam == first.lam  # straight to the damping that factors
    torch.testing.assert_close(again.d, first.d, rtol=0, atol=0)
    assert descent.direction(_Lin(J, r), 0.5 * fro2, solver).lam == 0.5 * fro2  # a larger one as asked
    state = descent.state_dict()
    assert state["no_factor"] == pytest.approx(1e-3, rel=1e-6)
    resumed = Dense()
    resumed.start(torch.Generator())
    resumed.load_state_dict(state)
    solver.calls = 0
    assert resumed.direction(_Lin(J, r), 1e-7 * fro2, solver).lam == first.lam and solver.calls == 1


def test_a_solver_with_only_damped_still_gives_a_factored_map():
    from pinn_sine.optim.solvers import LinearSolver

    class Lstsq(LinearSolver):
        name = "lstsq"

        def damped(self, J, r, lam, form="auto"):
            p = J.shape[1]
            A = torch.cat([J, lam ** 0.5 * torch.eye(p, dtype=J.dtype)])
            return -torch.linalg.lstsq(A, torch.cat([r, torch.zeros(p, dtype=r.dtype)]).unsqueeze(1)).solution[:, 0]

    g = torch.Generator().manual_seed(2)
    J = torch.randn(9, 4, dtype=torch.float64, generator=g)
    r = torch.randn(9, dtype=torch.float64, generator=g)
    torch.testing.assert_close(Lstsq().factored(J, 0.2)(r), Cholesky().damped(J, r, 0.2), rtol=1e-10, atol=1e-12)
    with pytest.raises(NotImplementedError, match="neither factored"):
        LinearSolver().factored(J, 0.2)


def test_dual_form_equals_primal_form_on_both_backends():
    torch.manual_seed(0)
    for n, p in ((7, 12), (12, 7)):  # fewer residuals than parameters (dual form), then more (primal)
        J = torch.randn(n, p, dtype=torch.float64)
        r = torch.randn(n, dtype=torch.float64)
        expected = -torch.linalg.solve(J.T @ J + 0.3 * torch.eye(p, dtype=J.dtype), J.T @ r)
        for form in ("auto", "primal", "dual"):
            for backend in ("lapack", "torch"):
                d = Cholesky(backend).damped(J, r, 0.3, form)
                torch.testing.assert_close(d, expected, rtol=1e-10, atol=1e-12)
            torch.testing.assert_close(CG(rtol=1e-14, max_iter=100).damped(J, r, 0.3, form), expected,
                                       rtol=1e-9, atol=1e-11)
        torch.testing.assert_close(_damped_solve_torch(J, r, 0.3), expected, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(_damped_solve_lapack(J, r, 0.3), expected, rtol=1e-10, atol=1e-12)


class _SpoiledPoisson(Poisson2D):
    """Poisson2D whose loss evaluations number ``spoil`` (counted from 0) are 1e6 times
    too large: the Gauss-Newton trial point of that step looks like a failure."""

    def __init__(self, spoil):
        super().__init__()
        self.spoil, self.calls = set(spoil), 0

    def losses(self, jets, batch):
        out = super().losses(jets, batch)
        if not torch.is_grad_enabled():  # the stage's trial evaluations run without grad
            if self.calls in self.spoil:
                out = {k: v * 1e6 for k, v in out.items()}
            self.calls += 1
        return out


def test_damping_rises_after_a_rejected_step_and_falls_after_good_ones():
    # Each step evaluates the trial point once (accepted) or twice (rejected: the
    # restored point is evaluated again). Spoil the trial of the third step.
    problem = _SpoiledPoisson(spoil={2})
    net = _net(problem)
    result = train(problem, net, stages=[GaussNewton(6, batch=32, damping=1.0)], batch=32, seed=0,
                   progress=False, log_every=1)
    rows = result.history
    accepted = [r["accepted"] for r in rows]
    assert accepted[2] == 0 and all(a == 1 for i, a in enumerate(accepted) if i != 2), accepted
    # Nielsen's rule: an accepted step scales mu by max(1/3, 1 - (2 rho - 1)^3) (down
    # for a gain ratio rho > 1/2), a rejected one by nu = 2 (doubling while rejected).
    mu = [1.0] + [r["mu"] for r in rows]
    for i, r in enumerate(rows):
        if r["accepted"]:
            factor = max(1 / 3, 1 - (2 * r["gain"] - 1) ** 3)
            assert mu[i + 1] == pytest.approx(mu[i] * factor, rel=1e-12), (i, mu)
        else:
            assert mu[i + 1] == pytest.approx(2 * mu[i], rel=1e-12), (i, mu)
    assert mu[3] > mu[2] and min(mu[4:]) < mu[3]  # up after the rejection, down after good steps
    assert rows[2]["loss"] == pytest.approx(rows[1]["loss"], rel=1e-12)  # the rejected step changed nothing
    assert rows[-1]["loss"] < rows[1]["loss"]


def test_gauss_newton_reaches_a_loss_adam_cannot_in_the_same_steps():
    problem = Poisson2D()
    losses = {}
    for label, stage in (("gn", GaussNewton(30, batch=64, damping=0.1)),
                         ("adam", Adam(30, lr=1e-2, resample_every="fixed"))):
        net = _net(problem, width=16, first_omega=4.0)
        result = train(problem, net, stages=[stage], batch=64, seed=0, progress=False, log_every=30)
        losses[label] = result.history[-1]["loss"]
    # Measured on the same 64 + 16 fixed points from the same start, 30 steps: Gauss-Newton
    # 4.5e-11 (the 337-parameter net fits the batch), Adam 0.81.
    assert losses["gn"] < 1e-8 and losses["adam"] > 0.1, losses


_KilledPoisson = interrupting(Poisson2D)  # raises KeyboardInterrupt on residual evaluation number stop_after


def _stages():
    return [Adam(6, lr=1e-2), LBFGS(12, chunk=3), GaussNewton(6, batch=32)]


def _weights(net):
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("stop_after, phase", [(5, "adam"), (20, "lbfgs"), (36, "gauss_newton")])
def test_resume_inside_every_stage_is_bit_identical(tmp_path, stop_after, phase):
    kw = dict(batch=32, seed=0, progress=False, log_every=1, checkpoint_every=2)
    full = _net(Poisson2D())
    r_full = train(Poisson2D(), full, stages=_stages(), **kw)

    ck = tmp_path / "ck.pt"
    with pytest.raises(KeyboardInterrupt):
        train(_KilledPoisson(stop_after), _net(Poisson2D()), stages=_stages(), checkpoint=ck, **kw)
    saved = load_checkpoint(ck)
    assert saved["meta"]["phase"] == phase, saved["meta"]["phase"]

    resumed = _net(Poisson2D(), seed=7)  # another init: everything must come from the checkpoint
    r_res = train(Poisson2D(), resumed, stages=_stages(), resume=ck, checkpoint=ck, **kw)
    a, b = _weights(full), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    drop = ("time", "step_time")
    assert [{k: v for k, v in row.items() if k not in drop} for row in r_res.history] == \
           [{k: v for k, v in row.items() if k not in drop} for row in r_full.history]
    assert load_checkpoint(ck)["meta"]["phase"] == "done"


def test_resume_refuses_other_stages(tmp_path):
    ck = tmp_path / "ck.pt"
    train(Poisson2D(), _net(Poisson2D()), stages=[Adam(2)], batch=16, progress=False, checkpoint=ck)
    with pytest.raises(ValueError, match=r"written by a run with the stages \['adam'\]; this run has \['lbfgs'\]"):
        train(Poisson2D(), _net(Poisson2D()), stages=[LBFGS(2)], batch=16, progress=False, resume=ck)


def test_finished_last_stage_continues_with_more_steps(tmp_path):
    ck = tmp_path / "ck.pt"
    kw = dict(batch=32, seed=0, progress=False, log_every=1)
    once = _net(Poisson2D())
    r_once = train(Poisson2D(), once, stages=[Adam(2), GaussNewton(4, batch=32)], **kw)
    twice = _net(Poisson2D())
    train(Poisson2D(), twice, stages=[Adam(2), GaussNewton(2, batch=32)], checkpoint=ck, **kw)
    r_twice = train(Poisson2D(), twice, stages=[Adam(2), GaussNewton(4, batch=32)], resume=ck, **kw)
    assert [r["step"] for r in r_twice.history] == [1, 2, 3, 4, 5, 6]
    assert r_twice.history[-1]["loss"] == r_once.history[-1]["loss"]


@pytest.mark.parametrize("make, match", [
    (lambda: Adam(-1), "Adam: steps must be an integer >= 0"),
    (lambda: Adam(5, lr=0), r"Adam: lr must be > 0 \(or None"),
    (lambda: Adam(5, schedule="linear"), r'Invalid schedule "linear". Must be one of'),
    (lambda: Adam(5, final_lr_factor=2), r"final_lr_factor must be in \(0, 1\]"),
    (lambda: Adam(5, betas=(0.9, 1.0)), r"betas must each be in \[0, 1\)"),
    (lambda: Adam(5, resample_every=0), 'resample_every must be an integer >= 1 or "fixed"'),
    (lambda: LBFGS(2.5), "LBFGS: steps must be an integer >= 0"),
    (lambda: LBFGS(5, batch=0), r"LBFGS: batch must be an integer >= 1 \(interior points\) or None"),
    (lambda: LBFGS(5, history_size=0), "history_size must be an integer >= 1"),
    (lambda: GaussNewton(5, damping=0), "GaussNewton: damping must be > 0"),
    (lambda: GaussNewton(5, damping=float("inf")), "damping must be > 0"),
    (lambda: GaussNewton(5, line_search="yes"), "line_search must be True or False"),
    (lambda: GaussNewton(5, resample_every=0), "GaussNewton: resample_every must be an integer >= 1"),
    (lambda: GaussNewton(5, max_memory=-1), "max_memory must be > 0"),
])
def test_stages_reject_bad_settings(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_train_rejects_mixed_and_bad_stage_lists():
    problem = Poisson2D()
    with pytest.raises(ValueError, match=r"got stages= and \['steps', 'lbfgs_steps'\]"):
        train(problem, _net(problem), stages=[Adam(1)], steps=5, lbfgs_steps=2, progress=False)
    with pytest.raises(ValueError, match="stages is empty"):
        train(problem, _net(problem), stages=[], progress=False)
    with pytest.raises(TypeError, match="stages must hold pinn_sine.optim stages"):
        train(problem, _net(problem), stages=["adam"], progress=False)
    stage = Adam(1)
    with pytest.raises(ValueError, match="the same stage object appears twice"):
        train(problem, _net(problem), stages=[stage, stage], progress=False)
    with pytest.raises(ValueError, match=r"train\(\) needs stages="):
        train(problem, _net(problem), progress=False)
    with pytest.raises(MemoryError, match=r"GaussNewton \(dense descent\): about \d+ residuals x \d+ parameters.*max_memory"):
        train(problem, _net(problem, width=32), stages=[GaussNewton(1, batch=256, max_memory=1e5)], progress=False)


def test_adam_lr_none_is_the_problems_default():
    problem = Wave1D()
    assert problem.default_lr != 1e-3
    result = train(problem, _net(problem), stages=[Adam(1, schedule="constant")], batch=16, progress=False,
                   log_every=1)
    assert result.history[-1]["lr"] == pytest.approx(problem.default_lr)


def test_float32_gauss_newton_warns():
    problem = Poisson2D()
    net = MLP(2, 1, 8, 1, activation=Sine(3.0), seed=0)
    with pytest.warns(RuntimeWarning, match="GaussNewton in float32 stalls"):
        train(problem, net, stages=[GaussNewton(1, batch=16)], batch=16, progress=False)


def test_cli_solve_runs_gauss_newton(tmp_path):
    import json

    from pinn_sine.cli import main

    out = tmp_path / "run"
    code = main(["solve", "poisson2d", "--steps", "4", "--gn-steps", "3", "--gn-batch", "48", "--batch", "32",
                 "--width", "8", "--depth", "1", "--dtype", "float64", "--resolution", "33", "--out", str(out),
                 "--quiet"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert [s["stage"] for s in metrics["stages"]] == ["adam", "gauss_newton"]
    assert metrics["stages"][1]["batch"] == 48 and metrics["gn_steps"] == 3
    header = (out / "history.csv").read_text().splitlines()[0].split(",")
    assert {"lambda", "gain", "step_time"} <= set(header)


def test_nielsen_min_damping_holds_mu_at_its_floor():
    from pinn_sine.optim.searches import Model, Nielsen

    search = Nielsen(damping=1e-3, min_damping=1e-6)
    model = Model(rJd=-1.0, JdJd=1.0, dnorm=1.0)  # predicted decrease 1
    mus = []
    for _ in range(12):  # every step gains exactly its prediction (rho = 1): mu / 3 each time
        result = search.run(lambda alpha: 1.0, 2.0, model)
        assert result.accepted and result.gain == 1.0
        mus.append(search.mu)
    assert mus[:6] == pytest.approx([1e-3 / 3 ** k for k in range(1, 7)], rel=1e-12)
    assert mus[-1] == 1e-6 and min(mus) == 1e-6  # the floor, never below
    assert search.damping(2.0) == 2e-6
    described = search.describe()
    assert described["min_damping"] == 1e-6
    assert "min_damping" not in Nielsen().describe()  # the default keeps earlier descriptions as they were
    stage = GaussNewton(3, search=described)
    assert stage.describe()["search"] == described and stage.search.min_damping == 1e-6
    bad_values = ((0.0, "min_damping must be > 0"), (1e-2, r"min_damping must lie in \[1e-15, damping=0.001\]"),
                  (1e-16, r"must lie in \[1e-15"))
    for bad, match in bad_values:
        with pytest.raises(ValueError, match=match):
            Nielsen(damping=1e-3, min_damping=bad)
