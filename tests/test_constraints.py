"""Hard constraints: the fields' closed-form derivatives, the constrained jet against
autograd through the transformed net (values, derivatives and weight gradients), the
data holding exactly, the problems' options, train/resume, the CLI and compare."""
from __future__ import annotations

import json
import math

import pytest
import torch

from pinn_sine import train
from pinn_sine.constraints import (BubbleFactor, CallableField, ConstrainedNet, GaussianFactor, HardConstraint,
                                   PowerFactor, RampFactor, SeparableField, SineFactor, TransfiniteField, box_bubble)
from pinn_sine.derivatives import DerivativeSpec, autograd_jet, forward_jet
from pinn_sine.nets import MLP, FourierFeatures, Sine
from pinn_sine.optim import LBFGS, Adam, GaussNewton
from pinn_sine.problems import AllenCahn1D, Helmholtz2D, HelmholtzPointSource, Inpainting, Poisson2D, Wave1D, Wave2D
from pinn_sine.train import load_checkpoint


def _shifted(x, y):
    """A solution with nonzero, non-separable boundary values (its side derivatives by autograd)."""
    return torch.exp(0.5 * x) * torch.cos(2.0 * y) + x * y ** 2


# Every problem configuration that offers the hard constraint; the user-solution and
# off-centre cases have nonzero boundary data, so g (the transfinite interpolation) is
# exercised, where the defaults' boundary values vanish.
HARD = {
    "poisson-default": lambda: Poisson2D(constraint="hard"),
    "poisson-user-u": lambda: Poisson2D(_shifted, bounds=((-1.0, 0.5), (0.0, 2.0)), constraint="hard"),
    "poisson-default-off-box": lambda: Poisson2D(bounds=((-0.8, 1.1), (-1.0, 0.7)), constraint="hard"),
    "helmholtz-default": lambda: Helmholtz2D(constraint="hard"),
    "helmholtz-half-modes": lambda: Helmholtz2D(a1=1.5, a2=2.5, k=2.0, constraint="hard"),
    "wave1d": lambda: Wave1D(constraint="hard"),
    "wave2d-reflecting": lambda: Wave2D(constraint="hard"),
    "wave2d-absorbing": lambda: Wave2D(boundary="absorbing", source_center=(0.3, -0.2), constraint="hard"),
    "allen-cahn1d": lambda: AllenCahn1D(constraint="hard"),
}


def test_every_problem_that_offers_the_constraint_is_in_the_table():
    from pinn_sine.problems import PROBLEMS

    offered = {cls for cls in PROBLEMS.values() if cls.offers_hard_constraint}
    assert offered == {type(make()) for make in HARD.values()}


def _net(problem, seed=0, fourier=False, width=8):
    inner = MLP(problem.in_dim, problem.out_dim, width, 2, activation=Sine(3.0), seed=seed,
                fourier=FourierFeatures(4, 0.5) if fourier else None).double()
    return problem.constrain(inner)


def _points(problem, n=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    lo = torch.tensor([b[0] for b in problem.bounds], dtype=torch.float64)
    hi = torch.tensor([b[1] for b in problem.bounds], dtype=torch.float64)
    return lo + (hi - lo) * torch.rand(n, problem.in_dim, generator=g, dtype=torch.float64)


def _quantities(jet, spec):
    out = [jet.u] + [jet.d(n) for n in spec.directions()] + [jet.d2(a, b) for a, b in spec.pairs()]
    return out + [jet.laplacian(g) for g in spec.laplacian_groups()]


def _close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10 * max(1.0, float(b.detach().abs().max())))


# ----- the fields ------------------------------------------------------------------------------
FACTORS = [SineFactor(2.5, 0.3), GaussianFactor(0.2, 0.4), BubbleFactor(-1.0, 1.5), PowerFactor(1, 2.0),
           PowerFactor(2, 1.5), PowerFactor(3, 1.0), RampFactor(0.4)]


