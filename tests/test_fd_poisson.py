"""Convergence and error-message tests for the 5-point Poisson reference solver."""

from __future__ import annotations

import numpy as np
import pytest

from pinn_sine.validation.fd._solution import FDSolution
from pinn_sine.validation.fd.poisson import laplacian_5pt, laplacian_9pt, mehrstellen_rhs, poisson_2d

PI = np.pi


def _sine_mode(X, Y):
    return np.sin(PI * X) * np.sin(2 * PI * Y)


def _sine_mode_f(X, Y):
    return -5 * PI**2 * np.sin(PI * X) * np.sin(2 * PI * Y)


def _harmonic_plus_quadratic(X, Y):
    # exp(x) sin(y) is harmonic, so f = Laplacian(x^2 y) = 2 y; the boundary data is
    # non-zero on every edge.
    return np.exp(X) * np.sin(Y) + X**2 * Y


# (name, exact u, source f, g for the solver, bounds)
CASES = [
    ("sine-zero-bc", _sine_mode, _sine_mode_f, None, ((-1.0, 1.0), (-1.0, 1.0))),
    (
        "exp-sin-nonzero-bc",
        _harmonic_plus_quadratic,
        lambda X, Y: 2.0 * Y,
        _harmonic_plus_quadratic,
        ((0.0, 2.0), (-0.5, 1.0)),
    ),
]


def _max_error(sol: FDSolution, exact) -> float:
    X, Y = np.meshgrid(sol.coords["x"], sol.coords["y"], indexing="ij")
    return float(np.max(np.abs(sol.fields["u"] - exact(X, Y))))


