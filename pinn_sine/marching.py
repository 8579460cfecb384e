"""Marching in time: a time-dependent problem trained window after window.

A single network over [0, T] must represent every oscillation of the solution at once,
and the error it makes early propagates. :func:`march` cuts [t_0, t_K] into windows
t_0 < t_1 < ... < t_K and trains one network per window (:func:`pinn_sine.train`, the
same stages in every window):

    window 0:  the problem on [t_0, t_1] from its own initial data;
    window k:  the problem on [t_k, t_{k+1}] from u_k(x) = N_{k-1}(t_k, x) and, for the
               wave equation, v_k(x) = d N_{k-1} / dt (t_k, x): the previous window's
               frozen network (:meth:`~pinn_sine.problems.windows.InitialData.from_network`),
               its network initialised with N_{k-1}'s final weights (warm start).

The result is a :class:`~pinn_sine.nets.piecewise.PiecewiseInTime` network, N_k on
[t_k, t_{k+1}), which ``evaluate``, ``problem.predict``, the figures, export and
``load_run`` take like any network. The problem supplies its windows through
:meth:`~pinn_sine.problems.Problem.window` (Wave1D and Wave2D do; ``examples/heat1d.py``
shows a problem of one's own).

How windows are chosen: ``windows=K`` cuts the interval into K equal windows (the
default: a wave crosses the same distance in each, so each holds the same number of
oscillations). ``growth=g`` makes each window g times as long as the one before,

    t_k = t_0 + (t_K - t_0) (g^k - 1) / (g^K - 1),

for solutions that change fastest at the start (a diffusive decay, Allen-Cahn's
interfaces forming): there the short early windows resolve the fast transient, and an
early error, which every later window inherits, stays small (``benchmarks/marching.py``
measures g against equal windows). ``edges=[t_0, ..., t_K]`` gives any other cut. Each window is evaluated
against its own reference, the whole problem's solution on the window's times
(``problem.window(...).reference()``): the history's ``rel_l2`` is the window's error, and
``MarchResult.final`` the piecewise network's over the whole reference. Where the whole
problem has an exact solution, every window logs ``rel_l2_exact`` against it too (a window
from a network's data has no exact solution of its own; the whole problem's is the truth it
approximates).

Checkpoints: with ``checkpoint=P`` every window trains with its own checkpoint
``P.window<k>.pt`` (the stem plus ``.window<k>``), and P itself, a checkpoint of the usual
format whose network is the piecewise one of the finished windows, is written after
every window ends: its meta holds the edges, the number of finished windows and each
window's summary. ``resume=P`` rebuilds the finished windows from P (and each window's
initial data from its predecessor, bit for bit) and continues the window in progress from
its own checkpoint, so a run killed anywhere resumes to the result of an uninterrupted one.
"""
from __future__ import annotations

import copy
import math
import numbers
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .checkpoint import CheckpointError, check_compatible, load_checkpoint, save_checkpoint
from .constraints import unconstrained
from .loop import TrainingDiverged, TrainingInterrupted, TrainResult
from .nets.piecewise import PiecewiseInTime, check_edges
from .problems.base import Problem
from .problems.windows import InitialData
from .stall import Stall
from .train import check_time_limit, mark_trained_for, train
from .validation.reference import ReferenceField

__all__ = ["march", "MarchResult", "window_edges", "window_checkpoint"]

#: what a marched checkpoint's meta holds under "march" (its version)
MARCH_FORMAT = 1


