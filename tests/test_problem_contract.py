"""The extension contract: checks at construction and first use, the conformance suite
over every registered problem, the registry, and the FD helpers a problem author uses."""
import inspect
import math

import numpy as np
import pytest
import torch

from pinn_sine import sampling, train
from pinn_sine.derivatives import DerivativeSpec
from pinn_sine.nets import MLP
from pinn_sine.problems import (PROBLEMS, ConformanceError, Poisson2D, Problem, check_problem, problem_class,
                                register_problem, unregister_problem)
from pinn_sine.validation import fd, params_hash

# ----- conformance over the registry ---------------------------------------------------------
# Every registered class with its defaults, and under the hard constraint where offered, plus
# the image cases of Poisson2D (a classmethod, not a registered name).
CASES = [pytest.param(cls, {}, id=name) for name, cls in PROBLEMS.items()]
CASES += [pytest.param(cls, {"constraint": "hard"}, id=f"{name}-hard") for name, cls in PROBLEMS.items()
          if cls.offers_hard_constraint]


@pytest.mark.parametrize("cls, kwargs", CASES)
def test_registered_problem_conforms(cls, kwargs):
    checks = check_problem(cls(**kwargs))
    assert {"contract", "engines", "params", "reference", "bad_params"} <= set(checks)
    # a problem with an exact solution has its residual checked, one without does not
    assert ("exact" in checks) == (cls(**kwargs).exact_solution is not None)


@pytest.mark.parametrize("supervise", ["laplacian", "gradient"])
def test_poisson_image_conforms(supervise):
    checks = check_problem(Poisson2D.from_image("camera", size=16, supervise=supervise))
    assert "pointwise" in checks and "exact" not in checks


# ----- a tiny problem and broken variants of it ----------------------------------------------
class Line(Problem):
    """u_xx = -pi^2 sin(pi x) on [0, 1], u(0) = u(1) = 0; u = sin(pi x)."""

    name = "line-test"
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
        return {"interior": sampling.box(n, self.bounds, generator),
                "boundary": torch.tensor([[0.0], [1.0]])}

    def residuals(self, jets, batch):
        x = batch["interior"]
        return {"pde": jets["interior"].d2("x", "x") + math.pi ** 2 * torch.sin(math.pi * x),
                "boundary": jets["boundary"].u}

    def pointwise_residual(self, jets, batch):
        return (self.residuals(jets, batch)["pde"] ** 2).sum(1)

    def params(self):
        return {"scale": self.scale}

    def compute_reference(self, resolution):
        x = np.linspace(0.0, 1.0, resolution)
        sol = fd.FDSolution(coords={"x": x}, fields={"u": np.sin(np.pi * x)}, solver="exact", order=2,
                            spacing={"x": x[1]})
        return sol.to_reference()


def test_line_conforms_and_reference_gets_its_key():
    assert check_problem(Line()) == ["contract", "exact", "engines", "pointwise", "params", "reference",
                                     "bad_params"]
    ref = Line().reference(9, cache=False)
    assert ref.problem == "line-test" and ref.hash == params_hash("line-test", Line().reference_params(9))


def test_missing_name_raises_at_construction():
    class Nameless(Line):
        name = ""

    with pytest.raises(TypeError, match="Nameless has no name; set the class attribute name"):
        Nameless()


def test_sample_without_progress_raises_at_construction():
    class Old(Line):
        name = "old"

        def sample(self, n, generator):
            return Line.sample(self, n, generator)

    with pytest.raises(TypeError, match=r"Old.sample\(self, n, generator\) does not take the keyword progress"):
        Old()


def test_point_set_missing_from_derivatives_is_named_at_first_use():
    class Forgot(Line):
        name = "forgot"
        derivatives = {"interior": DerivativeSpec(second=(("x", "x"),))}

    problem = Forgot()
    batch = problem.sample(8, torch.Generator().manual_seed(0))
    with pytest.raises(KeyError, match=r"read jets\['boundary'\], but Forgot.derivatives names only \['interior'\]"):
        problem.compute_losses(MLP(1, 1, 8, 1), batch)
    with pytest.raises(ConformanceError, match=r"does not draw the point sets \['boundary'\]"):
        check_problem(type("Undrawn", (Line,), {"name": "undrawn", "sample": lambda self, n, g, *, progress=1.0:
                                                 {"interior": sampling.box(n, self.bounds, g)}})())


class Disagrees(Line):
    name = "disagrees"

    def pointwise_residual(self, jets, batch):
        return 2 * super().pointwise_residual(jets, batch)


def test_pointwise_residual_disagreeing_with_losses_raises():
    with pytest.raises(ConformanceError, match="the mean of pointwise_residual differs from the 'pde' loss term"):
        check_problem(Disagrees())
    # and at first use: train() with causal weighting or RAD checks it before the first step
    from pinn_sine.adaptive import RADSampler

    with pytest.raises(ConformanceError, match="mean of pointwise_residual"):
        train(Disagrees(), MLP(1, 1, 8, 1), steps=1, adaptive=RADSampler(pool=64), progress=False)


def test_wrong_exact_solution_is_caught():
    class Wrong(Line):
        name = "wrong"

        def exact(self, x):
            return torch.sin(2 * math.pi * x)

    with pytest.raises(ConformanceError, match=r"the exact solution has loss terms \{'pde'"):
        check_problem(Wrong())


def test_jet_engine_mismatch_is_caught(monkeypatch):
    import pinn_sine.problems.conformance as conformance

    real = conformance.forward_jet

    def off(net, x, names, spec):
        jet = real(net, x, names, spec)
        jet.u = jet.u + 1e-3
        return jet

    monkeypatch.setattr(conformance, "forward_jet", off)
    with pytest.raises(ConformanceError, match="the jet engine's value on point set 'interior' differs"):
        check_problem(Line())


