"""Initial data of a time window: where a time-dependent problem starts.

A window of a time-dependent problem covers [t_k, t_max] and starts from the value
u_k(x) = u(t_k, x) and, for the wave equation, the velocity v_k(x) = u_t(t_k, x) (SciPy's
``OdeSolver(fun, t0, y0, t_bound)``: the start state is an input). :class:`InitialData`
holds them as fields of the spatial inputs x, in one of two forms:

* closed form: torch callables ``value(x)`` and ``velocity(x)``, x (n, d) the spatial
  coordinates -> (n, 1) (or (n,));
* from a network (:meth:`InitialData.from_network`): a frozen copy of a trained network
  F(t, x) of the previous window, u_k = F(t_k, x) and v_k = F_t(t_k, x) from one forward
  jet (:func:`~pinn_sine.derivatives.forward_jet` with the first derivative along t),
  evaluated on demand at the points asked for; the last point set's values are kept, so
  the "initial" and "initial_velocity" terms of one step share one jet.

A problem takes them as ``initial=`` (``Wave1D(t_start=t_k, initial=data)``); its
initial residuals read :meth:`InitialData.at`, its ``params()`` the record
(:meth:`InitialData.record`: the callables' descriptions, or the network's SHA-256 over
its state dict), so checkpoints and cache keys tell windows apart.
"""
from __future__ import annotations

import copy
import hashlib
import math
import numbers
from typing import Callable

import torch
from torch import Tensor, nn

from ..constraints import CallableField, Field
from ..derivatives import DerivativeSpec, forward_jet
from .base import Problem, describe_callable

KINDS = ("closed_form", "network")


def state_digest(net: nn.Module) -> str:
    """SHA-256 hex of a network's state dict: every entry's name, dtype, shape and bytes,
    in the state dict's order (equal digests: the same weights)."""
    h = hashlib.sha256()
    for name, value in net.state_dict().items():
        t = value.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _column(name: str, u, n: int, like: Tensor) -> Tensor:
    if not isinstance(u, Tensor) or u.numel() != n:
        shape = tuple(u.shape) if isinstance(u, Tensor) else type(u).__name__
        raise ValueError(f"InitialData: {name}(x) must return a tensor of n = {n} values, (n, 1) or (n,), for x of "
                         f"shape {tuple(like.shape)}; got {shape}. Write it with torch operations on x.")
    return u.reshape(n, 1).to(like.dtype)


