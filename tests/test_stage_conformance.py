"""The stage conformance suite (pinn_sine.optim.conformance) over every stage and every
Gauss-Newton search x descent x solver combination, the suite's own failure messages,
and the errors of composing a Gauss-Newton stage from parts."""
from __future__ import annotations

import pytest
import torch

from pinn_sine.optim import GaussNewton
from pinn_sine.optim.conformance import STAGE_CASES, StageConformanceError, check_descent, check_stage
from pinn_sine.optim.descents import Dense, Descent, Direction, NormalCG
from pinn_sine.optim.searches import Nielsen
from pinn_sine.optim.solvers import CG, Cholesky
from pinn_sine.optim.stages import Adam


@pytest.mark.parametrize("case", list(STAGE_CASES))
def test_every_stage_conforms(case):
    checks = check_stage(STAGE_CASES[case])
    expected = ["describe", "state", "resume", "descent"] + (["dense"] if case.startswith("gn") else [])
    assert checks == expected


class _UnseededAdam(Adam):
    """Adam whose step adds noise from the global generator: a resume cannot repeat it."""

    def step(self, run, done):
        out = super().step(run, done)
        with torch.no_grad():
            for p in run.params:
                p.add_(1e-6 * torch.randn(p.shape, dtype=p.dtype))
        return out


class _ObjectState(Adam):
    def state_dict(self):
        return {**super().state_dict(), "odd": object()}


class _BadDescribe(Adam):
    def describe(self):
        return {**super().describe(), "betas": (0.9, 0.999)}  # a tuple comes back as a list


class _WrongDescent(Dense):
    """Returns half the dense step: not the damped solve."""

    def direction(self, lin, lam, solver):
        step = super().direction(lin, lam, solver)
        return Direction(step.d / 2, step.Jd / 2, step.lam)


@pytest.mark.parametrize("make, match", [
    (lambda: _UnseededAdam(12, lr=1e-2), "the resumed run ends with other weights"),
    (lambda: _ObjectState(12), r"state_dict\(\) does not load with weights_only=True"),
    (lambda: _BadDescribe(12), r"describe\(\) changes in a JSON round trip"),
])
def test_the_suite_catches_broken_stages(make, match):
    with pytest.raises(StageConformanceError, match=match):
        check_stage(make)


def test_the_suite_catches_a_wrong_descent():
    with pytest.raises(StageConformanceError, match="differs from the dense damped solve"):
        check_descent(_WrongDescent(), Cholesky())
    with pytest.raises(StageConformanceError, match="relative residual .* in the damped normal equations"):
        check_descent(NormalCG(preconditioner="none"), CG(rtol=1e-8, max_iter=2))


@pytest.mark.parametrize("kw, match", [
    (dict(descent="newton"), r'unknown descent "newton". Must be one of \[\'cg\', \'dense\', \'dual\', \'mixed\', \'sketched\'\]'),
    (dict(search={"damping": 1.0}), r"search must be one of .* a dict with a \"name\""),
    (dict(descent={"name": "cg", "rank": 0}), "NormalCG: rank must be an integer >= 1"),
    (dict(descent={"name": "cg", "ranks": 5}),
     r"descent 'cg' takes the options \['preconditioner', 'rank', 'refresh_every', 'warm_start'\]"),
    (dict(descent="cg", solver="cholesky"), r"the cg descent works with the solvers \['cg'\], not 'cholesky'"),
    (dict(search="trust_region", line_search=True), "line_search is an option of the nielsen search"),
    (dict(search=Nielsen(), damping=1.0), "give damping/line_search inside the search"),
    (dict(solver={"name": "cholesky", "backend": "magma"}), r'Cholesky: invalid backend "magma"'),
    (dict(descent={"name": "dual", "momentum": 1.0}), r"Dual: momentum must be a number in \[0, 1\)"),
    (dict(descent={"name": "cg", "preconditioner": "ilu"}), r'NormalCG: invalid preconditioner "ilu"'),
    (dict(search={"name": "trust_region", "eta": 0.5}), r"TrustRegion: eta must be a number in \[0, 0.25\)"),
    (dict(search={"name": "backtracking", "c": 0.7}), r"Backtracking: c must be a number in \(0, 0.5\)"),
])
def test_composition_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        GaussNewton(5, **kw)


