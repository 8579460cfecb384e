"""Leapfrog finite-difference reference solvers for the 1-D and 2-D wave equation.

    u_tt = c(x)^2 u_xx                     on [x0, x1],            t >= 0   (wave_1d)
    u_tt = c(x, y)^2 (u_xx + u_yy)         on [x0, x1] x [y0, y1], t >= 0   (wave_2d)
    u(0) = u0,  u_t(0) = 0

Second-order central differences in space (3-/5-point Laplacian L) and time:

    (u^{n+1} - 2 u^n + u^{n-1}) / dt^2 = c^2 L u^n,

started with the Taylor step  u^1 = u^0 + (dt^2 / 2) c^2 L u^0  (zero initial velocity).

Boundaries:
  * ``"reflecting"``: homogeneous Dirichlet, u = 0 on the walls.  The scheme then
    conserves ``discrete_energy`` exactly (up to round-off) while dt is constant.
  * ``"absorbing"``: first-order Engquist-Majda / Sommerfeld condition
    u_t + c du/dn = 0 (n the outward normal).  At a boundary node the leapfrog update is
    applied with a ghost node beyond the wall, and the ghost is eliminated with the
    centred discretisation  (u_ghost - u_inner) / (2 h) = -(u^{n+1} - u^{n-1}) / (2 c dt).
    This gives an explicit, second-order, dissipative update
        (1 + s) u^{n+1} = 2 u^n - (1 - s) u^{n-1} + dt^2 c^2 L~ u^n,
    where L~ is the Laplacian with the ghost replaced by the mirrored inner neighbour and
    s = sum over the walls the node lies on of c dt / h (both walls at a corner).
    Waves at normal incidence leave without reflection; at incidence angle theta the
    reflection coefficient is (1 - cos theta) / (1 + cos theta).

Time step and CFL number: the leapfrog scheme is stable for dt <= dt_stable with

    dt_stable = 1 / (c_max * sqrt(sum_d 1 / h_d^2))

(1-D: h / c_max; 2-D with equal spacing: h / (c_max sqrt 2)).  The CFL number is defined
relative to this limit, ``dt_max = cfl * dt_stable``, so any 0 < cfl <= 1 is stable.
Every output time is hit exactly: the gap between successive output times T_k - T_{k-1}
is marched with ceil(gap / dt_max) equal steps.  Where dt changes from one gap to the
next the three-level variable-step form of the scheme (second-order, see ``_step``) is
used, so the stored ``spacing["t"]`` is the largest step taken.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from pinn_sine.validation.fd._solution import (
    FDSolution,
    GridFunction,
    evaluate_on_grid,
    parse_bounds_2d,
    parse_count,
    parse_interval,
    parse_shape_2d,
)

BOUNDARIES = ("reflecting", "absorbing")

# Relative slack when counting steps per output gap, so that a gap that is an exact
# multiple of dt_max up to round-off is not given one extra step.
_STEP_COUNT_SLACK = 1e-9

LaplacianFn = Callable[[np.ndarray, np.ndarray], None]


def wave_1d(
    u0: GridFunction | np.ndarray,
    *,
    c: float | GridFunction | np.ndarray = 1.0,
    bounds: tuple[float, float] = (0.0, 1.0),
    nx: int = 257,
    t_out: Sequence[float] | np.ndarray,
    cfl: float = 0.9,
    boundary: str = "reflecting",
) -> FDSolution:
    """Solve u_tt = c(x)^2 u_xx, u(0) = u0, u_t(0) = 0 with leapfrog.

    Args:
        u0: initial displacement, a callable ``u0(x)`` on the ``(nx,)`` grid or an
            ``(nx,)`` array.  With ``"reflecting"`` walls it must vanish at both ends.
        c: wave speed, a positive float, a callable ``c(x)`` or an ``(nx,)`` array.
        bounds: ``(x0, x1)`` with ``x0 < x1``.
        nx: number of nodes including both boundary nodes, >= 3.
        t_out: ``(nt,)`` strictly increasing output times, all >= 0 (0 gives u0).
        cfl: time step as a fraction of the stable leapfrog step h / c_max; 0 < cfl <= 1.
        boundary: ``"reflecting"`` (u = 0) or ``"absorbing"`` (u_t + c du/dn = 0).

    Returns:
        ``FDSolution`` with coords ``{"t": (nt,), "x": (nx,)}``, field ``"u"`` of shape
        ``(nt, nx)``, solver ``"leapfrog"``, order 2, spacing ``{"t": dt, "x": h}``.
    """
    boundary = _check_boundary(boundary)
    x0, x1 = parse_interval(bounds, "bounds")
    nx = parse_count(nx, "nx")
    x = np.linspace(x0, x1, nx)
    h = (x1 - x0) / (nx - 1)
    speed = _speed(c, (x,), (nx,))
    dt_max = _time_step(cfl, speed, (h,))
    t_out = _check_times(t_out)
    u_init = evaluate_on_grid(u0, (x,), (nx,), "u0")
    if boundary == "reflecting":
        _check_zero_walls(u_init)

    inv_h2 = 1.0 / h**2
    if boundary == "reflecting":
        def laplacian(u: np.ndarray, out: np.ndarray) -> None:
            out[1:-1] = (u[2:] - 2.0 * u[1:-1] + u[:-2]) * inv_h2

        sigma_rate = None
    else:
        def laplacian(u: np.ndarray, out: np.ndarray) -> None:
            out[1:-1] = (u[2:] - 2.0 * u[1:-1] + u[:-2]) * inv_h2
            # Mirrored ghost node: the absorbing condition supplies the rest.
            out[0] = 2.0 * (u[1] - u[0]) * inv_h2
            out[-1] = 2.0 * (u[-2] - u[-1]) * inv_h2

        sigma_rate = np.zeros(nx)
        sigma_rate[0] = _at(speed, 0) / h
        sigma_rate[-1] = _at(speed, -1) / h

    u, dt_used = _march(u_init, speed**2, laplacian, sigma_rate, t_out, dt_max)
    return FDSolution(
        coords={"t": t_out, "x": x},
        fields={"u": u},
        solver="leapfrog",
        order=2,
        spacing={"t": float(dt_used), "x": h},
    )


def wave_2d(
    u0: GridFunction | np.ndarray,
    *,
    c: float | GridFunction | np.ndarray = 1.0,
    bounds: tuple[tuple[float, float], tuple[float, float]] = ((-1.0, 1.0), (-1.0, 1.0)),
    n: int | tuple[int, int] = (257, 257),
    t_out: Sequence[float] | np.ndarray,
    cfl: float = 0.5,
    boundary: str = "reflecting",
) -> FDSolution:
    """Solve u_tt = c(x, y)^2 Laplacian(u), u(0) = u0, u_t(0) = 0 with leapfrog.

    Args:
        u0: initial displacement, a callable ``u0(X, Y)`` on ``(nx, ny)`` meshgrid arrays
            ("ij" indexing) or an ``(nx, ny)`` array.  With ``"reflecting"`` walls it must
            vanish on the boundary.
        c: wave speed, a positive float, a callable ``c(X, Y)`` or an ``(nx, ny)`` array.
        bounds: ``((x0, x1), (y0, y1))`` with ``x0 < x1`` and ``y0 < y1``.
        n: nodes per axis including boundary nodes, an int or ``(nx, ny)``, each >= 3.
        t_out: ``(nt,)`` strictly increasing output times, all >= 0 (0 gives u0).
        cfl: time step as a fraction of the stable leapfrog step
            ``1 / (c_max sqrt(1/hx^2 + 1/hy^2))``; 0 < cfl <= 1.
        boundary: ``"reflecting"`` (u = 0) or ``"absorbing"`` (u_t + c du/dn = 0).

    Returns:
        ``FDSolution`` with coords ``{"t": (nt,), "x": (nx,), "y": (ny,)}``, field ``"u"``
        of shape ``(nt, nx, ny)``, solver ``"leapfrog"``, order 2, spacing
        ``{"t": dt, "x": hx, "y": hy}``.
    """
    boundary = _check_boundary(boundary)
    (x0, x1), (y0, y1) = parse_bounds_2d(bounds)
    nx, ny = parse_shape_2d(n)
    x = np.linspace(x0, x1, nx)
    y = np.linspace(y0, y1, ny)
    hx = (x1 - x0) / (nx - 1)
    hy = (y1 - y0) / (ny - 1)
    X, Y = np.meshgrid(x, y, indexing="ij")
    speed = _speed(c, (X, Y), (nx, ny))
    dt_max = _time_step(cfl, speed, (hx, hy))
    t_out = _check_times(t_out)
    u_init = evaluate_on_grid(u0, (X, Y), (nx, ny), "u0")
    if boundary == "reflecting":
        _check_zero_walls(u_init)

    ihx2, ihy2 = 1.0 / hx**2, 1.0 / hy**2
    if boundary == "reflecting":
        def laplacian(u: np.ndarray, out: np.ndarray) -> None:
            centre = u[1:-1, 1:-1]
            out[1:-1, 1:-1] = (u[2:, 1:-1] + u[:-2, 1:-1] - 2.0 * centre) * ihx2 + (
                u[1:-1, 2:] + u[1:-1, :-2] - 2.0 * centre
            ) * ihy2

        sigma_rate = None
    else:
        def laplacian(u: np.ndarray, out: np.ndarray) -> None:
            # x part on every row, mirrored ghosts on the x walls ...
            out[1:-1, :] = (u[2:, :] + u[:-2, :] - 2.0 * u[1:-1, :]) * ihx2
            out[0, :] = 2.0 * (u[1, :] - u[0, :]) * ihx2
            out[-1, :] = 2.0 * (u[-2, :] - u[-1, :]) * ihx2
            # ... plus the y part on every column, mirrored on the y walls.
            out[:, 1:-1] += (u[:, 2:] + u[:, :-2] - 2.0 * u[:, 1:-1]) * ihy2
            out[:, 0] += 2.0 * (u[:, 1] - u[:, 0]) * ihy2
            out[:, -1] += 2.0 * (u[:, -2] - u[:, -1]) * ihy2

        c_grid = np.broadcast_to(speed, (nx, ny))
        sigma_rate = np.zeros((nx, ny))
        sigma_rate[0, :] += c_grid[0, :] / hx
        sigma_rate[-1, :] += c_grid[-1, :] / hx
        sigma_rate[:, 0] += c_grid[:, 0] / hy
        sigma_rate[:, -1] += c_grid[:, -1] / hy

    u, dt_used = _march(u_init, speed**2, laplacian, sigma_rate, t_out, dt_max)
    return FDSolution(
        coords={"t": t_out, "x": x, "y": y},
        fields={"u": u},
        solver="leapfrog",
        order=2,
        spacing={"t": float(dt_used), "x": hx, "y": hy},
    )


def discrete_energy(
    u_prev: np.ndarray,
    u_next: np.ndarray,
    *,
    dt: float,
    h: float | tuple[float, float],
    c: float | np.ndarray = 1.0,
) -> float:
    """Leapfrog-conserved energy between two consecutive time levels (reflecting walls).

        E^{n+1/2} = 1/2 * prod(h) * [ sum_nodes (v / c)^2 + sum_d sum_edges D_d u^{n+1} D_d u^n ],
        v = (u^{n+1} - u^n) / dt,   D_d u = forward difference along axis d divided by h_d,

    which is the discrete counterpart of 1/2 int (u_t / c)^2 + |grad u|^2 dx (the energy
    of u_tt = c^2 Laplacian(u) divided by c^2 when c is constant).  With homogeneous
    Dirichlet walls and a constant step dt, leapfrog conserves E exactly; the staggered
    potential term is positive only when the CFL condition holds.

    Args:
        u_prev, u_next: ``(nx,)`` or ``(nx, ny)`` grid values u^n and u^{n+1}, boundary
            nodes included.
        dt: the time step between them.
        h: grid spacing, a float (1-D) or ``(hx, hy)`` (2-D).
        c: wave speed, a positive float or an array of the grid shape.

    Returns:
        The energy as a Python float.
    """
    u_prev = np.asarray(u_prev, dtype=np.float64)
    u_next = np.asarray(u_next, dtype=np.float64)
    if u_prev.shape != u_next.shape or u_prev.ndim not in (1, 2):
        raise ValueError(
            f"u_prev and u_next have shapes {u_prev.shape} and {u_next.shape}; expected "
            "two arrays of the same 1-D or 2-D grid shape"
        )
    spacing = (h,) if np.ndim(h) == 0 else tuple(h)
    if len(spacing) != u_prev.ndim or not all(np.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(
            f"h={h!r} must hold one positive spacing per grid axis ({u_prev.ndim})"
        )
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt={dt!r} must be a positive time step")
    c = np.asarray(c, dtype=np.float64)
    if c.ndim != 0 and c.shape != u_prev.shape:
        raise ValueError(f"c has shape {c.shape}; expected a float or the grid shape {u_prev.shape}")
    if np.any(c <= 0):
        raise ValueError("c must be positive")

    kinetic = np.sum(((u_next - u_prev) / (dt * c)) ** 2)
    potential = 0.0
    for axis, h_d in enumerate(spacing):
        potential += np.sum(np.diff(u_next, axis=axis) * np.diff(u_prev, axis=axis)) / h_d**2
    return float(0.5 * math.prod(spacing) * (kinetic + potential))


# --- time marching -------------------------------------------------------------------


def _march(
    u0: np.ndarray,
    c2: float | np.ndarray,
    laplacian: LaplacianFn,
    sigma_rate: np.ndarray | None,
    t_out: np.ndarray,
    dt_max: float,
) -> tuple[np.ndarray, float]:
    """March from t = 0 and return the ``(nt, *grid)`` fields at ``t_out`` and max dt.

    ``laplacian(u, out)`` writes L u into ``out`` (it never touches entries it does not
    own, so Dirichlet walls stay 0).  ``sigma_rate`` is c / h summed over the walls a node
    lies on (absorbing walls) or None (reflecting walls).
    """
    out = np.empty((len(t_out),) + u0.shape)
    lap = np.zeros_like(u0)
    u_prev: np.ndarray | None = None
    u = u0.copy()
    u_next = np.zeros_like(u0)
    t, dt_prev, dt_used = 0.0, 0.0, 0.0
    for k, t_target in enumerate(t_out):
        gap = t_target - t
        if gap > 0:
            steps = max(1, math.ceil(gap / dt_max - _STEP_COUNT_SLACK))
            dt = gap / steps
            dt_used = max(dt_used, dt)
            if u_prev is None:
                # Taylor start with u_t(0) = 0; at absorbing walls the ghost condition
                # with u^{-1} = u^1 reduces to the same formula.
                laplacian(u, lap)
                u_next[...] = u + (0.5 * dt**2) * c2 * lap
                u_prev, u, u_next = u, u_next, np.zeros_like(u0)
                steps -= 1
                dt_prev = dt
            u_prev, u, u_next = _advance(
                u_prev, u, u_next, lap, steps, dt_prev, dt, c2, laplacian, sigma_rate
            )
            if steps > 0:
                dt_prev = dt
            t = t_target
        out[k] = u
    return out, dt_used


def _advance(
    u_prev: np.ndarray,
    u: np.ndarray,
    u_next: np.ndarray,
    lap: np.ndarray,
    steps: int,
    dt0: float,
    dt: float,
    c2: float | np.ndarray,
    laplacian: LaplacianFn,
    sigma_rate: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Take ``steps`` steps of size dt; the first follows a step of size dt0.

    Variable-step leapfrog (r = dt1 / dt0, a = dt1 (dt0 + dt1) / 2):

        u^{n+1} = u^n + r (u^n - u^{n-1}) + a c^2 L u^n,

    second-order consistent and identical to the standard scheme when r = 1.  With the
    absorbing ghost (u_ghost = u_inner - 2 h (u^{n+1} - u^{n-1}) / (c (dt0 + dt1))) the
    boundary update becomes (1 + s) u^{n+1} = (1 + r) u^n - (r - s) u^{n-1} + a c^2 L~ u^n
    with s = dt1 * sigma_rate.
    """
    for step in range(steps):
        dt_before = dt0 if step == 0 else dt
        r = dt / dt_before
        coef = (0.5 * dt * (dt_before + dt)) * c2
        laplacian(u, lap)
        np.multiply(lap, coef, out=u_next)
        u_next += (1.0 + r) * u
        if sigma_rate is None:
            u_next -= r * u_prev
        else:
            sigma = dt * sigma_rate
            u_next -= (r - sigma) * u_prev
            u_next /= 1.0 + sigma
        u_prev, u, u_next = u, u_next, u_prev
    return u_prev, u, u_next