def test_params_that_are_not_json_stable_are_caught():
    class Tupled(Line):
        name = "tupled"

        def params(self):
            return {"scale": self.scale, "bounds": ((0.0, 1.0),)}

    with pytest.raises(ConformanceError, match="changes in a JSON round trip"):
        check_problem(Tupled())


def test_accepted_bad_params_are_caught():
    class Lenient(Line):
        name = "lenient"
        bad_params = ({"scale": 2.0},)

    with pytest.raises(ConformanceError, match=r"Lenient\(\*\*\{'scale': 2.0\}\) was accepted"):
        check_problem(Lenient())

    class Unlisted(Line):
        name = "unlisted"
        bad_params = ()

    with pytest.raises(ConformanceError, match="bad_params is empty"):
        check_problem(Unlisted())


def test_compute_reference_must_return_a_reference_field():
    class Raw(Line):
        name = "raw"

        def compute_reference(self, resolution):
            x = np.linspace(0.0, 1.0, resolution)
            return fd.FDSolution(coords={"x": x}, fields={"u": x}, solver="s", order=2, spacing={"x": x[1]})

    with pytest.raises(TypeError, match=r"returned FDSolution; expected a ReferenceField \(an FDSolution converts "
                                        r"with .to_reference\(\)\)"):
        Raw().reference(9, cache=False)


# ----- the registry ----------------------------------------------------------------------------
def test_register_problem_and_lookup():
    assert problem_class("poisson2d") is Poisson2D
    with pytest.raises(ValueError, match=r'Invalid problem "nope". Must be one of \[.*\'poisson2d\''):
        problem_class("nope")
    with pytest.raises(TypeError):
        PROBLEMS["x"] = Line  # read-only: register_problem is the way in
    assert register_problem(Line) is Line
    try:
        assert PROBLEMS["line-test"] is Line
        other = type("Other", (Line,), {})
        with pytest.raises(ValueError, match='the problem name "line-test" is taken by'):
            register_problem(other)
        register_problem(other, replace=True)
        assert PROBLEMS["line-test"] is other
    finally:
        unregister_problem("line-test")
    assert "line-test" not in PROBLEMS
    with pytest.raises(TypeError, match="needs a Problem subclass"):
        register_problem(int)


def test_cli_sees_a_registered_problem(capsys):
    from pinn_sine.cli import main

    register_problem(Line)
    try:
        assert main(["problems"]) == 0
        assert "line-test" in capsys.readouterr().out
    finally:
        unregister_problem("line-test")


def test_every_builtin_parameter_is_listed_with_its_meaning(capsys):
    """`pinn-sine problems` shows each parameter of each built-in problem with its default
    and the docstring's meaning (none undocumented), and the choices of the string
    options in full."""
    from pinn_sine.cli import _parameter_docs, main

    for name, cls in PROBLEMS.items():
        docs = _parameter_docs(cls)
        params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        assert [p for p in params if p not in docs] == [], name
    assert main(["problems"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "(undocumented)" not in out
    for text in ('"uniform", "sobol" or "lhs"', '"soft" (the "boundary" loss term) or "hard"',
                 "--modes (default: ((1, 1.0), (4, 0.5)))", '"reflecting"', '"absorbing"', '"tv"', "random:"):
        assert text in out, text


# ----- FD helpers --------------------------------------------------------------------------------
def test_to_reference_strides_splits_complex_and_keeps_the_estimate():
    t, x = np.linspace(0, 1, 3), np.linspace(0, 1, 9)
    u = np.arange(27.0).reshape(3, 9) * (1 + 2j)
    sol = fd.FDSolution(coords={"t": t, "x": x}, fields={"u": u}, solver="s", order=2,
                        spacing={"t": 0.1, "x": x[1]}, error_estimate=1e-3)
    ref = sol.to_reference(stride={"x": 4}, spacing={"t": 0.5})
    assert list(ref.fields) == ["u_real", "u_imag"]
    np.testing.assert_array_equal(ref.coords["x"], [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(ref.fields["u_imag"], 2 * np.arange(27.0).reshape(3, 9)[:, ::4])
    assert ref.spacing == {"t": 0.5, "x": 0.5}
    assert ref.attrs["solver_spacing"] == {"t": 0.1, "x": x[1]}
    assert ref.error_estimate == 1e-3 and ref.error_method == "richardson"
    with pytest.raises(ValueError, match=r"stride names \['y'\], which are not coordinates"):
        sol.to_reference(stride={"y": 2})


def test_on_grid_and_sparse_solve():
    import scipy.sparse as sp

    X, Y = np.meshgrid(np.linspace(0, 1, 3), np.linspace(0, 2, 4), indexing="ij")
    values = fd.on_grid(lambda p: (p[:, 0] * p[:, 1]).reshape(-1, 1))(X, Y)
    np.testing.assert_array_equal(values, X * Y)
    A = sp.diags([1.0, 3.0, 1.0], [-1, 0, 1], shape=(5, 5))
    b = np.arange(5.0)
    np.testing.assert_allclose(A @ fd.sparse_solve(A, b), b, atol=1e-12)


def test_resolution_error_is_structured():
    with pytest.raises(fd.ResolutionError) as info:
        fd.helmholtz_2d(lambda X, Y: 0 * X, omega=60.0, c=1.0, bounds=((0, 1), (0, 1)), n=17, pml_width=None)
    err = info.value
    assert isinstance(err, ValueError) and err.n == (17, 17) and err.omega == 60.0
    assert err.points_per_wavelength < err.min_ppw and min(err.n_needed) > 17
