"""Poisson2D: exact residual through the loss code, the FD reference, the image case."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pinn_sine.nets import MLP, Sine
from pinn_sine.problems import FunctionNet, Poisson2D
from pinn_sine.validation.fd.poisson import laplacian_5pt


def _batch(problem, n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: v.double() for k, v in problem.sample(n, g).items()}


def _cubic(x, y):
    return x**3 + x * y**2 - 2 * y**3 + x * y


def _cubic_laplacian(x, y):
    return 6 * x + 2 * x - 12 * y


def test_exact_solution_has_zero_residual():
    problem = Poisson2D()
    losses = problem.compute_losses(FunctionNet(problem.exact), _batch(problem), engine="autograd")
    assert set(losses) == {"pde", "boundary"}
    assert all(float(v.detach()) < 1e-24 for v in losses.values()), losses


def test_perturbed_solution_has_residual():
    """The residual is not trivially zero: a small perturbation shows in both terms."""
    problem = Poisson2D()

    def perturbed(x):
        return problem.exact(x) + 0.01 * (x[:, :1] ** 2 + 1.0)

    losses = problem.compute_losses(FunctionNet(perturbed), _batch(problem), engine="autograd")
    # pde: (0.02)^2 / mean(f^2), mean(f^2) ~ 2e3 -> ~2e-7; boundary: ~ (0.01 * 1.5)^2
    assert float(losses["pde"].detach()) > 1e-8 and float(losses["boundary"].detach()) > 1e-5


def test_boundary_points_on_boundary_and_interior_inside():
    problem = Poisson2D(bounds=((0.0, 2.0), (-1.0, 0.5)))
    b = _batch(problem, 200)
    lo, hi = torch.tensor([0.0, -1.0], dtype=torch.float64), torch.tensor([2.0, 0.5], dtype=torch.float64)
    for key in problem.derivatives:  # the point sets; "f" and "g" are their targets
        assert ((b[key] >= lo) & (b[key] <= hi)).all()
    assert b["f"].shape == (200, 1) and b["g"].shape == (50, 1)
    on_face = ((b["boundary"] == lo) | (b["boundary"] == hi)).any(dim=1)
    assert on_face.all()
    assert b["boundary"].shape == (50, 2)  # boundary_fraction 0.25


def test_reference_matches_exact_at_fourth_order():
    problem = Poisson2D()
    errs, hs = [], []
    for n in (33, 65, 129):
        ref = problem.reference(resolution=n)
        assert ref.grid_shape == (n, n) and ref.order == 4
        exact = problem.exact(torch.from_numpy(ref.points())).numpy().reshape(n, n)
        errs.append(np.abs(ref.fields["u"] - exact).max())
        hs.append(2.0 / (n - 1))
    # measured: max errors 2.57e-4, 1.66e-5, 1.04e-6; slope 3.97 (the Mehrstellen scheme)
    slope = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert 3.7 < slope < 4.3, (errs, slope)
    assert errs[1] < 3e-5
    ref = problem.reference(resolution=129)
    assert ref.error_method == "exact" and ref.error_estimate < 1e-5


def test_reference_is_cached(monkeypatch):
    problem = Poisson2D()
    first = problem.reference(resolution=17)
    calls = []
    monkeypatch.setattr(Poisson2D, "compute_reference", lambda self, r: calls.append(r))
    again = Poisson2D().reference(resolution=17)
    assert calls == []
    np.testing.assert_array_equal(first.fields["u"], again.fields["u"])


def test_sourceless_callables_are_never_cached(tmp_path, monkeypatch):
    """Two lambdas without source (from eval, or ``python -c``) cannot be told apart by
    their description, so their references are computed each time, never shared."""
    monkeypatch.setenv("PINN_SINE_CACHE", str(tmp_path))
    first, second = eval("lambda x, y: x * y + 1"), eval("lambda x, y: x - y")
    a, b = Poisson2D(first).reference(resolution=9), Poisson2D(second).reference(resolution=9)
    assert list(tmp_path.rglob("*.h5")) == []
    x = a.coords["x"][:, None]
    np.testing.assert_allclose(a.fields["u"], x * a.coords["y"][None] + 1, atol=1e-12)
    np.testing.assert_allclose(b.fields["u"], x - b.coords["y"][None], atol=1e-12)


def test_user_callable():
    problem = Poisson2D(_cubic, bounds=((0.0, 2.0), (-1.0, 0.5)))
    pts = _batch(problem)["interior"]
    # f is derived by autograd from u
    np.testing.assert_allclose(problem.source(pts).numpy().ravel(),
                               _cubic_laplacian(pts[:, 0], pts[:, 1]).numpy(), rtol=1e-12, atol=1e-12)
    losses = problem.compute_losses(FunctionNet(problem.exact), _batch(problem), engine="autograd")
    assert all(float(v.detach()) < 1e-24 for v in losses.values()), losses
    # The 5-point stencil is exact on cubics: the reference equals u up to round-off.
    ref = problem.reference(resolution=33)
    np.testing.assert_array_equal(ref.coords["x"], np.linspace(0.0, 2.0, 33))
    np.testing.assert_array_equal(ref.coords["y"], np.linspace(-1.0, 0.5, 33))
    X, Y = np.meshgrid(ref.coords["x"], ref.coords["y"], indexing="ij")
    np.testing.assert_allclose(ref.fields["u"], _cubic(X, Y), rtol=0, atol=1e-10)
    # A different u is a different cache entry.
    assert Poisson2D(_cubic).params() != Poisson2D().params()


def test_jet_engine_runs_on_problem():
    problem = Poisson2D()
    net = MLP(2, 1, width=8, depth=2, activation=Sine(3.0), seed=0).double()
    batch = _batch(problem, 64)
    a = problem.compute_losses(net, batch, engine="jet")
    b = problem.compute_losses(net, batch, engine="autograd")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-10, atol=0)


# ----- the image case ---------------------------------------------------------------------
def test_image_laplacian_reference_reproduces_image():
    problem = Poisson2D.from_image("camera", size=32)
    img = problem.image
    assert img.shape == (32, 32) and 0.0 <= img.min() and img.max() <= 1.0 and img.std() > 0.05
    ref = problem.reference()
    assert ref.grid_shape == (32, 32) and ref.attrs["image"] is True
    # measured: max |ref - image| 6.7e-16
    np.testing.assert_allclose(ref.fields["u"], img, rtol=0, atol=1e-10)
    h = 2.0 / 31
    np.testing.assert_allclose(laplacian_5pt(ref.fields["u"], h, h), problem._lap.numpy()[1:-1, 1:-1],
                               rtol=0, atol=1e-8)


@pytest.mark.parametrize("supervise, terms", [("laplacian", {"pde", "boundary"}),
                                               ("gradient", {"gradient", "boundary"})])
def test_image_losses_run(supervise, terms):
    problem = Poisson2D.from_image("camera", size=32, supervise=supervise)
    net = MLP(2, 1, width=16, depth=2, activation=Sine(3.0), seed=0)
    g = torch.Generator().manual_seed(0)
    batch = problem.sample(128, g)
    # points lie on pixel nodes, interior points off the border
    nodes = torch.linspace(-1.0, 1.0, 32)
    assert torch.isin(batch["interior"], nodes).all() and torch.isin(batch["boundary"], nodes).all()
    assert (batch["interior"].abs() < 1.0).all()
    assert (batch["boundary"].abs() == 1.0).any(dim=1).all()
    losses = problem.compute_losses(net, batch)
    assert set(losses) == terms
    assert all(torch.isfinite(v) and float(v.detach()) > 0 for v in losses.values())
    total = sum(losses.values())
    total.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_image_gradient_reference_runs():
    problem = Poisson2D.from_image("camera", size=32, supervise="gradient")
    ref = problem.reference()
    # The gradient case solves the 5-point Poisson equation with f = div of the
    # central-difference gradient (a 2h-wide stencil), so it only approximates the
    # image: measured rel L2 0.044 on camera at 32 px.
    err = np.linalg.norm(ref.fields["u"] - problem.image) / np.linalg.norm(problem.image)
    assert err < 0.1
    np.testing.assert_array_equal(ref.fields["u"][0], problem.image[0])  # boundary is the image's


def test_image_reference_resolution_must_match():
    problem = Poisson2D.from_image("camera", size=32)
    with pytest.raises(ValueError, match=r"got resolution=64. Use resolution=32"):
        problem.reference(resolution=64)


def test_image_from_array():
    arr = np.linspace(0, 1, 20 * 20).reshape(20, 20)
    problem = Poisson2D.from_image(arr, size=16)
    assert problem.image.shape == (16, 16) and problem.params()["image"] == "<array>"


# ----- bad inputs --------------------------------------------------------------------------
def test_reversed_bounds():
    with pytest.raises(ValueError, match=r"bounds\[1\] = \(1.0, -1.0\) is empty or reversed.*\(-1.0, 1.0\)"):
        Poisson2D(bounds=((-1.0, 1.0), (1.0, -1.0)))


def test_wrong_number_of_bounds():
    with pytest.raises(ValueError, match="two"):
        Poisson2D(bounds=((0.0, 1.0),))


def test_unknown_sampler():
    with pytest.raises(ValueError, match=r"Invalid sampler \"grid\". Must be one of \['uniform', 'sobol', 'lhs'\]"):
        Poisson2D(sampler="grid")


def test_unknown_supervise():
    with pytest.raises(ValueError, match=r"Invalid supervise \"hessian\". Must be one of \['laplacian', 'gradient'\]"):
        Poisson2D.from_image("camera", size=16, supervise="hessian")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # imageio probing its DICOM plugin
def test_unreadable_image(tmp_path):
    bad = tmp_path / "x.png"
    bad.write_text("this is not a png")
    with pytest.raises(ValueError, match="cannot read image file"):
        Poisson2D.from_image(str(bad), size=16)


def test_missing_image(tmp_path):
    with pytest.raises(ValueError, match="neither a bundled scikit-image name.*nor an existing file"):
        Poisson2D.from_image(str(tmp_path / "nope.png"), size=16)


def test_bad_boundary_fraction():
    with pytest.raises(ValueError, match="boundary_fraction"):
        Poisson2D(boundary_fraction=0.0)


def test_resolution_too_small():
    with pytest.raises(ValueError, match="resolution must be >= 3"):
        Poisson2D().reference(resolution=2)


def test_exact_missing_for_image():
    with pytest.raises(NotImplementedError, match="reference"):
        Poisson2D.from_image("camera", size=16).exact(torch.zeros(1, 2))
    assert not math.isnan(Poisson2D()._f_scale())


def _linear(x, y):
    return x + 2 * y


def _constant(x, y):
    return 0 * x + 1.5


@pytest.mark.parametrize("u", [_linear, _constant], ids=["linear", "constant"])
def test_linear_and_constant_solutions(u):
    """A constant gradient (or none) has no autograd graph: the source is 0, the exact
    solution's loss terms vanish, and the hard constraint's boundary field (a user's u,
    differentiated by autograd) has the exact first and zero second derivatives."""
    problem = Poisson2D(u=u)
    batch = problem.sample(64, torch.Generator().manual_seed(0))
    assert torch.equal(batch["f"], torch.zeros_like(batch["f"]))
    exact = FunctionNet(lambda x: u(x[:, 0], x[:, 1]).reshape(-1, 1))
    losses = problem.compute_losses(exact, {k: v.double() for k, v in batch.items()}, "autograd")
    assert all(float(v) < 1e-20 for v in losses.values()), losses
    g = Poisson2D(u=u, constraint="hard").hard_constraint().g
    x = batch["interior"].double()
    value, d1, d2 = g.evaluate(x, (0, 1), ((0, 0), (1, 1), (0, 1)))
    torch.testing.assert_close(value, u(x[:, 0], x[:, 1]).reshape(-1, 1))
    slope = (1.0, 2.0) if u is _linear else (0.0, 0.0)
    for a in (0, 1):
        torch.testing.assert_close(d1[a], torch.full_like(d1[a], slope[a]))
    assert all(float(v.abs().max()) < 1e-12 for v in d2.values())
