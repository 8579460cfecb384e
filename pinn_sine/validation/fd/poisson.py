"""Finite-difference reference solvers (orders 2 and 4) for the 2-D Poisson equation.

    Laplacian(u) = u_xx + u_yy = f   on [x0, x1] x [y0, y1],
    u = g                            on the boundary (Dirichlet),

on a node-centred grid that includes the boundary nodes.  With ``d2x``, ``d2y`` the
second differences ``(u_{i+1} - 2 u_i + u_{i-1}) / h^2`` along x and y:

* ``order=2``: the 5-point stencil ``(d2x + d2y) u = f``;
* ``order=4``: the compact 9-point (Mehrstellen, Collatz) scheme

      (d2x + d2y + (hx^2 + hy^2)/12 d2x d2y) u = f + (hx^2 d2x f + hy^2 d2y f) / 12,

  fourth order for any hx, hy (for hx = hy = h the right-hand side is
  ``f + h^2/12 Lap_h f``).  It follows from ``d2x u = u_xx + hx^2/12 u_xxxx + O(h^4)``
  with ``u_xxxx = f_xx - u_xxyy`` (differentiate the PDE) and likewise in y.

The discrete system is solved either with a type-I discrete sine transform
(``method="dst"``; ``d2x`` and ``d2y`` with Dirichlet data are diagonal in the sine
basis, hence so is the 9-point operator) or with a sparse LU factorisation
(``method="sparse"``).  Both solve the same linear system, so they agree to round-off.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
import scipy.sparse

from pinn_sine.validation.fd._sparse import sparse_lu
from pinn_sine.validation.fd._solution import (
    FDSolution,
    GridFunction,
    evaluate_on_grid,
    parse_bounds_2d,
    parse_shape_2d,
)

METHODS = ("auto", "dst", "sparse")
ORDERS = (2, 4)


def laplacian_5pt(u: np.ndarray, hx: float, hy: float) -> np.ndarray:
    """Apply the 5-point Laplacian at the interior nodes.

    (L u)_ij = (u_{i+1,j} - 2 u_ij + u_{i-1,j}) / hx^2 + (u_{i,j+1} - 2 u_ij + u_{i,j-1}) / hy^2

    Args:
        u: ``(nx, ny)`` values on the full grid, boundary nodes included, "ij" indexing.
        hx, hy: grid spacings in x and y.

    Returns:
        ``(nx - 2, ny - 2)`` array of the discrete Laplacian at the interior nodes.
    """
    u = _check_grid(u, hx, hy)
    centre = u[1:-1, 1:-1]
    return (u[2:, 1:-1] - 2.0 * centre + u[:-2, 1:-1]) / hx**2 + (
        u[1:-1, 2:] - 2.0 * centre + u[1:-1, :-2]
    ) / hy**2


def _check_grid(u: np.ndarray, hx: float, hy: float) -> np.ndarray:
    u = np.asarray(u)
    if u.ndim != 2 or min(u.shape) < 3:
        raise ValueError(
            f"u has shape {u.shape}; expected a 2-D grid with at least 3 nodes per axis"
        )
    for name, h in (("hx", hx), ("hy", hy)):
        if not (np.isfinite(h) and h > 0):
            raise ValueError(f"{name}={h!r} must be a positive grid spacing")
    return u


def _second_differences(u: np.ndarray, hx: float, hy: float) -> tuple[np.ndarray, np.ndarray]:
    """``(d2x u, d2y u)`` on the full grid's x- resp. y-interior: shapes
    ``(nx - 2, ny)`` and ``(nx, ny - 2)``."""
    d2x = (u[2:, :] - 2.0 * u[1:-1, :] + u[:-2, :]) / hx**2
    d2y = (u[:, 2:] - 2.0 * u[:, 1:-1] + u[:, :-2]) / hy**2
    return d2x, d2y


def laplacian_9pt(u: np.ndarray, hx: float, hy: float) -> np.ndarray:
    """Apply the compact 9-point (Mehrstellen) Laplacian at the interior nodes.

    (L9 u)_ij = (d2x + d2y + (hx^2 + hy^2)/12 d2x d2y) u_ij,

    with ``d2x u_ij = (u_{i+1,j} - 2 u_ij + u_{i-1,j}) / hx^2`` and ``d2y`` likewise.
    For hx = hy = h the weights are ``[[1, 4, 1], [4, -20, 4], [1, 4, 1]] / (6 h^2)``.
    ``L9 u = Lap u + (hx^2 + hy^2)/12 u_xxyy + (hx^2 u_xxxx + hy^2 u_yyyy)/12 + O(h^4)``;
    paired with :func:`mehrstellen_rhs` it gives a fourth-order scheme.

    Args:
        u: ``(nx, ny)`` values on the full grid, boundary nodes included, "ij" indexing.
        hx, hy: grid spacings in x and y.

    Returns:
        ``(nx - 2, ny - 2)`` array of the 9-point Laplacian at the interior nodes.
    """
    u = _check_grid(u, hx, hy)
    d2x, d2y = _second_differences(u, hx, hy)
    d2xy = (d2x[:, 2:] - 2.0 * d2x[:, 1:-1] + d2x[:, :-2]) / hy**2
    return d2x[:, 1:-1] + d2y[1:-1, :] + (hx**2 + hy**2) / 12.0 * d2xy


def mehrstellen_rhs(f: np.ndarray, hx: float, hy: float) -> np.ndarray:
    """The fourth-order right-hand side ``f + (hx^2 d2x f + hy^2 d2y f) / 12`` at the
    interior nodes, ``(nx - 2, ny - 2)``, from ``f`` on the full ``(nx, ny)`` grid
    (boundary nodes included).  For hx = hy = h this is ``f + h^2/12 Lap_h f``."""
    f = _check_grid(f, hx, hy)
    d2x, d2y = _second_differences(f, hx, hy)
    return f[1:-1, 1:-1] + (hx**2 * d2x[:, 1:-1] + hy**2 * d2y[1:-1, :]) / 12.0


def poisson_2d(
    f: GridFunction | np.ndarray,
    g: GridFunction | np.ndarray | None = None,
    *,
    bounds: tuple[tuple[float, float], tuple[float, float]] = ((-1.0, 1.0), (-1.0, 1.0)),
    n: int | tuple[int, int] = (257, 257),
    method: str = "auto",
    order: int = 2,
) -> FDSolution:
    """Solve Laplacian(u) = f on a rectangle with Dirichlet data u = g.

    Args:
        f: source, a callable ``f(X, Y)`` on ``(nx, ny)`` meshgrid arrays ("ij"
            indexing) or an ``(nx, ny)`` array.  ``order=2`` uses the interior values
            only; ``order=4`` also the boundary nodes' (its right-hand-side correction
            differences f across the whole grid), so f must be defined there.
        g: boundary data: ``None`` (u = 0), a callable ``g(x, y)`` evaluated on 1-D
            arrays of boundary node coordinates (one call per edge), or an ``(nx, ny)``
            array of which only the boundary entries are used.
        bounds: ``((x0, x1), (y0, y1))`` with ``x0 < x1`` and ``y0 < y1``.
        n: nodes per axis including boundary nodes, an int or ``(nx, ny)``, each >= 3.
        method: ``"dst"`` (sine transform, O(N log N)), ``"sparse"`` (sparse LU), or
            ``"auto"`` (= ``"dst"``, always applicable on a rectangle).
        order: 2 (5-point stencil) or 4 (compact 9-point Mehrstellen scheme with the
            right-hand-side correction; see the module docstring).  Any hx, hy work.

    Returns:
        ``FDSolution`` with coords ``{"x": (nx,), "y": (ny,)}``, field ``"u"`` of shape
        ``(nx, ny)`` (boundary nodes hold g), spacing ``{"x": hx, "y": hy}`` and
        ``order``; solver ``"fd5-dst"``/``"fd5-sparse"`` (order 2) or
        ``"fd9-dst"``/``"fd9-sparse"`` (order 4).  The error is O(hx^2 + hy^2), resp.
        O(hx^4 + hy^4), for smooth u.
    """
    if method not in METHODS:
        raise ValueError(f"Invalid method {method!r}. Must be one of {list(METHODS)}")
    if isinstance(order, bool) or order not in ORDERS:
        raise ValueError(
            f"order={order!r} is not supported; expected 2 (5-point stencil) or 4 "
            "(compact 9-point Mehrstellen scheme). Pass order=2 or order=4."
        )
    (x0, x1), (y0, y1) = parse_bounds_2d(bounds)
    nx, ny = parse_shape_2d(n)
    x = np.linspace(x0, x1, nx)
    y = np.linspace(y0, y1, ny)
    hx = (x1 - x0) / (nx - 1)
    hy = (y1 - y0) / (ny - 1)
    X, Y = np.meshgrid(x, y, indexing="ij")

    f_grid = evaluate_on_grid(f, (X, Y), (nx, ny), "f")
    u = _boundary_values(g, x, y)

    if order == 4:
        # L9 is linear and u = boundary part + interior part, so the boundary part's
        # contribution (the 9-point stencil reaches the corners too) moves to the
        # right-hand side by applying L9 to the field that is g on the edges, 0 inside.
        rhs = mehrstellen_rhs(f_grid, hx, hy) - laplacian_9pt(u, hx, hy)
    else:
        # Move the known boundary neighbours of the edge-adjacent interior nodes to the
        # right-hand side, so the interior unknowns satisfy a homogeneous-Dirichlet system.
        rhs = f_grid[1:-1, 1:-1].copy()
        rhs[0, :] -= u[0, 1:-1] / hx**2
        rhs[-1, :] -= u[-1, 1:-1] / hx**2
        rhs[:, 0] -= u[1:-1, 0] / hy**2
        rhs[:, -1] -= u[1:-1, -1] / hy**2

    stencil = "fd9" if order == 4 else "fd5"
    if method in ("auto", "dst"):
        u[1:-1, 1:-1] = _solve_dst(rhs, hx, hy, order=order)
        solver = f"{stencil}-dst"
    else:
        u[1:-1, 1:-1] = _solve_sparse(rhs, hx, hy, order=order)
        solver = f"{stencil}-sparse"
    return FDSolution(
        coords={"x": x, "y": y},
        fields={"u": u},
        solver=solver,
        order=int(order),
        spacing={"x": hx, "y": hy},
    )


def _boundary_values(
    g: GridFunction | np.ndarray | None, x: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """``(nx, ny)`` array holding g on the boundary nodes and zeros inside."""
    nx, ny = len(x), len(y)
    u = np.zeros((nx, ny))
    if g is None:
        return u
    if callable(g):
        # Evaluate on the boundary only: g may be undefined (or costly) inside.
        u[0, :] = evaluate_on_grid(g, (np.full(ny, x[0]), y), (ny,), "g")
        u[-1, :] = evaluate_on_grid(g, (np.full(ny, x[-1]), y), (ny,), "g")
        u[:, 0] = evaluate_on_grid(g, (x, np.full(nx, y[0])), (nx,), "g")
        u[:, -1] = evaluate_on_grid(g, (x, np.full(nx, y[-1])), (nx,), "g")
        return u
    g_grid = np.asarray(g)
    if g_grid.shape != (nx, ny):
        raise ValueError(
            f"g has shape {g_grid.shape}, expected the grid shape {(nx, ny)}; pass an "
            "array on the grid (only its boundary entries are used), a callable g(x, y), "
            "or None"
        )
    edges = np.concatenate([g_grid[0], g_grid[-1], g_grid[:, 0], g_grid[:, -1]])
    if np.iscomplexobj(edges) or not np.all(np.isfinite(edges)):
        raise ValueError("g must hold finite real values on the boundary nodes")
    u[0, :], u[-1, :] = g_grid[0], g_grid[-1]
    u[:, 0], u[:, -1] = g_grid[:, 0], g_grid[:, -1]
    return u


def _dirichlet_eigenvalues(m: int, h: float) -> np.ndarray:
    """Eigenvalues of the (m, m) Dirichlet second-difference matrix, for the DST-I basis.

    lambda_k = -4 / h^2 * sin^2(pi k / (2 (m + 1))),  k = 1..m
    """
    k = np.arange(1, m + 1)
    # The sin^2 form avoids the cancellation in 2 cos(theta) - 2 for small theta.
    return -4.0 / h**2 * np.sin(np.pi * k / (2 * (m + 1))) ** 2


def _solve_dst(rhs: np.ndarray, hx: float, hy: float, order: int = 2) -> np.ndarray:
    """Solve the homogeneous-Dirichlet 5-point (order 2) or 9-point (order 4) system for
    ``(mx, my)`` interior unknowns.

    The sine mode ``sin(pi k i/(mx+1)) sin(pi l j/(my+1))`` is an eigenvector of both
    ``d2x`` (eigenvalue ``lx_k``) and ``d2y`` (``ly_l``), so the 9-point operator
    ``d2x + d2y + (hx^2 + hy^2)/12 d2x d2y`` has eigenvalues
    ``lx_k + ly_l + (hx^2 + hy^2)/12 lx_k ly_l``.  These are < 0 for every mode (the
    expression is bilinear in (lx, ly), so its maximum over the box
    ``[-4/hx^2, 0] x [-4/hy^2, 0]`` is at a corner, and it is < 0 at the three corners
    other than (0, 0), which no mode reaches), so the system is never singular.
    """
    mx, my = rhs.shape
    lx = _dirichlet_eigenvalues(mx, hx)[:, None]
    ly = _dirichlet_eigenvalues(my, hy)[None, :]
    eig = lx + ly
    if order == 4:
        eig = eig + (hx**2 + hy**2) / 12.0 * lx * ly
    rhs_hat = scipy.fft.dstn(rhs, type=1, workers=-1)
    rhs_hat /= eig
    return scipy.fft.idstn(rhs_hat, type=1, workers=-1)


def _second_difference(m: int, h: float) -> scipy.sparse.csr_matrix:
    """(m, m) Dirichlet second-difference matrix ``tridiag(1, -2, 1) / h^2``."""
    return scipy.sparse.diags(
        [np.ones(m - 1), -2.0 * np.ones(m), np.ones(m - 1)], [-1, 0, 1], format="csr"
    ) / h**2


def _solve_sparse(rhs: np.ndarray, hx: float, hy: float, order: int = 2) -> np.ndarray:
    """Same system as ``_solve_dst``, assembled as kron(Dxx, I) + kron(I, Dyy)
    (+ (hx^2 + hy^2)/12 kron(Dxx, Dyy) for order 4)."""
    mx, my = rhs.shape
    Dxx, Dyy = _second_difference(mx, hx), _second_difference(my, hy)
    # C-order flattening of an "ij" array puts y fastest, hence Dxx on the left factor.
    A = scipy.sparse.kron(Dxx, scipy.sparse.identity(my)) + \
        scipy.sparse.kron(scipy.sparse.identity(mx), Dyy)
    if order == 4:
        A = A + (hx**2 + hy**2) / 12.0 * scipy.sparse.kron(Dxx, Dyy)
    lu = sparse_lu(A)
    return lu.solve(rhs.ravel()).reshape(mx, my)
