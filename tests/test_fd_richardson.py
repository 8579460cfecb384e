"""Richardson extrapolation: order p -> p + 2, its error estimates, and its errors."""

from __future__ import annotations

import numpy as np
import pytest

from pinn_sine.validation.fd import FDSolution, poisson_2d, richardson

BOUNDS = ((0.0, 2.0), (-0.5, 1.0))


def _u(X, Y):
    # Non-zero Dirichlet data on every edge; no polynomial part a scheme gets exactly.
    return np.exp(X) * np.sin(Y) + np.sin(2 * X + Y)


def _f(X, Y):
    return -5.0 * np.sin(2 * X + Y)


def _solve(order=2):
    def solve(n):
        return poisson_2d(_f, _u, bounds=BOUNDS, n=n, order=order)

    return solve


def _max_error(sol):
    X, Y = np.meshgrid(sol.coords["x"], sol.coords["y"], indexing="ij")
    return float(np.max(np.abs(sol.fields["u"] - _u(X, Y))))


def _rel_error(sol):
    X, Y = np.meshgrid(sol.coords["x"], sol.coords["y"], indexing="ij")
    exact = _u(X, Y)
    return float(np.linalg.norm(sol.fields["u"] - exact) / np.linalg.norm(exact))


def _slope(hs, errors):
    return np.polyfit(np.log(hs), np.log(errors), 1)[0]


# hx = hy on ((0, 2), (-0.5, 1)) for (4 m + 1, 3 m + 1) nodes; the int grid has hx != hy.
@pytest.mark.parametrize(
    "grids",
    [[(9, 7), (17, 13), (33, 25), (65, 49)], [9, 17, 33, 65]],
    ids=["tuple-n", "int-n"],
)
def test_extrapolated_five_point_scheme_is_fourth_order(grids):
    hs, errors = [], []
    for n in grids:
        sol = richardson(_solve(), n, 2)
        hs.append(sol.spacing["x"])
        errors.append(_max_error(sol))
    assert sol.order == 4 and sol.solver == "fd5-dst-richardson"
    assert sol.shape == ((n, n) if isinstance(n, int) else n)
    # Measured slopes 3.89 and 3.87 (3.8, 3.9 per halving; the 5-point solutions alone: 2.00).
    assert 3.7 < _slope(hs, errors) < 4.3, (hs, errors)


def test_extrapolation_is_the_formula_on_the_coarse_nodes():
    sol = richardson(_solve(), (17, 13), 2)
    coarse = poisson_2d(_f, _u, bounds=BOUNDS, n=(17, 13))
    fine = poisson_2d(_f, _u, bounds=BOUNDS, n=(33, 25))
    np.testing.assert_allclose(sol.fields["u"], (4 * fine.fields["u"][::2, ::2] - coarse.fields["u"]) / 3,
                               rtol=0, atol=1e-13)
    np.testing.assert_array_equal(sol.coords["x"], coarse.coords["x"])
    assert sol.spacing == coarse.spacing


def test_error_estimates_track_the_errors():
    # Measured estimate / true error: 0.89 (extrapolated, three-level) and 0.97 (fine).
    sol = richardson(_solve(), (33, 25), 2)
    assert 0.8 < sol.error_estimate / _rel_error(sol) < 1.25, (sol.error_estimate, _rel_error(sol))
    fine = richardson(_solve(), (33, 25), 2, result="fine")
    assert fine.order == 2 and fine.solver == "fd5-dst" and fine.shape == (65, 49)
    np.testing.assert_array_equal(fine.fields["u"], poisson_2d(_f, _u, bounds=BOUNDS, n=(65, 49)).fields["u"])
    assert 0.8 < fine.error_estimate / _rel_error(fine) < 1.25, (fine.error_estimate, _rel_error(fine))
    # the extrapolated field is far better than the finer solution it came from
    assert sol.error_estimate < 0.01 * fine.error_estimate  # measured 3.6e-4


def test_region_restricts_the_estimate():
    everywhere = richardson(_solve(), 33, 2)
    left = richardson(_solve(), 33, 2, region=lambda X, Y: X <= 1.0)
    np.testing.assert_array_equal(left.fields["u"], everywhere.fields["u"])
    assert left.error_estimate != everywhere.error_estimate
    with pytest.raises(ValueError, match=r"region\(\.\.\.\) returned a mask of shape \(17,\) with"):
        richardson(_solve(), 33, 2, region=lambda X, Y: np.ones(17, bool))
    with pytest.raises(ValueError, match=r"with 0 True entries"):
        richardson(_solve(), 33, 2, region=lambda X, Y: X > 5.0)


def test_fourth_order_scheme_extrapolates_to_sixth_order():
    """The compact 9-point scheme is symmetric too, so its error also expands in even
    powers: Richardson with p = 4 gives order 6 (measured slope 6.0)."""
    hs, errors = [], []
    for n in (9, 17, 33):
        sol = richardson(_solve(order=4), n, 4)
        hs.append(sol.spacing["x"])
        errors.append(_max_error(sol))
    assert sol.order == 6 and sol.solver == "fd9-dst-richardson"
    assert 5.5 < _slope(hs, errors) < 6.5, (hs, errors)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(order=0), r"order=0 must be the positive int formal order p of solve"),
        (dict(order=2.5), r"order=2.5 must be the positive int formal order p"),
        (dict(order=True), r"order=True must be the positive int"),
        (dict(result="coarse"), r"Invalid result 'coarse'. Must be one of \['extrapolated', 'fine'\]"),
        (dict(n=16), r"n=16: the error estimate of the extrapolated field needs a grid at 2h.*result='fine'"),
        (dict(n=(17, 16)), r"n=\(17, 16\): the error estimate"),
        (dict(n=16.0), r"n=16.0 must be an int >= 2 or a tuple of them"),
    ],
    ids=["order-0", "order-float", "order-bool", "bad-result", "even-n", "even-n-tuple", "float-n"],
)
def test_invalid_arguments(kwargs, match):
    args = {"n": 17, "order": 2, **kwargs}
    n, order = args.pop("n"), args.pop("order")
    with pytest.raises(ValueError, match=match):
        richardson(_solve(), n, order, **args)


def test_grids_that_do_not_nest_raise():
    def fixed_grid(n):  # ignores n
        return poisson_2d(_f, _u, bounds=BOUNDS, n=17)

    with pytest.raises(ValueError, match=r"the grids do not nest along 'x': 17 coarse nodes, 17 fine ones"):
        richardson(fixed_grid, 17, 2)

    def other_fields(n):
        sol = poisson_2d(_f, _u, bounds=BOUNDS, n=n)
        name = "u" if np.size(n) == 1 and n == 17 else "v"
        return FDSolution(sol.coords, {name: sol.fields["u"]}, sol.solver, 2, sol.spacing)

    with pytest.raises(ValueError, match=r"solve returned fields \['v'\] and \['u'\]"):
        richardson(other_fields, 17, 2)


def test_fdsolution_validates_error_estimate():
    x = np.linspace(0.0, 1.0, 3)
    for bad in (-1e-3, float("nan"), True, "small"):
        with pytest.raises(ValueError, match=r"FDSolution.error_estimate=.* must be None or a finite number >= 0"):
            FDSolution({"x": x}, {"u": np.zeros(3)}, "fd5", 2, {"x": 0.5}, error_estimate=bad)
    assert FDSolution({"x": x}, {"u": np.zeros(3)}, "fd5", 2, {"x": 0.5}).error_estimate is None
