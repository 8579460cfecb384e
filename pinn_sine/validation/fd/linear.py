"""Finite-difference reference solver (orders 2 and 4) for a general linear second-order
elliptic operator in two dimensions, with variable coefficients:

    L u = a u_xx + b u_xy + c u_yy + d u_x + e u_y + f u = s   on [x0, x1] x [y0, y1],
    u = g                                                       on the boundary (Dirichlet),

with a..f numbers or functions of (x, y), elliptic (``b^2 - 4 a c < 0``) at every node.
The grid is node-centred and includes the boundary nodes (``x_i = x0 + i hx``,
``y_j = y0 + j hy``); the coefficients are taken at the nodes. The operator is assembled
from one-dimensional difference matrices ``Dx``, ``Dxx`` (and ``Dy``, ``Dyy``) applied
along each axis, the mixed derivative as their product ``u_xy ~ Dx Dy u``:

* ``order=2``: central differences,

      Dxx u_i = (u_{i+1} - 2 u_i + u_{i-1}) / hx^2,       Dx u_i = (u_{i+1} - u_{i-1}) / (2 hx),

  so ``Dx Dy`` is the 4-corner stencil ``(u_{i+1,j+1} - u_{i+1,j-1} - u_{i-1,j+1} +
  u_{i-1,j-1}) / (4 hx hy)`` and the whole operator a 9-point stencil (5 points where
  b = 0, then the same system as :func:`~pinn_sine.validation.fd.poisson_2d`'s 5-point
  one for a = c = 1).
* ``order=4``: fourth-order wide stencils,

      Dxx u_i = (-u_{i-2} + 16 u_{i-1} - 30 u_i + 16 u_{i+1} - u_{i+2}) / (12 hx^2),
      Dx u_i  = (u_{i-2} - 8 u_{i-1} + 8 u_{i+1} - u_{i+2}) / (12 hx),

  closed at the nodes next to the boundary (i = 1, and mirrored at i = nx - 2), where
  the centred stencil would reach outside the grid, by the off-centre fourth-order ones

      Dxx u_1 = (10 u_0 - 15 u_1 - 4 u_2 + 14 u_3 - 6 u_4 + u_5) / (12 hx^2),
      Dx u_1  = (-3 u_0 - 10 u_1 + 18 u_2 - 6 u_3 + u_4) / (12 hx),

  so the truncation error is O(h^4) at every interior node and ``Dx Dy`` fills a 5 x 5
  stencil (25 points). Chosen over Richardson extrapolation of the order-2 solutions
  because that relies on the error of the order-2 solution expanding smoothly in
  ``h^2``, which fails at the corners of a rectangle once ``b != 0``: in the metric of
  the principal part a corner opens to ``omega = pi - arccos(|b| / (2 sqrt(ac))) > pi/2``,
  the h^2 error term carries the corner singularity ``r^(pi/omega)``, and the
  extrapolated order falls to ``2 + pi/omega`` (measured 3.6, 3.4, 3.2 for
  ``b / sqrt(ac) = 0.6, 1.2, 1.6`` with a = c = 1; this scheme measured 4.0 for all of
  them). Its truncation error is O(h^4) node by node, so no error expansion is needed,
  and unlike a compact (Mehrstellen-type) scheme it needs no derivatives of the
  coefficients or of s.

The known boundary values (the stencils reach the edges and corners) move to the
right-hand side. The sparse system is assembled with SciPy and factorised by SuperLU
with BLAS on one thread (:func:`pinn_sine.validation.fd.sparse_solve`).

Error estimate (``estimate=True``, the default): a second solve on the grid at 2h
(``(n + 1) / 2`` nodes per axis, about 1/4 of the unknowns) gives
``||u_h - u_2h|| / ((2^p - 1) ||u_h||)`` over the 2h nodes, the estimate of the relative
L2 error of ``u_h`` that the package calls "richardson" (``error_method``).

The schemes are not monotone in general (the order-4 stencils never are; the order-2 one
not once b != 0 or the cell Peclet number ``|d| hx / (2 |a|)`` or ``|e| hy / (2 |c|)`` exceeds 1):
on a grid too coarse for the advection the solution wiggles; refine until it does not
(the error estimate shows it). The problem must also be uniquely solvable (``f <= 0``
where ``a, c > 0``, ``f >= 0`` where ``a, c < 0`` suffices, by the maximum principle); a
singular discrete system surfaces as SuperLU's error.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from pinn_sine.validation.fd._solution import (
    FDSolution,
    evaluate_on_grid,
    parse_bounds_2d,
    parse_shape_2d,
)
from pinn_sine.validation.fd._sparse import sparse_solve

ORDERS = (2, 4)
COEFFICIENTS = ("a", "b", "c", "d", "e", "f")
SOLVERS = {2: "linear-fd9-splu", 4: "linear-fd25-splu"}
#: the fewest nodes per axis each order's stencils need (order 4: the closure at node 1
#: reaches node 5)
MIN_NODES = {2: 3, 4: 6}

#: a coefficient, source or boundary datum: a number or a callable of the grid arrays (X, Y)
Coefficient = float | Callable[..., np.ndarray | float]

# (first offset, weights, divisor): the centred stencils, and the order-4 closures at
# node 1 (offsets -1..4 for the second derivative, -1..3 for the first); the weights are
# in units of 1/(divisor h^2), resp. 1/(divisor h).
_D2 = {2: (-1, (1.0, -2.0, 1.0), 1.0), 4: (-2, (-1.0, 16.0, -30.0, 16.0, -1.0), 12.0)}
_D1 = {2: (-1, (-1.0, 0.0, 1.0), 2.0), 4: (-2, (1.0, -8.0, 0.0, 8.0, -1.0), 12.0)}
_D2_CLOSURE = (-1, (10.0, -15.0, -4.0, 14.0, -6.0, 1.0), 12.0)
_D1_CLOSURE = (-1, (-3.0, -10.0, 18.0, -6.0, 1.0), 12.0)


def linear_2d(
    s: Coefficient,
    g: Coefficient | None = None,
    *,
    a: Coefficient = 1.0,
    b: Coefficient = 0.0,
    c: Coefficient = 1.0,
    d: Coefficient = 0.0,
    e: Coefficient = 0.0,
    f: Coefficient = 0.0,
    bounds: tuple[tuple[float, float], tuple[float, float]] = ((-1.0, 1.0), (-1.0, 1.0)),
    n: int | tuple[int, int] = (257, 257),
    order: int = 2,
    estimate: bool = True,
) -> FDSolution:
    """Solve ``a u_xx + b u_xy + c u_yy + d u_x + e u_y + f u = s`` on a rectangle with
    Dirichlet data ``u = g`` (module docstring: the stencils and why order 4 uses wide
    stencils rather than Richardson extrapolation).

    The defaults ``a = c = 1``, ``b = d = e = f = 0`` give the Poisson equation
    ``Lap u = s``, whose order-2 system is :func:`~pinn_sine.validation.fd.poisson_2d`'s
    5-point one.

    Args:
        s: source, a number or a callable ``s(X, Y)`` of the ``(nx, ny)`` meshgrid
            arrays ("ij" indexing) returning an array that broadcasts to ``(nx, ny)``.
            Evaluated on the whole grid (boundary nodes included).
        g: Dirichlet data: ``None`` (u = 0), a number, or a callable ``g(X, Y)``
            evaluated on 1-D arrays of the boundary node coordinates (one call per edge,
            shapes ``(ny,)`` and ``(nx,)``), so g need not be defined inside.
        a, b, c, d, e, f: the coefficients of ``u_xx``, ``u_xy``, ``u_yy``, ``u_x``,
            ``u_y`` and ``u``: numbers or callables ``coef(X, Y)`` like ``s``, finite and
            real on the whole grid, with ``b^2 - 4 a c < 0`` at every node (elliptic:
            a and c nonzero and of one sign, either sign).
        bounds: ``((x0, x1), (y0, y1))`` with ``x0 < x1`` and ``y0 < y1``.
        n: nodes per axis including boundary nodes, an int or ``(nx, ny)``, each >= 3
            (order 2) or >= 6 (order 4); with ``estimate`` also ``n - 1`` even and the
            grid at 2h at least that size (e.g. 65, 129, 257).
        order: 2 (central differences, 9-point stencil) or 4 (wide fourth-order
            stencils with off-centre closures, 25-point).
        estimate: solve again on the grid at 2h for ``error_estimate`` (module
            docstring); ``False`` skips that solve and leaves it ``None``.

    Returns:
        ``FDSolution`` with coords ``{"x": (nx,), "y": (ny,)}``, field ``"u"`` of shape
        ``(nx, ny)`` float64 (boundary nodes hold g), spacing ``{"x": hx, "y": hy}``,
        ``order``, solver ``"linear-fd9-splu"`` (order 2) or ``"linear-fd25-splu"``
        (order 4) and ``error_estimate`` (relative L2, or ``None`` without
        ``estimate``; ``to_reference()`` labels it "richardson"). The error is
        O(hx^2 + hy^2), resp. O(hx^4 + hy^4), for smooth u and coefficients.

    Raises:
        ValueError: for a bad ``order``, reversed bounds, too few nodes (or an odd
            ``n - 1`` with ``estimate``), a coefficient or datum that is neither a
            number nor a callable, a callable whose result does not broadcast to its
            grid, a non-finite or complex value, or an operator that is not elliptic
            somewhere on the grid (the message gives the node and ``b^2 - 4 a c``).
    """
    if isinstance(order, bool) or order not in ORDERS:
        raise ValueError(
            f"order={order!r} is not supported; expected 2 (central differences, 9-point "
            "stencil) or 4 (wide fourth-order stencils). Pass order=2 or order=4."
        )
    if not isinstance(estimate, bool):
        raise ValueError(f"estimate={estimate!r} must be True (solve again at 2h for error_estimate) or False")
    data = {"s": s, "a": a, "b": b, "c": c, "d": d, "e": e, "f": f}
    for name, value in data.items():
        _check_datum(value, name)
    if g is not None:
        _check_datum(g, "g")
    parse_bounds_2d(bounds)
    shape = parse_shape_2d(n, minimum=MIN_NODES[order])
    if estimate:
        coarse = tuple((m + 1) // 2 for m in shape)
        if any((m - 1) % 2 for m in shape) or min(coarse) < MIN_NODES[order]:
            least = 2 * MIN_NODES[order] - 1
            raise ValueError(
                f"n={shape}: the error estimate solves again at 2h, so n - 1 must be even "
                f"and n >= {least} on each axis for order={order}; use e.g. n = 2^k + 1 "
                "(33, 65, 129, 257), or estimate=False"
            )
    u = _solve(data, g, bounds, shape, order)
    error = None
    if estimate:
        u_2h = _solve(data, g, bounds, coarse, order)
        diff, ref = u[::2, ::2] - u_2h, u[::2, ::2]
        norm = float(np.linalg.norm(ref))
        error = float(np.linalg.norm(diff)) / (2**order - 1) / norm if norm else 0.0
    x, y, _ = _grid(bounds, shape)
    return FDSolution(
        coords={"x": x, "y": y},
        fields={"u": u},
        solver=SOLVERS[order],
        order=int(order),
        spacing={"x": (x[-1] - x[0]) / (shape[0] - 1), "y": (y[-1] - y[0]) / (shape[1] - 1)},
        error_estimate=error,
    )


def _check_datum(value: object, name: str) -> None:
    if callable(value):
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        shown = f"an array of shape {np.shape(value)}" if np.ndim(value) else repr(value)
        raise ValueError(
            f"{name} is {shown}; it must be a real number or a callable {name}(X, Y) of "
            "the meshgrid arrays. Wrap grid data in a function of (X, Y) (the error "
            "estimate evaluates it on a second grid)"
        )
    if not np.isfinite(value):
        raise ValueError(f"{name}={value!r} is not finite; pass a finite number or a callable {name}(X, Y)")


def _grid(bounds, shape: tuple[int, int]):
    (x0, x1), (y0, y1) = parse_bounds_2d(bounds)
    x, y = np.linspace(x0, x1, shape[0]), np.linspace(y0, y1, shape[1])
    return x, y, np.meshgrid(x, y, indexing="ij")


def _grid_values(value: Coefficient, XY, name: str) -> np.ndarray:
    if callable(value):
        return evaluate_on_grid(value, tuple(XY), XY[0].shape, name)
    return np.full(XY[0].shape, float(value))


def _coefficients(data: dict, grid) -> dict[str, np.ndarray]:
    """The coefficients and the source on the whole grid, checked: finite, real, the
    right shape, elliptic at every node."""
    x, y, XY = grid
    values = {name: _grid_values(value, XY, name) for name, value in data.items()}
    A, B, C = values["a"], values["b"], values["c"]
    disc = B**2 - 4.0 * A * C
    if np.any(disc >= 0):
        i, j = np.unravel_index(np.argmax(disc), disc.shape)
        raise ValueError(
            f"the operator is not elliptic: b^2 - 4ac = {disc[i, j]:.6g} >= 0 at (x, y) = "
            f"({x[i]:.6g}, {y[j]:.6g}) (a = {A[i, j]:.6g}, b = {B[i, j]:.6g}, c = {C[i, j]:.6g}); "
            "linear_2d needs b^2 < 4ac at every node: a and c nonzero and of one sign, "
            "|b| < 2 sqrt(ac). Check the signs of a and c, or reduce b"
        )
    if not (np.all(A > 0) or np.all(A < 0)):
        raise ValueError(
            f"a changes sign on the grid (min {A.min():.6g}, max {A.max():.6g}), so the "
            "operator stops being elliptic between nodes; keep a and c of one sign"
        )
    return values


def _boundary(g: Coefficient | None, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(nx, ny)`` array holding g on the boundary nodes and zeros inside."""
    nx, ny = len(x), len(y)
    u = np.zeros((nx, ny))
    if g is None:
        return u
    if not callable(g):
        u[0, :] = u[-1, :] = u[:, 0] = u[:, -1] = float(g)
        return u
    # One call per edge on 1-D arrays: g may be undefined (or costly) inside.
    u[0, :] = evaluate_on_grid(g, (np.full(ny, x[0]), y), (ny,), "g")
    u[-1, :] = evaluate_on_grid(g, (np.full(ny, x[-1]), y), (ny,), "g")
    u[:, 0] = evaluate_on_grid(g, (x, np.full(nx, y[0])), (nx,), "g")
    u[:, -1] = evaluate_on_grid(g, (x, np.full(nx, y[-1])), (nx,), "g")
    return u


