"""``check_problem``: the conformance suite every problem passes (docs/design.md,
"Extending: a new PDE"). The tests run it over the registry, so a newly registered
problem is checked with no new test code.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..derivatives import DerivativeSpec, Jet, autograd_jet, forward_jet
from ..validation.reference import params_hash
from .base import FunctionNet, Problem, Term, _check_class

#: float64 tolerances: the squared, normalised residual terms of the exact solution and
#: the relative difference between two engines or two ways to the same number
EXACT_TOL = 1e-12
ENGINE_TOL = 1e-9
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
        "contract": ``name`` set, ``sample(n, generator, progress=)`` returns tensors,
            every set in ``derivatives`` is a DerivativeSpec and is drawn, each point
            set is (n_k, in_dim);
        "terms": where the problem declares :meth:`~Problem.terms`: the names are
            unique; every set a term names is in ``derivatives`` and drawn by
            ``sample``; a term's sets have equal sizes n_k and its residual is
            (n_k, c_k); ``residuals()`` is the terms, in order; and each residual is
            row-local: moving point i of a set it names changes row i alone, moving
            the points of a set it does not name changes nothing;
        "exact": where an exact solution exists, every loss term of it is ~0 through
            the same loss code (:meth:`Problem.compute_losses`, autograd engine);
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
        "bad_params": each keyword set in the class's ``bad_params`` raises a
            ValueError that names one of its keys.

    Args:
        problem: the problem (its constraint as configured).
        net: the network to evaluate (float64 copy taken); default a small SIREN.
        resolution: the reference's resolution (default ``problem.check_resolution``,
            else ``problem.default_reference_resolution``).
        n: interior points per check; seed: their generator's seed.
    """
    from ..nets import MLP, Sine

    done = []
    _check_contract(problem, n, seed)
    done.append("contract")
    batch = {k: v.double() for k, v in problem.sample(n, torch.Generator().manual_seed(seed), progress=1.0).items()}
    if net is None:
        net = MLP(problem.in_dim, problem.out_dim, width=16, depth=2, activation=Sine(), first_omega=2.0, seed=seed)
    net = problem.constrain(net).double()

    if problem.has_terms:  # the declarations first: a wrong one would fail the loss code below less clearly
        check_terms(problem, net, batch)
        done.append("terms")

    exact = problem.exact_solution
    if exact is not None:
        losses = problem.compute_losses(FunctionNet(exact), batch, engine="autograd")
        bad = {k: float(v.detach()) for k, v in losses.items() if not float(v.detach()) < EXACT_TOL}
        if bad:
            raise ConformanceError(f"{problem.name}: the exact solution has loss terms {bad} (expected < {EXACT_TOL:g} "
                                   "in float64): exact(), the residuals and the data drawn in sample() disagree.")
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

    _check_bad_params(problem)
    done.append("bad_params")
    return done


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
    batch = problem.sample(n, torch.Generator().manual_seed(seed), progress=0.5)
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


def _check_bad_params(problem: Problem) -> None:
    cls = type(problem)
    if not cls.bad_params:
        raise ConformanceError(f"{cls.__name__}.bad_params is empty; list constructor keywords that must be refused "
                               "(e.g. ({'nu': 0.0},)), so that the suite can check they raise.")
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
