"""Inverse problems: unknown parameters (declaration, transforms, Jacobian columns,
training, checkpoints) and their Gauss-Newton standard errors (pinn_sine.inverse)."""
import copy
import math
import statistics

import pytest
import torch

from pinn_sine import train
from pinn_sine.checkpoint import CheckpointError, load_checkpoint
from pinn_sine.derivatives import linearize
from pinn_sine.inverse import covariance, covariance_gram, estimate
from pinn_sine.nets import build_net
from pinn_sine.observations import Observations, synthetic
from pinn_sine.optim import Adam, GaussNewton
from pinn_sine.problems import Helmholtz2D, Poisson2D, Wave1D, Wave2D, check_problem
from pinn_sine.problems.unknowns import Unknown, parse_unknown

ONE_MODE = ((1, 1.0),)


def _wave(guess=1.5, n_obs=60, noise=0.0, seed=0, points=None):
    """Wave1D with one mode (u = sin(pi x) cos(2 pi t)), c unknown, observed at n_obs points."""
    p = Wave1D(modes=ONE_MODE)
    obs = synthetic(p, n_obs if points is None else points, noise=noise, seed=seed)
    return p.declare_unknown("c", guess, lower=0.5, upper=4.0).observe(obs)


# ----- declarations and transforms ------------------------------------------------------
@pytest.mark.parametrize("lower,upper,kind", [(0.5, 4.0, "sigmoid"), (0.0, None, "exp"), (None, 3.0, "neg-exp"),
                                              (None, None, "identity")])
def test_transforms_invert_and_differentiate(lower, upper, kind):
    u = Unknown("c", 1.7, lower, upper)
    assert u.transform == kind
    z = u.initial()
    assert z.dtype == torch.float64 and z.requires_grad
    assert float(u.value(z.detach())) == pytest.approx(1.7, rel=1e-14)
    zs = torch.linspace(-6.0, 6.0, 25, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(u.value(zs).sum(), zs)
    assert torch.allclose(u.derivative(zs.detach()), g, rtol=1e-13, atol=0)
    values = u.value(zs.detach())
    if lower is not None:
        assert bool((values > lower).all())
    if upper is not None:
        assert bool((values < upper).all())


def test_vector_unknown_round_trips():
    u = Unknown("a", (0.1, -0.2, 0.3), -1.0, 1.0)
    assert u.shape == (3,)
    assert torch.allclose(u.value(u.initial()).detach(), torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64))


@pytest.mark.parametrize("kwargs,match", [
    ({"guess": 5.0, "lower": 0.5, "upper": 4.0}, "not strictly inside the bounds"),
    ({"guess": 1.0, "lower": 2.0, "upper": 1.5}, "lower < upper"),
    ({"guess": float("nan")}, "finite number"),
    ({"guess": ()}, "empty sequence"),
])
def test_bad_unknowns_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Unknown("c", **kwargs)


def test_declaring_what_a_problem_cannot_recover_is_an_error():
    with pytest.raises(ValueError, match=r"no parameter 'k' that can be unknown; the parameters it can recover: \['c'\]"):
        Wave1D().declare_unknown("k", 1.0)
    with pytest.raises(ValueError, match="the parameters it can recover: none"):
        Poisson2D().declare_unknown("k", 1.0)
    with pytest.raises(ValueError, match="admits values below 0"):
        Wave1D().declare_unknown("c", 1.0, lower=-1.0)
    with pytest.raises(ValueError, match="not strictly inside the bounds"):
        Wave1D().declare_unknown("c", 5.0, upper=4.0)
    with pytest.raises(ValueError, match="already unknown"):
        Wave1D().declare_unknown("c", 1.0).declare_unknown("c", 1.0)
    with pytest.raises(ValueError, match="is a scalar, got a guess of shape"):
        Wave1D().declare_unknown("c", (1.0, 2.0))
    with pytest.raises(ValueError, match="only for a constant wave speed"):
        Wave2D(c=lambda x, y: 1.0 + 0.1 * x).declare_unknown("c", 1.0)


