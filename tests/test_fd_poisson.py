"""Convergence and error-message tests for the 5-point Poisson reference solver."""

from __future__ import annotations

import numpy as np
import pytest

from pinn_sine.validation.fd._solution import FDSolution
from pinn_sine.validation.fd.poisson import laplacian_5pt, poisson_2d

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