@pytest.mark.parametrize("factor", FACTORS, ids=lambda f: f.describe("s"))
def test_factor_derivatives_are_autograd_s(factor):
    s = torch.linspace(-0.9, 1.3, 7, dtype=torch.float64).requires_grad_(True)
    f0, f1, f2 = factor.derivatives(s)
    (g,) = torch.autograd.grad(factor.value(s).sum(), s, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), s)
    _close(f0, factor.value(s).detach())
    _close(f1, g.detach())
    _close(f2, h)


def _sides(bounds, n=9):
    """n points on each side of the rectangle ``bounds``, in float64."""
    t = torch.linspace(0, 1, n, dtype=torch.float64)
    (x0, x1), (y0, y1) = bounds
    return torch.cat([torch.stack([torch.full_like(t, x0), y0 + (y1 - y0) * t], 1),
                      torch.stack([torch.full_like(t, x1), y0 + (y1 - y0) * t], 1),
                      torch.stack([x0 + (x1 - x0) * t, torch.full_like(t, y0)], 1),
                      torch.stack([x0 + (x1 - x0) * t, torch.full_like(t, y1)], 1)])


def _field_against_autograd(field, x):
    pairs = [(0, 0), (0, 1), (1, 1), (1, 0)]
    v, d1, d2 = field.evaluate(x, (0, 1), pairs)
    xg = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(field.value(xg).sum(), xg, create_graph=True)
    hess = [torch.autograd.grad(g[:, a].sum(), xg, retain_graph=True)[0] for a in range(2)]
    _close(v, field.value(x))
    for a in range(2):
        _close(d1[a], g[:, a:a + 1].detach())
    for a, b in pairs:
        _close(d2[(a, b)], hess[a][:, b:b + 1])


def test_separable_and_transfinite_fields_match_autograd():
    names = ("x", "y")
    x = torch.rand(11, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2 - 1
    sep = SeparableField(((0.7, ((0, SineFactor(2.0, 0.1)), (1, GaussianFactor(0.1, 0.5)))),
                          (-1.2, ((1, PowerFactor(2, 1.3)),)), (0.4, ())), names)
    _field_against_autograd(sep, x)
    bounds = ((-1.0, 0.5), (-0.5, 1.0))
    for u in (sep, CallableField(lambda p: _shifted(p[:, 0], p[:, 1]), "shifted")):
        coons = TransfiniteField(u, bounds)
        _field_against_autograd(coons, x)
        sides = _sides(bounds)  # equal to u on the four sides
        _close(coons.value(sides), u.value(sides))


def test_bubble_and_time_factor_vanish_where_data_are_given():
    d = box_bubble(((0.0, 2.0), (-1.0, 1.0), (-1.0, 3.0)), (1, 2), ("t", "x", "y"), time=(0, PowerFactor(2, 2.0)))
    x = torch.tensor([[1.0, -1.0, 0.5], [1.0, 1.0, 0.5], [1.0, 0.2, -1.0], [1.0, 0.2, 3.0], [0.0, 0.1, 0.2],
                      [2.0, 0.0, 1.0]], dtype=torch.float64)
    v = d.value(x)
    assert torch.all(v[:5] == 0) and float(v[5]) == pytest.approx(1.0)  # 1 at the centre and t = T
    with pytest.raises(ValueError, match="distinct input columns"):
        SeparableField(((1.0, ((0, SineFactor(1.0)), (0, SineFactor(2.0)))),), ("x", "y"))
    with pytest.raises(ValueError, match="integer p >= 1"):
        PowerFactor(0)


def test_ramp_factor_starts_like_a_square_and_saturates():
    """1 - exp(-(t/tau)^2): value and slope 0 at t = 0, (t/tau)^2 to leading order,
    within exp(-9) of 1 from t = 3 tau; a bad tau is refused."""
    ramp = RampFactor(0.1)
    t = torch.tensor([0.0, 1e-4, 0.3, 1.0], dtype=torch.float64)
    v, d1, _ = ramp.derivatives(t)
    assert float(v[0]) == 0.0 and float(d1[0]) == 0.0
    assert float(v[1]) == pytest.approx(1e-6, rel=1e-7)
    assert torch.all(1 - v[2:] <= math.exp(-9))
    for tau in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="finite tau > 0"):
            RampFactor(tau)