def test_a_positive_parameter_is_kept_positive_by_default():
    p = Wave1D().declare_unknown("c", 1.0)
    assert p.unknowns["c"].describe() == {"guess": 1.0, "lower": 0.0, "upper": None, "transform": "exp"}
    assert p.coefficient_values() == {"c": pytest.approx(1.0, rel=1e-15)}
    assert p.coefficient("c").requires_grad and Wave1D().coefficient("c") == 2.0


@pytest.mark.parametrize("spec,expected", [("c=1.0:0.5:4.0", ("c", 1.0, 0.5, 4.0)), ("k=2", ("k", 2.0, None, None)),
                                           ("c=1.0::4", ("c", 1.0, None, 4.0)),
                                           ("velocity=0*4:-1:1", ("velocity", (0.0,) * 4, -1.0, 1.0))])
def test_parse_unknown(spec, expected):
    u = parse_unknown(spec)
    assert (u.name, u.guess, u.lower, u.upper) == expected


@pytest.mark.parametrize("spec", ["c", "c=1:2", "c=x", "=1.0", "velocity=0*x", "velocity=0*0"])
def test_parse_unknown_refuses_bad_specs(spec):
    with pytest.raises(ValueError, match="NAME=GUESS|not a number|count N >= 1"):
        parse_unknown(spec)


def test_the_unknown_leaves_the_reference_key_and_normalisation_alone():
    plain = Wave1D(modes=ONE_MODE)
    p = _wave()
    assert p.params() == plain.params()
    assert p.inverse_record()["unknowns"] == {"c": {"guess": 1.5, "lower": 0.5, "upper": 4.0,
                                                    "transform": "sigmoid"}}
    assert plain.inverse_record() is None
    assert [t.name for t in p.terms()] == [t.name for t in plain.terms()] + ["data"]
    assert p.terms()[-1].kind == "data" and p.terms()[-1].sets == ("observations",)


def test_observations_of_another_problem_are_refused():
    obs = synthetic(Wave1D(modes=ONE_MODE), 10, seed=0)
    with pytest.raises(ValueError, match="input"):
        Helmholtz2D().observe(obs)
    with pytest.raises(TypeError, match="Observations"):
        Wave1D().observe({"points": obs.points})
    outside = Observations.from_arrays(torch.tensor([[0.5, 1.5]], dtype=torch.float64), torch.zeros(1, 1),
                                       input_names=("t", "x"))
    with pytest.raises(ValueError, match="outside"):
        Wave1D().observe(outside)


def test_an_inverse_problem_passes_the_conformance_suite():
    check_problem(_wave(n_obs=20))


# ----- the Jacobian's coefficient columns -------------------------------------------------
def _point_source_omega(centers=(0.0, 0.0)):
    from pinn_sine.observations import ring
    from pinn_sine.problems import HelmholtzPointSource

    p = HelmholtzPointSource(source_center=centers)
    obs = Observations.from_arrays(ring((0.0, 0.0), 0.4, 6), torch.zeros(6, p.out_dim), input_names=p.input_names)
    return p.declare_unknown("omega", 8.0, lower=1.0, upper=30.0).observe(obs)


@pytest.mark.parametrize("make", [lambda: _wave(n_obs=12), _point_source_omega,
                                  lambda: _point_source_omega([(0.0, 0.0), (0.2, 0.1)]),
                                  lambda: Helmholtz2D().declare_unknown("k", 0.7, lower=0.1, upper=3.0).observe(
                                      synthetic(Helmholtz2D(), 12, seed=1))])
def test_the_coefficient_column_equals_finite_differences_and_reverse_mode(make):
    problem = make()
    net = build_net(problem, "siren", width=8, depth=2, seed=3).double()
    batch = {k: v.double() for k, v in problem.draw(16, torch.Generator().manual_seed(0)).items()}
    weights = {"data": 3.0}
    lin = linearize(problem, net, batch, weights)
    J = lin.materialize()
    (name,) = problem.unknowns
    z = problem.coefficients()[name]
    column = J[:, -1]

    def residual(zv):
        with torch.no_grad():
            z.copy_(zv)
        return linearize(problem, net, batch, weights).r

    z0 = z.detach().clone()
    h = 1e-6
    fd = (residual(z0 + h) - residual(z0 - h)) / (2 * h)
    residual(z0)
    assert torch.allclose(column, fd, rtol=1e-6, atol=1e-8 * float(column.abs().max()))
    # reverse mode: the gradient of each row's weighted residual with respect to z
    rows = []
    for term, r in problem.residuals(problem.jets(net, batch), batch).items():
        scale = math.sqrt(weights.get(term, 1.0) / r.shape[0])
        for c in range(r.shape[1]):
            for i in range(r.shape[0]):
                (g,) = torch.autograd.grad(r[i, c] * scale, z, retain_graph=True, allow_unused=True)
                rows.append(0.0 if g is None else float(g))
    assert torch.allclose(column, torch.tensor(rows, dtype=torch.float64), rtol=1e-10, atol=1e-12)