@dataclass
class MarchResult(TrainResult):
    """What :func:`march` returns: a :class:`~pinn_sine.train.TrainResult` of the whole
    march plus the windows'.

    ``net`` is the :class:`~pinn_sine.nets.piecewise.PiecewiseInTime` network; ``history``
    every window's rows in order, each with a "window" column (k), its "step" counted over
    all windows and its "time" since the march began (training time; references aside);
    ``final`` the piecewise network's errors over the whole problem's reference (with
    ``rel_l2_exact`` where the problem has an exact solution); ``timings`` "total" and
    "window_<k>"; ``stop_reason`` "completed", or "time_limit" when a window stopped on
    its share of the time budget.

    Attributes added: ``edges`` (t_0 ... t_K), ``windows`` (each window's TrainResult;
    for windows finished before a resume, a TrainResult holding their summary: history,
    final, timings, steps), ``problems`` (the window problems).
    """

    edges: tuple = ()
    windows: list = field(default_factory=list)
    problems: list = field(default_factory=list)

    def window_table(self) -> list[dict]:
        """One row per window: "window", "t_start", "t_end", "steps", "time" (s),
        "rel_l2" (against the window's reference; None without one), "stop_reason"."""
        rows = []
        for k, r in enumerate(self.windows):
            rows.append({"window": k, "t_start": self.edges[k], "t_end": self.edges[k + 1], "steps": r.steps_done,
                         "time": r.timings.get("total"), "rel_l2": r.final.get("rel_l2"),
                         "stop_reason": r.stop_reason})
        return rows


def window_edges(problem: Problem, windows: int | None = None, edges: Sequence[float] | None = None,
                 growth: float = 1.0) -> tuple[float, ...]:
    """The window edges of a march over ``problem``'s time interval (its first input,
    "t"): K windows (``windows``), equal or each ``growth`` times as long as the one
    before (module docstring), or the given ``edges``, which must start and end at the
    interval's ends."""
    names = tuple(problem.input_names)
    if not names or names[0] != "t":
        raise ValueError(f"{type(problem).__name__} has inputs {names}; marching needs a time-dependent problem whose "
                         "first input is 't'.")
    lo, hi = (float(v) for v in problem.bounds[0])
    if isinstance(growth, bool) or not isinstance(growth, numbers.Real) or not 0.01 <= growth <= 100:
        raise ValueError(f"growth must be a number in [0.01, 100] (each window's length over the one before; 1: equal "
                         f"windows), got growth={growth!r}.")
    growth = float(growth)
    if edges is not None:
        if windows is not None:
            raise ValueError("give windows=K (equal windows) or edges=[t_0, ..., t_K], not both.")
        if growth != 1.0:
            raise ValueError("growth cuts windows=K windows; edges=[...] are the cut already: give one of them.")
        out = check_edges(edges)
        if not (math.isclose(out[0], lo, rel_tol=0, abs_tol=1e-12 * max(1.0, abs(hi)))
                and math.isclose(out[-1], hi, rel_tol=0, abs_tol=1e-12 * max(1.0, abs(hi)))):
            raise ValueError(f"edges must start at t = {lo:g} and end at t = {hi:g} (the problem's time interval), got "
                             f"[{out[0]:g}, ..., {out[-1]:g}].")
        return (lo,) + out[1:-1] + (hi,)
    k = 4 if windows is None else windows
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= 1000:
        raise ValueError(f"windows must be an integer in [1, 1000] (equal time windows), got windows={windows!r}.")
    k = int(k)
    if growth == 1.0:
        return tuple([lo] + [lo + (hi - lo) * j / k for j in range(1, k)] + [hi])
    try:
        fractions = [(growth ** j - 1) / (growth ** k - 1) for j in range(1, k)]
    except OverflowError:  # g^k beyond float range (g > 1): the same fractions in powers of 1/g
        r = 1 / growth
        fractions = [(r ** (k - j) - r ** k) / (1 - r ** k) for j in range(1, k)]
    return tuple([lo] + [lo + (hi - lo) * f for f in fractions] + [hi])


def window_checkpoint(path: str | os.PathLike, k: int) -> Path:
    """The checkpoint of window ``k`` of a march checkpointed at ``path``:
    ``checkpoint.pt`` -> ``checkpoint.window<k>.pt`` beside it."""
    path = Path(path)
    return path.with_name(f"{path.stem}.window{k}{path.suffix or '.pt'}")


