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
        laplacians: groups of input names whose Laplacian sum_a d2u/da^2 is needed, and
            only as the sum, e.g. (("x", "y"),). The forward engine carries each group
            as one stream (the forward Laplacian of Li et al. 2023) instead of one per
            name: for a 2-D Poisson residual 4 streams per layer instead of 5.
    """

    first: tuple[str, ...] = ()
    second: tuple[tuple[str, str], ...] = ()
    laplacians: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self):
        for group in self.laplacians:
            if isinstance(group, str) or not group or len(set(group)) != len(group):
                raise ValueError(f"each Laplacian group must be a non-empty tuple of distinct input names, "
                                 f"got {group!r}; e.g. DerivativeSpec(laplacians=(('x', 'y'),)).")

    def check_names(self, names) -> None:
        """Raise ValueError when the spec names a derivative along a name not in ``names``
        (the inputs of the points it is evaluated at)."""
        used = set(self.directions())
        for a, b in self.second:
            used |= {a, b}
        unknown = sorted(used - set(names))
        if unknown:
            raise ValueError(f"DerivativeSpec asks for derivatives along {unknown}, which are not inputs; the inputs "
                             f"are {tuple(names)}. Name derivatives by input name, e.g. first=({tuple(names)[0]!r},).")

    @staticmethod
    def laplacian(names: tuple[str, ...], *, first: tuple[str, ...] = ()) -> "DerivativeSpec":
        """The Laplacian over ``names`` as one stream (plus any ``first``). Ask for
        ``second=((n, n), ...)`` instead when the diagonal terms are needed one by one."""
        return DerivativeSpec(first=first, laplacians=(tuple(names),))

    @staticmethod
    def hessian(names: tuple[str, ...]) -> "DerivativeSpec":
        """Every pair over ``names`` (the full symmetric Hessian)."""
        return DerivativeSpec(second=tuple((a, b) for i, a in enumerate(names) for b in names[i:]))

    def directions(self) -> tuple[str, ...]:
        """All names needing a first derivative, in first-seen order."""
        out: list[str] = []
        named = self.first + tuple(n for pair in self.second for n in pair)
        for n in named + tuple(n for group in self.laplacians for n in group):
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

    def laplacian_groups(self) -> tuple[tuple[str, ...], ...]:
        """The distinct Laplacian groups (the same names in another order are the same group)."""
        out: list[tuple[str, ...]] = []
        for group in self.laplacians:
            if sorted(group) not in [sorted(g) for g in out]:
                out.append(tuple(group))
        return tuple(out)

    @property
    def empty(self) -> bool:
        return not self.first and not self.second and not self.laplacians


class Jet:
    """Value (n, out) and requested derivatives of a network at n points.

    ``d(name)`` is du/d name (n, out); ``d2(a, b)`` is d2u/(d a d b) (n, out);
    ``laplacian(names)`` is the Laplacian over ``names``: the stream computed for that
    group when the spec asked for it, else the sum of the requested diagonal terms;
    ``grad(names)`` stacks first derivatives to (n, out, len(names)).
    """

    def __init__(self, u: Tensor, first: dict[str, Tensor], second: dict[tuple[str, str], Tensor],
                 laplacians: dict[tuple[str, ...], Tensor] | None = None):
        self.u = u
        self._first = first
        self._second = {tuple(sorted(k)): v for k, v in second.items()}
        self._laplacians = {tuple(sorted(k)): v for k, v in (laplacians or {}).items()}

    def d(self, name: str) -> Tensor:
        try:
            return self._first[name]
        except KeyError:
            raise KeyError(f"du/d{name} was not requested; requested first derivatives: "
                           f"{sorted(self._first)}. Add it to the problem's DerivativeSpec.") from None

    def d2(self, a: str, b: str) -> Tensor:
        key = tuple(sorted((a, b)))
        if key in self._second:
            return self._second[key]
        if a == b and (a,) in self._laplacians:
            return self._laplacians[(a,)]
        raise KeyError(f"d2u/d{a}d{b} was not requested; requested pairs: {sorted(self._second)}"
                       + (f", Laplacians (sums only): {sorted(self._laplacians)}" if self._laplacians else "")
                       + ". Add it to the problem's DerivativeSpec (second=...).")

    def laplacian(self, names: tuple[str, ...]) -> Tensor:
        key = tuple(sorted(names))
        if key in self._laplacians:
            return self._laplacians[key]
        try:
            out = self.d2(names[0], names[0])
            for n in names[1:]:
                out = out + self.d2(n, n)
        except KeyError:
            raise KeyError(f"the Laplacian over {tuple(names)} was not requested; requested Laplacians: "
                           f"{sorted(self._laplacians)}, pairs: {sorted(self._second)}. Add "
                           f"laplacians=({tuple(names)!r},) to the problem's DerivativeSpec.") from None
        return out

    def grad(self, names: tuple[str, ...]):
        import torch
        return torch.stack([self.d(n) for n in names], dim=-1)

    @staticmethod
    def combine(jets: "list[Jet]", fn) -> "Jet":
        """The Jet whose every stream (value, first and second derivatives, Laplacians) is
        ``fn([that stream of each of jets])``; the jets hold the same streams (e.g. the
        pieces of a network: their rows scattered back, or an ensemble: their mean)."""
        j0 = jets[0]
        return Jet(fn([j.u for j in jets]),
                   {k: fn([j._first[k] for j in jets]) for k in j0._first},
                   {k: fn([j._second[k] for j in jets]) for k in j0._second},
                   {k: fn([j._laplacians[k] for j in jets]) for k in j0._laplacians})
