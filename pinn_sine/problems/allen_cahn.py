"""AllenCahn1D: the periodic Allen-Cahn equation of the jaxpi benchmark, with a Fourier-ETDRK4 reference."""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from .. import sampling
from .._checks import positive
from ..constraints import Factor, HardConstraint, PowerFactor, SeparableField, ShiftedFactor, box_bubble
from ..derivatives import DerivativeSpec, Jet
from ..validation.reference import ReferenceField
from .base import Problem, Term
from .windows import InitialData, _time, check_initial, window_interval

#: how periodicity in x is imposed: by the network's input encoding, or by a loss term
PERIODICITIES = ("encoding", "soft")
#: the period of x in [-1, 1]
PERIOD = 2.0
#: grid nodes per interface width sqrt(2 eps / a) of the spectral reference (class docstring)
NODES_PER_INTERFACE = 6
#: the fewest spectral modes of a reference
MIN_MODES = 256
#: the reference's time step is DT_RATE / a: a fixed fraction of the reaction's time scale 1 / a
DT_RATE = 0.0125
#: the initial state's Fourier coefficients come from an FFT on a grid this many times finer
#: (``PeriodicGrid.project``): u0's slope jumps at x = +-1, and interpolating it at the
#: nodes leaves an aliasing error ~1e-6 that never decays (class docstring)
OVERSAMPLE = 64
#: Gauss-Legendre nodes of the spatial means of u0 that normalise the loss terms (exact for
#: the smooth u0 on [-1, 1] to rounding)
MEAN_NODES = 64


class SquareCosineFactor(Factor):
    """phi(s) = s^2 cos(pi s) (the Allen-Cahn initial value), with
    phi' = 2 s cos(pi s) - pi s^2 sin(pi s) and
    phi'' = (2 - pi^2 s^2) cos(pi s) - 4 pi s sin(pi s)."""

    def value(self, s):
        return s * s * torch.cos(math.pi * s)

    def derivatives(self, s):
        cos, sin = torch.cos(math.pi * s), torch.sin(math.pi * s)
        return (s * s * cos, 2 * s * cos - math.pi * s * s * sin,
                (2 - math.pi ** 2 * s * s) * cos - 4 * math.pi * s * sin)

    def describe(self, name):
        return f"{name}^2 cos(pi {name})"


def initial_value(x):
    """u0(x) = x^2 cos(pi x), for a tensor or an array."""
    if isinstance(x, Tensor):
        return x * x * torch.cos(math.pi * x)
    x = np.asarray(x, dtype=np.float64)
    return x * x * np.cos(np.pi * x)


