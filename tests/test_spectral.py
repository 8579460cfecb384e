"""The Fourier pseudo-spectral ETDRK4 solver (pinn_sine.validation.spectral): the
contour-integral phi functions against their closed forms and Taylor series, fourth order
in time (an ODE with an exact solution and a stiff Allen-Cahn run against a fine step),
spectral accuracy in x, the dealiased cubic term against its exact Galerkin truncation,
the grid's evaluation and projection, and the errors for bad arguments."""
from __future__ import annotations

import math

import numpy as np
import pytest

from pinn_sine.validation.spectral import (PeriodicGrid, allen_cahn_1d, etdrk4, etdrk4_coefficients, padded_size,
                                           phi_functions, pseudo_spectral)


def _closed(z):
    """phi1, phi2, phi3 written out (accurate for |z| >~ 1 only)."""
    e = np.exp(z)
    return (e - 1) / z, (e - 1 - z) / z ** 2, (e - 1 - z - z * z / 2) / z ** 3


def _taylor(z, terms=30):
    """phi_k(z) = sum_j z^j / (j + k)!, summed far beyond rounding for |z| <= 1."""
    z = np.asarray(z, dtype=np.complex128)
    return tuple(sum(z ** j / math.factorial(j + k) for j in range(terms)) for k in (1, 2, 3))


# ----- the phi functions ------------------------------------------------------------------------
def test_contour_phi_functions_match_the_closed_forms_where_those_are_accurate():
    z = np.concatenate([-np.logspace(0, 3, 25), np.linspace(1.0, 4.0, 7)])
    for got, want in zip(phi_functions(z), _closed(z)):
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=2e-14, atol=0)
    # complex z (a dispersive symbol, i k^3 h): the same, and no real part dropped
    w = np.array([3j, -2 + 5j, -40 - 1j, 1.5 - 2j])
    for got, want in zip(phi_functions(w), _closed(w)):
        np.testing.assert_allclose(got, want, rtol=2e-14, atol=0)


def test_contour_phi_functions_stay_accurate_as_z_goes_to_zero():
    z = np.array([0.0, 1e-14, -1e-12, 1e-9, -1e-6, 1e-4, -1e-3, 0.01, -0.1, 0.5, -1.0])
    for got, want in zip(phi_functions(z), _taylor(z)):
        np.testing.assert_allclose(got, want.real, rtol=3e-14, atol=0)
    np.testing.assert_allclose([p[0] for p in phi_functions(np.zeros(1))], [1.0, 0.5, 1 / 6], rtol=1e-15)
    # ...where the closed form has lost its digits (the reason for the contour)
    small = np.array([-1e-5])
    assert abs(_closed(small)[2][0] - _taylor(small)[2][0].real) > 1e-3


def test_etdrk4_coefficients_are_kassam_trefethens():
    """Q, f1, f2, f3 of Kassam & Trefethen (2005), eq. (2.5) and the alpha, beta, gamma
    of their code, where the closed forms are accurate (|z| >= 3: at z = -1 f1's closed form
    already loses two digits); all -> h/2, h/6 as h l -> 0."""
    z = np.concatenate([-np.logspace(0.5, 2.5, 12), [3.0, 4.5]])
    h = 0.3
    c = etdrk4_coefficients(z / h, h)
    e = np.exp(z)
    np.testing.assert_allclose(c.E, e, rtol=1e-13)  # e^{(z / h) h}: z rounds
    np.testing.assert_allclose(c.Q, h * (np.exp(z / 2) - 1) / z, rtol=1e-14)
    np.testing.assert_allclose(c.f1, h * (-4 - z + e * (4 - 3 * z + z * z)) / z ** 3, rtol=1e-13)
    np.testing.assert_allclose(c.f2, h * (2 + z + e * (z - 2)) / z ** 3, rtol=1e-13)
    np.testing.assert_allclose(c.f3, h * (-4 - 3 * z - z * z + e * (4 - z)) / z ** 3, rtol=1e-13)
    tiny = etdrk4_coefficients(np.array([0.0, 1e-16]), h)
    np.testing.assert_allclose(tiny.Q, [h / 2] * 2, rtol=1e-14)
    for f in (tiny.f1, tiny.f2, tiny.f3):
        np.testing.assert_allclose(f, [h / 6] * 2, rtol=1e-14)


# ----- order in time ----------------------------------------------------------------------------
STEPS = [1 / 80, 1 / 160, 1 / 320]


def _order(steps, errors) -> float:
    return float(np.polyfit(np.log(steps), np.log(errors), 1)[0])


def test_etdrk4_is_fourth_order_on_an_ode_with_an_exact_solution():
    """u' = a u - a u^3 (L = a, N = -a u^3): u = u0 e^{at} / sqrt(1 + u0^2 (e^{2at} - 1))."""
    a, u0 = 5.0, 0.1
    exact = u0 * math.exp(a) / math.sqrt(1 + u0 ** 2 * (math.exp(2 * a) - 1))
    errors = [abs(etdrk4(np.array([a]), lambda v: -a * v ** 3, np.array([u0]), [1.0], dt)[-1, 0].real - exact)
              for dt in STEPS]
    assert errors[-1] > 1e-12  # well above rounding
    assert 3.7 <= _order(STEPS, errors) <= 4.3, errors


def _smooth(x):
    return 0.5 * np.sin(np.pi * x) + 0.3 * np.cos(2 * np.pi * x) - 0.1


