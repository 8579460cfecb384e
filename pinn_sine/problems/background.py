"""The exact field of a Gaussian point source in a uniform medium: the background
u0 of :class:`~pinn_sine.problems.HelmholtzPointSource`'s scattered-field formulation
(Song & Alkhalifah 2021, with a PML as below).

With the conventions of :mod:`pinn_sine.validation.fd.pml` (time dependence
exp(-i omega t), outgoing Green's function G = (i/4) H0(k r) of Lap G + k^2 G = -delta),
u0 solves Lap u0 + k0^2 u0 = -f in the plane, k0 = omega / c0, for the Gaussian

    f(r) = exp(-r^2 / (2 w^2)) / (2 pi w^2)        (unit integral, r = |x - x0|).

u0 = G * f; for a radially symmetric f, Graf's addition theorem (H0(k|x - y|) =
sum_m J_m(k s) H_m(k r) e^{i m (theta - phi)} for s = |y| < r, J and H swapped for
s > r) leaves the m = 0 term after the angular integral:

    u0(r) = (i/4) [ H0(k0 r) A(r) + J0(k0 r) B(r) ],
    A(r) = int_0^r f(s) J0(k0 s) 2 pi s ds,     B(r) = int_r^inf f(s) H0(k0 s) 2 pi s ds,

(H0 = H0^(1)). Differentiating, the terms with A' and B' cancel (A' J0... = f J0 H0 2 pi r
- f H0 J0 2 pi r = 0), so

    u0'(r) = -(i k0 / 4) [ H1(k0 r) A(r) + J1(k0 r) B(r) ],
    u0''(r) = -f - k0^2 u0 - u0'/r                          (the radial ODE).

The totals are closed forms: A(inf) = exp(-a), int_0^inf f Y0(k0 s) 2 pi s ds =
exp(-a) Ei(a) / pi, a = (k0 w)^2 / 2, so B(r) = A(inf) - A(r) + i (Y(inf) - Y(r)) with
A(r), Y(r) = int_0^r f {J0, Y0}(k0 s) 2 pi s ds by Gauss-Legendre on s = r t^4 (the
substitution smooths the s log s of Y0 at s = 0: 64 nodes give 1e-14 against mpmath
for k0 w <= 3). Beyond ``FAR_WIDTHS`` source widths f and the tails of A, B are below
exp(-40.5) = 2.6e-18 of their totals, and u0 = (i/4) A(inf) H0(k0 r) to double precision
(the far zone).

In a perfectly matched layer the background is continued analytically: u_b(x) =
u0(x~) with the stretched coordinates x~_a = x_a + (i / omega) int sigma_a, so that
dx~_a/dx_a = s_a = 1 + i sigma_a / omega, and the stretched operator of the layer
(1/s_a) d/dx_a((1/s_a) d/dx_a) = d^2/dx~_a^2 applied to u_b gives Lap~ u0 = -k0^2 u0 there
(the layer must lie in the far zone; the complex distance rho = sqrt(sum (x~_a - x0_a)^2)
has Im rho >= 0, so H0(k0 rho) decays into the layer as the damped wave does). In
stretched coordinates z_a = x~_a - x0_a, with Q = u0'/rho:

    du_b/dx_a      = s_a Q z_a,
    d2u_b/dx_a^2   = s_a^2 [Q + (u0'' - Q) z_a^2 / rho^2] + s_a' Q z_a,   s_a' = i sigma_a' / omega,
    d2u_b/dx dy    = s_x s_y (u0'' - Q) z_x z_y / rho^2,

which in the physical region (s = 1) are the plain gradient and Hessian of u0.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import expi, hankel1, j0, j1, roots_legendre, y0

from ..validation.fd.pml import pml_sigma, pml_sigma_prime, profile_degree

#: the far zone starts this many source widths from the source: f, and the tails of the
#: Graf integrals, are below exp(-FAR_WIDTHS^2 / 2) = 2.6e-18 of their peaks there
FAR_WIDTHS = 9.0
#: Gauss-Legendre nodes of the Graf integrals (more for k0 w > 3: see _nodes)
QUADRATURE_NODES = 64


def stretched_coordinates(x: np.ndarray, lo: float, hi: float, width: float, strength: float, omega: float,
                          profile: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The PML's complex coordinate along one axis and its derivatives, for x (n,):

        x~ = x + (i / omega) int_{edge}^{x} sigma = x + i strength (d_hi^{m+1} - d_lo^{m+1})
             / ((m + 1) width^m omega),
        s = dx~/dx = 1 + i sigma / omega,   s' = i sigma' / omega,

    with sigma = strength (d / width)^m the profile of :mod:`pinn_sine.validation.fd.pml`
    (d_lo, d_hi the distances into the low and high layers). Returns (x~, s, s'), complex (n,)."""
    m = profile_degree(profile)
    d_hi = np.maximum(x - (hi - width), 0.0)
    d_lo = np.maximum((lo + width) - x, 0.0)
    shift = strength * (d_hi ** (m + 1) - d_lo ** (m + 1)) / ((m + 1) * width ** m * omega)
    sigma = pml_sigma(x, lo, hi, width, strength, profile)
    sigma_prime = pml_sigma_prime(x, lo, hi, width, strength, profile)
    return x + 1j * shift, 1 + 1j * sigma / omega, 1j * sigma_prime / omega


