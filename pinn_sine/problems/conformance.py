"""``check_problem``: the conformance suite every problem passes (docs/design.md,
"Extending: a new PDE"). The tests run it over the registry, so a newly registered
problem is checked with no new test code.
"""
from __future__ import annotations

import contextlib

import inspect
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..derivatives import DerivativeSpec, Jet, autograd_jet, forward_jet
from ..validation.reference import params_hash
from .base import FixedSets, FunctionNet, Problem, Term, _check_class, fixed_sets_digest

#: float64 tolerances: the loss terms of the exact solution relative to each term's scale
#: (:func:`check_exact`), and the relative difference between two engines or two ways to
#: the same number (relative to max(|value|, 1))
EXACT_TOL = 1e-12
ENGINE_TOL = 1e-9
#: how far outside ``bounds`` a fixed point may lie, relative to the interval's width
#: (float32 coordinates of a paper round; a few float eps of |bound| is added too)
BOUNDS_TOL = 1e-6
#: float64 tolerance of "unchanged" in the row-locality test of the terms (rows are
#: computed independently, so they come out equal to the last bit in practice)
LOCAL_TOL = 1e-12


class ConformanceError(AssertionError):
    """A problem breaks the extension contract; the message says which part and the fix."""


def check_problem(problem: Problem, net: nn.Module | None = None, *, resolution: int | None = None,
                  n: int = 64, seed: int = 0) -> list[str]:
    """Check ``problem`` against the extension contract; raise :class:`ConformanceError`
    at the first failure, else return the names of the checks run (a check that does
    not apply, such as the exact residual of a problem without an exact solution, is
    left out).

    The checks, in float64 on ``n`` interior points drawn with ``seed``:
        "contract": ``name`` set, ``draw(n, generator, progress=)`` (``sample``'s draw
            with the fixed sets) returns tensors, every set in ``derivatives`` is a
            DerivativeSpec and is drawn, each point set is (n_k, in_dim);
        "fixed_sets": where the problem declares :meth:`~Problem.fixed_sets`: every
            fixed entry is a point set of ``derivatives`` or data aligned with a fixed
            point set (as many rows); point sets are (n_k, in_dim), n_k >= 1; all are
            finite; points lie inside ``bounds`` (within :data:`BOUNDS_TOL` of the
            width); two draws with different generators, ``n`` and ``progress`` return
            them as given; a term that reads only fixed sets gives the same residual on
            both (its data are fixed too); ``fixed_sets()`` gives the same digest on two
            calls and ``params()`` records it;
        "terms": where the problem declares :meth:`~Problem.terms`: the names are
            unique; every set a term names is in ``derivatives`` and drawn by
            ``sample``; a term's sets have equal sizes n_k and its residual is
            (n_k, c_k); ``residuals()`` is the terms, in order; and each residual is
            row-local: moving point i of a set it names changes row i alone, moving
            the points of a set it does not name changes nothing;
        "exact": where an exact solution exists, every loss term L_k of it is ~0
            through the same loss code (:meth:`Problem.compute_losses`, autograd
            engine) relative to the term's scale: L_k(exact) <= :data:`EXACT_TOL` x
            S_k, S_k = max(L_k(0), L_k(net)), the term for the zero function (the mean
            square of the data it fits, e.g. a source) and for the check's network (the
            size of the operator on an O(1) function, which is what a homogeneous
            equation has). So a problem whose losses are of order 1e8 passes with the
            rounding of its data, and one of order 1e-8 is held as tightly; a term
            whose scale is 0 must be exactly 0;
        "engines": the jet engine equals autograd on every requested term (value,
            first and second derivatives, Laplacians) of every point set, and on
            every loss term;
        "pointwise": where defined (written, or derived from a declared
            ``pointwise_term``), the mean of ``pointwise_residual`` equals the
            ``pointwise_term`` loss term; skipped when neither;
        "params": ``params()`` is JSON-serialisable, survives a JSON round trip and
            hashes the same on every call;
        "reference": ``reference(resolution, cache=False)`` carries the problem's name
            and the hash of ``reference_params``, has ``out_dim`` output columns, and
            round-trips through HDF5 (``save_reference``/``load_reference``);
        "window": where the problem can be marched in time (:attr:`Problem.marchable`,
            soft constraints, a forward problem, and it is not a window already): ``window(t_0, t_m, None)`` and
            ``window(t_m, t_1, InitialData.from_network(net, first, t_m))`` (t_m the
            middle of its time interval) are problems of the same name whose time bounds
            are the windows' and other bounds the problem's, whose draws lie in them and
            whose losses are finite, and whose ``params()`` tell the two apart;
        "bad_params": each keyword set in the class's ``bad_params`` raises a
            ValueError that names one of its keys. Run where the constructor has
            parameters (an empty ``bad_params`` is then refused: list the values it
            must refuse) or ``bad_params`` is given; a problem without constructor
            parameters (a fixed benchmark case) skips it.

    The tolerances are float64's: :data:`ENGINE_TOL` and :data:`LOCAL_TOL` are relative
    to max(|value|, 1) of the quantity compared, :data:`EXACT_TOL` to each term's scale.

    Args:
        problem: the problem (its constraint as configured).
        net: the network to evaluate (float64 copy taken); default a small SIREN.
        resolution: the reference's resolution (default ``problem.check_resolution``,
            else ``problem.default_reference_resolution``).
        n: interior points per check; seed: their generator's seed.
    """
    from ..nets import MLP, Sine

    done = []
    fixed = _check_contract(problem, n, seed)
    done.append("contract")
    batch = {k: v.double() for k, v in problem.draw(n, torch.Generator().manual_seed(seed), progress=1.0).items()}
    if net is None:
        net = MLP(problem.in_dim, problem.out_dim, width=16, depth=2, activation=Sine(), first_omega=2.0, seed=seed)
    net = problem.constrain(net).double()
    if fixed:
        check_fixed_draws(problem, net, n, seed)
        done.append("fixed_sets")

    if problem.has_terms:  # the declarations first: a wrong one would fail the loss code below less clearly
        check_terms(problem, net, batch)
        done.append("terms")

    if problem.exact_solution is not None:
        check_exact(problem, net, batch)
        done.append("exact")

    jets = {}
    for key, spec in problem.derivatives.items():
        if key not in batch:
            continue
        fast, ref = forward_jet(net, batch[key], problem.input_names, spec), \
            autograd_jet(net, batch[key], problem.input_names, spec)
        for what, a, b in _jet_terms(fast, ref, spec):
            _close(a, b, f"{problem.name}: the jet engine's {what} on point set {key!r} differs from autograd's")
        jets[key] = fast
    terms = problem.compute_losses(net, batch, engine="jet")
    reference_terms = problem.compute_losses(net, batch, engine="autograd")
    if set(terms) != set(reference_terms):
        raise ConformanceError(f"{problem.name}: the loss terms differ between engines: {sorted(terms)} vs "
                               f"{sorted(reference_terms)}.")
    for k in terms:
        _close(terms[k], reference_terms[k],
               f"{problem.name}: loss term {k!r} from the jet engine differs from autograd's")
    done.append("engines")

    if problem.has_pointwise:
        check_pointwise(problem, net, batch)
        done.append("pointwise")

    _check_params(problem)
    done.append("params")

    if resolution is None:
        resolution = problem.check_resolution
    _check_reference(problem, resolution)
    done.append("reference")

    if problem.marchable and not getattr(problem, "windowed", False) and problem.constraint != "hard" \
            and not problem.unknowns and problem.observations is None:
        check_window(problem, net, n, seed)
        done.append("window")

    if _check_bad_params(problem):
        done.append("bad_params")
    return done