def test_parts_by_name_dict_or_object_are_the_same_stage():
    a = GaussNewton(5, search="trust_region", descent={"name": "cg", "rank": 30})
    b = GaussNewton(5, search={"name": "trust_region"}, descent=NormalCG(rank=30), solver=CG())
    assert a.describe() == b.describe()
    assert GaussNewton(5, damping=0.1, line_search=True).describe()["search"] == \
        {"name": "nielsen", "damping": 0.1, "line_search": True}
    default = GaussNewton(5).describe()
    assert default["descent"] == {"name": "dense", "form": "auto"}
    assert default["solver"] == {"name": "cholesky", "backend": "auto"}
    assert isinstance(GaussNewton(5, descent="dual").descent, Descent)


class _Gradient(Descent):
    """docs/design.md's worked example: steepest descent scaled by the Gauss-Newton model."""

    name = "gradient"
    solves_damped_system = False

    def direction(self, lin, lam, solver):
        g = lin.rmv(lin.r)
        Jg = lin.mv(g)
        t = float(g @ g) / (float(Jg @ Jg) + lam * float(g @ g))
        return Direction(-t * g, -t * Jg, lam)


def test_a_new_descent_is_a_small_class_that_conforms(monkeypatch):
    from pinn_sine.optim import DESCENTS, parse_stage_spec, stage_from_description

    monkeypatch.setitem(DESCENTS, "gradient", _Gradient)  # registered: rebuilt from its describe() by name
    assert check_stage(lambda: GaussNewton(6, batch=32, descent=_Gradient(), search="backtracking")) == \
        ["describe", "state", "resume", "descent", "dense"]
    stage = stage_from_description(parse_stage_spec("gauss_newton:steps=4,descent=gradient"))
    assert isinstance(stage.descent, _Gradient) and stage.steps == 4


def test_mixed_precision_steps_in_float32_then_in_full_precision():
    """A precision schedule: float32 directions (J d recomputed in float64) for the first
    steps, then exactly the inner descent's."""
    from pinn_sine.derivatives.linearization import linearize
    from pinn_sine.nets import MLP, Sine
    from pinn_sine.optim.descents import MixedPrecision
    from pinn_sine.problems import Poisson2D

    problem = Poisson2D()
    net = MLP(2, 1, 8, 2, seed=0, activation=Sine(3.0)).double()
    batch = {k: v.double() for k, v in problem.sample(40, torch.Generator().manual_seed(1)).items()}
    lin = linearize(problem, net, batch, {})
    low = lin.astype(torch.float32)
    assert low.r.dtype == torch.float32 and lin.r.dtype == torch.float64
    v = torch.randn(lin.n_cols, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(low.mv(v.float()).double(), lin.mv(v), rtol=1e-4, atol=1e-5 * float(lin.mv(v).abs().max()))
    torch.testing.assert_close(low.materialize().double(), lin.materialize(), rtol=1e-4, atol=1e-6)
    J = lin.materialize()
    lam = 1e-2 * float((J * J).sum()) / J.shape[1]
    mixed = MixedPrecision("dense", float32_steps=1)
    mixed.start(torch.Generator().manual_seed(0))
    first = mixed.direction(lin, lam, Cholesky())
    dense = Dense().direction(lin, lam, Cholesky())
    assert first.d.dtype == torch.float64 and first.info["float32"] == 1
    assert float((first.d - dense.d).norm() / dense.d.norm()) < 1e-3
    torch.testing.assert_close(first.Jd, lin.mv(first.d), rtol=1e-12, atol=1e-14)  # the model is exact
    second = mixed.direction(lin, lam, Cholesky())
    assert second.info["float32"] == 0 and torch.equal(second.d, dense.d)
    with pytest.raises(ValueError, match="float32_steps must be an integer >= 0"):
        MixedPrecision(float32_steps=-1)
