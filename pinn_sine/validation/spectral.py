"""Fourier pseudo-spectral solutions of 1-D periodic semilinear equations, stepped with ETDRK4.

The equations are

    u_t = L u + N(u)        x in [x0, x0 + length) periodic, t >= 0,

with L diagonal in Fourier space (u = sum_k v_k e^{i k (x - x0)}, k = 2 pi j / length:
L acts as the multiplier l(k), e.g. l(k) = -eps k^2 + a for eps u_xx + a u) and N a
pointwise polynomial of u (-a u^3 for the Allen-Cahn equation). Space: the n lowest
modes |j| < n / 2 (the Nyquist mode is kept at zero, so the state stays the transform
of a real field); the values live on the n equispaced nodes x0 + length j / n.

Time: the exponential time-differencing fourth-order Runge-Kutta scheme of Cox &
Matthews (2002) in the form of Kassam & Trefethen, "Fourth-order time-stepping for
stiff PDEs", SIAM J. Sci. Comput. 26(4), 2005. With z = h l(k) for the step h,

    a = e^{z/2} v + Q N(v),                 b = e^{z/2} v + Q N(a),
    c = e^{z/2} a + Q (2 N(b) - N(v)),
    v+ = e^z v + f1 N(v) + 2 f2 (N(a) + N(b)) + f3 N(c),

    Q  = h (e^{z/2} - 1) / z                            = (h / 2) phi1(z / 2),
    f1 = h (-4 - z + e^z (4 - 3 z + z^2)) / z^3         = h (phi1 - 3 phi2 + 4 phi3)(z),
    f2 = h (2 + z + e^z (z - 2)) / z^3                  = h (phi2 - 2 phi3)(z),
    f3 = h (-4 - 3 z - z^2 + e^z (4 - z)) / z^3         = h (4 phi3 - phi2)(z),

with phi_k(z) = sum_{j >= 0} z^j / (j + k)!. Written as above these cancel
catastrophically for small |z| (f1 loses all digits near z ~ 1e-5 in float64), so they are
computed as Kassam & Trefethen do, by the Cauchy integral: the mean of the closed form over
``contour_points`` (M) points z + r e^{2 pi i (m - 1/2) / M} on a circle of radius r = 1
around z (:func:`phi_functions`). The functions are entire, so the trapezoid rule on the
circle converges faster than geometrically: with M = 32 the mean matches the Taylor
series to ~1e-14 relative at |z| <= 1 (and the closed forms, accurate there, for |z| >= 1;
``tests/test_spectral.py``). The linear part is integrated exactly, so a stiff l(k)
(eps k^2 h up to ~1e3 here) costs no stability; the scheme is fourth order in h.

Dealiasing: a nonlinearity of degree p turns the n retained modes into modes up to
p n / 2, which on n nodes alias onto the retained ones. With ``degree=p`` the product is
formed on a grid padded to m = ceil((p + 1) n / 2) nodes (zero modes above n / 2), and
truncated back: the exact Galerkin truncation of N(u) (the 3/2 rule of quadratic terms
is p = 2; the cubic Allen-Cahn term takes p = 3: padding by 2, which is the "1/2 rule"
of keeping |j| < n / 4 on the unpadded grid, but keeping all n modes). ``degree=None``
forms N(u) on the n nodes (collocation, aliased). Padding removes the aliasing error and
the weak instability it can feed; for a resolved smooth solution the two differ by about
the truncation error: on Allen-Cahn's default case (AllenCahn1D) padded and aliased solves
with 2048 modes are both 1.5e-9 from one with 8192 modes (4.4e-7 both with 1024 modes).
The padding is kept as the safe default (it is exact for the cubic at any resolution) at
the cost of FFTs twice as long.

Everything is float64 (complex128 in Fourier space).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import fft

#: points on the circle of the Cauchy-integral means (Kassam & Trefethen use 32 or 64)
CONTOUR_POINTS = 32
#: the circle's radius: larger |z| than this needs no contour, but it does no harm there
CONTOUR_RADIUS = 1.0


def phi_functions(z, *, contour_points: int = CONTOUR_POINTS, radius: float = CONTOUR_RADIUS
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(phi1, phi2, phi3) at z (any shape, real or complex), each shaped like z:

        phi1(z) = (e^z - 1) / z,  phi2(z) = (e^z - 1 - z) / z^2,
        phi3(z) = (e^z - 1 - z - z^2 / 2) / z^3    (phi_k(0) = 1 / k!),

    as the mean of these closed forms over ``contour_points`` points on the circle of
    ``radius`` around each z (the Cauchy integral, Kassam & Trefethen 2005), which has no
    cancellation as z -> 0. Real z give real results (the imaginary parts of a contour
    symmetric about the real axis cancel; they are dropped)."""
    if isinstance(contour_points, bool) or not isinstance(contour_points, int) or contour_points < 4:
        raise ValueError(f"contour_points must be an integer >= 4, got contour_points={contour_points!r}; "
                         f"use e.g. {CONTOUR_POINTS}.")
    if not (isinstance(radius, (int, float)) and math.isfinite(radius) and radius > 0):
        raise ValueError(f"radius must be a finite number > 0, got radius={radius!r}; use e.g. {CONTOUR_RADIUS}.")
    z = np.asarray(z)
    real = not np.iscomplexobj(z)
    r = radius * np.exp(2j * np.pi * (np.arange(contour_points) + 0.5) / contour_points)
    w = z.astype(np.complex128)[..., None] + r
    e = np.exp(w)
    phi1 = ((e - 1) / w).mean(-1)
    phi2 = ((e - 1 - w) / w ** 2).mean(-1)
    phi3 = ((e - 1 - w - w * w / 2) / w ** 3).mean(-1)
    return (phi1.real, phi2.real, phi3.real) if real else (phi1, phi2, phi3)