class AllenCahn1D(Problem):
    """The Allen-Cahn equation with periodic boundaries (Raissi et al. 2019's data set; the
    jaxpi benchmark of Wang, Wang & Perdikaris, "An expert's guide to training
    physics-informed neural networks", 2023):

        u_t = eps u_xx - a u^3 + a u     x in [-1, 1] periodic (period 2), t in [0, t_max]
        u(0, x) = x^2 cos(pi x)

    eps = 1e-4, a = 5 (the defaults). The reaction drives u to the stable states +-1;
    fronts between them are tanh profiles of width w = sqrt(2 eps / a) (0.0063) that then
    barely move. u0 is continuous across the period (u0(+-1) = -1) but its slope is not
    (u0'(-1) = 2, u0'(1) = -2): the solution is smooth for t > 0, with a layer of width
    ~sqrt(eps t) at x = +-1 where the kink diffuses.

    Inputs ("t", "x"); point sets "interior" (needs u_t, u_xx), "initial" (t = 0) and,
    under ``periodicity="soft"``, the aligned pair "left" (t_i, -1) and "right" (t_i, 1)
    (need u_x). Loss terms, each divided by the natural scale of what it measures (means
    <.> over x in [-1, 1], by Gauss-Legendre quadrature of u0 at construction):

        "pde":      mean (u_t - eps u_xx + a u^3 - a u)^2 / <(eps u0'' + a (u0 - u0^3))^2>
                    (the size of u_t at t = 0; 0.909^2 by default)
        "initial":  mean (u - u0)^2 / <u0^2>                                 (0.378^2)
        "periodic": mean [(u(t,-1) - u(t,1))^2 / <u0^2> + (u_x(t,-1) - u_x(t,1))^2 / <u0'^2>]
                    (two columns; <u0'^2> = 1.476^2), under ``periodicity="soft"`` only.

    Periodicity: ``"encoding"`` (the default) sets ``self.periodic = {"x": 2.0}``, which
    asks ``build_net`` for a network exactly periodic in x (a periodic input encoding), and
    declares no boundary term; ``"soft"`` sets ``self.periodic = {}`` and adds "periodic".

    Hard constraint (``constraint="hard"``): u = u0(x) + (t / t_max) N(t, x), so
    u(0, x) = u0 exactly and the "initial" term and point set are gone. The time factor is
    linear: the equation is first order in t, so u_t(0) is free (the ramps of the wave
    problems would force u_t(0) = 0); near t = 0, N = u_t(0) t_max (rms 0.91 by default).
    u0 carries its slope jump into every t: with a periodic N (the encoding)
    u_x(t, -1) - u_x(t, 1) = 4 at all times, where the solution's jump is 0 for t > 0 (the
    layer at x = +-1 is ~sqrt(eps t) wide, 0.01 at t = 1). The soft initial term has no
    such bias.

    The reference: Fourier pseudo-spectral in x, ETDRK4 in t
    (:func:`~pinn_sine.validation.spectral.allen_cahn_1d`, solver "fourier-etdrk4"; Kassam
    & Trefethen 2005), the cubic term dealiased by padding to 2n nodes. Its grid follows
    the parameters: n modes, the smallest power of two >= max(256, 6 L / w) (6 nodes per
    interface width; 2048 by default, h = 9.8e-4), and steps <= 0.0125 / a (2.5e-3 by
    default); the initial state is u0's Fourier projection (an FFT on a grid 64 times
    finer: interpolating the kink at the nodes would leave an aliasing error of ~2e-6
    that never decays). The stored field is the Fourier series evaluated at the grid's x
    (spectrally accurate between nodes), at ``resolution`` equispaced times, the t = 0 row
    being u0 itself. ``attrs["error_estimate"]`` is the relative L2 difference from the
    solve with 2n modes and half the step ("error_method" "refinement"): measured 1.53e-9
    for the defaults at resolution 201. The solve with 4n modes and a quarter of the step
    differs from the default by 1.50e-9 and from the 2n one by 9.4e-11, so the estimate is
    the error; its largest entry, 1.3e-7, is at t = 0.005, x = +-1, in the kink's layer.
    ``spacing`` is the stored grid's, ``attrs["solver_spacing"]`` the solver's.

    Time windows (:meth:`window`, :func:`pinn_sine.march`): the problem on [t_start, t_max]
    from ``initial`` (:class:`~pinn_sine.problems.windows.InitialData`, a value only: the
    equation is first order in t), the "initial" term then (u - u_k(x)) / sqrt(<u0^2>) at
    t = t_start (the scales stay u0's), and the hard constraint u = u_k(x) +
    ((t - t_start) / (t_max - t_start)) N with u_k from the previous window's frozen
    network (:class:`~pinn_sine.problems.windows.NetworkField`: its value and x-derivatives
    from one forward jet), so hard-constrained windows march too. A window's reference is
    the whole problem's spectral solution on the window's times.

    Args:
        eps: diffusion coefficient (> 0).
        a: reaction coefficient (> 0; jaxpi's 5).
        t_max: final time (> 0).
        sampler: interior sampler, "uniform", "sobol" or "lhs".
        initial_fraction: initial points per interior point (> 0).
        periodic_fraction: periodic pairs per interior point (> 0), drawn under
            ``periodicity="soft"``.
        constraint: "soft" (the "initial" loss term) or "hard" (u = u0 + (t / t_max) N:
            train ``constrain(net)``).
        periodicity: "encoding" (the network is periodic in x: ``periodic = {"x": 2.0}``)
            or "soft" (the "periodic" loss term on u and u_x).
        t_start: the start of the time interval [t_start, t_max] (a window's t_k; 0: the
            whole problem).
        initial: the data at t_start (:class:`~pinn_sine.problems.windows.InitialData`);
            None: u0, for t_start = 0 only.
    """

    name = "allen-cahn1d"
    bad_params = ({"eps": 0.0}, {"a": -5.0}, {"t_max": 0.0}, {"initial_fraction": 0.0},
                  {"periodic_fraction": -1.0}, {"periodicity": "exact"})
    check_resolution = 9
    input_names = ("t", "x")
    out_dim = 1
    default_batch = 2048
    # jaxpi's 201 time slices (its x has 512; here both axes share the count)
    default_resolution = 201
    # Picked by short SIREN runs (64 x 3 on the periodic encoding, Adam with the cosine
    # schedule, batch 1024, seed 0; rel L2 against the reference at resolution 101).
    # Soft initial data, weight 100 on "initial", CausalWeights(1.0, 16), 10k steps: first
    # omega 3 / 10 / 30 reached 0.61 / 0.46 / 0.52 at lr 1e-3 and 0.52 / 0.31 / 0.41 at
    # lr 3e-4 (omega 10 at lr 1e-4: 0.52); without the weight and the causal sum every
    # omega stalled at 0.90-0.92 (1500 steps, the initial term unfitted). Hard initial
    # data, 2k steps: (omega, lr) (30, 1e-3) 0.032, (10, 1e-3) 0.063, (10, 3e-4) 0.075,
    # (30, 3e-4) 0.088, (3, 3e-4) 0.52; 10k steps: (10, 3e-4) 0.036, (10, 1e-3) 0.090,
    # (30, 1e-3) 0.51 (it left the solution). (10, 3e-4) is the one good in every run.
    default_first_omega = 10.0
    default_lr = 3e-4
    offers_hard_constraint = True
    #: ``pinn-sine solve allen-cahn1d``'s set-up (README, "Nonlinear PDEs";
    #: benchmarks/nonlinear.py): the initial data built in (``--constraint hard``) and the
    #: periodic encoding, a float64 SIREN 32 x 3 (first omega 10; 2273 parameters), 1000
    #: Adam steps, then Gauss-Newton on 2048 points redrawn every 25 steps: 9.6e-4 in 450 s
    #: where Adam reached 2.9e-2 and Adam + L-BFGS 1.4e-2. Gauss-Newton steps take about
    #: 0.4 s each on one thread, so about 10 minutes.
    recipe = {"constraint": "hard", "width": 32, "depth": 3, "dtype": "float64", "stall": "off",
              "stage": ["adam:steps=1000", "gauss_newton:steps=1500,batch=2048,resample_every=25"]}

    def __init__(self, eps: float = 1e-4, a: float = 5.0, *, t_max: float = 1.0, sampler: str = "uniform",
                 initial_fraction: float = 0.25, periodic_fraction: float = 0.25, constraint: str = "soft",
                 periodicity: str = "encoding", t_start: float = 0.0, initial: InitialData | None = None):
        self.eps = positive("eps", eps, "the diffusion coefficient must be positive, e.g. eps=1e-4.")
        self.a = positive("a", a, "the reaction coefficient must be positive, e.g. a=5.0.")
        self.t_max = positive("t_max", t_max, "use e.g. t_max=1.0.")
        if sampler not in sampling.METHODS:
            raise ValueError(f'Invalid sampler "{sampler}". Must be one of {list(sampling.METHODS)}.')
        self.sampler = sampler
        self.initial_fraction = positive("initial_fraction", initial_fraction,
                                         "the initial condition needs points: use e.g. initial_fraction=0.25.")
        self.periodic_fraction = positive("periodic_fraction", periodic_fraction,
                                          "use e.g. periodic_fraction=0.25 (periodicity='soft' needs pairs).")
        if periodicity not in PERIODICITIES:
            raise ValueError(f'Invalid periodicity "{periodicity}". Must be one of {list(PERIODICITIES)}.')
        self.periodicity = periodicity
        self.periodic = {"x": PERIOD} if periodicity == "encoding" else {}
        self.t_start = _time("t_start", t_start)
        if not self.t_start < self.t_max:
            raise ValueError(f"t_start must be in [0, t_max) = [0, {self.t_max:g}), got t_start={self.t_start:g}; a "
                             "window [t_start, t_max] needs t_start < t_max.")
        if self.t_start and initial is None:
            raise ValueError(f"t_start={self.t_start:g} > 0 needs initial data (u0 is the data at t = 0): give "
                             "initial=InitialData(value) or InitialData.from_network(net, window, t_start).")
        self.bounds = ((self.t_start, self.t_max), (-1.0, 1.0))
        network = isinstance(initial, InitialData) and initial.kind == "network"
        self.initial = check_initial(self, initial, continued=self._continued() if network else {}, velocity=False)
        self.derivatives = {"interior": DerivativeSpec(first=("t",), second=(("x", "x"),)),
                            "initial": DerivativeSpec()}
        if periodicity == "soft":
            self.derivatives.update(left=DerivativeSpec(first=("x",)), right=DerivativeSpec(first=("x",)))
        self._set_constraint(constraint, ("initial",))
        # the terms' scales: spatial means over [-1, 1] of u0^2, u0'^2 and u_t(0)^2
        s, w = np.polynomial.legendre.leggauss(MEAN_NODES)
        u0, du0, d2u0 = (f.numpy() for f in SquareCosineFactor().derivatives(torch.from_numpy(s)))
        mean = lambda f: float(np.dot(w, f)) / 2  # noqa: E731
        self._scale_u = math.sqrt(mean(u0 ** 2))
        self._scale_x = math.sqrt(mean(du0 ** 2))
        self._scale_t = math.sqrt(mean((self.eps * d2u0 + self.a * (u0 - u0 ** 3)) ** 2))

    # ----- data -----------------------------------------------------------------------
    def sample(self, n: int, generator: torch.Generator, *, progress: float = 1.0) -> dict[str, Tensor]:
        n_i = max(1, int(round(self.initial_fraction * n)))
        interior = sampling.box(n, self.bounds, generator, self.sampler)
        initial = sampling.box(n_i, self.bounds[1:], generator, self.sampler)
        out = {"interior": interior, "initial": torch.cat([torch.full((n_i, 1), self.t_start), initial], dim=1)}
        if self.periodicity == "soft":
            n_p = max(1, int(round(self.periodic_fraction * n)))
            t = sampling.box(n_p, self.bounds[:1], generator, self.sampler)
            out["left"] = torch.cat([t, torch.full_like(t, -1.0)], dim=1)
            out["right"] = torch.cat([t, torch.full_like(t, 1.0)], dim=1)
        return self._constrained(out)

    def _pde_residual(self, jets: dict[str, Jet], batch: dict[str, Tensor]) -> Tensor:
        """(u_t - eps u_xx + a u^3 - a u) / sqrt(<u_t(0)^2>) at the interior points (n, 1)."""
        j = jets["interior"]
        return (j.d("t") - self.eps * j.d2("x", "x") + self.a * (j.u ** 3 - j.u)) / self._scale_t

    def _initial_residual(self, jets: dict[str, Jet], batch: dict[str, Tensor]) -> Tensor:
        """(u - u_k) / sqrt(<u0^2>) at the t = t_start points (n_0, 1); u_k = u0 for the
        whole problem."""
        j = jets["initial"]
        x = batch["initial"][:, 1:2].to(j.u.dtype)
        start = initial_value(x) if self.initial is None else self.initial.at(x)[0]
        return (j.u - start) / self._scale_u

    def _periodic_residual(self, jets: dict[str, Jet], batch: dict[str, Tensor]) -> Tensor:
        """[(u(t,-1) - u(t,1)) / sqrt(<u0^2>), (u_x(t,-1) - u_x(t,1)) / sqrt(<u0'^2>)] at
        the aligned pairs (n_p, 2)."""
        left, right = jets["left"], jets["right"]
        return torch.cat([(left.u - right.u) / self._scale_u, (left.d("x") - right.d("x")) / self._scale_x], dim=1)

    def terms(self) -> tuple[Term, ...]:
        """"pde", "initial" (not under the hard constraint) and "periodic" (under
        ``periodicity="soft"``)."""
        out = (Term("pde", ("interior",), "pde", self._pde_residual),)
        if self.constraint == "soft":
            out += (Term("initial", ("initial",), "initial", self._initial_residual),)
        if self.periodicity == "soft":
            out += (Term("periodic", ("left", "right"), "boundary", self._periodic_residual),)
        return out

    def hard_constraint(self) -> HardConstraint:
        """u = u0(x) + (t / t_max) N, or for a window u = u_k(x) + ((t - t_start) / (t_max -
        t_start)) N (class docstring)."""
        names = self.input_names
        if self.initial is None:
            g = SeparableField(((1.0, ((1, SquareCosineFactor()),)),), names)
        else:
            g = self.initial.field(names, self.t_start, velocity=False)
        ramp = PowerFactor(1, self.t_max - self.t_start)
        ramp = ShiftedFactor(ramp, self.t_start) if self.t_start else ramp
        return HardConstraint(g, box_bubble(self.bounds, (), names, time=(0, ramp)), names, ("initial",))

    def params(self) -> dict:
        out = {"eps": self.eps, "a": self.a, "t_max": self.t_max, "periodicity": self.periodicity,
               "constraint": self.constraint}
        if self.windowed:
            out["t_start"] = self.t_start
            out["initial"] = "closed form" if self.initial is None else self.initial.record()
        return out

    @property
    def windowed(self) -> bool:
        """Whether this is a time window: t_start > 0 or initial data given."""
        return bool(self.t_start) or self.initial is not None

    def _continued(self) -> dict:
        """The params() entries a window shares with the problem its network data come from."""
        return {"eps": self.eps, "a": self.a, "periodicity": self.periodicity}

    def window(self, t_start: float, t_end: float, initial: InitialData | None = None) -> "AllenCahn1D":
        """This problem on [t_start, t_end] from ``initial`` (:meth:`Problem.window`): the
        same coefficients, sampling, periodicity and constraint; its reference is the whole
        problem's solution on the window's times. ``initial`` None: u0, for the first
        window only."""
        lo, hi = window_interval(self, t_start, t_end)
        return type(self)(self.eps, self.a, t_max=hi, sampler=self.sampler, initial_fraction=self.initial_fraction,
                          periodic_fraction=self.periodic_fraction, constraint=self.constraint,
                          periodicity=self.periodicity, t_start=lo, initial=initial)

    # ----- reference --------------------------------------------------------------------
    def reference_params(self, resolution: int | None) -> dict:
        """:meth:`Problem.reference_params` without ``periodicity`` either: how periodicity
        is imposed changes the training, not the solution (one reference file for all four
        variants)."""
        return {k: v for k, v in super().reference_params(resolution).items() if k not in ("periodicity", "initial")}

    def spectral_grid(self) -> tuple[int, float]:
        """(n_modes, dt) of the reference solve: n the smallest power of two >= max(256,
        6 * 2 / sqrt(2 eps / a)), dt = 0.0125 / a (class docstring); (2048, 2.5e-3) by default."""
        width = math.sqrt(2 * self.eps / self.a)
        n = max(MIN_MODES, NODES_PER_INTERFACE * PERIOD / width)
        return 2 ** math.ceil(math.log2(n)), DT_RATE / self.a

    def solve(self, times, x, *, refine: int = 1) -> np.ndarray:
        """The spectral solution at ``times`` (m,) and ``x`` (k,) -> (m, k), on the grid of
        :meth:`spectral_grid` with ``refine`` times the modes and 1 / ``refine`` of the
        step; rows at t = 0 are u0 itself."""
        from ..validation.spectral import allen_cahn_1d

        n, dt = self.spectral_grid()
        times = np.asarray(times, dtype=np.float64)
        grid, states = allen_cahn_1d(self.eps, self.a, initial_value, times, n_modes=refine * n, dt=dt / refine,
                                     x0=-1.0, length=PERIOD, oversample=OVERSAMPLE)
        u = grid.evaluate(states, x)
        u[times == 0] = initial_value(x)
        return u

    def compute_reference(self, resolution: int) -> ReferenceField:
        """The spectral solution on ``resolution`` x ``resolution`` nodes of [0, t_max] x
        [-1, 1], with its refinement estimate (class docstring)."""
        coords = self.grid(resolution)
        u = self.solve(coords["t"], coords["x"])
        fine = self.solve(coords["t"], coords["x"], refine=2)
        n, dt = self.spectral_grid()
        spacing = {k: float(c[1] - c[0]) for k, c in coords.items()}
        steps = math.ceil(spacing["t"] / dt - 1e-9)
        return ReferenceField(
            problem="", params={}, coords=coords, fields={"u": u}, solver="fourier-etdrk4", order=4, spacing=spacing,
            attrs={"error_estimate": float(np.linalg.norm(u - fine) / np.linalg.norm(fine)),
                   "error_method": "refinement", "n_modes": n, "dt": spacing["t"] / steps,
                   "solver_spacing": {"t": spacing["t"] / steps, "x": PERIOD / n},
                   "dealias": "cubic term on 2n nodes (padding)", "initial_oversample": OVERSAMPLE,
                   "refinement": "2n modes, half the step"})
