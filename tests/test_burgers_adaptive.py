"""Burgers1D (its Cole-Hopf solution) and Gauss-Newton with residual-based redraws (issue 31)."""
import math

import pytest
import torch

from pinn_sine import train
from pinn_sine.adaptive import RADSampler, residuals
from pinn_sine.checkpoint import load_checkpoint
from pinn_sine.nets import MLP, Tanh
from pinn_sine.optim import Adam, GaussNewton, stage_from_description
from pinn_sine.problems import Burgers1D, check_problem
from pinn_sine.optim.conformance import interrupting

NU = 0.01 / math.pi


def _u(t, x):
    return Burgers1D().exact(torch.stack([t, x], dim=1).double())[:, 0]


# ----- the exact solution ------------------------------------------------------------------
def test_exact_initial_and_boundary_values():
    x = torch.linspace(-1, 1, 401, dtype=torch.float64)
    assert torch.allclose(_u(torch.zeros_like(x), x), -torch.sin(math.pi * x), atol=1e-14, rtol=0)
    t = torch.linspace(0, 1, 101, dtype=torch.float64)
    for wall in (-1.0, 1.0):
        assert _u(t, torch.full_like(t, wall)).abs().max() < 1e-13


def test_exact_solves_burgers_near_the_shock_too():
    """u_t + u u_x - nu u_xx by autograd in float64, at random points and at points within
    0.01 of the shock (x = 0, t > 1/pi), where |u_x| reaches 152."""
    g = torch.Generator().manual_seed(0)
    t = torch.rand(400, generator=g, dtype=torch.float64)
    x = torch.cat([2 * torch.rand(200, generator=g, dtype=torch.float64) - 1,
                   0.02 * torch.rand(200, generator=g, dtype=torch.float64) - 0.01])
    t[200:] = 0.35 + 0.65 * t[200:]
    tx = torch.stack([t, x], 1).requires_grad_(True)
    u = Burgers1D().exact(tx)[:, 0]
    du = torch.autograd.grad(u.sum(), tx, create_graph=True)[0]
    u_xx = torch.autograd.grad(du[:, 1].sum(), tx)[0][:, 1]
    r = du[:, 0] + u * du[:, 1] - NU * u_xx
    assert du[200:, 1].abs().max() > 50  # the shock's points are in the check
    assert r.abs().max() < 1e-10, float(r.abs().max())


def test_exact_reproduces_basdevant_max_slope():
    """Basdevant et al. 1986 (Comput. Fluids 14): max_t |u_x(t, 0)| = 152.00516 at t = 1.6037/pi."""
    t = torch.linspace(1.600 / math.pi, 1.607 / math.pi, 141, dtype=torch.float64)
    tx = torch.stack([t, torch.zeros_like(t)], 1).requires_grad_(True)
    slope = torch.autograd.grad(Burgers1D().exact(tx).sum(), tx)[0][:, 1].abs()
    i = int(slope.argmax())
    assert abs(float(slope[i]) - 152.00516) < 2e-5, float(slope[i])
    assert abs(float(t[i]) * math.pi - 1.6037) < 1e-4


def test_burgers_conforms_and_its_reference_is_the_exact_solution():
    problem = Burgers1D()
    assert "exact" in check_problem(problem)
    ref = problem.reference(17, cache=False)
    assert ref.solver == "exact" and ref.error_estimate < 1e-13
    tt, xx = torch.meshgrid(torch.as_tensor(ref.coords["t"]), torch.as_tensor(ref.coords["x"]), indexing="ij")
    assert torch.equal(torch.as_tensor(ref.fields["u"]), _u(tt.reshape(-1), xx.reshape(-1)).reshape(17, 17))


@pytest.mark.parametrize("bad, match", [({"nu": 0.0}, "nu must be > 0"), ({"nu": 1e-5}, "nu must be >= 1e-3/pi"),
                                        ({"initial_fraction": 0.0}, "initial_fraction must be > 0"),
                                        ({"sampler": "grid"}, 'Invalid sampler "grid"')])
def test_burgers_refuses_bad_parameters(bad, match):
    with pytest.raises(ValueError, match=match):
        Burgers1D(**bad)


# ----- Gauss-Newton with adaptive redraws ------------------------------------------------
_KilledBurgers = interrupting(Burgers1D, "_pde_residual")  # every loss, linearization and RAD pool reads it


def _net(seed=0):
    return MLP(2, 1, 8, 2, activation=Tanh(), seed=seed).double()


def _adaptive_gn(steps=8, **kw):
    return GaussNewton(steps, batch=32, resample_every=3, adaptive={"name": "rad", "pool_factor": 4}, **kw)


