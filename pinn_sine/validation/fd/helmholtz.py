"""Finite-difference Helmholtz solver (orders 2 and 4) with a perfectly matched layer.

Solves, on the rectangle ``[x_lo, x_hi] x [y_lo, y_hi]`` with time dependence
``exp(-i omega t)`` (see :mod:`pinn_sine.validation.fd.pml` for the conventions),

    (1/s_x) d/dx((1/s_x) du/dx) + (1/s_y) d/dy((1/s_y) du/dy) + (omega/c)**2 u = -f,
    u = g on the outer boundary,

where ``s_x = 1 + i sigma_x(x)/omega`` is the PML stretch (``s = 1`` in the physical
region, so there the equation is ``Laplacian(u) + k**2 u = -f``). Without a layer the
solver is the plain 5-point Dirichlet problem, used for manufactured-solution tests.

Discretisation: node-centred grid ``np.linspace(lo, hi, n)`` with boundary nodes, flux
form with ``1/s`` evaluated at the half nodes,

    (1/s_i) [ (u_{i+1} - u_i)/s_{i+1/2} - (u_i - u_{i-1})/s_{i-1/2} ] / h**2,

second order in ``h``. Each row is multiplied by ``s_x(x_i) s_y(y_j)``, which leaves the
solution unchanged and makes the matrix complex symmetric (``A == A.T``). The sparse
system is factorised with SuperLU (``scipy.sparse.linalg.splu``).

Fourth order (``order=4``):

* without a layer, the compact scheme. With ``k = omega/c`` the equation is
  ``Lap u = F``, ``F = -f - k**2 u``, and the Mehrstellen scheme of
  :mod:`pinn_sine.validation.fd.poisson` applied to it reads

      L9 u + M (k**2 u) = -M f,
      L9 = d2x + d2y + (hx**2 + hy**2)/12 d2x d2y,   M = 1 + (hx**2 d2x + hy**2 d2y)/12,

  i.e. for ``hx = hy = h`` the 9-point Laplacian plus ``k**2 (u + h**2/12 Lap_h u)``
  (for constant k) on the left and ``-(f + h**2/12 Lap_h f)`` on the right. ``M`` acts
  on the product ``k**2 u``, which keeps the scheme fourth order for a smooth variable
  ``c``; ``f`` and ``c`` are used on the whole grid, boundary nodes included.
* with a layer, Richardson extrapolation of the second-order solutions at h and h/2
  (``n`` and ``2 n - 1`` nodes per axis) on the coarse nodes, ``(4 u_{h/2} - u_h)/3``
  (:func:`pinn_sine.validation.fd.richardson.richardson`). The flux form is symmetric,
  so its error expands in even powers of h for smooth coefficients. Measured fourth
  order with both profiles when the layer's inner edge is a grid node (slopes in
  ``tests/test_fd_helmholtz.py``). ``error_estimate`` is the three-level Richardson
  estimate over the physical region; it measures the discretisation error of the
  PML-equipped problem, not the layer's reflection.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from pinn_sine.validation.fd._solution import (
    FDSolution,
    evaluate_on_grid,
    parse_bounds_2d,
    parse_shape_2d,
)
from pinn_sine.validation.fd._sparse import sparse_lu
from pinn_sine.validation.fd.pml import (
    DEFAULT_PROFILE,
    Bounds,
    physical_mask,
    profile_degree,
    pml_stretch,
)
from pinn_sine.validation.fd.richardson import richardson

ORDERS = (2, 4)

#: A field given as a constant, a callable ``field(X, Y)`` on the ``(nx, ny)`` ij-grid,
#: or an array of shape ``(nx, ny)``.
Field = float | complex | Callable[[np.ndarray, np.ndarray], np.ndarray] | np.ndarray


class ResolutionError(ValueError):
    """A grid too coarse for the wavelength: fewer than ``min_ppw`` points per
    wavelength. The facts are attributes, so a caller can restate the fix in its own
    terms (``Problem.reference(resolution)``) without parsing the message.

    Attributes:
        n: the grid's nodes (nx, ny); n_needed: the least nodes per axis that resolve it.
        points_per_wavelength: 2 pi c_min / (omega h) on this grid; min_ppw: the least accepted.
        omega, c_min: the angular frequency and the least wave speed.
    """

    def __init__(self, *, n: tuple[int, int], points_per_wavelength: float, min_ppw: float, omega: float,
                 c_min: float, n_needed: tuple[int, int]):
        self.n, self.n_needed = tuple(n), tuple(n_needed)
        self.points_per_wavelength, self.min_ppw = float(points_per_wavelength), float(min_ppw)
        self.omega, self.c_min = float(omega), float(c_min)
        super().__init__(f"resolution n={self.n} gives {self.points_per_wavelength:.2f} points per wavelength "
                         f"(omega={omega}, c_min={c_min}), fewer than min_ppw={min_ppw}; "
                         f"use n >= {self.n_needed} or lower min_ppw.")


def points_per_wavelength(omega: float, c_min: float, h: float) -> float:
    """Grid points per shortest wavelength, ``(2 pi c_min / omega) / h``.

    Args:
        omega: angular frequency, > 0.
        c_min: smallest wave speed in the domain, > 0.
        h: grid spacing; for a rectangular cell pass ``max(hx, hy)``.
    """
    return 2.0 * math.pi * c_min / omega / h


def _complex_grid_field(value: Field, X: np.ndarray, Y: np.ndarray, name: str) -> np.ndarray:
    """``value`` (scalar, callable ``value(X, Y)`` or ``(nx, ny)`` array) as a finite
    complex ``(nx, ny)`` array; ``evaluate_on_grid`` is the real-only counterpart."""
    arr = np.asarray(value(X, Y) if callable(value) else value)
    if arr.ndim == 0:
        arr = np.broadcast_to(arr, X.shape)
    if arr.shape != X.shape:
        raise ValueError(
            f"{name} has shape {arr.shape}, expected the grid shape {X.shape}; pass "
            f"a scalar, a callable {name}(X, Y) or an array on the grid"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} has non-finite values (nan or inf) on the grid")
    return arr.astype(complex)


def _axis_operator(
    x: np.ndarray, omega: float, pml_width: float | None, pml_strength: float,
    pml_profile: str = DEFAULT_PROFILE,
) -> tuple[sp.csr_array, np.ndarray]:
    """Symmetric 1-D stretched second difference on one axis.

    Returns:
        ``K`` of shape ``(n - 2, n)``: row ``i - 1`` is
        ``[1/s_{i-1/2}, -(1/s_{i-1/2} + 1/s_{i+1/2}), 1/s_{i+1/2}] / h**2`` at columns
        ``i - 1, i, i + 1``, i.e. ``s_i`` times the stretched ``d2/dx2`` at interior node
        ``i``; and ``s`` at the interior nodes, shape ``(n - 2,)``.
    """
    n = x.size
    h = x[1] - x[0]
    x_half = 0.5 * (x[:-1] + x[1:])
    if pml_width:
        lo, hi = float(x[0]), float(x[-1])
        a = 1.0 / pml_stretch(x_half, lo, hi, pml_width, pml_strength, omega, pml_profile)
        s = pml_stretch(x[1:-1], lo, hi, pml_width, pml_strength, omega, pml_profile)
    else:
        a = np.ones(n - 1, dtype=complex)
        s = np.ones(n - 2, dtype=complex)
    K = sp.diags_array(
        [a[:-1], -(a[:-1] + a[1:]), a[1:]], offsets=[0, 1, 2], shape=(n - 2, n)
    ) / h**2
    return K.tocsr(), s


def helmholtz_2d(
    f: Field,
    *,
    omega: float,
    c: Field = 1.0,
    bounds: Bounds = ((-1.0, 1.0), (-1.0, 1.0)),
    n: int | tuple[int, int] = (257, 257),
    pml_width: float | None = 0.5,
    pml_strength: float = 5.0,
    pml_profile: str = DEFAULT_PROFILE,
    g: Field | None = None,
    min_ppw: float = 6.0,
    order: int = 2,
) -> FDSolution:
    """Solve ``Laplacian(u) + (omega/c)**2 u = -f`` with a PML and Dirichlet data ``g``.

    Args:
        f: source, scalar, callable ``f(X, Y)`` or array ``(nx, ny)``, real or complex.
        omega: angular frequency, > 0.
        c: wave speed, > 0 everywhere: scalar, callable ``c(X, Y)`` or array ``(nx, ny)``.
        bounds: ``((x_lo, x_hi), (y_lo, y_hi))``, the whole grid including the layer.
        n: nodes per axis including boundary nodes, an int or ``(nx, ny)``, each >= 3.
        pml_width: layer thickness on each side, inside ``bounds``; ``None`` or 0
            disables the layer (plain Dirichlet problem).
        pml_strength: damping ``sigma`` at the outer boundary, >= 0. A wave at normal
            incidence returns with amplitude ``exp(-2 strength width / ((m + 1) c))``
            for a profile of degree m: about 0.29 for the default 5 with width 0.5 and
            the cubic profile, which a PINN with the same layer solves alike. For a
            free-space reference use 60 (cubic, width 0.5: the field of a Gaussian
            source of width 0.05 then matches its exact free-space field to the
            discretisation error, rel L2 3.7e-7 at omega 10 and 6.8e-6 at omega 20
            with order 4 at n = 257).
        pml_profile: ``"cubic"`` (default) or ``"quadratic"``, the shape of sigma in the
            layer (:data:`pinn_sine.validation.fd.pml.PROFILES`).
        g: Dirichlet data on the outer boundary: scalar, callable ``g(X, Y)`` (evaluated
            on the whole grid) or ``(nx, ny)`` array; only the boundary values are used.
            ``None`` means 0.
        min_ppw: the least points per shortest wavelength accepted, see
            :func:`points_per_wavelength`.
        order: 2 (5-point flux form) or 4: the compact scheme without a layer, or
            Richardson extrapolation with one (module docstring). With a layer,
            order 4 solves at ``n`` and ``2 n - 1`` nodes (and ``(n + 1)/2`` for the
            error estimate), so ``n - 1`` must be even and ``f``, ``c`` and ``g`` must
            be scalars or callables, not arrays on one grid.

    Returns:
        ``FDSolution`` with ``coords = {"x": (nx,), "y": (ny,)}``,
        ``fields = {"u": complex (nx, ny)}`` (ij indexing, layer included; select the
        physical region with :func:`pinn_sine.validation.fd.pml.physical_mask`),
        ``spacing = {"x": hx, "y": hy}``, ``order`` and ``solver``:
        ``"fd5-pml-splu"`` (``"fd5-splu"`` without a layer) for order 2,
        ``"fd5-pml-splu-richardson"`` (``"fd9-splu"`` without a layer) for order 4.
        With a layer and order 4, ``error_estimate`` is Richardson's estimate of the
        relative L2 error over the physical region.

    Raises:
        ValueError: for ``omega <= 0``, ``c <= 0``, a field of the wrong shape, a layer
            that is too wide, fewer than ``min_ppw`` points per wavelength, a bad
            ``order``, or (order 4 with a layer) array data or an even ``n - 1``.
    """
    if not (np.isfinite(omega) and omega > 0):
        raise ValueError(
            f"omega={omega} must be a finite number > 0; pass a positive angular frequency"
        )
    if isinstance(order, bool) or order not in ORDERS:
        raise ValueError(
            f"order={order!r} is not supported; expected 2 (5-point flux form) or 4 "
            "(compact 9-point scheme, or Richardson extrapolation with a PML). Pass "
            "order=2 or order=4."
        )
    profile_degree(pml_profile)  # validates the name
    if order == 4 and pml_width:
        return _richardson_pml(
            f, omega=omega, c=c, bounds=bounds, n=n, pml_width=pml_width,
            pml_strength=pml_strength, pml_profile=pml_profile, g=g, min_ppw=min_ppw,
        )
    (x_lo, x_hi), (y_lo, y_hi) = parse_bounds_2d(bounds)
    nx, ny = parse_shape_2d(n)
    x = np.linspace(x_lo, x_hi, nx)
    y = np.linspace(y_lo, y_hi, ny)
    hx, hy = x[1] - x[0], y[1] - y[0]
    X, Y = np.meshgrid(x, y, indexing="ij")

    # A constant speed goes through evaluate_on_grid as a callable so that it broadcasts.
    c_field = c if callable(c) or np.ndim(c) else (lambda X, Y: c)
    c_arr = evaluate_on_grid(c_field, (X, Y), (nx, ny), "c")
    if not np.all(c_arr > 0):
        raise ValueError(
            f"c must be > 0 everywhere; got min(c)={np.min(c_arr)}. Pass a positive "
            "wave speed"
        )
    c_min = float(np.min(c_arr))
    ppw = points_per_wavelength(omega, c_min, max(hx, hy))
    if ppw < min_ppw:
        h_needed = 2.0 * math.pi * c_min / omega / min_ppw
        n_needed = (
            math.ceil((x_hi - x_lo) / h_needed) + 1,
            math.ceil((y_hi - y_lo) / h_needed) + 1,
        )
        raise ResolutionError(n=(nx, ny), points_per_wavelength=ppw, min_ppw=min_ppw, omega=omega,
                              c_min=c_min, n_needed=n_needed)

    f_arr = _complex_grid_field(f, X, Y, "f")
    g_arr = np.zeros((nx, ny), complex) if g is None else _complex_grid_field(g, X, Y, "g")

    if order == 4:  # no layer here: the layer's order 4 returned above
        u = _solve_compact(f_arr, g_arr, (omega / c_arr) ** 2, float(hx), float(hy))
        return FDSolution(
            coords={"x": x, "y": y},
            fields={"u": u},
            solver="fd9-splu",
            order=4,
            spacing={"x": float(hx), "y": float(hy)},
        )

    Kx, sx = _axis_operator(x, omega, pml_width, pml_strength, pml_profile)
    Ky, sy = _axis_operator(y, omega, pml_width, pml_strength, pml_profile)
    # Row (i, j) is the equation times s_x(x_i) s_y(y_j): the y-term keeps s_x, the
    # x-term keeps s_y, and the matrix comes out complex symmetric.
    sxy = np.outer(sx, sy)
    k2 = (omega / c_arr[1:-1, 1:-1]) ** 2
    A = (
        sp.kron(Kx[:, 1:-1], sp.diags_array(sy))
        + sp.kron(sp.diags_array(sx), Ky[:, 1:-1])
        + sp.diags_array((sxy * k2).ravel())
    )
    # Known boundary values move to the right-hand side; the 5-point stencil never
    # reaches the corners.
    boundary = (Kx[:, [0, -1]] @ g_arr[[0, -1], 1:-1]) * sy[None, :] + sx[:, None] * (
        g_arr[1:-1, [0, -1]] @ Ky[:, [0, -1]].T
    )
    rhs = -sxy * f_arr[1:-1, 1:-1] - boundary

    u = g_arr.copy()
    u[1:-1, 1:-1] = _factor(A).solve(rhs.ravel()).reshape(nx - 2, ny - 2)

    return FDSolution(
        coords={"x": x, "y": y},
        fields={"u": u},
        solver="fd5-pml-splu" if pml_width else "fd5-splu",
        order=2,
        spacing={"x": float(hx), "y": float(hy)},
    )


def _factor(A):
    """SuperLU factors of the (structurally symmetric) Helmholtz matrix."""
    # The matrix is structurally symmetric, so order A^T + A and keep diagonal pivots
    # unless one is tiny. Partial pivoting (threshold 1.0) abandons that ordering once
    # k h ~ 1: at n=256, omega=120, L + U holds 3.8e7 entries with MMD and threshold
    # 1.0, 6.3e6 with SciPy's default (COLAMD), 3.4e6 here; time follows fill.
    return sparse_lu(
        A,
        permc_spec="MMD_AT_PLUS_A",
        diag_pivot_thresh=0.01,
        options={"SymmetricMode": True},
    )


def _solve_compact(
    f_arr: np.ndarray, g_arr: np.ndarray, k2: np.ndarray, hx: float, hy: float
) -> np.ndarray:
    """The compact fourth-order system ``L9 u + M (k**2 u) = -M f`` (module docstring)
    with ``u = g`` on the boundary; all arrays ``(nx, ny)`` on the full grid."""
    nx, ny = f_arr.shape

    def second_difference(m: int, h: float) -> tuple[sp.csr_array, sp.csr_array]:
        # rows: interior nodes; columns: all m nodes.
        K = sp.diags_array([1.0, -2.0, 1.0], offsets=[0, 1, 2], shape=(m - 2, m)) / h**2
        S = sp.eye_array(m - 2, m, k=1)
        return K.tocsr(), S.tocsr()

    Kx, Sx = second_difference(nx, hx)
    Ky, Sy = second_difference(ny, hy)
    d2x, d2y = sp.kron(Kx, Sy), sp.kron(Sx, Ky)
    L9 = d2x + d2y + (hx**2 + hy**2) / 12.0 * sp.kron(Kx, Ky)
    M = sp.kron(Sx, Sy) + (hx**2 * d2x + hy**2 * d2y) / 12.0
    A_full = (L9 + M @ sp.diags_array(k2.ravel())).astype(complex).tocsc()
    rhs = -(M @ f_arr.ravel())

    interior = np.zeros((nx, ny), dtype=bool)
    interior[1:-1, 1:-1] = True
    interior = interior.ravel()
    # The stencil reaches the boundary nodes, corners included: their known values
    # move to the right-hand side.
    rhs = rhs - A_full[:, ~interior] @ g_arr.ravel()[~interior]
    u = g_arr.copy()
    u[1:-1, 1:-1] = _factor(A_full[:, interior]).solve(rhs).reshape(nx - 2, ny - 2)
    return u


def _richardson_pml(
    f: Field, *, omega, c, bounds, n, pml_width, pml_strength, pml_profile, g, min_ppw
) -> FDSolution:
    """Order 4 with a layer: Richardson extrapolation of the order-2 solutions."""
    for name, value in (("f", f), ("c", c), ("g", g)):
        if value is not None and not callable(value) and np.ndim(value) != 0:
            raise ValueError(
                f"order=4 with a PML refines the grid (Richardson extrapolation, n -> "
                f"2n - 1), so {name} must be a scalar or a callable {name}(X, Y); got an "
                f"array of shape {np.shape(value)}. Pass a callable, or use order=2."
            )
    nx, ny = parse_shape_2d(n)
    if (nx - 1) % 2 or (ny - 1) % 2:
        raise ValueError(
            f"n={(nx, ny)}: order=4 with a PML estimates its error on a grid at 2h, so "
            "n - 1 must be even per axis; use e.g. n = 2^k + 1 (129, 257, 513)"
        )

    def solve(m: tuple[int, int]) -> FDSolution:
        # The extra grid at 2h serves the error estimate only; the solution itself is
        # held to min_ppw on its own grid.
        ppw = min_ppw if m[0] >= nx else 0.5 * min_ppw
        return helmholtz_2d(
            f, omega=omega, c=c, bounds=bounds, n=m, pml_width=pml_width,
            pml_strength=pml_strength, pml_profile=pml_profile, g=g, min_ppw=ppw, order=2,
        )

    return richardson(
        solve, (nx, ny), 2,
        region=lambda X, Y: physical_mask(X, Y, bounds, pml_width),
        solver="fd5-pml-splu-richardson",
    )