# ----- the jet through a constrained net -----------------------------------------------------
def _specs(problem):
    names = problem.input_names
    specs = dict(problem.derivatives)
    specs["hessian"] = DerivativeSpec.hessian(names)
    specs["laplacian+first"] = DerivativeSpec(first=(names[0],), laplacians=(names[1:] if len(names) > 2
                                                                             else names,))
    return specs


@pytest.mark.parametrize("fourier", [False, True], ids=["plain", "fourier"])
@pytest.mark.parametrize("case", list(HARD))
def test_constrained_jet_equals_autograd_through_the_transformed_net(case, fourier):
    problem = HARD[case]()
    net = _net(problem, fourier=fourier)
    assert isinstance(net, ConstrainedNet)
    x = _points(problem)
    for key, spec in _specs(problem).items():
        jet = forward_jet(net, x, problem.input_names, spec)
        ref = autograd_jet(net, x, problem.input_names, spec)
        qa, qr = _quantities(jet, spec), _quantities(ref, spec)
        for a, b in zip(qa, qr):
            _close(a, b)
        # weight gradients of the same scalar through both engines
        w = torch.linspace(0.5, 1.5, len(qa), dtype=torch.float64)
        params = list(net.parameters())
        ga = torch.autograd.grad(sum(wi * (q ** 2).sum() for wi, q in zip(w, qa)), params)
        gr = torch.autograd.grad(sum(wi * (q ** 2).sum() for wi, q in zip(w, qr)), params)
        for a, b in zip(ga, gr):
            _close(a, b)


def test_data_hold_exactly_whatever_the_network():
    for make in (HARD["poisson-user-u"], HARD["helmholtz-half-modes"], HARD["poisson-default-off-box"]):
        problem = make()
        net = _net(problem, seed=4)
        xb = _sides(problem.bounds)
        torch.testing.assert_close(net(xb), problem.exact(xb), rtol=0, atol=1e-13)
    wave = Wave1D(constraint="hard")
    net = _net(wave, seed=2)
    s = torch.linspace(0, 1, 11, dtype=torch.float64).reshape(-1, 1)
    t0 = torch.cat([torch.zeros_like(s), s], 1)
    jet = autograd_jet(net, t0, wave.input_names, DerivativeSpec(first=("t",)))
    torch.testing.assert_close(jet.u, wave.initial_displacement(s), rtol=0, atol=1e-14)
    assert float(jet.d("t").detach().abs().max()) < 1e-14
    walls = torch.cat([torch.stack([s[:, 0], torch.zeros(11, dtype=torch.float64)], 1),
                       torch.stack([s[:, 0], torch.ones(11, dtype=torch.float64)], 1)])
    assert float(net(walls).detach().abs().max()) < 1e-14
    pulse = Wave2D(constraint="hard")
    net = _net(pulse, seed=1)
    xy = _points(pulse, 12)[:, 1:]
    x0 = torch.cat([torch.zeros(12, 1, dtype=torch.float64), xy], 1)
    jet = forward_jet(net, x0, pulse.input_names, DerivativeSpec(first=("t",)))
    torch.testing.assert_close(jet.u, pulse.initial_displacement(xy[:, :1], xy[:, 1:]), rtol=0, atol=1e-14)
    assert float(jet.d("t").detach().abs().max()) == 0.0


# ----- the problems' options -----------------------------------------------------------------
@pytest.mark.parametrize("case", list(HARD))
def test_hard_problems_drop_the_constrained_terms_and_sets(case):
    hard = HARD[case]()
    removed = set(hard.hard_constraint().conditions)
    batch = {k: v.double() for k, v in hard.sample(16, torch.Generator().manual_seed(0)).items()}
    net = _net(hard)
    jets = {k: forward_jet(net, batch[k], hard.input_names, s) for k, s in hard.derivatives.items()}
    terms = set(hard.losses(jets, batch))
    assert "pde" in terms and not (terms & removed)
    absorbing = case == "wave2d-absorbing"
    assert terms == ({"pde", "boundary"} if absorbing else {"pde"})
    assert set(hard.derivatives) <= set(batch) and "initial" not in batch
    assert ("boundary" in batch) == absorbing
    assert hard.params()["constraint"] == "hard"
    # the interior points of a seed are the soft problem's
    soft = type(hard)(**_soft_kwargs(case))
    soft_batch = soft.sample(16, torch.Generator().manual_seed(0))
    assert torch.equal(soft_batch["interior"], hard.sample(16, torch.Generator().manual_seed(0))["interior"])
    assert soft.reference_params(33) == hard.reference_params(33)
    assert soft.params() != hard.params()