def _clean(history):
    return [{k: v for k, v in row.items() if k not in ("time", "step_time")} for row in history]


@pytest.mark.parametrize("stop_after", [12, 24])  # inside the first batch; after the second redraw
def test_adaptive_gauss_newton_resumes_bit_identically(tmp_path, stop_after):
    kw = dict(batch=32, seed=0, progress=False, log_every=1, checkpoint_every=2)
    full = _net()
    r_full = train(Burgers1D(), full, stages=[Adam(4, lr=1e-2), _adaptive_gn()], **kw)
    assert r_full.history[-1]["redraws"] == 2

    ck = tmp_path / "ck.pt"
    with pytest.raises(KeyboardInterrupt):
        train(_KilledBurgers(stop_after), _net(), stages=[Adam(4, lr=1e-2), _adaptive_gn()], checkpoint=ck, **kw)
    assert load_checkpoint(ck)["meta"]["phase"] == "gauss_newton"
    resumed = _net(seed=7)  # another init: everything must come from the checkpoint
    r_res = train(Burgers1D(), resumed, stages=[Adam(4, lr=1e-2), _adaptive_gn()], resume=ck, checkpoint=ck, **kw)
    assert all(torch.equal(a, b) for a, b in zip(full.state_dict().values(), resumed.state_dict().values()))
    assert _clean(r_res.history) == _clean(r_full.history)


def test_adaptive_draw_concentrates_where_the_residual_is_large():
    """At each draw (seeded), the drawn batch's mean squared residual is well above a
    uniform batch's (1.8x for k = c = 1 here), and more of its points lie in the uniform
    batch's top decile of residuals."""
    problem, seen = Burgers1D(), []

    class Probe(GaussNewton):
        def _adaptive_draw(self, run, points):
            out = super()._adaptive_draw(run, points)
            seen.append([(residuals(problem, run.net, "jet", {"interior": p["interior"]}), p["interior"])
                         for p in (out, points)])
            return out

    stage = Probe(4, batch=512, resample_every=2, adaptive={"name": "rad", "k": 1.0, "c": 1.0})
    train(problem, _net(), stages=[Adam(300, lr=1e-2), stage], batch=512, seed=0, progress=False)

    assert len(seen) == 2
    for (r_drawn, _), (r_uniform, _) in seen:
        # the uniform batch's top decile of residuals: about 10% of a uniform draw, more of this one
        top = float(torch.quantile(r_uniform, 0.9))
        assert float((r_drawn > top).double().mean()) > 0.15
        assert float(r_drawn.mean()) > 1.4 * float(r_uniform.mean()), (float(r_drawn.mean()), float(r_uniform.mean()))


def test_damping_survives_a_redraw():
    seen = []

    class Watched(GaussNewton):
        def _adaptive_draw(self, run, points):
            before = dict(self.search.state_dict())
            out = super()._adaptive_draw(run, points)
            seen.append((before, dict(self.search.state_dict())))
            return out

    stage = Watched(7, batch=32, resample_every=3, adaptive="rad")
    result = train(Burgers1D(), _net(), stages=[Adam(4, lr=1e-2), stage], batch=32, seed=0, progress=False,
                   log_every=1)
    assert len(seen) == 3  # the first batch and two redraws
    for before, after in seen[1:]:
        assert before == after and before["mu"] != stage.damping
    rows = [r for r in result.history if r["phase"] == "gauss_newton"]
    # the step after a redraw starts from the mu the step before left
    assert rows[3]["redraws"] == 1 and rows[2]["redraws"] == 0
    assert seen[1][0]["mu"] == rows[2]["mu"]


def test_adaptive_stage_describes_conforms_and_refuses():
    stage = _adaptive_gn()
    assert stage.describe()["adaptive"] == {"name": "rad", "pool": None, "k": 1.0, "c": 1.0, "refresh_every": 1,
                                            "pool_factor": 4.0, "point_set": "interior"}
    assert stage_from_description(stage.describe()).describe() == stage.describe()
    assert "adaptive" not in GaussNewton(5).describe()  # the default's description is unchanged
    assert GaussNewton(5, adaptive=RADSampler(k=2.0), resample_every=5).adaptive.k == 2.0
    with pytest.raises(ValueError, match="give resample_every too"):
        GaussNewton(5, adaptive="rad")
    with pytest.raises(ValueError, match='adaptive must be None, "rad"'):
        GaussNewton(5, adaptive="rar", resample_every=2)
    with pytest.raises(ValueError, match="takes the options pool, k, c"):
        GaussNewton(5, adaptive={"name": "rad", "q": 1}, resample_every=2)

