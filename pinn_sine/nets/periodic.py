"""Periodic input encoding: a network exactly periodic in chosen inputs (Dong & Ni 2021;
jaxpi's periodic embedding, Wang et al. 2023)."""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from .fourier import FourierFeatures

#: harmonics per periodic input by default. One, as jaxpi's Allen-Cahn configuration
#: uses: the first hidden layer's sin(omega (w_c cos k x + w_s sin k x + ...)) already
#: holds every harmonic of k x (Jacobi-Anger: Bessel coefficients J_n(omega |w|)), so the
#: network spans the periodic functions from one mode; more modes only hand it the higher
#: harmonics directly. On AllenCahn1D they did not pay (benchmarks/periodic_modes.py: a
#: hard-constrained SIREN PINN reached 3.4e-2 / 3.7e-2 with M = 1, 5.3e-2 / 9.5e-2 with M = 4).
DEFAULT_MODES = 1
#: sizes must stay below this (torch's int32 sizes)
_MAX_SIZE = 2**31


def check_periods(periods, where: str = "periods") -> dict[str, float]:
    """``periods`` (name -> period) as a dict of floats, or a ValueError naming the entry
    and the fix unless every name is a string and every period a finite number > 0."""
    if not isinstance(periods, Mapping):
        raise ValueError(f"{where} must be a mapping input name -> period, got {periods!r}; e.g. {{'x': 2.0}}.")
    if not periods:
        raise ValueError(f"{where} names no input; give at least one, e.g. {{'x': 2.0}} (no periodic input: "
                         "no PeriodicEncoding).")
    out = {}
    for name, period in periods.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where}: input names must be non-empty strings, got {name!r}; e.g. {{'x': 2.0}}.")
        if isinstance(period, (bool, str)) or not isinstance(period, numbers.Real):
            raise ValueError(f"{where}: the period of {name!r} must be a number, got {period!r}; e.g. "
                             f"{{{name!r}: 2.0}}.")
        if not (math.isfinite(period) and period > 0):
            raise ValueError(f"{where}: the period of {name!r} must be a finite number > 0, got {period!r}; give "
                             "the length after which the solution repeats, e.g. 2.0 for x in [-1, 1].")
        out[name] = float(period)
    return out