@dataclass(frozen=True)
class ETDRK4Coefficients:
    """The diagonal ETDRK4 multipliers of one step h for the symbol l (module docstring):
    ``E = e^{hl}``, ``E2 = e^{hl/2}``, ``Q``, ``f1``, ``f2``, ``f3``, each shaped like l."""

    h: float
    E: np.ndarray
    E2: np.ndarray
    Q: np.ndarray
    f1: np.ndarray
    f2: np.ndarray
    f3: np.ndarray


def etdrk4_coefficients(symbol, h: float, *, contour_points: int = CONTOUR_POINTS) -> ETDRK4Coefficients:
    """The multipliers of one ETDRK4 step of size ``h`` > 0 for the diagonal linear part
    with the values ``symbol`` (l(k) per mode), from :func:`phi_functions`."""
    if not (isinstance(h, (int, float)) and math.isfinite(h) and h > 0):
        raise ValueError(f"h must be a finite step > 0, got h={h!r}.")
    z = h * np.asarray(symbol)
    p1, p2, p3 = phi_functions(z, contour_points=contour_points)
    half, _, _ = phi_functions(z / 2, contour_points=contour_points)
    return ETDRK4Coefficients(h=float(h), E=np.exp(z), E2=np.exp(z / 2), Q=(h / 2) * half,
                              f1=h * (p1 - 3 * p2 + 4 * p3), f2=h * (p2 - 2 * p3), f3=h * (4 * p3 - p2))


def etdrk4_step(v: np.ndarray, nonlinear: Callable[[np.ndarray], np.ndarray], c: ETDRK4Coefficients) -> np.ndarray:
    """One ETDRK4 step of v' = l v + N(v) (module docstring) with the multipliers ``c``;
    ``nonlinear`` maps a state to N of it (same shape)."""
    Nv = nonlinear(v)
    a = c.E2 * v + c.Q * Nv
    Na = nonlinear(a)
    b = c.E2 * v + c.Q * Na
    Nb = nonlinear(b)
    cc = c.E2 * a + c.Q * (2 * Nb - Nv)
    Nc = nonlinear(cc)
    return c.E * v + c.f1 * Nv + 2 * c.f2 * (Na + Nb) + c.f3 * Nc