def _soft_kwargs(case):
    return {"poisson-default": {}, "poisson-user-u": {"u": _shifted, "bounds": ((-1.0, 0.5), (0.0, 2.0))},
            "poisson-default-off-box": {"bounds": ((-0.8, 1.1), (-1.0, 0.7))}, "helmholtz-default": {},
            "helmholtz-half-modes": {"a1": 1.5, "a2": 2.5, "k": 2.0}, "wave1d": {}, "wave2d-reflecting": {},
            "wave2d-absorbing": {"boundary": "absorbing", "source_center": (0.3, -0.2)}, "allen-cahn1d": {}}[case]


def test_hard_and_soft_share_one_reference_file():
    from pinn_sine.validation.store import reference_with_info

    soft, hard = Wave1D(), Wave1D(constraint="hard")
    _, first = reference_with_info(soft, 21)
    ref, second = reference_with_info(hard, 21)
    assert first.source == "computed" and second.source == "cache" and second.path == first.path
    assert "constraint" not in ref.params


def test_constrain_and_its_errors():
    soft = Poisson2D()
    inner = MLP(2, 1, 8, 1, seed=0)
    assert soft.constrain(inner) is inner and Inpainting("camera", "random:0.5", size=16).constrain(inner) is inner
    net = Poisson2D(constraint="hard").constrain(inner)
    assert net.inner is inner and (net.in_dim, net.out_dim) == (2, 1)
    assert net.config["width"] == 8 and net.config["constraint"]["conditions"] == ["boundary"]
    assert all(k.startswith("inner.") for k in net.state_dict())
    assert net.transform == Poisson2D(constraint="hard").hard_constraint()
    assert net.transform != Poisson2D(bounds=((-1.0, 2.0), (-1.0, 1.0)), constraint="hard").hard_constraint()
    with pytest.raises(ValueError, match="already constrained"):
        Poisson2D(constraint="hard").constrain(net)
    with pytest.raises(ValueError, match=r'Invalid constraint "exact". Must be one of \[\'soft\', \'hard\'\]'):
        Wave1D(constraint="exact")
    with pytest.raises(ValueError, match="HelmholtzPointSource has no hard constraint.*no Dirichlet data.*PML"):
        HelmholtzPointSource(constraint="hard")
    with pytest.raises(ValueError, match="the image case has no hard constraint"):
        Poisson2D.from_image(size=16).hard_constraint()
    with pytest.raises(ValueError, match="takes 3 inputs, the constraint 2"):
        ConstrainedNet(MLP(3, 1, 4, 1), Poisson2D(constraint="hard").hard_constraint())
    with pytest.raises(TypeError, match="must be a HardConstraint"):
        ConstrainedNet(inner, "u = g + d N")
    assert isinstance(Poisson2D(constraint="hard").hard_constraint(), HardConstraint)


def test_train_refuses_an_unconstrained_net():
    problem = Wave1D(constraint="hard")
    with pytest.raises(ValueError, match=r"constraint='hard'.*got an unconstrained network. Pass problem.constrain"):
        train(problem, MLP(2, 1, 8, 1), steps=1, progress=False)
    other = Wave1D(c=3.0, constraint="hard").constrain(MLP(2, 1, 8, 1))
    with pytest.raises(ValueError, match="got a network with another constraint"):
        train(problem, other, steps=1, progress=False)