def test_etdrk4_is_fourth_order_on_a_stiff_allen_cahn_run():
    """eps = 0.02, 128 modes (spatially converged to ~1e-12, and stiff: eps k_max^2 h up
    to 10): the errors at three steps against a run with a step 8 times smaller."""
    times = [0.5, 1.0]
    fine = allen_cahn_1d(0.02, 5.0, _smooth, times, n_modes=128, dt=STEPS[-1] / 8)[1]
    errors = [np.linalg.norm(allen_cahn_1d(0.02, 5.0, _smooth, times, n_modes=128, dt=dt)[1] - fine)
              / np.linalg.norm(fine) for dt in STEPS]
    assert errors[-1] > 1e-11
    assert 3.7 <= _order(STEPS, errors) <= 4.3, errors


# ----- accuracy in x ----------------------------------------------------------------------------
def test_doubling_the_modes_reaches_rounding_on_a_smooth_case():
    """eps = 0.05 (fronts ~0.14 wide): the field at t = 1 with 32, 64, 128 modes against
    256, evaluated between the nodes; the error falls geometrically to rounding."""
    x = np.linspace(-1, 1, 101)
    u = {}
    for n in (32, 64, 128, 256):
        grid, states = allen_cahn_1d(0.05, 5.0, _smooth, [1.0], n_modes=n, dt=0.01)
        u[n] = grid.evaluate(states[-1], x)
    err = {n: float(np.abs(u[n] - u[256]).max()) for n in (32, 64, 128)}
    assert err[32] > 1e-6 and err[64] < 1e-8 and err[128] < 1e-13, err
    assert err[32] / err[64] > 1e3


def test_padding_gives_the_exact_galerkin_truncation_of_the_cubic_term():
    grid = PeriodicGrid(16, -1.0, 2.0)
    rng = np.random.default_rng(0)
    v = rng.normal(size=9) + 1j * rng.normal(size=9)
    v[0], v[-1] = v[0].real, 0.0
    # u^3 exactly: on 64 nodes the cubic of modes < 8 (up to 21) is resolved without aliasing
    big = PeriodicGrid(64, -1.0, 2.0)
    wide = np.zeros(33, dtype=np.complex128)
    wide[:9] = v * 4
    exact = big.transform(big.values(wide) ** 3)[:9] / 4
    exact[-1] = 0.0
    padded = pseudo_spectral(grid, 3, lambda u: u ** 3)(v)
    np.testing.assert_allclose(padded, exact, rtol=0, atol=1e-12 * np.abs(exact).max())
    aliased = pseudo_spectral(grid, None, lambda u: u ** 3)(v)
    assert np.abs(aliased - exact).max() > 1e-2 * np.abs(exact).max()
    assert padded_size(16, 3) == 32 and padded_size(16, 2) == 24 and padded_size(16, None) == 16


def test_grid_evaluates_between_nodes_and_projects():
    grid = PeriodicGrid(32, -1.0, 2.0)
    f = lambda x: np.sin(3 * np.pi * x) + 0.25 * np.cos(7 * np.pi * x + 0.3)  # noqa: E731
    df = lambda x: 3 * np.pi * np.cos(3 * np.pi * x) - 1.75 * np.pi * np.sin(7 * np.pi * x + 0.3)  # noqa: E731
    v = grid.transform(f(grid.x))
    np.testing.assert_allclose(grid.values(v), f(grid.x), atol=1e-14)
    x = np.linspace(-1, 1, 41)
    np.testing.assert_allclose(grid.evaluate(v, x), f(x), atol=1e-13)
    np.testing.assert_allclose(grid.evaluate(v, x, derivative=1), df(x), atol=1e-12)
    np.testing.assert_allclose(grid.evaluate(np.stack([v, 2 * v]), x)[1], 2 * f(x), atol=1e-13)
    # a band-limited field: the projection is its own coefficients, for any oversampling
    np.testing.assert_allclose(grid.project(f, 8), v, atol=1e-13)
    # a mode beyond the grid aliases onto a kept one at the nodes, and is dropped by the projection
    g = lambda x: np.cos(31 * np.pi * x)  # noqa: E731
    assert np.abs(grid.transform(g(grid.x))).max() > 1.0 and np.abs(grid.project(g, 4)).max() < 1e-12


# ----- bad arguments ----------------------------------------------------------------------------
@pytest.mark.parametrize("call, match", [
    (lambda: phi_functions(1.0, contour_points=2), "contour_points must be an integer >= 4"),
    (lambda: phi_functions(1.0, radius=0.0), "radius must be a finite number > 0"),
    (lambda: etdrk4_coefficients(np.ones(3), 0.0), "h must be a finite step > 0"),
    (lambda: etdrk4(np.ones(2), lambda v: v, np.ones(2), [1.0], -1e-3), "dt must be a finite step > 0"),
    (lambda: etdrk4(np.ones(2), lambda v: v, np.ones(2), [1.0, 0.5], 1e-3), "non-decreasing"),
    (lambda: PeriodicGrid(15, 0.0, 1.0), "n_modes must be an even integer >= 4"),
    (lambda: PeriodicGrid(16, 0.0, 0.0), "length must be a finite period > 0"),
    (lambda: PeriodicGrid(16, 0.0, 1.0).project(np.sin, 0), "oversample must be an integer >= 1"),
    (lambda: padded_size(16, 0), "degree must be an integer >= 1"),
    (lambda: allen_cahn_1d(0.01, 1.0, np.ones(7), [1.0], n_modes=8, dt=0.1), "u0 must be 8 finite nodal values"),
])
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
