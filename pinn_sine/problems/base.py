"""The Problem interface every PDE implements (docs/design.md, "The data flow, once",
and "Extending: a new PDE")."""
from __future__ import annotations

import dataclasses
import inspect
import numbers
import hashlib
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from ..constraints import ConstrainedNet, HardConstraint
from ..derivatives import DerivativeSpec, Jet, get_engine
from ..validation.reference import ReferenceField

#: how boundary and initial data are imposed: as loss terms, or built into the network
CONSTRAINTS = ("soft", "hard")


class Problem:
    """A PDE with its domain, samplers, residual terms and reference solver.

    This is the public extension point (docs/design.md, "Extending: a new PDE";
    ``examples/heat1d.py`` is a complete one). Subclasses set:
        name: the CLI name ("poisson2d"); required, a non-empty string.
        input_names: the network's inputs in order, e.g. ("t", "x", "y").
        out_dim: number of network outputs.
        bounds: ((lo, hi), ...) per input.
        derivatives: {point-set name: DerivativeSpec} -- what each residual needs. Every
            point set is named here (``DerivativeSpec()`` for values only); other
            entries of a batch are data (targets computed at sampling time, e.g. a
            source term), passed to :meth:`losses` untouched.
    and implement :meth:`sample` (with the keyword ``progress``), :meth:`residuals`
    (or :meth:`losses` for terms that are not mean squares), :meth:`params` and
    :meth:`compute_reference`; :meth:`exact` where an exact solution is known and
    :meth:`pointwise_residual` for causal weighting and RAD sampling.

    Checked when an instance is made: ``name`` is set and ``sample`` takes
    ``progress``; at first use: a residual that reads a point set ``derivatives`` does
    not name raises, naming it. :func:`pinn_sine.problems.check_problem` runs the whole
    conformance suite.

    Hard constraints: a problem that offers them (``offers_hard_constraint``) takes
    ``constraint="soft" | "hard"`` and implements :meth:`hard_constraint`; under "hard"
    the data it imposes are built into the network (:meth:`constrain`) and their point
    sets and loss terms are gone from :attr:`derivatives`, :meth:`sample` and
    :meth:`residuals` (set up with :meth:`_set_constraint`).

    A problem never calls autograd itself and never knows which kernel runs: it names
    derivatives, the engine supplies them (:meth:`compute_losses`).
    """

    name: ClassVar[str]
    input_names: tuple[str, ...] = ()
    out_dim: int = 1
    bounds: tuple[tuple[float, float], ...] = ()
    derivatives: dict[str, DerivativeSpec] = {}
    #: default number of interior collocation points per step
    default_batch: int = 2048
    #: default grid resolution of the reference
    default_resolution: int = 128
    #: suggested first-layer omega for Sine/Finer networks (None: the activation's own)
    default_first_omega: float | None = None
    #: suggested Adam learning rate
    default_lr: float = 1e-3
    #: "soft" (data as loss terms) or "hard" (data built into the network, :meth:`constrain`)
    constraint: str = "soft"
    #: whether ``constraint="hard"`` is available (:meth:`hard_constraint`)
    offers_hard_constraint: ClassVar[bool] = False
    #: the loss term whose per-point values :meth:`pointwise_residual` returns
    pointwise_term: str = "pde"
    #: constructor keyword sets that must raise a ValueError naming the parameter
    #: (:func:`~pinn_sine.problems.check_problem` tries each), e.g. ``({"nu": 0.0},)``
    bad_params: ClassVar[tuple[dict, ...]] = ()
    #: the reference resolution :func:`~pinn_sine.problems.check_problem` uses: small,
    #: a solve of about a second (None: :attr:`default_reference_resolution`)
    check_resolution: ClassVar[int | None] = None

    def __new__(cls, *args, **kwargs):
        _check_class(cls)
        return super().__new__(cls)

    @property
    def in_dim(self) -> int:
        return len(self.input_names)

    # ----- what subclasses provide ------------------------------------------------
    def sample(self, n: int, generator: torch.Generator, *, progress: float = 1.0) -> dict[str, Tensor]:
        """Named point sets for one step, each (n_set, in_dim) float32, plus any data
        entries (targets at those points) under names that are not point sets.

        ``n`` is the number of interior collocation points; the other sets are sized
        relative to it. ``progress`` in [0, 1] is the fraction of training done (for
        curricula).
        """
        raise NotImplementedError

    def residuals(self, jets: dict[str, Jet], batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The residual of each loss term at each of its points, normalised: a dict
        term -> (n_k, c_k) with row i the residual at point i of the term's point set,

            L_k = (1 / n_k) sum_i sum_c r_{k,i,c}^2                (:meth:`losses`).

        Row i must depend on point i only (every PDE residual does), which is what lets
        the Gauss-Newton stage build the residual Jacobian from one forward pass
        (:mod:`pinn_sine.optim`). Problems whose terms are not mean squares override
        :meth:`losses` instead and leave this unimplemented.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not define residuals(jets, batch): Gauss-Newton needs each loss term "
            "as per-point residuals r_k (n_k, c_k) with L_k = mean_i sum_c r_k[i, c]^2.")

    def losses(self, jets: dict[str, Jet], batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Named mean-square residual terms (scalars) from the jets of each point set:
        L_k = mean_i sum_c r_{k,i,c}^2 over :meth:`residuals`."""
        return {name: mean_square(r) for name, r in self.residuals(jets, batch).items()}

    def pointwise_residual(self, jets: dict[str, Jet], batch: dict[str, Tensor]) -> Tensor:
        """The interior residual term at each "interior" point, (n,): the squared,
        normalised residual whose mean is the "pde" term of :meth:`losses` (optional).

        It reads only ``jets["interior"]``, ``batch["interior"]`` and the data entries
        aligned with it. Causal weighting (chunks of it by time) and residual-based
        adaptive sampling (pool points drawn by it) need it.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not define pointwise_residual(jets, batch), which causal weighting "
            "and RAD sampling need: return the squared residual at each interior point, shape (n,), "
            "whose mean is the 'pde' loss term.")

    def params(self) -> dict:
        """The JSON-serialisable parameters that determine the solution (the cache key)."""
        raise NotImplementedError

    def exact(self, x: Tensor) -> Tensor:
        """The exact solution at x (n, in_dim) -> (n, out_dim), where one is known."""
        raise NotImplementedError(f"{type(self).__name__} has no exact solution; use reference().")

    def compute_reference(self, resolution: int) -> ReferenceField:
        """The reference solution on a grid of ``resolution`` nodes per axis (typically
        an FD solve, ``fd.<solver>(...).to_reference()``). Its ``problem`` and ``params``
        may be left empty: :meth:`reference` sets them to :attr:`name` and
        :meth:`reference_params`, the cache key, and caches the field."""
        raise NotImplementedError(f"{type(self).__name__} does not define compute_reference(resolution); return "
                                  "the reference field on the grid, e.g. fd.<solver>(...).to_reference().")

    def hard_constraint(self) -> HardConstraint:
        """The output transform u = g + d N that imposes this problem's boundary and/or
        initial data exactly (:mod:`pinn_sine.constraints`)."""
        raise ValueError(f"{type(self).__name__} offers no hard constraint; use constraint='soft' (the default).")

    # ----- hard constraints ------------------------------------------------------------
    def _set_constraint(self, constraint: str, removed: tuple[str, ...]) -> None:
        """Check ``constraint`` and, under "hard", drop the point sets and data entries
        ``removed`` (those the transform makes exact) from :attr:`derivatives`; call
        after setting :attr:`derivatives`, and pass every sample through
        :meth:`_constrained`."""
        if constraint not in CONSTRAINTS:
            raise ValueError(f'Invalid constraint "{constraint}". Must be one of {list(CONSTRAINTS)}.')
        self.constraint = constraint
        self._removed = removed if constraint == "hard" else ()
        self.derivatives = {k: v for k, v in self.derivatives.items() if k not in self._removed}

    def _constrained(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """``batch`` without the sets a hard constraint makes exact. (They are still drawn, so
        the interior points of a seed are the same under both constraints.)"""
        return {k: v for k, v in batch.items() if k not in getattr(self, "_removed", ())}

    def constrain(self, net: nn.Module) -> nn.Module:
        """The network to train and evaluate: ``ConstrainedNet(net, self.hard_constraint())``
        under ``constraint="hard"``, ``net`` itself under "soft"."""
        if self.constraint == "soft":
            return net
        return ConstrainedNet(net, self.hard_constraint())

    # ----- shared machinery ----------------------------------------------------------
    @property
    def has_residuals(self) -> bool:
        """Whether the loss terms are given as per-point residuals (Gauss-Newton needs them)."""
        return type(self).residuals is not Problem.residuals

    @property
    def has_exact(self) -> bool:
        return type(self).exact is not Problem.exact

    @property
    def exact_solution(self):
        """:meth:`exact` when this instance has an exact solution (a problem class may
        have one only for some cases, e.g. not for an image), else None."""
        if not self.has_exact:
            return None
        try:
            self.exact(torch.zeros(1, self.in_dim, dtype=torch.float64))
        except NotImplementedError:
            return None
        return self.exact

    def jets(self, net: nn.Module, batch: dict[str, Tensor], engine: str = "jet") -> dict[str, Jet]:
        """The net's jet on each point set of ``batch`` that :attr:`derivatives` names, with
        the derivatives it names. Asking the result for a set it does not hold raises a
        KeyError that names the set and the fix."""
        fn = get_engine(engine)
        return _Jets(self, batch, {key: fn(net, batch[key], self.input_names, spec)
                                   for key, spec in self.derivatives.items() if key in batch})

    def compute_losses(self, net: nn.Module, batch: dict[str, Tensor], engine: str = "jet") -> dict[str, Tensor]:
        """Evaluate the net (and the derivatives each set needs) and return the loss terms."""
        return self.losses(self.jets(net, batch, engine), batch)

    def reference(self, resolution: int | None = None, *, cache: bool = True) -> ReferenceField:
        """The finite-difference reference on a grid, cached as HDF5 keyed by the
        hash of the parameters (the same parameters reuse the file)."""
        from ..validation.store import cached_reference

        if resolution is not None and (isinstance(resolution, bool) or not isinstance(resolution, numbers.Integral)):
            raise ValueError(f"resolution must be an integer >= 3 (grid points per axis) or None for the problem's "
                             f"default, got resolution={resolution!r}.")
        resolution = self.default_reference_resolution if resolution is None else int(resolution)
        if resolution < 3:
            raise ValueError(f"resolution must be >= 3, got {resolution}.")
        params = self.reference_params(resolution)
        cacheable = cache and not _has_uncacheable(params)
        return cached_reference(self.name, params, lambda: self._attach(self.compute_reference(resolution), params),
                                cache=cacheable)

    def _attach(self, ref: ReferenceField, params: dict) -> ReferenceField:
        """``ref`` with this problem's name and the reference parameters (the cache key)."""
        if not isinstance(ref, ReferenceField):
            raise TypeError(f"{type(self).__name__}.compute_reference returned {type(ref).__name__}; expected a "
                            "ReferenceField (an FDSolution converts with .to_reference()).")
        return dataclasses.replace(ref, problem=self.name, params=params)

    @property
    def default_reference_resolution(self) -> int:
        """The resolution ``reference()`` uses when given none (data-defined grids, such
        as an image's pixels or a velocity array, override it)."""
        return self.default_resolution

    def predict(self, net: nn.Module, ref: ReferenceField) -> dict[str, np.ndarray]:
        """The network's fields on ``ref``'s grid, as ``evaluate`` compares them. Problems
        whose prediction is not a point evaluation (anti-aliased rendering) override it."""
        from ..validation.evaluate import predict

        return predict(net, ref)

    def reference_params(self, resolution: int) -> dict:
        """The parameters of the reference at ``resolution`` (its cache key): :meth:`params`
        without the constraint, which changes how the network is trained, not the
        solution (hard and soft problems share one reference file)."""
        return {**{k: v for k, v in self.params().items() if k != "constraint"}, "resolution": resolution}

    def grid(self, resolution: int) -> dict[str, np.ndarray]:
        """Node-centred 1-D coordinates per input with ``resolution`` points each."""
        return {n: np.linspace(lo, hi, resolution) for n, (lo, hi) in zip(self.input_names, self.bounds)}

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({body})"


def manufactured_box_batch(problem, n: int, generator: torch.Generator) -> dict[str, Tensor]:
    """One step's points of a manufactured problem on a box with Dirichlet data: ``n``
    interior points from ``problem.sampler``, ``boundary_fraction * n`` boundary points,
    and the targets at them, f = ``problem.source`` and g = ``problem.exact``, computed
    here in float64 outside the (possibly compiled) loss (the trainer casts them to the
    network's dtype)."""
    from .. import sampling

    n_b = max(1, int(round(problem.boundary_fraction * n)))
    xi = sampling.box(n, problem.bounds, generator, problem.sampler)
    xb = sampling.box_boundary(n_b, problem.bounds, generator)
    return {"interior": xi, "boundary": xb, "f": problem.source(xi.double()), "g": problem.exact(xb.double())}


def manufactured_boundary_target(problem, jets: dict[str, Jet], batch: dict[str, Tensor]) -> Tensor:
    """g at the boundary points of a manufactured box problem's batch, in the jets' dtype:
    the batch's "g" where ``sample`` put it there, else ``problem.exact`` (a batch a user
    built with only the points)."""
    dtype = jets["boundary"].u.dtype
    return (batch["g"] if "g" in batch else problem.exact(batch["boundary"].double())).to(dtype)


def manufactured_box_constraint(problem, separable_terms: tuple | None) -> HardConstraint:
    """u = g + d N for a manufactured problem on a rectangle: d the bubble over
    ``problem.bounds``, g the transfinite interpolation of u's boundary values. The
    default solution passes its closed-form ``separable_terms`` (of a
    :class:`~pinn_sine.constraints.SeparableField`); a user's ``problem.u_fn`` (None
    there) gets its derivatives along the sides by autograd."""
    from ..constraints import CallableField, SeparableField, TransfiniteField, box_bubble

    names = problem.input_names
    if separable_terms is not None:
        u = SeparableField(separable_terms, names)
    else:
        fn = problem.u_fn
        u = CallableField(lambda x: fn(x[:, 0], x[:, 1]), describe_callable(fn))
    return HardConstraint(TransfiniteField(u, problem.bounds), box_bubble(problem.bounds, (0, 1), names), names,
                          ("boundary",))


def mean_square(r: Tensor) -> Tensor:
    """mean_i sum_c r[i, c]^2 of per-point residuals r (n, c): a loss term."""
    return (r ** 2).sum(1).mean()


def describe_callable(fn) -> str | None:
    """A stable description of a user callable for the cache key: its qualified name
    and a hash of its source. None when the source is unavailable (then no caching)."""
    try:
        src = inspect.getsource(fn)
    except (OSError, TypeError):
        return None
    return f"{getattr(fn, '__qualname__', type(fn).__name__)}:{hashlib.sha256(src.encode()).hexdigest()[:16]}"


def exact_laplacian(u_fn, x: Tensor) -> Tensor:
    """Laplacian of a manufactured solution u_fn(x, y) at x (n, 2) -> (n, 1), by autograd.

    This is problem data (a source term), not a derivative of the network: problems
    compute it in ``sample()``, outside the (possibly compiled) loss, since double
    backward cannot be compiled.
    """
    from ..derivatives.autograd import grad_or_zero

    with torch.enable_grad():
        x = x.detach().clone().requires_grad_(True)
        u = u_fn(x[:, 0], x[:, 1])
        g = grad_or_zero(u, x, create_graph=True)  # zero for a constant u
        lap = sum(grad_or_zero(g[:, i], x)[:, i] for i in range(2))  # zero for a linear one
    return lap.detach().reshape(-1, 1)


class _Jets(dict):
    """The jets of a batch: a dict that, asked for a point set it lacks, says why."""

    def __init__(self, problem: Problem, batch: dict, jets: dict):
        super().__init__(jets)
        self._problem, self._batch = problem, batch

    def __missing__(self, key):
        problem = self._problem
        where = (f"{type(problem).__name__}.derivatives names only {sorted(problem.derivatives)}"
                 if key in self._batch else f"the batch has only {sorted(self._batch)}")
        raise KeyError(f"the residuals read jets[{key!r}], but {where}. Name every point set in derivatives "
                       f"({key!r}: DerivativeSpec() for values only) and draw it in sample().")


_CHECKED: set[type] = set()


def _check_class(cls: type) -> None:
    """The class-level contract, checked once per class when its first instance is made."""
    if cls in _CHECKED:
        return
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__name__} has no name; set the class attribute name = \"...\" (the CLI and "
                        "cache name, e.g. \"heat1d\").")
    params = inspect.signature(cls.sample).parameters
    if "progress" not in params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        raise TypeError(f"{cls.__name__}.sample{inspect.signature(cls.sample)} does not take the keyword progress; "
                        "write def sample(self, n, generator, *, progress=1.0) (the trainer passes the fraction "
                        "of training done, for curricula).")
    _CHECKED.add(cls)


def _has_uncacheable(params: dict) -> bool:
    return any(v is None and k.endswith("_fn") for k, v in params.items())


class FunctionNet(nn.Module):
    """Wraps a callable u(x) (n, d) -> (n, out) as a module, so the exact solution can be
    fed through the same loss code as a network (with the autograd engine)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)