# --- validation ----------------------------------------------------------------------


def _check_boundary(boundary: str) -> str:
    if boundary not in BOUNDARIES:
        raise ValueError(f"Invalid boundary {boundary!r}. Must be one of {list(BOUNDARIES)}")
    return boundary


def _speed(
    c: float | GridFunction | np.ndarray, grids: tuple[np.ndarray, ...], shape: tuple[int, ...]
) -> float | np.ndarray:
    """Wave speed as a float or a positive array of the grid shape."""
    if np.ndim(c) == 0 and not callable(c):
        try:
            speed = float(c)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError(
                f"c={c!r} must be a positive float, a callable of the grid coordinates or "
                "an array of the grid shape"
            ) from None
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"c={c!r} must be a positive finite wave speed, e.g. c=1.0")
        return speed
    speed_grid = evaluate_on_grid(c, grids, shape, "c")
    if np.any(speed_grid <= 0):
        raise ValueError(
            f"c must be positive everywhere on the grid, got min(c)={speed_grid.min():g}; "
            "pass a strictly positive wave speed"
        )
    return speed_grid


def _time_step(cfl: float, speed: float | np.ndarray, spacing: tuple[float, ...]) -> float:
    """dt_max = cfl * dt_stable with dt_stable = 1 / (c_max sqrt(sum 1 / h_d^2))."""
    c_max = float(np.max(speed))
    dt_stable = 1.0 / (c_max * math.sqrt(sum(1.0 / h**2 for h in spacing)))
    if isinstance(cfl, bool) or not isinstance(cfl, (int, float, np.floating, np.integer)) \
            or not math.isfinite(cfl):
        raise ValueError(f"cfl={cfl!r} must be a finite number in (0, 1]")
    if cfl <= 0:
        raise ValueError(
            f"cfl={cfl} must be positive: it is dt / dt_stable; use 0 < cfl <= 1"
        )
    if cfl > 1:
        raise ValueError(
            f"cfl={cfl} > 1 is unstable for leapfrog: the stable step is "
            f"dt <= {dt_stable:.6g} (h={min(spacing):.6g}, c_max={c_max:.6g}); use cfl <= 1"
        )
    return cfl * dt_stable


