"""Metrics that :func:`pinn_sine.train` logs at its evaluation steps.

A metric is anything with a ``name`` and ``__call__(net) -> number`` (:class:`Metric`);
a plain function ``net -> number`` is taken under its ``__name__``. ``train(...,
metrics=[...])`` logs each as a history column of that name, at the steps where the
run evaluates (every ``eval_every`` steps, every stage end, every logged step of a
Gauss-Newton stage), shows it in the progress line and returns its last value in
``TrainResult.metrics``. For example an absolute RMS error on a paper's own points::

    x, u_paper = ...                          # (n, d) points and (n, out_dim) values

    def rms_paper(net):
        with torch.no_grad():
            return float((net(x) - u_paper).pow(2).mean().sqrt())

    train(problem, net, stages=[...], metrics=[rms_paper])

The built-ins measure the network against a :class:`~pinn_sine.validation.ReferenceField`:
:class:`RelL2` (logged by default whenever ``train`` is given a reference, as
``rel_l2`` and, where the problem has an exact solution, ``rel_l2_exact``) and
:class:`MaxAbs` (``max_abs``, ``max_abs_exact``). Without a reference of their own they
use the run's and share its one prediction per evaluation; with one (and a ``name``)
they measure against that field, e.g. a finer grid or a region
(``ReferenceField(..., mask=...)``).
"""
from __future__ import annotations

from collections.abc import Callable as _Callable
from typing import Protocol, runtime_checkable

from .validation.evaluate import evaluate
from .validation.reference import ReferenceField

__all__ = ["Metric", "RelL2", "MaxAbs", "Callable", "ReferenceMetric"]


@runtime_checkable
class Metric(Protocol):
    """What ``train(..., metrics=[...])`` accepts: a ``name`` (the history column) and
    ``__call__(net)`` returning a real number."""

    name: str

    def __call__(self, net) -> float: ...


class Callable:
    """A function ``fn(net) -> number`` logged under ``name`` (for a lambda, or to give a
    function another column name than its ``__name__``)."""

    def __init__(self, name: str, fn: _Callable):
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"Callable: name must be an identifier (the history column), got {name!r}.")
        if not callable(fn):
            raise TypeError(f"Callable({name!r}, fn): fn must be callable as fn(net) -> number, got {fn!r}.")
        self.name, self.fn = name, fn

    def __call__(self, net) -> float:
        return self.fn(net)

    def __repr__(self) -> str:
        return f"Callable({self.name!r}, {getattr(self.fn, '__qualname__', self.fn)!r})"


class ReferenceMetric:
    """An error of the network on a reference grid, as :func:`~pinn_sine.evaluate`
    computes it under ``key``, over the reference's mask.

    Args:
        reference: the field to measure against; None: the reference ``train`` is given
            (then also ``<name>_exact`` against the problem's exact solution, where it
            has one).
        name: the history column; default ``key`` (give another one for a second
            metric of the same kind, e.g. against your own reference).
    """

    key = ""

    def __init__(self, reference: ReferenceField | None = None, *, name: str | None = None):
        if reference is not None and not isinstance(reference, ReferenceField):
            raise TypeError(f"{type(self).__name__}: reference must be a ReferenceField or None (the run's), got "
                            f"{reference!r}.")
        name = self.key if name is None else name
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"{type(self).__name__}: name must be an identifier (the history column), got {name!r}.")
        self.reference, self.name = reference, name

    def __call__(self, net, problem=None) -> float:
        """The error of ``net`` on this metric's reference; given the ``problem``, of what
        the problem predicts from the network (:meth:`~pinn_sine.problems.Problem.predict`:
        e.g. the point source's total field under the scattered formulation, where the
        network is the scattered part), as the run's own errors are."""
        if self.reference is None:
            raise ValueError(f"{self!r} has no reference of its own; give one ({type(self).__name__}(reference)) "
                             "to call it outside train().")
        prediction = None if problem is None else problem.predict(net, self.reference)
        return float(evaluate(net, self.reference, prediction=prediction)[self.key])

    def from_errors(self, errors: dict, exact: bool) -> dict[str, float]:
        """Its columns from the run's evaluation ``errors`` (:func:`~pinn_sine.evaluate`'s
        dict); ``exact``: the run has an exact solution."""
        out = {self.name: errors[self.key]}
        if exact:
            out[f"{self.name}_exact"] = errors[f"{self.key}_exact"]
        return out

    def __repr__(self) -> str:
        ref = "" if self.reference is None else f"<reference of {self.reference.problem}>"
        name = "" if self.name == self.key else f"name={self.name!r}"
        return f"{type(self).__name__}({', '.join(x for x in (ref, name) if x)})"


class RelL2(ReferenceMetric):
    """||u_net - u_ref||_2 / ||u_ref||_2 over the reference grid (all fields together)."""

    key = "rel_l2"


class MaxAbs(ReferenceMetric):
    """max |u_net - u_ref| over the reference grid (all fields together)."""

    key = "max_abs"


def as_metrics(metrics, *, reference: ReferenceField | None, exact: bool, reserved) -> list:
    """The run's metrics: :class:`RelL2` bound to ``reference`` when there is one (today's
    ``rel_l2`` columns), then the user's ``metrics``, checked: each a :class:`Metric` or
    a named function, a built-in without a reference only where the run has one, and
    every column new (not in ``reserved``, the run's other history keys, nor twice)."""
    out: list = [RelL2()] if reference is not None else []
    if metrics is None:
        metrics = []
    if isinstance(metrics, (str, bytes)) or not hasattr(metrics, "__iter__") or isinstance(metrics, Metric):
        raise TypeError(f"metrics must be a list of metrics (pinn_sine.metrics: RelL2, MaxAbs, Callable, or "
                        f"functions net -> number), got {metrics!r}.")
    for m in metrics:
        if isinstance(m, ReferenceMetric):
            if m.reference is None and reference is None:
                raise ValueError(f"{m!r} measures against the run's reference, but train() got none; pass "
                                 f"reference=problem.reference() or {type(m).__name__}(your_reference, name=...).")
        elif not isinstance(m, Metric):
            if not callable(m):
                raise TypeError(f"metrics must hold metrics or functions net -> number, got {m!r}.")
            name = getattr(m, "__name__", None)
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(f"the metric {m!r} has no usable name ({name!r}); wrap it: "
                                 "pinn_sine.metrics.Callable('my_error', fn).")
            m = Callable(name, m)
        elif not isinstance(m.name, str) or not m.name.isidentifier():
            raise ValueError(f"a metric's name must be an identifier (the history column), got {m.name!r} of {m!r}.")
        out.append(m)
    seen: dict[str, object] = {}
    for m in out:
        cols = columns(m, exact)
        for c in cols:
            if c in seen:
                raise ValueError(f"metric name {c!r} is used twice ({seen[c]!r} and {m!r}); give each metric its own "
                                 "name" + (" (rel_l2 is logged whenever train() has a reference)."
                                           if c.startswith("rel_l2") else "."))
            if c in reserved:
                raise ValueError(f"metric name {c!r} of {m!r} collides with the history column {c!r}; rename the "
                                 "metric.")
            seen[c] = m
    return out


def columns(metric, exact: bool) -> list[str]:
    """The history columns of ``metric`` (``exact``: bound to a run with an exact solution)."""
    if isinstance(metric, ReferenceMetric) and metric.reference is None and exact:
        return [metric.name, f"{metric.name}_exact"]
    return [metric.name]
