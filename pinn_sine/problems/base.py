"""The Problem interface every PDE implements (docs/design.md, "The data flow, once",
and "Extending: a new PDE")."""
from __future__ import annotations

import collections
import dataclasses
import decimal
import dis
import fractions
import functools
import hashlib
import inspect
import json
import numbers
import os
import sys
import sysconfig
import warnings
import weakref
from collections.abc import Mapping
from types import BuiltinFunctionType, BuiltinMethodType, CodeType, FunctionType, MethodType, ModuleType
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from ..constraints import ConstrainedNet, HardConstraint
from ..derivatives import DerivativeSpec, Jet, get_engine
from ..validation.reference import ReferenceField

#: how boundary and initial data are imposed: as loss terms, or built into the network
CONSTRAINTS = ("soft", "hard")

#: what a loss term imposes (:class:`Term`)
TERM_KINDS = ("pde", "boundary", "initial", "data")


@dataclasses.dataclass(frozen=True)
class Term:
    """One least-squares loss term of a problem, as :meth:`Problem.terms` declares it.

    The term's loss is L_k = (1 / n_k) sum_i sum_c r_{k,i,c}^2 with the residual
    r_k = ``residual(jets, batch)``, shape (n_k, c_k). Row i reads point i of each of the
    point sets ``sets`` and of nothing else: one set for an ordinary term; several
    aligned sets of equal size for a term that ties points together (row i of a
    periodicity term u(x_i) - u(x_i + L) reads point i of "left" and of "right"). This
    row-locality is what lets the Gauss-Newton stages build the Jacobian of the residual
    from one forward jet pass (:class:`~pinn_sine.derivatives.Linearization`).

    Attributes:
        name: the loss term's name ("pde", "boundary", ...), unique within the problem.
        sets: the point sets (keys of :attr:`Problem.derivatives`) its rows read.
        kind: one of :data:`TERM_KINDS`: "pde" (the equation), "boundary", "initial"
            (data imposed on the boundary or at t0), "data" (observations).
        residual: ``(jets, batch) -> Tensor (n_k, c_k)``.
    """

    name: str
    sets: tuple[str, ...]
    kind: str
    residual: object

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Term: name must be a non-empty string, got {self.name!r}.")
        sets = (self.sets,) if isinstance(self.sets, str) else self.sets
        if (not isinstance(sets, (tuple, list)) or not sets
                or not all(isinstance(k, str) and k for k in sets) or len(set(sets)) != len(sets)):
            raise ValueError(f"Term {self.name!r}: sets must name the point sets its rows read, e.g. "
                             f"(\"interior\",), each once; got {self.sets!r}.")
        object.__setattr__(self, "sets", tuple(sets))
        if self.kind not in TERM_KINDS:
            raise ValueError(f"Term {self.name!r}: kind must be one of {list(TERM_KINDS)}, got {self.kind!r}.")
        if not callable(self.residual):
            raise ValueError(f"Term {self.name!r}: residual must be a callable (jets, batch) -> (n, c) tensor, "
                             f"got {type(self.residual).__name__}.")



class FixedSets(Mapping):
    """Named point sets (and data entries aligned with them) that a problem uses as given
    at every draw, with where each came from: what :meth:`Problem.fixed_sets` returns.

    Build one from arrays (``FixedSets({"interior": x, "f": f})``: the points and targets
    of a paper, kept in their dtype, float64 included; NumPy arrays are converted) or from
    one seeded draw of the problem's own sampler (:meth:`from_draw`, which records ``n``
    and the seed); ``a | b`` joins two (a name in both is an error). A plain dict of
    tensors works as well (recorded as "given").

    Attributes:
        origins: {name: "given" | {"n": ..., "seed": ..., "progress": ...}}, as recorded
            in :meth:`Problem.fixed_sets_record`.
    """

    def __init__(self, sets: Mapping, *, origins: Mapping | None = None):
        if not isinstance(sets, Mapping):
            raise TypeError(f"FixedSets takes a mapping name -> (n, d) array, got {type(sets).__name__}.")
        self._sets = {}
        for key, value in sets.items():
            if not isinstance(key, str) or not key:
                raise TypeError(f"FixedSets: names must be non-empty strings, got {key!r}.")
            self._sets[key] = _fixed_tensor(key, value)
        origins = dict(origins or {})
        self.origins = {k: origins.get(k, "given") for k in self._sets}

    @classmethod
    def from_draw(cls, problem: "Problem", n: int, seed: int, *, names: tuple[str, ...] | None = None,
                  progress: float = 1.0) -> "FixedSets":
        """The entries ``names`` (default: every entry) of one draw of ``problem.sample(n,
        torch.Generator().manual_seed(seed), progress=progress)``, fixed from then on; the
        origin records ``n``, ``seed`` and ``progress``. Where ``names`` holds only point
        sets, the data entries aligned with them (as many rows as the set, and no other
        point set of that size) come along, so that targets stay at their points."""
        from .. import sampling

        n = sampling.check_count(n, "n")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise ValueError(f"FixedSets.from_draw: seed must be an integer, got {seed!r}.")
        batch = problem.sample(n, torch.Generator().manual_seed(int(seed)), progress=progress)
        names = tuple(batch) if names is None else ((names,) if isinstance(names, str) else tuple(names))
        unknown = [k for k in names if k not in batch]
        if unknown:
            raise ValueError(f"FixedSets.from_draw: {problem.name}.sample() draws {sorted(batch)}, not {unknown}.")
        points = set(problem.derivatives)
        if all(k in points for k in names):
            names = names + tuple(k for k in batch if k not in names and k not in points
                                  and _aligned_with(problem, batch, k, names))
        origin = {"n": n, "seed": int(seed), "progress": float(progress)}
        return cls({k: batch[k] for k in names}, origins={k: dict(origin) for k in names})

    def __getitem__(self, key: str) -> Tensor:
        return self._sets[key]

    def __iter__(self):
        return iter(self._sets)

    def __len__(self) -> int:
        return len(self._sets)

    def __or__(self, other: Mapping) -> "FixedSets":
        other = other if isinstance(other, FixedSets) else FixedSets(other)
        both = sorted(set(self) & set(other))
        if both:
            raise ValueError(f"FixedSets: {both} are fixed twice; give each set once.")
        return FixedSets({**self._sets, **other._sets}, origins={**self.origins, **other.origins})

    def __repr__(self) -> str:
        body = ", ".join(f"{k}: {tuple(v.shape)} {str(v.dtype).replace('torch.', '')}" for k, v in self.items())
        return f"FixedSets({{{body}}})"