# ----- training ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted():
    """A tiny seeded inverse Wave1D fitted by Adam then Gauss-Newton: (problem, net, result)."""
    problem = _wave(guess=1.5)
    net = build_net(problem, "siren", width=16, depth=2, seed=0).double()
    result = train(problem, net, stages=[Adam(200, lr=2e-3), GaussNewton(80, batch=256)], seed=0, progress=False,
                   log_every=10, stall=None)
    return problem, net, result


def test_gauss_newton_recovers_the_wave_speed(fitted):
    problem, net, result = fitted
    assert result.coefficients["c"] == pytest.approx(2.0, rel=1e-4)
    assert result.history[-1]["coef_c"] == result.coefficients["c"]
    adam_end = [r for r in result.history if r["phase"] == "adam"][-1]["coef_c"]
    assert abs(adam_end - 2.0) > 10 * abs(result.coefficients["c"] - 2.0)  # Gauss-Newton did the recovering
    est = estimate(problem, net, n=256)["c"]
    assert est.truth == 2.0 and est.rel_error == pytest.approx(abs(result.coefficients["c"] - 2.0) / 2.0)
    assert 0 < est.std_error < 1e-3


def test_bounds_hold_during_training():
    problem = _wave(guess=1.0)
    net = build_net(problem, "siren", width=8, depth=1, seed=0)
    # a learning rate far too large: the raw value runs off, the transformed one cannot
    result = train(problem, net, stages=[Adam(60, lr=0.5)], seed=0, progress=False, log_every=1, stall=None,
                   divergence=None)
    cs = [r["coef_c"] for r in result.history]
    assert all(0.5 < c < 4.0 for c in cs)
    assert max(cs) - min(cs) > 0.1  # it did move


def test_an_adam_warm_up_can_hold_the_coefficients():
    from pinn_sine.optim.spec import parse_stage_spec, stage_from_description

    problem = _wave(guess=1.5, n_obs=20)
    net = build_net(problem, "siren", width=8, depth=2, seed=0).double()
    before = copy.deepcopy(net.state_dict())
    stage = Adam(20, lr=2e-3, fit_coefficients=False)
    result = train(problem, net, stages=[stage], batch=64, seed=0, progress=False, stall=None, log_every=5)
    assert {r["coef_c"] for r in result.history} == {problem.coefficient_values()["c"]}
    assert problem.coefficient_values()["c"] == pytest.approx(1.5, rel=1e-12)
    assert problem.coefficients()["c"].grad is None  # no gradient piles up on what Adam does not own
    assert not all(torch.equal(a, b) for a, b in zip(before.values(), net.state_dict().values()))
    # then a stage that fits them moves them
    result = train(problem, net, stages=[Adam(20, lr=2e-3)], batch=64, seed=0, progress=False, stall=None)
    assert problem.coefficient_values()["c"] != pytest.approx(1.5, rel=1e-6)
    # described only when set, and rebuilt from the description and from the command line's spec
    assert "fit_coefficients" not in Adam(5).describe()
    assert stage.describe()["fit_coefficients"] is False
    assert stage_from_description(stage.describe()).fit_coefficients is False
    assert stage_from_description(parse_stage_spec("adam:steps=5,fit_coefficients=false")).fit_coefficients is False
    with pytest.raises(ValueError, match="fit_coefficients must be True or False"):
        Adam(5, fit_coefficients="no")


