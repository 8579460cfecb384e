"""Unknown problem parameters: what an inverse problem recovers.

A problem parameter declared unknown (:meth:`~pinn_sine.problems.Problem.declare_unknown`)
becomes a trainable coefficient, fitted with the network by every stage. The optimizer
sees an unconstrained raw value z; the problem reads the parameter through a transform
that keeps it inside its bounds whatever the optimizer does:

    lower and upper:  theta = lo + (hi - lo) sigmoid(z)        (bounded)
    lower only:       theta = lo + exp(z)                      (e.g. positive: lo = 0)
    upper only:       theta = hi - exp(-z)
    neither:          theta = z

The raw value starts at the inverse transform of the guess, so the guess must lie
strictly inside the bounds. The Gauss-Newton Jacobian's columns are d r / d z; the
standard error of theta follows by the delta method, se(theta) = |d theta / d z| se(z)
(:func:`pinn_sine.inverse.estimate`).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
from torch import Tensor

#: the transforms of :class:`Unknown`, by which bounds are given
TRANSFORMS = ("sigmoid", "exp", "neg-exp", "identity")


def _real(name: str, what: str, value) -> float:
    if isinstance(value, (bool, str)) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"unknown {name!r}: {what} must be a finite number, got {value!r}.")
    return float(value)


@dataclass(frozen=True)
class Unknown:
    """The declaration of one unknown parameter: its initial guess and bounds.

    Attributes:
        name: the problem parameter (one of the problem's ``unknown_parameters``).
        guess: the initial value, a number (a scalar unknown) or a sequence of numbers
            (a vector, e.g. the coefficients of a velocity expansion), strictly inside
            the bounds.
        lower, upper: the bounds (None: unbounded on that side); they hold at every
            step by construction (module docstring).
    """

    name: str
    guess: float | tuple[float, ...]
    lower: float | None = None
    upper: float | None = None

    def __post_init__(self):
        name = self.name
        if isinstance(self.guess, (list, tuple)) or (isinstance(self.guess, Tensor) and self.guess.ndim > 0):
            values = [float(v) for v in (self.guess.tolist() if isinstance(self.guess, Tensor) else self.guess)]
            if not values:
                raise ValueError(f"unknown {name!r}: the guess is an empty sequence; give a number or a non-empty "
                                 "sequence of numbers.")
            guess = tuple(_real(name, "every entry of the guess", v) for v in values)
        else:
            if isinstance(self.guess, Tensor):
                guess = _real(name, "the guess", float(self.guess))
            else:
                guess = _real(name, "the guess", self.guess)
        object.__setattr__(self, "guess", guess)
        lo = None if self.lower is None else _real(name, "the lower bound", self.lower)
        hi = None if self.upper is None else _real(name, "the upper bound", self.upper)
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "upper", hi)
        if lo is not None and hi is not None and not lo < hi:
            raise ValueError(f"unknown {name!r}: the bounds must satisfy lower < upper, got [{lo:g}, {hi:g}].")
        for g in self.guesses:
            if (lo is not None and not g > lo) or (hi is not None and not g < hi):
                raise ValueError(f"unknown {name!r}: the guess {g:g} is not strictly inside the bounds "
                                 f"[{'-inf' if lo is None else f'{lo:g}'}, {'inf' if hi is None else f'{hi:g}'}]; "
                                 "move the guess inside or widen the bounds.")

    # ----- the transform ----------------------------------------------------------------
    @property
    def guesses(self) -> tuple[float, ...]:
        return self.guess if isinstance(self.guess, tuple) else (self.guess,)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.guess),) if isinstance(self.guess, tuple) else ()

    @property
    def transform(self) -> str:
        """One of :data:`TRANSFORMS`, from which bounds are given."""
        if self.lower is not None and self.upper is not None:
            return "sigmoid"
        if self.lower is not None:
            return "exp"
        if self.upper is not None:
            return "neg-exp"
        return "identity"

    def value(self, z: Tensor) -> Tensor:
        """theta(z), the parameter from the raw value."""
        lo, hi = self.lower, self.upper
        kind = self.transform
        if kind == "sigmoid":
            return lo + (hi - lo) * torch.sigmoid(z)
        if kind == "exp":
            return lo + torch.exp(z)
        if kind == "neg-exp":
            return hi - torch.exp(-z)
        return z

    def derivative(self, z: Tensor) -> Tensor:
        """d theta / d z."""
        kind = self.transform
        if kind == "sigmoid":
            s = torch.sigmoid(z)
            return (self.upper - self.lower) * s * (1 - s)
        if kind == "exp":
            return torch.exp(z)
        if kind == "neg-exp":
            return torch.exp(-z)
        return torch.ones_like(z)

    def raw(self, theta) -> Tensor:
        """z(theta), the inverse transform, float64."""
        t = torch.as_tensor(theta, dtype=torch.float64)
        kind = self.transform
        if kind == "sigmoid":
            p = (t - self.lower) / (self.upper - self.lower)
            return torch.log(p) - torch.log1p(-p)
        if kind == "exp":
            return torch.log(t - self.lower)
        if kind == "neg-exp":
            return -torch.log(self.upper - t)
        return t.clone()

    def initial(self) -> Tensor:
        """The raw parameter at the guess: a float64 leaf tensor with requires_grad."""
        return self.raw(list(self.guess) if self.shape else self.guess).reshape(self.shape).requires_grad_(True)

    def describe(self) -> dict:
        """JSON: guess, bounds, transform."""
        guess = list(self.guess) if self.shape else self.guess
        return {"guess": guess, "lower": self.lower, "upper": self.upper, "transform": self.transform}


def parse_unknown(spec: str) -> Unknown:
    """``NAME=GUESS[:LOWER:UPPER]`` (the command line's ``--unknown``), e.g. ``c=1.0:0.5:4.0``;
    an empty bound is none (``c=1.0::4.0``). A vector unknown (a velocity expansion of M^2
    coefficients) takes ``GUESS*N``, N entries equal to GUESS: ``velocity=0*25:-1:1``."""
    if not isinstance(spec, str) or "=" not in spec:
        raise ValueError(f"--unknown takes NAME=GUESS[:LOWER:UPPER], e.g. c=1.0:0.5:4.0; got {spec!r}.")
    name, _, rest = spec.partition("=")
    parts = rest.split(":")
    if not name or len(parts) not in (1, 3):
        raise ValueError(f"--unknown takes NAME=GUESS[:LOWER:UPPER], e.g. c=1.0:0.5:4.0; got {spec!r}.")

    def number(text: str, what: str):
        if text == "" and what != "guess":
            return None
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"--unknown {spec!r}: the {what} {text!r} is not a number.") from None

    value, star, count = parts[0].partition("*")
    guess = number(value, "guess")
    if star:
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"--unknown {spec!r}: GUESS*N needs a count N >= 1 (e.g. velocity=0*25), got {count!r}.")
        guess = (guess,) * int(count)
    lower, upper = (number(parts[1], "lower bound"), number(parts[2], "upper bound")) if len(parts) == 3 \
        else (None, None)
    return Unknown(name.strip(), guess, lower, upper)
