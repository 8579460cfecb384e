"""Wave1D and Wave2D: u_tt = c^2 Laplacian(u) from rest, with finite-difference references.

Both problems share the space-time sampling (an optional time curriculum, as in the
SIREN wave experiment) and the loss normalisation: every term is divided by the
natural scale of what it measures, computed from the initial displacement u0,

    "pde":              mean (u_tt - c^2 Lap u)^2 / (c_ref^4 <(Lap u0)^2>)
    "initial":          mean (u - u_k)^2          / <u0^2>                  (t = t_start)
    "initial_velocity": mean (u_t - v_k)^2        / (c_ref^2 <|grad u0|^2>) (t = t_start)
    "boundary":         mean u^2                  / <u0^2>                  (reflecting walls)
                        mean (u_t + c du/dn)^2    / (c_ref^2 <|grad u0|^2>) (absorbing walls)

where <.> is the mean over the spatial domain and c_ref the largest wave speed. An
error delta u on the length scale of u0 then makes each term about (delta u / u)^2,
so the terms start comparable and no term is swamped because its derivatives are
large (the residual of Wave1D's default solution is ~300 before normalisation, that
of a width-0.05 pulse ~1000). Inputs are used raw (no rescaling).

u_k = u0 and v_k = 0 for the whole problem (t_start = 0); a time window on
[t_start, t_max] takes its data as ``initial`` (:mod:`pinn_sine.problems.windows`) and
keeps these scales, so the loss scale is the same in every window.
"""
from __future__ import annotations

import math
import numbers
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from .. import sampling
from .._checks import positive
from ..constraints import (GaussianFactor, HardConstraint, PowerFactor, RampFactor, SeparableField, ShiftedFactor,
                           SineFactor, box_bubble, sine_series)
from ..derivatives import DerivativeSpec, Jet
from ..validation import fd
from ..validation.reference import ReferenceField
from .base import Problem, Term
from .velocity import VelocityModel, clip, parse_center
from .windows import InitialData, check_initial, window_interval

BOUNDARIES = ("reflecting", "absorbing")
#: the SIREN/PINNacle/jaxpi two-mode case: u0 = sin(pi x) + 0.5 sin(4 pi x)
DEFAULT_MODES = ((1, 1.0), (4, 0.5))


def _fraction(name: str, value) -> float:
    if isinstance(value, (bool, str)) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number >= 0, got {name}={value!r}; use e.g. {name}=0.25 "
                         "(0 turns the set off).")
    if not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {name}={value!r}; use e.g. {name}=0.25 (0 turns the set off).")
    return float(value)


def _integer(name: str, value, lo: int, example: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}; use e.g. {example}.")
    return int(value)


def _unit_fraction(name: str, value, what: str, example: str):
    """``value`` in (0, 1] as a float, else a ValueError naming it."""
    if isinstance(value, (bool, str)) or not isinstance(value, numbers.Real) or not 0 < value <= 1:
        raise ValueError(f"{name} must be in (0, 1] ({what}), got {value!r}; use e.g. {example}.")
    return float(value)


