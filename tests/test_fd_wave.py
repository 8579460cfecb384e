"""Convergence, energy and error-message tests for the leapfrog wave solvers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pinn_sine.validation.fd.wave import discrete_energy, wave_1d, wave_2d

PI = np.pi


def _slope(h, err) -> float:
    return float(np.polyfit(np.log(h), np.log(err), 1)[0])


def test_wave_1d_converges_with_order_two():
    c = 2.0

    def exact(t, x):
        return np.sin(PI * x) * np.cos(c * PI * t) + 0.5 * np.sin(4 * PI * x) * np.cos(4 * c * PI * t)

    # Irregular output gaps give a different dt per gap, so the variable-step update
    # between gaps is part of what is being checked.
    t_out = [0.0, 0.13, 0.5, 0.77, 1.0]
    h, err = [], []
    for nx in (33, 65, 129, 257):
        sol = wave_1d(lambda x: exact(0.0, x), c=c, bounds=(0.0, 1.0), nx=nx, t_out=t_out, cfl=0.5)
        T, X = np.meshgrid(sol.coords["t"], sol.coords["x"], indexing="ij")
        h.append(sol.spacing["x"])
        err.append(np.max(np.abs(sol.fields["u"] - exact(T, X))))
    assert 1.8 <= _slope(h, err) <= 2.2, err


def test_wave_2d_converges_with_order_two():
    # Standing mode sin(pi x) sin(pi y) on [0, 1] x [0, 2] (vanishes on all walls),
    # angular frequency c * pi * sqrt(2).
    c = 1.5
    omega = c * PI * math.sqrt(2.0)

    def exact(t, x, y):
        return np.sin(PI * x) * np.sin(PI * y) * np.cos(omega * t)

    h, err = [], []
    for nx in (17, 33, 65, 129):
        n = (nx, 2 * nx - 1)  # equal spacing in x and y
        sol = wave_2d(
            lambda X, Y: exact(0.0, X, Y), c=c, bounds=((0.0, 1.0), (0.0, 2.0)), n=n,
            t_out=[0.25, 0.6], cfl=0.5,
        )
        T, X, Y = np.meshgrid(*sol.coords.values(), indexing="ij")
        h.append(sol.spacing["x"])
        err.append(np.max(np.abs(sol.fields["u"] - exact(T, X, Y))))
    assert 1.8 <= _slope(h, err) <= 2.2, err


def test_output_layout_and_exact_time_hits():
    t_out = np.array([0.0, 0.1, 0.35])
    sol = wave_2d(lambda X, Y: np.sin(PI * X) * np.sin(PI * Y), n=(9, 7), t_out=t_out)
    assert list(sol.coords) == ["t", "x", "y"]
    assert sol.fields["u"].shape == (3, 9, 7)
    assert sol.solver == "leapfrog" and sol.order == 2
    np.testing.assert_array_equal(sol.coords["t"], t_out)
    X, Y = np.meshgrid(sol.coords["x"], sol.coords["y"], indexing="ij")
    np.testing.assert_allclose(sol.fields["u"][0], np.sin(PI * X) * np.sin(PI * Y), atol=1e-15)
    # The step used never exceeds cfl * dt_stable (default cfl = 0.5).
    dt_stable = 1.0 / math.sqrt(1 / sol.spacing["x"] ** 2 + 1 / sol.spacing["y"] ** 2)
    assert sol.spacing["t"] <= 0.5 * dt_stable * (1 + 1e-9)

    sol_1d = wave_1d(lambda x: np.sin(PI * x), nx=11, t_out=[0.2, 0.4])
    assert list(sol_1d.coords) == ["t", "x"] and sol_1d.fields["u"].shape == (2, 11)


def _energies(u, t, h, c) -> np.ndarray:
    return np.array([
        discrete_energy(u[k], u[k + 1], dt=t[k + 1] - t[k], h=h, c=c) for k in range(len(t) - 1)
    ])


@pytest.mark.parametrize("variable_c", [False, True], ids=["constant-c", "variable-c"])
def test_discrete_energy_conserved_1d(variable_c):
    nx, steps = 129, 3000
    x = np.linspace(0.0, 1.0, nx)
    h = x[1] - x[0]
    c = (lambda x: 1.0 + 0.5 * np.sin(3 * x)) if variable_c else 1.3
    c_grid = c(x) if variable_c else c
    # Every step is an output, so consecutive stored levels are consecutive leapfrog levels.
    dt = 0.95 * h / np.max(c_grid)
    t = np.arange(steps + 1) * dt
    sol = wave_1d(lambda x: np.exp(-((x - 0.4) ** 2) / 0.005), c=c, nx=nx, t_out=t, cfl=0.99)
    energy = _energies(sol.fields["u"], t, h, c_grid)
    assert energy.min() > 0
    assert np.max(np.abs(energy / energy[0] - 1)) < 1e-12


@pytest.mark.parametrize("variable_c", [False, True], ids=["constant-c", "variable-c"])
def test_discrete_energy_conserved_2d(variable_c):
    n, bounds, steps = (65, 49), ((-1.0, 1.0), (-1.0, 0.5)), 1500
    x, y = np.linspace(-1.0, 1.0, n[0]), np.linspace(-1.0, 0.5, n[1])
    hx, hy = x[1] - x[0], y[1] - y[0]
    X, Y = np.meshgrid(x, y, indexing="ij")
    c = (lambda X, Y: 1.0 + 0.5 * np.sin(2 * X) * np.cos(3 * Y)) if variable_c else 0.8
    c_grid = c(X, Y) if variable_c else c
    dt = 0.95 / (np.max(c_grid) * math.sqrt(1 / hx**2 + 1 / hy**2))
    t = np.arange(steps + 1) * dt
    sol = wave_2d(
        lambda X, Y: np.exp(-((X - 0.2) ** 2 + (Y + 0.3) ** 2) / 0.02),
        c=c, bounds=bounds, n=n, t_out=t, cfl=0.99,
    )
    energy = _energies(sol.fields["u"], t, (hx, hy), c_grid)
    assert energy.min() > 0
    assert np.max(np.abs(energy / energy[0] - 1)) < 1e-12


def _energy_at(boundary: str, times: list[float], n: int = 65) -> list[float]:
    """Energy of a centred Gaussian pulse on [-1, 1]^2 at each time in ``times``."""
    delta = 1e-4  # one short extra step after each time gives the pair of levels
    t_out = [0.0, delta] + [s for t in times for s in (t, t + delta)]
    sol = wave_2d(lambda X, Y: np.exp(-(X**2 + Y**2) / 0.01), n=n, t_out=t_out, boundary=boundary)
    h = (sol.spacing["x"], sol.spacing["y"])
    u = sol.fields["u"]
    return [discrete_energy(u[k], u[k + 1], dt=delta, h=h) for k in range(0, len(t_out), 2)]


def test_absorbing_walls_let_the_pulse_leave():
    # The pulse reaches the walls at t = 1 and the corners at t = sqrt(2); by t = 2 it
    # has left.  Measured at n = 65: remaining energy 0.22 % of the initial (0.13 % at
    # n = 129), from the oblique-incidence reflections of the first-order condition and
    # the slowly decaying 2-D wake.  The bound leaves ~10x margin.
    e0_abs, e_abs = _energy_at("absorbing", [2.0])
    e0_ref, e_ref = _energy_at("reflecting", [2.0])
    assert e0_abs == pytest.approx(e0_ref, rel=1e-12)
    assert e_ref / e0_ref == pytest.approx(1.0, abs=0.01)
    assert e_abs / e_ref < 0.02


def test_absorbing_wall_1d_is_transparent_at_normal_incidence():
    # Measured 1.3e-7 of the initial energy left at t = 1 (nx = 257).
    delta = 1e-4
    sol = wave_1d(
        lambda x: np.exp(-((x - 0.5) ** 2) / 0.002), nx=257,
        t_out=[0.0, delta, 1.0, 1.0 + delta], boundary="absorbing",
    )
    u, h = sol.fields["u"], sol.spacing["x"]
    ratio = discrete_energy(u[2], u[3], dt=delta, h=h) / discrete_energy(u[0], u[1], dt=delta, h=h)
    assert ratio < 1e-5


def _pulse_1d(x):
    return np.sin(PI * x) ** 3


def _pulse_2d(X, Y):
    return np.sin(PI * (X + 1) / 2) * np.sin(PI * (Y + 1) / 2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"cfl": 1.3}, r"cfl=1.3 > 1 is unstable for leapfrog: the stable step is dt <= 0.0078125 .*use cfl <= 1"),
        ({"cfl": 0.0}, r"cfl=0.0 must be positive"),
        ({"cfl": -0.5}, r"cfl=-0.5 must be positive"),
        ({"t_out": [0.5, 0.2]}, r"t_out is not strictly increasing"),
        ({"t_out": [0.2, 0.2]}, r"t_out is not strictly increasing"),
        ({"t_out": [-0.1, 0.5]}, r"t_out has a negative time -0.1.*\[0, t_max\]"),
        ({"t_out": [0.1, np.inf]}, r"t_out contains nan or inf"),
        ({"t_out": []}, r"t_out has shape \(0,\); expected a non-empty"),
        ({"c": 0.0}, r"c=0.0 must be a positive finite wave speed"),
        ({"c": -1.0}, r"c=-1.0 must be a positive finite wave speed"),
        ({"c": lambda x: x - 0.5}, r"c must be positive everywhere on the grid, got min\(c\)=-0.5"),
        ({"boundary": "periodic"}, r"Invalid boundary 'periodic'.*\['reflecting', 'absorbing'\]"),
        ({"nx": 2}, r"nx=2 is too small"),
        ({"bounds": (1.0, 0.0)}, r"bounds=\(1.0, 0.0\) is reversed"),
    ],
)
def test_wave_1d_invalid_arguments(kwargs, match):
    args = {"nx": 129, "t_out": [0.5]} | kwargs
    with pytest.raises(ValueError, match=match):
        wave_1d(_pulse_1d, **args)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        # h = 2 / 64, c = 2: dt_stable = h / (c sqrt 2) = 0.0110485
        ({"cfl": 1.01}, r"cfl=1.01 > 1 is unstable for leapfrog: the stable step is dt <= 0.0110485 .*use cfl <= 1"),
        ({"cfl": 0.0}, r"cfl=0.0 must be positive"),
        ({"t_out": [0.3, 0.1]}, r"t_out is not strictly increasing"),
        ({"t_out": [-1.0]}, r"t_out has a negative time"),
        ({"c": -2.0}, r"c=-2.0 must be a positive finite wave speed"),
        ({"c": lambda X, Y: X}, r"c must be positive everywhere on the grid"),
        ({"c": np.ones((3, 3))}, r"c has shape \(3, 3\), expected the grid shape \(65, 65\)"),
        ({"n": (65, 1)}, r"n\[1\] \(ny\)=1 is too small"),
        ({"bounds": ((-1.0, 1.0), (1.0, -1.0))}, r"bounds\[1\] \(y\)=\(1.0, -1.0\) is reversed"),
    ],
)
def test_wave_2d_invalid_arguments(kwargs, match):
    args = {"n": 65, "c": 2.0, "t_out": [0.5]} | kwargs
    with pytest.raises(ValueError, match=match):
        wave_2d(_pulse_2d, **args)


def test_reflecting_walls_need_vanishing_initial_data():
    with pytest.raises(ValueError, match=r"u0 is 1 on the boundary but reflecting walls impose u = 0"):
        wave_2d(lambda X, Y: np.ones_like(X), n=17, t_out=[0.1])
    with pytest.raises(ValueError, match=r"use boundary='absorbing'"):
        wave_1d(lambda x: np.cos(PI * x), nx=17, t_out=[0.1])
    # The same data is fine with absorbing walls.
    wave_2d(lambda X, Y: np.ones_like(X), n=17, t_out=[0.1], boundary="absorbing")
