"""Searches of the Gauss-Newton stage (:class:`~pinn_sine.optim.GaussNewton`'s
``search=``): the damping a step uses and whether, and how far, the step is taken.

Each compares the actual decrease of the loss L = ||r||^2 with the decrease the
linear model ||r + alpha J d||^2 predicts,

    pred(alpha) = -(2 alpha r.Jd + alpha^2 ||Jd||^2),   rho = (L(theta) - L(theta + alpha d)) / pred(alpha).

* :class:`Nielsen` ("nielsen", the default): Levenberg-Marquardt damping lambda =
  mu ||J||_F^2 / p with mu adapted by rho (Nielsen 1999): a step with rho > 0 is taken
  and mu shrinks by max(1/3, 1 - (2 rho - 1)^3); otherwise it is undone and mu grows by
  nu, which doubles after each consecutive rejection. Optionally halves a rejected step
  up to 8 times.
* :class:`TrustRegion` ("trust_region"): a fixed small relative damping and a radius
  Delta on ||alpha d|| (the step is shortened to it): rho < 1/4 shrinks Delta to a
  quarter of the step, rho > 3/4 with the step on the boundary doubles it; the step is
  taken when rho > ``eta`` (Nocedal & Wright, Algorithm 4.1, with the truncated step in
  place of the exact subproblem's).
* :class:`Backtracking` ("backtracking"): the Armijo line search on the full step,
  alpha = 1, 1/2, 1/4, ... until L(theta + alpha d) <= L + c alpha grad L . d, with the
  damping shrunk after a full step and grown after a shortened or failed one.

A search is a small class: ``damping(scale)`` -> lambda for ``scale`` = ||J||_F^2 / p,
``run(trial, loss, model) -> SearchResult`` (``trial(alpha)`` sets the parameters to
theta + alpha d and returns the loss there; ``model`` holds r.Jd, ||Jd||^2 and ||d||, summed
over all processes under torchrun), ``state_dict``/``load_state_dict``, ``describe``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .solvers import Part
from .stages import check_every, check_positive_float

_MU_MIN, _MU_MAX = 1e-15, 1e12


@dataclass
class SearchResult:
    """What a search did: whether the parameters moved, by which fraction alpha of d,
    the gain ratio rho of the first trial, and values for the history."""

    accepted: bool
    alpha: float
    gain: float
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Model:
    """The linear model of a step d: r.Jd, ||Jd||^2 and ||d|| (global sums)."""

    rJd: float
    JdJd: float
    dnorm: float

    def predicted(self, alpha: float = 1.0) -> float:
        """The model's decrease -(2 alpha r.Jd + alpha^2 ||Jd||^2)."""
        return -(2 * alpha * self.rJd + alpha * alpha * self.JdJd)


class Search(Part):
    """Base class of the searches (module docstring)."""

    name = "search"

    def damping(self, scale: float) -> float:
        raise NotImplementedError

    def run(self, trial, loss: float, model: Model) -> SearchResult:
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass



class Nielsen(Search):
    """Levenberg-Marquardt damping adapted by the gain ratio (module docstring).

    Args:
        damping: the initial relative damping mu (> 0).
        line_search: after a rejected step try d/2, d/4, ... (at most 8 halvings) and take
            the first that lowers the loss.
        min_damping: the least relative damping mu the rule may reach (default 1e-15).
            A higher floor keeps every step short along the directions whose squared
            singular values are below lambda (so that, on a batch redrawn every few
            steps, they would follow the mean of the batches rather than the last one).
            Measured on Poisson2D with the geodesic acceleration and redraws (README):
            a floor of 1e-12 was 3x worse, 1e-10 20x: those small directions are where
            the last digits are won.
    """

    name = "nielsen"

    def __init__(self, damping: float = 1e-3, line_search: bool = False, min_damping: float = _MU_MIN):
        self.damping0 = check_positive_float(damping, "damping", "Nielsen")
        if not isinstance(line_search, bool):
            raise ValueError(f"Nielsen: line_search must be True or False, got {line_search!r}.")
        self.min_damping = check_positive_float(min_damping, "min_damping", "Nielsen")
        if not _MU_MIN <= self.min_damping <= self.damping0:
            raise ValueError(f"Nielsen: min_damping must lie in [{_MU_MIN:g}, damping={self.damping0:g}], "
                             f"got {min_damping!r}.")
        self.line_search = line_search
        self.mu, self.nu = self.damping0, 2.0

    def damping(self, scale):
        return self.mu * max(scale, 1e-300)

    def run(self, trial, loss, model):
        pred = model.predicted()
        gain, accepted, alpha = float("nan"), False, 1.0
        for attempt in range(9 if self.line_search else 1):
            alpha = 0.5 ** attempt
            new = trial(alpha)
            if attempt == 0:
                gain = (loss - new) / pred if pred > 0 else float("-inf")
                accepted = math.isfinite(new) and gain > 0
            else:
                accepted = math.isfinite(new) and new < loss
            if accepted:
                break
        if gain > 0 and alpha == 1.0:
            self.mu = max(self.min_damping, self.mu * max(1 / 3, 1 - (2 * gain - 1) ** 3))
            self.nu = 2.0
        else:
            self.mu = min(_MU_MAX, self.mu * self.nu)
            self.nu *= 2.0
        extra = {"mu": self.mu}
        if self.line_search:
            extra["alpha"] = alpha if accepted else 0.0
        return SearchResult(accepted, alpha, gain, extra)

    def state_dict(self):
        return {"mu": self.mu, "nu": self.nu}

    def load_state_dict(self, state):
        self.mu, self.nu = float(state["mu"]), float(state["nu"])

    def describe(self):
        out = {"name": self.name, "damping": self.damping0, "line_search": self.line_search}
        if self.min_damping != _MU_MIN:  # only then: the descriptions of earlier runs stay as they were
            out["min_damping"] = self.min_damping
        return out


