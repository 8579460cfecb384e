"""Finite-difference reference solvers for the 1-D and 2-D wave equation.

    u_tt = c(x)^2 u_xx                     on [x0, x1],            t >= 0   (wave_1d)
    u_tt = c(x, y)^2 (u_xx + u_yy)         on [x0, x1] x [y0, y1], t >= 0   (wave_2d)
    u(0) = u0,  u_t(0) = 0

Space (``order``), on node grids that include the walls:
  * ``order=2``: the 3-point second difference per axis,
        L u_i = (u_{i-1} - 2 u_i + u_{i+1}) / h^2.
  * ``order=4``: the 5-point fourth-order second difference per axis,
        L u_i = (-u_{i-2} + 16 u_{i-1} - 30 u_i + 16 u_{i+1} - u_{i+2}) / (12 h^2),
    closed next to a u = 0 wall by the odd reflection u_{-j} = -u_j (about the wall node)
    for the one ghost node beyond the wall.  The reflection is exact for the sine modes
    sin(k pi (x - x0) / (x1 - x0)), so these remain the discrete eigenvectors:
        L sin(k pi j / m) = -lambda_k sin(k pi j / m),  s = sin(theta / 2),
        theta = k pi / m  (m = nx - 1),
        lambda_k = 4 s^2 / h^2                  (order 2)
        lambda_k = 4 s^2 (1 + s^2 / 3) / h^2    (order 4),
    with relative errors -theta^2 / 12 and -theta^4 / 90 against the exact (k pi / (m h))^2.
    For variable c the odd ghost is exact only to O(h^4 u_xxxx): on a u = 0 wall the PDE
    gives u_xx = 0 but u_xxxx = -2 (c^2)_x / c^2 u_xxx, so the first interior node carries
    an O(h^2) truncation error.  That error does not show in the global error (measured
    order 4.0 for a pulse reflected off walls where c_x != 0, tests/test_fd_wave.py; a
    closure with the u_xxxx term changed the error by ~1 %).  Initial data that violate
    this compatibility condition (e.g. sin(pi x) with c_x != 0 at a wall) make the exact
    solution itself non-smooth at the wall, and every scheme then converges more slowly
    (measured ~3.2).

Time (``method``):
  * ``"leapfrog"``, order 2 (solver ``"leapfrog"``):
        u^{n+1} - 2 u^n + u^{n-1} = dt^2 c^2 L u^n,
    started with the Taylor step  u^1 = u^0 + (dt^2 / 2) c^2 L u^0  (zero initial velocity).
  * ``"leapfrog"``, order 4 (solver ``"leapfrog4"``): the modified-equation (Dablain /
    Lax-Wendroff) leapfrog.  With A = c^2 L (c^2 applied pointwise after L) and
        E(s) = I + (s^2 / 2) A + (s^4 / 24) A^2,   the Taylor polynomial of cos(s sqrt(-A)),
    the step is  u^{n+1} = 2 E(dt) u^n - u^{n-1}, i.e.
        u^{n+1} - 2 u^n + u^{n-1} = dt^2 A u^n + (dt^4 / 12) A^2 u^n,
    which uses u_tttt = A^2 u to cancel leapfrog's dt^2 error: local error O(dt^6), global
    O(dt^4).  Start (u_t(0) = 0): u^1 = E(dt) u^0, also fourth order.
  * ``"dst"`` (solvers ``"dst2-exact-time"``, ``"dst4-exact-time"``): constant c and
    reflecting walls only.  The interior values are expanded in the sine modes above with
    a type-1 discrete sine transform (scipy.fft.dstn) and each mode is advanced exactly,
        u_hat_k(t) = u_hat_k(0) cos(c sqrt(lambda_k) t),
    so the only error is the spatial one (order 2 or 4) and the cost is one inverse
    transform per output time, independent of t.  No time step: ``cfl`` must not be given
    and ``spacing`` has no "t" entry.

Boundaries:
  * ``"reflecting"``: homogeneous Dirichlet, u = 0 on the walls.  Non-zero wall data is
    not supported.  With order-2 leapfrog the scheme conserves ``discrete_energy``
    exactly (up to round-off) while dt is constant.
  * ``"absorbing"`` (order 2 leapfrog only): first-order Engquist-Majda / Sommerfeld
    condition u_t + c du/dn = 0 (n the outward normal).  At a boundary node the leapfrog
    update is applied with a ghost node beyond the wall, and the ghost is eliminated with
    the centred discretisation  (u_ghost - u_inner) / (2 h) = -(u^{n+1} - u^{n-1}) / (2 c dt).
    This gives an explicit, second-order, dissipative update
        (1 + s) u^{n+1} = 2 u^n - (1 - s) u^{n-1} + dt^2 c^2 L~ u^n,
    where L~ is the Laplacian with the ghost replaced by the mirrored inner neighbour and
    s = sum over the walls the node lies on of c dt / h (both walls at a corner).
    Waves at normal incidence leave without reflection; at incidence angle theta the
    reflection coefficient is (1 - cos theta) / (1 + cos theta).

Time step and CFL number: with z = dt^2 c^2 lambda for the largest discrete eigenvalue,
leapfrog (amplification equation g + 1/g = 2 - z) is stable for z < 4 and the order-4
scheme (g + 1/g = 2 - z + z^2 / 12) for z < 12.  The largest eigenvalue of -L is below
4 sum_d 1 / h_d^2 (order 2) and (16 / 3) sum_d 1 / h_d^2 (order 4), so

    dt_stable = S / (c_max * sqrt(sum_d 1 / h_d^2)),   S = 1 (order 2),  S = 3/2 (order 4)

(order 2 in 1-D: h / c_max; 2-D with equal spacing: h / (c_max sqrt 2)).  The CFL number
is defined relative to this limit, ``dt_max = cfl * dt_stable``, so any 0 < cfl <= 1 is
stable for either order.  Every output time is hit exactly: the gap between successive
output times T_k - T_{k-1} is marched with ceil(gap / dt_max) equal steps.  Where dt
changes from one gap to the next, a variable-step form of the scheme is used for the
first step of the new gap (second order for leapfrog, fourth order for leapfrog4; see
``_advance`` and ``_restart4``), so the stored ``spacing["t"]`` is the largest step taken.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import fft

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
ORDERS = (2, 4)
METHODS = ("leapfrog", "dst")
#: solver name per (method, order), as stored in ``FDSolution.solver``
SOLVER_NAMES = {
    ("leapfrog", 2): "leapfrog",
    ("leapfrog", 4): "leapfrog4",
    ("dst", 2): "dst2-exact-time",
    ("dst", 4): "dst4-exact-time",
}
#: dt_stable * c_max * sqrt(sum 1 / h^2) per order (see the module docstring)
_STABILITY_FACTOR = {2: 1.0, 4: 1.5}
#: cfl used when none is given, per space dimension (the historical defaults)
_DEFAULT_CFL = {1: 0.9, 2: 0.5}

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
    cfl: float | None = None,
    boundary: str = "reflecting",
    order: int = 2,
    method: str = "leapfrog",
) -> FDSolution:
    """Solve u_tt = c(x)^2 u_xx, u(0) = u0, u_t(0) = 0 (schemes: module docstring).

    Args:
        u0: initial displacement, a callable ``u0(x)`` on the ``(nx,)`` grid or an
            ``(nx,)`` array.  With ``"reflecting"`` walls it must vanish at both ends.
        c: wave speed, a positive float, a callable ``c(x)`` or an ``(nx,)`` array
            (``method="dst"`` needs a float).
        bounds: ``(x0, x1)`` with ``x0 < x1``.
        nx: number of nodes including both boundary nodes, >= 3.
        t_out: ``(nt,)`` strictly increasing output times, all >= 0 (0 gives u0).
        cfl: leapfrog time step as a fraction of the stable step ``S h / c_max`` (S = 1
            for order 2, 3/2 for order 4); 0 < cfl <= 1, default 0.9.  Not allowed with
            ``method="dst"``, which takes no time steps.
        boundary: ``"reflecting"`` (u = 0) or ``"absorbing"`` (u_t + c du/dn = 0; order 2
            leapfrog only).
        order: spatial (and, for leapfrog, temporal) order of accuracy, 2 or 4.
        method: ``"leapfrog"`` (time stepping; any c) or ``"dst"`` (exact time per sine
            mode; constant c, reflecting walls).

    Returns:
        ``FDSolution`` with coords ``{"t": (nt,), "x": (nx,)}``, field ``"u"`` of shape
        ``(nt, nx)``, solver ``SOLVER_NAMES[(method, order)]``, order ``order``, spacing
        ``{"t": dt, "x": h}`` (no "t" for ``method="dst"``).
    """
    boundary = _check_boundary(boundary)
    order, method = _check_scheme(order, method, boundary)
    x0, x1 = parse_interval(bounds, "bounds")
    nx = parse_count(nx, "nx")
    x = np.linspace(x0, x1, nx)
    h = (x1 - x0) / (nx - 1)
    speed = _speed(c, (x,), (nx,))
    t_out = _check_times(t_out)
    u_init = evaluate_on_grid(u0, (x,), (nx,), "u0")
    if boundary == "reflecting":
        _check_zero_walls(u_init)
    solver = SOLVER_NAMES[(method, order)]

    if method == "dst":
        _check_dst_arguments(speed, cfl)
        eigenvalues = _discrete_eigenvalues((nx,), (h,), order)
        u = _evolve_modes(u_init, speed, eigenvalues, t_out)
        return FDSolution(coords={"t": t_out, "x": x}, fields={"u": u}, solver=solver,
                          order=order, spacing={"x": h})

    dt_max = _time_step(_DEFAULT_CFL[1] if cfl is None else cfl, speed, (h,), order)
    if order == 4:
        u, dt_used = _march4(u_init, speed**2, _laplacian4((nx,), (h,)), t_out, dt_max)
    else:
        u, dt_used = _march(u_init, speed**2, *_laplacian2_1d(nx, h, speed, boundary),
                            t_out, dt_max)
    return FDSolution(
        coords={"t": t_out, "x": x},
        fields={"u": u},
        solver=solver,
        order=order,
        spacing={"t": float(dt_used), "x": h},
    )


def wave_2d(
    u0: GridFunction | np.ndarray,
    *,
    c: float | GridFunction | np.ndarray = 1.0,
    bounds: tuple[tuple[float, float], tuple[float, float]] = ((-1.0, 1.0), (-1.0, 1.0)),
    n: int | tuple[int, int] = (257, 257),
    t_out: Sequence[float] | np.ndarray,
    cfl: float | None = None,
    boundary: str = "reflecting",
    order: int = 2,
    method: str = "leapfrog",
) -> FDSolution:
    """Solve u_tt = c(x, y)^2 Laplacian(u), u(0) = u0, u_t(0) = 0 (schemes: module docstring).

    Args:
        u0: initial displacement, a callable ``u0(X, Y)`` on ``(nx, ny)`` meshgrid arrays
            ("ij" indexing) or an ``(nx, ny)`` array.  With ``"reflecting"`` walls it must
            vanish on the boundary.
        c: wave speed, a positive float, a callable ``c(X, Y)`` or an ``(nx, ny)`` array
            (``method="dst"`` needs a float).
        bounds: ``((x0, x1), (y0, y1))`` with ``x0 < x1`` and ``y0 < y1``.
        n: nodes per axis including boundary nodes, an int or ``(nx, ny)``, each >= 3.
        t_out: ``(nt,)`` strictly increasing output times, all >= 0 (0 gives u0).
        cfl: leapfrog time step as a fraction of the stable step
            ``S / (c_max sqrt(1/hx^2 + 1/hy^2))`` (S = 1 for order 2, 3/2 for order 4);
            0 < cfl <= 1, default 0.5.  Not allowed with ``method="dst"``.
        boundary: ``"reflecting"`` (u = 0) or ``"absorbing"`` (u_t + c du/dn = 0; order 2
            leapfrog only).
        order: spatial (and, for leapfrog, temporal) order of accuracy, 2 or 4.
        method: ``"leapfrog"`` (time stepping; any c) or ``"dst"`` (exact time per sine
            mode; constant c, reflecting walls).

    Returns:
        ``FDSolution`` with coords ``{"t": (nt,), "x": (nx,), "y": (ny,)}``, field ``"u"``
        of shape ``(nt, nx, ny)``, solver ``SOLVER_NAMES[(method, order)]``, order
        ``order``, spacing ``{"t": dt, "x": hx, "y": hy}`` (no "t" for ``method="dst"``).
    """
    boundary = _check_boundary(boundary)
    order, method = _check_scheme(order, method, boundary)
    (x0, x1), (y0, y1) = parse_bounds_2d(bounds)
    nx, ny = parse_shape_2d(n)
    x = np.linspace(x0, x1, nx)
    y = np.linspace(y0, y1, ny)
    hx = (x1 - x0) / (nx - 1)
    hy = (y1 - y0) / (ny - 1)
    X, Y = np.meshgrid(x, y, indexing="ij")
    speed = _speed(c, (X, Y), (nx, ny))
    t_out = _check_times(t_out)
    u_init = evaluate_on_grid(u0, (X, Y), (nx, ny), "u0")
    if boundary == "reflecting":
        _check_zero_walls(u_init)
    solver = SOLVER_NAMES[(method, order)]
    coords = {"t": t_out, "x": x, "y": y}

    if method == "dst":
        _check_dst_arguments(speed, cfl)
        eigenvalues = _discrete_eigenvalues((nx, ny), (hx, hy), order)
        u = _evolve_modes(u_init, speed, eigenvalues, t_out)
        return FDSolution(coords=coords, fields={"u": u}, solver=solver, order=order,
                          spacing={"x": hx, "y": hy})

    dt_max = _time_step(_DEFAULT_CFL[2] if cfl is None else cfl, speed, (hx, hy), order)
    if order == 4:
        u, dt_used = _march4(u_init, speed**2, _laplacian4((nx, ny), (hx, hy)), t_out, dt_max)
    else:
        u, dt_used = _march(u_init, speed**2, *_laplacian2_2d((nx, ny), (hx, hy), speed, boundary),
                            t_out, dt_max)
    return FDSolution(
        coords=coords,
        fields={"u": u},
        solver=solver,
        order=order,
        spacing={"t": float(dt_used), "x": hx, "y": hy},
    )


def sine_series_evolution(
    u_init: np.ndarray,
    *,
    c: float,
    bounds: Sequence[tuple[float, float]],
    t_out: Sequence[float] | np.ndarray,
) -> np.ndarray:
    """Exact evolution, with u = 0 walls and constant c, of the sine interpolant of u_init.

    On the node grid of ``bounds`` (m_d + 1 nodes along axis d, walls included) the
    interior values are the type-1 DST of their sine coefficients,

        u_init(x_j) = sum_k a_k prod_d sin(k_d pi j_d / m_d),
        u(x, t)     = sum_k a_k cos(c |kappa_k| t) prod_d sin(kappa_{k,d} (x_d - x0_d)),
        kappa_{k,d} = k_d pi / (x1_d - x0_d),

    the exact solution of u_tt = c^2 Laplacian(u), u_t(0) = 0 from that sine series,
    evaluated on the grid.  Its error against the PDE solution from the function u0
    sampled into u_init is the aliasing of u0's sine coefficients beyond the grid's
    Nyquist wavenumber pi / h: round-off for data resolved on the grid (a Gaussian of
    width w needs exp(-(pi w / h)^2 / 2) <~ 1e-16, i.e. h <= w / 2.7).  No time step and
    no dispersion: an independent reference for the FD schemes.

    Args:
        u_init: ``(nx,)`` or ``(nx, ny)`` grid values, walls included (they are taken
            as 0).
        c: the constant wave speed (> 0).
        bounds: one ``(x0, x1)`` per axis of ``u_init``.
        t_out: ``(nt,)`` strictly increasing output times, all >= 0.

    Returns:
        ``(nt, *u_init.shape)`` float64 array, 0 on the walls.
    """
    u_init = np.array(u_init, dtype=np.float64)
    if u_init.ndim not in (1, 2) or min(u_init.shape) < 3:
        raise ValueError(
            f"u_init has shape {u_init.shape}; expected a 1-D or 2-D grid with at least 3 "
            "nodes per axis (walls included)"
        )
    try:
        intervals = [parse_interval(b, f"bounds[{d}]") for d, b in enumerate(bounds)]
    except TypeError:
        intervals = []
    if len(intervals) != u_init.ndim:
        raise ValueError(
            f"bounds={bounds!r} must hold one (x0, x1) per axis of u_init ({u_init.ndim})"
        )
    if callable(c) or np.ndim(c) != 0:
        raise ValueError(
            f"c={c!r} must be a constant positive float: the sine modes are eigenfunctions "
            "only for constant c"
        )
    speed = _speed(c, (), ())
    times = _check_times(t_out)
    kappa2 = np.zeros(tuple(s - 2 for s in u_init.shape))
    for d, ((a, b), size) in enumerate(zip(intervals, u_init.shape)):
        k = np.arange(1, size - 1) * (np.pi / (b - a))
        kappa2 = kappa2 + np.expand_dims(k**2, tuple(e for e in range(u_init.ndim) if e != d))
    return _evolve_modes(u_init, speed, kappa2, times)


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
    Dirichlet walls and a constant step dt, order-2 leapfrog conserves E exactly; the
    staggered potential term is positive only when the CFL condition holds.  (The
    order-4 schemes conserve a different quadratic form; E is then only approximately
    constant.)

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


# --- spatial operators ---------------------------------------------------------------


def _laplacian2_1d(
    nx: int, h: float, speed: float | np.ndarray, boundary: str
) -> tuple[LaplacianFn, np.ndarray | None]:
    """Order-2 L and the absorbing-wall rate c / h (None for reflecting walls)."""
    inv_h2 = 1.0 / h**2
    if boundary == "reflecting":
        def laplacian(u: np.ndarray, out: np.ndarray) -> None:
            out[1:-1] = (u[2:] - 2.0 * u[1:-1] + u[:-2]) * inv_h2

        return laplacian, None

    def laplacian_absorbing(u: np.ndarray, out: np.ndarray) -> None:
        out[1:-1] = (u[2:] - 2.0 * u[1:-1] + u[:-2]) * inv_h2
        # Mirrored ghost node: the absorbing condition supplies the rest.
        out[0] = 2.0 * (u[1] - u[0]) * inv_h2
        out[-1] = 2.0 * (u[-2] - u[-1]) * inv_h2

    sigma_rate = np.zeros(nx)
    sigma_rate[0] = _at(speed, 0) / h
    sigma_rate[-1] = _at(speed, -1) / h
    return laplacian_absorbing, sigma_rate


def _laplacian2_2d(
    shape: tuple[int, int], spacing: tuple[float, float], speed: float | np.ndarray,
    boundary: str,
) -> tuple[LaplacianFn, np.ndarray | None]:
    """Order-2 5-point L and the absorbing-wall rate (None for reflecting walls)."""
    ihx2, ihy2 = 1.0 / spacing[0] ** 2, 1.0 / spacing[1] ** 2
    if boundary == "reflecting":
        def laplacian(u: np.ndarray, out: np.ndarray) -> None:
            centre = u[1:-1, 1:-1]
            out[1:-1, 1:-1] = (u[2:, 1:-1] + u[:-2, 1:-1] - 2.0 * centre) * ihx2 + (
                u[1:-1, 2:] + u[1:-1, :-2] - 2.0 * centre
            ) * ihy2

        return laplacian, None

    def laplacian_absorbing(u: np.ndarray, out: np.ndarray) -> None:
        # x part on every row, mirrored ghosts on the x walls ...
        out[1:-1, :] = (u[2:, :] + u[:-2, :] - 2.0 * u[1:-1, :]) * ihx2
        out[0, :] = 2.0 * (u[1, :] - u[0, :]) * ihx2
        out[-1, :] = 2.0 * (u[-2, :] - u[-1, :]) * ihx2
        # ... plus the y part on every column, mirrored on the y walls.
        out[:, 1:-1] += (u[:, 2:] + u[:, :-2] - 2.0 * u[:, 1:-1]) * ihy2
        out[:, 0] += 2.0 * (u[:, 1] - u[:, 0]) * ihy2
        out[:, -1] += 2.0 * (u[:, -2] - u[:, -1]) * ihy2

    c_grid = np.broadcast_to(speed, shape)
    hx, hy = spacing
    sigma_rate = np.zeros(shape)
    sigma_rate[0, :] += c_grid[0, :] / hx
    sigma_rate[-1, :] += c_grid[-1, :] / hx
    sigma_rate[:, 0] += c_grid[:, 0] / hy
    sigma_rate[:, -1] += c_grid[:, -1] / hy
    return laplacian_absorbing, sigma_rate


def _laplacian4(shape: tuple[int, ...], spacing: tuple[float, ...]) -> LaplacianFn:
    """Order-4 L (5 points per axis) with odd-reflection ghosts beyond u = 0 walls.

    ``laplacian(u, out)`` writes the interior of ``out`` only (walls stay 0).  ``u`` is
    copied into a buffer padded by one ghost layer per side, ghost = -(first interior
    node): u_{-1} = -u_1 about the wall node u_0 = 0.  A = c^2 L keeps w = A u zero on
    the walls, and w solves the same equation, so the same closure serves A^2 u = A(A u).
    """
    ndim = len(shape)
    pad = np.zeros(tuple(s + 2 for s in shape))
    interior = (slice(1, -1),) * ndim

    def along(axis: int, index: slice, other: slice) -> tuple[slice, ...]:
        return tuple(index if a == axis else other for a in range(ndim))

    # (ghost layer in pad, its mirror image in u) per axis and side
    ghosts = []
    for axis in range(ndim):
        ghosts.append((along(axis, slice(0, 1), slice(1, -1)), along(axis, slice(1, 2), slice(None))))
        ghosts.append((along(axis, slice(-1, None), slice(1, -1)), along(axis, slice(-2, -1), slice(None))))
    # pad index p holds u index p - 1; the interior u nodes 1..n-2 are pad 2..n-1.
    taps = []
    for axis, (size, h) in enumerate(zip(shape, spacing)):
        offsets = [along(axis, slice(k, size - 2 + k), slice(2, -2)) for k in range(5)]
        taps.append((offsets, 1.0 / (12.0 * h**2)))

    def laplacian(u: np.ndarray, out: np.ndarray) -> None:
        pad[interior] = u
        for ghost, mirror in ghosts:
            np.negative(u[mirror], out=pad[ghost])
        total = None
        for (m2, m1, c0, p1, p2), w in taps:
            term = (16.0 * (pad[m1] + pad[p1]) - (pad[m2] + pad[p2]) - 30.0 * pad[c0]) * w
            total = term if total is None else total + term
        out[interior] = total

    return laplacian


def _discrete_eigenvalues(
    shape: tuple[int, ...], spacing: tuple[float, ...], order: int
) -> np.ndarray:
    """lambda_k of -L for the interior sine modes, shape ``tuple(n - 2 for n in shape)``.

    Per axis (m = n - 1, s = sin(k pi / (2 m)), k = 1..m-1): 4 s^2 / h^2 (order 2) or
    4 s^2 (1 + s^2 / 3) / h^2 (order 4, the 5-point stencil with odd ghosts); summed
    over the axes.
    """
    ndim = len(shape)
    total = np.zeros(tuple(n - 2 for n in shape))
    for axis, (n, h) in enumerate(zip(shape, spacing)):
        s2 = np.sin(np.arange(1, n - 1) * (np.pi / (2 * (n - 1)))) ** 2
        lam = 4.0 * s2 / h**2
        if order == 4:
            lam *= 1.0 + s2 / 3.0
        total = total + np.expand_dims(lam, tuple(a for a in range(ndim) if a != axis))
    return total


def _evolve_modes(
    u_init: np.ndarray, speed: float, eigenvalues: np.ndarray, t_out: np.ndarray
) -> np.ndarray:
    """u(t) = idst(dst(u_init interior) * cos(c sqrt(lambda) t)) at each t, walls 0."""
    interior = (slice(1, -1),) * u_init.ndim
    coefficients = fft.dstn(u_init[interior], type=1)
    omega = speed * np.sqrt(eigenvalues)
    out = np.zeros((len(t_out),) + u_init.shape)
    for k, t in enumerate(t_out):
        out[(k,) + interior] = fft.idstn(coefficients * np.cos(omega * t), type=1)
    return out


# --- time marching -------------------------------------------------------------------


def _gap_steps(t_out: np.ndarray, dt_max: float) -> list[tuple[int, float]]:
    """Per output time, the (number, size) of the equal steps that reach it from the
    previous one: ceil(gap / dt_max) steps of gap / steps, or (0, 0.0) where the time
    repeats the previous one (or is t = 0)."""
    plan, t = [], 0.0
    for t_target in t_out:
        gap = t_target - t
        if gap > 0:
            steps = max(1, math.ceil(gap / dt_max - _STEP_COUNT_SLACK))
            plan.append((steps, gap / steps))
            t = t_target
        else:
            plan.append((0, 0.0))
    return plan


def _march(
    u0: np.ndarray,
    c2: float | np.ndarray,
    laplacian: LaplacianFn,
    sigma_rate: np.ndarray | None,
    t_out: np.ndarray,
    dt_max: float,
) -> tuple[np.ndarray, float]:
    """Order-2 leapfrog from t = 0: the ``(nt, *grid)`` fields at ``t_out`` and max dt.

    ``laplacian(u, out)`` writes L u into ``out`` (it never touches entries it does not
    own, so Dirichlet walls stay 0).  ``sigma_rate`` is c / h summed over the walls a node
    lies on (absorbing walls) or None (reflecting walls).
    """
    out = np.empty((len(t_out),) + u0.shape)
    lap = np.zeros_like(u0)
    u_prev: np.ndarray | None = None
    u = u0.copy()
    u_next = np.zeros_like(u0)
    dt_prev = 0.0
    plan = _gap_steps(t_out, dt_max)
    for k, (steps, dt) in enumerate(plan):
        if steps:
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
        out[k] = u
    return out, max((dt for _, dt in plan), default=0.0)


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
    """Take ``steps`` order-2 steps of size dt; the first follows a step of size dt0.

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


