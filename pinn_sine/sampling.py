"""Point samplers. Every random draw takes an explicit ``torch.Generator``.

Boxes are given as a tuple of (lo, hi) bounds, one per input, in the problem's input
order. Quasi-random samplers (Sobol, Latin hypercube) come from ``scipy.stats.qmc``;
their scrambling seed is drawn from the generator, so runs stay repeatable.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sized
from typing import Sequence

import numpy as np
import torch
from scipy.stats import qmc
from torch import Tensor

Bounds = Sequence[tuple[float, float]]
METHODS = ("uniform", "sobol", "lhs")


def _finite(value) -> float | None:
    """``value`` as a float when it is a finite real number (not a bool or a string), else None."""
    if isinstance(value, (bool, str, bytes)) or not isinstance(value, numbers.Real):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def check_bounds(bounds: Bounds, name: str = "bounds") -> tuple[tuple[float, float], ...]:
    """Validate ((lo, hi), ...) with lo < hi and return it as floats."""
    if isinstance(bounds, (str, bytes)) or not isinstance(bounds, Iterable):
        raise ValueError(f"{name} must be a sequence of (lo, hi) pairs, one per input, got {name}={bounds!r}.")
    out = []
    for i, pair in enumerate(bounds):
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sized) or len(pair) != 2:
            raise ValueError(f"{name}[{i}] must be a (lo, hi) pair, got {pair!r}.")
        if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in pair):
            raise ValueError(f"{name}[{i}] must be a (lo, hi) pair of finite numbers, got {tuple(pair)!r}; "
                             "e.g. (0.0, 1.0).")
        lo, hi = _finite(pair[0]), _finite(pair[1])
        if lo is None or hi is None:
            raise ValueError(f"{name}[{i}] = ({float(pair[0])}, {float(pair[1])}) is infinite, empty or reversed; "
                             "give finite (lo, hi) with lo < hi, e.g. (0.0, 1.0).")
        if not lo < hi:
            raise ValueError(f"{name}[{i}] = ({lo}, {hi}) is empty or reversed; give (lo, hi) with lo < hi, "
                             f"e.g. ({min(lo, hi)}, {max(lo, hi)}).")
        out.append((lo, hi))
    if not out:
        raise ValueError(f"{name} is empty; give one (lo, hi) pair per input.")
    return tuple(out)


def check_count(n, name: str = "n") -> int:
    """``n`` as an int, or a ValueError unless it is an integer >= 0 (a number of points)."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"{name} must be >= 0 (an integer number of points), got {name}={n!r}.")
    return int(n)


def _seed_from(generator: torch.Generator) -> int:
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator).item())


def unit_cube(n: int, d: int, generator: torch.Generator, method: str = "uniform") -> Tensor:
    """n points in [0, 1)^d (float32)."""
    n = check_count(n)
    if method == "uniform":
        return torch.rand(n, d, generator=generator)
    if method == "sobol":
        engine = qmc.Sobol(d, scramble=True, seed=_seed_from(generator))
        # Sobol is balanced at powers of two; draw the next one and keep n.
        m = max(0, math.ceil(math.log2(max(n, 1))))
        pts = engine.random_base2(m)[:n]
        return torch.from_numpy(pts.astype(np.float32))
    if method == "lhs":
        engine = qmc.LatinHypercube(d, seed=_seed_from(generator))
        return torch.from_numpy(engine.random(n).astype(np.float32))
    raise ValueError(f'Invalid sampling method "{method}". Must be one of {list(METHODS)}.')


def box(n: int, bounds: Bounds, generator: torch.Generator, method: str = "uniform") -> Tensor:
    """n points in the box (n, d)."""
    n = check_count(n)
    bounds = check_bounds(bounds)
    lo = torch.tensor([b[0] for b in bounds])
    hi = torch.tensor([b[1] for b in bounds])
    return lo + (hi - lo) * unit_cube(n, len(bounds), generator, method)


def box_boundary(n: int, bounds: Bounds, generator: torch.Generator, *, dims: Sequence[int] | None = None) -> Tensor:
    """n points uniform on the boundary faces of the box normal to ``dims`` (default all).

    Faces are chosen with probability proportional to their measure, so the density is
    uniform over the boundary. For a space-time box pass the spatial dims only: the
    points then lie on the walls at uniformly drawn times.
    """
    n = check_count(n)
    bounds = check_bounds(bounds)
    d = len(bounds)
    dims = tuple(range(d)) if dims is None else tuple(dims)
    side = [b[1] - b[0] for b in bounds]
    measure = torch.tensor([math.prod(side[k] for k in range(d) if k != j) for j in dims], dtype=torch.float64)
    pts = box(n, bounds, generator)
    face = torch.multinomial(measure.repeat(2) / measure.sum() / 2, n, replacement=True, generator=generator)
    dim = torch.tensor(dims)[face % len(dims)]
    upper = face >= len(dims)
    lo = torch.tensor([b[0] for b in bounds])
    hi = torch.tensor([b[1] for b in bounds])
    rows = torch.arange(n)
    pts[rows, dim] = torch.where(upper, hi[dim], lo[dim])
    return pts


def near_point(n: int, center: Sequence[float], radius: float, generator: torch.Generator) -> Tensor:
    """n points uniform in the disc/ball of ``radius`` around ``center`` (n, d)."""
    n = check_count(n)
    d = len(center)
    g = torch.randn(n, d, generator=generator)
    g = g / g.norm(dim=1, keepdim=True).clamp_min(1e-12)
    r = radius * torch.rand(n, 1, generator=generator) ** (1.0 / d)
    return torch.tensor(center, dtype=torch.float32) + r * g