def check_window(problem: Problem, net: nn.Module, n: int, seed: int) -> None:
    """The "window" check of :func:`check_problem` (its docstring)."""
    from .windows import InitialData

    lo, hi = (float(v) for v in problem.bounds[0])
    mid = 0.5 * (lo + hi)
    first = problem.window(lo, mid, None)
    second = problem.window(mid, hi, InitialData.from_network(net, first, mid))
    for w, (a, b) in ((first, (lo, mid)), (second, (mid, hi))):
        if not isinstance(w, Problem) or w.name != problem.name:
            raise ConformanceError(f"{problem.name}: window({a:g}, {b:g}, ...) returned {w!r}, not a problem of the "
                                   "same name.")
        bounds = tuple(tuple(float(v) for v in bd) for bd in w.bounds)
        if bounds[0] != (a, b) or bounds[1:] != tuple(tuple(float(v) for v in bd) for bd in problem.bounds[1:]):
            raise ConformanceError(f"{problem.name}: window({a:g}, {b:g}, ...) has bounds {bounds}; expected the time "
                                   f"interval ({a:g}, {b:g}) and the problem's other bounds.")
        batch = {k: v.double() for k, v in w.draw(n, torch.Generator().manual_seed(seed), progress=1.0).items()}
        for key in w.derivatives:
            if key in batch:
                t = batch[key][:, 0]
                tol = 1e-6 * max(1.0, abs(b))  # drawn in float32
                if bool((t < a - tol).any() or (t > b + tol).any()):
                    raise ConformanceError(f"{problem.name}: window({a:g}, {b:g}, ...) draws point set {key!r} at "
                                           f"times [{float(t.min()):g}, {float(t.max()):g}], outside the window.")
        losses = w.compute_losses(net, batch, engine="jet")
        bad = [k for k, v in losses.items() if not bool(torch.isfinite(v).all())]
        if bad:
            raise ConformanceError(f"{problem.name}: window({a:g}, {b:g}, ...) gives non-finite losses {bad}.")
    if json.dumps(first.params(), sort_keys=True, default=str) == json.dumps(second.params(), sort_keys=True,
                                                                             default=str):
        raise ConformanceError(f"{problem.name}: its two windows have the same params() {first.params()}; record "
                               "the window's start and data (checkpoints and caches must tell them apart).")