def _fixed_tensor(key: str, value) -> Tensor:
    """``value`` as a CPU tensor of its own (real) dtype, for the fixed set ``key``."""
    if isinstance(value, np.ndarray):
        if not (np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.integer)):
            raise TypeError(f"fixed set {key!r} is a NumPy array of {value.dtype}; give real numbers.")
        value = torch.from_numpy(np.array(value, copy=True))
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"fixed set {key!r} is a {type(value).__name__}; give a tensor or a NumPy array "
                        "(n, in_dim) for a point set, (n, ...) for data aligned with one.")
    if value.is_complex() or value.dtype == torch.bool:
        raise TypeError(f"fixed set {key!r} has dtype {value.dtype}; give real numbers.")
    return value.detach().to("cpu").clone().contiguous()


def _aligned_with(problem: "Problem", batch: dict, key: str, names: tuple) -> bool:
    """Whether the data entry ``key`` of ``batch`` belongs to one of the point sets
    ``names`` by its length; ValueError when another point set has that length too."""
    rows = batch[key].shape[0] if batch[key].ndim else None
    owners = [k for k in problem.derivatives if k in batch and batch[k].shape[0] == rows]
    if not any(k in names for k in owners):
        return False
    if len(owners) > 1:
        raise ValueError(f"FixedSets.from_draw: the data entry {key!r} has {rows} rows, as many as the point sets "
                         f"{owners}; name the data entries to fix in names (e.g. names=({owners[0]!r}, {key!r})).")
    return True