class PeriodicEncoding(nn.Module):
    """gamma(x) = [x_p, cos(k_{a,m} x_a), sin(k_{a,m} x_a)],  k_{a,m} = 2 pi m / L_a,

    for every periodic input a (period L_a) and m = 1..M, the other inputs x_p passed
    through unchanged. Every channel is L_a-periodic in x_a, so any network on gamma is:
    u(x + L_a e_a) = u(x) exactly, whatever its weights (Dong & Ni 2021, "A method for
    representing periodic functions and enforcing exactly periodic boundary conditions
    with deep neural networks"). Channels: the passed-through inputs in input order,
    then the cosines, then the sines, each ordered by input, then by m.

    Derivatives in closed form, z_c = k_c x_{a_c} (so dz_c/dx_b = k_c [b = a_c], d2z = 0):

        d cos z_c / dx_b = -sin z_c k_c [b = a_c],  d2 cos z_c / dx_b dx_e = -cos z_c k_c^2 [b = e = a_c]
        d sin z_c / dx_b =  cos z_c k_c [b = a_c],  d2 sin z_c / dx_b dx_e = -sin z_c k_c^2 [b = e = a_c]
        d x_p / dx_b = [b = p],                     d2 x_p = 0

    The periodic channels are :class:`FourierFeatures` with the fixed, sparse frequency
    matrix B[c, a_c] = m / L_a; unlike random Fourier features, a passed-through input
    has zero second derivatives, and the first derivatives of the periodic channels vary
    with x (they are not broadcast over the points).

    Composition: built with ``fourier`` (``MLP(fourier=..., periodic=...)``), gamma is
    followed by those random Fourier features, FourierFeatures(gamma(x)), as jaxpi stacks
    its periodic and Fourier embeddings; still exactly periodic. The jet is then the
    chain rule through both (the Fourier features' z = 2 pi gamma B^T has streams
    dz = 2 pi dgamma B^T and d2z = 2 pi d2gamma B^T).

    Args:
        periods: input name -> period L_a > 0, e.g. ``{"x": 2.0}`` (x in [-1, 1]).
        modes: M >= 1, harmonics per periodic input (default :data:`DEFAULT_MODES`).

    The encoding is bound to the problem's input names by :meth:`build` (``MLP`` does
    this with its ``input_names``, :func:`~pinn_sine.nets.build_net` with the problem's).
    """

    def __init__(self, periods: Mapping[str, float], modes: int = DEFAULT_MODES):
        super().__init__()
        self.periods = check_periods(periods)
        if isinstance(modes, bool) or not (isinstance(modes, numbers.Integral) and 1 <= modes < _MAX_SIZE):
            raise ValueError(f"modes must be an integer >= 1 (harmonics per periodic input), got modes={modes!r}; "
                             f"use e.g. modes={DEFAULT_MODES}.")
        self.modes = int(modes)
        self.input_names: tuple[str, ...] | None = None
        self.in_dim = 0
        self.fourier: FourierFeatures | None = None

    @property
    def bound(self) -> bool:
        return self.input_names is not None

    def channels(self, in_dim: int) -> int:
        """The number of channels of gamma for ``in_dim`` inputs (before any Fourier features)."""
        return in_dim + (2 * self.modes - 1) * len(self.periods)

    def build(self, input_names: Sequence[str], *, fourier: FourierFeatures | None = None,
              generator: torch.Generator | None = None) -> "PeriodicEncoding":
        """A copy bound to ``input_names`` (the problem's, in order), with ``fourier``'s
        frequency matrix drawn from ``generator`` for gamma's channels when given.

        Raises:
            ValueError: a periodic name that is not an input (the inputs listed),
                repeated input names, ``fourier`` without a generator.
        """
        names = tuple(input_names)
        if not names or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
            raise ValueError(f"input_names must be distinct strings, one per input, got {input_names!r}; pass the "
                             "problem's input_names, e.g. ('t', 'x').")
        unknown = [n for n in self.periods if n not in names]
        if unknown:
            raise ValueError(f"periodic input {unknown[0]!r} is not an input: the inputs are {list(names)}; name "
                             f"one of them, e.g. {{{names[-1]!r}: {self.periods[unknown[0]]:g}}}.")
        enc = PeriodicEncoding(self.periods, self.modes)
        enc.input_names, enc.in_dim = names, len(names)
        periodic = [a for a, n in enumerate(names) if n in self.periods]
        passed = [a for a, n in enumerate(names) if n not in self.periods]
        # channel c: input a_c, wavenumber k_c = 2 pi m / L_a
        cols = [a for a in periodic for _ in range(self.modes)]
        k = [2.0 * math.pi * m / self.periods[names[a]] for a in periodic for m in range(1, self.modes + 1)]
        P, d = len(cols), len(names)
        W = torch.zeros(P, d, dtype=torch.float64)
        W[torch.arange(P), torch.tensor(cols)] = torch.tensor(k, dtype=torch.float64)
        E = torch.zeros(d, len(passed), dtype=torch.float64)
        E[torch.tensor(passed, dtype=torch.long), torch.arange(len(passed))] = 1.0
        enc._cols, enc._passed = cols, passed
        # Buffers follow the network's dtype and device (.double(), .to(cuda)); they are
        # functions of periods and modes, which the network config records, so they stay
        # out of the state dict.
        enc.register_buffer("k", torch.tensor(k, dtype=torch.float64), persistent=False)
        enc.register_buffer("W", W, persistent=False)  # (P, d): dz_c/dx_b
        enc.register_buffer("E", E, persistent=False)  # (d, p): dx_p/dx_b
        if fourier is not None:
            if not isinstance(fourier, FourierFeatures):
                raise TypeError(f"fourier must be a FourierFeatures(n_features, scale) or None, got {fourier!r}.")
            if generator is None:
                raise ValueError("PeriodicEncoding.build(fourier=...) draws the Fourier frequencies: pass "
                                 "generator=torch.Generator().manual_seed(seed).")
            enc.fourier = fourier.build(enc.periodic_dim, generator)
        return enc

    def _check_bound(self) -> None:
        if not self.bound:
            raise RuntimeError("this PeriodicEncoding is not bound to input names; use "
                               "PeriodicEncoding(periods).build(problem.input_names) (MLP and build_net do this).")

    @property
    def periodic_dim(self) -> int:
        """The channels of gamma itself (the passed-through inputs and 2 M per periodic input)."""
        self._check_bound()
        return len(self._passed) + 2 * len(self._cols)

    @property
    def out_dim(self) -> int:
        return self.fourier.out_dim if self.fourier is not None else self.periodic_dim

    def forward(self, x: Tensor) -> Tensor:
        """x (n, d) -> gamma(x) (n, out_dim)."""
        self._check_bound()
        z = x[:, self._cols] * self.k.to(x.dtype)
        h = torch.cat([x[:, self._passed], torch.cos(z), torch.sin(z)], dim=-1)
        return h if self.fourier is None else self.fourier(h)

    def jet(self, x: Tensor, dirs: tuple[int, ...], pairs: tuple):
        """Value (n, C), first derivatives (len(dirs), n, C) and second-order streams
        (len(pairs), n, C) or None (no pair requested), C = :attr:`out_dim`.

        ``dirs`` are input indices; ``pairs`` are pairs (i, j) of slots in ``dirs`` or
        terms (tuples of pairs whose sum a stream is, e.g. a Laplacian; see
        :func:`pinn_sine.kernels.native.as_terms`), as :meth:`FourierFeatures.jet` takes them.
        """
        H = self.jet_stacked(x, dirs, pairs)
        m = len(dirs)
        return H[0], H[1:1 + m], (H[1 + m:] if H.shape[0] > 1 + m else None)

    def jet_stacked(self, x: Tensor, dirs: tuple[int, ...], terms) -> Tensor:
        """The jet stacked to (1 + len(dirs) + len(terms), n, C), the engine's layout
        (value, first derivatives, second-order streams; no second-order slab without terms)."""
        from ..kernels.native import as_terms, term_products

        self._check_bound()
        terms = as_terms(terms)
        m = len(dirs)
        H = self._gamma_stacked(x, list(dirs), terms)
        if self.fourier is None:
            return H
        # FourierFeatures on gamma: z = gamma W^T with W = 2 pi B, then the chain rule
        # of cos and sin (sigma'' P_q + sigma' d2z_q), P_q = sum_{(a,b) in T_q} dz_a dz_b.
        Wf = (2.0 * math.pi) * self.fourier.B.to(x.dtype)
        Z = H @ Wf.T
        z, dz, d2z = Z[0], Z[1:1 + m], Z[1 + m:]
        cz, sz = torch.cos(z), torch.sin(z)
        parts = [torch.cat([cz, sz], dim=-1).unsqueeze(0), torch.cat([-sz * dz, cz * dz], dim=-1)]
        if terms:
            P = torch.stack(term_products(dz, terms))
            parts.append(torch.cat([-sz * d2z - cz * P, cz * d2z - sz * P], dim=-1))
        return torch.cat(parts)

    def _gamma_stacked(self, x: Tensor, dirs: list[int], terms) -> Tensor:
        """gamma's own stacked jet (1 + m + p, n, periodic_dim)."""
        n, m = x.shape[0], len(dirs)
        k, W, E = self.k.to(x.dtype), self.W.to(x.dtype), self.E.to(x.dtype)
        z = x[:, self._cols] * k
        cz, sz = torch.cos(z), torch.sin(z)
        Wd = W.T[dirs].unsqueeze(1)  # (m, 1, P): dz_c/dx_b, constant in x
        dp = E[dirs].unsqueeze(1).expand(m, n, E.shape[1])  # (m, n, p): unit vectors
        value = torch.cat([x[:, self._passed], cz, sz], dim=-1).unsqueeze(0)
        first = torch.cat([dp, -sz * Wd, cz * Wd], dim=-1)
        if not terms:
            return torch.cat([value, first])
        Wt = W.T[dirs]  # (m, P)
        prod = torch.stack([sum(Wt[i] * Wt[j] for i, j in term) for term in terms]).unsqueeze(1)  # (p, 1, P)
        second = torch.cat([x.new_zeros(len(terms), n, E.shape[1]), -cz * prod, -sz * prod], dim=-1)
        return torch.cat([value, first, second])

    def config(self) -> dict:
        """The JSON record that rebuilds this encoding (``MLP.config["periodic"]``)."""
        return {"periods": dict(self.periods), "modes": self.modes,
                "input_names": None if self.input_names is None else list(self.input_names)}

    def describe(self) -> str:
        """One line for logs: ``periodic in x (period 2), 1 mode``."""
        where = ", ".join(f"{n} (period {p:g})" for n, p in self.periods.items())
        return f"periodic in {where}, {self.modes} mode{'s' if self.modes > 1 else ''}"

    def extra_repr(self) -> str:
        return f"periods={self.periods}, modes={self.modes}"