@contextlib.contextmanager
def _at_defining_values(problem: Problem):
    """Within the block, every unknown of ``problem`` (:meth:`Problem.declare_unknown`)
    holds its defining value (:meth:`Problem.unknown_truth`: the constructor's), where its
    bounds admit it; restored afterwards."""
    raw = problem.coefficients()
    saved = {k: v.detach().clone() for k, v in raw.items()}
    try:
        with torch.no_grad():
            for name, unknown in problem.unknowns.items():
                value = torch.as_tensor(problem.unknown_truth(name), dtype=torch.float64)
                inside = ((unknown.lower is None or bool((value > unknown.lower).all()))
                          and (unknown.upper is None or bool((value < unknown.upper).all())))
                if inside:
                    raw[name].copy_(unknown.raw(value).reshape(raw[name].shape))
        yield
    finally:
        with torch.no_grad():
            for k, v in saved.items():
                raw[k].copy_(v)


def check_exact(problem: Problem, net: nn.Module, batch: dict) -> None:
    """Raise :class:`ConformanceError` unless every loss term of the exact solution on
    ``batch`` (float64) is at most :data:`EXACT_TOL` times the term's scale
    S_k = max(L_k(0), L_k(net)): the term for the zero function and for ``net``."""
    with _at_defining_values(problem):  # an inverse problem's unknowns at the values that define it
        losses = problem.compute_losses(FunctionNet(problem.exact_solution), batch, engine="autograd")
        zero = problem.compute_losses(FunctionNet(_Zero(problem.out_dim)), batch, engine="autograd")
        generic = problem.compute_losses(net, batch, engine="autograd")
    values, scales = {}, {}
    noisy = problem.observations is not None and problem.observations.noise is not None
    for k, v in losses.items():
        if k == "data" and noisy:  # noisy observations: the exact solution misses them by the noise
            continue
        value = float(v.detach())
        scale = max(float(zero[k].detach()), float(generic[k].detach()))
        if not value <= EXACT_TOL * scale:
            values[k], scales[k] = value, scale
    if values:
        raise ConformanceError(f"{problem.name}: the exact solution has loss terms {values} against their scales "
                               f"{scales} (expected <= {EXACT_TOL:g} x scale in float64; the scale is the larger of the "
                               "term for u = 0 and for the check's network): exact(), the residuals and the data "
                               "drawn in sample() or fixed in fixed_sets() disagree.")


class _Zero:
    """u = 0 with out_dim columns, as a function of x (its derivatives are zeros)."""

    def __init__(self, out_dim: int):
        self.out_dim = out_dim

    def __call__(self, x):
        return (0.0 * x[:, :1]).expand(-1, self.out_dim)