class _WaveProblem(Problem):
    """Space-time sampling and the time curriculum shared by Wave1D and Wave2D."""

    t_max: float
    #: the start of the time interval [t_start, t_max] (a window's t_k; 0 for the whole problem)
    t_start: float = 0.0
    #: the data at t_start (:class:`~pinn_sine.problems.windows.InitialData`), None: the closed form
    initial: InitialData | None = None
    spatial_bounds: tuple[tuple[float, float], ...]

    def _init_sampling(self, sampler: str, initial_fraction: float, boundary_fraction: float,
                       curriculum_end: float | None, curriculum_t0: float) -> None:
        if sampler not in sampling.METHODS:
            raise ValueError(f'Invalid sampler "{sampler}". Must be one of {list(sampling.METHODS)}.')
        self.sampler = sampler
        self.initial_fraction = _fraction("initial_fraction", initial_fraction)
        self.boundary_fraction = _fraction("boundary_fraction", boundary_fraction)
        if self.initial_fraction == 0:
            raise ValueError("initial_fraction must be > 0: the initial condition needs points; use e.g. 0.25.")
        self.curriculum_end = None if curriculum_end is None else _unit_fraction(
            "curriculum_end", curriculum_end, "the fraction of training after which the whole time interval is "
            "sampled", "0.5, or None for off")
        self.curriculum_t0 = _unit_fraction("curriculum_t0", curriculum_t0,
                                            "the fraction of [0, t_max] sampled at the start", "0.1")

    def time_window(self, progress: float) -> float:
        """The largest sampled time at training ``progress`` in [0, 1]:
        t_start + (t_max - t_start) * min(1, t0 + (1 - t0) * progress / curriculum_end),
        or t_max without a curriculum."""
        if self.curriculum_end is None:
            return self.t_max
        frac = self.curriculum_t0 + (1.0 - self.curriculum_t0) * max(float(progress), 0.0) / self.curriculum_end
        if not self.t_start:
            return self.t_max * min(1.0, frac)
        return self.t_start + (self.t_max - self.t_start) * min(1.0, frac)

    def _space_time(self, n: int, t_hi: float, generator: torch.Generator, method: str) -> Tensor:
        return sampling.box(n, ((self.t_start, t_hi),) + self.spatial_bounds, generator, method)

    def _base_sets(self, n: int, generator: torch.Generator, progress: float) -> dict[str, Tensor]:
        t_hi = self.time_window(progress)
        n_i = max(1, int(round(self.initial_fraction * n)))
        # at least one wall point when walls are sampled: the "boundary" term is declared then
        n_b = max(1, int(round(self.boundary_fraction * n))) if self.boundary_fraction else 0
        initial = sampling.box(n_i, self.spatial_bounds, generator, self.sampler)
        out = {"interior": self._space_time(n, t_hi, generator, self.sampler),
               "initial": torch.cat([torch.full((n_i, 1), self.t_start), initial], dim=1)}
        if n_b:
            d = len(self.spatial_bounds)
            out["boundary"] = sampling.box_boundary(n_b, ((self.t_start, t_hi),) + self.spatial_bounds, generator,
                                                    dims=tuple(range(1, d + 1)))
        return out

    def _drop_unsampled_walls(self) -> None:
        """Without wall points (``boundary_fraction=0``) the "boundary" set is not drawn:
        not a point set then, and no "boundary" term."""
        if not self.boundary_fraction:
            del self.derivatives["boundary"]

    def _boundary_terms(self) -> tuple[Term, ...]:
        """The "boundary" term where wall points are drawn (``boundary_fraction > 0`` and
        the set not made exact by the hard constraint), else none."""
        if "boundary" not in self.derivatives:
            return ()
        return (Term("boundary", ("boundary",), "boundary", self._boundary_residual),)

    def _check_times(self, times, name: str) -> np.ndarray:
        t = np.asarray(times, dtype=np.float64)
        if t.ndim != 1 or t.size == 0:
            raise ValueError(f"{name} must be a non-empty 1-D sequence of times, got shape {t.shape}.")
        lo = self.t_start
        bad = t[(t < lo) | (t > self.t_max) | ~np.isfinite(t)]
        if bad.size:
            where = "[0, t_max] = [0," if not lo else f"[t_start, t_max] = [{lo:g},"
            raise ValueError(f"{name} has {bad[0]:g} outside {where} {self.t_max:g}]; "
                             f"give times in [{lo:g}, {self.t_max:g}] or raise t_max.")
        if np.any(np.diff(t) <= 0):
            raise ValueError(f"{name} must be strictly increasing, got {t.tolist()}; sort it and drop duplicates.")
        return t

    def _check_start(self, t_start) -> float:
        if isinstance(t_start, (bool, str)) or not isinstance(t_start, numbers.Real) or not math.isfinite(t_start):
            raise ValueError(f"t_start must be a finite time in [0, t_max), got t_start={t_start!r}; use e.g. "
                             "t_start=0.5 (0: the whole interval from t = 0).")
        if not 0 <= t_start < self.t_max:
            raise ValueError(f"t_start must be in [0, t_max) = [0, {self.t_max:g}), got t_start={t_start:g}; a window "
                             f"[t_start, t_max] needs t_start < t_max: lower t_start or raise t_max.")
        return float(t_start)

    def _check_initial(self, initial) -> InitialData | None:
        """``initial`` checked against this problem: an InitialData at this window's t_start,
        with a velocity, of the same problem (:meth:`_continued`: the parameters a window
        shares with the network's problem; :func:`~pinn_sine.problems.windows.check_initial`)."""
        network = isinstance(initial, InitialData) and initial.kind == "network"
        return check_initial(self, initial, continued=self._continued() if network else {}, velocity=True)

    def _check_wall_data(self) -> None:
        """Under the hard constraint with walls u = 0 the walls hold u = u_k + (t - t_k) v_k:
        both must vanish there (checked at :meth:`_wall_points`, relative to the scales of
        u0 and grad u0)."""
        u, v = self.initial.at(self._wall_points())
        worst = max(float(u.abs().max()) / math.sqrt(self._u2), float(v.abs().max()) / math.sqrt(self._g2))
        if worst > 1e-8:
            raise ValueError(f"initial is {worst:.2g} (relative) on the walls, where the hard "
                             "constraint imposes u = u_k + (t - t_k) v_k = 0; give data that vanish there or use "
                             "constraint='soft'.")

    def _continued(self) -> dict:
        """The params() entries a window shares with the problem its network data come from."""
        raise NotImplementedError

    def _wall_points(self) -> Tensor:
        """Spatial points on the walls where u = 0 is imposed (float64, (n, d))."""
        raise NotImplementedError

    def window(self, t_start: float, t_end: float, initial: InitialData | None = None) -> "_WaveProblem":
        """This problem on [t_start, t_end] from ``initial`` (:meth:`Problem.window`): the
        same speed, data and sampling options (Wave2D: 5 snapshot times in the window;
        Wave1D: ``time_resolution`` times in it), the window's own reference (the whole
        problem's solution on the window's times). ``initial`` None: the closed-form
        data at t_start (the first window, or Wave1D at any time)."""
        lo, hi = window_interval(self, t_start, t_end)
        return type(self)(**self._window_options(), t_start=lo, t_max=hi, initial=initial)

    def _window_options(self) -> dict:
        """The constructor arguments a window repeats (all but t_start, t_max, initial)."""
        return {"sampler": self.sampler, "initial_fraction": self.initial_fraction,
                "boundary_fraction": self.boundary_fraction, "curriculum_end": self.curriculum_end,
                "curriculum_t0": self.curriculum_t0, "constraint": self.constraint, "fd_refine": self.fd_refine}

    @property
    def windowed(self) -> bool:
        """Whether this is a time window: t_start > 0 or initial data given."""
        return bool(self.t_start) or self.initial is not None

    def _with_window(self, params: dict) -> dict:
        """``params`` plus, for a window, "t_start" and "initial" (the data's record,
        :meth:`~pinn_sine.problems.windows.InitialData.record`, or "closed form"); the
        whole problem keeps the keys of before windows."""
        if self.windowed:
            params["t_start"] = self.t_start
            params["initial"] = "closed form" if self.initial is None else self.initial.record()
        return params

    def reference_params(self, resolution: int | None) -> dict:
        """:meth:`Problem.reference_params` without the initial data: the reference is the
        whole problem's on the window's times (class docstrings)."""
        params = super().reference_params(resolution)
        params.pop("initial", None)
        return params