def fixed_sets_digest(sets) -> str:
    """SHA-256 (hex) over the names, dtypes, shapes and bytes of fixed point sets: a
    :class:`FixedSets` or mapping of tensors, or a :class:`Problem` (its
    :meth:`~Problem.fixed_sets`). Names are taken in sorted order, so the digest does not
    depend on the order they are declared in."""
    if isinstance(sets, Problem):
        sets = sets._fixed()
    digest = hashlib.sha256()
    for key in sorted(sets):
        data = _fixed_tensor(key, sets[key]).reshape(-1)
        header = json.dumps([key, str(data.dtype), list(sets[key].shape)], separators=(",", ":"))
        digest.update(header.encode() + b"\0")
        digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()



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
    and implement :meth:`sample` (with the keyword ``progress``), :meth:`terms` (the
    least-squares loss terms, each a :class:`Term` naming the point sets its rows read;
    :meth:`residuals`, :meth:`losses` and :meth:`pointwise_residual` derive from them),
    :meth:`params` and :meth:`compute_reference`; :meth:`exact` where an exact solution
    is known. A problem may instead write :meth:`residuals` itself (the form before
    :meth:`terms`; it keeps working, with the point sets of each term found from the
    Jacobian's bookkeeping) or, for terms that are not mean squares, :meth:`losses`.

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
    #: the measured ``pinn-sine solve`` set-up of this problem, used where the command
    #: line is silent (``--no-recipe``: the plain defaults): solve options by name
    #: (``"stage"``: a list of ``--stage`` specs, used only when no stage option is
    #: given; ``"stall"``: a ``--stall`` value), and ``"problem"``: constructor options.
    #: Python's ``train()`` does not read it. E.g. ``{"activation": "tanh", "width": 20,
    #: "dtype": "float64", "stage": ["adam:steps=1000", "gn:steps=4000"]}``.
    recipe: ClassVar[dict] = {}
    #: inputs in which the solution is periodic, name -> period; build_net makes the
    #: network exactly periodic in them (:class:`~pinn_sine.nets.PeriodicEncoding`)
    periodic: dict[str, float] = {}
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
    #: True when :meth:`compute_reference` reads the field from data
    #: (``ReferenceField.from_file`` / ``from_arrays``) rather than solving on a grid:
    #: :meth:`reference` then calls ``compute_reference(None)``, refuses a resolution it
    #: could not honour, keys the field by ``reference_params(None)`` and the data's
    #: SHA-256, and reads it every time instead of caching it (the file is its own store)
    reference_from_data: ClassVar[bool] = False
    #: the parameters an inverse problem may recover (:meth:`declare_unknown`): name ->
    #: the infimum of its admissible values (0.0: must be positive, which makes a lower
    #: bound of 0 the default), or None (any real). The problem reads each through
    #: :meth:`coefficient` in its residuals, and keeps the defining value (the attribute
    #: of the same name) in its normalisations, reference and cache key.
    unknown_parameters: ClassVar[dict[str, float | None]] = {}

    def __new__(cls, *args, **kwargs):
        _check_class(cls)
        return super().__new__(cls)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # params() records the fixed point sets (their digest) wherever the parameters are
        # recorded -- checkpoints, config.json, the reference key -- and terms() gains the
        # "data" term of attached observations (observe()), without each problem having
        # to: the params() and terms() a class defines are wrapped once.
        _wrap_own(cls, "params", "_with_fixed_record")
        _wrap_own(cls, "terms", "_with_data_term")

    @property
    def in_dim(self) -> int:
        return len(self.input_names)

    # ----- what subclasses provide ------------------------------------------------
    def sample(self, n: int, generator: torch.Generator, *, progress: float = 1.0) -> dict[str, Tensor]:
        """Named point sets for one step, each (n_set, in_dim) float32, plus any data
        entries (targets at those points) under names that are not point sets.

        ``n`` is the number of interior collocation points; the other sets are sized
        relative to it. ``progress`` in [0, 1] is the fraction of training done (for
        curricula). Training draws through :meth:`draw`, which replaces the sets of
        :meth:`fixed_sets`; a problem whose every point set is fixed need not define it.
        """
        raise NotImplementedError(f"{type(self).__name__} does not define sample(n, generator, *, progress=1.0); "
                                  "draw its point sets with pinn_sine.sampling, or fix them all in fixed_sets().")

    def fixed_sets(self) -> "Mapping[str, Tensor]":
        """Named point sets, and data entries aligned with them, used as given at every
        draw instead of :meth:`sample`'s: a :class:`FixedSets` (arrays of a paper, or
        :meth:`FixedSets.from_draw` for one seeded draw recorded once) or a dict of
        tensors, each (n_k, in_dim) for a point set of :attr:`derivatives`, (n_k, ...)
        for data aligned with one. Default: none. Called once per instance (the result is
        kept); stored as given (float64 allowed), the trainer casts them as any batch.
        A fixed set is never subsampled or resampled: its size is its own, whatever the
        batch. :meth:`params` records their digest (:meth:`fixed_sets_record`)."""
        return {}

    def terms(self) -> tuple[Term, ...]:
        """The least-squares loss terms, each a :class:`Term`: its name, the point sets
        its rows read, its kind and its residual function. Declaring them is the
        preferred form of a problem: :meth:`residuals`, :meth:`losses` and
        :meth:`pointwise_residual` derive from it, and
        :func:`~pinn_sine.problems.check_problem` checks the declarations."""
        raise NotImplementedError(f"{type(self).__name__} does not declare terms(); return its loss terms as "
                                  "pinn_sine.problems.Term(name, sets, kind, residual).")

    @property
    def has_terms(self) -> bool:
        """Whether the problem declares its loss terms (:meth:`terms`)."""
        return type(self).terms is not Problem.terms

    def draw(self, n: int, generator: torch.Generator, *, progress: float = 1.0) -> dict[str, Tensor]:
        """The points a training step uses: :meth:`sample`'s draw with the sets of
        :meth:`fixed_sets` in place of its own (copies, in their stored dtype). Every
        stage and the trainer draw through this (not :meth:`sample` directly), so that
        what the problem prescribes beyond its sampler applies to every stage.

        ``n`` goes to :meth:`sample` and so sizes the sets that are not fixed (the
        interior, and what is sized relative to it); a fixed set keeps its own size, and a
        problem whose every point set is fixed ignores ``n`` (without a :meth:`sample`,
        nothing is drawn and ``generator`` is untouched)."""
        obs = self.observations
        if obs is not None:  # the observation points: fixed, and no business of sample()'s
            return {**self._draw(n, generator, progress), "observations": obs.points.clone()}
        return self._draw(n, generator, progress)

    def _draw(self, n: int, generator: torch.Generator, progress: float) -> dict[str, Tensor]:
        fixed = self._fixed()
        if not fixed:
            return self.sample(n, generator, progress=progress)
        if type(self).sample is Problem.sample:
            loose = [k for k in self.derivatives if k not in fixed and k != "observations"]
            if loose:
                raise NotImplementedError(f"{type(self).__name__} fixes only {sorted(fixed)} and has no sample() for "
                                          f"its other point sets {loose}; fix them too, or define sample().")
            batch = {}
        else:
            batch = self.sample(n, generator, progress=progress)
        return {**batch, **{k: v.clone() for k, v in fixed.items()}}

    def _fixed(self) -> FixedSets:
        """:meth:`fixed_sets`, checked for type, converted and kept (under a hard
        constraint, without the sets it makes exact)."""
        cached = self.__dict__.get("_fixed_sets_cache")
        if cached is None:
            sets = self.fixed_sets()
            if not isinstance(sets, Mapping):
                raise TypeError(f"{type(self).__name__}.fixed_sets() returned {type(sets).__name__}; return a "
                                "FixedSets or a dict name -> tensor.")
            sets = sets if isinstance(sets, FixedSets) else FixedSets(sets)
            removed = getattr(self, "_removed", ())
            if any(k in removed for k in sets):
                sets = FixedSets({k: v for k, v in sets.items() if k not in removed},
                                 origins={k: v for k, v in sets.origins.items() if k not in removed})
            self.__dict__["_fixed_sets_cache"] = cached = sets
        return cached

    def fixed_sets_record(self) -> dict | None:
        """What identifies the fixed sets, JSON: ``{"digest": SHA-256 hex
        (:func:`fixed_sets_digest`), "sets": {name: {"shape", "dtype", "origin"}}}``,
        origin "given" or the seeded draw's ``{"n", "seed", "progress"}``; None without
        fixed sets. :meth:`params` carries it under "fixed_sets"."""
        sets = self._fixed()
        if not sets:
            return None
        record = self.__dict__.get("_fixed_sets_record")
        if record is None:
            record = {"digest": fixed_sets_digest(sets),
                      "sets": {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", ""),
                                   "origin": sets.origins[k]} for k, v in sorted(sets.items())}}
            self.__dict__["_fixed_sets_record"] = record
        return json.loads(json.dumps(record))

    def _with_fixed_record(self, params):
        record = self.fixed_sets_record()
        if record is None or not isinstance(params, dict):
            return params
        return {**params, "fixed_sets": record}

    def residuals(self, jets: dict[str, Jet], batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The residual of each loss term at each of its points, normalised: a dict
        term -> (n_k, c_k) with row i the residual at point i of the term's point set,

            L_k = (1 / n_k) sum_i sum_c r_{k,i,c}^2                (:meth:`losses`).

        Row i must depend on point i only (every PDE residual does), which is what lets
        the Gauss-Newton stage build the residual Jacobian from one forward pass
        (:mod:`pinn_sine.optim`). Problems whose terms are not mean squares override
        :meth:`losses` instead and leave this unimplemented.

        Derived from :meth:`terms` where the problem declares them.
        """
        if self.has_terms:
            return {t.name: t.residual(jets, batch) for t in self.terms()}
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
        adaptive sampling (pool points drawn by it) need it. Derived from the term
        :attr:`pointwise_term` of :meth:`terms` where the problem declares them.
        """
        if self.has_terms:
            for t in self.terms():
                if t.name == self.pointwise_term:
                    return (t.residual(jets, batch) ** 2).sum(1)
            raise NotImplementedError(f"{type(self).__name__}.terms() has no term {self.pointwise_term!r} "
                                      "(pointwise_term), which pointwise_residual returns.")
        raise NotImplementedError(
            f"{type(self).__name__} does not define pointwise_residual(jets, batch), which causal weighting "
            "and RAD sampling need: return the squared residual at each interior point, shape (n,), "
            "whose mean is the 'pde' loss term.")

    def params(self) -> dict:
        """The JSON-serialisable parameters that determine the solution (the cache key).
        Where the problem has :meth:`fixed_sets`, the result also holds their record under
        "fixed_sets" (added to the params() a subclass defines), so checkpoints, config.json
        and a resume's compatibility check identify the points."""
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
        return self.has_terms or type(self).residuals is not Problem.residuals

    @property
    def has_pointwise(self) -> bool:
        """Whether :meth:`pointwise_residual` is available (written, or derived from a
        declared :attr:`pointwise_term`)."""
        if type(self).pointwise_residual is not Problem.pointwise_residual:
            return True
        return self.has_terms and any(t.name == self.pointwise_term for t in self.terms())

    def coefficients(self) -> dict[str, Tensor]:
        """The problem's trainable coefficients (name -> tensor with requires_grad),
        fitted together with the network by every stage: the columns after the
        network's in the Jacobian (:class:`~pinn_sine.derivatives.Linearization`) and
        extra parameters for Adam and L-BFGS. Default: the raw values of the parameters
        declared unknown (:meth:`declare_unknown`), none for a forward problem. A problem
        may also return coefficients of its own here and read them in its residuals."""
        return dict(self.__dict__.get("_raw", {}))

    # ----- inverse problems: unknown parameters and observations ------------------------
    def declare_unknown(self, name: str, guess, *, lower: float | None = None,
                        upper: float | None = None) -> "Problem":
        """Make the parameter ``name`` unknown: a trainable coefficient that every stage
        fits with the network, starting from ``guess`` and kept inside [lower, upper] by
        a transform (:mod:`pinn_sine.problems.unknowns`). A parameter that must be
        positive (``unknown_parameters[name] == 0``) gets ``lower=0`` unless given. The
        defining value (``self.<name>``, the constructor's) stays what the reference,
        the cache key and the loss normalisations use; the learned value is a result
        (:meth:`coefficient_values`). Returns the problem, so calls chain.

        Raises:
            ValueError: a parameter the problem cannot recover (the ones it can are
                listed), bounds that exclude the guess or admit inadmissible values, a
                parameter declared twice.
        """
        from .unknowns import Unknown

        allowed = type(self).unknown_parameters
        if name not in allowed:
            have = sorted(allowed) if allowed else "none"
            raise ValueError(f"{type(self).__name__} has no parameter {name!r} that can be unknown; the parameters "
                             f"it can recover: {have}.")
        unknowns = self.__dict__.setdefault("_unknowns", {})
        if name in unknowns:
            raise ValueError(f"{type(self).__name__}: {name!r} is already unknown ({unknowns[name].describe()}); "
                             "declare each parameter once.")
        floor = allowed[name]
        if floor is not None:
            if lower is None:
                lower = floor
            elif lower < floor:
                raise ValueError(f"{type(self).__name__}: the lower bound {lower:g} of {name!r} admits values below "
                                 f"{floor:g}, which the parameter cannot take; use lower >= {floor:g}.")
        unknown = Unknown(name, guess, lower, upper)
        self._check_unknown(unknown)
        unknowns[name] = unknown
        self.__dict__.setdefault("_raw", {})[name] = unknown.initial()
        return self

    def _check_unknown(self, unknown) -> None:
        """Raise ValueError unless this problem can recover ``unknown`` as declared: by
        default a scalar; a problem with a vector unknown (a velocity expansion) or with
        conditions (a constant wave speed) overrides this."""
        if unknown.shape != ():
            raise ValueError(f"{type(self).__name__}: {unknown.name!r} is a scalar, got a guess of shape "
                             f"{unknown.shape}.")

    def unknown_truth(self, name: str):
        """The defining value of the unknown ``name`` (what a synthetic draw of this
        problem was made with): the parameter itself (a number, or a list for a vector)."""
        value = getattr(self, name)
        return value.tolist() if isinstance(value, Tensor) else value

    @property
    def unknowns(self) -> "dict[str, object]":
        """The declared unknowns, name -> :class:`~pinn_sine.problems.unknowns.Unknown`."""
        return dict(self.__dict__.get("_unknowns", {}))

    def coefficient(self, name: str):
        """The value of parameter ``name`` in the residuals: the transformed trainable
        coefficient where it is unknown (a tensor), else the defining value."""
        unknown = self.__dict__.get("_unknowns", {}).get(name)
        if unknown is None:
            return getattr(self, name)
        return unknown.value(self.__dict__["_raw"][name])

    def coefficient_values(self) -> dict[str, float | list[float]]:
        """The current value of every unknown (a number, or a list for a vector)."""
        out = {}
        for name, unknown in self.unknowns.items():
            v = unknown.value(self.__dict__["_raw"][name].detach())
            out[name] = v.tolist()
        return out

    def observe(self, observations) -> "Problem":
        """Fit the network to point observations too: a loss term "data" of kind "data"
        reading the point set "observations" (the observation points, the same at every
        draw), with rows (u(x_i) - y_i) / s_i, s_i the observation's noise level or,
        without one, the RMS of the values (:meth:`Observations.residual
        <pinn_sine.observations.Observations.residual>`). Weight it like any term:
        ``train(weights={"data": w})``. Returns the problem.

        Raises:
            ValueError: observations of other inputs or outputs than the problem's, or
                points outside its domain; a problem that does not declare its terms.
        """
        from ..observations import Observations

        if not isinstance(observations, Observations):
            raise TypeError(f"observe() takes a pinn_sine.observations.Observations, got {observations!r}; "
                            "read one with Observations.from_file(path) or make one with Observations.from_arrays.")
        if not self.has_terms:
            raise ValueError(f"{type(self).__name__} does not declare terms(); observations add a term to them.")
        if "observations" in type(self).derivatives or (
                "observations" in self.derivatives and self.observations is None):
            raise ValueError(f"{type(self).__name__} already has a point set named 'observations'.")
        observations.check(self)
        self.__dict__["_observations"] = observations
        self.derivatives = {**{k: v for k, v in self.derivatives.items() if k != "observations"},
                            "observations": DerivativeSpec()}
        return self

    def observable(self, u: Tensor, x: Tensor) -> Tensor:
        """What the observations measure, from the network's output ``u`` (n, out_dim)
        at the observation points ``x``: ``u`` itself here; a problem whose network
        learns part of the solution adds the rest (the point source's scattered
        formulation adds its background field)."""
        return u

    @property
    def observations(self):
        """The attached :class:`~pinn_sine.observations.Observations` (:meth:`observe`), or None."""
        return self.__dict__.get("_observations")

    def _with_data_term(self, terms):
        obs = self.observations
        if obs is None:
            return terms
        terms = tuple(terms)
        if any(t.name == "data" for t in terms):
            raise ValueError(f"{type(self).__name__}.terms() already has a term 'data'; observations add one.")

        def data(jets, batch, obs=obs):
            return obs.residual(self.observable(jets["observations"].u, batch["observations"]))

        return terms + (Term("data", ("observations",), "data", data),)

    def inverse_record(self) -> dict | None:
        """What makes this an inverse problem, JSON (config.json, checkpoints): the
        unknowns' declarations and the observations' record; None for a forward problem."""
        unknowns, obs = self.unknowns, self.observations
        if not unknowns and obs is None:
            return None
        return {"unknowns": {k: u.describe() for k, u in unknowns.items()},
                "observations": None if obs is None else obs.record()}

    def window(self, t_start: float, t_end: float, initial=None) -> "Problem":
        """This time-dependent problem on the time window [t_start, t_end], starting from
        ``initial`` (a :class:`~pinn_sine.problems.windows.InitialData` at t_start, e.g.
        ``InitialData.from_network(previous_net, previous_window, t_start)``; None: the
        problem's own data, for the first window): a new problem with the same equation,
        parameters and sampling options, whose ``bounds`` start at t_start, whose initial
        residuals read ``initial`` and whose reference is the whole problem's solution on
        the window's times. What :func:`pinn_sine.march` trains, window after window.

        A problem that can be marched overrides it (the wave problems do; see
        ``examples/heat1d.py`` for a problem of one's own); this default refuses."""
        raise NotImplementedError(
            f"{type(self).__name__} cannot be marched in time: it does not define window(t_start, t_end, initial) "
            "(a copy of the problem on [t_start, t_end] starting from given data; see Wave1D.window or "
            "examples/heat1d.py). Train it in one piece with train().")

    @property
    def marchable(self) -> bool:
        """Whether :meth:`window` is defined (the problem can be marched in time)."""
        return type(self).window is not Problem.window

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
        hash of the parameters (the same parameters reuse the file).

        A problem with :attr:`reference_from_data` gets ``compute_reference(None)``, a
        field read from data, with the parameters ``reference_params(None)`` plus
        ``data_sha256`` (the data's digest, from its provenance); a ``resolution`` is
        refused (ValueError), the cache is not used."""
        from ..validation.store import cached_reference, uncached_reference

        if self.reference_from_data:
            if resolution is not None:
                raise ValueError(f"the reference of {self.name} is read from data on its own points "
                                 f"(reference_from_data); resolution={resolution!r} cannot be honoured: leave it "
                                 "out (no --resolution).")

            def read() -> ReferenceField:
                ref = self.compute_reference(None)
                prov = ref.provenance if isinstance(ref, ReferenceField) else None
                if not isinstance(prov, dict) or prov.get("source") not in ("file", "arrays") \
                        or not isinstance(prov.get("sha256"), str):
                    raise TypeError(f"{type(self).__name__}.compute_reference returned {type(ref).__name__} without "
                                    "the provenance of its data; with reference_from_data = True return "
                                    "ReferenceField.from_file(...) or ReferenceField.from_arrays(...).")
                return self._attach(ref, {**self.reference_params(None), "data_sha256": prov["sha256"]})

            prov_reason = "read from data (reference_from_data: the file is its own store)"
            return uncached_reference(read, prov_reason)

        if resolution is not None and (isinstance(resolution, bool) or not isinstance(resolution, numbers.Integral)):
            raise ValueError(f"resolution must be an integer >= 3 (grid points per axis) or None for the problem's "
                             f"default, got resolution={resolution!r}.")
        resolution = self.default_reference_resolution if resolution is None else int(resolution)
        if resolution < 3:
            raise ValueError(f"resolution must be >= 3, got {resolution}.")
        params = self.reference_params(resolution)
        cacheable = cache and not _has_uncacheable(params)

        def compute() -> ReferenceField:
            ref = self.compute_reference(resolution)
            prov = ref.provenance if isinstance(ref, ReferenceField) else None
            if isinstance(prov, dict) and prov.get("source") == "file":  # arrays may be a solve at resolution
                raise TypeError(f"{type(self).__name__}.compute_reference returned a field read from the file "
                                f"{prov.get('file')}, which cannot honour resolution={resolution}; set "
                                f"reference_from_data = True on {type(self).__name__}.")
            return self._attach(ref, params)

        return cached_reference(self.name, params, compute, cache=cacheable)

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

    def reference_params(self, resolution: int | None) -> dict:
        """The parameters of the reference at ``resolution`` (its cache key): :meth:`params`
        without the constraint, which changes how the network is trained, not the
        solution (hard and soft problems share one reference file). ``None`` (a
        reference from data, :attr:`reference_from_data`): no ``resolution`` entry;
        :meth:`reference` adds the data's ``data_sha256``."""
        params = {k: v for k, v in self.params().items() if k != "constraint"}
        return params if resolution is None else {**params, "resolution": resolution}

    def grid(self, resolution: int) -> dict[str, np.ndarray]:
        """Node-centred 1-D coordinates per input with ``resolution`` points each."""
        return {n: np.linspace(lo, hi, resolution) for n, (lo, hi) in zip(self.input_names, self.bounds)}

    def __repr__(self) -> str:
        params = self.params()
        record = params.pop("fixed_sets", None) if isinstance(params, dict) else None
        body = ", ".join(f"{k}={v!r}" for k, v in params.items())
        if record is not None:  # the record is long: its digest and the sets' sizes say it
            sizes = ", ".join(f"{k}: {v['shape'][0]}" for k, v in record["sets"].items())
            body += f", fixed_sets=<{sizes}; sha256 {record['digest'][:12]}>"
        for name, unknown in self.unknowns.items():
            body += f", {name}=<unknown: {unknown.describe()}>"
        if self.observations is not None:
            body += f", observations=<{len(self.observations)} points>"
        return f"{type(self).__name__}({body})"


def _wrap_own(cls: type, name: str, after: str) -> None:
    """Replace the method ``name`` that ``cls`` itself defines by one returning
    ``self.<after>(<its result>)`` (once: a wrapped method is marked)."""
    own = cls.__dict__.get(name)
    if isinstance(own, FunctionType) and not getattr(own, "_wrapped_by_problem", False):
        @functools.wraps(own)
        def wrapped(self):
            return getattr(self, after)(own(self))

        wrapped._wrapped_by_problem = True
        setattr(cls, name, wrapped)


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
    """A stable description of a user callable for the cache key: its qualified name and
    a hash of what decides its behaviour, ``"<qualname>:<16 hex digits>"``.

    The hash covers the source text and every value the function reads that its source
    does not show: closure cells, defaults and keyword-only defaults, and the globals its
    code reads (numbers, strings, bytes, tuples/lists/dicts/sets of them, NumPy arrays and
    tensors by a digest of their dtype, shape and bytes; modules, classes and functions of
    installed libraries by name; the user's own functions by their own description, to a
    depth of :data:`KEY_DEPTH`). ``mode(1)`` and ``mode(2)`` from one factory thus get
    different keys, and a function that reads nothing beyond its source and modules under
    their own names keeps the key of its source alone (the key of earlier versions).
    A lambda also hashes its code, so two lambdas on one line differ. Builtins and
    ``functools.partial`` objects of identifiable parts are identified too.

    None when the callable cannot be identified exactly (no source, as for a lambda
    typed at the prompt; a value read that is none of the above, such as an arbitrary
    object or a bound method): the problem then computes its reference without the
    cache, and a RuntimeWarning (once per callable) says why.
    """
    try:
        if isinstance(fn, FunctionType):
            return _describe_function(fn, 0, ())
        inner = fn.func if isinstance(fn, functools.partial) else fn
        name = getattr(inner, "__qualname__", None) or getattr(inner, "__name__", None) or type(inner).__name__
        name = f"partial({name})" if inner is not fn else name
        identity = _identify(fn, 0, (), "the callable")
    except _Unidentifiable as why:
        _warn_uncached(fn, str(why))
        return None
    return f"{name}:{hashlib.sha256(_canonical(identity)).hexdigest()[:16]}"


#: how deep :func:`describe_callable` follows values (functions calling functions, nested containers)
KEY_DEPTH = 16
_KEY_ITEMS = 1_000_000  # elements of containers read one by one (arrays are digested whole)


class _Unidentifiable(Exception):
    """A value a cache key cannot hold exactly; the message names it and says why."""


def _canonical(identity) -> bytes:
    return json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()


def _describe_function(fn: FunctionType, depth: int, stack: tuple) -> str:
    qualname = getattr(fn, "__qualname__", fn.__name__)
    try:
        src = inspect.getsource(fn)
    except (OSError, TypeError):
        raise _Unidentifiable(f"the source of {qualname} is not available") from None
    stack = stack + (fn,)
    identity: dict = {}
    code = fn.__code__
    if fn.__name__ == "<lambda>":  # getsource gives the whole line, which may hold several lambdas
        identity["code"] = _code_identity(code)
    if fn.__closure__:
        identity["closure"] = {name: _identify(_cell_value(cell), depth + 1, stack,
                                               f"closure variable {name!r} of {qualname}")
                               for name, cell in zip(code.co_freevars, fn.__closure__)}
    if fn.__defaults__:
        identity["defaults"] = [_identify(v, depth + 1, stack, f"a default argument of {qualname}")
                                for v in fn.__defaults__]
    if fn.__kwdefaults__:
        identity["kwdefaults"] = {k: _identify(v, depth + 1, stack, f"the default of {k!r} of {qualname}")
                                  for k, v in fn.__kwdefaults__.items()}
    read = {}
    for name in sorted(_global_names(code)):
        if name not in fn.__globals__:
            continue  # a builtin (or not defined yet: the call fails)
        value = fn.__globals__[name]
        if isinstance(value, ModuleType) and value.__name__ == name:
            continue  # `import torch`: the source says which module
        read[name] = _identify(value, depth + 1, stack, f"global {name!r} read by {qualname}")
    if read:
        identity["globals"] = read
    digest = hashlib.sha256(src.encode())
    if identity:
        digest.update(b"\0" + _canonical(identity))
    return f"{qualname}:{digest.hexdigest()[:16]}"


def _cell_value(cell):
    try:
        return cell.cell_contents
    except ValueError:
        return _EMPTY_CELL


_EMPTY_CELL = object()


def _global_names(code) -> set[str]:
    """The global names ``code`` and the code nested in it (lambdas, comprehensions) load."""
    names = {ins.argval for ins in dis.get_instructions(code)
             if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "DELETE_GLOBAL")}
    for const in code.co_consts:
        if isinstance(const, CodeType):
            names |= _global_names(const)
    return names


def _code_identity(code) -> list:
    """The bytecode, names and constants of ``code`` and of the code nested in it."""
    consts = [_code_identity(c) if isinstance(c, CodeType) else repr(c) for c in code.co_consts]
    return [hashlib.sha256(code.co_code).hexdigest(), list(code.co_names), list(code.co_varnames), consts]


def _library_name(obj) -> str | None:
    """``module.qualname`` of a function or class defined by the standard library or an
    installed package (not the user's code), else None."""
    module_name = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    if not isinstance(module_name, str) or not isinstance(qualname, str) or "<locals>" in qualname:
        return None
    if module_name == "builtins" or module_name in sys.builtin_module_names:
        return f"{module_name}.{qualname}"
    module = sys.modules.get(module_name)
    where = getattr(module, "__file__", None)
    if not where:
        return None
    where = os.path.realpath(where)
    roots = {os.path.realpath(p) for key, p in sysconfig.get_paths().items()
             if key in ("stdlib", "platstdlib", "purelib", "platlib")}
    if any(where.startswith(root + os.sep) for root in roots):
        return f"{module_name}.{qualname}"
    return None


def _identify(value, depth: int, stack: tuple, where: str, budget: list | None = None):
    """A JSON value that equals for values of equal behaviour and differs otherwise;
    raises :class:`_Unidentifiable` naming ``where`` for a value it cannot pin down."""
    budget = [_KEY_ITEMS] if budget is None else budget
    budget[0] -= 1
    if budget[0] < 0:
        raise _Unidentifiable(f"{where} holds more than {_KEY_ITEMS} values")
    if depth > KEY_DEPTH:
        raise _Unidentifiable(f"{where} is nested deeper than {KEY_DEPTH} levels")
    if value is None or value is _EMPTY_CELL or isinstance(value, (bool, int, str)):
        return ["empty cell"] if value is _EMPTY_CELL else [type(value).__name__, value]
    if isinstance(value, (float, complex, fractions.Fraction, decimal.Decimal)):
        return [type(value).__name__, repr(value)]
    if isinstance(value, (bytes, bytearray)):
        return [type(value).__name__, hashlib.sha256(value).hexdigest()]
    if isinstance(value, np.generic) and not isinstance(value, np.object_):
        return ["numpy", value.dtype.str, repr(value.item())]
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise _Unidentifiable(f"{where} is a NumPy array of Python objects")
        data = np.ascontiguousarray(value)
        return ["ndarray", data.dtype.str, list(data.shape), hashlib.sha256(data.tobytes()).hexdigest()]
    if isinstance(value, torch.Tensor):
        return _tensor_identity(value, where)
    if isinstance(value, (torch.dtype, torch.device)):
        return [type(value).__name__, str(value)]
    if isinstance(value, (tuple, list)):
        return [type(value).__name__, [_identify(v, depth + 1, stack, where, budget) for v in value]]
    if isinstance(value, (set, frozenset)):
        items = [_identify(v, depth + 1, stack, where, budget) for v in value]
        return [type(value).__name__, sorted(items, key=_canonical)]
    if isinstance(value, dict) and type(value) in (dict, collections.OrderedDict):
        items = [[_identify(k, depth + 1, stack, where, budget), _identify(v, depth + 1, stack, where, budget)]
                 for k, v in value.items()]
        return ["dict", sorted(items, key=_canonical)]
    if isinstance(value, ModuleType):
        return ["module", value.__name__]
    if isinstance(value, FunctionType):
        if value in stack:  # recursion: the function being described
            return ["recursive", value.__qualname__]
        library = _library_name(value)
        if library is not None:
            return ["library function", library]
        return ["function", _describe_function(value, depth + 1, stack)]
    if isinstance(value, functools.partial):
        return ["partial", _identify(value.func, depth + 1, stack, where, budget),
                _identify(value.args, depth + 1, stack, where, budget),
                _identify(value.keywords, depth + 1, stack, where, budget)]
    if isinstance(value, np.ufunc):
        return ["ufunc", value.__name__]
    if isinstance(value, (BuiltinFunctionType, BuiltinMethodType)):
        owner = getattr(value, "__self__", None)
        if owner is None or isinstance(owner, (ModuleType, type)):
            name = getattr(value, "__module__", None) or getattr(owner, "__name__", None) or "?"
            return ["builtin", f"{name}.{getattr(value, '__qualname__', value.__name__)}"]
        raise _Unidentifiable(f"{where} is the method {value.__name__} of a {type(owner).__name__} object, whose "
                              "state cannot be identified")
    if isinstance(value, MethodType):
        return ["method", _identify(value.__self__, depth + 1, stack, where, budget),
                _identify(value.__func__, depth + 1, stack, where, budget)]
    if isinstance(value, type):
        library = _library_name(value)
        if library is not None:
            return ["class", library]
        raise _Unidentifiable(f"{where} is the class {value.__qualname__} of the user's code, whose methods are "
                              "not identified")
    raise _Unidentifiable(f"{where} is a {type(value).__module__}.{type(value).__qualname__} object, whose "
                          "state cannot be identified exactly")


def _tensor_identity(t: torch.Tensor, where: str) -> list:
    if t.layout != torch.strided or t.is_quantized or t.is_meta:
        raise _Unidentifiable(f"{where} is a {t.layout} tensor{' (quantized)' if t.is_quantized else ''}")
    data = t.detach().cpu().contiguous().reshape(-1)
    raw = data.view(torch.uint8).numpy().tobytes() if data.numel() else b""
    return ["tensor", str(t.dtype), list(t.shape), hashlib.sha256(raw).hexdigest()]


_WARNED: "weakref.WeakSet" = weakref.WeakSet()
_WARNED_IDS: set[int] = set()


def _warn_uncached(fn, why: str) -> None:
    """Warn once per callable that references of problems using it skip the cache."""
    try:
        if fn in _WARNED:
            return
        _WARNED.add(fn)
    except TypeError:  # not weakly referenceable
        if id(fn) in _WARNED_IDS:
            return
        _WARNED_IDS.add(id(fn))
    name = getattr(fn, "__qualname__", None) or type(fn).__name__
    warnings.warn(f"{name} cannot be identified exactly for the reference cache key ({why}); a problem using it "
                  "computes its reference without the cache. Read only numbers, strings, tuples, arrays or tensors "
                  "(or module-level functions of them) in it to have it cached.", RuntimeWarning, stacklevel=3)


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