def _march4(
    u0: np.ndarray,
    c2: float | np.ndarray,
    laplacian: LaplacianFn,
    t_out: np.ndarray,
    dt_max: float,
) -> tuple[np.ndarray, float]:
    """Order-4 modified-equation leapfrog from t = 0 (reflecting walls).

    Each step is u^{n+1} = 2 E(dt) u^n - u^{n-1} with E(s) = I + s^2/2 A + s^4/24 A^2 and
    A = c^2 L; the first step of the run, and of every gap whose dt differs from the
    previous one, is ``_restart4``.  Returns the ``(nt, *grid)`` fields and the max dt.
    """
    def apply(v: np.ndarray, res: np.ndarray) -> None:
        laplacian(v, res)
        res *= c2

    out = np.empty((len(t_out),) + u0.shape)
    a1, a2 = np.zeros_like(u0), np.zeros_like(u0)
    u_prev: np.ndarray | None = None
    u = u0.copy()
    dt_prev = 0.0
    plan = _gap_steps(t_out, dt_max)
    for k, (steps, dt) in enumerate(plan):
        if steps:
            if u_prev is None or dt != dt_prev:
                u_prev, u = u, _restart4(u, u_prev, dt_prev, dt, apply)
                steps -= 1
            half, quarter = dt**2, dt**4 / 12.0
            for _ in range(steps):
                apply(u, a1)
                apply(a1, a2)
                # u^{n+1} written over u^{n-1}: -u^{n-1} + 2 u^n + dt^2 A u + dt^4/12 A^2 u
                u_prev *= -1.0
                u_prev += 2.0 * u
                u_prev += half * a1
                u_prev += quarter * a2
                u_prev, u = u, u_prev
            dt_prev = dt
        out[k] = u
    return out, max((dt for _, dt in plan), default=0.0)