class Wave1D(_WaveProblem):
    """The 1-D wave equation with standing-wave modes (PINNacle Wave1d-C, jaxpi, the NTK
    paper of Wang, Yu & Perdikaris 2022).

        u_tt = c^2 u_xx                  x in [0, L], t in [0, t_max]
        u(x, 0) = sum_k a_k sin(k pi x / L),  u_t(x, 0) = 0,  u(0, t) = u(L, t) = 0

    Exact solution u = sum_k a_k sin(k pi x / L) cos(k pi c t / L); the default
    (c = 2, modes ((1, 1.0), (4, 0.5)), L = t_max = 1) is
    u = sin(pi x) cos(2 pi t) + 0.5 sin(4 pi x) cos(8 pi t).

    Inputs ("t", "x"); point sets "interior" (needs u_tt, u_xx), "initial" (t = 0,
    needs u_t) and "boundary" (x = 0, L). Loss terms "pde", "initial",
    "initial_velocity", "boundary", normalised as in the module docstring.

    The reference is the fourth-order finite-difference solution with exact time
    stepping per sine mode (:func:`~pinn_sine.validation.fd.wave.wave_1d`, ``order=4,
    method="dst"``, solver "dst4-exact-time"), computed on a grid ``fd_refine`` times
    finer in x than the ``resolution`` it is stored on, at ``time_resolution``
    equispaced times in [0, t_max]. Its error is only the spatial dispersion of the
    5-point stencil, frequency error ~ (k pi h / L)^4 / 180 per mode. ``attrs``:
    "error_estimate" is its relative L2 error against :meth:`exact` on the stored grid
    ("error_method" "exact"); measured 2.2e-9 for the default (resolution 201,
    fd_refine 4: h = 1/800). ``spacing`` is the stored grid's,
    ``attrs["solver_spacing"]`` the solver's.

    Hard constraint (``constraint="hard"``): u = u0(x) + b(x) phi(t) N(t, x) with
    b = 4 x (L - x) / L^2 and the ramp phi = 1 - exp(-(t / tau)^2)
    (:class:`~pinn_sine.constraints.RampFactor`), tau = 1 / sqrt(omega_min omega_max)
    (:meth:`time_scale`; 1 / (2 pi c) for the default). It is exact for all three
    conditions: u(x, 0) = u0; u_t = b (phi' N + phi N_t) = 0 at t = 0 (phi(0) = phi'(0)
    = 0); and u = u0 = 0 at x = 0, L (every mode vanishes there). The "initial",
    "initial_velocity" and "boundary" terms and the "initial" and "boundary" point sets
    are gone. The ramp matters: with phi = (t / t_max)^2 the network must output
    (u - u0) / (b phi) ~ -omega^2 t_max^2 u0 / 2 near t = 0, about 160 for the 8 pi
    mode, and SIREN reached 0.58 rel L2 in 120 s against 2.2e-3 with the soft terms;
    with the ramp N stays O(1) and the hard run reaches 1.22e-3 against 1.19e-3 soft
    (median of 2 seeds, ``benchmarks/constraints.py``, README).

    Args:
        c: wave speed (> 0).
        modes: ((k, a_k), ...) with integer k >= 1.
        length: L, the length of the string (> 0).
        t_max: final time (> 0).
        time_resolution: number of reference times (>= 2).
        fd_refine: FD grid refinement factor over the stored grid (>= 1).
        sampler: interior/initial sampler, "uniform", "sobol" or "lhs".
        initial_fraction, boundary_fraction: initial and boundary points per interior point.
        curriculum_end: time curriculum (None = off): times are drawn from
            [0, :meth:`time_window` (progress)], growing from ``curriculum_t0 * t_max``
            to t_max at ``progress = curriculum_end``.
        curriculum_t0: the fraction of [0, t_max] sampled at progress 0.
        constraint: "soft" (initial and boundary loss terms) or "hard" (train ``constrain(net)``).
        t_start: the start t_k of the time interval [t_k, t_max] (a time window; 0 <= t_k < t_max).
        initial: the data at t_start, an :class:`~pinn_sine.problems.windows.InitialData`
            (closed-form callables, or ``InitialData.from_network(net, window, t_k)`` from
            the previous window's network); None: the closed form, u0 at rest for
            t_start = 0, the exact solution's value and velocity at t_start otherwise.

    Time windows (``t_start > 0`` or ``initial`` given): the PDE on [t_start, t_max] x
    [0, L] from u(t_k, x) = u_k(x), u_t(t_k, x) = v_k(x); the "initial" points are at
    t = t_k, the "initial" and "initial_velocity" residuals are (u - u_k) / sqrt(<u0^2>)
    and (u_t - v_k) / (c sqrt(<u0_x^2>)), normalised by the problem's own u0, so the loss
    scale is the same in every window. The hard constraint of a window is
    u = u_k(x) + (t - t_k) v_k(x) + b(x) phi(t - t_k) N (:class:`~pinn_sine.constraints.ShiftedFactor`
    of the ramp), exact for u(t_k) = u_k and u_t(t_k) = v_k; for closed-form data only
    (:meth:`~pinn_sine.problems.windows.InitialData.field` says why), which must vanish
    at x = 0, L. The reference is the whole problem's (the modes released from rest at
    t = 0) at ``time_resolution`` times in [t_start, t_max]: initial data only say where
    a window starts, so a window whose data come from a network is judged against the
    solution it approximates (its key leaves the data out). :meth:`exact` exists for
    the closed form only (``initial=None``): other data have no known exact solution.
    """

    name = "wave1d"
    unknown_parameters = {"c": 0.0}
    bad_params = ({"c": 0.0}, {"t_max": -1.0}, {"fd_refine": 0}, {"t_start": 1.0}, {"t_start": -0.5})
    check_resolution = 9
    input_names = ("t", "x")
    out_dim = 1
    default_resolution = 201
    # Picked by short SIREN runs (hidden omega 30): lr 1e-3 collapsed 20k-step runs.
    default_first_omega = 5.0
    default_lr = 2e-4
    offers_hard_constraint = True

    def __init__(self, c: float = 2.0, *, modes: Sequence[tuple[int, float]] = DEFAULT_MODES, length: float = 1.0,
                 t_max: float = 1.0, time_resolution: int = 201, fd_refine: int = 4, sampler: str = "uniform",
                 initial_fraction: float = 0.25, boundary_fraction: float = 0.25,
                 curriculum_end: float | None = None, curriculum_t0: float = 0.1, constraint: str = "soft",
                 t_start: float = 0.0, initial: InitialData | None = None):
        self.c = positive("c", c, "the wave speed must be positive, e.g. c=2.0.")
        self.length = positive("length", length, "use e.g. length=1.0.")
        self.t_max = positive("t_max", t_max, "use e.g. t_max=1.0.")
        self.t_start = self._check_start(t_start)
        self.modes = self._check_modes(modes)
        self.time_resolution = _integer("time_resolution", time_resolution, 2, 201)
        self.fd_refine = _integer("fd_refine", fd_refine, 1, 4)
        self.spatial_bounds = ((0.0, self.length),)
        self.bounds = ((self.t_start, self.t_max), (0.0, self.length))
        self.initial = self._check_initial(initial)
        self._init_sampling(sampler, initial_fraction, boundary_fraction, curriculum_end, curriculum_t0)
        self.derivatives = {"interior": DerivativeSpec(second=(("t", "t"), ("x", "x"))),
                            "initial": DerivativeSpec(first=("t",)),
                            "boundary": DerivativeSpec()}
        self._drop_unsampled_walls()
        self._set_constraint(constraint, ("initial", "boundary"))
        # Spatial means of u0^2, u0_x^2, u0_xx^2 (the modes are orthogonal on [0, L]).
        kk = [(k * math.pi / self.length, a) for k, a in self.modes]
        self._u2 = sum(a * a for _, a in kk) / 2
        self._g2 = sum((w * a) ** 2 for w, a in kk) / 2
        self._l2 = sum((w * w * a) ** 2 for w, a in kk) / 2
        if self.constraint == "hard" and self.initial is not None:
            self.initial.field(self.input_names, self.t_start)  # network data refused here, with the reason
            self._check_wall_data()

    @staticmethod
    def _check_modes(modes) -> tuple[tuple[int, float], ...]:
        if isinstance(modes, (str, bytes)) or not hasattr(modes, "__iter__"):
            raise ValueError(f"modes must be a sequence of (k, amplitude) pairs, got modes={modes!r}; "
                             "e.g. modes=((1, 1.0), (4, 0.5)).")
        out = []
        for m in modes:
            try:
                k, a = m
            except (TypeError, ValueError):
                raise ValueError(f"modes must be (k, amplitude) pairs, got {m!r}; e.g. modes=((1, 1.0), (4, 0.5)).") \
                    from None
            if isinstance(k, (bool, str)) or not isinstance(k, numbers.Real) or not math.isfinite(k) \
                    or int(k) != k or k < 1:
                raise ValueError(f"mode number k must be an integer >= 1 (so that u = 0 at both ends), got k={k!r}.")
            if isinstance(a, (bool, str)) or not isinstance(a, numbers.Real) or not math.isfinite(a):
                raise ValueError(f"mode amplitude must be a finite number, got {a!r} for k={k}.")
            out.append((int(k), float(a)))
        if not out or all(a == 0 for _, a in out):
            raise ValueError(f"modes {modes!r} give u0 = 0; give at least one (k, a) with a != 0.")
        return tuple(out)

    # ----- data -----------------------------------------------------------------------
    def exact(self, x: Tensor) -> Tensor:
        """u(t, x) at x (n, 2) with columns (t, x) -> (n, 1); for the closed-form initial
        data only (``initial=None``)."""
        if self.initial is not None:
            raise NotImplementedError("a Wave1D window from InitialData has no known exact solution; the whole "
                                      "problem's is Wave1D(c, modes=..., length=...).exact.")
        return self._standing_waves(x)

    def _standing_waves(self, x: Tensor, *, rate: bool = False) -> Tensor:
        """sum_k a_k sin(w_k x) cos(w_k c t) at x (n, 2) (columns (t, x)) -> (n, 1), the
        modes released from rest at t = 0; ``rate``: its time derivative."""
        t, s = x[:, :1], x[:, 1:2]
        out = torch.zeros_like(t)
        for k, a in self.modes:
            w = k * math.pi / self.length
            if rate:
                out = out - a * w * self.c * torch.sin(w * s) * torch.sin(w * self.c * t)
            else:
                out = out + a * torch.sin(w * s) * torch.cos(w * self.c * t)
        return out

    def initial_data(self, s: Tensor) -> tuple[Tensor, Tensor | None]:
        """(u_k, v_k) at the spatial points s (n, 1): the data at t_start, each (n, 1); v_k
        None from rest (closed form at t_start = 0)."""
        if self.initial is not None:
            return self.initial.at(s)
        if not self.t_start:
            return self.initial_displacement(s), None
        x = torch.cat([torch.full_like(s, self.t_start), s], dim=1)
        return self._standing_waves(x), self._standing_waves(x, rate=True)

    def initial_displacement(self, x: Tensor) -> Tensor:
        """u0(x) at x (n, 1) -> (n, 1)."""
        return sum(a * torch.sin((k * math.pi / self.length) * x) for k, a in self.modes)

    def sample(self, n: int, generator: torch.Generator, *, progress: float = 1.0) -> dict[str, Tensor]:
        return self._constrained(self._base_sets(n, generator, progress))

    def _interior_residual(self, jets: dict[str, Jet], batch: dict[str, Tensor]) -> Tensor:
        """(u_tt - c^2 u_xx) / (c^2 sqrt(<u_xx^2>)) at the interior points (n, 1)."""
        ji = jets["interior"]
        c = self.coefficient("c")  # the trainable c where it is unknown; the normalisation keeps the defining c
        return (ji.d2("t", "t") - c ** 2 * ji.d2("x", "x")) / (self.c ** 2 * math.sqrt(self._l2))

    def _initial_residual(self, jets: dict[str, Jet], batch: dict[str, Tensor]) -> Tensor:
        """(u - u_k) / sqrt(<u0^2>) at the t = t_start points (n_0, 1) (u_k = u0 at t = 0)."""
        j0 = jets["initial"]
        u_k, _ = self.initial_data(batch["initial"][:, 1:2].to(j0.u.dtype))
        return (j0.u - u_k) / math.sqrt(self._u2)

    def _velocity_residual(self, jets: dict[str, Jet], batch: dict[str, Tensor]) -> Tensor:
        """(u_t - v_k) / (c sqrt(<u0_x^2>)) at the t = t_start points (n_0, 1) (v_k = 0 at t = 0)."""
        j0 = jets["initial"]
        if self.initial is None and not self.t_start:
            return j0.d("t") / (self.c * math.sqrt(self._g2))
        _, v_k = self.initial_data(batch["initial"][:, 1:2].to(j0.u.dtype))
        return (j0.d("t") - v_k) / (self.c * math.sqrt(self._g2))

    def _boundary_residual(self, jets: dict[str, Jet], batch: dict[str, Tensor]) -> Tensor:
        """u / sqrt(<u0^2>) at the wall points (n_b, 1)."""
        return jets["boundary"].u / math.sqrt(self._u2)

    def terms(self) -> tuple[Term, ...]:
        """"pde", "initial", "initial_velocity" and, with boundary points
        (``boundary_fraction > 0``), "boundary"; "pde" alone under the hard constraint."""
        pde = Term("pde", ("interior",), "pde", self._interior_residual)
        if self.constraint == "hard":
            return (pde,)
        return (pde, Term("initial", ("initial",), "initial", self._initial_residual),
                Term("initial_velocity", ("initial",), "initial", self._velocity_residual)) + self._boundary_terms()

    def time_scale(self) -> float:
        """tau = 1 / sqrt(omega_min omega_max), omega_k = k pi c / L the modes' angular
        frequencies: the ramp's time scale under the hard constraint (class docstring)."""
        ks = [k for k, _ in self.modes]
        return self.length / (math.pi * self.c * math.sqrt(min(ks) * max(ks)))

    def hard_constraint(self) -> HardConstraint:
        """u = u0(x) + b(x) phi(t) N (class docstring), u0 the closed-form sine series; in a
        window, u = u_k(x) + (t - t_k) v_k(x) + b(x) phi(t - t_k) N."""
        names = self.input_names
        conditions = ("initial", "initial_velocity", "boundary")
        if not self.windowed:
            u0 = sine_series([(k * math.pi / self.length, a) for k, a in self.modes], 1, names)
            d = box_bubble(self.bounds, (1,), names, time=(0, RampFactor(self.time_scale())))
            return HardConstraint(u0, d, names, conditions)
        t_k = self.t_start
        d = box_bubble(self.bounds, (1,), names, time=(0, ShiftedFactor(RampFactor(self.time_scale()), t_k)))
        if self.initial is not None:
            return HardConstraint(self.initial.field(names, t_k), d, names, conditions)
        # the standing waves at t_k: a cos(w c t_k) sin(w x) + (t - t_k) (-a w c sin(w c t_k)) sin(w x)
        terms = []
        for k, a in self.modes:
            w = k * math.pi / self.length
            terms.append((a * math.cos(w * self.c * t_k), ((1, SineFactor(w)),)))
            terms.append((-a * w * self.c * math.sin(w * self.c * t_k),
                          ((0, ShiftedFactor(PowerFactor(1), t_k)), (1, SineFactor(w)))))
        return HardConstraint(SeparableField(terms, names), d, names, conditions)

    def _continued(self) -> dict:
        return {"c": self.c, "modes": [[k, a] for k, a in self.modes], "length": self.length}

    def _window_options(self) -> dict:
        return {**super()._window_options(), "c": self.c, "modes": self.modes, "length": self.length,
                "time_resolution": self.time_resolution}

    def _wall_points(self) -> Tensor:
        return torch.tensor([[0.0], [self.length]], dtype=torch.float64)

    # ----- reference --------------------------------------------------------------------
    def params(self) -> dict:
        """The parameters; a window adds "t_start" and "initial" (:meth:`_with_window`)."""
        return self._with_window({"c": self.c, "modes": [[k, a] for k, a in self.modes], "length": self.length,
                                  "t_max": self.t_max, "time_resolution": self.time_resolution,
                                  "fd_refine": self.fd_refine, "constraint": self.constraint})

    def reference_times(self) -> np.ndarray:
        return np.linspace(self.t_start, self.t_max, self.time_resolution)

    def compute_reference(self, resolution: int) -> ReferenceField:
        from ..validation.fd.wave import wave_1d
        from ..validation.metrics import rel_l2

        r = self.fd_refine
        nx = r * (resolution - 1) + 1

        def u0(x):
            return sum(a * np.sin((k * np.pi / self.length) * x) for k, a in self.modes)

        times = self.reference_times()
        sol = wave_1d(u0, c=self.c, bounds=(0.0, self.length), nx=nx, t_out=times, order=4, method="dst")
        ref = sol.to_reference(stride={"x": r}, spacing={"t": (self.t_max - self.t_start) / (len(times) - 1)},
                               attrs={"fd_refine": r, "solver_spacing": sol.spacing})
        u = ref.fields["u"]
        exact = fd.on_grid(self._standing_waves)(*np.meshgrid(times, ref.coords["x"], indexing="ij"))
        ref.attrs.update(error_estimate=rel_l2(u, exact), error_method="exact")
        return ref



