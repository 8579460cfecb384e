"""Checks of a user's callables f(x, y) at construction (STYLE.md: check invariants at
construction): a problem calls the callable once on a few float64 tensors, so that a
callable of the wrong arity, one written with NumPy or ``math`` instead of torch, or one
of the wrong shape is refused with its argument's name, not found as a raw error deep in
the first training step or the reference solve."""
from __future__ import annotations

import warnings

import torch
from torch import Tensor

#: points the check calls a callable on
CHECK_POINTS = 5


def check_points(bounds, n: int = CHECK_POINTS) -> tuple[Tensor, Tensor]:
    """x, y (n,) float64 on the diagonal of the box ``bounds``, away from its corners."""
    t = torch.linspace(0.1, 0.9, n, dtype=torch.float64)
    (x0, x1), (y0, y1) = bounds[0], bounds[1]
    return x0 + (x1 - x0) * t, y0 + (y1 - y0) * t.flip(0)


def call_xy(fn, name: str, x: Tensor, y: Tensor, *, scalar: bool = False, hint: str = "") -> Tensor:
    """``fn(x, y)`` on the (n,) tensors ``x``, ``y``: a float64 tensor of shape (n,) (an
    (n, 1) result is flattened; with ``scalar`` a 0-d result or a Python number is taken
    as a constant), else a ValueError naming ``name``, what it returned and what was
    expected."""
    n = x.shape[0]
    expected = f"({n},)" + (" or a scalar" if scalar else "")
    try:
        with warnings.catch_warnings():  # a probe: the user's warnings belong to the real calls
            warnings.simplefilter("ignore")
            out = fn(x, y)
    except Exception as err:  # the user's code: any error is theirs to see, named
        reason = (str(err).strip().splitlines() or [""])[0]
        raise ValueError(f"{name}: calling {name}(x, y) on two float64 tensors of shape ({n},) failed "
                         f"({type(err).__name__}: {reason}); {name} must take the two coordinates as torch tensors "
                         "and use torch operations (torch.sin, not math.sin or np.sin)"
                         f"{hint}.") from None
    if scalar and isinstance(out, (int, float)) and not isinstance(out, bool):
        out = torch.tensor(float(out), dtype=torch.float64)
    if not isinstance(out, Tensor):
        raise ValueError(f"{name}(x, y) returned a {type(out).__name__}, expected a torch tensor of shape {expected} "
                         f"for {n} points; build it from x and y with torch operations{hint}.")
    if out.ndim == 2 and out.shape[1] == 1:
        out = out.reshape(-1)
    if not (out.shape == (n,) or (scalar and out.ndim == 0)):
        raise ValueError(f"{name}(x, y) returned shape {tuple(out.shape)} for {n} points; expected {expected} "
                         f"(one value per point){hint}.")
    if not out.is_floating_point():
        out = out.double()
    bad = int((~torch.isfinite(out.detach())).sum())
    if bad:
        raise ValueError(f"{name}(x, y) returned non-finite values at {bad} of {n} points inside the domain; "
                         "give a function that is finite there.")
    return out


def check_solution(fn, name: str, bounds, *, hint: str = "") -> None:
    """Check a manufactured solution u(x, y) (a callable of torch tensors from which the
    source is derived by autograd): called on a few float64 points of ``bounds`` with
    gradients on, it returns one finite value per point, and its Laplacian (the source
    term) is finite there."""
    from .base import exact_laplacian

    if not callable(fn):
        raise ValueError(f"{name} must be a callable {name}(x, y) of tensors (the manufactured solution) or None, "
                         f"got {name}={fn!r}; e.g. {name}=lambda x, y: torch.sin(x) * y.")
    x, y = check_points(bounds)
    with torch.enable_grad():
        call_xy(fn, name, x.clone().requires_grad_(True), y.clone().requires_grad_(True),
                hint=hint or "; the source is derived from it by autograd")
    try:
        lap = exact_laplacian(fn, torch.stack([x, y], dim=1))
    except Exception as err:
        reason = (str(err).strip().splitlines() or [""])[0]
        raise ValueError(f"{name}: the Laplacian of {name}(x, y) by autograd failed ({type(err).__name__}: "
                         f"{reason}); build {name} from x and y with differentiable torch operations.") from None
    bad = int((~torch.isfinite(lap)).sum())
    if bad:
        raise ValueError(f"the Laplacian of {name}(x, y) is non-finite at {bad} of {len(x)} points inside the "
                         f"domain; give a twice-differentiable {name}.")