def _restart4(
    u: np.ndarray,
    u_prev: np.ndarray | None,
    dt0: float,
    dt1: float,
    apply: LaplacianFn,
) -> np.ndarray:
    """One fourth-order step of size dt1 after a step of size dt0 (or from rest).

    With C(s) = cos(s sqrt(-A)) and S(s) = sin(s sqrt(-A)) / sqrt(-A), the exact solution
    satisfies u(t_n -+ s) = C(s) u^n -+ O(s), O(s) = S(s) u_t(t_n).  Hence

        O0 = E(dt0) u^n - u^{n-1}                    (E: C to O(s^6); O0 = 0 from rest)
        O1 = r R O0,  r = dt1 / dt0,  R = S(dt1) S(dt0)^{-1} / r to O(dt^6):
           R = I + (dt1^2 - dt0^2)/6 A + (dt1^4/120 + 7 dt0^4/360 - dt1^2 dt0^2/36) A^2
        u^{n+1} = E(dt1) u^n + O1,

    local error O(dt^6) like a regular step (R = I and u^{n+1} = 2 E u^n - u^{n-1} when
    dt1 = dt0).  Returns u^{n+1} (a new array).
    """
    a1, a2 = np.zeros_like(u), np.zeros_like(u)
    apply(u, a1)
    apply(a1, a2)
    u_next = u + (0.5 * dt1**2) * a1 + (dt1**4 / 24.0) * a2
    if u_prev is None:
        return u_next  # u_t(0) = 0
    odd = u + (0.5 * dt0**2) * a1 + (dt0**4 / 24.0) * a2 - u_prev
    apply(odd, a1)
    apply(a1, a2)
    r = dt1 / dt0
    second = dt1**4 / 120.0 + 7.0 * dt0**4 / 360.0 - dt1**2 * dt0**2 / 36.0
    u_next += r * (odd + ((dt1**2 - dt0**2) / 6.0) * a1 + second * a2)
    return u_next