def check_pointwise(problem: Problem, net: nn.Module, batch: dict) -> None:
    """Raise :class:`ConformanceError` unless the mean of ``pointwise_residual`` equals
    the ``pointwise_term`` loss term on ``batch`` (the trainer calls this once before
    causal weighting or RAD use it)."""
    jets = problem.jets(net, batch)
    losses = problem.losses(jets, batch)
    term = problem.pointwise_term
    if term not in losses:
        raise ConformanceError(f"{problem.name}.pointwise_term is {term!r}, which is not a loss term "
                               f"({sorted(losses)}); set pointwise_term to the term pointwise_residual belongs to.")
    values = problem.pointwise_residual(jets, batch)
    n = batch["interior"].shape[0]
    if tuple(values.shape) != (n,):
        raise ConformanceError(f"{problem.name}.pointwise_residual returned shape {tuple(values.shape)}, expected "
                               f"({n},): one squared residual per interior point.")
    _close(values.mean(), losses[term], f"{problem.name}: the mean of pointwise_residual differs from the "
           f"{term!r} loss term (they must be the same quantity)", tol=max(ENGINE_TOL, _eps(values) * 100))


def check_terms(problem: Problem, net: nn.Module, batch: dict) -> None:
    """Raise :class:`ConformanceError` unless the :class:`~pinn_sine.problems.Term` s of
    ``problem.terms()`` are declared as they behave on ``batch`` (float64 wanted for the
    row-locality test): unique names, sets that ``derivatives`` names and ``sample`` drew,
    aligned sets, residuals (n_k, c_k), ``residuals()`` the terms in order, and each
    residual row-local in the sets it names and blind to the others."""
    name = problem.name
    terms = problem.terms()
    if not isinstance(terms, (tuple, list)) or not all(isinstance(t, Term) for t in terms):
        raise ConformanceError(f"{name}.terms() returned {terms!r}; return a tuple of "
                               "pinn_sine.problems.Term(name, sets, kind, residual).")
    names = [t.name for t in terms]
    repeated = sorted({k for k in names if names.count(k) > 1})
    if repeated:
        raise ConformanceError(f"{name}.terms() declares the term names {repeated} more than once ({names}); give "
                               "each term its own name (it keys the loss and the history).")
    points = {k for k in problem.derivatives if k in batch}
    for t in terms:
        unnamed = [k for k in t.sets if k not in problem.derivatives]
        if unnamed:
            raise ConformanceError(f"{name}: term {t.name!r} reads the point sets {unnamed}, which derivatives does "
                                   f"not name ({sorted(problem.derivatives)}); add them to derivatives "
                                   "(DerivativeSpec() for values only) or fix the term's sets.")
        undrawn = [k for k in t.sets if k not in batch]
        if undrawn:
            raise ConformanceError(f"{name}: term {t.name!r} reads the point sets {undrawn}, which sample() does not "
                                   f"draw ({sorted(batch)}); draw them, or do not declare the term (as a hard "
                                   "constraint drops the terms it makes exact).")
        sizes = {k: batch[k].shape[0] for k in t.sets}
        if len(set(sizes.values())) > 1:
            raise ConformanceError(f"{name}: term {t.name!r} reads the sets {sizes} (sizes), which are not aligned: "
                                   "row i reads point i of each, so draw them with equal sizes.")
    jets = problem.jets(net, batch)
    values = {}
    for t in terms:
        r = t.residual(jets, batch)
        n_k = batch[t.sets[0]].shape[0]
        if not isinstance(r, torch.Tensor) or r.ndim != 2 or r.shape[0] != n_k:
            shape = tuple(r.shape) if isinstance(r, torch.Tensor) else type(r).__name__
            raise ConformanceError(f"{name}: term {t.name!r} returned {shape}, expected ({n_k}, c): one row per point "
                                   f"of {list(t.sets)} (reshape a per-point vector with .reshape(-1, 1)).")
        values[t.name] = r.detach()
    residuals = problem.residuals(jets, batch)
    if list(residuals) != names:
        raise ConformanceError(f"{name}.residuals() has the terms {list(residuals)}, terms() declares {names}; "
                               "let residuals() derive from terms() (do not override it).")
    for k, r in residuals.items():
        _close(r, values[k], f"{name}.residuals()[{k!r}] differs from its term's residual (let residuals() derive "
                             "from terms())", tol=LOCAL_TOL)
    for t in terms:
        for key in t.sets:
            if batch[key].shape[0] == 0:
                continue
            i, moved = _move_one(problem, batch[key])
            moved = {**batch, key: moved}
            r = t.residual(problem.jets(net, moved), moved).detach()
            other = torch.ones(r.shape[0], dtype=torch.bool)
            other[i] = False
            if not _same(r[other], values[t.name][other]):
                changed = ((r - values[t.name]).abs() > LOCAL_TOL * _scale(values[t.name])).any(1) & other
                raise ConformanceError(
                    f"{name}: term {t.name!r} is not row-local: moving point {i} of {key!r} changed rows "
                    f"{torch.nonzero(changed).flatten().tolist()[:8]} of its residual, not row {i} alone. Row i must "
                    "read point i of its sets only (no mean, sum, sort or normalisation over the points: compute "
                    "such scales once, from fixed points, in __init__).")
        for key in sorted(points - set(t.sets)):
            if batch[key].shape[0] == 0:
                continue
            moved = {**batch, key: _move_all(problem, batch[key])}
            r = t.residual(problem.jets(net, moved), moved).detach()
            if not _same(r, values[t.name]):
                raise ConformanceError(f"{name}: term {t.name!r} changes when the points of {key!r} move, but its "
                                       f"sets are {list(t.sets)}; add {key!r} to the term's sets (aligned, equal "
                                       "sizes) or stop reading it.")


