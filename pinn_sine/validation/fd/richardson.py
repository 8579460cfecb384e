"""Richardson extrapolation of a finite-difference solver in the grid spacing h.

For a scheme of order p whose error at every node expands in even powers of h,

    u_h = u + C_p h^p + C_{p+2} h^(p+2) + ...,

(true for the symmetric, centred schemes here: the 5-point Laplacian, the flux form of
the PML operator with 1/s at the half nodes, leapfrog; it needs data and coefficients
smooth enough for the next term to exist), the solutions on the grid and on the grid
refined once, h/2, combine on the common (coarse) nodes into

    R = (2^p u_{h/2} - u_h) / (2^p - 1) = u + O(h^(p+2)),

so one refinement raises the order by two, not one.  The same two solutions estimate
the error of the finer one,

    u_{h/2} - u ~ (u_{h/2} - u_h) / (2^p - 1),

and a third, coarser solve (2h) gives R at 2h and h and so an estimate of R's own
error, (R_h - R_{h/2}) / (2^(p+2) - 1) on the 2h nodes.

Grids are node grids ``linspace(a, b, n)`` with the ends fixed, so halving h takes
``n -> 2 n - 1`` nodes per axis and the coarse nodes are every second fine node.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence

import numpy as np

from pinn_sine.validation.fd._solution import FDSolution

RESULTS = ("extrapolated", "fine")

#: A node count per axis: an int (every axis) or a tuple, as the solvers take.
Count = int | tuple[int, ...]


def _refine(n: Count, factor: int) -> Count:
    """``2 n - 1`` (factor 2) per axis, keeping an int an int."""
    if isinstance(n, Sequence):
        return tuple(factor * (m - 1) + 1 for m in n)
    return factor * (n - 1) + 1


def _check_count(n: object) -> tuple[int, ...]:
    counts = n if isinstance(n, Sequence) and not isinstance(n, str) else (n,)
    for m in counts:
        if isinstance(m, bool) or not isinstance(m, numbers.Integral) or m < 2:
            raise ValueError(
                f"n={n!r} must be an int >= 2 or a tuple of them (nodes per axis, "
                "boundary nodes included), as the wrapped solver takes"
            )
    return tuple(int(m) for m in counts)


def _restrict(fine: FDSolution, coarse: FDSolution, step: int) -> dict[str, np.ndarray]:
    """``fine``'s fields at ``coarse``'s nodes (every ``step``-th fine node per axis),
    after checking that the grids nest."""
    if list(fine.coords) != list(coarse.coords):
        raise ValueError(
            f"solve returned coordinates {list(fine.coords)} on the fine grid but "
            f"{list(coarse.coords)} on the coarse one; solve(n) must return the same axes"
        )
    for name, xc in coarse.coords.items():
        xf = np.asarray(fine.coords[name])
        xc = np.asarray(xc)
        if xf.size != step * (xc.size - 1) + 1 or not np.allclose(
            xf[::step], xc, rtol=0, atol=1e-12 * max(1.0, float(np.max(np.abs(xc))))
        ):
            raise ValueError(
                f"the grids do not nest along {name!r}: {xc.size} coarse nodes, "
                f"{xf.size} fine ones; solve(n) must return the node grid "
                "linspace(a, b, n) with fixed ends, so that every coarse node is a "
                "fine node"
            )
    if set(fine.fields) != set(coarse.fields):
        raise ValueError(
            f"solve returned fields {sorted(fine.fields)} and {sorted(coarse.fields)} at "
            "two resolutions; it must return the same fields"
        )
    index = tuple(slice(None, None, step) for _ in coarse.coords)
    return {name: np.asarray(value)[index] for name, value in fine.fields.items()}


def _region_mask(region, coords: dict[str, np.ndarray], shape) -> np.ndarray:
    if region is None:
        return np.ones(shape, dtype=bool)
    mask = np.asarray(region(*np.meshgrid(*coords.values(), indexing="ij")), dtype=bool)
    if mask.shape != tuple(shape) or not mask.any():
        raise ValueError(
            f"region(...) returned a mask of shape {mask.shape} with {int(mask.sum())} "
            f"True entries; expected a boolean array of the grid shape {tuple(shape)} with "
            "at least one True entry"
        )
    return mask


def _relative(diff: dict[str, np.ndarray], ref: dict[str, np.ndarray], mask, factor: float) -> float:
    """``||diff|| / (factor ||ref||)`` over ``mask``, all fields together."""
    num = sum(float(np.sum(np.abs(d[mask]) ** 2)) for d in diff.values())
    den = sum(float(np.sum(np.abs(r[mask]) ** 2)) for r in ref.values())
    if den == 0.0:
        return 0.0 if num == 0.0 else float("inf")
    return float(np.sqrt(num / den)) / factor


def richardson(
    solve: Callable[[Count], FDSolution],
    n: Count,
    order: int,
    *,
    result: str = "extrapolated",
    region: Callable[..., np.ndarray] | None = None,
    solver: str | None = None,
) -> FDSolution:
    """Raise a solver's order by two with Richardson extrapolation in h.

    Assumes the error of ``solve`` expands in even powers of h,
    ``u_h = u + C h^p + O(h^(p+2))`` (see the module docstring); for a scheme whose
    expansion has an odd term (a one-sided boundary closure, a kink in a coefficient
    off the nodes) the result is only order p + 1 and the estimates are optimistic.

    Args:
        solve: ``solve(n) -> FDSolution`` on the node grid with ``n`` nodes per axis
            (an int or a tuple, as the solvers take), the grid ends fixed.
        n: the coarse grid's node count per axis; the fine grid has ``2 n - 1``.
        order: the formal order p of ``solve`` (2 for the solvers here).
        result: ``"extrapolated"``: ``R = (2^p u_{h/2} - u_h) / (2^p - 1)`` on the
            coarse grid, order p + 2, with ``error_estimate`` the three-level estimate
            ``||R_{h/2} - R_h|| / ((2^(p+2) - 1) ||R_{h/2}||)`` on the nodes of a third,
            coarser solve at ``(n + 1) / 2`` nodes (so ``n - 1`` must be even on every
            axis; that solve costs about 1/16 of the fine one).  ``"fine"``: the fine
            solution ``u_{h/2}`` itself, on its ``2 n - 1`` grid, order p, with
            ``error_estimate = ||u_{h/2} - u_h|| / ((2^p - 1) ||u_{h/2}||)`` on the
            coarse nodes (two solves).
        region: optional ``region(*meshgrid) -> bool array`` selecting the nodes the
            estimate is measured over (e.g. the physical region inside a PML); the
            whole grid when ``None``.
        solver: name of the result; default ``solve``'s name + ``"-richardson"`` (for
            ``"fine"``, ``solve``'s own name).

    Returns:
        ``FDSolution`` as described under ``result``, all fields combined alike (real
        or complex); ``error_estimate`` covers all fields together.

    Raises:
        ValueError: for a bad ``order``, ``result`` or ``n``, grids that do not nest, or
            fields that differ between the solves.
    """
    if isinstance(order, bool) or not isinstance(order, numbers.Integral) or order < 1:
        raise ValueError(
            f"order={order!r} must be the positive int formal order p of solve "
            "(e.g. 2 for the 5-point schemes)"
        )
    if result not in RESULTS:
        raise ValueError(f"Invalid result {result!r}. Must be one of {list(RESULTS)}")
    counts = _check_count(n)
    if result == "extrapolated" and any((m - 1) % 2 for m in counts):
        raise ValueError(
            f"n={n!r}: the error estimate of the extrapolated field needs a grid at 2h, "
            "so n - 1 must be even on every axis; use e.g. n = 2^k + 1 (129, 257, 513) "
            "or result='fine'"
        )
    ratio = 2.0**order

    coarse = solve(n)
    fine = solve(_refine(n, 2))
    fine_on_coarse = _restrict(fine, coarse, 2)
    mask = _region_mask(region, coarse.coords, coarse.shape)
    diff = {k: fine_on_coarse[k] - np.asarray(coarse.fields[k]) for k in coarse.fields}

    if result == "fine":
        return FDSolution(
            coords=fine.coords,
            fields=fine.fields,
            solver=fine.solver if solver is None else solver,
            order=fine.order,
            spacing=fine.spacing,
            error_estimate=_relative(diff, fine_on_coarse, mask, ratio - 1.0),
        )

    extrapolated = {k: fine_on_coarse[k] + diff[k] / (ratio - 1.0) for k in coarse.fields}
    # R at h and 2h on the 2h nodes; their difference is (2^(p+2) - 1) times R's error.
    coarsest = solve(tuple((m + 1) // 2 for m in counts) if isinstance(n, Sequence)
                     else (counts[0] + 1) // 2)
    coarse_on_coarsest = _restrict(coarse, coarsest, 2)
    r_fine = {k: v[tuple(slice(None, None, 2) for _ in v.shape)] for k, v in extrapolated.items()}
    r_coarse = {
        k: coarse_on_coarsest[k] + (coarse_on_coarsest[k] - np.asarray(coarsest.fields[k])) / (ratio - 1.0)
        for k in coarse.fields
    }
    mask2 = _region_mask(region, coarsest.coords, coarsest.shape)
    estimate = _relative({k: r_fine[k] - r_coarse[k] for k in r_fine}, r_fine, mask2,
                         2.0 ** (order + 2) - 1.0)
    return FDSolution(
        coords=coarse.coords,
        fields=extrapolated,
        solver=f"{coarse.solver}-richardson" if solver is None else solver,
        order=int(order) + 2,
        spacing=coarse.spacing,
        error_estimate=estimate,
    )
