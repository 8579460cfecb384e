"""HelmholtzPointSource's scattered-field formulation: the exact background field of the
Gaussian source (problems/background.py), the scattered residual through the problem's
loss code, its parameters and the SIREN preset. All in float64."""
from __future__ import annotations

import importlib.util
import json
import math

import numpy as np
import pytest
import torch
from scipy.special import hankel1, roots_legendre

from pinn_sine.cli import build_problem, main
from pinn_sine.derivatives import Jet
from pinn_sine.problems import HelmholtzPointSource, check_problem
from pinn_sine.problems.background import FAR_WIDTHS, GaussianBackground
from pinn_sine.figures import problem_figures
from pinn_sine.runs import load_net, load_run, read_config
from pinn_sine.validation import evaluate, load_reference, predict

K, W, CENTER = 10.0, 0.05, (0.1, -0.05)
LAYER = {"bounds": ((-1.0, 1.0), (-1.0, 1.0)), "width": 0.5, "strength": 60.0, "omega": 10.0, "profile": "cubic"}
# near the source (r = 0, 1e-9, 0.3 w, 1.4 w, 4 w), the far zone of the physical region, the
# layers, a corner of them
POINTS = np.array([[0.1, -0.05], [0.1 + 1e-9, -0.05], [0.11, -0.045], [0.15, 0.0], [0.2, 0.1], [0.45, -0.3],
                   [0.7, 0.2], [-0.8, 0.1], [0.2, -0.93], [-0.8, -0.9], [0.95, 0.6]])