def test_resume_is_bit_identical_with_coefficients(tmp_path):
    def run(stages, **kw):
        problem = _wave(n_obs=20)
        net = build_net(problem, "siren", width=8, depth=2, seed=0).double()
        result = train(problem, net, stages=stages, batch=64, seed=0, progress=False, stall=None, log_every=2, **kw)
        return problem, net, result

    full_problem, full_net, full = run([Adam(10, lr=2e-3), GaussNewton(6, batch=64)])
    ck = tmp_path / "ck.pt"
    run([Adam(10, lr=2e-3), GaussNewton(3, batch=64)], checkpoint=ck)
    stored = load_checkpoint(ck)
    assert set(stored["coefficients"]) == {"c"}
    assert stored["meta"]["inverse"]["unknowns"]["c"]["guess"] == 1.5
    problem, net, resumed = run([Adam(10, lr=2e-3), GaussNewton(6, batch=64)], resume=ck)
    assert torch.equal(problem.coefficients()["c"], full_problem.coefficients()["c"])
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), full_net.state_dict().values()))
    logged = {r["step"]: r["coef_c"] for r in full.history}
    # the resumed history also holds the shorter run's end-of-stage row (step 13)
    assert [(r["step"], r["coef_c"]) for r in resumed.history if r["step"] in logged] == list(logged.items())
    # another declaration, or none, is refused
    other = Wave1D(modes=ONE_MODE).declare_unknown("c", 1.2, lower=0.5, upper=4.0).observe(full_problem.observations)
    with pytest.raises(CheckpointError, match="unknowns: checkpoint"):
        train(other, build_net(other, "siren", width=8, depth=2, seed=0).double(),
              stages=[Adam(10, lr=2e-3), GaussNewton(6, batch=64)], batch=64, seed=0, progress=False, stall=None,
              resume=ck)


# ----- standard errors --------------------------------------------------------------------
def test_the_covariance_of_linear_least_squares_is_the_textbook_formula():
    g = torch.Generator().manual_seed(0)
    n, p = 40, 3
    X = torch.randn(n, p, generator=g, dtype=torch.float64)
    y = X @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) + 0.1 * torch.randn(n, generator=g,
                                                                                     dtype=torch.float64)
    beta = torch.linalg.lstsq(X, y).solution
    r = X @ beta - y
    cov, s2, dof = covariance(X, r, slice(0, n))
    s2_text = float(r @ r) / (n - p)
    assert dof == pytest.approx(p, rel=1e-12) and s2 == pytest.approx(s2_text, rel=1e-12)
    assert torch.allclose(cov, s2_text * torch.linalg.inv(X.T @ X), rtol=1e-10)
    # rows that are exact constraints (no noise) tie parameters together: here beta_2 = beta_1;
    # the covariance is the constrained estimator's, (N^T X^T X N)^-1 in the constraint's null space
    C = torch.tensor([[0.0, 1.0, -1.0]], dtype=torch.float64) * 1e5  # heavy: a constraint to ~1e-10
    Nsp = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
    gamma = torch.linalg.lstsq(X @ Nsp, y).solution
    beta_c = Nsp @ gamma
    J = torch.cat([X, C])
    rc = torch.cat([X @ beta_c - y, C @ beta_c])
    cov_c, s2_c, dof_c = covariance(J, rc, slice(0, n), slice(0, 3))
    r_c = X @ beta_c - y
    s2_expected = float(r_c @ r_c) / (n - 2)
    expected = s2_expected * Nsp @ torch.linalg.inv(Nsp.T @ X.T @ X @ Nsp) @ Nsp.T
    assert dof_c == pytest.approx(2.0, abs=1e-8)
    assert torch.allclose(cov_c, expected, rtol=1e-8, atol=1e-14)