class TrustRegion(Search):
    """A radius on the step length, adapted by the gain ratio (module docstring).

    Args:
        damping: the relative damping mu of the linear system (fixed; > 0), which only
            regularises it: the radius limits the step.
        radius: the initial radius (None: the length of the first step).
        max_radius: the radius at most (> 0).
        eta: the gain ratio a step needs to be taken, in [0, 1/4).
    """

    name = "trust_region"

    def __init__(self, damping: float = 1e-6, radius: float | None = None, max_radius: float = 1e3,
                 eta: float = 1e-4):
        self.damping0 = check_positive_float(damping, "damping", "TrustRegion")
        self.radius0 = None if radius is None else check_positive_float(radius, "radius", "TrustRegion")
        self.max_radius = check_positive_float(max_radius, "max_radius", "TrustRegion")
        if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not 0 <= eta < 0.25:
            raise ValueError(f"TrustRegion: eta must be a number in [0, 0.25), got eta={eta!r}.")
        self.eta = float(eta)
        self.radius = self.radius0

    def damping(self, scale):
        return self.damping0 * max(scale, 1e-300)

    def run(self, trial, loss, model):
        norm = model.dnorm
        if self.radius is None:
            self.radius = min(norm, self.max_radius) if norm > 0 else self.max_radius
        alpha = min(1.0, self.radius / norm) if norm > 0 else 1.0
        pred = model.predicted(alpha)
        new = trial(alpha)
        gain = (loss - new) / pred if pred > 0 else float("-inf")
        accepted = math.isfinite(new) and gain > self.eta
        step = alpha * norm
        if not gain >= 0.25:
            self.radius = max(0.25 * step, 1e-300)
        elif gain > 0.75 and step >= 0.99 * self.radius:
            self.radius = min(2 * self.radius, self.max_radius)
        return SearchResult(accepted, alpha, gain, {"radius": self.radius, "alpha": alpha if accepted else 0.0})

    def state_dict(self):
        return {"radius": self.radius}

    def load_state_dict(self, state):
        self.radius = None if state["radius"] is None else float(state["radius"])

    def describe(self):
        return {"name": self.name, "damping": self.damping0, "radius": self.radius0, "max_radius": self.max_radius,
                "eta": self.eta}


class Backtracking(Search):
    """Armijo backtracking on the Gauss-Newton direction (module docstring).

    Args:
        damping: the initial relative damping mu (> 0): divided by 3 after a full step,
            doubled after a shortened one, multiplied by 4 after a failure.
        c: the sufficient-decrease constant, in (0, 1/2).
        max_halvings: halvings of alpha at most (>= 1).
    """

    name = "backtracking"

    def __init__(self, damping: float = 1e-3, c: float = 1e-4, max_halvings: int = 10):
        self.damping0 = check_positive_float(damping, "damping", "Backtracking")
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not 0 < c < 0.5:
            raise ValueError(f"Backtracking: c must be a number in (0, 0.5), got c={c!r}.")
        self.c = float(c)
        self.max_halvings = check_every(max_halvings, "max_halvings", "Backtracking")
        self.mu = self.damping0

    def damping(self, scale):
        return self.mu * max(scale, 1e-300)

    def run(self, trial, loss, model):
        slope = 2 * model.rJd  # grad L . d
        pred = model.predicted()
        gain, accepted, alpha = float("nan"), False, 1.0
        if slope < 0:
            for attempt in range(self.max_halvings + 1):
                alpha = 0.5 ** attempt
                new = trial(alpha)
                if attempt == 0:
                    gain = (loss - new) / pred if pred > 0 else float("-inf")
                if math.isfinite(new) and new <= loss + self.c * alpha * slope:
                    accepted = True
                    break
        if accepted and alpha == 1.0:
            self.mu = max(_MU_MIN, self.mu / 3)
        elif accepted:
            self.mu = min(_MU_MAX, self.mu * 2)
        else:
            self.mu = min(_MU_MAX, self.mu * 4)
        return SearchResult(accepted, alpha, gain, {"mu": self.mu, "alpha": alpha if accepted else 0.0})

    def state_dict(self):
        return {"mu": self.mu}

    def load_state_dict(self, state):
        self.mu = float(state["mu"])

    def describe(self):
        return {"name": self.name, "damping": self.damping0, "c": self.c, "max_halvings": self.max_halvings}


SEARCHES = {"nielsen": Nielsen, "trust_region": TrustRegion, "backtracking": Backtracking}