def etdrk4(symbol, nonlinear: Callable[[np.ndarray], np.ndarray], v0, times: Sequence[float], dt: float, *,
           contour_points: int = CONTOUR_POINTS) -> np.ndarray:
    """v' = l v + N(v) from v(0) = ``v0`` by ETDRK4, the state at each of ``times``.

    Each interval between consecutive output times (from 0) is split into
    ceil(interval / dt) equal steps (at most ``dt``), so the outputs fall on step ends;
    equal intervals share one set of multipliers.

    Args:
        symbol: l(k) per entry of the state (the diagonal of L), shaped like v0.
        nonlinear: state -> N(state), same shape.
        v0: the initial state (complex or real array).
        times: output times, non-decreasing and >= 0 (a time 0 returns v0).
        dt: the largest step (> 0).
        contour_points: points of the Cauchy-integral means (:func:`phi_functions`).
    Returns:
        (len(times),) + v0.shape array of states.
    """
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a finite step > 0, got dt={dt!r}; use e.g. dt=1e-3.")
    t = np.asarray(times, dtype=np.float64)
    if t.ndim != 1 or t.size == 0 or not np.all(np.isfinite(t)) or t[0] < 0 or np.any(np.diff(t) < 0):
        raise ValueError(f"times must be a non-empty 1-D sequence of finite, non-decreasing times >= 0, got {times!r}.")
    symbol = np.asarray(symbol)
    v = np.array(v0, dtype=np.result_type(v0, symbol, np.complex128), copy=True)
    out = np.empty((t.size,) + v.shape, dtype=v.dtype)
    cache: dict[tuple[int, float], ETDRK4Coefficients] = {}
    now = 0.0
    for i, target in enumerate(t):
        interval = target - now
        if interval > 0:
            steps = max(1, math.ceil(interval / dt - 1e-9))
            h = interval / steps
            key = (steps, round(h, 15))
            if key not in cache:
                cache[key] = etdrk4_coefficients(symbol, h, contour_points=contour_points)
            for _ in range(steps):
                v = etdrk4_step(v, nonlinear, cache[key])
            now = float(target)
        out[i] = v
    return out