class Wave2D(_WaveProblem):
    """A Gaussian pulse released from rest in a square (the SIREN wave experiment,
    Sitzmann et al. 2020, Sec. 4.3).

        u_tt = c(x, y)^2 (u_xx + u_yy)   (x, y) in [-1, 1]^2, t in [0, t_max]
        u(x, y, 0) = exp(-|(x, y) - (x0, y0)|^2 / (2 width^2)),  u_t(x, y, 0) = 0

    Walls: ``"reflecting"`` (u = 0; the pulse must then be ~0 on the walls) or
    ``"absorbing"`` (first-order Engquist-Majda u_t + c du/dn = 0, n the outward normal).

    Inputs ("t", "x", "y"); point sets "interior" (needs u_tt, u_xx, u_yy), "initial"
    (t = 0, needs u_t; uniform points plus, optionally, points near the pulse) and
    "boundary" (walls at uniform times; needs u_t, u_x, u_y when absorbing). Loss terms
    "pde", "initial", "initial_velocity", "boundary", normalised as in the module
    docstring with the plane-space means of the Gaussian (<u0^2> = pi w^2 / A,
    <|grad u0|^2> = pi / A, <(Lap u0)^2> = 2 pi / (w^2 A), A = 4 the area).

    The reference (:func:`~pinn_sine.validation.fd.wave.wave_2d`) is computed on a grid
    ``fd_refine`` times finer than the stored ``resolution``, at ``snapshot_times``:

    * constant c, reflecting walls: fourth order in space, exact in time per sine mode
      ("dst4-exact-time"); ``attrs["error_estimate"]`` is its relative L2 error against
      the exact sine-series evolution of the initial pulse sampled on the solver grid
      (:func:`~pinn_sine.validation.fd.wave.sine_series_evolution`), "error_method"
      "exact", ``attrs["error_reference"]`` "sine-series". Default (width 0.05,
      t_max 0.4, resolution 129, fd_refine 8: h = 1/512): measured 4.4e-7
      (fd_refine 4: 7.0e-6);
    * variable c, reflecting walls: the fourth-order modified-equation leapfrog
      ("leapfrog4", cfl 0.5); absorbing walls: second-order leapfrog ("leapfrog", cfl
      0.5, its Engquist-Majda closure has no fourth-order version). The estimate is
      Richardson's, ||u_h - u_2h|| / ((2^p - 1) ||u_h||) on the 2h nodes ("error_method"
      "richardson", one extra solve at 2h; no estimate is stored when the solver grid
      has an odd number of intervals or fewer than 5 nodes).

    ``spacing`` is the stored grid's (``"t"``: the largest gap between snapshot times),
    ``attrs["solver_spacing"]`` the solver's.

    Hard constraint (``constraint="hard"``): the initial data are built in,
    u = u0(x, y) + d phi(t) N(t, x, y) with the ramp phi = 1 - exp(-(t / tau)^2),
    tau = source_width / c_max (:meth:`time_scale`, the time the fastest wave takes to
    cross the pulse; :class:`Wave1D` says why a ramp and not (t / t_max)^2), so
    u(0) = u0 and u_t(0) = 0 exactly and the
    "initial" and "initial_velocity" terms and the "initial" point set are gone. With
    reflecting walls d = (1 - x^2)(1 - y^2) (the bubble over [-1, 1]^2) and the
    "boundary" term goes too: u = u0 on the walls, which the constructor holds below
    1e-8 (the same u0 the soft initial term fits there). With absorbing walls d = 1: the
    Engquist-Majda condition stays a loss term.

    Args:
        c: wave speed, a positive float or a callable ``c(x, y)`` on tensors of shape
            (n,) returning (n,) (or a scalar), written with torch operations. The FD
            reference calls the same callable on torch tensors built from its grid, so
            one torch callable serves both. It is checked positive on a 65 x 65 grid.
        t_max: final time (> 0).
        source_width: the pulse's standard deviation ``width`` (> 0).
        source_center: (x0, y0) inside the domain.
        boundary: "reflecting" or "absorbing".
        snapshot_times: reference times in [0, t_max], strictly increasing (default 5
            equispaced times including 0 and t_max).
        fd_refine: FD grid refinement factor over the stored grid (>= 1); None (the
            default) picks 8 for the transform solver (constant c, reflecting walls:
            one transform per snapshot) and 4 for the time-stepping ones.
        sampler: interior/initial sampler, "uniform", "sobol" or "lhs".
        initial_fraction, boundary_fraction: uniform initial and boundary points per
            interior point.
        pulse_fraction: extra t = 0 points per interior point drawn uniformly in the
            disc of radius ``pulse_radius * width`` around the centre (0 = off). A
            width-0.05 pulse covers <1% of the square, so uniform points barely see it.
        pulse_radius: radius of the disc of the pulse_fraction points, in source widths (> 0).
        curriculum_end, curriculum_t0: the time curriculum, as in :class:`Wave1D`.
        constraint: "soft" (initial and boundary loss terms) or "hard" (train ``constrain(net)``).
        t_start: the start t_k of the time interval [t_k, t_max] (a time window; 0 <= t_k < t_max).
        initial: the data at t_start, an :class:`~pinn_sine.problems.windows.InitialData`
            (closed-form callables of (x, y) points (n, 2), or
            ``InitialData.from_network(net, window, t_k)``); None: the pulse at rest,
            t_start = 0 only (there is no closed form at later times).

    Time windows work as in :class:`Wave1D`: the "initial" points (the pulse points too)
    lie at t = t_start, the residuals are (u - u_k) and (u_t - v_k) under the pulse's
    normalisations, the hard constraint of a window is u = u_k + (t - t_k) v_k +
    d phi(t - t_k) N for closed-form data (which must vanish on reflecting walls), the
    reference is the pulse's from t = 0 at ``snapshot_times`` (default 5 equispaced
    times in [t_start, t_max]) and its key leaves the data out.
    """

    name = "wave2d"
    unknown_parameters = {"c": 0.0, "velocity": None}
    bad_params = ({"c": 0.0}, {"source_width": 0.0}, {"fd_refine": 0}, {"t_start": 0.4}, {"t_start": 0.2})
    check_resolution = 9
    input_names = ("t", "x", "y")
    out_dim = 1
    default_resolution = 129
    # Picked by short SIREN runs (hidden omega 30): first omega 30 gave 7.7e-2, 15 gave 4.95e-2.
    default_first_omega = 15.0
    default_lr = 1e-4
    offers_hard_constraint = True
    #: the domain [-1, 1]^2
    domain = ((-1.0, 1.0), (-1.0, 1.0))

    def __init__(self, c: float | Callable[[Tensor, Tensor], Tensor] = 1.0, *, t_max: float = 0.4,
                 source_width: float = 0.05, source_center: tuple[float, float] = (0.0, 0.0),
                 boundary: str = "reflecting", snapshot_times: Sequence[float] | None = None,
                 fd_refine: int | None = None,
                 sampler: str = "uniform", initial_fraction: float = 0.25, boundary_fraction: float = 0.25,
                 pulse_fraction: float = 0.25, pulse_radius: float = 3.0, curriculum_end: float | None = None,
                 curriculum_t0: float = 0.1, constraint: str = "soft", t_start: float = 0.0,
                 initial: InitialData | None = None):
        self.t_max = positive("t_max", t_max, "use e.g. t_max=0.4.")
        self.t_start = self._check_start(t_start)
        self.width = positive("source_width", source_width, "use e.g. source_width=0.05.")
        if boundary not in BOUNDARIES:
            raise ValueError(f'Invalid boundary "{boundary}". Must be one of {list(BOUNDARIES)}.')
        self.boundary = boundary
        self.spatial_bounds = self.domain
        self.bounds = ((self.t_start, self.t_max),) + self.domain
        x0, y0 = parse_center(source_center)
        if not all(lo < v < hi for v, (lo, hi) in zip((x0, y0), self.domain)):
            raise ValueError(f"source_center=({x0:g}, {y0:g}) is outside the domain (-1, 1)^2; "
                             "give a centre inside it, e.g. (0.0, 0.0).")
        self.center = (x0, y0)
        if boundary == "reflecting":
            # u = 0 on the walls needs u0 ~ 0 there (the FD solver checks the same).
            d = min(min(v - lo, hi - v) for v, (lo, hi) in zip(self.center, self.domain))
            wall = math.exp(-d * d / (2 * self.width ** 2))
            if wall > 1e-8:
                raise ValueError(f"the pulse is {wall:.2g} on the nearest wall but reflecting walls impose u = 0; "
                                 f"move source_center inward, decrease source_width (now {self.width:g}) or use "
                                 "boundary='absorbing'.")
        self.speed_model = VelocityModel(c, label="c", fn_label="c(x, y)", named=False, arrays=False)
        self.c, self.c_fn, self.c_ref = self.speed_model.c, self.speed_model.c_fn, self.speed_model.c_max
        times = np.linspace(self.t_start, self.t_max, 5) if snapshot_times is None else snapshot_times
        self.snapshot_times = self._check_times(times, "snapshot_times")
        if fd_refine is None:
            fd_refine = 8 if self.c_fn is None and boundary == "reflecting" else 4
        self.fd_refine = _integer("fd_refine", fd_refine, 1, 4)
        self.pulse_fraction = _fraction("pulse_fraction", pulse_fraction)
        self.pulse_radius = positive("pulse_radius", pulse_radius, "use e.g. pulse_radius=3.0 (in widths).")
        self._init_sampling(sampler, initial_fraction, boundary_fraction, curriculum_end, curriculum_t0)
        boundary_spec = DerivativeSpec(first=("t", "x", "y")) if boundary == "absorbing" else DerivativeSpec()
        self.derivatives = {"interior": DerivativeSpec(second=(("t", "t"),), laplacians=(("x", "y"),)),
                            "initial": DerivativeSpec(first=("t",)),
                            "boundary": boundary_spec}
        self._drop_unsampled_walls()
        self._set_constraint(constraint, ("initial", "boundary") if boundary == "reflecting" else ("initial",))
        area = math.prod(hi - lo for lo, hi in self.domain)
        w2 = self.width ** 2
        self._u2 = math.pi * w2 / area
        self._g2 = math.pi / area
        self._l2 = 2 * math.pi / (w2 * area)
        self.initial = self._check_initial(initial)
        if self.t_start and self.initial is None:
            raise ValueError(f"Wave2D has no closed-form solution at t_start={self.t_start:g} > 0: give its data, "
                             "initial=InitialData.from_network(net, previous_window, t_start) (or closed-form "
                             "InitialData(value, velocity)).")
        if self.constraint == "hard" and self.initial is not None:
            self.initial.field(self.input_names, self.t_start)  # network data refused here, with the reason
            if boundary == "reflecting":
                self._check_wall_data()

    # ----- data -----------------------------------------------------------------------
    def initial_displacement(self, x: Tensor, y: Tensor) -> Tensor:
        """u0 at x, y (any matching shapes; torch or numpy)."""
        r2 = (x - self.center[0]) ** 2 + (y - self.center[1]) ** 2
        exp = torch.exp if isinstance(r2, Tensor) else np.exp
        return exp(-r2 / (2 * self.width ** 2))

    def speed(self, x: Tensor, y: Tensor) -> Tensor | float:
        """c at x, y (n, 1) -> (n, 1) or a float: the trainable c where it is unknown, the
        trainable expansion where "velocity" is (:meth:`velocity_expansion`)."""
        if "c" in self.unknowns:
            return self.coefficient("c")
        if "velocity" in self.unknowns:
            return self.velocity_expansion()(self.coefficient("velocity"), x, y)
        return self.speed_model(x, y)

    def velocity_expansion(self, modes: int | None = None):
        """The cosine expansion (:class:`~pinn_sine.problems.expansion.CosineExpansion`) an
        unknown "velocity" of M^2 coefficients (M = ``modes``, else the declared one's)
        models c with: over the domain, around the background c0 = the geometric mean of
        the defining c over the domain (c itself when constant), so that coefficients 0
        are the uniform c0."""
        from .expansion import problem_expansion

        return problem_expansion(self, self.domain, self.speed_model, modes)

    def _check_unknown(self, unknown) -> None:
        if self.unknowns:  # "c" or "velocity" already: both are the wave speed
            raise ValueError(f"Wave2D: {sorted(self.unknowns)} is unknown already; the wave speed is either a "
                             "constant 'c' or an expansion 'velocity', declared once.")
        if unknown.name == "c":
            if self.c_fn is not None:
                raise ValueError("Wave2D: c can be unknown only for a constant wave speed (c=1.0, say); this "
                                 "problem's c is a function of position: declare 'velocity' (an expansion) instead.")
            super()._check_unknown(unknown)
            return
        from .expansion import check_velocity_unknown

        check_velocity_unknown(self, unknown)

    def unknown_truth(self, name: str):
        """For "velocity": the coefficients of the defining c in the expansion
        (:meth:`~pinn_sine.problems.expansion.CosineExpansion.project`)."""
        if name == "velocity":
            return self.velocity_expansion().project(self.speed_model).tolist()
        return super().unknown_truth(name)

    def sample(self, n: int, generator: torch.Generator, *, progress: float = 1.0) -> dict[str, Tensor]:
        out = self._base_sets(n, generator, progress)
        n_p = int(round(self.pulse_fraction * n))
        if n_p:
            pts = clip(sampling.near_point(n_p, self.center, self.pulse_radius * self.width, generator), self.domain)
            out["initial"] = torch.cat([out["initial"], torch.cat([torch.full((n_p, 1), self.t_start), pts], dim=1)])
        return self._constrained(out)

    def _interior_residual(self, jets: dict[str, Jet], batch: dict[str, Tensor]) -> Tensor:
        """(u_tt - c^2 Lap u) / (c_ref^2 sqrt(<(Lap u0)^2>)) at the interior points (n, 1)."""
        ji = jets["interior"]
        xi = batch["interior"].to(ji.u.dtype)
        c = self.speed(xi[:, 1:2], xi[:, 2:3])
        return (ji.d2("t", "t") - c ** 2 * ji.laplacian(("x", "y"))) / (self.c_ref ** 2 * math.sqrt(self._l2))

    def _initial_residual(self, jets: dict[str, Jet], batch: dict[str, Tensor]) -> Tensor:
        """(u - u_k) / sqrt(<u0^2>) at the t = t_start points (n_0, 1) (u_k = u0 at t = 0)."""
        j0 = jets["initial"]
        x0 = batch["initial"].to(j0.u.dtype)
        if self.initial is not None:
            return (j0.u - self.initial.at(x0[:, 1:3])[0]) / math.sqrt(self._u2)
        return (j0.u - self.initial_displacement(x0[:, 1:2], x0[:, 2:3])) / math.sqrt(self._u2)

    def _velocity_residual(self, jets: dict[str, Jet], batch: dict[str, Tensor]) -> Tensor:
        """(u_t - v_k) / (c_ref sqrt(<|grad u0|^2>)) at the t = t_start points (n_0, 1) (v_k = 0 at t = 0)."""
        j0 = jets["initial"]
        if self.initial is None:
            return j0.d("t") / (self.c_ref * math.sqrt(self._g2))
        v_k = self.initial.at(batch["initial"].to(j0.u.dtype)[:, 1:3])[1]
        return (j0.d("t") - v_k) / (self.c_ref * math.sqrt(self._g2))

    def _boundary_residual(self, jets: dict[str, Jet], batch: dict[str, Tensor]) -> Tensor:
        """u / sqrt(<u0^2>) on reflecting walls, (u_t + c du/dn) / (c_ref sqrt(<|grad u0|^2>))
        on absorbing ones, at the wall points (n_b, 1)."""
        jb = jets["boundary"]
        if self.boundary == "reflecting":
            return jb.u / math.sqrt(self._u2)
        xb = batch["boundary"].to(jb.u.dtype)
        return ((jb.d("t") + self.speed(xb[:, 1:2], xb[:, 2:3]) * self._normal_derivative(jb, xb))
                / (self.c_ref * math.sqrt(self._g2)))

    def terms(self) -> tuple[Term, ...]:
        """"pde", "initial", "initial_velocity" and, with boundary points
        (``boundary_fraction > 0``), "boundary". Under the hard constraint: "pde", and
        "boundary" on absorbing walls."""
        out = (Term("pde", ("interior",), "pde", self._interior_residual),)
        if "initial" in self.derivatives:
            out += (Term("initial", ("initial",), "initial", self._initial_residual),
                    Term("initial_velocity", ("initial",), "initial", self._velocity_residual))
        return out + self._boundary_terms()

    def _normal_derivative(self, jet: Jet, x: Tensor) -> Tensor:
        """du/dn on the nearest wall of each boundary point x (n, 3) -> (n, 1)."""
        (xl, xh), (yl, yh) = self.domain
        s, r = x[:, 1:2], x[:, 2:3]
        dist = torch.cat([s - xl, xh - s, r - yl, yh - r], dim=1).abs()
        wall = dist.argmin(dim=1, keepdim=True)
        ux, uy = jet.d("x"), jet.d("y")
        return torch.where(wall == 0, -ux, torch.where(wall == 1, ux, torch.where(wall == 2, -uy, uy)))

    def time_scale(self) -> float:
        """tau = source_width / c_max, the time the fastest wave takes to cross the pulse:
        the ramp's time scale under the hard constraint."""
        return self.width / self.c_ref

    def hard_constraint(self) -> HardConstraint:
        """u = u0 + d phi(t) N (class docstring), u0 the closed-form Gaussian; in a window
        u = u_k + (t - t_k) v_k + d phi(t - t_k) N (closed-form data only)."""
        names = self.input_names
        walls = (1, 2) if self.boundary == "reflecting" else ()
        conditions = ("initial", "initial_velocity") + (("boundary",) if walls else ())
        if self.initial is not None:
            ramp = ShiftedFactor(RampFactor(self.time_scale()), self.t_start)
            d = box_bubble(self.bounds, walls, names, time=(0, ramp))
            return HardConstraint(self.initial.field(names, self.t_start), d, names, conditions)
        u0 = SeparableField(((1.0, ((1, GaussianFactor(self.center[0], self.width)),
                                    (2, GaussianFactor(self.center[1], self.width)))),), names)
        d = box_bubble(self.bounds, walls, names, time=(0, RampFactor(self.time_scale())))
        return HardConstraint(u0, d, names, conditions)

    def _continued(self) -> dict:
        return {**self.speed_model.params("c"), "source_width": self.width, "source_center": list(self.center),
                "boundary": self.boundary}

    def _window_options(self) -> dict:
        return {**super()._window_options(), "c": self.c if self.c_fn is None else self.c_fn,
                "source_width": self.width, "source_center": self.center, "boundary": self.boundary,
                "pulse_fraction": self.pulse_fraction, "pulse_radius": self.pulse_radius}

    def _wall_points(self) -> Tensor:
        s = torch.linspace(-1.0, 1.0, 65, dtype=torch.float64).reshape(-1, 1)
        one = torch.ones_like(s)
        return torch.cat([torch.cat([-one, s], 1), torch.cat([one, s], 1), torch.cat([s, -one], 1),
                          torch.cat([s, one], 1)])

    # ----- reference --------------------------------------------------------------------
    def params(self) -> dict:
        return self._with_window({**self.speed_model.params("c"), "t_max": self.t_max, "source_width": self.width,
                                  "source_center": list(self.center), "boundary": self.boundary,
                                  "snapshot_times": self.snapshot_times.tolist(), "fd_refine": self.fd_refine,
                                  "constraint": self.constraint})

    def compute_reference(self, resolution: int) -> ReferenceField:
        from ..validation.fd.wave import sine_series_evolution, wave_2d
        from ..validation.metrics import rel_l2

        r = self.fd_refine
        n = r * (resolution - 1) + 1
        c = self.c if self.c_fn is None else self.speed_model.on_grid

        if self.boundary == "absorbing":
            scheme = {"order": 2, "method": "leapfrog", "cfl": 0.5}
        elif self.c_fn is None:
            scheme = {"order": 4, "method": "dst"}
        else:
            scheme = {"order": 4, "method": "leapfrog", "cfl": 0.5}

        def solve(m: int):
            return wave_2d(lambda X, Y: self.initial_displacement(X, Y), c=c, bounds=self.domain, n=(m, m),
                           t_out=self.snapshot_times, boundary=self.boundary, **scheme)

        sol = solve(n)
        stored = (slice(None), slice(None, None, r), slice(None, None, r))
        u = np.ascontiguousarray(sol.fields["u"][stored])
        attrs = {"fd_refine": r, "solver_spacing": sol.spacing}
        if scheme["method"] == "dst":
            X, Y = np.meshgrid(sol.coords["x"], sol.coords["y"], indexing="ij")
            series = sine_series_evolution(self.initial_displacement(X, Y), c=self.c, bounds=self.domain,
                                           t_out=self.snapshot_times)
            attrs.update(error_estimate=rel_l2(u, series[stored]), error_method="exact",
                         error_reference="sine-series")
        elif (n - 1) % 2 == 0 and n >= 5:
            # Richardson: u_h - u ~ (u_2h - u_h) / (2^p - 1), measured on the 2h nodes.
            coarse = solve((n - 1) // 2 + 1).fields["u"]
            fine = sol.fields["u"][:, ::2, ::2]
            attrs.update(error_estimate=rel_l2(coarse, fine) / (2 ** sol.order - 1), error_method="richardson")
        spacing = {name: (hi - lo) / (resolution - 1) for name, (lo, hi) in zip(("x", "y"), self.domain)}
        if len(self.snapshot_times) > 1:
            spacing["t"] = float(np.max(np.diff(self.snapshot_times)))
        return sol.to_reference(fields={"u": u}, stride={"x": r, "y": r}, spacing=spacing, attrs=attrs)