def test_the_gram_route_is_the_svd_route_without_j(fitted):
    """method="gram" (J J^T and the unknowns' columns, never J) gives the SVD route's
    standard error and degrees of freedom wherever both keep the same directions."""
    problem, net, _ = fitted
    # At the Gram route's floor itself (rcond 1e-7: eigenvalues of J J^T at 1e-14 of the
    # largest, carrying errors of ~eps lambda_max, i.e. ~2%) the two routes may cut the
    # directions near it differently: 0.9% apart in the standard error on one machine's
    # BLAS kernels (OpenBLAS "Haswell"), 1e-4 on another's. A few times above it they agree.
    for rcond, rel in ((1e-7, 3e-2), (3e-7, 1e-3), (1e-6, 1e-3)):
        svd = estimate(problem, net, n=256, method="svd", rcond=rcond)["c"]
        gram = estimate(problem, net, n=256, method="gram", rcond=rcond)["c"]
        assert gram.value == svd.value
        assert gram.std_error == pytest.approx(svd.std_error, rel=rel)
        assert gram.dof == pytest.approx(svd.dof, rel=rel) and gram.residual_std == pytest.approx(svd.residual_std,
                                                                                                    rel=rel)
    # the Gram route cannot resolve rcond 1e-9: it truncates at its floor, 1e-7 (the same
    # numbers as rcond=1e-7 given), which is the SVD route's at 1e-7 to the floor's accuracy
    floor = estimate(problem, net, n=256, method="gram", rcond=1e-7)["c"]
    assert estimate(problem, net, n=256, method="gram")["c"].std_error == floor.std_error
    assert floor.std_error == pytest.approx(estimate(problem, net, n=256, method="svd", rcond=1e-7)["c"].std_error,
                                            rel=3e-2)
    # auto: this J is small, so the SVD route
    assert estimate(problem, net, n=256)["c"].std_error == estimate(problem, net, n=256, method="svd")["c"].std_error
    # textbook linear least squares through the Gram route
    g = torch.Generator().manual_seed(1)
    X = torch.randn(30, 3, generator=g, dtype=torch.float64)
    y = X @ torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64) + 0.1 * torch.randn(30, generator=g,
                                                                                   dtype=torch.float64)
    r = X @ torch.linalg.lstsq(X, y).solution - y
    cov, s2, dof = covariance_gram(X @ X.T, X[:, 1:], r, slice(0, 30))
    assert dof == pytest.approx(3.0, rel=1e-10) and s2 == pytest.approx(float(r @ r) / 27, rel=1e-10)
    assert torch.allclose(cov, s2 * torch.linalg.inv(X.T @ X)[1:, 1:], rtol=1e-8)


def test_the_standard_error_matches_the_spread_over_noise_seeds(fitted):
    """Refit the tiny case on 12 noisy copies of its observations (1% noise, same points),
    starting from the clean fit; the reported standard error is the spread's size."""
    problem, net, _ = fitted
    z = problem.coefficients()["c"].detach().clone()
    values, errors = [], []
    for seed in range(12):
        q = Wave1D(modes=ONE_MODE)
        noisy = synthetic(q, problem.observations.points, noise=0.01, seed=100 + seed)
        q.declare_unknown("c", 1.5, lower=0.5, upper=4.0).observe(noisy)
        with torch.no_grad():
            q.coefficients()["c"].copy_(z)
        refit = copy.deepcopy(net)
        train(q, refit, stages=[GaussNewton(15, batch=256)], seed=0, progress=False, stall=None)
        est = estimate(q, refit, n=256)["c"]
        values.append(est.value)
        errors.append(est.std_error)
        assert est.residual_std == pytest.approx(0.01, rel=0.6)  # the relative noise level, recovered
    spread = statistics.stdev(values)
    assert 1 / 3 < statistics.median(errors) / spread < 3


def test_estimate_needs_unknowns_and_observations():
    net = build_net(Wave1D(), "siren", width=4, depth=1, seed=0).double()
    with pytest.raises(ValueError, match="no unknowns"):
        estimate(Wave1D(), net)
    with pytest.raises(ValueError, match="no observations"):
        estimate(Wave1D().declare_unknown("c", 1.0), net)
    with pytest.raises(ValueError, match="rcond"):
        estimate(_wave(n_obs=5), net, rcond=2.0)
    with pytest.raises(ValueError, match="Invalid method 'qr'"):
        estimate(_wave(n_obs=5), net, method="qr")