def _scale(r) -> float:
    return max(float(r.abs().max()) if r.numel() else 0.0, 1.0)


def _same(a, b) -> bool:
    return a.shape == b.shape and (a.numel() == 0 or float((a - b).abs().max()) <= LOCAL_TOL * _scale(b))


def _centre(problem: Problem, like) -> torch.Tensor:
    return torch.tensor([(lo + hi) / 2 for lo, hi in problem.bounds], dtype=like.dtype)


def _move_one(problem: Problem, x):
    """The point of ``x`` farthest from the domain's centre, and ``x`` with that point
    moved a tenth of the way to the centre (it stays in the domain)."""
    c = _centre(problem, x)
    i = int(((x - c) ** 2).sum(1).argmax())
    moved = x.clone()
    moved[i] = x[i] + 0.1 * (c - x[i])
    return i, moved


def _move_all(problem: Problem, x):
    """Every point of ``x`` moved a tenth of the way to the domain's centre."""
    return x + 0.1 * (_centre(problem, x) - x)


def _eps(t) -> float:
    return float(torch.finfo(t.dtype).eps)


def _check_contract(problem: Problem, n: int, seed: int) -> None:
    try:
        _check_class(type(problem))
    except TypeError as err:
        raise ConformanceError(str(err)) from None
    for key, spec in problem.derivatives.items():
        if not isinstance(spec, DerivativeSpec):
            raise ConformanceError(f"{problem.name}.derivatives[{key!r}] is {spec!r}; expected a DerivativeSpec "
                                   "(DerivativeSpec() for values only).")
        unknown = set(spec.directions()) - set(problem.input_names)
        if unknown:
            raise ConformanceError(f"{problem.name}.derivatives[{key!r}] names inputs {sorted(unknown)} that are not "
                                   f"in input_names {problem.input_names}.")
    if len(problem.bounds) != problem.in_dim:
        raise ConformanceError(f"{problem.name} has {len(problem.bounds)} bounds for {problem.in_dim} inputs; give "
                               "one (lo, hi) per input name.")
    fixed = check_fixed_declaration(problem)
    batch = problem.draw(n, torch.Generator().manual_seed(seed), progress=0.5)
    if not isinstance(batch, dict) or not all(isinstance(v, torch.Tensor) for v in batch.values()):
        raise ConformanceError(f"{problem.name}.sample must return a dict of tensors, got {type(batch).__name__}.")
    missing = [k for k in problem.derivatives if k not in batch]
    if missing:
        raise ConformanceError(f"{problem.name}.sample() does not draw the point sets {missing} that derivatives "
                               "names; draw them, or drop them from derivatives.")
    for key in problem.derivatives:
        if batch[key].ndim != 2 or batch[key].shape[1] != problem.in_dim:
            raise ConformanceError(f"{problem.name}.sample()[{key!r}] has shape {tuple(batch[key].shape)}, expected "
                                   f"(n, {problem.in_dim}).")
    return fixed