# --- validation ----------------------------------------------------------------------


def _check_boundary(boundary: str) -> str:
    if boundary not in BOUNDARIES:
        raise ValueError(f"Invalid boundary {boundary!r}. Must be one of {list(BOUNDARIES)}")
    return boundary


def _check_scheme(order: int, method: str, boundary: str) -> tuple[int, str]:
    """Validate ``order`` and ``method`` and their combination with ``boundary``."""
    if isinstance(order, bool) or order not in ORDERS:
        raise ValueError(f"order={order!r} is not supported. Must be one of {list(ORDERS)}")
    if method not in METHODS:
        raise ValueError(f"Invalid method {method!r}. Must be one of {list(METHODS)}")
    if boundary == "absorbing" and (order, method) != (2, "leapfrog"):
        raise ValueError(
            f"boundary='absorbing' is implemented for order=2, method='leapfrog' only (its "
            f"Engquist-Majda ghost closure is second order), got order={order}, "
            f"method={method!r}; use order=2, method='leapfrog' or boundary='reflecting'"
        )
    return int(order), method


def _check_dst_arguments(speed: float | np.ndarray, cfl: float | None) -> None:
    """method='dst' needs a constant c and takes no time step."""
    if np.ndim(speed) != 0:
        raise ValueError(
            "method='dst' needs a constant wave speed c (a float): the sine modes are "
            "eigenvectors of c^2 L only for constant c; got a c that varies on the grid; "
            "use method='leapfrog' for variable c"
        )
    if cfl is not None:
        raise ValueError(
            f"cfl={cfl!r} was given but method='dst' takes no time steps (each mode is "
            "advanced exactly); drop cfl or use method='leapfrog'"
        )


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


def _time_step(
    cfl: float, speed: float | np.ndarray, spacing: tuple[float, ...], order: int
) -> float:
    """dt_max = cfl * dt_stable, dt_stable = S / (c_max sqrt(sum 1 / h_d^2)), S by order."""
    c_max = float(np.max(speed))
    dt_stable = _STABILITY_FACTOR[order] / (c_max * math.sqrt(sum(1.0 / h**2 for h in spacing)))
    if isinstance(cfl, bool) or not isinstance(cfl, (int, float, np.floating, np.integer)) \
            or not math.isfinite(cfl):
        raise ValueError(f"cfl={cfl!r} must be a finite number in (0, 1]")
    if cfl <= 0:
        raise ValueError(
            f"cfl={cfl} must be positive: it is dt / dt_stable; use 0 < cfl <= 1"
        )
    if cfl > 1:
        raise ValueError(
            f"cfl={cfl} > 1 is unstable for {SOLVER_NAMES[('leapfrog', order)]}: the stable "
            f"step is dt <= {dt_stable:.6g} (h={min(spacing):.6g}, c_max={c_max:.6g}); use "
            "cfl <= 1"
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
