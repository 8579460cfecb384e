"""The Jet: a network's value and the derivatives a residual asked for, together."""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass(frozen=True)
class DerivativeSpec:
    """Which input derivatives a set of residuals needs.

    Attributes:
        first: input names whose first derivatives are needed, e.g. ("t",).
        second: pairs of input names, e.g. (("t", "t"), ("x", "x")); (a, b) and (b, a)
            are the same pair. The first derivatives of every name in a pair are
            computed too (the chain rule needs them).
    """

    first: tuple[str, ...] = ()
    second: tuple[tuple[str, str], ...] = ()

    @staticmethod
    def laplacian(names: tuple[str, ...], *, first: tuple[str, ...] = ()) -> "DerivativeSpec":
        """The diagonal second derivatives over ``names`` (plus any ``first``)."""
        return DerivativeSpec(first=first, second=tuple((n, n) for n in names))

    @staticmethod
    def hessian(names: tuple[str, ...]) -> "DerivativeSpec":
        """Every pair over ``names`` (the full symmetric Hessian)."""
        return DerivativeSpec(second=tuple((a, b) for i, a in enumerate(names) for b in names[i:]))

    def directions(self) -> tuple[str, ...]:
        """All names needing a first derivative, in first-seen order."""
        out: list[str] = []
        for n in self.first + tuple(n for pair in self.second for n in pair):
            if n not in out:
                out.append(n)
        return tuple(out)

    def pairs(self) -> tuple[tuple[str, str], ...]:
        out: list[tuple[str, str]] = []
        for a, b in self.second:
            key = tuple(sorted((a, b)))
            if key not in [tuple(sorted(p)) for p in out]:
                out.append((a, b))
        return tuple(out)

    @property
    def empty(self) -> bool:
        return not self.first and not self.second


class Jet:
    """Value (n, out) and requested derivatives of a network at n points.

    ``d(name)`` is du/d name (n, out); ``d2(a, b)`` is d2u/(d a d b) (n, out);
    ``laplacian(names)`` sums the diagonal terms; ``grad(names)`` stacks first
    derivatives to (n, out, len(names)).
    """

    def __init__(self, u: Tensor, first: dict[str, Tensor], second: dict[tuple[str, str], Tensor]):
        self.u = u
        self._first = first
        self._second = {tuple(sorted(k)): v for k, v in second.items()}

    def d(self, name: str) -> Tensor:
        try:
            return self._first[name]
        except KeyError:
            raise KeyError(f"du/d{name} was not requested; requested first derivatives: "
                           f"{sorted(self._first)}. Add it to the problem's DerivativeSpec.") from None

    def d2(self, a: str, b: str) -> Tensor:
        try:
            return self._second[tuple(sorted((a, b)))]
        except KeyError:
            raise KeyError(f"d2u/d{a}d{b} was not requested; requested pairs: {sorted(self._second)}. "
                           "Add it to the problem's DerivativeSpec.") from None

    def laplacian(self, names: tuple[str, ...]) -> Tensor:
        out = self.d2(names[0], names[0])
        for n in names[1:]:
            out = out + self.d2(n, n)
        return out

    def grad(self, names: tuple[str, ...]):
        import torch
        return torch.stack([self.d(n) for n in names], dim=-1)
