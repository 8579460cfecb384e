"""An unknown velocity model as a smooth expansion, for inverse problems.

    c(x, y) = c0 exp( sum_{m, n = 0}^{M-1} theta_mn cos(m pi (x - x_lo) / L_x) cos(n pi (y - y_lo) / L_y) )

on the rectangle [x_lo, x_lo + L_x] x [y_lo, y_lo + L_y], c0 a known background. Why an
expansion rather than a second network: M^2 unknowns (25 to 64) are a handful of dense
Jacobian columns, so Gauss-Newton fits them with the network at no extra cost and
reports a standard error for each; the truncation at M modes is the regularisation
(receivers around a domain cannot resolve finer structure, and a second network would
add thousands of unknowns that the data cannot determine); the exponential keeps c
positive, and bounds on theta (the unknown's transform,
:mod:`pinn_sine.problems.unknowns`) bound c to c0 e^{+-M^2 b}. The cosines have zero
normal derivative on the rectangle's sides, so a model that is flat near the walls
(a bump in a uniform background) is represented without Gibbs ringing.

:meth:`CosineExpansion.project` gives the coefficients of a known model (least squares of
log(c / c0) on a fine grid): the truth an inverse run is judged against, and with
:meth:`CosineExpansion.truncation_error` the best any run can do with M modes.
"""
from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor


class CosineExpansion:
    """c(x, y) = c0 exp(theta . phi(x, y)) with the M^2 cosine products phi (module
    docstring).

    Args:
        bounds: ((x_lo, x_hi), (y_lo, y_hi)), the rectangle of the velocity model.
        modes: M, the cosines per axis (M^2 coefficients, ordered m-major: index m M + n).
        background: c0 > 0.
    """

    def __init__(self, bounds, modes: int, background: float):
        if isinstance(modes, bool) or not isinstance(modes, numbers.Integral) or not 1 <= modes <= 32:
            raise ValueError(f"modes must be an integer in [1, 32] (M^2 coefficients), got modes={modes!r}.")
        if isinstance(background, bool) or not isinstance(background, numbers.Real) or not (
                math.isfinite(background) and background > 0):
            raise ValueError(f"background must be a velocity > 0, got {background!r}.")
        (x0, x1), (y0, y1) = bounds
        self.bounds = ((float(x0), float(x1)), (float(y0), float(y1)))
        self.modes, self.background = int(modes), float(background)

    @property
    def size(self) -> int:
        return self.modes ** 2

    def basis(self, x: Tensor, y: Tensor) -> Tensor:
        """phi at x, y (n, 1) each -> (n, M^2)."""
        (x0, x1), (y0, y1) = self.bounds
        m = torch.arange(self.modes, dtype=x.dtype, device=x.device)
        cx = torch.cos(math.pi * m * (x - x0) / (x1 - x0))  # (n, M)
        cy = torch.cos(math.pi * m * (y - y0) / (y1 - y0))
        return (cx[:, :, None] * cy[:, None, :]).reshape(x.shape[0], -1)

    def __call__(self, theta: Tensor, x: Tensor, y: Tensor) -> Tensor:
        """c at x, y (n, 1) each for coefficients theta (M^2,) -> (n, 1)."""
        phi = self.basis(x, y)
        return self.background * torch.exp(phi @ theta.to(phi.dtype).reshape(-1, 1))

    def grid(self, n: int = 129, bounds=None) -> tuple[Tensor, Tensor]:
        """An n x n grid of the rectangle (or of ``bounds``), as two (n^2, 1) float64 columns."""
        (x0, x1), (y0, y1) = self.bounds if bounds is None else bounds
        X, Y = torch.meshgrid(torch.linspace(x0, x1, n, dtype=torch.float64),
                              torch.linspace(y0, y1, n, dtype=torch.float64), indexing="ij")
        return X.reshape(-1, 1), Y.reshape(-1, 1)

    def project(self, c, n: int = 129) -> Tensor:
        """The coefficients (M^2,) float64 of the model ``c(x, y)`` (callable on (n, 1)
        columns, or a number): least squares of log(c / c0) on an n x n grid."""
        x, y = self.grid(n)
        values = c(x, y) if callable(c) else torch.full_like(x, float(c))
        values = torch.as_tensor(values, dtype=torch.float64).reshape(-1, 1).expand(x.shape[0], 1)
        if not bool((values > 0).all()):
            raise ValueError("the velocity model must be positive everywhere to be expanded.")
        target = torch.log(values / self.background)
        return torch.linalg.lstsq(self.basis(x, y), target).solution.reshape(-1)

    def rel_l2(self, theta: Tensor, c, n: int = 129, bounds=None) -> float:
        """||c_theta - c|| / ||c|| on an n x n grid of the rectangle, or of the sub-rectangle
        ``bounds`` (e.g. a point source's physical region, where its waves see c): how far
        the expansion is from the model."""
        x, y = self.grid(n, bounds)
        values = c(x, y) if callable(c) else torch.full_like(x, float(c))
        values = torch.as_tensor(values, dtype=torch.float64).reshape(-1, 1).expand(x.shape[0], 1)
        return float((self(theta.detach().double(), x, y) - values).norm() / values.norm())

    def truncation_error(self, c, n: int = 129, bounds=None) -> float:
        """The error of the best M-mode expansion of ``c`` (:meth:`project`, over the whole
        rectangle), measured as :meth:`rel_l2` (over ``bounds`` where given)."""
        return self.rel_l2(self.project(c, n), c, n, bounds)

    def describe(self) -> dict:
        return {"bounds": [list(b) for b in self.bounds], "modes": self.modes, "background": self.background}


def problem_expansion(problem, domain, speed, modes: int | None = None) -> CosineExpansion:
    """The expansion an unknown "velocity" of ``problem`` models c with, over ``domain``,
    around c0 = the geometric mean of the defining model ``speed(x, y)`` there (so that
    coefficients 0 are the uniform c0); M from the declared unknown's M^2 entries unless
    ``modes`` is given. Kept on the problem (one per M)."""
    if modes is None:
        unknown = problem.unknowns.get("velocity")
        if unknown is None:
            raise ValueError(f"{type(problem).__name__} has no unknown 'velocity'; declare it with "
                             "declare_unknown('velocity', [0.0] * M**2, lower=-b, upper=b).")
        modes = math.isqrt(unknown.shape[0])
    cached = problem.__dict__.get("_velocity_expansion")
    if cached is None or cached.modes != modes:
        x, y = CosineExpansion(domain, 1, 1.0).grid(65)
        c = torch.as_tensor(speed(x, y), dtype=torch.float64).expand(x.shape[0], 1)
        cached = CosineExpansion(domain, modes, float(torch.exp(torch.log(c).mean())))
        problem.__dict__["_velocity_expansion"] = cached
    return cached


def check_velocity_unknown(problem, unknown) -> None:
    """Raise ValueError unless ``unknown`` is a vector of M^2 expansion coefficients."""
    n = unknown.shape[0] if unknown.shape else 1
    if not unknown.shape or math.isqrt(n) ** 2 != n:
        raise ValueError(f"{type(problem).__name__}: 'velocity' is a vector of M^2 expansion coefficients (M cosines "
                         f"per axis), got a guess of shape {unknown.shape}; e.g. [0.0] * 25 for M = 5.")