def march(problem: Problem, net: nn.Module, *, stages: Sequence, windows: int | None = None,
          edges: Sequence[float] | None = None, warm_start: bool = True, reference: ReferenceField | None = None,
          seed: int = 0, batch: int | None = None, weights=None, causal=None, adaptive=None, engine: str = "jet",
          eval_every: int = 500, log_every: int = 10, checkpoint: str | os.PathLike | None = None,
          checkpoint_every: int = 500, resume: str | os.PathLike | None = None, progress: bool = True,
          time_limit: float | None = None, divergence: float | None = 1e4, metrics=None,
          stall: Stall | None = Stall(), callbacks=None, compile: bool = False,
          later_stages: Sequence | None = None, growth: float = 1.0) -> MarchResult:
    """Train ``problem`` window after window in time (module docstring) and return the
    piecewise network with the march's history.

    Window k trains a copy of ``net`` (window 0: ``net``'s weights; later windows: the
    previous window's final weights when ``warm_start``, else ``net``'s again) with
    copies of ``stages`` and of ``weights``, ``causal`` and ``adaptive``, on the sampling
    seed ``seed + k``; ``net`` itself is left as it was. Every other keyword is
    :func:`~pinn_sine.train`'s, for each window; ``callbacks`` are called in every
    window's loop. ``time_limit`` is the whole march's budget: window k may use what is
    left divided by the windows left (a window that stops early leaves its time to the
    next). ``reference``, the whole problem's (``problem.reference(resolution)``): each
    window is evaluated against ``problem.window(...).reference(resolution)`` at the same
    resolution, and the piecewise network against ``reference`` at the end.

    Args:
        problem: the whole time-dependent problem (t first), one that defines
            :meth:`~pinn_sine.problems.Problem.window`. Under ``constraint="hard"`` every
            window trains ``window.constrain(N_k)``, its data built in from the previous
            window's network: problems first order in time (Allen-Cahn, whose hard window
            needs the previous network's second x-derivatives); the wave problems refuse
            it (their hard window would need third derivatives).
        net: the initial network (an MLP of the problem's inputs; a ConstrainedNet's
            inner network is taken).
        stages: the optimizer stages of every window (:mod:`pinn_sine.optim`).
        windows: K windows (default 4), equal unless ``growth``; or ``edges`` = [t_0, ..., t_K].
        growth: each window's length over the one before (default 1: equal windows;
            module docstring).
        later_stages: the stages of the windows after the first (default: ``stages``),
            e.g. fewer Adam steps where the network starts warm.

    Raises:
        TrainingInterrupted: Ctrl-C in a window (its checkpoint and P are written; resume
            with ``resume=P``), carrying the :class:`MarchResult` so far.
        TrainingDiverged: a window diverged, likewise.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a Problem instance such as Wave1D(), got {problem!r}.")
    if not problem.marchable:
        problem.window(0.0, 1.0)  # raises, saying what to implement
    net = unconstrained(net)
    if not isinstance(net, nn.Module) or getattr(net, "in_dim", None) != problem.in_dim \
            or getattr(net, "out_dim", None) != problem.out_dim:
        raise TypeError(f"net must be a network of {problem.in_dim} inputs and {problem.out_dim} outputs "
                        f"(MLP(problem.in_dim, problem.out_dim, ...)), got {net!r}.")
    for name, value in (("stages", stages), ("later_stages", later_stages)):
        if value is None and name == "later_stages":
            continue
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
            raise TypeError(f"{name} must be a non-empty list of stages (pinn_sine.optim), got {value!r}.")
    if not isinstance(warm_start, bool):
        raise ValueError(f"warm_start must be True or False, got {warm_start!r}.")
    check_time_limit(time_limit)
    if reference is not None and not isinstance(reference, ReferenceField):
        raise TypeError(f"reference must be the whole problem's ReferenceField (problem.reference(...)), got "
                        f"{type(reference).__name__}.")
    cuts = window_edges(problem, windows, edges, growth)
    k_total = len(cuts) - 1
    hard = problem.constraint == "hard"
    if hard and k_total > 1:  # a hard window from a network: refused now rather than after window 0's training
        first = problem.window(cuts[0], cuts[1], None)
        probe = InitialData.from_network(first.constrain(copy.deepcopy(net)), first, cuts[1])
        try:
            problem.window(cuts[1], cuts[2], probe).hard_constraint()
        except ValueError as err:
            raise ValueError(f"{problem.name}: a hard-constrained window cannot start from the previous window's "
                             f"network ({err}) Use constraint='soft'.") from None
    resolution = None if reference is None else reference.params.get("resolution")
    pieces: list[nn.Module] = []
    results: list[TrainResult] = []
    if resume is not None:
        pieces, results = _resume_march(resume, problem, net, cuts, stages)
    # the window problems of the finished windows, rebuilt in order (each one's data from its predecessor)
    problems = _rebuild_windows(problem, cuts, pieces)
    for k, piece in enumerate(pieces):
        results[k].net = piece
    wall = time.perf_counter()
    for k in range(len(pieces), k_total):
        window = _window_problem(problem, cuts, k, pieces, problems)
        problems.append(window)
        # net itself is never trained; under a hard constraint the window's own transform
        piece = window.constrain(copy.deepcopy(unconstrained(pieces[-1]) if k and warm_start else net))
        used = sum(r.timings.get("total", 0.0) for r in results)
        budget = None
        if time_limit is not None:
            budget = max((time_limit - used) / (k_total - k), 1e-3)
        window_ref = None if resolution is None else window.reference(resolution)
        window_metrics = metrics
        if window_ref is not None and problem.exact_solution is not None and window.exact_solution is None:
            window_metrics = list(metrics or []) + [_WholeExact(problem, window, window_ref)]
        own = None if checkpoint is None else window_checkpoint(checkpoint, k)
        again = None if resume is None else window_checkpoint(resume, k)
        label = f"{problem.name} window {k + 1}/{k_total} [{cuts[k]:.4g}, {cuts[k + 1]:.4g}]"
        try:
            plan = stages if k == 0 or later_stages is None else later_stages
            result = train(window, piece, stages=[copy.deepcopy(s) for s in plan], batch=batch, seed=seed + k,
                           weights=copy.deepcopy(weights), causal=copy.deepcopy(causal),
                           adaptive=copy.deepcopy(adaptive), engine=engine, reference=window_ref,
                           eval_every=eval_every, log_every=log_every, checkpoint=own,
                           checkpoint_every=checkpoint_every,
                           resume=again if again is not None and again.exists() else None, progress=progress,
                           time_limit=budget, divergence=divergence, metrics=window_metrics, stall=stall,
                           callbacks=callbacks, label=label, compile=compile)
        except (TrainingInterrupted, TrainingDiverged) as stop:
            partial = stop.result if stop.result is not None else TrainResult(net=piece)
            so_far = _assemble(problem, cuts, pieces + [piece], problems, results + [partial], reference=None,
                               stop=stop)
            if isinstance(stop, TrainingInterrupted):
                raise TrainingInterrupted(so_far.steps_done, checkpoint, so_far) from None
            stop.result = so_far
            raise
        pieces.append(piece)
        results.append(result)
        if checkpoint is not None:
            _save_march(checkpoint, problem, cuts, pieces, results, stages, seed=seed, warm_start=warm_start)
    out = _assemble(problem, cuts, pieces, problems, results, reference=reference)
    out.timings["wall"] = time.perf_counter() - wall
    return out


class _WholeExact:
    """The history column ``rel_l2_exact`` of a window whose own problem has no exact
    solution (its data come from a network): the window network's relative L2 error on the
    window's reference grid against the whole problem's exact solution, which is the truth
    the window approximates."""

    name = "rel_l2_exact"

    def __init__(self, whole: Problem, window: Problem, reference: ReferenceField):
        from .validation.evaluate import exact_on_grid

        self.window, self.reference = window, reference
        self.fields = exact_on_grid(whole.exact_solution, reference)

    def __call__(self, net) -> float:
        from .validation.evaluate import evaluate

        return evaluate(net, self.reference, prediction=self.window.predict(net, self.reference),
                        exact=self.fields)["rel_l2_exact"]

    def __repr__(self) -> str:
        return "rel_l2_exact (the whole problem's exact solution on the window's grid)"


def _rebuild_windows(problem: Problem, cuts, pieces: list) -> list[Problem]:
    """The window problems of the finished windows ``pieces`` (networks with their
    weights), in order, each one's data from its predecessor; under a hard constraint each
    piece (an inner network, as stored) is replaced by its window's constrained network
    (built from the previous constrained piece). Returns the window problems."""
    problems: list[Problem] = []
    for k in range(len(pieces)):
        problems.append(_window_problem(problem, cuts, k, pieces, problems))
        if problem.constraint == "hard":
            pieces[k] = problems[k].constrain(unconstrained(pieces[k]))
    return problems


def constrained_pieces(problem: Problem, piecewise: PiecewiseInTime) -> PiecewiseInTime:
    """The hard-constrained piecewise network of a march of ``problem`` from the inner
    networks of ``piecewise`` (weights loaded; what a checkpoint stores): window k's
    transform is built from window k-1's constrained network, in order
    (:func:`~pinn_sine.load_net` calls it)."""
    pieces = list(piecewise.nets)
    _rebuild_windows(problem, piecewise.edges, pieces)
    return PiecewiseInTime(pieces, piecewise.edges, time_input=piecewise.time_input)


def strip_inner(state: dict) -> dict:
    """A constrained piecewise network's state dict with each piece's weights as its inner
    network's: ``nets.<k>.inner.<rest>`` -> ``nets.<k>.<rest>``."""
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if len(parts) > 3 and parts[0] == "nets" and parts[2] == "inner":
            key = ".".join(parts[:2] + parts[3:])
        out[key] = value
    return out