# ----- the periodic Fourier grid ------------------------------------------------------------
@dataclass(frozen=True)
class PeriodicGrid:
    """n equispaced nodes x_j = x0 + length j / n of a period [x0, x0 + length) and the
    real-FFT modes j = 0..n/2 (wavenumbers k_j = 2 pi j / length) of fields on them.

    A state is the real FFT (``scipy.fft.rfft``) of the nodal values (n // 2 + 1 complex numbers),
    with the Nyquist mode (n even) held at zero."""

    n: int
    x0: float
    length: float

    def __post_init__(self):
        if isinstance(self.n, bool) or not isinstance(self.n, (int, np.integer)) or self.n < 4 or self.n % 2:
            raise ValueError(f"n_modes must be an even integer >= 4, got n_modes={self.n!r}; use e.g. 512.")
        if not (math.isfinite(self.length) and self.length > 0):
            raise ValueError(f"length must be a finite period > 0, got length={self.length!r}.")

    @property
    def x(self) -> np.ndarray:
        """The nodes (n,)."""
        return self.x0 + self.length * np.arange(self.n) / self.n

    @property
    def k(self) -> np.ndarray:
        """The wavenumbers of the state's entries (n // 2 + 1,)."""
        return 2 * np.pi * np.arange(self.n // 2 + 1) / self.length

    def transform(self, u: np.ndarray) -> np.ndarray:
        """Nodal values (..., n) -> the state (..., n // 2 + 1), Nyquist mode zeroed."""
        v = fft.rfft(np.asarray(u, dtype=np.float64), axis=-1)
        v[..., -1] = 0.0
        return v

    def project(self, u0: Callable[[np.ndarray], np.ndarray], oversample: int = 1) -> np.ndarray:
        """The state of a callable field u0 (nodes (m,) -> values (m,)): its n lowest
        Fourier coefficients from an FFT on a grid ``oversample`` times finer. With
        ``oversample=1`` this is the interpolant at the nodes (the coefficients of the
        modes beyond n / 2 alias onto the kept ones); with K > 1 the aliased part comes
        from modes beyond K n / 2 only, so the state approaches the L2 projection. That
        matters for a field that is not smooth on the circle: for u0 with a jump of the
        slope (Allen-Cahn's x^2 cos(pi x) at x = +-1) the coefficients decay like
        1 / j^2 and the aliasing error of the interpolant, ~1 / n^2 in every kept mode,
        never decays in time, whereas the truncated modes a projection drops decay like
        exp(-eps k^2 t)."""
        if isinstance(oversample, bool) or not isinstance(oversample, int) or oversample < 1:
            raise ValueError(f"oversample must be an integer >= 1, got oversample={oversample!r}; use e.g. 16.")
        fine = PeriodicGrid(self.n * oversample, self.x0, self.length)
        values = np.asarray(u0(fine.x), dtype=np.float64)
        if values.shape != (fine.n,) or not np.all(np.isfinite(values)):
            raise ValueError(f"u0 must give {fine.n} finite nodal values, got shape {values.shape}.")
        v = fft.rfft(values)[: self.n // 2 + 1] / oversample
        v[-1] = 0.0
        return v

    def values(self, v: np.ndarray) -> np.ndarray:
        """The state (..., n // 2 + 1) -> nodal values (..., n)."""
        return fft.irfft(v, n=self.n, axis=-1)

    def evaluate(self, v: np.ndarray, x, derivative: int = 0) -> np.ndarray:
        """The trigonometric interpolant of the state(s) ``v`` (..., n // 2 + 1), or its
        ``derivative``-th x-derivative, at the points ``x`` (m,) -> (..., m): the field
        between the nodes with spectral accuracy (exact at the nodes)."""
        x = np.asarray(x, dtype=np.float64)
        weight = np.full(self.n // 2 + 1, 2.0)
        weight[0] = 1.0
        weight[-1] = 0.0  # the Nyquist mode is held at zero
        coef = v * weight * (1j * self.k) ** derivative / self.n
        phase = np.exp(1j * np.outer(self.k, x - self.x0))
        return (coef @ phase).real


def padded_size(n: int, degree: int | None) -> int:
    """Nodes of the grid on which a degree-``degree`` nonlinearity of n retained modes is
    formed without aliasing: the even m >= ((degree + 1) n) / 2 (module docstring); n for
    ``degree=None`` (no dealiasing)."""
    if degree is None:
        return n
    if isinstance(degree, bool) or not isinstance(degree, int) or degree < 1:
        raise ValueError(f"degree must be an integer >= 1 (the nonlinearity's polynomial degree) or None (no "
                         f"dealiasing), got degree={degree!r}.")
    m = math.ceil((degree + 1) * n / 2)
    return m + (m % 2)


def pseudo_spectral(grid: PeriodicGrid, degree: int | None, f: Callable[[np.ndarray], np.ndarray]
                    ) -> Callable[[np.ndarray], np.ndarray]:
    """N(v) = the transform of f(u) for a state v, f a pointwise function of the nodal
    values, formed on the padded grid of :func:`padded_size` (the Galerkin truncation of
    a polynomial f of degree ``degree``) or on the n nodes (``degree=None``)."""
    n, m = grid.n, padded_size(grid.n, degree)
    keep = n // 2 + 1

    def nonlinear(v: np.ndarray) -> np.ndarray:
        if m == n:
            out = fft.rfft(f(fft.irfft(v, n=n)))
        else:
            padded = np.zeros(m // 2 + 1, dtype=np.complex128)
            padded[:keep] = v
            out = fft.rfft(f(fft.irfft(padded * (m / n), n=m)))[:keep] * (n / m)
        out[-1] = 0.0
        return out

    return nonlinear


def semilinear_1d(symbol: Callable[[np.ndarray], np.ndarray], f: Callable[[np.ndarray], np.ndarray], u0,
                  times: Sequence[float], *, n_modes: int, dt: float, x0: float = 0.0, length: float = 2 * np.pi,
                  degree: int | None = None, oversample: int = 1, contour_points: int = CONTOUR_POINTS
                  ) -> tuple[PeriodicGrid, np.ndarray]:
    """u_t = L u + f(u) on the period [x0, x0 + length), pseudo-spectral in x with
    ``n_modes`` nodes, ETDRK4 in t with steps <= ``dt`` (module docstring).

    Args:
        symbol: k (wavenumbers >= 0) -> l(k), the multiplier of L (real for a real L).
        f: the pointwise nonlinearity, nodal values -> nodal values.
        u0: the initial field: a callable of the nodes (m,) -> (m,), or its nodal values (n,).
        times: output times (non-decreasing, >= 0).
        degree: f's polynomial degree, for dealiasing by padding (None: none).
        oversample: for a callable u0, the initial state from a grid this many times
            finer (:meth:`PeriodicGrid.project`; 1: interpolation at the nodes).
    Returns:
        (grid, states): the :class:`PeriodicGrid` and the states (len(times), n // 2 + 1);
        ``grid.values(states)`` are the nodal values, ``grid.evaluate`` the field anywhere.
    """
    grid = PeriodicGrid(int(n_modes), float(x0), float(length))
    if callable(u0):
        start = grid.project(u0, oversample)
    else:
        values = np.asarray(u0, dtype=np.float64)
        if values.shape != (grid.n,) or not np.all(np.isfinite(values)):
            raise ValueError(f"u0 must be {grid.n} finite nodal values or a callable, got shape {values.shape}.")
        start = grid.transform(values)
    states = etdrk4(np.asarray(symbol(grid.k)), pseudo_spectral(grid, degree, f), start, times, dt,
                    contour_points=contour_points)
    if not np.all(np.isfinite(states)):
        raise FloatingPointError(f"the spectral solution blew up (n_modes={n_modes}, dt={dt}); lower dt.")
    return grid, states


def allen_cahn_1d(eps: float, a: float, u0, times: Sequence[float], *, n_modes: int, dt: float,
                  x0: float = -1.0, length: float = 2.0, dealias: bool = True, oversample: int = 1,
                  contour_points: int = CONTOUR_POINTS) -> tuple[PeriodicGrid, np.ndarray]:
    """The periodic Allen-Cahn equation u_t = eps u_xx + a u - a u^3 on [x0, x0 + length):
    L = eps d_xx + a (l(k) = a - eps k^2), N(u) = -a u^3, dealiased by padding to 2 n
    nodes unless ``dealias=False`` (:func:`semilinear_1d`, which says what the other
    arguments mean and what is returned)."""
    return semilinear_1d(lambda k: a - eps * k * k, lambda u: -a * u * u * u, u0, times, n_modes=n_modes, dt=dt,
                         x0=x0, length=length, degree=3 if dealias else None, oversample=oversample,
                         contour_points=contour_points)


__all__ = ["phi_functions", "ETDRK4Coefficients", "etdrk4_coefficients", "etdrk4_step", "etdrk4", "PeriodicGrid",
           "padded_size", "pseudo_spectral", "semilinear_1d", "allen_cahn_1d", "CONTOUR_POINTS"]
