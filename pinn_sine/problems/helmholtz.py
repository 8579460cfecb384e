"""Helmholtz2D (manufactured, Wang, Teng & Perdikaris 2021) and HelmholtzPointSource
(the SIREN experiment: a point source in a velocity model, surrounded by a PML).

Both residuals are divided by a fixed scale so that every loss term starts O(1), as in
Poisson2D and Wave2D:

    Helmholtz2D           "pde":      mean (Lap u + k^2 u - f)^2 / (<(Lap u)^2> + k^4 <u^2>)
                          "boundary": mean (u - g)^2 / <u^2>
    HelmholtzPointSource  "pde":      mean |L_s u + (omega/c)^2 u + f|^2 / E[f^2]
                          "boundary": mean |u|^2 / <|G|^2>

with <.> a mean over the domain (of the exact solution), E[f^2] the mean square of the
source under the problem's own sampler (the near-source points included, so a zero
field scores "pde" = 1), and G the free-space Green's function (i/4) H0(k r), the
natural size of a unit point source's field (mean over the physical region). Under
HelmholtzPointSource's scattered formulation the terms are those of u = u_b + u_s, with
the same scales.
"""
from __future__ import annotations

import hashlib
import math
import numbers
from collections import OrderedDict
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from .. import sampling
from .._checks import non_negative, positive
from ..constraints import HardConstraint, SineFactor
from ..derivatives import DerivativeSpec, Jet
from ..validation import fd
from ..validation.fd.helmholtz import ResolutionError
from ..validation.fd.pml import DEFAULT_PROFILE, physical_mask, pml_sigma, pml_sigma_prime
from ..validation.reference import ReferenceField
from .background import FAR_WIDTHS, GaussianBackground
from .base import (Problem, Term, describe_callable, exact_laplacian, manufactured_box_batch,
                   manufactured_box_constraint, manufactured_boundary_target)
from .callables import check_solution
from .velocity import DEFAULT_EDGE, VelocityModel, clip, grid_points, parse_center

#: the least grid points per source width the point-source reference accepts
MIN_POINTS_PER_WIDTH = 1.0
#: HelmholtzPointSource's default layer: width 0.5 on each side of [-1, 1]^2, sigma =
#: strength (d / width)^3 (the cubic profile of validation.fd.pml, C^2 at the inner
#: edge). The round trip at normal incidence is exp(-2 * 60 * 0.5 / 4) = 3e-7, and the
#: uniform-velocity reference (order 4, 257^2) matches the free-space field of the
#: Gaussian source to its discretisation error: rel L2 3.7e-7 (omega 10) and 6.8e-6
#: (omega 20). Strength 5 (the old default, quadratic) left 0.16 and 0.18; cubic 20,
#: 5.7e-3 and 6.0e-3; cubic 40, 3.9e-5 and 4.5e-5.
DEFAULT_PML_WIDTH = 0.5
DEFAULT_PML_STRENGTH = 60.0
#: the Hankel-fit check of the uniform reference ignores r < HANKEL_R_MIN source widths:
#: the Gaussian's own tail makes even the exact free-space field differ from
#: (i/4) H0(k r) by 3e-3 (omega 10) over r > 2 widths, 3e-6 over r > 4 widths.
HANKEL_R_MIN = 4.0
#: HelmholtzPointSource's formulations: the network is the total field u, or the
#: scattered field u_s = u - u_b around the analytic background u_b (class docstring)
FORMULATIONS = ("total", "scattered")
#: the named configurations of HelmholtzPointSource (``preset``): the values they give
#: omega and source_width; None is the package's default case
PRESETS = {None: {"omega": 10.0, "source_width": 0.05},
           # SIREN's Helmholtz experiment (Sitzmann et al. 2020, Sec. 4.3 and its code)
           "siren": {"omega": 20.0, "source_width": 0.01}}
#: background fields kept per problem (by the points' content), e.g. the reference grid
BACKGROUND_CACHE_SIZE = 4


def parse_centers(value) -> tuple[tuple[float, float], ...]:
    """``source_center`` as a tuple of (x0, y0) pairs: one pair, or a sequence of pairs
    (several sources), else a ValueError naming it."""
    try:
        first = value[0]
    except (TypeError, IndexError, KeyError):
        first = None
    if first is None or np.ndim(first) == 0:  # a number (or a string): one pair
        return (parse_center(value),)
    centers = tuple(parse_center(v) for v in value)
    if len(set(centers)) != len(centers):
        raise ValueError(f"source_center lists the same source twice: {[list(c) for c in centers]}; give each "
                         "source once.")
    return centers


def _resolution_error(err: ResolutionError, resolution: int, side: float) -> ValueError:
    """The FD solver's points-per-wavelength error restated for ``reference(resolution)``."""
    n = max(err.n_needed)
    return ValueError(f"reference(resolution={resolution}) gives {err.points_per_wavelength:.2f} grid points per "
                      f"wavelength (omega={err.omega}, c_min={err.c_min}), fewer than {err.min_ppw:g}; use "
                      f"resolution >= {n} (grid spacing h <= {side / (n - 1):.4g}).")