def _window_problem(problem: Problem, cuts, k: int, pieces: list, problems: list) -> Problem:
    """Window k of ``problem``: its own initial data for k = 0, else the data of window
    k - 1's network at t_k."""
    if k == 0:
        return problem.window(cuts[0], cuts[1], None)
    data = InitialData.from_network(pieces[k - 1], problems[k - 1], cuts[k])
    return problem.window(cuts[k], cuts[k + 1], data)


def _assemble(problem: Problem, cuts, pieces: list, problems: list, results: list, *,
              reference: ReferenceField | None, stop=None) -> MarchResult:
    """The march's result from the windows' (``pieces`` may be fewer than the windows: a
    march stopped early covers the windows it reached)."""
    edges = tuple(cuts[:len(pieces) + 1])
    piecewise = PiecewiseInTime(pieces, edges)
    mark_trained_for(piecewise, problem.name)
    history, steps, elapsed, stalls = [], 0, 0.0, []
    timings: dict = {}
    for k, r in enumerate(results):
        for row in r.history:
            history.append({**row, "step": row["step"] + steps, "time": row.get("time", 0.0) + elapsed,
                            "window": k})
        stalls += [{**s, "window": k, "step": s["step"] + steps} for s in r.stalls]
        steps += r.steps_done
        timings[f"window_{k}"] = r.timings.get("total", 0.0)
        elapsed += r.timings.get("total", 0.0)
    timings["total"] = elapsed
    reasons = [r.stop_reason for r in results]
    reason = "time_limit" if "time_limit" in reasons else "completed"
    if stop is not None:
        reason = "interrupted" if isinstance(stop, TrainingInterrupted) else "diverged"
    k_total = len(cuts) - 1
    message = (f"{len(results)} of {k_total} windows, {steps} steps"
               + (f"; windows {[k for k, r in enumerate(reasons) if r == 'time_limit']} stopped on their share of "
                  "the time limit" if reason == "time_limit" else "")
               + ("" if stop is None else f"; {reason} in window {len(results) - 1}"))
    final = {}
    if reference is not None and len(pieces) == k_total:
        from .validation.evaluate import evaluate, exact_on_grid

        exact = problem.exact_solution
        final = evaluate(piecewise, reference, prediction=problem.predict(piecewise, reference),
                         exact=None if exact is None else exact_on_grid(exact, reference))
    last = results[-1] if results else TrainResult(net=piecewise)
    metrics = dict(last.metrics)
    metrics.update({k: final[k] for k in ("rel_l2", "rel_l2_exact") if k in final})
    return MarchResult(net=piecewise, history=history, timings=timings, final=final,
                       final_losses=dict(last.final_losses), steps_done=steps,
                       steps_planned=sum(r.steps_planned for r in results), stop_reason=reason,
                       stop_message=message, metrics=metrics, stalls=stalls, coefficients={},
                       edges=tuple(cuts), windows=list(results), problems=list(problems))


