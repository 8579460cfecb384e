"""Hard constraints: boundary and initial data built into the network by an output transform.

A :class:`HardConstraint` turns a network N into the field

    u(x) = g(x) + d(x) N(x)

with d = 0 where data are prescribed and g equal to the data there, so the data hold
exactly whatever N is, and the loss terms that imposed them are gone:

* Dirichlet data on a rectangle: d = prod_a 4 (x_a - lo_a)(hi_a - x_a) / (hi_a - lo_a)^2
  (1 at the centre, 0 on the constrained sides), g the transfinite (Coons)
  interpolation of the boundary values (:class:`TransfiniteField`), which takes the
  boundary values only, never the solution inside;
* an initial value: u = u0(x) + (t / T) N, so u(0, x) = u0;
* initial value and zero velocity (the wave equation from rest): u = u0(x) + phi(t) N with
  phi(0) = phi'(0) = 0, so u(0) = u0 and u_t(0) = phi'(0) N + phi(0) N_t = 0: (t/T)^2
  (:class:`PowerFactor`) or the ramp 1 - exp(-(t/tau)^2) (:class:`RampFactor`), which the
  wave problems use: it levels off after t ~ tau, the solution's own time scale, so N
  stays of the size of u - u0 instead of (u - u0) T^2 / t^2;
* walls and initial data together (Wave1D's fixed ends): u = u0(x) + b(x) phi(t) N with b
  the bubble over the walls; exact for all three conditions when u0 vanishes on the
  walls (u = u0 = 0 there; at t = 0 as above).
* a time window that starts in motion at t_k (:mod:`pinn_sine.problems.windows`):
  u = u_k(x) + (t - t_k) v_k(x) + b(x) phi(t - t_k) N (:class:`ShiftedFactor`), so
  u(t_k) = u_k and u_t(t_k) = v_k.

g and d are fields that know their value, gradient and second derivatives in closed
form (:class:`SeparableField`: sums of products of one-dimensional factors), so the jet
engine combines them with the network's jet by the product rule
(:meth:`HardConstraint.combine`):

    u_a    = g_a + d_a N + d N_a
    u_ab   = g_ab + d_ab N + d_a N_b + d_b N_a + d N_ab
    Lap u  = Lap g + (Lap d) N + 2 grad d . grad N + d Lap N      (over a Laplacian group)

and every residual still gets its derivatives from one forward pass.
:class:`ConstrainedNet` holds the network (``.inner``) and the transform; its forward is
the constrained field, which the autograd engine, :func:`~pinn_sine.evaluate` and the
saved predictions see. A problem builds it with ``problem.constrain(net)``.

The field protocol (:class:`Field`): ``value(x)`` with torch operations (differentiable,
for the forward pass), ``evaluate(x, dirs, pairs)`` the value, the first derivatives along
the input columns ``dirs`` and the second derivatives of the column pairs ``pairs``, each
(n, 1), and ``describe()``, a text that identifies the field.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from .derivatives.autograd import grad_or_zero
from .derivatives.jet import DerivativeSpec, Jet

Derivatives = tuple[Tensor, dict[int, Tensor], dict[tuple[int, int], Tensor]]


# ----- one-dimensional factors --------------------------------------------------------------
class Factor:
    """A function phi(s) of one input coordinate with phi' and phi'' in closed form."""

    def value(self, s: Tensor) -> Tensor:
        raise NotImplementedError

    def derivatives(self, s: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(phi, phi', phi'') at s, each shaped like s."""
        raise NotImplementedError

    def describe(self, name: str) -> str:
        """The factor's identity as text (stored in run configs: keep it stable)."""
        raise NotImplementedError

    def formula(self, name: str) -> str:
        """The factor as a person reads it (reprs); the description by default."""
        return self.describe(name)


class SineFactor(Factor):
    """phi(s) = sin(k s + phase)."""

    def __init__(self, k: float, phase: float = 0.0):
        self.k, self.phase = float(k), float(phase)

    def value(self, s):
        return torch.sin(self.k * s + self.phase)

    def derivatives(self, s):
        arg = self.k * s + self.phase
        sin, cos = torch.sin(arg), torch.cos(arg)
        return sin, self.k * cos, -self.k ** 2 * sin

    def describe(self, name):
        return f"sin({self.k!r} {name} + {self.phase!r})" if self.phase else f"sin({self.k!r} {name})"


class GaussianFactor(Factor):
    """phi(s) = exp(-(s - c)^2 / (2 w^2)); phi' = -(s - c) / w^2 phi,
    phi'' = ((s - c)^2 / w^4 - 1 / w^2) phi."""

    def __init__(self, center: float, width: float):
        self.center, self.width = float(center), float(width)

    def value(self, s):
        return torch.exp(-(s - self.center) ** 2 / (2 * self.width ** 2))

    def derivatives(self, s):
        w2 = self.width ** 2
        r = s - self.center
        e = torch.exp(-r * r / (2 * w2))
        return e, -r / w2 * e, (r * r / w2 - 1.0) / w2 * e

    def describe(self, name):
        return f"exp(-({name} - {self.center!r})^2 / (2 * {self.width!r}^2))"


class BubbleFactor(Factor):
    """phi(s) = 4 (s - lo)(hi - s) / (hi - lo)^2: 0 at lo and hi, 1 in the middle."""

    def __init__(self, lo: float, hi: float):
        self.lo, self.hi = float(lo), float(hi)
        if not self.lo < self.hi:
            raise ValueError(f"BubbleFactor needs lo < hi, got ({lo}, {hi}).")
        self.scale = 4.0 / (self.hi - self.lo) ** 2

    def value(self, s):
        return self.scale * (s - self.lo) * (self.hi - s)

    def derivatives(self, s):
        return (self.scale * (s - self.lo) * (self.hi - s), self.scale * (self.lo + self.hi - 2 * s),
                torch.full_like(s, -2 * self.scale))

    def describe(self, name):
        return f"4 ({name} - {self.lo!r}) ({self.hi!r} - {name}) / {self.hi - self.lo!r}^2"

    def formula(self, name):
        left = name if self.lo == 0 else f"({name} + {-self.lo!r})" if self.lo < 0 else f"({name} - {self.lo!r})"
        return f"4 {left} ({self.hi!r} - {name}) / {self.hi - self.lo!r}^2"


class PowerFactor(Factor):
    """phi(s) = (s / scale)^p for an integer p >= 1 (p = 1: an initial value, p = 2:
    an initial value and a zero initial rate)."""

    def __init__(self, p: int, scale: float = 1.0):
        if isinstance(p, bool) or not isinstance(p, int) or p < 1:
            raise ValueError(f"PowerFactor needs an integer p >= 1, got p={p!r}.")
        self.p, self.scale = p, float(scale)

    def value(self, s):
        return (s / self.scale) ** self.p

    def derivatives(self, s):
        p, r = self.p, s / self.scale
        d1 = p * r ** (p - 1) / self.scale
        d2 = p * (p - 1) * r ** (p - 2) / self.scale ** 2 if p >= 2 else torch.zeros_like(s)
        return r ** p, d1, d2

    def describe(self, name):
        return f"({name} / {self.scale!r})^{self.p}"


class RampFactor(Factor):
    """phi(s) = 1 - exp(-(s / tau)^2): 0 with a zero slope at s = 0 (an initial value and a
    zero initial rate, like (s / T)^2), but close to 1 beyond s ~ 2 tau instead of growing.

    phi' = 2 s / tau^2 e and phi'' = 2 (1 - 2 s^2 / tau^2) / tau^2 e with e = exp(-(s/tau)^2).
    With tau the solution's own time scale (about 1 / its angular frequencies), the
    network N of u = u0 + phi N stays O(|u - u0|): near s = 0, u - u0 ~ u_tt(0) s^2 / 2
    and N ~ u_tt(0) tau^2 / 2, where (s / T)^2 asks N for u_tt(0) T^2 / 2, which for a
    mode of frequency omega is (omega T)^2 / 2 times larger (about 300 for Wave1D's
    8 pi mode)."""

    def __init__(self, tau: float):
        self.tau = float(tau)
        if not (self.tau > 0 and self.tau < float("inf")):
            raise ValueError(f"RampFactor needs a finite tau > 0, got tau={tau!r}.")

    def value(self, s):
        return -torch.expm1(-(s / self.tau) ** 2)

    def derivatives(self, s):
        t2 = self.tau ** 2
        e = torch.exp(-s * s / t2)
        return -torch.expm1(-s * s / t2), 2 * s / t2 * e, 2 * (1 - 2 * s * s / t2) / t2 * e

    def describe(self, name):
        return f"1 - exp(-({name} / {self.tau!r})^2)"


class ShiftedFactor(Factor):
    """phi(s - origin) for a factor phi: the time factor of a window that starts at
    s = origin (``ShiftedFactor(RampFactor(tau), t_k)`` vanishes to first order at t_k,
    ``ShiftedFactor(PowerFactor(1), t_k)`` is t - t_k). Derivatives are phi's at s - origin."""

    def __init__(self, factor: Factor, origin: float):
        if not isinstance(factor, Factor):
            raise TypeError(f"ShiftedFactor shifts a Factor, got {factor!r}.")
        self.factor, self.origin = factor, float(origin)
        if not abs(self.origin) < float("inf"):
            raise ValueError(f"ShiftedFactor needs a finite origin, got origin={origin!r}.")

    def value(self, s):
        return self.factor.value(s - self.origin)

    def derivatives(self, s):
        return self.factor.derivatives(s - self.origin)

    def describe(self, name):
        return self.factor.describe(f"({name} - {self.origin!r})")

    def formula(self, name):
        return self.factor.formula(f"({name} - {self.origin!r})")


# ----- fields ---------------------------------------------------------------------------------
class Field:
    """A scalar function of the inputs, f(x) for x (n, d) -> (n, 1), with its derivatives."""

    def value(self, x: Tensor) -> Tensor:
        """f(x) (n, 1) with differentiable torch operations."""
        raise NotImplementedError

    def evaluate(self, x: Tensor, dirs: Sequence[int], pairs: Sequence[tuple[int, int]]) -> Derivatives:
        """(f, {a: df/dx_a for a in dirs}, {(a, b): d2f/dx_a dx_b for (a, b) in pairs}) at x,
        each (n, 1); a, b are input columns."""
        raise NotImplementedError

    def describe(self) -> str:
        """The field's identity as text (stored in run configs: keep it stable)."""
        raise NotImplementedError

    def formula(self) -> str:
        """The field as a person reads it (reprs); the description by default."""
        return self.describe()


def _grouped(text: str) -> str:
    """``text`` in parentheses when it has an operator outside parentheses (``1 - exp(..)``),
    as it is when it is one function call or power (``sin(3 x)``)."""
    depth = 0
    for k, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and ch in "+-*/" and 0 < k < len(text) - 1 and text[k - 1] == " " and text[k + 1] == " ":
            return f"({text})"
    return text


class SeparableField(Field):
    """f(x) = sum_m c_m prod_{(a, phi) in term m} phi(x_a): a sum of products of
    one-dimensional factors, each of its own input column. Its derivatives follow from
    the factors' (product rule):

        df/dx_a        = sum_m c_m phi_a'(x_a) prod_{b != a} phi_b(x_b)
        d2f/dx_a^2     = sum_m c_m phi_a''(x_a) prod_{b != a} phi_b(x_b)
        d2f/dx_a dx_b  = sum_m c_m phi_a'(x_a) phi_b'(x_b) prod_{e != a, b} phi_e(x_e)

    (zero along columns a term has no factor of).

    Args:
        terms: ((c_m, ((column, Factor), ...)), ...); an empty factor tuple is the constant c_m.
        names: the input names, for :meth:`describe`.
    """

    def __init__(self, terms: Sequence[tuple[float, Sequence[tuple[int, Factor]]]], names: Sequence[str]):
        self.names = tuple(names)
        out = []
        for coef, factors in terms:
            factors = tuple((int(a), f) for a, f in factors)
            columns = [a for a, _ in factors]
            if len(set(columns)) != len(columns) or any(not 0 <= a < len(self.names) for a in columns):
                raise ValueError(f"each term needs distinct input columns in [0, {len(self.names)}), got "
                                 f"{columns}; merge the factors of one column into one Factor.")
            out.append((float(coef), factors))
        if not out:
            raise ValueError("a SeparableField needs at least one term; give ((c, ()),) for a constant c.")
        self.terms = tuple(out)

    def value(self, x):
        total = x.new_zeros((x.shape[0], 1))
        for coef, factors in self.terms:
            term = x.new_full((x.shape[0], 1), coef)
            for a, f in factors:
                term = term * f.value(x[:, a:a + 1])
            total = total + term
        return total

    def evaluate(self, x, dirs, pairs):
        zero = x.new_zeros((x.shape[0], 1))
        v, d1, d2 = zero, {a: zero for a in dirs}, {p: zero for p in pairs}
        for coef, factors in self.terms:
            phi = {a: f.derivatives(x[:, a:a + 1]) for a, f in factors}

            def rest(*skip):
                out = x.new_full((x.shape[0], 1), coef)
                for b, (f0, _, _) in phi.items():
                    if b not in skip:
                        out = out * f0
                return out

            v = v + rest()
            for a in dirs:
                if a in phi:
                    d1[a] = d1[a] + phi[a][1] * rest(a)
            for a, b in pairs:
                if a == b and a in phi:
                    d2[(a, b)] = d2[(a, b)] + phi[a][2] * rest(a)
                elif a != b and a in phi and b in phi:
                    d2[(a, b)] = d2[(a, b)] + phi[a][1] * phi[b][1] * rest(a, b)
        return v, d1, d2

    def describe(self):
        parts = []
        for coef, factors in self.terms:
            parts.append(" * ".join([repr(coef)] + [f.describe(self.names[a]) for a, f in factors]))
        return " + ".join(parts)

    def formula(self):
        """``c * f(x) * g(y) + ...`` with every factor that is a sum or quotient in
        parentheses and unit coefficients left out."""
        parts = []
        for coef, factors in self.terms:
            texts = [_grouped(f.formula(self.names[a])) for a, f in factors]
            parts.append(" * ".join(texts if coef == 1.0 and texts else [repr(coef)] + texts))
        return " + ".join(parts)


class CallableField(Field):
    """A user's torch callable f(x) (n, d) -> (n, 1), its derivatives by autograd.

    The derivatives are data (the field has no trainable parameters): they are taken on
    a detached copy of x, as :func:`~pinn_sine.problems.base.exact_laplacian` takes a
    source term, so no graph to the weights is built. (Under ``train(compile=True)`` this
    double backward is a graph break; the library's own fields are closed-form.)
    """

    def __init__(self, fn: Callable[[Tensor], Tensor], description: str | None):
        self.fn = fn
        self.description = description

    def value(self, x):
        return self.fn(x).reshape(-1, 1)

    def evaluate(self, x, dirs, pairs):
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            v = self.fn(x).reshape(-1, 1)
            if not dirs and not pairs:
                return v.detach(), {}, {}
            g = grad_or_zero(v, x, create_graph=bool(pairs))  # a constant or linear u has no graph
            rows = {}
            for a, b in pairs:
                if a not in rows:
                    rows[a] = grad_or_zero(g[:, a], x)
            d1 = {a: g[:, a:a + 1].detach() for a in dirs}
            d2 = {(a, b): rows[a][:, b:b + 1].detach() for a, b in pairs}
        return v.detach(), d1, d2

    def describe(self):
        return f"callable {self.description}"


class TransfiniteField(Field):
    """The transfinite (Coons) interpolation of a field's values on the boundary of the
    rectangle [x0, x1] x [y0, y1] of the inputs (x, y): with s = (x - x0)/(x1 - x0) and
    r = (y - y0)/(y1 - y0),

        g = (1 - s) u(x0, y) + s u(x1, y) + (1 - r) u(x, y0) + r u(x, y1)
            - [(1 - s)(1 - r) u(x0, y0) + s (1 - r) u(x1, y0) + (1 - s) r u(x0, y1) + s r u(x1, y1)],

    equal to u on all four sides and built from the boundary values alone (an extension
    of the Dirichlet data into the domain that knows nothing of the solution inside).
    Its derivatives come from those of u along the sides:

        g_x  = (u(x1, y) - u(x0, y)) / Lx + (1 - r) u_x(x, y0) + r u_x(x, y1) - C_x
        g_y  = (1 - s) u_y(x0, y) + s u_y(x1, y) + (u(x, y1) - u(x, y0)) / Ly - C_y
        g_xx = (1 - r) u_xx(x, y0) + r u_xx(x, y1),   g_yy = (1 - s) u_yy(x0, y) + s u_yy(x1, y)
        g_xy = (u_y(x1, y) - u_y(x0, y)) / Lx + (u_x(x, y1) - u_x(x, y0)) / Ly - C_xy

    with C the bracket (bilinear in s, r). Inputs x (n, 2).
    """

    def __init__(self, u: Field, bounds: Sequence[tuple[float, float]]):
        if len(bounds) != 2:
            raise ValueError(f"TransfiniteField interpolates on a rectangle: give two (lo, hi) bounds, "
                             f"got {len(bounds)}.")
        self.u = u
        self.bounds = tuple((float(lo), float(hi)) for lo, hi in bounds)

    def _at(self, x: Tensor, column: int, value: float) -> Tensor:
        out = x.clone()
        out[:, column] = value
        return out

    def _corners(self, x: Tensor) -> Tensor:
        (x0, x1), (y0, y1) = self.bounds
        pts = x.new_tensor([[x0, y0], [x1, y0], [x0, y1], [x1, y1]])
        return self.u.value(pts).reshape(4).detach()

    def value(self, x):
        (x0, x1), (y0, y1) = self.bounds
        s = (x[:, 0:1] - x0) / (x1 - x0)
        r = (x[:, 1:2] - y0) / (y1 - y0)
        c00, c10, c01, c11 = self._corners(x)
        u = self.u.value
        return ((1 - s) * u(self._at(x, 0, x0)) + s * u(self._at(x, 0, x1))
                + (1 - r) * u(self._at(x, 1, y0)) + r * u(self._at(x, 1, y1))
                - ((1 - s) * (1 - r) * c00 + s * (1 - r) * c10 + (1 - s) * r * c01 + s * r * c11))

    def evaluate(self, x, dirs, pairs):
        (x0, x1), (y0, y1) = self.bounds
        lx, ly = x1 - x0, y1 - y0
        s = (x[:, 0:1] - x0) / lx
        r = (x[:, 1:2] - y0) / ly
        c00, c10, c01, c11 = self._corners(x)
        wanted = set(dirs) | {a for p in pairs for a in p}
        # The sides x = x0, x1 vary in y (column 1), the sides y = y0, y1 in x (column 0).
        side_pairs = {1: ((1, 1),) if (1, 1) in pairs else (), 0: ((0, 0),) if (0, 0) in pairs else ()}
        side_dirs = {1: (1,) if 1 in wanted else (), 0: (0,) if 0 in wanted else ()}
        L0 = self.u.evaluate(self._at(x, 0, x0), side_dirs[1], side_pairs[1])
        L1 = self.u.evaluate(self._at(x, 0, x1), side_dirs[1], side_pairs[1])
        B0 = self.u.evaluate(self._at(x, 1, y0), side_dirs[0], side_pairs[0])
        B1 = self.u.evaluate(self._at(x, 1, y1), side_dirs[0], side_pairs[0])
        corner = (1 - s) * (1 - r) * c00 + s * (1 - r) * c10 + (1 - s) * r * c01 + s * r * c11
        v = (1 - s) * L0[0] + s * L1[0] + (1 - r) * B0[0] + r * B1[0] - corner
        d1 = {}
        for a in dirs:
            if a == 0:
                cx = ((1 - r) * (c10 - c00) + r * (c11 - c01)) / lx
                d1[a] = (L1[0] - L0[0]) / lx + (1 - r) * B0[1][0] + r * B1[1][0] - cx
            else:
                cy = ((1 - s) * (c01 - c00) + s * (c11 - c10)) / ly
                d1[a] = (1 - s) * L0[1][1] + s * L1[1][1] + (B1[0] - B0[0]) / ly - cy
        d2 = {}
        for a, b in pairs:
            if a == b == 0:
                d2[(a, b)] = (1 - r) * B0[2][(0, 0)] + r * B1[2][(0, 0)]
            elif a == b == 1:
                d2[(a, b)] = (1 - s) * L0[2][(1, 1)] + s * L1[2][(1, 1)]
            else:
                cxy = (c00 - c10 - c01 + c11) / (lx * ly)
                d2[(a, b)] = (L1[1][1] - L0[1][1]) / lx + (B1[1][0] - B0[1][0]) / ly - cxy
        return v, d1, d2

    def describe(self):
        return f"transfinite interpolation on {[list(b) for b in self.bounds]} of {self.u.describe()}"

    def formula(self):
        return f"transfinite interpolation on {[list(b) for b in self.bounds]} of {self.u.formula()}"


def box_bubble(bounds: Sequence[tuple[float, float]], columns: Sequence[int], names: Sequence[str], *,
               time: tuple[int, Factor] | None = None) -> SeparableField:
    """d(x) = prod_{a in columns} 4 (x_a - lo_a)(hi_a - x_a) / (hi_a - lo_a)^2, times a time
    factor phi(t) for ``time = (column, phi)`` (e.g. ``PowerFactor(2, T)`` or
    ``RampFactor(tau)``): the distance-like factor of a hard constraint, 0 on the
    constrained sides (and at t = 0), 1 at the centre."""
    factors = [(a, BubbleFactor(*bounds[a])) for a in columns]
    if time is not None:
        column, phi = time
        factors = [(column, phi)] + factors
    return SeparableField(((1.0, factors),), names)


# ----- the transform and the constrained network ---------------------------------------------
class HardConstraint:
    """The output transform u(x) = g(x) + d(x) N(x) (module docstring).

    Args:
        g: the data's extension (a :class:`Field`), or None for g = 0.
        d: the factor that vanishes where data are prescribed (a :class:`Field`).
        names: the problem's input names (the columns of x).
        conditions: what the transform imposes, e.g. ("boundary",) or ("initial",
            "initial_velocity"): the loss terms it replaces.
    """

    def __init__(self, g: Field | None, d: Field, names: Sequence[str], conditions: Sequence[str]):
        self.g, self.d = g, d
        self.names = tuple(names)
        self.conditions = tuple(conditions)

    def apply(self, x: Tensor, N: Tensor) -> Tensor:
        """u = g(x) + d(x) N for x (n, d), N (n, out) -> (n, out)."""
        u = self.d.value(x) * N
        return u if self.g is None else u + self.g.value(x)

    def combine(self, x: Tensor, spec: DerivativeSpec, jet: Jet) -> Jet:
        """The jet of u = g + d N from the network's jet ``jet`` of N at x, computed for
        the same ``spec`` (which holds N's first derivatives along every name of its pairs
        and Laplacian groups): value, first derivatives, pairs and Laplacian groups by
        the product rule of the module docstring."""
        col = {n: self.names.index(n) for n in spec.directions()}
        dirs = tuple(col.values())
        pairs, groups = spec.pairs(), spec.laplacian_groups()
        need = list(dict.fromkeys([(col[a], col[b]) for a, b in pairs]
                                  + [(col[a], col[a]) for group in groups for a in group]))
        d0, d1, d2 = self.d.evaluate(x, dirs, need)
        if self.g is None:
            zero = x.new_zeros((x.shape[0], 1))
            g0, g1, g2 = zero, {a: zero for a in dirs}, {p: zero for p in need}
        else:
            g0, g1, g2 = self.g.evaluate(x, dirs, need)
        N = jet.u
        first = {n: g1[col[n]] + d1[col[n]] * N + d0 * jet.d(n) for n in spec.directions()}
        second = {}
        for a, b in pairs:
            i, j = col[a], col[b]
            second[(a, b)] = (g2[(i, j)] + d2[(i, j)] * N + d1[i] * jet.d(b) + d1[j] * jet.d(a)
                              + d0 * jet.d2(a, b))
        laplacians = {}
        for group in groups:
            lap_g = sum(g2[(col[a], col[a])] for a in group)
            lap_d = sum(d2[(col[a], col[a])] for a in group)
            cross = sum(d1[col[a]] * jet.d(a) for a in group)
            laplacians[group] = lap_g + lap_d * N + 2 * cross + d0 * jet.laplacian(group)
        return Jet(g0 + d0 * N, first, second, laplacians)

    def describe(self) -> dict:
        """A JSON-serialisable description (equal descriptions: the same transform)."""
        return {"form": "g + d N", "g": None if self.g is None else self.g.describe(), "d": self.d.describe(),
                "inputs": list(self.names), "conditions": list(self.conditions)}

    def __eq__(self, other) -> bool:
        return isinstance(other, HardConstraint) and self.describe() == other.describe()

    def __hash__(self) -> int:
        return hash(repr(self.describe()))

    def __repr__(self) -> str:
        g = None if self.g is None else self.g.formula()
        return f"HardConstraint(u = g + d N; g = {g}; d = {self.d.formula()})"


class ConstrainedNet(nn.Module):
    """A network N behind a :class:`HardConstraint`: forward(x) = g(x) + d(x) N(x).

    ``inner`` is the network (an :class:`~pinn_sine.nets.MLP`), ``transform`` the
    constraint; ``in_dim``, ``out_dim`` are the inner network's and ``config`` is its
    config plus ``"constraint"`` (the transform's description). The state dict is the
    inner network's under the prefix ``inner.``; the transform has no parameters. The
    jet engine propagates through ``inner`` and combines with the transform exactly
    (:meth:`HardConstraint.combine`); the residual Jacobian is the inner network's
    (the transform acts point by point).
    """

    def __init__(self, inner: nn.Module, transform: HardConstraint):
        super().__init__()
        if isinstance(inner, ConstrainedNet):
            raise ValueError("the network is already constrained; constrain the inner network once "
                             "(problem.constrain(net) on an MLP).")
        if not isinstance(transform, HardConstraint):
            raise TypeError(f"transform must be a HardConstraint, got {transform!r}.")
        in_dim = getattr(inner, "in_dim", None)
        if in_dim != len(transform.names):
            raise ValueError(f"the network takes {in_dim} inputs, the constraint {len(transform.names)} "
                             f"{transform.names}; build MLP(problem.in_dim, problem.out_dim, ...).")
        self.inner = inner
        self.transform = transform
        self.in_dim, self.out_dim = inner.in_dim, inner.out_dim
        self.config = {**getattr(inner, "config", {}), "constraint": transform.describe()}

    def forward(self, x: Tensor) -> Tensor:
        """x (n, in_dim) -> u (n, out_dim), the constrained field."""
        return self.transform.apply(x, self.inner(x))

    def extra_repr(self) -> str:
        return repr(self.transform)


def unconstrained(net: nn.Module) -> nn.Module:
    """The network the weights live in: ``net.inner`` for a :class:`ConstrainedNet`, else ``net``."""
    return net.inner if isinstance(net, ConstrainedNet) else net


def sine_series(modes: Sequence[tuple[float, float]], column: int, names: Sequence[str]) -> SeparableField:
    """sum_k a_k sin(w_k x_column) for ``modes`` ((w_k, a_k), ...)."""
    return SeparableField(tuple((a, ((column, SineFactor(w)),)) for w, a in modes), names)


__all__ = ["HardConstraint", "ConstrainedNet", "Field", "SeparableField", "CallableField", "TransfiniteField",
           "Factor", "SineFactor", "GaussianFactor", "BubbleFactor", "PowerFactor", "RampFactor", "ShiftedFactor",
           "box_bubble",
           "sine_series", "unconstrained"]