class GaussianBackground:
    """u0 of a Gaussian source of width ``width`` (> 0) at ``center`` in a uniform medium
    of wavenumber ``k0`` (> 0) (module docstring for the equations).

    Args:
        k0: the background wavenumber omega / c0.
        width: the Gaussian's standard deviation w.
        center: the source centre (x0, y0).
    """

    def __init__(self, k0: float, width: float, center: tuple[float, float]):
        if not (math.isfinite(k0) and k0 > 0):
            raise ValueError(f"GaussianBackground: k0={k0!r} must be a positive wavenumber (omega / c0).")
        if not (math.isfinite(width) and width > 0):
            raise ValueError(f"GaussianBackground: width={width!r} must be a positive source width.")
        self.k0, self.width = float(k0), float(width)
        self.center = (float(center[0]), float(center[1]))
        self.far_radius = FAR_WIDTHS * self.width
        a = 0.5 * (self.k0 * self.width) ** 2
        self.a_total = math.exp(-a)                     # int_0^inf f J0 2 pi s ds
        self.y_total = math.exp(-a) * expi(a) / math.pi  # int_0^inf f Y0 2 pi s ds
        n = QUADRATURE_NODES + 2 * math.ceil(max(0.0, self.k0 * self.far_radius - 27.0))
        t, wt = roots_legendre(n)
        self._t, self._wt = 0.5 * (t + 1), 0.5 * wt

    def source(self, r: np.ndarray) -> np.ndarray:
        """f(r), the Gaussian of unit integral."""
        return np.exp(-0.5 * (r / self.width) ** 2) / (2 * math.pi * self.width ** 2)

    def graf_integrals(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A(r) and Y(r) = int_0^r f(s) {J0, Y0}(k0 s) 2 pi s ds for r (n,) >= 0, by
        Gauss-Legendre on s = r t^4 (float64, (n,) each)."""
        r = np.asarray(r, dtype=np.float64)[:, None]
        r = np.where(r > 0, r, 0.0)  # r = 0: s = 0 at every node, Y0 = -inf there; both integrals are 0
        s = np.maximum(r * self._t ** 4, np.finfo(float).tiny)
        ds = r * 4 * self._t ** 3 * self._wt
        g = s * np.exp(-0.5 * (s / self.width) ** 2) / self.width ** 2 * ds   # f(s) 2 pi s ds
        ks = self.k0 * s
        return (g * j0(ks)).sum(1), (g * y0(ks)).sum(1)

    def radial(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """u0(r), Q = u0'(r)/r and f_b(r) for real r (n,) >= 0, complex (n,) each (f_b real):
        Graf's formula within the far radius, (i/4) A(inf) H0(k0 r) beyond it, where f_b,
        the source the formula solves for, is 0 (f is below 2.6e-18 of its peak there)."""
        r = np.asarray(r, dtype=np.float64)
        u = np.empty(r.shape, complex)
        q = np.empty(r.shape, complex)
        fb = np.zeros(r.shape)
        far = r >= self.far_radius
        u[far], q[far] = self.far_field(r[far].astype(complex))
        near = ~far
        rn = r[near]
        fn = self.source(rn)
        fb[near] = fn
        A, Y = self.graf_integrals(rn)
        B = (self.a_total - A) + 1j * (self.y_total - Y)
        kr = self.k0 * rn
        pos = rn > 0
        # H0(k r) A(r) ~ r^2 log r and H1(k r) A(r) ~ r vanish at r = 0 (H0, H1 infinite there)
        hA0 = np.zeros(rn.shape, complex)
        hA1r = np.zeros(rn.shape, complex)
        hA0[pos] = hankel1(0, kr[pos]) * A[pos]
        hA1r[pos] = hankel1(1, kr[pos]) * A[pos] / rn[pos]
        un = 0.25j * (hA0 + j0(kr) * B)
        jB1r = np.where(pos, j1(kr) / np.where(pos, rn, 1.0), 0.5 * self.k0) * B
        qn = -0.25j * self.k0 * (hA1r + jB1r)
        # At r = 0: H1(k r) A(r) / r -> -2 i f(0) / k0 (A ~ pi f(0) r^2), so Q = (-f - k0^2 u0) / 2
        qn = np.where(pos, qn, 0.5 * (-fn - self.k0 ** 2 * un))
        u[near], q[near] = un, qn
        return u, q, fb

    def far_field(self, rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """u0 = (i/4) A(inf) H0(k0 rho) and Q = u0'/rho = -(i k0 / 4) A(inf) H1(k0 rho) / rho
        at complex distances rho (n,) in the far zone (Im rho >= 0)."""
        kr = self.k0 * rho
        return (0.25j * self.a_total * hankel1(0, kr),
                -0.25j * self.k0 * self.a_total * hankel1(1, kr) / rho)

    def field(self, points: np.ndarray, *, layer=None, derivatives: bool = False) -> dict[str, np.ndarray]:
        """u_b at points (n, 2) (float64), complex (n,), under "u", and the source f_b its
        formula solves for under "f_b" (real; f within the far radius, else 0); with
        ``derivatives`` also "u_x", "u_y", "u_xx", "u_yy", "u_xy" (complex (n,)).

        ``layer``: None (no PML, plain coordinates) or a dict with "bounds" ((lo, hi) per
        axis), "width", "strength", "omega", "profile" (:func:`stretched_coordinates`).
        Points inside the layer must lie in the far zone (ValueError otherwise)."""
        p = np.asarray(points, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != 2:
            raise ValueError(f"GaussianBackground.field: points must be (n, 2), got shape {p.shape}.")
        n = p.shape[0]
        z, s, sp = [], [], []
        for a in range(2):
            if layer is None:
                xt, sa, spa = p[:, a].astype(complex), np.ones(n, complex), np.zeros(n, complex)
            else:
                lo, hi = layer["bounds"][a]
                xt, sa, spa = stretched_coordinates(p[:, a], lo, hi, layer["width"], layer["strength"],
                                                    layer["omega"], layer["profile"])
            z.append(xt - self.center[a])
            s.append(sa)
            sp.append(spa)
        r = np.hypot(p[:, 0] - self.center[0], p[:, 1] - self.center[1])
        stretched = (s[0] != 1) | (s[1] != 1) | (z[0].imag != 0) | (z[1].imag != 0)
        far = r >= self.far_radius
        if np.any(stretched & ~far):
            raise ValueError(f"GaussianBackground.field: points inside the PML lie within the far radius "
                             f"{self.far_radius:g} ({FAR_WIDTHS:g} source widths) of the source; the layer must "
                             "keep that distance from the source.")
        u = np.empty(n, complex)
        q = np.empty(n, complex)
        fb = np.zeros(n)
        near = ~far
        u[near], q[near], fb[near] = self.radial(r[near])
        rho = np.sqrt(z[0][far] ** 2 + z[1][far] ** 2)
        u[far], q[far] = self.far_field(rho)
        out = {"u": u, "f_b": fb}
        if not derivatives:
            return out
        rho2 = z[0] ** 2 + z[1] ** 2
        # u0'' - Q = -f_b - k0^2 u0 - 2 Q; times z_a z_b / rho^2, which is 0/0 at r = 0 where u0'' = Q
        curv = -fb - self.k0 ** 2 * u - 2 * q
        safe = np.where(rho2 != 0, rho2, 1.0)
        for a, name in enumerate("xy"):
            ua = q * z[a]
            uaa = q + np.where(rho2 != 0, curv * z[a] ** 2 / safe, 0.0)
            out[f"u_{name}"] = s[a] * ua
            out[f"u_{name}{name}"] = s[a] ** 2 * uaa + sp[a] * ua
        out["u_xy"] = s[0] * s[1] * np.where(rho2 != 0, curv * z[0] * z[1] / safe, 0.0)
        return out
