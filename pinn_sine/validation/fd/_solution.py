"""The result container shared by every finite-difference solver, and grid helpers.

All FD solvers in ``pinn_sine.validation.fd`` work on node-centred grids that include
the boundary nodes, ``x = np.linspace(a, b, nx)``, in float64.  Multi-dimensional
arrays use "ij" indexing, ``u[i, j] = u(x_i, y_j)``, and time comes first:
``u[k, i]`` or ``u[k, i, j]``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

GridFunction = Callable[..., np.ndarray | float]


@dataclass(frozen=True)
class FDSolution:
    """A field sampled on a tensor-product grid by a finite-difference solver.

    Attributes:
        coords: ordered 1-D, strictly increasing coordinate arrays, e.g.
            ``{"x": (nx,), "y": (ny,)}`` or ``{"t": (nt,), "x": (nx,), "y": (ny,)}``.
            The order of the keys is the order of the field axes.
        fields: named arrays, each of shape ``tuple(len(c) for c in coords.values())``,
            e.g. ``{"u": (nx, ny)}``.  Any dtype (a Helmholtz solver may return a
            complex ``"u"``).
        solver: short name of the scheme, e.g. ``"fd5-dst"`` or ``"leapfrog"``.
        order: formal order of accuracy of the scheme (2 or 4).
        spacing: grid spacing the solver used per coordinate, e.g.
            ``{"x": hx, "y": hy, "t": dt}``; keys are a subset of ``coords``.
        error_estimate: an estimate of the relative L2 error of the fields,
            ``||u - u_exact|| / ||u||`` over the grid (or the region the solver names,
            e.g. the physical region inside a PML), or ``None`` when the solver makes
            none.  :func:`~pinn_sine.validation.fd.richardson.richardson` sets it.
    """

    coords: dict[str, np.ndarray]
    fields: dict[str, np.ndarray]
    solver: str
    order: int
    spacing: dict[str, float]
    error_estimate: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.coords, dict) or not self.coords:
            raise ValueError(
                f"FDSolution.coords={self.coords!r} must be a non-empty dict of 1-D "
                "arrays such as {'x': x, 'y': y}; pass the grid coordinates in axis order"
            )
        for name, c in self.coords.items():
            c = np.asarray(c)
            if c.ndim != 1 or c.size == 0:
                raise ValueError(
                    f"FDSolution.coords[{name!r}] has shape {c.shape}; expected a "
                    "non-empty 1-D array; pass the 1-D grid, not a meshgrid"
                )
            if c.size > 1 and not np.all(np.diff(c) > 0):
                raise ValueError(
                    f"FDSolution.coords[{name!r}] is not strictly increasing; sort the "
                    "coordinate and the field axis together"
                )
        shape = tuple(len(c) for c in self.coords.values())
        if not isinstance(self.fields, dict) or not self.fields:
            raise ValueError(
                f"FDSolution.fields={self.fields!r} must be a non-empty dict of arrays "
                "such as {'u': u}"
            )
        for name, value in self.fields.items():
            value_shape = np.shape(value)
            if value_shape != shape:
                raise ValueError(
                    f"FDSolution.fields[{name!r}] has shape {value_shape}, expected "
                    f"{shape} from coords {tuple(self.coords)}; store the field on the "
                    "grid given by coords, axes in the same order"
                )
        if not isinstance(self.solver, str) or not self.solver:
            raise ValueError(
                f"FDSolution.solver={self.solver!r} must be a non-empty string naming "
                "the scheme, e.g. 'fd5-dst'"
            )
        if isinstance(self.order, bool) or not isinstance(self.order, numbers.Integral) \
                or self.order < 1:
            raise ValueError(
                f"FDSolution.order={self.order!r} must be a positive int (the formal "
                "order of accuracy, e.g. 2)"
            )
        if not isinstance(self.spacing, dict):
            raise ValueError(
                f"FDSolution.spacing={self.spacing!r} must be a dict such as "
                "{'x': hx, 'y': hy}"
            )
        for name, h in self.spacing.items():
            if name not in self.coords:
                raise ValueError(
                    f"FDSolution.spacing has key {name!r} that is not a coordinate; "
                    f"expected one of {list(self.coords)}"
                )
            if not (isinstance(h, numbers.Real) and math.isfinite(h) and h > 0):
                raise ValueError(
                    f"FDSolution.spacing[{name!r}]={h!r} must be a positive finite number"
                )
        e = self.error_estimate
        if e is not None and not (
            isinstance(e, numbers.Real) and not isinstance(e, bool) and math.isfinite(e) and e >= 0
        ):
            raise ValueError(
                f"FDSolution.error_estimate={e!r} must be None or a finite number >= 0 "
                "(a relative L2 error estimate)"
            )

    @property
    def shape(self) -> tuple[int, ...]:
        """Grid shape ``tuple(len(c) for c in coords.values())``."""
        return tuple(len(c) for c in self.coords.values())

    def to_reference(self, *, fields: dict[str, np.ndarray] | None = None, stride: dict[str, int] | None = None,
                     spacing: dict[str, float] | None = None, mask: np.ndarray | None = None,
                     attrs: dict | None = None, error_method: str | None = None):
        """This solution as a :class:`~pinn_sine.validation.ReferenceField`, the value a
        problem's ``compute_reference`` returns (its ``problem`` and ``params`` are left
        empty: ``Problem.reference()`` attaches them, with the hash of the cache key).

        Args:
            fields: the fields to store, on this grid (default: the solver's); a complex
                field ``name`` is stored as ``name_real`` and ``name_imag``.
            stride: keep every ``stride[c]``-th node along coordinate ``c`` (a solve on a
                refined grid, stored on the network's grid); the stored spacing is the
                stored grid's, the solver's goes to ``attrs["solver_spacing"]``.
            spacing: the stored spacing per coordinate, where it is not the solver's
                (e.g. the output times of a time stepper rather than its step).
            mask: boolean array of the stored grid's shape: where errors are measured.
            attrs: extra facts for the file (see ``ReferenceField``).
            error_method: how :attr:`error_estimate` was obtained, when there is one
                ("exact", "richardson" or "refinement"; default "richardson", the
                tool that sets it).
        """
        from ..reference import ReferenceField

        stride = dict(stride or {})
        unknown = sorted(set(stride) - set(self.coords))
        if unknown:
            raise ValueError(f"stride names {unknown}, which are not coordinates; expected some of {list(self.coords)}")
        step = tuple(slice(None, None, int(stride.get(name, 1))) for name in self.coords)
        coords = {name: np.asarray(c)[s] for (name, c), s in zip(self.coords.items(), step)}
        out = {}
        for name, value in (self.fields if fields is None else fields).items():
            value = np.asarray(value)
            if value.shape == self.shape:
                value = value[step]
            if np.iscomplexobj(value):
                out[f"{name}_real"] = np.ascontiguousarray(value.real)
                out[f"{name}_imag"] = np.ascontiguousarray(value.imag)
            else:
                out[name] = np.ascontiguousarray(value)
        stored_spacing = {name: h * stride.get(name, 1) for name, h in self.spacing.items()}
        stored_spacing.update(spacing or {})
        attrs = dict(attrs or {})
        if stride and any(v != 1 for v in stride.values()):
            attrs.setdefault("solver_spacing", dict(self.spacing))
        if self.error_estimate is not None and "error_estimate" not in attrs:
            attrs.update(error_estimate=float(self.error_estimate), error_method=error_method or "richardson")
        return ReferenceField(problem="", params={}, coords=coords, fields=out, solver=self.solver,
                              order=self.order, spacing=stored_spacing, mask=mask, attrs=attrs)


# --- grid helpers shared by the FD solvers -------------------------------------------


def parse_interval(bounds: object, name: str) -> tuple[float, float]:
    """Validate one interval ``(a, b)`` with finite ``a < b``; ``name`` is used in errors."""
    try:
        a, b = (float(v) for v in bounds)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError(
            f"{name}={bounds!r} is not an interval; expected a pair of numbers (a, b) "
            "with a < b"
        ) from None
    if not (math.isfinite(a) and math.isfinite(b)):
        raise ValueError(f"{name}={bounds!r} has a non-finite end; use finite numbers")
    if not a < b:
        raise ValueError(
            f"{name}=({a}, {b}) is reversed or empty; expected a < b, e.g. ({min(a, b)}, "
            f"{max(a, b)})"
        )
    return a, b


def parse_bounds_2d(bounds: object) -> tuple[tuple[float, float], tuple[float, float]]:
    """Validate ``((x0, x1), (y0, y1))`` for a rectangle."""
    try:
        shape = np.shape(bounds)
    except ValueError:  # ragged nesting
        shape = None
    if shape != (2, 2):
        raise ValueError(
            f"bounds={bounds!r} must be ((x0, x1), (y0, y1)) for a rectangle"
        )
    bx, by = bounds  # type: ignore[misc]
    return parse_interval(bx, "bounds[0] (x)"), parse_interval(by, "bounds[1] (y)")


def parse_count(n: object, name: str, minimum: int = 3) -> int:
    """Validate a node count: an int ``>= minimum``."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise ValueError(f"{name}={n!r} must be an int number of grid nodes >= {minimum}")
    if n < minimum:
        raise ValueError(
            f"{name}={n} is too small: the grid needs at least {minimum} nodes (boundary "
            f"nodes included); use {name} >= {minimum}"
        )
    return int(n)


def parse_shape_2d(n: object, minimum: int = 3) -> tuple[int, int]:
    """Validate ``n`` as an int (square grid) or an ``(nx, ny)`` pair."""
    if isinstance(n, Sequence) and not isinstance(n, str):
        if len(n) != 2:
            raise ValueError(f"n={n!r} must be an int or a pair (nx, ny)")
        return parse_count(n[0], "n[0] (nx)", minimum), parse_count(n[1], "n[1] (ny)", minimum)
    count = parse_count(n, "n", minimum)
    return count, count


def evaluate_on_grid(
    value: GridFunction | np.ndarray | float,
    grids: tuple[np.ndarray, ...],
    shape: tuple[int, ...],
    name: str,
) -> np.ndarray:
    """Return ``value`` as a finite real float64 array of ``shape``.

    ``value`` is a callable evaluated as ``value(*grids)`` (the result is broadcast, so
    ``lambda X, Y: 1.0`` is allowed) or an array of exactly ``shape``.
    """
    if callable(value):
        out = value(*grids)
        source = f"{name}(...) returned"
    else:
        out = value
        source = f"{name} is"
        if np.shape(out) != shape:
            raise ValueError(
                f"{name} has shape {np.shape(out)}, expected the grid shape {shape}; pass "
                "an array on the grid or a callable of the grid coordinates"
            )
    if np.iscomplexobj(out):
        raise ValueError(f"{source} complex values; this solver needs a real {name}")
    try:
        out = np.broadcast_to(np.asarray(out, dtype=np.float64), shape)
    except ValueError:
        raise ValueError(
            f"{source} shape {np.shape(out)}, which does not broadcast to the grid shape "
            f"{shape}; make it work elementwise on the coordinate arrays"
        ) from None
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{source} non-finite values (nan or inf) on the grid")
    return np.array(out, dtype=np.float64)  # own, writeable copy


def on_grid(fn: Callable) -> GridFunction:
    """A function of points as a function of grid arrays, the form the FD solvers take.

    ``fn`` maps a float64 tensor of points (n, d) to values (n, 1) or (n,) (a problem's
    ``exact``, ``source``, ...); the result maps d arrays of one shape (``X, Y`` from
    ``np.meshgrid(..., indexing="ij")``) to a float64 array of that shape, or complex
    where ``fn`` returns complex values.
    """
    import torch

    def on(*grids: np.ndarray) -> np.ndarray:
        shape = np.shape(grids[0])
        pts = torch.from_numpy(np.stack([np.ravel(np.asarray(g, dtype=np.float64)) for g in grids], axis=1))
        with torch.no_grad():
            values = fn(pts)
        return np.asarray(values.detach().cpu().numpy() if hasattr(values, "detach") else values).reshape(shape)

    return on