# ============================================================================================
class Helmholtz2D(Problem):
    """Laplacian(u) + k^2 u = f on [x0, x1] x [y0, y1], u = g on the boundary.

    The default case is Wang, Teng & Perdikaris (2021, "Understanding and mitigating
    gradient pathologies in physics-informed neural networks", Sec. 3.2):
    u = sin(a1 pi x) sin(a2 pi y) on [-1, 1]^2 with a1 = 1, a2 = 4, k = 1; f is derived
    from u (by autograd) and g = u on the boundary. Any torch callable ``u(x, y)`` is
    accepted in place of the default.

    Note the sign: this problem is written ``Lap u + k^2 u = f``; the FD solver's
    convention is ``Lap u + k^2 u = -f``, so the reference passes ``-f``.

    Loss terms (means over the batch; the scales are in the module docstring):
        "pde":      (Lap u + k^2 u - f)^2 / (<(Lap u)^2> + k^4 <u^2>)
        "boundary": (u - g)^2 / <u^2>

    The reference is the fourth-order compact (9-point) FD solution (no PML) with
    Dirichlet data g, mask None; ``attrs["error_estimate"]`` is its rel L2 error vs u.

    Hard constraint (``constraint="hard"``): u = g + d N as for :class:`Poisson2D`
    (d the bubble over the rectangle, g the transfinite interpolation of the boundary
    values; 0 for the default solution with integer a1, a2 on [-1, 1]^2, DeepXDE's
    u = (1 - x^2)(1 - y^2) N); the "boundary" term and point set are gone.

    Args:
        u: exact solution ``u(x, y)`` on tensors of shape (n,) -> (n,) (torch ops), or
            None for sin(a1 pi x) sin(a2 pi y).
        a1, a2: the default solution's mode numbers (default 1 and 4); only without ``u``.
        k: wavenumber (> 0).
        bounds: ((x0, x1), (y0, y1)).
        sampler: interior sampler, "uniform", "sobol" or "lhs".
        boundary_fraction: boundary points per interior point (> 0).
        constraint: "soft" (the "boundary" loss term) or "hard" (train ``constrain(net)``).
    """

    name = "helmholtz2d"
    unknown_parameters = {"k": 0.0}
    bad_params = ({"k": 0.0}, {"a1": -1.0}, {"boundary_fraction": 0.0})
    check_resolution = 17
    input_names = ("x", "y")
    out_dim = 1
    # The reference is the fourth-order compact FD solution: rel L2 error vs the exact
    # solution 3.3e-7 at 257^2, 6.4e-8 at 385^2 and 2.0e-8 at 513^2, so 513^2 stays 5x
    # under a 1e-7 network (cached after the first solve).
    # (The second-order 5-point solution had 7.6e-4 at 257^2 and 1.9e-4 at 513^2.)
    default_resolution = 513
    # First omega 4 as for Poisson2D (the top mode is 4 pi on [-1, 1]); not tuned further.
    # SIREN (hidden omega 30), 64 x 3, batch 1024, lr 1e-3 cosine, 3000 Adam + 500 L-BFGS
    # reached 3.6e-4 rel L2 vs the exact solution (4.0e-4 vs the 513^2 FD reference)
    # (benchmarks/helmholtz.py).
    default_first_omega = 4.0
    default_lr = 1e-3
    offers_hard_constraint = True

    def __init__(self, u: Callable[[Tensor, Tensor], Tensor] | None = None, *, a1: float | None = None,
                 a2: float | None = None, k: float = 1.0, bounds=((-1.0, 1.0), (-1.0, 1.0)),
                 sampler: str = "sobol", boundary_fraction: float = 0.25, constraint: str = "soft"):
        self.bounds = sampling.check_bounds(bounds)
        if len(self.bounds) != 2:
            raise ValueError(f"Helmholtz2D needs two (lo, hi) bounds, got {len(self.bounds)}.")
        self.k = positive("k", k, "the wavenumber must be positive, e.g. k=1.0.")
        if u is not None and (a1 is not None or a2 is not None):
            raise ValueError(f"a1={a1!r}, a2={a2!r} define the default solution sin(a1 pi x) sin(a2 pi y); "
                             "they cannot be combined with a user solution u. Pass either u or a1/a2.")
        if u is None:
            self.a1 = positive("a1", 1.0 if a1 is None else a1, "use e.g. a1=1.0.")
            self.a2 = positive("a2", 4.0 if a2 is None else a2, "use e.g. a2=4.0.")
            a1v, a2v = self.a1, self.a2

            def default_solution(x: Tensor, y: Tensor) -> Tensor:
                return torch.sin(a1v * math.pi * x) * torch.sin(a2v * math.pi * y)

            self.u_fn = default_solution
        else:
            check_solution(u, "u", self.bounds)
            self.a1 = self.a2 = None
            self.u_fn = u
        if sampler not in sampling.METHODS:
            raise ValueError(f'Invalid sampler "{sampler}". Must be one of {list(sampling.METHODS)}.')
        self.sampler = sampler
        self.boundary_fraction = positive("boundary_fraction", boundary_fraction, "use e.g. boundary_fraction=0.25.")
        self.derivatives = {"interior": DerivativeSpec.laplacian(("x", "y")), "boundary": DerivativeSpec()}
        self._set_constraint(constraint, ("boundary", "g"))
        # Scales from the exact solution on fixed points of the domain.
        pts = sampling.box(4096, self.bounds, torch.Generator().manual_seed(0)).double()
        u2 = float((self.exact(pts) ** 2).mean())
        if not (math.isfinite(u2) and u2 > 0):
            raise ValueError(f"the exact solution has mean square {u2:g} over the domain; give a nonzero, "
                             "finite u(x, y).")
        lap2 = float((exact_laplacian(self.u_fn, pts) ** 2).mean())
        self._u2 = u2
        self._pde_scale = lap2 + self.k ** 4 * u2

    # ----- data -------------------------------------------------------------------------
    def exact(self, x: Tensor) -> Tensor:
        return self.u_fn(x[:, 0], x[:, 1]).reshape(-1, 1)

    def source(self, x: Tensor) -> Tensor:
        """f = Lap u + k^2 u at x (n, 2) -> (n, 1)."""
        return exact_laplacian(self.u_fn, x) + self.k ** 2 * self.exact(x).detach()

    def sample(self, n: int, generator: torch.Generator, *, progress: float = 1.0) -> dict[str, Tensor]:
        return self._constrained(manufactured_box_batch(self, n, generator))

    def _interior_residual(self, jets: dict[str, Jet], batch: dict[str, Tensor]) -> Tensor:
        """(Lap u + k^2 u - f) / sqrt(<(Lap u)^2> + k^4 <u^2>) at the interior points (n, 1)."""
        ji = jets["interior"]
        dtype = ji.u.dtype
        f = batch["f"].to(dtype) if "f" in batch else self.source(batch["interior"].double()).to(dtype)
        k = self.coefficient("k")  # the trainable k where it is unknown; f and the scale keep the defining k
        return (ji.laplacian(("x", "y")) + k ** 2 * ji.u - f) / math.sqrt(self._pde_scale)

    def _boundary_residual(self, jets: dict[str, Jet], batch: dict[str, Tensor]) -> Tensor:
        """(u - g) / sqrt(<u^2>) at the boundary points (n_b, 1)."""
        g = manufactured_boundary_target(self, jets, batch)
        return (jets["boundary"].u - g) / math.sqrt(self._u2)

    def terms(self) -> tuple[Term, ...]:
        """"pde" at the interior points and "boundary" (not under the hard constraint)."""
        pde = Term("pde", ("interior",), "pde", self._interior_residual)
        if self.constraint == "hard":
            return (pde,)
        return pde, Term("boundary", ("boundary",), "boundary", self._boundary_residual)

    def hard_constraint(self) -> HardConstraint:
        """u = g + d N: d the bubble over the rectangle, g the transfinite interpolation of
        u's boundary values (class docstring; ``manufactured_box_constraint``)."""
        terms = (((1.0, ((0, SineFactor(self.a1 * math.pi)), (1, SineFactor(self.a2 * math.pi)))),)
                 if self.a1 is not None else None)
        return manufactured_box_constraint(self, terms)

    # ----- reference --------------------------------------------------------------------
    def params(self) -> dict:
        solution = ({"a1": self.a1, "a2": self.a2} if self.a1 is not None
                    else {"u_fn": describe_callable(self.u_fn)})
        return {**solution, "k": self.k, "bounds": [list(b) for b in self.bounds], "constraint": self.constraint}

    def compute_reference(self, resolution: int) -> ReferenceField:
        exact = fd.on_grid(self.exact)
        try:
            # The FD solver solves Lap u + k^2 u = -f_fd, hence f_fd = -f.
            # Order 4: the compact 9-point scheme with its right-hand-side correction, which
            # evaluates f on the whole grid (boundary nodes included).
            sol = fd.helmholtz_2d(fd.on_grid(lambda p: -self.source(p)), omega=self.k, c=1.0, bounds=self.bounds,
                                  n=(resolution, resolution), pml_width=None, g=exact, order=4)
        except ResolutionError as err:
            side = max(hi - lo for lo, hi in self.bounds)
            raise _resolution_error(err, resolution, side) from err
        u = sol.fields["u"].real
        u_exact = exact(*np.meshgrid(sol.coords["x"], sol.coords["y"], indexing="ij"))
        error = float(np.linalg.norm(u - u_exact) / np.linalg.norm(u_exact))  # <u^2> > 0 is checked in __init__
        return sol.to_reference(fields={"u": u}, attrs={"error_estimate": error, "error_method": "exact"})