def _summary(r: TrainResult) -> dict:
    return {"history": r.history, "timings": r.timings, "final": r.final, "final_losses": r.final_losses,
            "steps_done": r.steps_done, "steps_planned": r.steps_planned, "stop_reason": r.stop_reason,
            "stop_message": r.stop_message, "metrics": r.metrics, "stalls": r.stalls}


def _save_march(path, problem: Problem, cuts, pieces: list, results: list, stages, *, seed: int,
                warm_start: bool) -> None:
    """P: a checkpoint of the usual format (:func:`~pinn_sine.checkpoint.save_checkpoint`)
    holding the piecewise network of the finished windows and, under meta["march"], what
    a resume needs."""
    so_far = _assemble(problem, cuts, pieces, [], results, reference=None)
    described = [s.describe() for s in stages]
    meta = {"history": so_far.history, "elapsed": so_far.timings["total"], "stages": described,
            "problem": problem.name, "problem_params": problem.params(), "net": so_far.net.config,
            "final_losses": so_far.final_losses,
            "march": {"format": MARCH_FORMAT, "edges": list(cuts), "finished": len(pieces), "seed": seed,
                      "warm_start": warm_start, "windows": [_summary(r) for r in results]}}
    save_checkpoint(path, step=so_far.steps_done, net=so_far.net, stage=len(stages) - 1, stage_step=0,
                    stages=[{} for _ in stages], generator=torch.Generator(), meta=meta)