# ----- the command line -------------------------------------------------------------------
def test_observe_then_solve_recovers_and_reports_the_coefficient(tmp_path, capsys):
    import json

    from pinn_sine.cli import main

    obs = tmp_path / "obs.h5"
    assert main(["observe", "wave1d", "--modes", "[[1, 1.0]]", "--points", "40", "--noise", "0.01", "--seed", "0",
                 "--out", str(obs)]) == 0
    run = tmp_path / "run"
    tiny = ["--width", "8", "--depth", "1", "--batch", "64", "--resolution", "9", "--eval-every", "5", "--quiet",
            "--dtype", "float64"]
    argv = ["solve", "wave1d", "--modes", "[[1, 1.0]]", "--unknown", "c=1.5:0.5:4.0", "--observations", str(obs),
            "--stage", "adam:steps=10", "--stage", "gauss_newton:steps=5,batch=64", "--out", str(run), *tiny]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "recovered c = " in out and "(truth 2, relative error" in out
    metrics = json.loads((run / "metrics.json").read_text())
    c = metrics["coefficients"]["c"]
    assert c["guess"] == 1.5 and c["lower"] == 0.5 and c["upper"] == 4.0 and c["truth"] == 2.0
    assert 0.5 < c["value"] < 4.0 and c["std_error"] > 0 and c["n_data"] == 40
    assert metrics["observations"]["n"] == 40
    config = json.loads((run / "config.json").read_text())
    assert config["problem"]["inverse"]["unknowns"]["c"]["transform"] == "sigmoid"
    assert config["options"]["unknown"] == ["c=1.5:0.5:4.0"]
    assert (run / "coefficients.png").stat().st_size > 0
    history = (run / "history.csv").read_text().splitlines()[0]
    assert "coef_c" in history.split(",")
    # a resume with another guess is refused, naming the option
    with pytest.raises(SystemExit, match="cannot change when a run resumes: --unknown"):
        main(["solve", "--resume", str(run), "--unknown", "c=1.2:0.5:4.0"])
    # the run folder reads back as the inverse problem, its unknown at the fitted value
    from pinn_sine.runs import load_run

    loaded = load_run(run)
    assert loaded.problem.coefficient_values()["c"] == pytest.approx(c["value"], rel=1e-12)
    assert loaded.problem.observations.digest() == metrics["observations"]["digest"]
    obs.rename(tmp_path / "moved.h5")
    with pytest.raises(FileNotFoundError, match="observations file .* is missing"):
        load_run(run)


@pytest.mark.parametrize("argv,match", [
    (["--unknown", "k=1.0"], r"--unknown k=1.0: .*the parameters it can recover: \['c'\]"),
    (["--unknown", "c=9:0.5:4"], "not strictly inside the bounds"),
    (["--unknown", "c=1.0", "--observations", "missing.h5"], "--observations missing.h5"),
    (["--unknown", "c=1*4"], "is a scalar, got a guess of shape"),
])
def test_bad_inverse_options_are_one_line(tmp_path, argv, match):
    from pinn_sine.cli import main

    with pytest.raises(SystemExit, match=match):
        main(["solve", "wave1d", "--steps", "2", "--out", str(tmp_path / "r"), "--quiet", *argv])


# ----- velocity expansions ----------------------------------------------------------------
def _bump(x, y):
    import numpy as np

    exp = torch.exp if isinstance(x, torch.Tensor) else np.exp
    return 1.0 + 0.2 * exp(-((x - 0.2) ** 2 + (y + 0.1) ** 2) / (2 * 0.25 ** 2))


def test_the_cosine_expansion_projects_and_converges():
    from pinn_sine.problems.expansion import CosineExpansion

    e = CosineExpansion(((-1.0, 1.0), (0.0, 2.0)), 4, 1.5)
    theta = torch.linspace(-0.1, 0.1, 16, dtype=torch.float64)
    model = lambda x, y: e(theta, x, y)  # noqa: E731
    assert torch.allclose(e.project(model), theta, atol=1e-12)
    assert e.rel_l2(theta, model) < 1e-14
    x = torch.tensor([[-1.0], [0.0]], dtype=torch.float64)
    assert torch.allclose(e.basis(x, torch.zeros_like(x))[:, :4], torch.ones(2, 4, dtype=torch.float64))
    errors = [CosineExpansion(((-1.0, 1.0), (-1.0, 1.0)), m, 1.0).truncation_error(_bump) for m in (3, 5, 8)]
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-3
    with pytest.raises(ValueError, match="modes must be an integer in"):
        CosineExpansion(((0, 1), (0, 1)), 0, 1.0)
    with pytest.raises(ValueError, match="background must be a velocity > 0"):
        CosineExpansion(((0, 1), (0, 1)), 3, -1.0)


