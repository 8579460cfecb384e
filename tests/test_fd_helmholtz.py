"""Finite-difference Helmholtz solver with PML: order, sign convention, absorption, errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import hankel1

from pinn_sine.validation.fd.helmholtz import helmholtz_2d, points_per_wavelength
from pinn_sine.validation.fd.pml import (
    physical_mask,
    pml_sigma,
    pml_sigma_prime,
    pml_stretch,
)

BOX = ((-1.0, 1.0), (-1.0, 1.0))


def _grid(sol):
    return np.meshgrid(sol.coords["x"], sol.coords["y"], indexing="ij")


def _slope(hs, errors):
    return np.polyfit(np.log(hs), np.log(errors), 1)[0]


# ---------------------------------------------------------------- PML profile


def test_pml_profile_values_and_derivative():
    x = np.linspace(-1.0, 1.0, 2001)
    sigma = pml_sigma(x, -1.0, 1.0, 0.5, 8.0)
    assert np.all(sigma >= 0)
    assert np.all(sigma[np.abs(x) <= 0.5] == 0)
    assert sigma[0] == pytest.approx(8.0) and sigma[-1] == pytest.approx(8.0)
    np.testing.assert_allclose(sigma, sigma[::-1], atol=1e-12)
    # Central differences of the quadratic profile are exact except at the nodes on the
    # kink |x| = 0.5, where they are off by strength * h / width^2 = 0.016.
    fd = np.gradient(sigma, x)
    np.testing.assert_allclose(pml_sigma_prime(x, -1.0, 1.0, 0.5, 8.0)[1:-1], fd[1:-1], atol=0.02)
    s = pml_stretch(x, -1.0, 1.0, 0.5, 8.0, omega=4.0)
    np.testing.assert_allclose(s, 1 + 0.25j * sigma)


def test_pml_functions_accept_torch_tensors():
    torch = pytest.importorskip("torch")
    x = np.linspace(-1.0, 1.0, 101)
    y = np.linspace(-2.0, 2.0, 101)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for fn in (pml_sigma, pml_sigma_prime):
        np.testing.assert_allclose(fn(xt, -1.0, 1.0, 0.3, 5.0).numpy(), fn(x, -1.0, 1.0, 0.3, 5.0), atol=1e-12)
    np.testing.assert_allclose(
        pml_stretch(xt, -1.0, 1.0, 0.3, 5.0, 2.0).numpy(), pml_stretch(x, -1.0, 1.0, 0.3, 5.0, 2.0)
    )
    bounds = ((-1.0, 1.0), (-2.0, 2.0))
    np.testing.assert_array_equal(physical_mask(xt, yt, bounds, 0.3).numpy(), physical_mask(x, y, bounds, 0.3))


# ---------------------------------------------------------------- order 2


def _sine_case(n):
    """u = sin(pi x) sin(4 pi y), k = 1, zero Dirichlet data, no layer."""

    def u(X, Y):
        return np.sin(np.pi * X) * np.sin(4 * np.pi * Y)

    sol = helmholtz_2d(lambda X, Y: (17 * np.pi**2 - 1) * u(X, Y), omega=1.0, n=(n, n), pml_width=None)
    return sol, u


def _variable_c_case(n):
    """Complex u = exp(i(3x + 2y)) (1 + x^2), c = 1 + sin(x + y)/4, u on a rectangle's
    boundary as Dirichlet data, no layer."""
    omega = 4.0

    def u(X, Y):
        return np.exp(1j * (3 * X + 2 * Y)) * (1 + X**2)

    def c(X, Y):
        return 1 + 0.25 * np.sin(X + Y)

    def f(X, Y):
        laplacian = np.exp(1j * (3 * X + 2 * Y)) * (2 + 12j * X - 13 * (1 + X**2))
        return -(laplacian + (omega / c(X, Y)) ** 2 * u(X, Y))

    ny = 3 * (n - 1) // 4 + 1  # same h in x and y on the 2 x 1.5 rectangle
    sol = helmholtz_2d(f, omega=omega, c=c, bounds=((0.0, 2.0), (-1.0, 0.5)), n=(n, ny), pml_width=None, g=u)
    return sol, u


def _stretched_plane_wave_case(n):
    """The analytic continuation u = exp(i (kx x~ + ky y~)), x~ = x + (i/omega) int sigma,
    solves the stretched equation with f = 0 exactly, so it checks the discrete layer
    itself: across the x-layer u decays by exp(-0.8 * 10 * 0.5 / 3) = 0.26."""
    omega, width, strength = 6.0, 0.5, 10.0
    kx, ky = 0.8 * omega, 0.6 * omega

    def stretched(x):
        inner = 1.0 - width
        depth3 = np.clip(x - inner, 0, None) ** 3 - np.clip(-inner - x, 0, None) ** 3
        return x + 1j / omega * strength * depth3 / (3 * width**2)

    def u(X, Y):
        return np.exp(1j * (kx * stretched(X) + ky * stretched(Y)))

    sol = helmholtz_2d(0.0, omega=omega, n=(n, n), pml_width=width, pml_strength=strength, g=u)
    return sol, u


# Measured slopes (max-norm error): sine 2.05, variable c 2.04, stretched wave 1.98.
@pytest.mark.parametrize(
    "case, resolutions",
    [
        (_sine_case, (17, 33, 65, 129)),
        (_variable_c_case, (17, 33, 65, 129)),
        (_stretched_plane_wave_case, (65, 129, 257)),
    ],
    ids=["sine-no-pml", "variable-c-dirichlet", "stretched-wave-pml"],
)
def test_second_order_convergence(case, resolutions):
    hs, errors = [], []
    for n in resolutions:
        sol, u = case(n)
        hs.append(sol.spacing["x"])
        errors.append(np.max(np.abs(sol.fields["u"] - u(*_grid(sol)))))
    assert sol.order == 2
    assert 1.85 <= _slope(hs, errors) <= 2.15, (hs, errors)


# ---------------------------------------------------------------- point source

OMEGA = 20.0  # wavelength 0.314: about 3 wavelengths across the physical region


def _gaussian_source(s):
    """Normalised Gaussian of standard deviation s: integrates to 1, tends to delta."""

    def f(X, Y):
        return np.exp(-(X**2 + Y**2) / (2 * s**2)) / (2 * np.pi * s**2)

    return f


def _far_mask(X, Y, bounds, width, s):
    """Physical region, beyond half a wavelength and 6 s from the source."""
    r = np.hypot(X, Y)
    return physical_mask(X, Y, bounds, width) & (r > np.pi / OMEGA) & (r > 6 * s)


def _rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def test_point_source_matches_outgoing_green_function():
    n = 257
    h = 2.0 / (n - 1)
    s = 2 * h
    sol = helmholtz_2d(_gaussian_source(s), omega=OMEGA, n=(n, n), pml_width=0.5, pml_strength=40.0)
    X, Y = _grid(sol)
    mask = _far_mask(X, Y, BOX, 0.5, s)
    r = np.hypot(X, Y)[mask]
    # Outside the source, G * Gaussian = G(r) * int f J0(k r') dA = G(r) exp(-(k s)^2/2).
    green = 0.25j * hankel1(0, OMEGA * r) * np.exp(-((OMEGA * s) ** 2) / 2)
    u = sol.fields["u"][mask]
    assert points_per_wavelength(OMEGA, 1.0, h) > 40
    # Measured 6.3e-3 (dispersion error at 40 points per wavelength).
    assert _rel(u, green) < 2e-2
    # The incoming solution (opposite sign convention) is nowhere close: measured 1.47.
    assert _rel(u, np.conj(green)) > 1.0


def test_pml_absorbs_outgoing_waves():
    """Reflected field = (box [-1, 1]^2) - (box [-2, 2]^2) on the common physical region,
    same h and layer, so the discretisation is identical and only reflections differ."""
    n_small, n_big = 129, 257
    s = 2 * 2.0 / (n_small - 1)
    f = _gaussian_source(s)
    big_bounds = ((-2.0, 2.0), (-2.0, 2.0))
    big = helmholtz_2d(f, omega=OMEGA, bounds=big_bounds, n=(n_big, n_big), pml_width=0.5, pml_strength=40.0)
    inner = slice(64, 64 + n_small)  # nodes of [-1, 1] inside [-2, 2] at h = 1/64
    reference = big.fields["u"][inner, inner]

    def reflection(strength):
        sol = helmholtz_2d(f, omega=OMEGA, n=(n_small, n_small), pml_width=0.5, pml_strength=strength)
        np.testing.assert_allclose(sol.coords["x"], big.coords["x"][inner])
        mask = _far_mask(*_grid(sol), BOX, 0.5, s)
        return _rel(sol.fields["u"][mask], reference[mask])

    absorbed, default, bare = reflection(40.0), reflection(5.0), reflection(0.0)
    # Measured 6.4e-6 at strength 40; 0.198 at the default strength 5, close to the
    # normal-incidence round trip exp(-2 * 5 * 0.5 / 3) = 0.19; 3.9 at strength 0, where
    # the layer is inert and the outer Dirichlet wall makes the box a resonator.
    assert absorbed < 1e-4
    assert 0.1 < default < 0.4
    assert bare > 0.5


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(omega=0.0), r"omega=0.0 must be"),
        (dict(omega=-3.0), r"omega=-3.0 must be"),
        (dict(omega=5.0, c=-1.0), r"c must be > 0 everywhere; got min\(c\)=-1.0"),
        (dict(omega=5.0, c=np.ones((10, 11))), r"c has shape \(10, 11\), expected the grid shape \(33, 33\)"),
        (dict(omega=5.0, pml_width=1.0), r"PML width=1.0 leaves no physical region.*Use width < 1.0"),
        (dict(omega=5.0, pml_width=-0.1), r"PML width=-0.1 must be > 0"),
        (dict(omega=5.0, pml_strength=-2.0), r"PML strength=-2.0 must be >= 0"),
        (dict(omega=60.0), r"gives 1.68 points per wavelength.*use n >= \(116, 116\)"),
    ],
    ids=["omega-zero", "omega-negative", "c-negative", "c-shape", "pml-too-wide", "pml-negative",
         "strength-negative", "ppw-too-small"],
)
def test_invalid_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        helmholtz_2d(0.0, n=(33, 33), **kwargs)


def test_ppw_message_resolution_is_enough():
    # The resolution the message asks for must itself pass the check.
    helmholtz_2d(0.0, omega=60.0, n=(116, 116))