def difference_matrix(m: int, h: float, derivative: int, order: int) -> sp.csr_matrix:
    """The ``(m, m)`` matrix of the first (``derivative=1``) or second derivative on the
    ``m`` nodes of one axis, spacing ``h``: rows 1..m-2 hold the stencils of the module
    docstring (order 4: the off-centre closures at rows 1 and m - 2); rows 0 and m - 1
    (boundary nodes, where u is given) are zero."""
    centred, closure = (_D1[order], _D1_CLOSURE) if derivative == 1 else (_D2[order], _D2_CLOSURE)
    rows, cols, vals = [], [], []

    def put(i: np.ndarray, start: int, weights, divisor: float, sign: int = 1) -> None:
        for k, w in enumerate(weights):
            if w:
                rows.append(i)
                cols.append(i + sign * (start + k))
                vals.append(np.full(i.shape, sign**derivative * w / (divisor * h**derivative)))

    if order == 2:
        put(np.arange(1, m - 1), *centred)
    else:
        put(np.arange(2, m - 2), *centred)
        # node 1, and node m - 2 by the mirror x -> -x (offsets and, for d/dx, sign flip)
        put(np.array([1]), *closure)
        put(np.array([m - 2]), *closure, sign=-1)
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(m, m))


def _solve(data: dict, g: Coefficient | None, bounds, shape: tuple[int, int], order: int) -> np.ndarray:
    """The solution ``(nx, ny)`` (boundary nodes included) of the order-``order``
    system on ``shape`` nodes."""
    nx, ny = shape
    x, y, XY = grid = _grid(bounds, shape)
    hx, hy = (x[-1] - x[0]) / (nx - 1), (y[-1] - y[0]) / (ny - 1)
    values = _coefficients(data, grid)
    u = _boundary(g, x, y)

    # Flat "ij" index i * ny + j, so axis x is the left kron factor. Rows: the interior
    # nodes; columns: every node, the boundary ones (known values) then go to the
    # right-hand side.
    Dx, Dxx = difference_matrix(nx, hx, 1, order), difference_matrix(nx, hx, 2, order)
    Dy, Dyy = difference_matrix(ny, hy, 1, order), difference_matrix(ny, hy, 2, order)
    Ix, Iy = sp.identity(nx, format="csr"), sp.identity(ny, format="csr")
    terms = {"a": sp.kron(Dxx, Iy), "b": sp.kron(Dx, Dy), "c": sp.kron(Ix, Dyy),
             "d": sp.kron(Dx, Iy), "e": sp.kron(Ix, Dy), "f": sp.identity(nx * ny)}
    interior = np.zeros((nx, ny), dtype=bool)
    interior[1:-1, 1:-1] = True
    interior = interior.ravel()
    A = sum(sp.diags(values[k].ravel()[interior]) @ sp.csr_matrix(op)[interior]
            for k, op in terms.items() if np.any(values[k] != 0))
    A = sp.csr_matrix(A)
    rhs = values["s"].ravel()[interior] - A[:, ~interior] @ u.ravel()[~interior]
    u[1:-1, 1:-1] = sparse_solve(A[:, interior], rhs).reshape(nx - 2, ny - 2)
    return u