def check_fixed_declaration(problem: Problem) -> bool:
    """Raise :class:`ConformanceError` unless :meth:`~Problem.fixed_sets` declares its
    sets as the contract asks (names, shapes, finite values, points inside ``bounds``,
    a digest stable over two calls and recorded by ``params()``); return whether the
    problem has fixed sets."""
    name = problem.name
    try:
        kept = problem._fixed()
        again = [problem.fixed_sets() for _ in range(2)]
        again = [s if isinstance(s, FixedSets) else FixedSets(s) for s in again]
    except (TypeError, ValueError) as err:
        raise ConformanceError(f"{name}.fixed_sets(): {err}") from None
    if not kept:
        return False
    points = problem.derivatives
    sizes = {k: v.shape[0] if v.ndim else None for k, v in kept.items() if k in points}
    for key, value in kept.items():
        if key in points:
            if value.ndim != 2 or value.shape[1] != problem.in_dim or value.shape[0] < 1:
                raise ConformanceError(f"{name}: fixed point set {key!r} has shape {tuple(value.shape)}, expected "
                                       f"(n, {problem.in_dim}) with n >= 1: one row per point, one column per input "
                                       f"{problem.input_names}.")
        elif not value.ndim or value.shape[0] not in sizes.values():
            rows = value.shape[0] if value.ndim else "no"
            raise ConformanceError(f"{name}: fixed set {key!r} is not a point set of derivatives "
                                   f"({sorted(points)}), nor data aligned with a fixed point set (it has {rows} rows, "
                                   f"the fixed point sets {sizes}); name it in derivatives (DerivativeSpec() for "
                                   "values only), or fix the point set its rows belong to.")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).reshape(value.shape[0], -1).any(1).sum())
            raise ConformanceError(f"{name}: fixed set {key!r} has {bad} rows with NaN or infinite values; give "
                                   "finite values.")
    for key, value in kept.items():
        if key not in points:
            continue
        x = value.double()
        for j, (axis, (lo, hi)) in enumerate(zip(problem.input_names, problem.bounds)):
            eps = _eps(value) if value.is_floating_point() else 0.0
            tol = BOUNDS_TOL * (hi - lo) + 4 * eps * max(abs(lo), abs(hi))
            out = (x[:, j] < lo - tol) | (x[:, j] > hi + tol)
            if bool(out.any()):
                i = int(torch.nonzero(out)[0])
                raise ConformanceError(f"{name}: fixed point set {key!r} has {int(out.sum())} points outside the "
                                       f"bounds of {axis!r} ({lo:g}, {hi:g}), e.g. point {i} with {axis} = "
                                       f"{float(x[i, j]):g}; give points inside the domain (or correct bounds).")
    digests = [fixed_sets_digest(s) for s in again]
    if digests[0] != digests[1]:
        raise ConformanceError(f"{name}.fixed_sets() is not stable: two calls give different sets (digests "
                               f"{digests[0][:12]}..., {digests[1][:12]}...); give arrays, or draw once from a seed "
                               "(FixedSets.from_draw(problem, n, seed)).")
    record = problem.params().get("fixed_sets") if isinstance(problem.params(), dict) else None
    if not isinstance(record, dict) or record.get("digest") != fixed_sets_digest(kept):
        raise ConformanceError(f"{name}.params() does not record its fixed sets (\"fixed_sets\": {record!r}); keep "
                               "the params() of Problem's subclass mechanism (do not override _with_fixed_record), so "
                               "that checkpoints and config.json identify the points.")
    return True