# ============================================================================================
class HelmholtzPointSource(Problem):
    """A point source in a velocity model, surrounded by a perfectly matched layer
    (the SIREN Helmholtz experiment, Sitzmann et al. 2020, Sec. 4.3).

    With time dependence exp(-i omega t) and the conventions of
    :mod:`pinn_sine.validation.fd.pml`, on the domain [-1, 1]^2 (the layer included):

        sum_{a = x, y} [ (1/s_a^2) u_aa - (s_a'/s_a^3) u_a ] + (omega / c(x, y))^2 u = -f,
        s_a = 1 + i sigma_a / omega,   sigma_a = pml_strength (d_a / pml_width)^3,
        f = exp(-|p - p0|^2 / (2 w^2)) / (2 pi w^2)     (a Gaussian of unit integral),
        u = 0 on the outer boundary,

    where d_a is the distance into the layer along axis a (s = 1 in the physical region
    [-1 + pml_width, 1 - pml_width]^2, where the equation is Lap u + k^2 u = -f). The
    operator is the non-conservative form of the FD solver's flux form
    (:func:`~pinn_sine.validation.fd.helmholtz.helmholtz_2d`) with the same sigma, so
    the PINN and the reference solve the same problem, the outer Dirichlet wall
    included. (A default layer returns exp(-2 strength width / (4 c)) = 3e-7 of a
    normal-incidence wave's amplitude, so the field in the physical region is the
    free-space one; a weaker layer's echo would be in both solutions alike.)

    The complex field is two real outputs, (u_real, u_imag); the loss splits the
    complex residual into its real and imaginary parts (module docstring for scales):
        "pde":      mean |residual|^2 / E[f^2]
        "boundary": mean |u|^2 / <|G|^2>     (outer boundary)

    Sampling: the interior set holds ``source_fraction`` of its points uniformly in the
    disc of radius ``source_radius * source_width`` around the source (clipped to the
    domain), as the SIREN code does, and the rest uniformly over the whole domain
    (layer included).

    Scattered-field formulation (``formulation="scattered"``; Song & Alkhalifah 2021,
    "Solving the frequency-domain acoustic VTI wave equation using physics-informed
    neural networks"): the network is u_s = u - u_b, where u_b is the field of the
    same source in the uniform background speed c0 (``background_velocity``, default
    c at the source), known exactly (:mod:`pinn_sine.problems.background`, Graf's
    addition theorem): Lap u0 + k0^2 u0 = -f, k0 = omega / c0, continued into the layer
    as u_b(x) = u0(x~) with the layer's complex coordinates x~ (dx~_a/dx_a = s_a), so
    that the stretched operator L_s acts on it as the Laplacian in x~. Then

        L_s u_s + (omega/c)^2 u_s + f_s = 0,
        f_s = (omega^2/c^2 - omega^2/c0^2) u_b + f 1[r >= 9 w]     (r = |x - x0|),
        u_s = -u_b on the outer boundary,

    the same equation as the total formulation's for u = u_b + u_s (L_s u_b + k^2 u_b + f
    = f_s exactly: Graf's formula solves for f within 9 source widths and the far-field
    Hankel form for 0 beyond, where f < 2.6e-18 of its peak); f_s is smooth wherever c
    is, and zero for a uniform c = c0, so the nearly singular source is gone from what
    the network learns. The losses are those of u = u_b + u_s (the same scales), so the
    two formulations' loss values mean the same. f_s at the interior points and u_b at
    the boundary points are computed when a batch is drawn (its data entries
    "f_scattered" and "u0_boundary", float64), :meth:`predict` adds u_b to the
    network's output, so the reference (the total field), ``evaluate``, the figures
    and ``export`` judge both formulations alike. The layer must lie beyond 9 source
    widths of the source (ValueError otherwise). At 120 s (float64 SIREN 32x3, 300 Adam
    steps then Gauss-Newton, benchmarks/helmholtz.py --formulations): uniform 2.6e-3
    (total) against 3.4e-5 (scattered; u_b alone is the solution there, 3.8e-7 against
    the reference), square (edges 0.02, c0 = 2) 8.9e-3 against 5.2e-3 (after 1000 Adam
    steps: 1.05e-2 against 1.24e-2; one seed each). The default stays "total".

    The reference is the FD solution on a ``resolution``^2 node grid of [-1, 1]^2 with
    fields "u_real", "u_imag" and mask = the physical region (errors exclude the layer):
    order 4 by Richardson extrapolation of the 5-point solutions at ``resolution`` and
    ``2 resolution - 1`` (``resolution - 1`` even), with ``attrs["error_estimate"]`` the
    Richardson estimate over the physical region; an array velocity (given on one grid
    only) gets the order-2 solution and no estimate.

    Defaults: omega = 10 and width 0.05, so the physical region is 1.6 wavelengths
    across and the whole domain 3.2 (SIREN used omega = 20 and width 0.01, which takes
    far longer to train: ``preset="siren"``, :meth:`siren_case`); a 257^2 reference has
    80 points per wavelength (40 for the SIREN case, where the Richardson estimate of
    the 257^2 reference is 4.4e-5 (uniform), 3.8e-5 (square) and 4.2e-5 (circle, both
    with edges 0.02), 9.9e-7 and 7.4e-7 at 513^2; with sharp edges the estimate does not
    hold: the 257^2 and 513^2 solutions of the sharp square differ by 1.9e-2 over the
    physical region, as a jump in c breaks the smooth error expansion that Richardson
    extrapolation assumes). A 64 x 3 SIREN
    (first omega 10) reached 3.3e-3 (uniform) and 1.3e-2 (square) rel L2 against it over
    the physical region after 2000 Adam steps (benchmarks/helmholtz.py).

    Args:
        omega: angular frequency (> 0); the wavenumber is omega / c; default 10 (20 under
            preset="siren").
        velocity: the wave speed c(x, y) > 0: "uniform" (c = 1), "square" (c = 2 in
            |x|, |y| < 0.3, else 1), "circle" (c = 2 in r < 0.1, else 1), both with
            edges smoothed over ``velocity_edge``, a positive
            number (uniform), a callable ``c(x, y)`` on torch tensors of shape (n,)
            returning (n,) or a scalar (checked positive on a 65 x 65 grid; the FD
            reference calls it on its grid as tensors), or an array (m, m) of speeds on
            the node grid ``linspace(-1, 1, m)`` per axis (ij indexing), interpolated
            bilinearly for the network; its reference must use resolution m.
        velocity_edge: the inclusions' edge width e >= 0: c = 1 + (2 - 1) S with
            S = sigmoid((0.3 - |x|)/e) sigmoid((0.3 - |y|)/e) (square) or
            sigmoid((0.1 - r)/e) (circle); 0 gives SIREN's sharp edge. A sharp jump in
            c puts a jump in Lap u that a smooth network cannot follow: 1000 SIREN steps
            (source_fraction 0.2) reached 0.26 rel L2 with e = 0 and 0.088 with e = 0.02.
        source_center: (x0, y0) inside the physical region, or a list of such pairs:
            several sources, one experiment each in the same medium (the network has
            2S outputs, (Re, Im) of source s's field at 2s, 2s + 1; the residual, the
            background and the reference field "u", "u2", ... of each are the
            single-source problem's; the loss scales are the sources' mean; figures show
            the first source). What an inverse problem recovers from several
            illuminations: one velocity seen by all of them.
        source_width: the Gaussian's standard deviation w (> 0); default 0.05 (0.01 under
            preset="siren").
        pml_width: layer thickness on each side, 0 < pml_width < 1 (default 0.5).
        pml_strength: sigma at the outer boundary (>= 0); the default 60 makes the layer
            reflectionless to the reference's accuracy (see DEFAULT_PML_STRENGTH); the
            profile is validation.fd.pml's DEFAULT_PROFILE (cubic).
        sampler: sampler of the uniform interior points, "uniform", "sobol" or "lhs".
        boundary_fraction: outer-boundary points per interior point (> 0).
        source_fraction: share of the interior points near the source, in [0, 1).
            (1000 SIREN steps, uniform velocity: 0.05 gave 1.2e-2 rel L2, 0.2 gave 3.7e-2;
            with none, 2% of uniform points fall within 3 widths of the source.)
        source_radius: radius of the disc of the source_fraction points, in source widths (> 0).
        constraint: "soft" only: there are no Dirichlet data to build into the network
            (the source enters through the equation, the layer damps what leaves); "hard"
            raises.
        formulation: "total" (the network is u) or "scattered" (the network is u - u_b,
            u_b the exact field of the source in the uniform speed c0; predictions add
            u_b back).
        background_velocity: c0 of the scattered formulation's background (> 0; only
            with formulation="scattered"; a list: one per source); None: the velocity
            model's value at each source. Required to recover an unknown "velocity" in
            the scattered formulation (f_s then follows the trainable c).
        preset: a named configuration that sets omega and source_width: None (10 and
            0.05) or "siren" (SIREN's case: 20 and 0.01); giving omega or source_width
            with another value than the preset's raises. omega and source_width default
            to the preset's values.
    """

    name = "helmholtz-point-source"
    unknown_parameters = {"omega": 0.0, "velocity": None}
    bad_params = ({"omega": 0.0}, {"source_width": -0.1}, {"pml_strength": -1.0}, {"velocity": 0.0},
                  {"formulation": "incident"}, {"preset": "sitzmann"}, {"background_velocity": 1.5})
    check_resolution = 41
    input_names = ("x", "y")
    out_dim = 2
    default_resolution = 257
    #: the domain [-1, 1]^2, layer included (also the inputs' ``bounds``)
    domain = ((-1.0, 1.0), (-1.0, 1.0))
    bounds = domain
    # SIREN (hidden omega 30), 64 x 3, batch 1024, 1000 Adam steps, square velocity with
    # sharp edges, source_fraction 0.2: first omega 10 and 20 both gave 0.26 rel L2; lr
    # 3e-3 gave 0.73 against 0.26 at lr 1e-3.
    default_first_omega = 10.0
    default_lr = 1e-3

    def __init__(self, omega: float | None = None, *, velocity="uniform", velocity_edge: float = DEFAULT_EDGE,
                 source_center=(0.0, 0.0), source_width: float | None = None,
                 pml_width: float = DEFAULT_PML_WIDTH, pml_strength: float = DEFAULT_PML_STRENGTH,
                 sampler: str = "uniform", boundary_fraction: float = 0.25,
                 source_fraction: float = 0.05, source_radius: float = 3.0, constraint: str = "soft",
                 formulation: str = "total", background_velocity: float | None = None, preset: str | None = None):
        if preset not in PRESETS:
            raise ValueError(f"Invalid preset {preset!r}. Must be one of {list(PRESETS)} (None: the default case, "
                             "omega 10 and source width 0.05; 'siren': SIREN's, omega 20 and width 0.01).")
        self.preset = preset
        given = {"omega": omega, "source_width": source_width}
        for key, value in given.items():
            if value is None:
                given[key] = PRESETS[preset][key]
            elif preset is not None and value != PRESETS[preset][key]:
                raise ValueError(f"{key}={value!r} contradicts preset={preset!r}, which sets {key}="
                                 f"{PRESETS[preset][key]!r}; drop {key} (or the preset, and give every value).")
        omega, source_width = given["omega"], given["source_width"]
        if constraint != "soft":
            raise ValueError(f"HelmholtzPointSource has no hard constraint (got constraint={constraint!r}): it has no "
                             "Dirichlet data to build into the network; the point source enters through the "
                             "equation and the PML damps the outgoing waves (the outer wall's u = 0 is the soft "
                             "'boundary' term). Use constraint='soft'.")
        self.omega = positive("omega", omega, "the angular frequency must be positive, e.g. omega=10.0.")
        self.width = positive("source_width", source_width, "use e.g. source_width=0.05.")
        side = min(hi - lo for lo, hi in self.domain)
        self.pml_width = positive("pml_width", pml_width, "use e.g. pml_width=0.5.")
        if not 2 * self.pml_width < side:
            raise ValueError(f"pml_width={pml_width!r} leaves no physical region: the domain [-1, 1]^2 has side "
                             f"{side:g} and the layer covers pml_width on each side; use pml_width < {side / 2:g}, "
                             "e.g. 0.5.")
        self.pml_strength = non_negative("pml_strength", pml_strength, "a negative sigma amplifies outgoing waves",
                                         "use e.g. 5.0.")
        self.physical = tuple((lo + self.pml_width, hi - self.pml_width) for lo, hi in self.domain)
        self.centers = parse_centers(source_center)
        (px0, px1), (py0, py1) = self.physical
        for x0, y0 in self.centers:
            if not (px0 < x0 < px1 and py0 < y0 < py1):
                raise ValueError(f"source_center=({x0:g}, {y0:g}) is outside the physical region ({px0:g}, {px1:g}) x "
                                 f"({py0:g}, {py1:g}) of the domain [-1, 1]^2 (the PML takes pml_width="
                                 f"{self.pml_width:g} on each side); place the source inside it, e.g. (0.0, 0.0).")
        self.center = self.centers[0]
        self.n_sources = len(self.centers)
        self.out_dim = 2 * self.n_sources  # (Re u_s, Im u_s) for each source s, in order
        if sampler not in sampling.METHODS:
            raise ValueError(f'Invalid sampler "{sampler}". Must be one of {list(sampling.METHODS)}.')
        self.sampler = sampler
        self.boundary_fraction = positive("boundary_fraction", boundary_fraction,
                                          "the outer wall u = 0 needs points, use e.g. 0.25.")
        if isinstance(source_fraction, (bool, str)) or not isinstance(source_fraction, numbers.Real) \
                or not 0 <= source_fraction < 1:
            raise ValueError(f"source_fraction must be in [0, 1) (a number: the share of interior points near the "
                             f"source), got source_fraction={source_fraction!r}; use e.g. 0.2.")
        self.source_fraction = float(source_fraction)
        self.source_radius = positive("source_radius", source_radius, "use e.g. source_radius=3.0 (in widths).")
        self._init_velocity(velocity, velocity_edge)
        self._init_formulation(formulation, background_velocity)
        self.derivatives = {"interior": DerivativeSpec(first=("x", "y"), second=(("x", "x"), ("y", "y"))),
                            "boundary": DerivativeSpec()}
        self._f2 = self._source_scale()
        self._u2 = self._green_scale()

    @classmethod
    def siren_case(cls, velocity="square", *, sharp: bool = True, **kwargs) -> "HelmholtzPointSource":
        """SIREN's Helmholtz case (``preset="siren"``: omega 20, source width 0.01) in the
        velocity model ``velocity`` ("uniform", "square" or "circle"), with SIREN's sharp
        inclusion edges (``sharp``: velocity_edge = 0) or edges smoothed over the default
        0.02 (what a smooth network and the reference's Richardson estimate need; class
        docstring). Other keywords go to the constructor. From the command line:
        ``pinn-sine solve helmholtz-point-source --preset siren --velocity square
        --velocity-edge 0``."""
        if velocity in ("square", "circle"):
            kwargs.setdefault("velocity_edge", 0.0 if sharp else DEFAULT_EDGE)
        elif not sharp:
            raise ValueError(f"sharp=False smooths the edges of the inclusions 'square' and 'circle'; velocity="
                             f"{velocity!r} has none. Leave sharp at its default.")
        return cls(preset="siren", velocity=velocity, **kwargs)

    # ----- the scattered-field formulation --------------------------------------------------
    def _init_formulation(self, formulation: str, background_velocity) -> None:
        if formulation not in FORMULATIONS:
            raise ValueError(f'Invalid formulation "{formulation}". Must be one of {list(FORMULATIONS)}: the network '
                             "is the total field u, or the scattered field u - u_b around the analytic background.")
        self.formulation = formulation
        if background_velocity is not None and formulation != "scattered":
            raise ValueError(f"background_velocity={background_velocity!r} sets c0 of the scattered formulation's "
                             f"background field; formulation={formulation!r} has none. Use formulation='scattered' "
                             "or leave background_velocity at None.")
        centres = torch.tensor(self.centers, dtype=torch.float64)
        if background_velocity is None:  # c at each source
            self.c0s = tuple(float(v) for v in self.speed_values(centres)[:, 0])
            self.background_velocity = None
        else:
            several = not isinstance(background_velocity, (numbers.Real, str)) and np.ndim(background_velocity) == 1
            values = list(background_velocity) if several else [background_velocity]
            if several and len(values) != self.n_sources:
                raise ValueError(f"background_velocity has {len(values)} entries for {self.n_sources} source(s); give "
                                 "one c0 for all or one per source.")
            values = [positive("background_velocity", v, "give the wave speed c0 > 0 of the background, or None "
                               "for the velocity model's value at the source.") for v in values]
            self.background_velocity = values if several else values[0]
            self.c0s = tuple(values) if several else (values[0],) * self.n_sources
        self.c0 = self.c0s[0]
        far = FAR_WIDTHS * self.width
        (px0, px1), (py0, py1) = self.physical
        gap, closest = min((min(x0 - px0, px1 - x0, y0 - py0, py1 - y0), (x0, y0)) for x0, y0 in self.centers)
        if formulation == "scattered" and gap < far:
            raise ValueError(f"formulation='scattered' needs the PML at least {FAR_WIDTHS:g} source widths "
                             f"({far:g}) from the source, where its field is the analytic far field; source_center="
                             f"{closest} is {gap:g} from the layer (pml_width={self.pml_width:g}). Move the source "
                             f"inward, narrow it (source_width <= {gap / FAR_WIDTHS:.4g}) or thin the layer.")
        self.background_fields = tuple(GaussianBackground(self.omega / c0, self.width, centre)
                                       for c0, centre in zip(self.c0s, self.centers))
        self.background_field = self.background_fields[0]
        self._layer = {"bounds": self.domain, "width": self.pml_width, "strength": self.pml_strength,
                       "omega": self.omega, "profile": DEFAULT_PROFILE}
        self._background_cache: OrderedDict = OrderedDict()

    def _background_arrays(self, x: Tensor, derivatives: bool = False) -> list[dict[str, np.ndarray]]:
        """:meth:`GaussianBackground.field` of each source at x (n, 2) with this problem's
        layer (float64), one dict per source."""
        pts = x.detach().to("cpu", torch.float64).numpy()
        return [bg.field(pts, layer=self._layer, derivatives=derivatives) for bg in self.background_fields]

    @staticmethod
    def _parts(arrays: list[dict[str, np.ndarray]], key: str) -> Tensor:
        """The complex arrays ``key`` of each source as real columns (n, 2S): Re, Im of
        source 1, then of source 2, ..."""
        return torch.from_numpy(np.concatenate([np.stack([a[key].real, a[key].imag], axis=1) for a in arrays], axis=1))

    def background(self, x: Tensor, *, derivatives: bool = False):
        """The background field u_b at the points x (n, 2): its real and imaginary parts,
        (n, 2) float64 on x's device ((n, 2S) with S sources: Re, Im of each in turn;
        class docstring: u0 of the source in the uniform speed c0, continued into the
        layer as u0(x~)). With ``derivatives``, a dict of
        such (n, 2) tensors: "u", "u_x", "u_y", "u_xx", "u_yy", "u_xy" (derivatives in the
        physical coordinates x, y, which inside the layer include the stretch). Kept per
        point set (by content) for the last few sets, so that the reference grid's is
        computed once."""
        pts = x.detach().to("cpu", torch.float64).contiguous()
        key = (hashlib.sha1(pts.numpy().tobytes()).hexdigest(), tuple(pts.shape), derivatives)
        out = self._background_cache.get(key)
        if out is None:
            arrays = self._background_arrays(pts, derivatives)
            names = ("u", "u_x", "u_y", "u_xx", "u_yy", "u_xy") if derivatives else ("u",)
            out = {k: self._parts(arrays, k) for k in names}
            self._background_cache[key] = out
            while len(self._background_cache) > BACKGROUND_CACHE_SIZE:
                self._background_cache.popitem(last=False)
        else:
            self._background_cache.move_to_end(key)
        out = {k: v.to(x.device) for k, v in out.items()}
        return out if derivatives else out["u"]

    def scattered_source(self, x: Tensor) -> Tensor:
        """f_s = (omega^2/c^2 - omega^2/c0^2) u_b + f 1[r >= 9 w] at x (n, 2): the source
        term of the scattered formulation (class docstring), real and imaginary parts,
        (n, 2) float64 ((n, 2S) with S sources, each with its own u_b, c0 and f)."""
        xd = x.detach().to("cpu", torch.float64)
        u_b, rest = self._scattered_parts(xd)
        return self._scattered_from(self.speed_values(xd), u_b, rest).to(x.device)

    def _scattered_parts(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """u_b and f 1[r >= 9 w] (the source beyond the background formula's reach) at x
        (n, 2), each (n, 2S) float64 (Re, Im of each source; the latter's Im is 0)."""
        f = self.source(x)
        backgrounds = self._background_arrays(x)
        rest = []
        for s, arrays in enumerate(backgrounds):
            # f - f_b: f where the background's formula has no source (beyond 9 widths), else 0
            far = torch.from_numpy(arrays["f_b"] == 0).reshape(-1, 1)
            r = torch.where(far, f[:, s:s + 1], torch.zeros((), dtype=torch.float64))
            rest.append(torch.cat([r, torch.zeros_like(r)], dim=1))
        return self._parts(backgrounds, "u"), torch.cat(rest, dim=1)

    def _scattered_from(self, c: Tensor, u_b: Tensor, rest: Tensor) -> Tensor:
        """f_s from the speeds c (n, 1) and :meth:`_scattered_parts` (differentiable in c:
        a trainable velocity's scattered source)."""
        inv_c0 = torch.tensor([1 / c0 ** 2 for c0 in self.c0s for _ in (0, 1)], dtype=c.dtype, device=c.device)
        return self.omega ** 2 * (1 / c ** 2 - inv_c0) * u_b.to(c.dtype) + rest.to(c.dtype)

    def observable(self, u: Tensor, x: Tensor) -> Tensor:
        """The total field (observations measure it): u, plus the background u_b under the
        scattered formulation."""
        if self.formulation != "scattered":
            return u
        return u + self.background(x).to(u.dtype)

    # ----- the velocity model --------------------------------------------------------------
    def _init_velocity(self, velocity, edge) -> None:
        self.speed_model = model = VelocityModel(velocity, edge=edge, label="velocity")
        self.velocity_name, self.velocity_edge = model.name, model.edge
        self.c, self.c_fn, self.c_array, self.c_min = model.c, model.c_fn, model.array, model.c_min

    def speed_values(self, x: Tensor) -> Tensor:
        """c at the points x (n, 2) -> (n, 1), in x's dtype: the trainable expansion where
        "velocity" is unknown (:meth:`velocity_expansion`)."""
        if "velocity" in self.unknowns:
            return self.velocity_expansion()(self.coefficient("velocity"), x[:, 0:1], x[:, 1:2]).to(x.dtype)
        return self.speed_model.values(x)

    # ----- inverse problems -----------------------------------------------------------
    def velocity_expansion(self, modes: int | None = None):
        """The cosine expansion (:class:`~pinn_sine.problems.expansion.CosineExpansion`)
        an unknown "velocity" of M^2 coefficients models c with, over the whole domain
        (layer included), around c0 = the geometric mean of the defining model there."""
        from .expansion import problem_expansion

        return problem_expansion(self, self.domain, lambda x, y: self.speed_model.values(torch.cat([x, y], dim=1)),
                                 modes)

    def _check_unknown(self, unknown) -> None:
        if self.formulation == "scattered" and (unknown.name != "velocity" or self.background_velocity is None):
            raise ValueError("HelmholtzPointSource: under formulation='scattered' only an unknown 'velocity' with a "
                             "given background_velocity c0 can be recovered (the background field is computed "
                             "from omega and c0, so they must be known; by default c0 is the defining velocity at "
                             "the source). Give background_velocity=..., or use formulation='total'.")
        if self.unknowns:
            raise ValueError(f"HelmholtzPointSource: {sorted(self.unknowns)} is unknown already; declare one of "
                             "'omega' and 'velocity'.")
        if unknown.name == "omega":
            super()._check_unknown(unknown)
            return
        from .expansion import check_velocity_unknown

        check_velocity_unknown(self, unknown)

    def unknown_truth(self, name: str):
        """For "velocity": the coefficients of the defining model in the expansion."""
        if name == "velocity":
            expansion = self.velocity_expansion()
            return expansion.project(lambda x, y: self.speed_model.values(torch.cat([x, y], dim=1))).tolist()
        return super().unknown_truth(name)

    # ----- data -------------------------------------------------------------------------
    def source(self, x: Tensor) -> Tensor:
        """f at x (n, 2) -> (n, S): column s the Gaussian of width w and unit integral
        about source s (one column for the usual single source)."""
        return torch.cat([self._source_column(x, s) for s in range(self.n_sources)], dim=1)

    def _source_column(self, x: Tensor, s: int) -> Tensor:
        x0, y0 = self.centers[s]
        r2 = (x[:, 0:1] - x0) ** 2 + (x[:, 1:2] - y0) ** 2
        return torch.exp(-r2 / (2 * self.width ** 2)) / (2 * math.pi * self.width ** 2)

    def pml_coefficients(self, x: Tensor) -> dict[str, Tensor]:
        """The stretched operator's coefficients at x (n, 2), per axis a in ("x", "y"):
        1/s_a^2 and -s_a'/s_a^3 as real and imaginary parts, each (n, 1) in x's dtype.

        With q = sigma/omega and p = sigma'/omega (s = 1 + i q, s' = i p):
            1/s^2    = (1 - q^2 - 2 i q) / (1 + q^2)^2
            -s'/s^3  = (p (q^3 - 3 q) - i p (1 - 3 q^2)) / (1 + q^2)^3
        written in real arithmetic so that the loss has no complex tensors."""
        out = {}
        for k, (a, (lo, hi)) in enumerate(zip(("x", "y"), self.domain)):
            xa = x[:, k:k + 1]
            # The FD reference uses the same profile (DEFAULT_PROFILE), hence the same layer.
            q = pml_sigma(xa, lo, hi, self.pml_width, self.pml_strength, DEFAULT_PROFILE) / self.omega
            p = pml_sigma_prime(xa, lo, hi, self.pml_width, self.pml_strength, DEFAULT_PROFILE) / self.omega
            d = 1 + q * q
            out[f"a{a}_re"] = (1 - q * q) / d ** 2
            out[f"a{a}_im"] = -2 * q / d ** 2
            out[f"b{a}_re"] = p * (q ** 3 - 3 * q) / d ** 3
            out[f"b{a}_im"] = -p * (1 - 3 * q * q) / d ** 3
        return out

    def residual(self, jet: Jet, x: Tensor, source: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Real and imaginary parts of L_s u + (omega/c)^2 u + f at x (n, 2), each (n, S)
        (column s: source s's field, network outputs 2s and 2s + 1, against its f);
        ``source`` (n, 2S), real and imaginary parts in turn, in place of f (the
        scattered formulation's f_s, with u the scattered field)."""
        coef = self.pml_coefficients(x)  # the layer's stretch keeps the defining omega (a numerical device)
        k2 = (self.coefficient("omega") / self.speed_values(x)) ** 2
        re = k2 * jet.u[:, 0::2] + (self.source(x) if source is None else source[:, 0::2])
        im = k2 * jet.u[:, 1::2] + (0.0 if source is None else source[:, 1::2])
        for a in ("x", "y"):
            u_aa, u_a = jet.d2(a, a), jet.d(a)
            ar, ai, br, bi = coef[f"a{a}_re"], coef[f"a{a}_im"], coef[f"b{a}_re"], coef[f"b{a}_im"]
            re = re + ar * u_aa[:, 0::2] - ai * u_aa[:, 1::2] + br * u_a[:, 0::2] - bi * u_a[:, 1::2]
            im = im + ar * u_aa[:, 1::2] + ai * u_aa[:, 0::2] + br * u_a[:, 1::2] + bi * u_a[:, 0::2]
        return re, im

    def sample(self, n: int, generator: torch.Generator, *, progress: float = 1.0) -> dict[str, Tensor]:
        """The interior and outer-wall points; under the scattered formulation also the
        data "f_scattered" (f_s at the interior points) and "u0_boundary" (u_b at the wall
        points), (n, 2S) float64, computed here once per draw; with an unknown velocity,
        "u0_interior" and "f_rest" (:meth:`_scattered_parts`) in place of "f_scattered",
        which the residual completes with the trainable c."""
        batch = self._points(n, generator)
        if self.formulation == "scattered":
            if "velocity" in self.unknowns:  # f_s follows the trainable c
                batch["u0_interior"], batch["f_rest"] = self._scattered_parts(batch["interior"].double())
            else:
                batch["f_scattered"] = self.scattered_source(batch["interior"])
            batch["u0_boundary"] = self._parts(self._background_arrays(batch["boundary"]), "u")
        return batch

    def _points(self, n: int, generator: torch.Generator) -> dict[str, Tensor]:
        n_s = int(round(self.source_fraction * n))
        xu = sampling.box(n - n_s, self.domain, generator, self.sampler)
        S = self.n_sources
        counts = [n_s // S + (s < n_s % S) for s in range(S)]  # the near-source points shared out
        xs = torch.cat([clip(sampling.near_point(k, centre, self.source_radius * self.width, generator), self.domain)
                        for k, centre in zip(counts, self.centers)])
        n_b = max(1, int(round(self.boundary_fraction * n)))
        return {"interior": torch.cat([xu, xs]), "boundary": sampling.box_boundary(n_b, self.domain, generator)}

    def _interior_residual(self, jets: dict[str, Jet], batch: dict[str, Tensor]) -> Tensor:
        """(Re, Im) of the stretched residual / sqrt(<f^2>) at the interior points (n, 2)
        (of u_b + u_s under the scattered formulation: the source f_s in place of f)."""
        ji = jets["interior"]
        x = batch["interior"]
        source = None
        if self.formulation == "scattered" and "velocity" in self.unknowns:
            parts = ((batch["u0_interior"], batch["f_rest"]) if "u0_interior" in batch
                     else self._scattered_parts(x.detach().to("cpu", torch.float64)))
            source = self._scattered_from(self.speed_values(x.to(ji.u.dtype)), *(t.to(x.device) for t in parts))
        elif self.formulation == "scattered":
            source = batch["f_scattered"] if "f_scattered" in batch else self.scattered_source(x)
            source = source.to(ji.u.dtype)
        re, im = self.residual(ji, x.to(ji.u.dtype), source)
        # interleaved as the outputs: (Re, Im) of source 1, then of source 2, ...
        return torch.stack([re, im], dim=2).reshape(re.shape[0], -1) / math.sqrt(self._f2)

    def _boundary_residual(self, jets: dict[str, Jet], batch: dict[str, Tensor]) -> Tensor:
        """(u_re, u_im) / sqrt(<|G|^2>) at the outer-wall points (n_b, 2): the field
        vanishes on the outer wall of the layer (u = u_b + u_s under the scattered
        formulation)."""
        u = jets["boundary"].u
        if self.formulation == "scattered":
            u_b = batch["u0_boundary"] if "u0_boundary" in batch else self.background(batch["boundary"])
            u = u + u_b.to(u.dtype)
        return u / math.sqrt(self._u2)

    def terms(self) -> tuple[Term, ...]:
        """"pde" at the interior points and "boundary" on the outer wall."""
        return (Term("pde", ("interior",), "pde", self._interior_residual),
                Term("boundary", ("boundary",), "boundary", self._boundary_residual))

    def _source_scale(self) -> float:
        """E[f^2] over the interior sampler (65536 points, fixed seed)."""
        pts = self._points(65536, torch.Generator().manual_seed(0))["interior"].double()
        return float((self.source(pts) ** 2).mean())

    def _green_scale(self) -> float:
        """<|(i/4) H0(k r)|^2> over the physical region (k = omega / c at the source,
        r floored at the source width), the size of a unit source's field."""
        from scipy.special import hankel1

        pts = grid_points(self.physical, 101).numpy()
        speeds = self.speed_values(torch.tensor(self.centers, dtype=torch.float64))[:, 0].tolist()
        scales = []
        for (x0, y0), c in zip(self.centers, speeds):  # the mean over the sources (one value for one)
            r = np.maximum(np.hypot(pts[:, 0] - x0, pts[:, 1] - y0), self.width)
            scales.append(float(np.mean(np.abs(0.25 * hankel1(0, self.omega / c * r)) ** 2)))
        return float(np.mean(scales))

    # ----- reference --------------------------------------------------------------------
    def params(self) -> dict:
        velocity = self.speed_model.params("velocity")
        # the default formulation is left out, so runs and caches from before it existed still match
        several = self.n_sources > 1
        scattered = ({"formulation": "scattered", "background_velocity": list(self.c0s) if several else self.c0}
                     if self.formulation == "scattered" else {})
        centers = [list(c) for c in self.centers] if several else list(self.center)
        return {"omega": self.omega, **velocity, "source_center": centers, "source_width": self.width,
                "pml_width": self.pml_width, "pml_strength": self.pml_strength, **scattered}

    def reference_params(self, resolution: int | None) -> dict:
        """As :meth:`Problem.reference_params`, without the formulation and background:
        they change what the network represents, not the solution, so both formulations
        share one reference (the total field)."""
        params = super().reference_params(resolution)
        return {k: v for k, v in params.items() if k not in ("formulation", "background_velocity")}

    def predict(self, net, ref: ReferenceField) -> dict[str, np.ndarray]:
        """The total field on ``ref``'s points: the network's output, plus the background
        u_b under the scattered formulation."""
        pred = super().predict(net, ref)
        if self.formulation != "scattered":
            return pred
        u_b = self.background(torch.from_numpy(np.asarray(ref.points(), dtype=np.float64))).numpy()
        for name, cols in ref.columns().items():
            pred[name] = pred[name] + u_b[:, cols].reshape(pred[name].shape)
        return pred

    @property
    def default_reference_resolution(self) -> int:
        return self.c_array.shape[0] if self.c_array is not None else self.default_resolution

    def compute_reference(self, resolution: int) -> ReferenceField:
        if self.c_array is not None and self.c_array.shape != (resolution, resolution):
            m = self.c_array.shape[0]
            raise ValueError(f"the velocity array has shape {self.c_array.shape}, which does not match the reference "
                             f"grid ({resolution}, {resolution}); use resolution={m} (the array's own grid).")
        side = min(hi - lo for lo, hi in self.domain)
        h = side / (resolution - 1)
        if h * MIN_POINTS_PER_WIDTH > self.width:
            need = math.ceil(side * MIN_POINTS_PER_WIDTH / self.width) + 1
            raise ValueError(f"reference(resolution={resolution}) has h = {h:.4g}, coarser than the source width "
                             f"{self.width:g}: the Gaussian source is not resolved. Use resolution >= {need}.")
        if self.c_array is None and (resolution - 1) % 2:
            raise ValueError(f"reference(resolution={resolution}) is computed to order 4 by Richardson "
                             "extrapolation with an error estimate on the grid at 2h, which needs resolution - 1 "
                             f"even; use resolution={resolution + 1} (e.g. 129, 257, 513).")
        x = np.linspace(self.domain[0][0], self.domain[0][1], resolution)
        y = np.linspace(self.domain[1][0], self.domain[1][1], resolution)
        X, Y = np.meshgrid(x, y, indexing="ij")

        mask = np.asarray(physical_mask(X, Y, self.domain, self.pml_width))
        attrs = {"points_per_wavelength": 2 * math.pi * self.c_min / self.omega / h}
        fields, estimates, misfits = {}, [], []
        for s, centre in enumerate(self.centers):  # one solve per source: the same operator
            sol = self._reference_solve(lambda x, s=s: self._source_column(x, s), X, Y, resolution)
            u = sol.fields["u"]
            fields["u" if s == 0 else f"u{s + 1}"] = u
            estimates.append(sol.error_estimate)
            far = mask & (np.hypot(X - centre[0], Y - centre[1]) > HANKEL_R_MIN * self.width)
            if self.c is not None and far.any():
                # Uniform speed: rel L2 misfit to alpha (i/4) H0(k r), k = omega / c, with the one complex factor
                # alpha (~ exp(-(k w)^2 / 2), the Gaussian's far-field amplitude) fitted by least squares over the
                # physical region beyond HANKEL_R_MIN source widths.
                from scipy.special import hankel1

                r = np.hypot(X - centre[0], Y - centre[1])
                green = 0.25j * hankel1(0, self.omega / self.c * r[far])
                alpha = np.vdot(green, u[far]) / np.vdot(green, green)
                misfits.append(float(np.linalg.norm(u[far] - alpha * green) / np.linalg.norm(u[far])))
        if misfits:  # the worst source's
            attrs.update(hankel_misfit=max(misfits), hankel_r_min=HANKEL_R_MIN * self.width)
        if len(fields) > 1 and all(e is not None for e in estimates):  # the worst source's Richardson estimate
            attrs.update(error_estimate=float(max(estimates)), error_method="richardson")
        # (the Richardson estimate, order 4, where the solver made one; a complex field u is stored as u_real,
        # u_imag; several sources: u, u2, u3, ... in the order of the network's outputs)
        return sol.to_reference(fields=fields, mask=mask, attrs=attrs)

    def _reference_solve(self, source: Callable, X: np.ndarray, Y: np.ndarray, resolution: int):
        """The FD solution for one source f(x) (n, 2) -> (n, 1) on the node grid X, Y."""
        side = min(hi - lo for lo, hi in self.domain)
        source_on_grid = fd.on_grid(source)
        try:
            if self.c_array is not None:
                # The speeds exist on this grid only: no refinement, so order 2 and no estimate.
                return fd.helmholtz_2d(source_on_grid(X, Y), omega=self.omega, c=self.c_array, bounds=self.domain,
                                       n=(resolution, resolution), pml_width=self.pml_width,
                                       pml_strength=self.pml_strength, pml_profile=DEFAULT_PROFILE)
            # Callables, so that the solver can evaluate them on the grids at h/2 and 2h.
            return fd.helmholtz_2d(source_on_grid, omega=self.omega, c=self.speed_model.on_grid, bounds=self.domain,
                                   n=(resolution, resolution), pml_width=self.pml_width,
                                   pml_strength=self.pml_strength, pml_profile=DEFAULT_PROFILE, order=4)
        except ResolutionError as err:
            raise _resolution_error(err, resolution, side) from err