# ----- training ------------------------------------------------------------------------------
class _KilledHardPoisson(Poisson2D):
    """A hard-constrained Poisson2D whose residuals raise KeyboardInterrupt after N calls."""

    def __init__(self, stop_after):
        super().__init__(constraint="hard")
        self.stop_after, self.calls = stop_after, 0

    def residuals(self, jets, batch):
        self.calls += 1
        if self.calls > self.stop_after:
            raise KeyboardInterrupt
        return super().residuals(jets, batch)


def _stages():
    return [Adam(4, lr=1e-2), LBFGS(6, chunk=3), GaussNewton(4, batch=24)]


def test_hard_training_through_every_stage_resumes_bit_identical(tmp_path, one_thread):
    kw = dict(batch=24, seed=0, progress=False, log_every=1, checkpoint_every=2)
    problem = Poisson2D(constraint="hard")
    full = _net(problem)
    r_full = train(problem, full, stages=_stages(), **kw)
    assert {"pde"} == {k for k in r_full.history[-1] if k in ("pde", "boundary")}
    assert r_full.history[-1]["loss"] < r_full.history[0]["loss"]
    ck = tmp_path / "ck.pt"
    with pytest.raises(KeyboardInterrupt):
        train(_KilledHardPoisson(21), _net(problem), stages=_stages(), checkpoint=ck, **kw)
    saved = load_checkpoint(ck)
    assert saved["meta"]["phase"] == "gauss_newton" and all(k.startswith("inner.") for k in saved["net"])
    assert saved["meta"]["problem_params"]["constraint"] == "hard"
    assert saved["meta"]["net"]["constraint"]["conditions"] == ["boundary"]
    resumed = _net(problem, seed=7)
    r_res = train(problem, resumed, stages=_stages(), resume=ck, **kw)
    a, b = full.state_dict(), resumed.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    drop = ("time", "step_time")
    assert [{k: v for k, v in r.items() if k not in drop} for r in r_res.history] == \
           [{k: v for k, v in r.items() if k not in drop} for r in r_full.history]


def test_cli_solve_hard_and_compare_both(tmp_path, capsys):
    from pinn_sine.cli import main
    from pinn_sine.compare import compare

    out = tmp_path / "run"
    code = main(["solve", "wave1d", "--constraint", "hard", "--steps", "4", "--batch", "32", "--width", "8",
                 "--depth", "1", "--resolution", "21", "--eval-every", "2", "--out", str(out), "--quiet"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["constraint"] == "hard" and math.isfinite(metrics["rel_l2"])
    with open(out / "history.csv") as fh:
        header = fh.readline()
    assert "pde" in header and "initial" not in header and "boundary" not in header
    hard_ones = r"\['allen-cahn1d', 'helmholtz2d', 'poisson2d', 'wave1d', 'wave2d'\]"
    with pytest.raises(SystemExit, match=r"Inpainting has no constraint option .*" + hard_ones):
        main(["solve", "inpainting", "--constraint", "hard", "--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit, match="HelmholtzPointSource: HelmholtzPointSource has no hard constraint"):
        main(["solve", "helmholtz-point-source", "--constraint", "hard", "--out", str(tmp_path / "x")])

    rows = compare(["wave1d"], ["tanh"], [0], steps=3, width=8, depth=1, out=str(tmp_path / "cmp"),
                   progress=False, constraints=("soft", "hard"))
    assert sorted(r["constraint"] for r in rows) == ["hard", "soft"]
    assert (tmp_path / "cmp" / "cells" / "wave1d__tanh__s0__hard.json").exists()
    assert (tmp_path / "cmp" / "cells" / "wave1d__tanh__s0.json").exists()
    assert "tanh+hard" in (tmp_path / "cmp" / "results.md").read_text()
    with pytest.raises(ValueError, match=r"\['inpainting'\] offer no hard constraint"):
        compare(["inpainting"], ["tanh"], steps=1, out=str(tmp_path / "c2"), constraints=("hard",))
    with pytest.raises(ValueError, match='Invalid constraint "exact"'):
        compare(["wave1d"], ["tanh"], steps=1, out=str(tmp_path / "c2"), constraints=("exact",))