def check_fixed_draws(problem: Problem, net: nn.Module, n: int, seed: int) -> None:
    """Raise :class:`ConformanceError` unless two draws with different generators, ``n``
    and ``progress`` return the fixed sets as given, and every term that reads only fixed
    sets gives the same residual on both (its data entries are fixed too)."""
    name = problem.name
    kept = problem._fixed()
    draws = [problem.draw(n, torch.Generator().manual_seed(seed), progress=0.0),
             problem.draw(2 * n + 1, torch.Generator().manual_seed(seed + 1), progress=1.0)]
    for key, value in kept.items():
        for batch in draws:
            got = batch.get(key)
            if got is None or got.dtype != value.dtype or not torch.equal(got, value):
                raise ConformanceError(f"{name}.draw() does not return the fixed set {key!r} as given; leave draw() "
                                       "to Problem (it puts the fixed sets in place of sample()'s).")
    if type(problem).sample is not Problem.sample:  # data sample() draws for points that fixed_sets() replaces
        raw = problem.sample(n, torch.Generator().manual_seed(seed), progress=1.0)
        rows = {k: raw[k].shape[0] for k in problem.derivatives if k in raw}
        for key, value in raw.items():
            if key in problem.derivatives or key in kept or not value.ndim:
                continue
            owners = [k for k, m in rows.items() if m == value.shape[0]]
            if owners and all(k in kept for k in owners):
                raise ConformanceError(f"{name}: the data entry {key!r} is drawn by sample() with the points of "
                                       f"{owners}, which fixed_sets() replaces; fix {key!r} too (name it in "
                                       "fixed_sets(); FixedSets.from_draw brings the aligned data along).")
    a, b = ({k: v.double() for k, v in batch.items()} for batch in draws)
    if problem.has_terms:
        pairs = [(t.name, t.sets, lambda batch, t=t: t.residual(problem.jets(net, batch), batch))
                 for t in problem.terms() if all(k in kept for k in t.sets)]
    elif all(k in kept for k in problem.derivatives):
        pairs = [("every term", tuple(problem.derivatives),
                  lambda batch: torch.stack(list(problem.compute_losses(net, batch).values())))]
    else:
        pairs = []
    for term, sets, value in pairs:
        try:
            same = _same(value(a).detach(), value(b).detach())
        except RuntimeError as err:  # a data entry of another size than its fixed points
            raise ConformanceError(f"{name}: term {term!r} reads only the fixed sets {list(sets)}, but fails on a "
                                   f"draw ({str(err).splitlines()[0]}): a data entry it reads is drawn afresh. Fix "
                                   "the data aligned with the points too (name it in fixed_sets()).") from None
        if not same:
            raise ConformanceError(f"{name}: term {term!r} reads only the fixed sets {list(sets)}, but changes between "
                                   "two draws: a data entry it reads is drawn afresh. Fix the data aligned with the "
                                   "points too (name it in fixed_sets(); FixedSets.from_draw brings it along).")


def _jet_terms(a: Jet, b: Jet, spec: DerivativeSpec):
    yield "value", a.u, b.u
    for name in spec.directions():
        yield f"d/d{name}", a.d(name), b.d(name)
    for p, q in spec.pairs():
        yield f"d2/d{p}d{q}", a.d2(p, q), b.d2(p, q)
    for group in spec.laplacian_groups():
        yield f"Laplacian over {group}", a.laplacian(group), b.laplacian(group)


def _close(a, b, what: str, tol: float = ENGINE_TOL) -> None:
    a, b = a.detach().double(), b.detach().double()
    scale = max(float(b.abs().max()) if b.numel() else 0.0, 1.0)
    err = float((a - b).abs().max()) if a.numel() else 0.0
    if not err <= tol * scale:
        raise ConformanceError(f"{what}: max |difference| {err:.3g} > {tol:g} x {scale:.3g}.")


def _check_params(problem: Problem) -> None:
    params = problem.params()
    try:
        text = json.dumps(params, sort_keys=True)
    except TypeError as err:
        raise ConformanceError(f"{problem.name}.params() is not JSON-serialisable ({err}); give numbers, strings, "
                               "lists and dicts (describe callables and arrays by a name and a hash).") from None
    if json.loads(text) != params:
        raise ConformanceError(f"{problem.name}.params() changes in a JSON round trip ({params!r} -> {text}); use "
                               "lists, not tuples, and string keys.")
    again = problem.params()
    if params_hash(problem.name, again) != params_hash(problem.name, params) or \
            params_hash(problem.name, json.loads(text)) != params_hash(problem.name, params):
        raise ConformanceError(f"{problem.name}.params() is not stable: two calls or a JSON round trip hash "
                               "differently (the reference cache would never hit).")


