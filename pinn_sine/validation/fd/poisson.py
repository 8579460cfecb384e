"""Second-order finite-difference reference solver for the 2-D Poisson equation.

    Laplacian(u) = u_xx + u_yy = f   on [x0, x1] x [y0, y1],
    u = g                            on the boundary (Dirichlet),

discretised with the 5-point stencil on a node-centred grid that includes the boundary
nodes.  The discrete system is solved either with a type-I discrete sine transform
(``method="dst"``; the 1-D Dirichlet second-difference matrices are diagonal in the
sine basis) or with a sparse LU factorisation (``method="sparse"``).  Both solve the same
linear system, so they agree to round-off.
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


def laplacian_5pt(u: np.ndarray, hx: float, hy: float) -> np.ndarray:
    """Apply the 5-point Laplacian at the interior nodes.

    (L u)_ij = (u_{i+1,j} - 2 u_ij + u_{i-1,j}) / hx^2 + (u_{i,j+1} - 2 u_ij + u_{i,j-1}) / hy^2

    Args:
        u: ``(nx, ny)`` values on the full grid, boundary nodes included, "ij" indexing.
        hx, hy: grid spacings in x and y.

    Returns:
        ``(nx - 2, ny - 2)`` array of the discrete Laplacian at the interior nodes.
    """
    u = np.asarray(u)
    if u.ndim != 2 or min(u.shape) < 3:
        raise ValueError(
            f"u has shape {u.shape}; expected a 2-D grid with at least 3 nodes per axis"
        )
    for name, h in (("hx", hx), ("hy", hy)):
        if not (np.isfinite(h) and h > 0):
            raise ValueError(f"{name}={h!r} must be a positive grid spacing")
    centre = u[1:-1, 1:-1]
    return (u[2:, 1:-1] - 2.0 * centre + u[:-2, 1:-1]) / hx**2 + (
        u[1:-1, 2:] - 2.0 * centre + u[1:-1, :-2]
    ) / hy**2


def poisson_2d(
    f: GridFunction | np.ndarray,
    g: GridFunction | np.ndarray | None = None,
    *,
    bounds: tuple[tuple[float, float], tuple[float, float]] = ((-1.0, 1.0), (-1.0, 1.0)),
    n: int | tuple[int, int] = (257, 257),
    method: str = "auto",
) -> FDSolution:
    """Solve Laplacian(u) = f on a rectangle with Dirichlet data u = g (5-point stencil).

    Args:
        f: source, a callable ``f(X, Y)`` on ``(nx, ny)`` meshgrid arrays ("ij"
            indexing) or an ``(nx, ny)`` array.  Only interior values are used.
        g: boundary data: ``None`` (u = 0), a callable ``g(x, y)`` evaluated on 1-D
            arrays of boundary node coordinates (one call per edge), or an ``(nx, ny)``
            array of which only the boundary entries are used.
        bounds: ``((x0, x1), (y0, y1))`` with ``x0 < x1`` and ``y0 < y1``.
        n: nodes per axis including boundary nodes, an int or ``(nx, ny)``, each >= 3.
        method: ``"dst"`` (sine transform, O(N log N)), ``"sparse"`` (sparse LU), or
            ``"auto"`` (= ``"dst"``, always applicable on a rectangle).

    Returns:
        ``FDSolution`` with coords ``{"x": (nx,), "y": (ny,)}``, field ``"u"`` of shape
        ``(nx, ny)`` (boundary nodes hold g), solver ``"fd5-dst"`` or ``"fd5-sparse"``,
        order 2 and spacing ``{"x": hx, "y": hy}``.  The error is O(hx^2 + hy^2) for
        smooth u.
    """
    if method not in METHODS:
        raise ValueError(f"Invalid method {method!r}. Must be one of {list(METHODS)}")
    (x0, x1), (y0, y1) = parse_bounds_2d(bounds)
    nx, ny = parse_shape_2d(n)
    x = np.linspace(x0, x1, nx)
    y = np.linspace(y0, y1, ny)
    hx = (x1 - x0) / (nx - 1)
    hy = (y1 - y0) / (ny - 1)
    X, Y = np.meshgrid(x, y, indexing="ij")

    f_grid = evaluate_on_grid(f, (X, Y), (nx, ny), "f")
    u = _boundary_values(g, x, y)

    # Move the known boundary neighbours of the edge-adjacent interior nodes to the
    # right-hand side, so the interior unknowns satisfy a homogeneous-Dirichlet system.
    rhs = f_grid[1:-1, 1:-1].copy()
    rhs[0, :] -= u[0, 1:-1] / hx**2
    rhs[-1, :] -= u[-1, 1:-1] / hx**2
    rhs[:, 0] -= u[1:-1, 0] / hy**2
    rhs[:, -1] -= u[1:-1, -1] / hy**2

    if method in ("auto", "dst"):
        u[1:-1, 1:-1] = _solve_dst(rhs, hx, hy)
        solver = "fd5-dst"
    else:
        u[1:-1, 1:-1] = _solve_sparse(rhs, hx, hy)
        solver = "fd5-sparse"
    return FDSolution(
        coords={"x": x, "y": y},
        fields={"u": u},
        solver=solver,
        order=2,
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


def _solve_dst(rhs: np.ndarray, hx: float, hy: float) -> np.ndarray:
    """Solve the homogeneous-Dirichlet 5-point system for ``(mx, my)`` interior unknowns."""
    mx, my = rhs.shape
    eig = _dirichlet_eigenvalues(mx, hx)[:, None] + _dirichlet_eigenvalues(my, hy)[None, :]
    rhs_hat = scipy.fft.dstn(rhs, type=1, workers=-1)
    rhs_hat /= eig
    return scipy.fft.idstn(rhs_hat, type=1, workers=-1)


def _second_difference(m: int, h: float) -> scipy.sparse.csr_matrix:
    """(m, m) Dirichlet second-difference matrix ``tridiag(1, -2, 1) / h^2``."""
    return scipy.sparse.diags(
        [np.ones(m - 1), -2.0 * np.ones(m), np.ones(m - 1)], [-1, 0, 1], format="csr"
    ) / h**2


def _solve_sparse(rhs: np.ndarray, hx: float, hy: float) -> np.ndarray:
    """Same system as ``_solve_dst``, assembled as kron(Dxx, I) + kron(I, Dyy)."""
    mx, my = rhs.shape
    # C-order flattening of an "ij" array puts y fastest, hence Dxx on the left factor.
    A = scipy.sparse.kron(_second_difference(mx, hx), scipy.sparse.identity(my)) + \
        scipy.sparse.kron(scipy.sparse.identity(mx), _second_difference(my, hy))
    lu = sparse_lu(A)
    return lu.solve(rhs.ravel()).reshape(mx, my)
