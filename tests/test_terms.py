"""Declared loss terms (Problem.terms): every built-in problem and the examples declare
theirs and pass the "terms" conformance check, residuals() derived from them gives the
values written out by hand, Term refuses bad declarations, a problem written the old way
(residuals() only) still trains and conforms, and check_problem names what is wrong in a
bad declaration (an undeclared set read, a residual that mixes points)."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from pinn_sine import sampling, train
from pinn_sine.derivatives import DerivativeSpec
from pinn_sine.nets import MLP, Sine
from pinn_sine.problems import (PROBLEMS, TERM_KINDS, ConformanceError, Helmholtz2D, HelmholtzPointSource, Inpainting,
                                Poisson2D, Problem, Term, Wave1D, Wave2D, check_problem, unregister_problem)
from pinn_sine.problems import AllenCahn1D, Burgers1D
from pinn_sine.problems.conformance import check_terms
from pinn_sine.validation import fd

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_terms_example", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def examples():
    heat = _load_example("heat1d")
    registered = PROBLEMS.get("advdiff2d")
    adv = _load_example("advdiff2d")  # registers AdvectionDiffusion2D unless one is already
    yield {"heat1d": heat.Heat1D, "advdiff2d": adv.AdvectionDiffusion2D}
    # leave the registry as the other tests expect it (test_problem_contract runs over PROBLEMS)
    if registered is None and "advdiff2d" in PROBLEMS:
        unregister_problem("advdiff2d")


def _net(problem, seed=0):
    net = MLP(problem.in_dim, problem.out_dim, width=16, depth=2, activation=Sine(), first_omega=2.0, seed=seed)
    return problem.constrain(net).double()


def _batch(problem, n=64, seed=0):
    return {k: v.double() for k, v in problem.sample(n, torch.Generator().manual_seed(seed)).items()}


# ----- every built-in problem: what it declares ------------------------------------------------
PDE, BOUNDARY = ("pde", ("interior",), "pde"), ("boundary", ("boundary",), "boundary")
INITIAL = (("initial", ("initial",), "initial"), ("initial_velocity", ("initial",), "initial"))

# (case id, factory, the declared terms as (name, sets, kind), in the order of residuals())
DECLARED = [
    ("poisson2d", lambda: Poisson2D(), (PDE, BOUNDARY)),
    ("poisson2d-hard", lambda: Poisson2D(constraint="hard"), (PDE,)),
    ("poisson2d-image", lambda: Poisson2D.from_image("camera", size=16), (PDE, BOUNDARY)),
    # observed gradients, not an equation: kind "data"
    ("poisson2d-image-gradient", lambda: Poisson2D.from_image("camera", size=16, supervise="gradient"),
     (("gradient", ("interior",), "data"), BOUNDARY)),
    ("helmholtz2d", lambda: Helmholtz2D(), (PDE, BOUNDARY)),
    ("helmholtz2d-hard", lambda: Helmholtz2D(constraint="hard"), (PDE,)),
    ("helmholtz-point-source", lambda: HelmholtzPointSource(), (PDE, BOUNDARY)),
    ("wave1d", lambda: Wave1D(), (PDE, *INITIAL, BOUNDARY)),
    ("wave1d-hard", lambda: Wave1D(constraint="hard"), (PDE,)),
    # no wall points drawn: no "boundary" set, no "boundary" term
    ("wave1d-no-walls", lambda: Wave1D(boundary_fraction=0.0), (PDE, *INITIAL)),
    ("wave2d", lambda: Wave2D(), (PDE, *INITIAL, BOUNDARY)),
    ("wave2d-hard", lambda: Wave2D(constraint="hard"), (PDE,)),
    ("wave2d-absorbing", lambda: Wave2D(boundary="absorbing"), (PDE, *INITIAL, BOUNDARY)),
    # the Engquist-Majda condition is not built into the network: it stays a term
    ("wave2d-absorbing-hard", lambda: Wave2D(boundary="absorbing", constraint="hard"), (PDE, BOUNDARY)),
    ("wave2d-variable-c", lambda: Wave2D(c=lambda x, y: 1.0 + 0.5 * x), (PDE, *INITIAL, BOUNDARY)),
    ("burgers1d", lambda: Burgers1D(), (PDE, ("initial", ("initial",), "initial"), BOUNDARY)),
    # periodic by the network's encoding: no boundary term; "soft": the aligned pair term
    ("allen-cahn1d", lambda: AllenCahn1D(), (PDE, ("initial", ("initial",), "initial"))),
    ("allen-cahn1d-soft-periodic", lambda: AllenCahn1D(periodicity="soft"),
     (PDE, ("initial", ("initial",), "initial"), ("periodic", ("left", "right"), "boundary"))),
    ("allen-cahn1d-hard", lambda: AllenCahn1D(periodicity="soft", constraint="hard"),
     (PDE, ("periodic", ("left", "right"), "boundary"))),
]
EXAMPLE_DECLARED = [
    ("heat1d", (PDE, ("initial", ("initial",), "initial"), BOUNDARY)),
    ("advdiff2d", (PDE, BOUNDARY)),
]


def _check_declared(problem, expected):
    terms = problem.terms()
    assert [(t.name, t.sets, t.kind) for t in terms] == list(expected)
    assert all(t.kind in TERM_KINDS for t in terms)
    check_terms(problem, _net(problem), _batch(problem))
    batch = _batch(problem)
    jets = problem.jets(_net(problem), batch)
    residuals = problem.residuals(jets, batch)
    assert list(residuals) == [t.name for t in terms]  # the history's and Gauss-Newton's row order
    for t in terms:
        assert torch.equal(residuals[t.name], t.residual(jets, batch))
        assert residuals[t.name].shape[0] == batch[t.sets[0]].shape[0]


@pytest.mark.parametrize("make, expected", [pytest.param(m, e, id=i) for i, m, e in DECLARED])
def test_builtin_problem_declares_its_terms(make, expected):
    _check_declared(make(), expected)


@pytest.mark.parametrize("name, expected", [pytest.param(n, e, id=n) for n, e in EXAMPLE_DECLARED])
def test_example_declares_its_terms(examples, name, expected):
    _check_declared(examples[name](), expected)


def test_every_registered_least_squares_problem_declares_terms():
    # A registered problem gets the check from check_problem; this keeps the table above
    # complete. Inpainting writes losses(): its TV prior is not a mean square.
    for name, cls in PROBLEMS.items():
        if cls is Inpainting:
            assert not cls().has_terms
            continue
        problem = cls()
        assert problem.has_terms, name
        assert any(i == name for i, _, _ in DECLARED) or name in dict(EXAMPLE_DECLARED), name


def test_hard_constraint_declares_no_removed_term():
    for soft, hard in ((Poisson2D(), Poisson2D(constraint="hard")), (Wave1D(), Wave1D(constraint="hard")),
                       (Wave2D(), Wave2D(constraint="hard"))):
        removed = {t.name for t in soft.terms()} - {t.name for t in hard.terms()}
        assert removed == set(hard.hard_constraint().conditions)
        assert all(set(t.sets) <= set(hard.derivatives) for t in hard.terms())


# ----- the values: residuals() derived from terms() is today's residual --------------------------
def test_poisson_pde_term_by_hand():
    problem = Poisson2D()
    net, batch = _net(problem), _batch(problem)
    jets = problem.jets(net, batch)
    r = problem.residuals(jets, batch)
    # Lap u by autograd, f and <f^2> from the exact solution by hand
    x = batch["interior"].clone().requires_grad_(True)
    g = torch.autograd.grad(net(x).sum(), x, create_graph=True)[0]
    lap = sum(torch.autograd.grad(g[:, i].sum(), x, retain_graph=True)[0][:, i] for i in range(2)).reshape(-1, 1)
    pi, (xx, yy) = math.pi, batch["interior"].T
    f = -2 * pi ** 2 * torch.sin(pi * xx) * torch.sin(pi * yy) - 8 * pi ** 2 * torch.sin(4 * pi * xx) * torch.sin(
        4 * pi * yy)
    scale = problem._f_scale()
    assert scale == pytest.approx(pi ** 4 + 16 * pi ** 4, rel=0.02)  # <f^2> = (4 pi^4 + 64 pi^4) / 4 on [-1, 1]^2
    torch.testing.assert_close(r["pde"], (lap - f.reshape(-1, 1)) / math.sqrt(scale), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(r["boundary"], jets["boundary"].u - batch["g"], rtol=0, atol=0)
    # the pointwise residual derived from the "pde" term
    torch.testing.assert_close(problem.pointwise_residual(jets, batch), (r["pde"] ** 2).sum(1), rtol=0, atol=0)


def test_wave1d_terms_by_hand():
    problem = Wave1D()  # c = 2, u0 = sin(pi x) + 0.5 sin(4 pi x) on [0, 1]
    net, batch = _net(problem), _batch(problem)
    jets = problem.jets(net, batch)
    r = problem.residuals(jets, batch)
    pi = math.pi
    u2, g2, l2 = (1 + 0.25) / 2, (pi ** 2 + (2 * pi) ** 2) / 2, (pi ** 4 + (8 * pi ** 2) ** 2) / 2
    ji, j0, x0 = jets["interior"], jets["initial"], batch["initial"][:, 1:]
    u0 = torch.sin(pi * x0) + 0.5 * torch.sin(4 * pi * x0)
    tol = dict(rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(r["pde"], (ji.d2("t", "t") - 4 * ji.d2("x", "x")) / (4 * math.sqrt(l2)), **tol)
    torch.testing.assert_close(r["initial"], (j0.u - u0) / math.sqrt(u2), **tol)
    torch.testing.assert_close(r["initial_velocity"], j0.d("t") / (2 * math.sqrt(g2)), **tol)
    torch.testing.assert_close(r["boundary"], jets["boundary"].u / math.sqrt(u2), **tol)


def test_helmholtz_point_source_gains_a_derived_pointwise_residual():
    # It wrote residuals() and no pointwise_residual; its declared "pde" term now gives one.
    problem = HelmholtzPointSource()
    assert problem.has_pointwise
    net, batch = _net(problem), _batch(problem)
    jets = problem.jets(net, batch)
    re, im = problem.residual(jets["interior"], batch["interior"])
    pde = torch.cat([re, im], dim=1) / math.sqrt(problem._f2)
    torch.testing.assert_close(problem.residuals(jets, batch)["pde"], pde, rtol=0, atol=0)
    torch.testing.assert_close(problem.pointwise_residual(jets, batch).mean(), problem.losses(jets, batch)["pde"],
                               rtol=1e-12, atol=0)


def test_heat1d_terms_by_hand(examples):
    problem = examples["heat1d"](nu=0.2)
    net, batch = _net(problem), _batch(problem)
    jets = problem.jets(net, batch)
    r = problem.residuals(jets, batch)
    ji = jets["interior"]
    torch.testing.assert_close(r["pde"], (ji.d("t") - 0.2 * ji.d2("x", "x")) / (0.2 * math.pi ** 2),
                               rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(r["initial"], jets["initial"].u - torch.sin(math.pi * batch["initial"][:, 1:]),
                               rtol=1e-12, atol=1e-12)


# ----- Term refuses bad declarations ------------------------------------------------------------
def _zero(jets, batch):
    return jets["interior"].u


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="", sets=("interior",), kind="pde"), "name must be a non-empty string"),
    (dict(name=3, sets=("interior",), kind="pde"), "name must be a non-empty string"),
    (dict(name="pde", sets=(), kind="pde"), r"'pde': sets must name the point sets its rows read"),
    (dict(name="pde", sets=("interior", "interior"), kind="pde"), "each once"),
    (dict(name="pde", sets=(1,), kind="pde"), "sets must name the point sets"),
    (dict(name="pde", sets=("interior",), kind="bc"), r"kind must be one of \['pde', 'boundary', 'initial', 'data'\]"),
])
def test_term_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Term(residual=_zero, **kwargs)


def test_term_residual_must_be_callable_and_a_single_set_may_be_a_string():
    with pytest.raises(ValueError, match=r"residual must be a callable \(jets, batch\)"):
        Term("pde", ("interior",), "pde", 1.0)
    assert Term("pde", "interior", "pde", _zero).sets == ("interior",)


# ----- small 1-D problems: the old form, a periodic pair, and broken declarations ----------------
class _Line(Problem):
    """u_xx = -pi^2 sin(pi x) on [0, 1], u(0) = u(1) = 0; u = sin(pi x)."""

    input_names = ("x",)
    bounds = ((0.0, 1.0),)
    derivatives = {"interior": DerivativeSpec(second=(("x", "x"),)), "boundary": DerivativeSpec()}
    bad_params = ({"scale": 0.0},)
    check_resolution = 9

    def __init__(self, scale: float = 1.0):
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got scale={scale}.")
        self.scale = scale

    def exact(self, x):
        return torch.sin(math.pi * x)

    def sample(self, n, generator, *, progress=1.0):
        return {"interior": sampling.box(n, self.bounds, generator), "boundary": torch.tensor([[0.0], [1.0]])}

    def pde(self, jets, batch):
        return jets["interior"].d2("x", "x") + math.pi ** 2 * torch.sin(math.pi * batch["interior"])

    def params(self):
        return {"scale": self.scale}

    def compute_reference(self, resolution):
        x = np.linspace(0.0, 1.0, resolution)
        return fd.FDSolution(coords={"x": x}, fields={"u": np.sin(np.pi * x)}, solver="exact", order=2,
                             spacing={"x": x[1]}).to_reference()


class OldLine(_Line):
    """Written before terms(): residuals() and pointwise_residual() by hand."""

    name = "old-line-terms-test"

    def residuals(self, jets, batch):
        return {"pde": self.pde(jets, batch), "boundary": jets["boundary"].u}

    def pointwise_residual(self, jets, batch):
        return (self.pde(jets, batch) ** 2).sum(1)


def test_old_form_still_trains_and_conforms():
    problem = OldLine()
    assert not problem.has_terms and problem.has_residuals and problem.has_pointwise
    assert check_problem(problem) == ["contract", "exact", "engines", "pointwise", "params", "reference",
                                      "bad_params"]
    result = train(problem, MLP(1, 1, 16, 2, activation=Sine(), first_omega=2.0), steps=5, batch=32, lr=1e-2,
                   seed=0, progress=False, log_every=1)
    assert {"pde", "boundary"} <= set(result.history[-1])
    assert all(math.isfinite(row["loss"]) for row in result.history)


class PeriodicLine(_Line):
    """u_xx = -4 pi^2 sin(2 pi x) on [0, 1] with the periodic pair u(0) = u(1) on aligned
    "left" and "right" sets (at times of a trivial second input, so points differ); an
    "anchor" u(1/2) = 0 fixes the constant. u = sin(2 pi x)."""

    name = "periodic-line-terms-test"
    input_names = ("x", "s")  # s: a passive second input, so that left and right points differ row by row
    bounds = ((0.0, 1.0), (0.0, 1.0))
    derivatives = {"interior": DerivativeSpec(second=(("x", "x"),)), "left": DerivativeSpec(),
                   "right": DerivativeSpec(), "anchor": DerivativeSpec()}

    def exact(self, x):
        return torch.sin(2 * math.pi * x[:, :1])

    def sample(self, n, generator, *, progress=1.0):
        s = sampling.box(n // 4, ((0.0, 1.0),), generator)
        return {"interior": sampling.box(n, self.bounds, generator),
                "left": torch.cat([torch.zeros_like(s), s], 1), "right": torch.cat([torch.ones_like(s), s], 1),
                "anchor": torch.tensor([[0.5, 0.5]])}

    def terms(self):
        return (Term("pde", ("interior",), "pde", self.pde),
                Term("periodic", ("left", "right"), "boundary",
                     lambda jets, batch: jets["left"].u - jets["right"].u),
                Term("anchor", ("anchor",), "data", lambda jets, batch: jets["anchor"].u))

    def pde(self, jets, batch):
        return jets["interior"].d2("x", "x") + 4 * math.pi ** 2 * torch.sin(2 * math.pi * batch["interior"][:, :1])

    def compute_reference(self, resolution):
        x = np.linspace(0.0, 1.0, resolution)
        u = np.sin(2 * np.pi * x)[:, None].repeat(resolution, 1)
        return fd.FDSolution(coords={"x": x, "s": x}, fields={"u": u}, solver="exact", order=2,
                             spacing={"x": x[1], "s": x[1]}).to_reference()


def test_periodic_pair_passes():
    problem = PeriodicLine()
    assert check_problem(problem) == ["contract", "terms", "exact", "engines", "pointwise", "params", "reference",
                                      "bad_params"]
    batch = _batch(problem)
    r = problem.residuals(problem.jets(_net(problem), batch), batch)
    assert list(r) == ["pde", "periodic", "anchor"] and r["periodic"].shape == (16, 1)


def test_pointwise_check_skipped_without_the_pointwise_term():
    class NoPde(PeriodicLine):
        name = "no-pde-terms-test"

        def terms(self):
            return tuple(Term("equation", t.sets, t.kind, t.residual) if t.name == "pde" else t
                         for t in super().terms())

    problem = NoPde()
    assert not problem.has_pointwise
    assert check_problem(problem) == ["contract", "terms", "exact", "engines", "params", "reference", "bad_params"]


def _broken(name, terms, **attrs):
    """A PeriodicLine with these terms (a function of the instance) and no exact solution
    (the broken residuals are not zero on it; the "terms" check is what must catch them)."""
    return type(name, (PeriodicLine,), {"name": name, "terms": terms, "exact": Problem.exact, **attrs})()


@pytest.mark.parametrize("problem, match", [
    pytest.param(_broken("undeclared", lambda self: (
        Term("pde", ("interior",), "pde", self.pde),
        Term("periodic", ("left",), "boundary", lambda jets, batch: jets["left"].u - jets["right"].u))),
        r"term 'periodic' changes when the points of 'right' move, but its sets are \['left'\]; add 'right'",
        id="reads-an-undeclared-set"),
    pytest.param(_broken("mixing", lambda self: (
        Term("pde", ("interior",), "pde",
             lambda jets, batch: self.pde(jets, batch) - jets["interior"].u.mean()),)),
        r"term 'pde' is not row-local: moving point \d+ of 'interior' changed rows \[\d+, .*no mean, sum",
        id="mean-over-the-points"),
    pytest.param(_broken("duplicate", lambda self: (
        Term("pde", ("interior",), "pde", self.pde), Term("pde", ("anchor",), "data", lambda j, b: j["anchor"].u))),
        r"declares the term names \['pde'\] more than once", id="duplicate-name"),
    pytest.param(_broken("unnamed", lambda self: (Term("pde", ("inside",), "pde", self.pde),)),
        r"term 'pde' reads the point sets \['inside'\], which derivatives does not name", id="set-not-in-derivatives"),
    pytest.param(_broken("misaligned", lambda self: (
        Term("pair", ("left", "anchor"), "boundary", lambda jets, batch: jets["left"].u),)),
        r"term 'pair' reads the sets \{'left': 16, 'anchor': 1\} \(sizes\), which are not aligned", id="misaligned"),
    pytest.param(_broken("flat", lambda self: (Term("pde", ("interior",), "pde",
                                                     lambda jets, batch: self.pde(jets, batch)[:, 0]),)),
        r"term 'pde' returned \(64,\), expected \(64, c\)", id="not-2-d"),
    pytest.param(_broken("overridden", lambda self: (Term("pde", ("interior",), "pde", self.pde),),
                         residuals=lambda self, jets, batch: {"pde": 2 * self.pde(jets, batch)}),
        r"residuals\(\)\['pde'\] differs from its term's residual", id="residuals-overridden"),
])
def test_wrong_declaration_fails_check_problem(problem, match):
    with pytest.raises(ConformanceError, match=match):
        check_problem(problem)


def test_term_reading_a_set_the_batch_lacks_is_named():
    # (check_problem's contract check stops an undrawn set of derivatives earlier; check_terms,
    # which the trainer may call on any batch, says it too)
    problem = PeriodicLine()
    batch = {k: v for k, v in _batch(problem).items() if k != "left"}
    with pytest.raises(ConformanceError, match=r"term 'periodic' reads the point sets \['left'\], which sample\(\) "
                                               r"does not draw \(\['anchor', 'interior', 'right'\]\)"):
        check_terms(problem, _net(problem), batch)