def _check_reference(problem: Problem, resolution: int | None) -> None:
    from ..validation.store import load_reference, save_reference

    # a reference read from data has its own points: no resolution (the check's) to honour
    ref = problem.reference(None if problem.reference_from_data else resolution, cache=False)
    if ref.problem != problem.name:
        raise ConformanceError(f"{problem.name}.reference() is labelled {ref.problem!r}.")
    prov = ref.provenance
    if problem.reference_from_data:  # no resolution to honour: the data's digest keys it instead
        if not isinstance(prov, dict) or prov.get("source") not in ("file", "arrays") \
                or not all(k in prov for k in ("sha256", "layout", "shape")) \
                or (prov["source"] == "file" and "file" not in prov):
            raise ConformanceError(f"{problem.name}.reference() is read from data but records no provenance "
                                   f"({prov!r}); return ReferenceField.from_file(...) or from_arrays(...).")
        if prov["layout"] != ref.layout or list(prov["shape"]) != list(ref.grid_shape):
            raise ConformanceError(f"{problem.name}.reference(): its provenance says a {prov['layout']} of shape "
                                   f"{prov['shape']}, the field is a {ref.layout} of shape {list(ref.grid_shape)}.")
        expected = {**problem.reference_params(None), "data_sha256": prov["sha256"]}
        if type(problem).reference is Problem.reference and ref.hash != params_hash(problem.name, expected):
            raise ConformanceError(f"{problem.name}.reference() carries parameters {ref.params} that are not "
                                   "reference_params(None) and the data's data_sha256.")
    elif type(problem).reference is Problem.reference:
        res = problem.default_reference_resolution if resolution is None else resolution
        if ref.hash != params_hash(problem.name, problem.reference_params(res)):
            raise ConformanceError(f"{problem.name}.reference() carries parameters {ref.params} that are not "
                                   "reference_params(resolution).")
    if ref.out_dim != problem.out_dim:
        raise ConformanceError(f"{problem.name}.reference() has {ref.out_dim} output columns {list(ref.fields)}, the "
                               f"network {problem.out_dim}.")
    if tuple(ref.coords) != tuple(problem.input_names):
        raise ConformanceError(f"{problem.name}.reference() has coordinates {tuple(ref.coords)}, the network's inputs "
                               f"are {problem.input_names} (same names, same order).")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ref.h5"
        save_reference(ref, path)
        back = load_reference(path, expect_hash=ref.hash)
    if back.params != ref.params or list(back.fields) != list(ref.fields) or back.solver != ref.solver \
            or back.layout != ref.layout or back.provenance != prov:
        raise ConformanceError(f"{problem.name}: the reference changes in an HDF5 round trip.")
    for name in ref.coords:
        if not np.array_equal(back.coords[name], ref.coords[name]):
            raise ConformanceError(f"{problem.name}: coordinate {name!r} changes in an HDF5 round trip.")
    for name in ref.fields:
        if not np.array_equal(back.fields[name], ref.fields[name]):
            raise ConformanceError(f"{problem.name}: field {name!r} changes in an HDF5 round trip.")


def _constructor_params(cls: type) -> list[str]:
    """The named parameters of ``cls``'s constructor (none where it has no __init__)."""
    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return []
    return [k for i, (k, p) in enumerate(params.items())
            if i and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _check_bad_params(problem: Problem) -> bool:
    """Check the class's ``bad_params``; False where there is nothing to check (no
    constructor parameters and no bad_params)."""
    cls = type(problem)
    if not cls.bad_params:
        names = _constructor_params(cls)
        if not names:
            return False
        raise ConformanceError(f"{cls.__name__}.bad_params is empty, but its constructor takes {names}; list "
                               "constructor keywords that must be refused (e.g. ({'nu': 0.0},)), so that the suite "
                               "can check they raise.")
    for kwargs in cls.bad_params:
        try:
            cls(**kwargs)
        except ValueError as err:
            if not any(k in str(err) for k in kwargs):
                raise ConformanceError(f"{cls.__name__}(**{kwargs!r}) raised {err!r}, which does not name the "
                                       f"parameter ({sorted(kwargs)}).") from None
        else:
            raise ConformanceError(f"{cls.__name__}(**{kwargs!r}) was accepted; it should raise a ValueError "
                                   "naming the parameter and the fix.")
    return True