class InitialData:
    """The value u_k(x) and velocity v_k(x) a time window starts from (module docstring).

    Args:
        value: u_k, a torch callable x (n, d) -> (n, 1) of the spatial inputs.
        velocity: v_k = u_t(t_k, x), likewise; None for a problem whose initial data is a
            value only (the wave problems require it).
        time: t_k, the time the data hold at (None: any window's start; a problem checks
            a given time against its ``t_start``).

    Attributes: ``kind`` ("closed_form" or "network"), ``time``, ``spatial_dim`` (d, or
    None where not known), ``problem_name`` and ``input_names`` (of the network's problem;
    None in closed form), ``source_params`` (that problem's ``params()``), ``digest`` (the
    network's state-dict SHA-256).
    """

    def __init__(self, value: Callable[[Tensor], Tensor], velocity: Callable[[Tensor], Tensor] | None = None, *,
                 time: float | None = None):
        for name, fn in (("value", value), ("velocity", velocity)):
            if fn is not None and not callable(fn):
                raise ValueError(f"InitialData: {name} must be a torch callable of the spatial points x (n, d), got "
                                 f"{fn!r}; use e.g. value=lambda x: torch.sin(math.pi * x), or "
                                 "InitialData.from_network(net, problem, t_k).")
        if value is None:
            raise ValueError("InitialData: value is required (the displacement u(t_k, x)); give a callable.")
        self.kind = "closed_form"
        self.value, self.velocity = value, velocity
        self.time = None if time is None else _time("time", time)
        self.spatial_dim = None
        self.problem_name = self.input_names = self.source_params = self.digest = None
        self._net = None
        self._cache: tuple[Tensor, Tensor, Tensor | None] | None = None

    @classmethod
    def from_network(cls, net: nn.Module, problem: Problem, t_k: float) -> "InitialData":
        """The state of ``net`` (trained on ``problem``, whose first input is "t") at t = t_k:
        u_k(x) = net(t_k, x) and v_k(x) = d net / dt (t_k, x) from one forward jet. A frozen
        copy is taken (later training of ``net`` does not change the data); t_k must lie
        in ``problem``'s time interval."""
        if not isinstance(problem, Problem):
            raise ValueError(f"InitialData.from_network: problem must be the Problem the network was trained on, got "
                             f"{problem!r}.")
        names = tuple(problem.input_names)
        if not names or names[0] != "t":
            raise ValueError(f"InitialData.from_network: {type(problem).__name__} has inputs {names}; initial data "
                             "come from a time-dependent problem whose first input is 't'.")
        if not isinstance(net, nn.Module):
            raise ValueError(f"InitialData.from_network: net must be the trained torch module, got {net!r}.")
        if getattr(net, "in_dim", len(names)) != len(names):
            raise ValueError(f"InitialData.from_network: the network takes {net.in_dim} inputs, "
                             f"{type(problem).__name__} has {len(names)} {names}; give the network trained on it.")
        t_k = _time("t_k", t_k)
        lo, hi = problem.bounds[0]
        if not lo <= t_k <= hi:
            raise ValueError(f"InitialData.from_network: t_k={t_k:g} is outside the problem's time interval "
                             f"[{lo:g}, {hi:g}]; hand off at a time the network was trained on (its window's end).")
        out = cls.__new__(cls)
        out.kind = "network"
        out.value = out.velocity = None
        out.time = t_k
        out.spatial_dim = len(names) - 1
        out.problem_name, out.input_names = problem.name, names
        out.source_params = problem.params()
        frozen = copy.deepcopy(net).eval()
        frozen.requires_grad_(False)
        out._net = frozen
        out.digest = state_digest(frozen)
        out._cache = None
        return out

    @property
    def has_velocity(self) -> bool:
        return self.kind == "network" or self.velocity is not None

    def at(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """(u_k, v_k) at the spatial points x (n, d), each (n, 1) in x's dtype (v_k None
        when the data have no velocity). The network form runs one forward jet at
        (t_k, x) (in the network's dtype and device) and keeps the last call's result:
        the same points again cost nothing."""
        if x.ndim != 2 or (self.spatial_dim is not None and x.shape[1] != self.spatial_dim):
            raise ValueError(f"InitialData.at takes the spatial points (n, {self.spatial_dim or 'd'}), got shape "
                             f"{tuple(x.shape)}.")
        if self.kind == "closed_form":
            n = x.shape[0]
            u = _column("value", self.value(x), n, x)
            v = None if self.velocity is None else _column("velocity", self.velocity(x), n, x)
            return u, v
        cached = self._cache
        if cached is not None and _same_points(cached[0], x):
            return cached[1], cached[2]
        with torch.no_grad():
            jet = forward_jet(self._net, self._inputs(x.detach()), self.input_names, DerivativeSpec(first=("t",)))
        u = jet.u.detach().to(dtype=x.dtype, device=x.device)
        v = jet.d("t").detach().to(dtype=x.dtype, device=x.device)
        self._cache = (x.detach().clone(), u, v)
        return u, v

    def _inputs(self, x: Tensor) -> Tensor:
        """The frozen network's inputs (t_k, x) at the spatial points x (n, d), in its dtype
        and on its device (differentiable in x)."""
        p = next(self._net.parameters(), None)
        dtype, device = (p.dtype, p.device) if p is not None else (x.dtype, x.device)
        return torch.cat([torch.full_like(x[:, :1], self.time), x], dim=1).to(dtype=dtype, device=device)

    def field(self, names: tuple[str, ...], t_k: float, *, velocity: bool = True) -> Field:
        """The data as a constraint field of the inputs ``names`` (t first).

        ``velocity=True`` (second order in time, the wave equation): g(t, x) = u_k(x) +
        (t - t_k) v_k(x), its derivatives by autograd
        (:class:`~pinn_sine.constraints.CallableField`), closed-form data only: a network's
        would need the frozen network's third derivatives (v_k's second x-derivatives
        enter u_xx), which the forward jet does not carry.

        ``velocity=False`` (first order in time, e.g. Allen-Cahn): g(t, x) = u_k(x), in
        either form; from a network a :class:`NetworkField` (u_k and its x-derivatives from
        one forward jet of the frozen network at t_k)."""
        if not velocity:
            if self.kind == "network":
                return NetworkField(self, names)
            value = self.value
            rec = self.record()

            def g0(x):
                return _column("value", value(x[:, 1:]), x.shape[0], x)

            return CallableField(g0, f"u_k = {rec['value_fn']}")
        if self.kind != "closed_form":
            raise ValueError("a hard-constraint window of the wave equation takes closed-form initial data; data from "
                             "a network (InitialData.from_network) would need its third derivatives: train that "
                             "window with constraint='soft'.")
        value, velocity = self.value, self.velocity
        if velocity is None:
            raise ValueError("a hard-constraint window of the wave equation needs the velocity too: give "
                             "InitialData(value, velocity).")
        t_k = float(t_k)

        def g(x):
            s = x[:, 1:]
            n = x.shape[0]
            return _column("value", value(s), n, x) + (x[:, :1] - t_k) * _column("velocity", velocity(s), n, x)

        rec = self.record()
        return CallableField(g, f"u_k + (t - {t_k!r}) v_k with u_k = {rec['value_fn']}, v_k = {rec['velocity_fn']}")

    def record(self) -> dict:
        """What identifies the data, JSON: ``{"kind": "closed_form", "time", "value_fn",
        "velocity_fn"}`` (the callables' descriptions,
        :func:`~pinn_sine.problems.base.describe_callable`; None where one cannot be
        identified) or ``{"kind": "network", "time", "problem", "sha256"}``."""
        if self.kind == "network":
            return {"kind": "network", "time": self.time, "problem": self.problem_name, "sha256": self.digest}
        return {"kind": "closed_form", "time": self.time, "value_fn": describe_callable(self.value),
                "velocity_fn": None if self.velocity is None else describe_callable(self.velocity)}

    def __repr__(self) -> str:
        if self.kind == "network":
            return f"InitialData(network of {self.problem_name} at t={self.time:g}; sha256 {self.digest[:12]})"
        return f"InitialData(closed form, time={self.time!r})"


class NetworkField(Field):
    """g(t, x) = F(t_k, x): a frozen network's value at a window's start as a constraint
    field of (t, x) that is constant in t, for the hard constraint of a window of a
    problem first order in time (u = g + ((t - t_k) / (t_end - t_k)) N: u(t_k) = F(t_k)
    exactly). Its x-derivatives, to second order, come from one forward jet of F at
    (t_k, x) (:func:`~pinn_sine.derivatives.forward_jet`: exact, F's own constraint and
    encodings included, so a chain of windows is exact too); those along t are zero.
    ``value`` is F's forward, differentiable in x (the autograd engine and ``evaluate``
    call it). The last point set's jet is kept: the Gauss-Newton trials of one batch cost
    one jet. Identified by the data's record (the network's SHA-256)."""

    def __init__(self, data: InitialData, names: tuple[str, ...]):
        if data.kind != "network":
            raise ValueError("NetworkField takes the data of a network (InitialData.from_network).")
        self.data, self.names = data, tuple(names)
        if self.names != tuple(data.input_names):
            raise ValueError(f"NetworkField: the window's inputs {self.names} are not the network's "
                             f"{tuple(data.input_names)}.")
        self._cache: tuple | None = None

    def value(self, x):
        return self.data._net(self.data._inputs(x[:, 1:])).reshape(-1, 1).to(x.dtype)

    def evaluate(self, x, dirs, pairs):
        dirs, pairs = tuple(dirs), tuple(pairs)
        key = (dirs, pairs)
        cached = self._cache
        if cached is not None and cached[1] == key and _same_points(cached[0], x):
            return cached[2]
        names = self.names
        second = tuple((names[a], names[b]) for a, b in pairs if a != 0 and b != 0)
        first = tuple(dict.fromkeys([names[a] for a in dirs if a != 0] + [n for pair in second for n in pair]))
        with torch.no_grad():
            jet = forward_jet(self.data._net, self.data._inputs(x[:, 1:].detach()), names,
                              DerivativeSpec(first=first, second=second))
        cast = lambda t: t.detach().reshape(-1, 1).to(dtype=x.dtype, device=x.device)  # noqa: E731
        zero = x.new_zeros((x.shape[0], 1))
        out = (cast(jet.u), {a: zero if a == 0 else cast(jet.d(names[a])) for a in dirs},
               {(a, b): zero if 0 in (a, b) else cast(jet.d2(names[a], names[b])) for a, b in pairs})
        self._cache = (x.detach().clone(), key, out)
        return out

    def describe(self):
        return f"network of {self.data.problem_name} at t={self.data.time!r} (sha256 {self.data.digest})"

    def formula(self):
        return f"F(t={self.data.time:g}, x) (network {self.data.digest[:12]})"


def check_initial(problem: Problem, initial, *, continued: dict, velocity: bool) -> "InitialData | None":
    """``initial`` checked against the window ``problem`` (its ``t_start``,
    ``input_names``, ``name``): an :class:`InitialData` at t_start (with a velocity when
    ``velocity``), from a network of the same problem with the same ``continued``
    parameters (what a window shares with the problem its network came from), or a
    closed form whose callables give one value per point. None passes."""
    if initial is None:
        return None
    if not isinstance(initial, InitialData):
        raise ValueError(f"initial must be an InitialData (pinn_sine.problems.windows) or None, got {initial!r}; "
                         "use InitialData(value, velocity) or InitialData.from_network(net, window, t_k).")
    if initial.time is not None and initial.time != problem.t_start:
        raise ValueError(f"initial holds the data at t = {initial.time:g}, but this window starts at "
                         f"t_start={problem.t_start:g}; give t_start={initial.time!r}.")
    if velocity and not initial.has_velocity:
        raise ValueError("initial has no velocity; the wave equation needs u_t(t_start, x) too: give "
                         "InitialData(value, velocity).")
    if initial.kind == "network":
        if initial.problem_name != problem.name or tuple(initial.input_names) != tuple(problem.input_names):
            raise ValueError(f"initial comes from a network of {initial.problem_name!r} with inputs "
                             f"{initial.input_names}, not of {problem.name!r} {problem.input_names}; hand off from the "
                             "previous window of this problem.")
        src = initial.source_params
        diff = [k for k in continued if src.get(k) != continued[k]]
        if diff:
            raise ValueError(f"initial comes from a {problem.name} with {', '.join(f'{k}={src.get(k)!r}' for k in diff)}"
                             f", this one has {', '.join(f'{k}={continued[k]!r}' for k in diff)}; a window continues "
                             f"the same problem: give the same {', '.join(continued)}.")
    else:  # a callable of the wrong shape raises here
        initial.at(torch.zeros(2, len(problem.input_names) - 1, dtype=torch.float64))
    return initial


def _same_points(cached: Tensor, x: Tensor) -> bool:
    """Whether ``x`` holds the points ``cached`` does (a kept jet can be reused)."""
    return cached.shape == x.shape and cached.dtype == x.dtype and cached.device == x.device \
        and torch.equal(cached, x)


def window_interval(problem: Problem, t_start, t_end) -> tuple[float, float]:
    """(t_start, t_end) of a window cut from ``problem`` (a whole time-dependent problem
    with ``t_start``, ``t_max`` and ``windowed``), checked: not from a window, not from an
    inverse problem, inside the problem's interval and not empty."""
    if problem.windowed:
        raise ValueError(f"{problem.name} is a window already (t_start={problem.t_start:g}); cut windows from the "
                         "whole problem.")
    if problem.unknowns or problem.observations is not None:
        raise ValueError(f"{problem.name}: an inverse problem (unknowns or observations) cannot be marched yet; "
                         "train it in one piece.")
    lo, hi = _time("t_start", t_start), _time("t_end", t_end)
    if not (problem.t_start <= lo < hi <= problem.t_max):
        raise ValueError(f"window [{lo:g}, {hi:g}] is not inside [{problem.t_start:g}, {problem.t_max:g}] or is empty; "
                         "give t_start < t_end within the problem's time interval.")
    return lo, hi


def _time(name: str, value) -> float:
    if isinstance(value, (bool, str)) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or value < 0:
        raise ValueError(f"{name} must be a finite time >= 0, got {name}={value!r}; use e.g. {name}=0.5.")
    return float(value)


__all__ = ["InitialData", "NetworkField", "check_initial", "window_interval", "state_digest", "KINDS"]