class Zero(torch.nn.Module):
    """u = 0 (a scattered field of zero), with a parameter so the loss code can run it."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 2).double()

    def forward(self, x):
        return 0.0 * self.lin(x)


def _green_convolution(x: np.ndarray, center, k: float, w: float) -> complex:
    """u0 at the point x by direct 2-D quadrature of its definition, int G(|x - y|) f(y) dy
    with G = (i/4) H0(k |x - y|), in polar coordinates about x (not the source, so this is
    not Graf's formula): rho = R t^4 (Gauss-Legendre in t) smooths G's rho log rho at
    rho = 0; the trapezoid rule in the angle. Agrees with mpmath to 2e-14 at r = 0.02, 0.07."""
    r = math.hypot(x[0] - center[0], x[1] - center[1])
    t, wt = roots_legendre(240)
    t, wt = 0.5 * (t + 1), 0.5 * wt
    big = r + 10 * w
    rho, drho = big * t ** 4, big * 4 * t ** 3 * wt
    phi = 2 * np.pi * np.arange(96) / 96
    px, py = x[0] + rho[:, None] * np.cos(phi), x[1] + rho[:, None] * np.sin(phi)
    f = np.exp(-((px - center[0]) ** 2 + (py - center[1]) ** 2) / (2 * w * w)) / (2 * np.pi * w * w)
    return complex(np.sum(0.25j * hankel1(0, k * rho) * 2 * np.pi * f.mean(1) * rho * drho))


# ----- the background field -------------------------------------------------------------------
def test_background_is_the_green_convolution_of_the_source():
    bg = GaussianBackground(K, W, CENTER)
    pts = POINTS[[0, 2, 3, 4, 5]]  # r = 0, 0.2 w, 1.4 w, 3 w (Graf's formula) and 7 w
    pts = np.concatenate([pts, [[0.1 + 0.6, -0.05]]])  # 12 w: the far zone
    u = bg.field(pts)["u"]
    direct = np.array([_green_convolution(p, CENTER, K, W) for p in pts])
    np.testing.assert_allclose(u, direct, rtol=1e-12)
    # at omega 20, width 0.01 (SIREN's case, k w = 0.2) and at k w = 3
    for k, w in ((20.0, 0.01), (60.0, 0.05)):
        p = np.array([[0.013, 0.004], [0.07, 0.0]]) * w / 0.01
        np.testing.assert_allclose(GaussianBackground(k, w, (0.0, 0.0)).field(p)["u"],
                                   [_green_convolution(q, (0.0, 0.0), k, w) for q in p], rtol=1e-11)


def test_background_far_field_is_the_damped_hankel_function():
    bg = GaussianBackground(K, W, (0.0, 0.0))
    # the Graf integrals reach their closed-form totals (A(inf) = exp(-a), Y(inf) = exp(-a) Ei(a) / pi)
    A, Y = bg.graf_integrals(np.array([FAR_WIDTHS * W, 12 * W]))
    assert np.allclose(A, math.exp(-0.5 * (K * W) ** 2), rtol=1e-14, atol=0)
    assert np.allclose(Y, bg.y_total, rtol=1e-13, atol=0) and bg.y_total < 0
    # Graf's formula just inside the far radius equals the far field just outside it
    r = FAR_WIDTHS * W * (1 - 1e-12)
    u, q, fb = bg.radial(np.array([r]))
    u_far, q_far = bg.far_field(np.array([r], dtype=complex))
    assert abs(u[0] - u_far[0]) <= 1e-14 * abs(u_far[0]) and abs(q[0] - q_far[0]) <= 1e-14 * abs(q_far[0])
    assert 0 < fb[0] < 3e-18 * bg.source(np.zeros(1))[0]
    # far from the source u0 = (i/4) H0(k r) int f J0 = (i/4) H0(k r) exp(-(k w)^2 / 2)
    r = np.array([0.5, 1.0, 1.3])
    u, _, _ = bg.radial(r)
    np.testing.assert_allclose(u, 0.25j * hankel1(0, K * r) * math.exp(-0.5 * (K * W) ** 2), rtol=1e-14)


def test_background_solves_the_radial_equation_and_is_smooth_at_the_source():
    bg = GaussianBackground(K, W, CENTER)
    out = bg.field(POINTS[:6], derivatives=True)
    f = bg.source(np.hypot(POINTS[:6, 0] - CENTER[0], POINTS[:6, 1] - CENTER[1]))
    # Lap u0 + k^2 u0 = -f, from the radial derivatives (u'' = -f - k^2 u - u'/r)
    lap = out["u_xx"] + out["u_yy"]
    np.testing.assert_allclose(lap, -K ** 2 * out["u"] - f, rtol=1e-12, atol=1e-12 * np.abs(f).max())
    # r = 0 (the limits u0'' = u0'/r = (-f - k^2 u0) / 2) and r = 1e-9 agree
    for key in ("u", "u_xx", "u_yy", "u_xy"):
        assert abs(out[key][0] - out[key][1]) <= 1e-8 * max(1.0, abs(out[key][0])), key
    assert out["u_x"][0] == 0 and out["u_y"][0] == 0 and out["u_y"][1] == 0
    dx = POINTS[1, 0] - CENTER[0]
    assert abs(out["u_x"][1] - out["u_xx"][0] * dx) <= 1e-6 * abs(out["u_xx"][0] * dx)  # u_x = u_xx dx + O(dx^3)


def test_background_derivatives_match_finite_differences_in_and_outside_the_layer():
    bg = GaussianBackground(K, W, CENTER)
    out = bg.field(POINTS, layer=LAYER, derivatives=True)

    def u(p):
        return bg.field(p, layer=LAYER)["u"]

    h = 1e-3
    for a, name in enumerate("xy"):
        e = np.zeros(2)
        e[a] = h
        ups, up, um, ums, u0 = u(POINTS + 2 * e), u(POINTS + e), u(POINTS - e), u(POINTS - 2 * e), u(POINTS)
        d1 = (-ups + 8 * up - 8 * um + ums) / (12 * h)          # fourth order, error ~ h^4 u^(5)
        d2 = (-ups + 16 * up - 30 * u0 + 16 * um - ums) / (12 * h * h)
        assert np.abs(d1 - out[f"u_{name}"]).max() <= 1e-7 * np.abs(d1).max()
        assert np.abs(d2 - out[f"u_{name}{name}"]).max() <= 1e-7 * np.abs(d2).max()

    def cross(h):  # second order in h
        ex, ey = np.array([h, 0.0]), np.array([0.0, h])
        return (u(POINTS + ex + ey) - u(POINTS + ex - ey) - u(POINTS - ex + ey) + u(POINTS - ex - ey)) / (4 * h * h)

    dxy = (4 * cross(h / 2) - cross(h)) / 3  # Richardson: fourth order
    assert np.abs(dxy - out["u_xy"]).max() <= 1e-7 * np.abs(dxy).max()
    # the layer damps it: at the outer wall, a 1e-4 of its size at the layer's inner edge
    wall = u(np.array([[1.0, -0.05], [-1.0, -0.05]]))
    edge = u(np.array([[0.5, -0.05], [-0.5, -0.05]]))
    assert np.all(np.abs(wall) < 1e-3 * np.abs(edge))


def test_background_in_the_layer_is_refused_near_the_source():
    bg = GaussianBackground(K, 0.1, (0.0, 0.0))  # far radius 0.9 reaches into the layer at 0.5
    with pytest.raises(ValueError, match=r"points inside the PML lie within the far radius 0\.9"):
        bg.field(np.array([[0.6, 0.0]]), layer=LAYER)


# ----- the scattered formulation through the loss code -----------------------------------------
def _batch(problem, n=256, seed=3):
    return {k: v.double() for k, v in problem.draw(n, torch.Generator().manual_seed(seed)).items()}


def test_uniform_background_is_the_solution_so_a_zero_scattered_field_has_zero_residual():
    problem = HelmholtzPointSource(formulation="scattered")
    batch = _batch(problem)
    assert set(batch) == {"interior", "boundary", "f_scattered", "u0_boundary"}
    # c = c0 everywhere: no scattered source but f beyond 9 widths (< 2.6e-18 of its peak)
    peak = 1 / (2 * math.pi * problem.width ** 2)
    assert batch["f_scattered"][:, 1].abs().max() == 0 and batch["f_scattered"].abs().max() < 3e-18 * peak
    losses = problem.compute_losses(Zero(), batch, engine="autograd")
    assert float(losses["pde"].detach()) < 1e-30  # f beyond 9 widths only
    # the wall sees the layer's leftover of the outgoing wave only: 1e-7 of a zero total field's
    # loss of 1 (the Dirichlet wall's reflection, 3e-7 in amplitude at normal incidence)
    assert float(losses["boundary"].detach()) < 1e-6
    total = HelmholtzPointSource().compute_losses(Zero(), batch, engine="autograd")
    assert 0.1 < float(total["pde"].detach()) < 10  # the total formulation's zero field scores about 1


@pytest.mark.parametrize("kwargs", [
    {"velocity": "square"},
    {"velocity": "circle", "velocity_edge": 0.0, "omega": 14.0},
    {"velocity": lambda x, y: 1.0 + 0.3 * torch.sin(2 * x) * y ** 2, "background_velocity": 1.2},
], ids=["square", "circle-sharp", "callable-c0"])
def test_scattered_residual_of_zero_is_the_total_residual_of_the_background(kwargs):
    """L_s u_b + k^2 u_b + f (the total formulation's residual, fed the background's
    analytic derivatives as a Jet) equals the scattered formulation's residual of u_s = 0,
    at points near the source, in the physical region and in the layer."""
    scattered = HelmholtzPointSource(formulation="scattered", source_center=(0.02, -0.03), **kwargs)
    total = HelmholtzPointSource(source_center=(0.02, -0.03),
                                 **{k: v for k, v in kwargs.items() if k != "background_velocity"})
    x = torch.from_numpy(POINTS - np.array([0.08, -0.02]))  # the same layout about this source
    d = scattered.background(x, derivatives=True)
    jet = Jet(d["u"], {"x": d["u_x"], "y": d["u_y"]}, {("x", "x"): d["u_xx"], ("y", "y"): d["u_yy"]})
    re, im = total.residual(jet, x)
    zero = Jet(torch.zeros_like(d["u"]), {"x": torch.zeros_like(d["u"]), "y": torch.zeros_like(d["u"])},
               {("x", "x"): torch.zeros_like(d["u"]), ("y", "y"): torch.zeros_like(d["u"])})
    re_s, im_s = scattered.residual(zero, x, scattered.scattered_source(x))
    scale = math.sqrt(scattered._f2)
    assert float(torch.cat([re_s, im_s]).abs().max()) > 1e-2 * scale  # c != c0 somewhere: a real source
    torch.testing.assert_close(re_s, re, rtol=0, atol=1e-11 * scale)
    torch.testing.assert_close(im_s, im, rtol=0, atol=1e-11 * scale)
    # and the loss terms of u_b + u_s for any u_s: the two formulations' losses agree
    batch = _batch(scattered, 64)
    net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)).double()
    torch.manual_seed(0)
    ls = scattered.compute_losses(net, batch, engine="autograd")
    assert all(float(v.detach()) > 0 for v in ls.values())


@pytest.mark.parametrize("kwargs", [{}, {"velocity": "square", "omega": 15.0, "source_center": (0.05, -0.02)}],
                         ids=["uniform", "square"])
def test_check_problem_passes_for_the_scattered_formulation(kwargs):
    names = check_problem(HelmholtzPointSource(formulation="scattered", **kwargs))
    assert {"contract", "terms", "engines", "params", "reference", "bad_params"} <= set(names)


def test_a_batch_without_its_data_gets_them_computed():
    problem = HelmholtzPointSource(formulation="scattered", velocity="square")
    batch = _batch(problem, 64)
    net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)).double()
    full = problem.compute_losses(net, batch, engine="autograd")
    bare = problem.compute_losses(net, {k: batch[k] for k in ("interior", "boundary")}, engine="autograd")
    for name in full:
        torch.testing.assert_close(bare[name], full[name], rtol=1e-13, atol=0)


def test_background_is_kept_per_point_set():
    problem = HelmholtzPointSource(formulation="scattered")
    x = problem.draw(128, torch.Generator().manual_seed(1))["interior"].double()
    first = problem.background(x)
    assert len(problem._background_cache) == 1
    again = problem.background(x.clone())  # same content, another tensor: no recomputation
    assert len(problem._background_cache) == 1 and torch.equal(first, again)
    for seed in range(2, 8):
        problem.background(problem.draw(16, torch.Generator().manual_seed(seed))["interior"])
    assert len(problem._background_cache) == 4  # bounded


def test_predict_reports_the_total_field_and_both_formulations_share_the_reference():
    scattered = HelmholtzPointSource(formulation="scattered")
    total = HelmholtzPointSource()
    assert scattered.reference_params(129) == total.reference_params(129)
    ref = scattered.reference(129)
    assert ref.hash == total.reference(129).hash
    pred = scattered.predict(Zero(), ref)
    u_b = scattered.background(torch.from_numpy(ref.points())).numpy()
    np.testing.assert_array_equal(pred["u_real"].ravel(), u_b[:, 0])
    np.testing.assert_array_equal(pred["u_imag"].ravel(), u_b[:, 1])
    # u_s = 0 is the answer in a uniform medium: the error is the reference's own
    err = evaluate(Zero(), ref, prediction=pred)["rel_l2"]
    assert err < 1e-4
    assert evaluate(Zero(), ref, prediction=total.predict(Zero(), ref))["rel_l2"] == 1.0


def test_figures_show_the_total_field(tmp_path):
    problem = HelmholtzPointSource(formulation="scattered")
    paths = problem_figures(problem, Zero(), problem.reference(41), tmp_path)
    assert sorted(p.name for p in paths) == ["helmholtz-point-source_fields.png", "helmholtz-point-source_velocity.png"]
    assert all(p.stat().st_size > 0 for p in paths)


# ----- parameters -------------------------------------------------------------------------------
def test_params_record_the_formulation_and_background():
    p = HelmholtzPointSource(formulation="scattered", velocity="square", background_velocity=1.0).params()
    assert p["formulation"] == "scattered" and p["background_velocity"] == 1.0
    assert json.loads(json.dumps(p)) == p
    assert HelmholtzPointSource(formulation="scattered", velocity="square").params()["background_velocity"] == \
        pytest.approx(2.0, rel=1e-6)  # c at the source, inside the square (smoothed edge: 1 + sigmoid(15)^2)
    # the default (total) is left out: checkpoints and caches from before the option still match
    assert "formulation" not in HelmholtzPointSource().params()
    assert "background_velocity" not in HelmholtzPointSource().params()


def test_solve_config_and_resume_keep_the_formulation(tmp_path, capsys, one_thread):
    tiny = ["--width", "8", "--depth", "1", "--batch", "32", "--resolution", "41", "--eval-every", "5", "--quiet"]
    run = tmp_path / "run"
    main(["solve", "helmholtz-point-source", "--formulation", "scattered", "--steps", "4", "--out", str(run), *tiny])
    config = read_config(run)
    assert config["problem"]["options"] == {"formulation": "scattered"}
    assert config["problem"]["params"] == HelmholtzPointSource(formulation="scattered").params()
    metrics = json.loads((run / "metrics.json").read_text())
    # the run's prediction.h5 (what export writes out) is the total field, u_b + the network
    loaded = load_run(run)
    ref = loaded.problem.reference(41)
    stored = load_reference(run / "prediction.h5")
    net = load_net(run / "checkpoint.pt")
    expected, raw = loaded.problem.predict(net, ref), predict(net, ref)
    u_b = loaded.problem.background(torch.from_numpy(ref.points())).numpy()
    for k, name in enumerate(("u_real", "u_imag")):
        np.testing.assert_allclose(stored.fields[name], expected[name], rtol=0, atol=1e-6)
        np.testing.assert_allclose(stored.fields[name].ravel() - raw[name].ravel(), u_b[:, k], rtol=0, atol=1e-6)
    if importlib.util.find_spec("meshio") is not None:  # the optional export dependency
        from pinn_sine.export import export_run

        assert export_run(run, "vtk", tmp_path / "run.vtk") == [tmp_path / "run.vtk"]
    again = tmp_path / "again"
    main(["solve", "--config", str(run / "config.json"), "--out", str(again)])
    assert read_config(again)["problem"] == config["problem"]
    assert json.loads((again / "metrics.json").read_text())["final_losses"] == metrics["final_losses"]
    capsys.readouterr()
    main(["solve", "--resume", str(run), "--steps", "6"])
    assert "resumed from step 4" in capsys.readouterr().out
    with pytest.raises(SystemExit, match=r"cannot change when a run resumes: --formulation total \(the run has "
                                         r"scattered\)"):
        main(["solve", "--resume", str(run), "--steps", "8", "--formulation=total"])


def test_siren_case_is_a_named_configuration():
    p = HelmholtzPointSource.siren_case()
    assert (p.omega, p.width, p.velocity_name, p.velocity_edge) == (20.0, 0.01, "square", 0.0)
    smooth = HelmholtzPointSource.siren_case("circle", sharp=False, formulation="scattered")
    assert (smooth.omega, smooth.width, smooth.velocity_name, smooth.velocity_edge) == (20.0, 0.01, "circle", 0.02)
    assert HelmholtzPointSource(preset="siren", velocity="square", velocity_edge=0.0).params() == p.params()
    assert HelmholtzPointSource(preset="siren", omega=20.0).omega == 20.0  # the preset's own value is fine
    assert HelmholtzPointSource.siren_case("uniform").velocity_name == "uniform"
    d = HelmholtzPointSource()
    assert (d.omega, d.width) == (10.0, 0.05)
    # the command line: pinn-sine solve helmholtz-point-source --preset siren --velocity square --velocity-edge 0
    cli = build_problem("helmholtz-point-source", ["--preset", "siren", "--velocity", "square", "--velocity-edge", "0"])
    assert cli.params() == p.params()


@pytest.mark.parametrize("kwargs, match", [
    ({"formulation": "incident"}, r'Invalid formulation "incident"\. Must be one of \[\'total\', \'scattered\'\]'),
    ({"background_velocity": 1.5}, r"background_velocity=1\.5 sets c0 .* formulation='total' has none"),
    ({"formulation": "scattered", "background_velocity": -1.0}, r"background_velocity must be > 0"),
    ({"formulation": "scattered", "source_width": 0.06},
     r"needs the PML at least 9 source widths \(0\.54\) from the source.*source_width <= 0\.05556"),
    ({"formulation": "scattered", "source_center": (0.3, 0.0)}, r"source_center=\(0\.3, 0\.0\) is 0\.2 from the layer"),
    ({"preset": "sitzmann"}, r"Invalid preset 'sitzmann'\. Must be one of \[None, 'siren'\]"),
    ({"preset": "siren", "omega": 10.0}, r"omega=10\.0 contradicts preset='siren', which sets omega=20\.0"),
    ({"preset": "siren", "source_width": 0.05}, r"source_width=0\.05 contradicts preset='siren'"),
])
def test_bad_parameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HelmholtzPointSource(**kwargs)
    with pytest.raises(ValueError, match=r"sharp=False smooths the edges"):
        HelmholtzPointSource.siren_case("uniform", sharp=False)