def _check_times(t_out: Sequence[float] | np.ndarray) -> np.ndarray:
    """Output times as a strictly increasing, finite, non-negative float64 array."""
    times = np.array(t_out, dtype=np.float64)
    if times.ndim != 1 or times.size == 0:
        raise ValueError(
            f"t_out has shape {times.shape}; expected a non-empty 1-D sequence of output "
            "times, e.g. t_out=[0.0, 0.5, 1.0]"
        )
    if not np.all(np.isfinite(times)):
        raise ValueError("t_out contains nan or inf; pass finite output times")
    if times[0] < 0:
        raise ValueError(
            f"t_out has a negative time {times.min():g}; the solution starts at t = 0, "
            "so t_out must lie in [0, t_max]"
        )
    if np.any(np.diff(times) <= 0):
        raise ValueError(
            "t_out is not strictly increasing; sort it and drop duplicates "
            "(np.unique(t_out))"
        )
    return times


def _check_zero_walls(u0: np.ndarray) -> None:
    """Reflecting (u = 0) walls need initial data that vanishes there."""
    walls = np.concatenate([np.ravel(u0[(slice(None),) * a + (i,)])
                            for a in range(u0.ndim) for i in (0, -1)])
    worst = float(np.max(np.abs(walls)))
    scale = float(np.max(np.abs(u0)))
    # Round-off of e.g. sin(pi * 1.0) ~ 1e-16 is tolerated and then zeroed.
    if worst > 1e-8 * scale:
        raise ValueError(
            f"u0 is {worst:.3g} on the boundary but reflecting walls impose u = 0; make u0 "
            "vanish on the boundary or use boundary='absorbing'"
        )
    for a in range(u0.ndim):
        for i in (0, -1):
            u0[(slice(None),) * a + (i,)] = 0.0


def _at(speed: float | np.ndarray, index: int) -> float:
    """Speed at a 1-D grid index (speed may be a scalar)."""
    return float(speed) if np.ndim(speed) == 0 else float(speed[index])