@pytest.mark.parametrize("method", ["dst", "sparse"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_convergence_order_two(case, method):
    _, exact, f, g, bounds = case
    # A non-square node count checks that x and y are not swapped anywhere.
    resolutions = [(17, 25), (33, 49), (65, 97), (129, 193)]
    h, err = [], []
    for n in resolutions:
        sol = poisson_2d(f, g, bounds=bounds, n=n, method=method)
        h.append(sol.spacing["x"])
        err.append(_max_error(sol, exact))
    slope = np.polyfit(np.log(h), np.log(err), 1)[0]
    assert 1.9 < slope < 2.1, (slope, err)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_dst_and_sparse_agree(case):
    _, _, f, g, bounds = case
    a = poisson_2d(f, g, bounds=bounds, n=(65, 41), method="dst")
    b = poisson_2d(f, g, bounds=bounds, n=(65, 41), method="sparse")
    scale = np.max(np.abs(a.fields["u"]))
    np.testing.assert_allclose(a.fields["u"], b.fields["u"], rtol=0, atol=1e-10 * scale)
    assert a.solver == "fd5-dst" and b.solver == "fd5-sparse"


def test_solution_layout_and_auto_method():
    sol = poisson_2d(_sine_mode_f, n=(9, 5), bounds=((0.0, 1.0), (2.0, 4.0)))
    assert sol.solver == "fd5-dst" and sol.order == 2
    assert list(sol.coords) == ["x", "y"]
    np.testing.assert_array_equal(sol.coords["x"], np.linspace(0.0, 1.0, 9))
    np.testing.assert_array_equal(sol.coords["y"], np.linspace(2.0, 4.0, 5))
    assert sol.fields["u"].shape == (9, 5) and sol.fields["u"].dtype == np.float64
    assert sol.spacing == pytest.approx({"x": 1 / 8, "y": 0.5})


def test_discrete_residual_vanishes():
    """The solution satisfies the 5-point equations to round-off; boundary holds g."""
    bounds = ((0.0, 2.0), (-0.5, 1.0))
    f = lambda X, Y: 2.0 * Y  # noqa: E731
    for method in ("dst", "sparse"):
        sol = poisson_2d(f, _harmonic_plus_quadratic, bounds=bounds, n=(33, 21), method=method)
        u = sol.fields["u"]
        X, Y = np.meshgrid(sol.coords["x"], sol.coords["y"], indexing="ij")
        residual = laplacian_5pt(u, sol.spacing["x"], sol.spacing["y"]) - f(X, Y)[1:-1, 1:-1]
        assert np.max(np.abs(residual)) < 1e-9
        exact = _harmonic_plus_quadratic(X, Y)
        for edge in (np.s_[0, :], np.s_[-1, :], np.s_[:, 0], np.s_[:, -1]):
            np.testing.assert_allclose(u[edge], exact[edge], rtol=0, atol=1e-15)


def test_array_inputs_match_callables():
    n = (33, 17)
    ref = poisson_2d(lambda X, Y: 2.0 * Y, _harmonic_plus_quadratic, n=n)
    X, Y = np.meshgrid(ref.coords["x"], ref.coords["y"], indexing="ij")
    g_array = _harmonic_plus_quadratic(X, Y)
    g_array[1:-1, 1:-1] = np.nan  # interior of g must be ignored
    sol = poisson_2d(2.0 * Y, g_array, n=n)
    np.testing.assert_allclose(sol.fields["u"], ref.fields["u"], rtol=0, atol=1e-13)


def test_laplacian_5pt_is_exact_for_quadratics():
    x, y = np.linspace(0, 1, 7), np.linspace(0, 2, 5)
    X, Y = np.meshgrid(x, y, indexing="ij")
    lap = laplacian_5pt(3 * X**2 - Y**2 + X * Y, x[1] - x[0], y[1] - y[0])
    np.testing.assert_allclose(lap, np.full((5, 3), 4.0), atol=1e-11)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"method": "multigrid"}, r"Invalid method 'multigrid'.*\['auto', 'dst', 'sparse'\]"),
        ({"bounds": ((1.0, -1.0), (-1.0, 1.0))}, r"bounds\[0\] \(x\)=\(1.0, -1.0\) is reversed"),
        ({"bounds": ((-1.0, 1.0), (0.0, 0.0))}, r"bounds\[1\] \(y\)=\(0.0, 0.0\) is reversed"),
        ({"bounds": (0.0, 1.0)}, r"bounds=\(0.0, 1.0\) must be \(\(x0, x1\), \(y0, y1\)\)"),
        ({"n": 2}, r"n=2 is too small.*use n >= 3"),
        ({"n": (33, 2)}, r"n\[1\] \(ny\)=2 is too small"),
        ({"n": 16.5}, r"n=16.5 must be an int"),
        ({"n": (9, 9, 9)}, r"must be an int or a pair \(nx, ny\)"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        poisson_2d(_sine_mode_f, **kwargs)


def test_invalid_data():
    with pytest.raises(ValueError, match=r"f has shape \(3, 3\), expected the grid shape \(9, 9\)"):
        poisson_2d(np.zeros((3, 3)), n=9)
    with pytest.raises(ValueError, match=r"g has shape \(9, 8\), expected the grid shape \(9, 9\)"):
        poisson_2d(_sine_mode_f, np.zeros((9, 8)), n=9)
    with pytest.raises(ValueError, match=r"f\(\.\.\.\) returned non-finite values"):
        poisson_2d(lambda X, Y: np.full_like(X, np.nan), n=9)
    with pytest.raises(ValueError, match=r"f\(\.\.\.\) returned complex values"):
        poisson_2d(lambda X, Y: X + 1j, n=9)


def test_fdsolution_validates_shapes():
    x, y = np.linspace(0, 1, 3), np.linspace(0, 1, 4)
    with pytest.raises(ValueError, match=r"fields\['u'\] has shape \(4, 3\), expected \(3, 4\)"):
        FDSolution({"x": x, "y": y}, {"u": np.zeros((4, 3))}, "fd5-dst", 2, {"x": 0.5})
    with pytest.raises(ValueError, match=r"spacing has key 't' that is not a coordinate"):
        FDSolution({"x": x, "y": y}, {"u": np.zeros((3, 4))}, "fd5-dst", 2, {"t": 0.5})
    with pytest.raises(ValueError, match=r"coords\['x'\] is not strictly increasing"):
        FDSolution({"x": x[::-1], "y": y}, {"u": np.zeros((3, 4))}, "fd5-dst", 2, {})
    # Complex fields are allowed (the Helmholtz solver returns a complex "u").
    sol = FDSolution({"x": x, "y": y}, {"u": np.zeros((3, 4), complex)}, "fd5", 2, {"x": 0.5})
    assert sol.shape == (3, 4)


# ---------------------------------------------------------------- order 4 (9-point)


def _exp_sin_wave(X, Y):
    # Harmonic exp(x) sin(y) plus a wave sin(2x + y), Laplacian -5 sin(2x + y): non-zero
    # Dirichlet data on every edge, and no polynomial part the scheme would get exactly.
    return np.exp(X) * np.sin(Y) + np.sin(2 * X + Y)


def _exp_sin_wave_f(X, Y):
    return -5.0 * np.sin(2 * X + Y)


# Node counts on ((0, 2), (-0.5, 1)): hx = hy ("square-cells"), and hx = 2 hy, which the
# general Mehrstellen weights (hx^2 + hy^2)/12 must handle.
ORDER4_GRIDS = {
    "square-cells": [(9, 7), (17, 13), (33, 25), (65, 49)],
    "hx-2hy": [(9, 13), (17, 25), (33, 49), (65, 97)],
}


@pytest.mark.parametrize("method", ["dst", "sparse"])
@pytest.mark.parametrize("grid", list(ORDER4_GRIDS))
def test_convergence_order_four(grid, method):
    bounds = ((0.0, 2.0), (-0.5, 1.0))
    h, err = [], []
    for n in ORDER4_GRIDS[grid]:
        sol = poisson_2d(_exp_sin_wave_f, _exp_sin_wave, bounds=bounds, n=n, method=method, order=4)
        h.append(sol.spacing["x"])
        err.append(_max_error(sol, _exp_sin_wave))
    assert sol.order == 4 and sol.solver == f"fd9-{method}"
    # Measured slope 4.00 on both grids; the finest error (3e-8) is far above round-off.
    slope = np.polyfit(np.log(h), np.log(err), 1)[0]
    assert 3.7 < slope < 4.3, (slope, err)


@pytest.mark.parametrize("method", ["dst", "sparse"])
@pytest.mark.parametrize("n", [(5, 7), (7, 4)], ids=["hx-2hy", "hy-2hx"])
def test_order_four_is_exact_for_quintics(n, method):
    """The truncation error is O(h^4) times sixth derivatives of u (and fourth of f), so
    for u of degree <= 5 the 9-point solution is exact on any grid, which checks the
    stencil weights, the right-hand-side correction and the corner/edge data at once."""

    def u(X, Y):
        return X**5 - 10 * X**3 * Y**2 + 5 * X * Y**4 + X**2 * Y**3 + X - 2.0  # first three: harmonic

    def f(X, Y):
        return 2 * Y**3 + 6 * X**2 * Y

    sol = poisson_2d(f, u, bounds=((-1.0, 1.0), (0.0, 1.5)), n=n, method=method, order=4)
    assert _max_error(sol, u) < 1e-12 * np.max(np.abs(u(*np.meshgrid(sol.coords["x"], sol.coords["y"],
                                                                        indexing="ij"))))
    # The 5-point scheme is not exact here (its error is O(h^2 u_xxxx)).
    assert _max_error(poisson_2d(f, u, bounds=((-1.0, 1.0), (0.0, 1.5)), n=n, method=method), u) > 1e-3


def test_order_four_dst_and_sparse_agree_and_satisfy_the_scheme():
    bounds = ((0.0, 2.0), (-0.5, 1.0))
    a = poisson_2d(_exp_sin_wave_f, _exp_sin_wave, bounds=bounds, n=(41, 17), method="dst", order=4)
    b = poisson_2d(_exp_sin_wave_f, _exp_sin_wave, bounds=bounds, n=(41, 17), method="sparse", order=4)
    np.testing.assert_allclose(a.fields["u"], b.fields["u"], rtol=0, atol=1e-12 * np.max(np.abs(a.fields["u"])))
    X, Y = np.meshgrid(a.coords["x"], a.coords["y"], indexing="ij")
    hx, hy = a.spacing["x"], a.spacing["y"]
    residual = laplacian_9pt(a.fields["u"], hx, hy) - mehrstellen_rhs(_exp_sin_wave_f(X, Y), hx, hy)
    assert np.max(np.abs(residual)) < 1e-10
    for edge in (np.s_[0, :], np.s_[-1, :], np.s_[:, 0], np.s_[:, -1]):
        np.testing.assert_array_equal(a.fields["u"][edge], _exp_sin_wave(X, Y)[edge])


def test_laplacian_9pt_weights():
    # hx = hy = h: [[1, 4, 1], [4, -20, 4], [1, 4, 1]] / (6 h^2) at the centre of a 3 x 3 grid.
    h = 0.1
    stencil = np.array([[1, 4, 1], [4, -20, 4], [1, 4, 1]]) / (6 * h**2)
    for i in range(3):
        for j in range(3):
            delta = np.zeros((3, 3))
            delta[i, j] = 1.0
            assert laplacian_9pt(delta, h, h)[0, 0] == pytest.approx(stencil[i, j], rel=1e-12)


def test_poisson2d_default_reference_is_below_1e_minus_7():
    """The default Poisson2D reference (order 4 at the default resolution) against the
    exact solution; measured 3.9e-9 at 513^2 (6.3e-8 at 257^2), 0.3 s."""
    torch = pytest.importorskip("torch")
    from pinn_sine.problems.poisson import Poisson2D

    problem = Poisson2D()
    ref = problem.compute_reference(problem.default_resolution)
    assert ref.order == 4 and ref.solver == "fd9-dst"
    exact = problem.exact(torch.from_numpy(ref.points())).numpy().reshape(ref.grid_shape)
    error = np.linalg.norm(ref.fields["u"] - exact) / np.linalg.norm(exact)
    assert error <= 1e-7
    assert ref.attrs["error_method"] == "exact"
    assert ref.attrs["error_estimate"] == pytest.approx(error, rel=1e-6)


@pytest.mark.parametrize("order, match", [
    (3, r"order=3 is not supported; expected 2 \(5-point stencil\) or 4 .*Pass order=2 or order=4"),
    ("4", r"order='4' is not supported"),
    (True, r"order=True is not supported"),
])
def test_invalid_order(order, match):
    with pytest.raises(ValueError, match=match):
        poisson_2d(_sine_mode_f, n=9, order=order)


def test_solver_names_have_versions():
    from pinn_sine.validation.fd.versions import SOLVER_VERSIONS

    names = {poisson_2d(_sine_mode_f, n=9, method=m, order=o).solver for m in ("dst", "sparse") for o in (2, 4)}
    assert names == {"fd5-dst", "fd5-sparse", "fd9-dst", "fd9-sparse"}
    assert names <= set(SOLVER_VERSIONS)
