"""The wave-speed model c(x, y) > 0 on [-1, 1]^2 shared by HelmholtzPointSource and
Wave2D, and the small geometry helpers of a point source (its centre, clipping points
to the domain).

A model is one of: a named model of the SIREN code ("uniform": c = 1; "square" and
"circle": c = 2 in |x|, |y| < 0.3 or r < 0.1, else 1, edges smoothed over ``edge``),
a positive number, a torch callable ``c(x, y)`` on tensors of shape (n,) returning
(n,) or a scalar, or an (m, m) array of speeds on the node grid ``linspace(-1, 1, m)``
per axis (ij indexing), interpolated bilinearly. It is checked finite and positive on
a 65 x 65 grid of the domain when made.
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch import Tensor

from .._checks import non_negative, positive
from .base import describe_callable
from .callables import call_xy

#: the named velocity models of the SIREN code (dataio.SingleHelmholtzSource)
VELOCITIES = ("uniform", "square", "circle")
INCLUSION_C = 2.0
INCLUSIONS = {"square": 0.3, "circle": 0.1}  # half side, radius
#: the default edge width of the inclusions
DEFAULT_EDGE = 0.02
DOMAIN = ((-1.0, 1.0), (-1.0, 1.0))


def grid_points(bounds, n: int = 65) -> Tensor:
    """An n x n node grid over ``bounds`` as (n*n, 2) float64 (for checks and scales)."""
    (x0, x1), (y0, y1) = bounds
    X, Y = torch.meshgrid(torch.linspace(x0, x1, n, dtype=torch.float64),
                          torch.linspace(y0, y1, n, dtype=torch.float64), indexing="ij")
    return torch.stack([X.reshape(-1), Y.reshape(-1)], dim=1)


def parse_center(value) -> tuple[float, float]:
    """``source_center`` as a pair of floats, or a ValueError naming it."""
    try:
        x0, y0 = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"source_center must be a pair (x0, y0), got {value!r}.") from None
    return x0, y0


def clip(pts: Tensor, bounds) -> Tensor:
    """Points (n, d) clipped into the box ``bounds`` (drawn near a source close to a wall)."""
    lo = torch.tensor([b[0] for b in bounds], dtype=pts.dtype)
    hi = torch.tensor([b[1] for b in bounds], dtype=pts.dtype)
    return torch.minimum(torch.maximum(pts, lo), hi)


class VelocityModel:
    """A wave speed c(x, y) > 0 on [-1, 1]^2 (module docstring).

    Args:
        velocity: a name of :data:`VELOCITIES` (when ``named``), a positive number, a
            callable c(x, y) or an (m, m) array (when ``arrays``).
        edge: the inclusions' edge width (>= 0; only for "square" and "circle").
        label: how errors name the argument ("velocity", "c"); fn_label: how they name
            a callable's values ("c(x, y)"; default ``label``).
        named, arrays: whether names and arrays are accepted.
    Attributes:
        name (or None), c (the constant speed or None), c_fn, array (or None);
        c_min, c_max over the check grid.
    """

    def __init__(self, velocity, *, edge: float = DEFAULT_EDGE, label: str = "velocity", named: bool = True,
                 arrays: bool = True, fn_label: str | None = None):
        self.label = label
        fn_label = label if fn_label is None else fn_label
        self.edge = non_negative(f"{label}_edge", edge, "0: a sharp edge", "use e.g. 0.02.")
        if self.edge != DEFAULT_EDGE and not (isinstance(velocity, str) and velocity in INCLUSIONS):
            raise ValueError(f"{label}_edge={edge!r} applies to the inclusions {list(INCLUSIONS)} only, not to "
                             f"{label}={velocity!r}; leave it at its default.")
        self.name = self.c = self.c_fn = self.array = None
        if isinstance(velocity, str) and named:
            if velocity not in VELOCITIES:
                raise ValueError(f'Invalid {label} "{velocity}". Must be one of {list(VELOCITIES)}, a positive '
                                 "number, a callable c(x, y) or an (m, m) array.")
            self.name = velocity
            if velocity == "uniform":
                self.c = 1.0
        elif callable(velocity):
            pts = grid_points(DOMAIN)
            call_xy(velocity, label, pts[:, 0], pts[:, 1], scalar=True)  # arity, library, shape, named
            self.c_fn = velocity
        elif arrays and not isinstance(velocity, (str, bool, int, float)):
            arr = np.asarray(velocity.detach().cpu() if isinstance(velocity, Tensor) else velocity, dtype=np.float64)
            if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] < 2:
                raise ValueError(f"a {label} array must be square (m, m) with m >= 2 (speeds on the node grid "
                                 f"linspace(-1, 1, m) per axis, ij indexing), got shape {arr.shape}; resample it "
                                 "to an (m, m) grid.")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"the {label} array has non-finite values; give finite positive speeds.")
            if arr.min() <= 0:
                raise ValueError(f"{label} must be > 0 everywhere, got min c = {arr.min():g} in the array; "
                                 "give positive wave speeds.")
            self.array = arr
            self._table = torch.from_numpy(arr)
        else:
            self.c = positive(label, velocity, f"the wave speed must be positive, e.g. {label}=1.0.")
        values = self.values(grid_points(DOMAIN))
        if not torch.all(torch.isfinite(values)):
            raise ValueError(f"{fn_label} returned non-finite values on the domain; give a finite positive speed.")
        if float(values.min()) <= 0:
            raise ValueError(f"{fn_label} must be > 0 everywhere, got min c = {float(values.min()):g} on a 65 x 65 "
                             "grid of the domain; give a positive wave speed.")
        self.c_min, self.c_max = float(values.min()), float(values.max())

    @property
    def constant(self) -> bool:
        """Whether c is one number (:attr:`c`)."""
        return self.c is not None

    def values(self, x: Tensor) -> Tensor:
        """c at the points x (n, 2) -> (n, 1), in x's dtype."""
        xs, ys = x[:, 0:1], x[:, 1:2]
        if self.c is not None:
            return torch.full_like(xs, self.c)
        if self.name in INCLUSIONS:
            size, e = INCLUSIONS[self.name], self.edge
            if self.name == "square":
                dists = (size - xs.abs(), size - ys.abs())
            else:
                dists = (size - torch.sqrt(xs * xs + ys * ys),)
            inside = torch.ones_like(xs)
            for d in dists:
                inside = inside * (torch.sigmoid(d / e) if e > 0 else (d > 0).to(x.dtype))
            return 1.0 + (INCLUSION_C - 1.0) * inside
        if self.c_fn is not None:
            v = torch.as_tensor(self.c_fn(xs.reshape(-1), ys.reshape(-1)), dtype=x.dtype, device=x.device)
            return v.reshape(xs.shape) if v.numel() == xs.numel() else v.expand(xs.numel()).reshape(xs.shape)
        return self._interpolate(x)

    def __call__(self, x: Tensor, y: Tensor) -> Tensor | float:
        """c at x, y (n, 1) each -> (n, 1), or the constant as a float."""
        if self.c is not None:
            return self.c
        return self.values(torch.cat([x, y], dim=1))

    def on_grid(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """c on grid arrays X, Y (the array itself when it is given on that grid)."""
        if self.array is not None and self.array.shape == np.shape(X):
            return self.array
        pts = torch.from_numpy(np.stack([np.ravel(X), np.ravel(Y)], axis=1).astype(np.float64))
        with torch.no_grad():
            return self.values(pts).numpy().reshape(np.shape(X))

    def params(self, key: str = "velocity") -> dict:
        """The model's part of a problem's parameters, under ``key`` (``key``, ``key_edge``,
        ``key_fn``, ``velocity_array`` and ``velocity_sha``)."""
        if self.name in INCLUSIONS:
            return {key: self.name, f"{key}_edge": self.edge}
        if self.name is not None:
            return {key: self.name}
        if self.c is not None:
            return {key: self.c}
        if self.c_fn is not None:
            return {f"{key}_fn": describe_callable(self.c_fn)}
        return {"velocity_array": list(self.array.shape),
                "velocity_sha": hashlib.sha256(np.ascontiguousarray(self.array).tobytes()).hexdigest()[:16]}

    def _interpolate(self, x: Tensor) -> Tensor:
        """Bilinear interpolation of the array at x (n, 2) -> (n, 1)."""
        table = self._table.to(device=x.device, dtype=x.dtype)
        m = table.shape[0]
        g = ((x.clamp(-1.0, 1.0) + 1.0) * (0.5 * (m - 1)))
        i0 = g.floor().long().clamp(0, m - 2)
        t = g - i0.to(x.dtype)
        ix, iy = i0[:, 0], i0[:, 1]
        tx, ty = t[:, 0:1], t[:, 1:2]
        c00, c10 = table[ix, iy].unsqueeze(1), table[ix + 1, iy].unsqueeze(1)
        c01, c11 = table[ix, iy + 1].unsqueeze(1), table[ix + 1, iy + 1].unsqueeze(1)
        return (1 - tx) * ((1 - ty) * c00 + ty * c01) + tx * ((1 - ty) * c10 + ty * c11)