def _resume_march(path, problem: Problem, net: nn.Module, cuts, stages) -> tuple[list, list]:
    """The finished windows' networks and results from the march checkpoint at ``path``
    (none when it does not exist yet: a march killed in its first window resumes that
    window from its own checkpoint)."""
    path = Path(path)
    if not path.exists():
        if window_checkpoint(path, 0).exists():
            return [], []
        raise FileNotFoundError(f"checkpoint {path} does not exist (nor {window_checkpoint(path, 0).name}).")
    ck = load_checkpoint(path)
    meta = ck["meta"]
    info = meta.get("march")
    if not isinstance(info, dict) or info.get("format") != MARCH_FORMAT:
        raise CheckpointError(path, "is not the checkpoint of a march (no 'march' record in its meta); resume it "
                                    "with train(resume=...).")
    check_compatible(path, meta, problem=problem.name, problem_params=problem.params(), net_config={})
    stored = [float(e) for e in info.get("edges", [])]
    if stored != [float(e) for e in cuts]:
        raise CheckpointError(path, f"was written by a march over the windows {stored}; this one has {list(cuts)}. "
                                    "Resume with the same windows.")
    described = [s.describe() for s in stages]
    if [d.get("stage") for d in meta["stages"]] != [d.get("stage") for d in described]:
        raise CheckpointError(path, f"was written with the stages {[d.get('stage') for d in meta['stages']]}; this "
                                    f"march has {[d.get('stage') for d in described]}.")
    finished = info.get("finished")
    summaries = info.get("windows")
    if not isinstance(finished, int) or not isinstance(summaries, list) or len(summaries) != finished \
            or not 0 <= finished <= len(cuts) - 1:
        raise CheckpointError(path, "its march record is damaged (finished windows and their summaries disagree).")
    piece_configs = (meta["net"].get("piecewise") or {}).get("nets", [])
    mine = dict(getattr(net, "config", {}))
    for k, c in enumerate(piece_configs):
        diff = sorted(key for key in (set(c) & set(mine)) - {"seed"} if c[key] != mine[key])
        if diff:
            raise CheckpointError(path, f"window {k}'s network differs from this run's in {diff}; resume with the "
                                        "same network.")
    pieces = [copy.deepcopy(net) for _ in range(finished)]
    if finished:
        piecewise = PiecewiseInTime(pieces, cuts[:finished + 1])
        state = ck["net"]
        if problem.constraint == "hard":  # the pieces were ConstrainedNets: their weights under "inner."
            state = strip_inner(state)
        try:
            piecewise.load_state_dict(state)
        except RuntimeError as err:
            raise CheckpointError(path, f"its windows' weights do not fit this network "
                                        f"({str(err).splitlines()[0]}).") from None
    results = [TrainResult(net=p, **{k: s[k] for k in ("history", "timings", "final", "final_losses", "steps_done",
                                                        "steps_planned", "stop_reason", "stop_message", "metrics",
                                                        "stalls")})
               for p, s in zip(pieces, summaries)]
    return pieces, results