def test_wave2d_recovers_a_velocity_expansion_declaration():
    p = Wave2D(c=_bump).declare_unknown("velocity", [0.0] * 25, lower=-1.0, upper=1.0)
    e = p.velocity_expansion()
    assert e.modes == 5 and 1.0 < e.background < 1.2
    x = torch.rand(7, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    c = p.speed(x, x.flip(0))
    assert c.shape == (7, 1) and torch.allclose(c, torch.full_like(c, e.background))  # coefficients 0: uniform c0
    truth = torch.tensor(p.unknown_truth("velocity"), dtype=torch.float64)
    assert e.rel_l2(truth, _bump) < 1e-2  # five modes resolve the bump to < 1%
    with pytest.raises(ValueError, match="M\\^2 expansion coefficients"):
        Wave2D().declare_unknown("velocity", [0.0] * 5)
    with pytest.raises(ValueError, match="unknown already"):
        Wave2D().declare_unknown("c", 1.2).declare_unknown("velocity", [0.0] * 4)
    with pytest.raises(ValueError, match="declare 'velocity'"):
        Wave2D(c=_bump).declare_unknown("c", 1.0)


def test_a_velocity_expansion_passes_the_conformance_suite():
    obs = synthetic(Wave2D(), sensors_points(), seed=0)
    check_problem(Wave2D().declare_unknown("velocity", [0.0] * 9, lower=-0.5, upper=0.5).observe(obs))


def sensors_points():
    from pinn_sine.observations import ring, sensors

    return sensors(ring((0.0, 0.0), 0.6, 6), [0.0, 0.1, 0.2, 0.3, 0.4])


def test_the_point_source_takes_an_unknown_omega_or_velocity():
    from pinn_sine.problems import HelmholtzPointSource

    p = HelmholtzPointSource(velocity="circle").declare_unknown("velocity", [0.0] * 36, lower=-1.0, upper=1.0)
    e = p.velocity_expansion()
    assert e.modes == 6 and e.bounds == p.domain
    x = torch.rand(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(p.speed_values(x), torch.full((5, 1), e.background, dtype=torch.float64))
    truth = torch.tensor(p.unknown_truth("velocity"), dtype=torch.float64)
    assert e.rel_l2(truth, lambda a, b: p.speed_model.values(torch.cat([a, b], 1))) < 0.1  # the edges: 6 modes, 6%
    with pytest.raises(ValueError, match="formulation='total'"):
        HelmholtzPointSource(formulation="scattered").declare_unknown("omega", 8.0)
    with pytest.raises(ValueError, match="unknown already"):
        HelmholtzPointSource().declare_unknown("omega", 8.0).declare_unknown("velocity", [0.0] * 4)


def test_causal_weighting_runs_on_an_inverse_problem():
    from pinn_sine.weighting import CausalWeights

    problem = _wave(n_obs=10)
    net = build_net(problem, "siren", width=8, depth=1, seed=0)
    result = train(problem, net, stages=[Adam(3)], batch=32, seed=0, progress=False, stall=None,
                   causal=CausalWeights(1.0, 4))
    assert "coef_c" in result.history[-1] and "data" in result.history[-1]


def test_a_metric_with_its_own_reference_measures_what_the_problem_predicts():
    """Under the point source's scattered formulation the network is u_s; a RelL2 given its
    own reference must judge u_b + u_s (problem.predict), as the run's rel_l2 does."""
    from pinn_sine.metrics import RelL2
    from pinn_sine.problems import HelmholtzPointSource

    problem = HelmholtzPointSource(formulation="scattered")
    ref = problem.reference(65)
    net = build_net(problem, "siren", width=8, depth=1, seed=0)
    result = train(problem, net, stages=[Adam(2)], batch=64, seed=0, progress=False, stall=None, reference=ref,
                   metrics=[RelL2(ref, name="own")], eval_every=1)
    assert result.history[-1]["own"] == pytest.approx(result.history[-1]["rel_l2"], rel=1e-12)
