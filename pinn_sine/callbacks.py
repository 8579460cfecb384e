"""Training concerns as callbacks of :func:`pinn_sine.loop.fit` (Lightning's design).

A callback is an object whose hooks the loop calls at fixed points (the order is in
:mod:`pinn_sine.loop`), with its own :meth:`Callback.state_dict` /
:meth:`Callback.load_state_dict`: a checkpoint holds every callback's state, and a
resumed run restores it, so nothing is reset behind the user's back.
:func:`pinn_sine.train` builds the built-ins from its keywords, in this order, and
appends the user's ``callbacks=``:

* :class:`Timer` -- the stages' seconds, the median Adam step, ``time_limit``;
* :class:`Evaluation` -- the metrics against the reference every ``eval_every`` steps,
  the final evaluation;
* :class:`StallStop` -- a stage whose loss stalls ends early (:mod:`pinn_sine.stall`);
* :class:`DivergenceGuard` -- a loss that stays far above its best stops the run;
* :class:`FiniteLossGuard` -- a non-finite loss stops the run;
* :class:`Progress` -- a bar per stage, or plain lines in a log file;
* :class:`Checkpoint` -- atomic checkpoints every ``checkpoint_every`` steps, at stage
  ends and at the end;
* :class:`SigintStop` -- Ctrl-C finishes the step, checkpoints it and stops.

One more is the user's to add (``callbacks=[...]``): :class:`SnapshotEnsemble` keeps the
fits of a stage's last batches and hands back their mean as a function.

Writing one: subclass :class:`Callback`, override the hooks you need, and keep what a
resumed run must know in ``state_dict`` (JSON-able values). A callback that logs the
learning rate's logarithm and counts its logged rows::

    class LogLr(Callback):
        def __init__(self):
            self.rows = 0

        def on_log(self, loop, stage, row):
            if "lr" in row:
                row["log10_lr"] = math.log10(row["lr"])
            self.rows += 1

        def state_dict(self):
            return {"rows": self.rows}

        def load_state_dict(self, state):
            self.rows = state["rows"]

    train(problem, net, stages=[Adam(1000)], callbacks=[LogLr()])
"""
from __future__ import annotations

import math
import numbers
import signal
import sys
import threading
import time
import warnings

import numpy as np
import torch
from torch import Tensor

from . import distributed
from .checkpoint import save_checkpoint
from .loop import TrainingDiverged, crossed
from .metrics import ReferenceMetric
from .stall import Stall, StallDetector
from .validation.evaluate import NonFinitePrediction, evaluate, reference_limit

__all__ = ["Callback", "Timer", "Evaluation", "StallStop", "DivergenceGuard", "FiniteLossGuard", "Progress",
           "Checkpoint", "SigintStop", "SnapshotEnsemble", "LogProgress", "DIVERGENCE_STEPS", "restore"]

#: steps the logged loss must stay above ``divergence`` x its best before a run is stopped
DIVERGENCE_STEPS = 20


class Callback:
    """Base class of the callbacks: every hook does nothing. ``loop`` is the
    :class:`~pinn_sine.loop.Loop` (its ``context`` is the :class:`~pinn_sine.train.Run`,
    its ``result`` the :class:`~pinn_sine.train.TrainResult` being built).

    Hooks (in call order; see :mod:`pinn_sine.loop`): ``on_fit_start(loop)``,
    ``on_stage_start(loop, stage)``, ``on_step_start(loop, stage)``, ``on_loss(loop, step,
    phase, total, terms)``, ``on_batch_change(loop, stage)``, ``on_after_step(loop, stage,
    result)``, ``on_log(loop, stage, row)``, ``on_step_end(loop, stage, result, row)``,
    ``on_stage_end(loop, stage)``, ``on_fit_end(loop)``, ``on_exception(loop, error)``,
    ``teardown(loop)``.
    """

    @property
    def state_key(self) -> str:
        """The name of this callback's state in a checkpoint (unique among a run's callbacks)."""
        return type(self).__qualname__

    def state_dict(self) -> dict:
        """What a resumed run needs to continue as if uninterrupted (JSON-able)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (called before ``on_fit_start`` of a resumed run)."""

    def on_fit_start(self, loop) -> None:
        """Before the first stage (a resumed run: after the states are restored)."""

    def on_stage_start(self, loop, stage) -> None:
        """A stage was started (and, resumed, its state loaded: ``loop.resumed``, ``loop.done``)."""

    def on_step_start(self, loop, stage) -> None:
        """Before ``stage.step``."""

    def on_loss(self, loop, step: int, phase: str, total: Tensor, terms: dict) -> None:
        """A stage computed a loss (``run.check_finite``), before it acts on it; ``total``
        is this process's weighted loss, ``terms`` its plain terms. Every rank calls it."""

    def on_batch_change(self, loop, stage) -> None:
        """A stage changed its objective within the stage (``run.reset_growth``: a new
        fixed batch): losses before and after are not comparable."""

    def on_after_step(self, loop, stage, result) -> None:
        """After a step (``result``: its :class:`~pinn_sine.optim.StepResult`), before
        it is logged: the place to ask ``loop.stop(reason, message)`` (the run ends after
        this step, which is then logged and evaluated) or, at a logged step
        (``loop.log_due``), ``loop.stop_stage(message)``."""

    def on_log(self, loop, stage, row: dict) -> None:
        """A history row is being built (the step's losses, weights, the stage's columns,
        ``time``): add columns to ``row``; later callbacks see them."""

    def on_step_end(self, loop, stage, result, row: dict | None) -> None:
        """The step is done and logged (``row``: the history row, None when not logged)."""

    def on_stage_end(self, loop, stage) -> None:
        """A stage ended (all its steps, a stop, a stall or Ctrl-C)."""

    def on_fit_end(self, loop) -> None:
        """The loop ran to its end (completed or stopped by a request); ``loop.result``
        has its stop reason."""

    def on_exception(self, loop, error: BaseException) -> None:
        """The run raised ``error`` (a divergence, Ctrl-C, ...); it is re-raised after the hooks."""

    def teardown(self, loop) -> None:
        """Last, however the run ended: complete the result, release what was taken."""


def _caller_level() -> int:
    """The ``stacklevel`` of the first frame outside the training modules (train, loop,
    callbacks): a warning points at the line that called :func:`pinn_sine.train`."""
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    ours = {os.path.join(here, name) for name in ("train.py", "loop.py", "callbacks.py")}
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename) in ours:
        frame, level = frame.f_back, level + 1
    return level


def _reducer(loop):
    ctx = loop.context.ctx
    return (lambda t: distributed.all_reduce_mean(t)) if ctx.active else (lambda t: t)


class Timer(Callback):
    """Wall-clock seconds per stage (``TrainResult.timings``: "total", each stage's label,
    "step_median" of the Adam steps) and the optional ``time_limit``: the run stops after
    the step that crosses it (seconds of this call: a resumed run gets the budget anew)."""

    def __init__(self, time_limit: float | None = None):
        self.time_limit = time_limit
        self.stage_times: dict[str, float] = {}
        self.adam_steps: list[float] = []

    def on_fit_start(self, loop) -> None:
        self.t0 = time.perf_counter()

    def on_stage_start(self, loop, stage) -> None:
        self.t_stage = time.perf_counter()

    def on_step_start(self, loop, stage) -> None:
        self.t_step = time.perf_counter()

    def on_after_step(self, loop, stage, result) -> None:
        if stage.name == "adam":
            self.adam_steps.append(time.perf_counter() - self.t_step)
        if self.time_limit is not None and time.perf_counter() - self.t0 >= self.time_limit:
            loop.stop("time_limit", f"time limit of {self.time_limit:g} s reached at step {loop.global_step} of "
                                    f"{loop.result.steps_planned}")

    def on_stage_end(self, loop, stage) -> None:
        self.stage_times[loop.labels[loop.index]] = time.perf_counter() - self.t_stage

    def teardown(self, loop) -> None:
        loop.result.timings = {"total": loop.elapsed(), **self.stage_times,
                               "step_median": float(np.median(self.adam_steps)) if self.adam_steps else float("nan")}


class Evaluation(Callback):
    """The metrics (:mod:`pinn_sine.metrics`) as history columns every ``eval_every``
    steps, at every stage end, at a stall, and at every logged step of a stage with
    ``evaluate_each_log``; the run's reference metrics share one prediction on the
    grid, compared with the exact solution put on it once. At the end: the final
    evaluation against ``reference`` (``TrainResult.final``, a warning when the
    reference's own error limits it) and ``TrainResult.metrics``. Rank 0 only."""

    def __init__(self, problem, reference, metrics, *, exact=None, eval_every: int = 500, columns=()):
        self.problem, self.reference, self.metrics, self.exact = problem, reference, list(metrics), exact
        self.eval_every, self.columns = eval_every, list(columns)
        self.exact_fields = None

    def on_fit_start(self, loop) -> None:
        if self.exact is not None and loop.context.ctx.is_main:  # every evaluation compares with these fields
            from .validation.evaluate import exact_on_grid
            self.exact_fields = exact_on_grid(self.exact, self.reference)

    def on_log(self, loop, stage, row: dict) -> None:
        fresh = loop.stage_ending or loop.stage_stop is not None \
            or crossed(loop.global_step, loop.step_result.steps, self.eval_every) or stage.evaluate_each_log
        if fresh and loop.context.ctx.is_main and self.metrics:
            row.update(self.measure(loop.context.net, row, stage))

    def measure(self, net, row: dict, stage) -> dict:
        """Every metric's columns at this row: the run's reference metrics from one
        evaluation (one prediction on the grid), the others called on the net."""
        out: dict = {}
        errors = None
        for m in self.metrics:
            try:
                if isinstance(m, ReferenceMetric) and m.reference is None:
                    if errors is None:
                        errors = evaluate(net, self.reference, prediction=self.problem.predict(net, self.reference),
                                          exact=self.exact_fields)
                    values = m.from_errors(errors, self.exact is not None)
                elif isinstance(m, ReferenceMetric):  # against its own reference, of what the problem predicts
                    values = {m.name: m(net, self.problem)}
                else:
                    values = {m.name: m(net)}
            except NonFinitePrediction as err:  # a finite loss, but nan or inf on the grid
                raise TrainingDiverged(f"non-finite prediction at step {row['step']} ({stage.name}): {err}",
                                       row["step"]) from None
            for k, v in values.items():
                if k in row:
                    raise ValueError(f"metric {m!r} writes the column {k!r}, which {stage.name} already logs; "
                                     "rename the metric.")
                if isinstance(v, torch.Tensor) and v.numel() == 1:
                    v = v.item()
                if isinstance(v, bool) or not isinstance(v, numbers.Real):
                    raise TypeError(f"metric {m!r} returned {v!r} at step {row['step']}; a metric returns a real "
                                    "number.")
                out[k] = float(v)
        return out

    def on_fit_end(self, loop) -> None:
        if self.reference is not None and loop.context.ctx.is_main:
            net = loop.context.net
            loop.result.final = evaluate(net, self.reference, prediction=self.problem.predict(net, self.reference),
                                         exact=self.exact_fields)
            limit = reference_limit(loop.result.final, self.reference)
            if limit is not None:
                warnings.warn(limit, RuntimeWarning, stacklevel=_caller_level())

    def teardown(self, loop) -> None:
        last = next((r for r in reversed(loop.result.history) if any(c in r for c in self.columns)), {})
        loop.result.metrics = {c: last[c] for c in self.columns if c in last}


class StallStop(Callback):
    """Ends a stage whose loss stalls (the rule :class:`~pinn_sine.stall.Stall`, tested
    at the logged steps over every step's loss) with ``loop.stop_stage``: the loop marks
    the row ``"stalled": True`` and records the stall (``TrainResult.stalls``). State: the detector's window
    and best loss (checkpoint key "stall", beside the records)."""

    state_key = "stall"

    def __init__(self, rule: Stall):
        self.rule = rule
        self.detector: StallDetector | None = None
        self._resumed: dict | None = None
        self._reduce = lambda t: t

    def on_fit_start(self, loop) -> None:
        self._reduce = _reducer(loop)

    def on_stage_start(self, loop, stage) -> None:
        self.detector = StallDetector(self.rule, stage.steps)
        if loop.resumed and self._resumed is not None:
            self.detector.load_state_dict(self._resumed)
        self._resumed = None

    def on_after_step(self, loop, stage, result) -> None:
        self.detector.add(loop.done, result.total)
        if loop.log_due and not loop.stage_ending and self.detector.check(loop.done, self._reduce):
            loop.stop_stage(self.detector.message)

    def on_stage_end(self, loop, stage) -> None:
        self.detector = None

    def state_dict(self) -> dict:
        return {"detector": None if self.detector is None else self.detector.state_dict(self._reduce)}

    def load_state_dict(self, state: dict) -> None:
        self._resumed = state.get("detector")


class DivergenceGuard(Callback):
    """Raises :class:`~pinn_sine.loop.TrainingDiverged` when the logged loss (the all-rank
    mean at the point a stage keeps: Gauss-Newton's rejected trials never get here) has
    stayed above ``factor`` times the stage's best for :data:`DIVERGENCE_STEPS` steps.
    The best is forgotten at every stage start and when a stage changes its batch
    (``on_batch_change``); the first step of a stage sets it even when not logged.
    State: the window (``best``, ``above_since``), so that a run resumed in the middle
    of a window stops at the same step as an uninterrupted one (checkpoints written
    before it was kept resume with the window reset, as they always did)."""

    state_key = "divergence"

    def __init__(self, factor: float):
        self.factor = factor
        self.reset()
        self._resumed: dict | None = None
        self._first = True

    def reset(self) -> None:
        """Forget the best loss (a new stage: another batch or objective)."""
        self.best, self.above_since = float("inf"), None

    def on_stage_start(self, loop, stage) -> None:
        self.reset()
        self._first = True
        if loop.resumed and self._resumed is not None:
            self.load_window(self._resumed)
            self._first = False  # the stage's first step was taken before the checkpoint
        self._resumed = None

    def on_batch_change(self, loop, stage) -> None:
        self.reset()

    def on_step_end(self, loop, stage, result, row) -> None:
        if row is not None:
            self.check(loop.global_step, stage.name, row["loss"])
        elif self._first:  # the first best, before a fast divergence
            self.check(loop.global_step, stage.name, float(loop.context.global_total(result.total)))
        self._first = False

    def check(self, step: int, phase: str, loss: float) -> None:
        if loss < self.best:
            self.best, self.above_since = loss, None
        elif loss > self.factor * self.best:
            if self.above_since is None:
                self.above_since = step
            if step - self.above_since >= DIVERGENCE_STEPS:
                raise TrainingDiverged(
                    f"diverging at step {step} ({phase}): the loss {loss:.3e} has been above {self.factor:g} x "
                    f"its best {self.best:.3e} since step {self.above_since}; the last checkpoint is left intact. "
                    "Lower the learning rate (--lr) or the omega of the first layer (--first-omega).", step)
        else:
            self.above_since = None

    def state_dict(self) -> dict:
        return {"best": None if math.isinf(self.best) else self.best, "above_since": self.above_since}

    def load_window(self, state: dict) -> None:
        self.best = float("inf") if state["best"] is None else float(state["best"])
        self.above_since = None if state["above_since"] is None else int(state["above_since"])

    def load_state_dict(self, state: dict) -> None:
        self._resumed = dict(state)


class FiniteLossGuard(Callback):
    """Raises :class:`~pinn_sine.loop.TrainingDiverged` at a non-finite (all-rank mean)
    loss, naming the step and the first non-finite term; every rank raises together.
    Stages report every loss they compute (``run.check_finite``), before acting on it."""

    def on_loss(self, loop, step: int, phase: str, total: Tensor, terms: dict) -> None:
        run = loop.context
        total = run.global_total(total)
        if not torch.isfinite(total):
            bad = [k for k, v in terms.items() if not torch.isfinite(v)]
            if bad:
                what = f"term {bad[0]!r} = {float(terms[bad[0]].detach())}"
            else:
                what = f"total = {float(total)}" + (" (on another process)" if run.ctx.active else "")
            raise TrainingDiverged(f"non-finite loss at step {step} ({phase}): {what}; the last checkpoint is left "
                                   "intact. Lower the learning rate or the omega of the first layer.", step)


class Progress(Callback):
    """One progress bar per stage, labelled with the stage; its postfix the loss, the
    terms and the last evaluated metrics (``metrics``: their columns), ``err_exact``
    before ``err_ref``; plain lines when stderr is not a terminal (:class:`LogProgress`).
    Also prints a stall and a run that stopped before its planned steps."""

    def __init__(self, enabled: bool = True, metrics=()):
        self.enabled, self.metrics = enabled, list(metrics)
        self.bar = None
        self.evaluated: dict = {}

    def on_fit_start(self, loop) -> None:
        self.enabled = self.enabled and loop.context.ctx.is_main

    def on_stage_start(self, loop, stage) -> None:
        self.bar = _progress(stage.steps, loop.done, self.enabled,
                             f"{loop.context.label} {loop.labels[loop.index]}")

    def on_step_end(self, loop, stage, result, row) -> None:
        if row is not None:
            if any(c in row for c in self.metrics):
                self.evaluated = row
            self.bar.set_postfix(_postfix(row, result.terms, self.evaluated, self.metrics), refresh=False)
        self.bar.update(result.steps)

    def on_stage_end(self, loop, stage) -> None:
        self.bar.close()
        stall = loop.result.stalls[-1] if loop.stage_stop is not None else None
        if stall is not None and self.enabled:
            print(f"{loop.context.label} {stall['stage']}: stalled at step {stall['step']} ({stall['stage_step']} "
                  f"of {stall['steps']}): {stall['message']}; "
                  + ("the run ends." if loop.is_last else "the next stage starts."), file=sys.stderr, flush=True)

    def on_fit_end(self, loop) -> None:
        if loop.result.stop_reason != "completed" and self.enabled:
            print(f"{loop.context.label}: stopped, {loop.result.stop_message}", file=sys.stderr, flush=True)

    def on_exception(self, loop, error) -> None:
        if self.bar is not None:
            self.bar.close()


class Checkpoint(Callback):
    """Atomic checkpoints (:func:`pinn_sine.checkpoint.save_checkpoint`) to ``path``:
    whenever the global step passes a multiple of ``every``, at every stage end (a kill
    in the next stage resumes from there), at a Ctrl-C (at the step it finished) and at
    the end; never after a divergence (the last good one stays). A checkpoint holds the
    network, the problem's coefficients, the stages' states, every process's sampling
    state (:meth:`~pinn_sine.train.Run.state_dict`), the loop's state (history, elapsed
    time, stalls) and every callback's state; ``settings`` (JSON-able: batch, seed,
    engine, ...) are recorded for the resume checks. Rank 0 writes."""

    def __init__(self, path, every: int = 500, settings: dict | None = None):
        self.path, self.every, self.settings = path, every, dict(settings or {})

    def on_fit_start(self, loop) -> None:
        loop.checkpoint_path = self.path

    def on_step_end(self, loop, stage, result, row) -> None:
        if not loop.stage_ending and loop.stage_stop is None and not loop.interrupted.is_set() \
                and crossed(loop.global_step, result.steps, self.every):
            loop.states[loop.index] = stage.state_dict()
            self.save(loop, stage.name)

    def on_stage_end(self, loop, stage) -> None:
        if (loop.interrupted.is_set() and not loop.finished) or (loop.stop_request is None and not loop.is_last):
            self.save(loop, stage.name)

    def on_fit_end(self, loop) -> None:
        self.save(loop, "done")

    def save(self, loop, phase: str) -> None:
        if self.path is None:
            return
        run, result = loop.context, loop.result
        states = {cb.state_key: cb.state_dict() for cb in loop.callbacks}  # every rank: may reduce
        ranks = distributed.all_gather_objects(run.state_dict()) if run.ctx.active else [run.state_dict()]
        if not run.ctx.is_main:
            return
        position = loop.state_dict()
        problem, net = run.problem, run.net
        meta = {"phase": phase, "history": position["history"], "final_losses": position["final_losses"],
                "elapsed": position["elapsed"], "problem": problem.name,
                "problem_params": problem.params(), "inverse": problem.inverse_record(),
                "net": getattr(net, "config", {}), "weighting": run.weighting.state_dict(),
                "stages": position["described"], "train": self.settings,
                "stall": {"stalls": result.stalls, **states.pop("stall", {"detector": None})},
                "callbacks": {k: v for k, v in states.items() if v}}
        save_checkpoint(self.path, step=loop.global_step, net=net, stage=loop.index, stage_step=loop.done,
                        stages=position["stages"], generator=run.generator, meta=meta, ranks=ranks,
                        coefficients=problem.coefficients())


def restore(callbacks, meta: dict) -> None:
    """Load each callback's state from a checkpoint's meta: the stall detector from
    ``meta["stall"]``, the others from ``meta["callbacks"]`` under their ``state_key``
    (a callback the checkpoint has no state for keeps its fresh one)."""
    stored = dict(meta.get("callbacks") or {})
    if meta.get("stall") is not None:
        stored["stall"] = {"detector": meta["stall"].get("detector")}
    for cb in callbacks:
        if cb.state_key in stored:
            cb.load_state_dict(stored[cb.state_key])


class SigintStop(Callback):
    """Ctrl-C (SIGINT): the first asks the loop to stop after the step in progress
    (``loop.interrupt()``: it checkpoints that step and raises
    :class:`~pinn_sine.loop.TrainingInterrupted`); a second interrupts at once. Only in
    the main thread and where SIGINT has Python's default handler, which is put back at
    the end; not ``enabled`` (under torchrun, where the ranks would stop at different
    steps) it does nothing."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.installed = False

    def on_fit_start(self, loop) -> None:
        if not self.enabled or threading.current_thread() is not threading.main_thread() \
                or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return

        def handler(signum, frame):
            if loop.interrupted.is_set():
                raise KeyboardInterrupt
            loop.interrupt()
            print("\nCtrl-C: stopping after the current step and writing a checkpoint (Ctrl-C again: stop at once)",
                  file=sys.stderr, flush=True)

        signal.signal(signal.SIGINT, handler)
        self.installed = True

    def teardown(self, loop) -> None:
        if self.installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self.installed = False


def _postfix(row: dict, names, evaluated: dict, metrics=()) -> dict:
    """The bar's postfix: the weighted total, each loss term, the last evaluated metrics
    (``evaluated``: the last row that has them) by their names, then the built-in
    errors: against the exact solution first where there is one ("err_exact"), then
    against the reference ("err_ref")."""
    out = {"loss": f"{row['loss']:.3e}"}
    out.update({k: f"{row[k]:.2e}" for k in names if k in row})
    out.update({k: f"{evaluated[k]:.2e}" for k in metrics if k in evaluated and k not in ("rel_l2", "rel_l2_exact")})
    if "rel_l2_exact" in evaluated:
        out["err_exact"] = f"{evaluated['rel_l2_exact']:.2e}"
    if "rel_l2" in evaluated:
        out["err_ref"] = f"{evaluated['rel_l2']:.2e}"
    return out


def _progress(total: int, initial: int, enabled: bool, desc: str):
    """One stage's progress: a tqdm bar kept on screen at the end when stderr is a
    terminal, else :class:`LogProgress` (plain lines, no carriage returns)."""
    from tqdm.auto import tqdm

    if enabled and not sys.stderr.isatty():
        return LogProgress(total, initial, desc)
    return tqdm(total=total, initial=initial, disable=not enabled, desc=desc, dynamic_ncols=True, leave=True)


class SnapshotEnsemble(Callback):
    """The fits of a stage's last ``keep`` batches, averaged as functions.

    A Gauss-Newton stage that redraws its points every R steps
    (``GaussNewton(resample_every=R)``) fits each batch b to its own floor: theta_b. Near
    1e-9 the error moves 2-3x from one batch fit to the next, and the fits lie far apart
    in parameter space on a set of nearly equal functions, so the mean of the parameters
    is no fit (benchmarks/gn_averaging.py: 1e4x worse). Their mean as functions,

        u_K(x) = (1/K) sum_{b = B-K+1}^{B} u(x; theta_b),

    averages the batch-to-batch part of the error out: measured on Helmholtz2D (32x2,
    accelerated Gauss-Newton, a fresh batch of 2000 every 50 steps, 600 s), the last
    iterate 9.4e-10 and 1.24e-9 (seeds 0 and 1), the mean of the last 8 fits 7.2e-10 and
    8.6e-10. It is for a run that has reached that floor: while each batch's fit is still
    much better than the one before, the mean is worse than the last (Poisson2D after 15 s,
    ``benchmarks/optimizers.py --methods adam+gn-ens --seconds 15 --gn-resample 10
    --ensemble 3``: 4.8e-4 against the last iterate's 9.2e-5). The parameters are kept
    after every ``every``-th step of the stages named
    ``stage`` (every = R: the end of each batch), the last ``keep`` of them;
    :meth:`ensemble` builds the :class:`~pinn_sine.nets.ensemble.Ensemble` of them (the
    trained network is left as the last iterate; evaluate the ensemble with
    ``evaluate(ens, ref, prediction=problem.predict(ens, ref))``).

    State: the kept snapshots (step and parameters, as lists: a resumed run keeps them
    bit for bit; K x p numbers in the checkpoint's JSON meta).

    Args:
        every: steps of the stage between snapshots (a redrawing Gauss-Newton stage: its
            ``resample_every``; an Adam stage: e.g. 250, the inpainting recipe), >= 1.
        keep: snapshots kept (the K of the mean), >= 1.
        stage: the name of the stages whose steps count ("gauss_newton" by default).
    """

    state_key = "snapshot_ensemble"

    def __init__(self, every: int, keep: int = 8, *, stage: str = "gauss_newton"):
        for name, value in (("every", every), ("keep", keep)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"SnapshotEnsemble: {name} must be an integer >= 1, got {name}={value!r}.")
        if not isinstance(stage, str):
            raise TypeError(f"SnapshotEnsemble: stage is a stage's name (e.g. 'gauss_newton'), got {stage!r}.")
        self.every, self.keep, self.stage = int(every), int(keep), stage
        self.snapshots: list[tuple[int, dict[str, Tensor]]] = []
        self.net = None
        self._resumed: list | None = None

    def on_fit_start(self, loop) -> None:
        self.attach(loop.context.net)

    def attach(self, net) -> None:
        """Make ``net`` the network the snapshots belong to (the members of :meth:`ensemble`
        are copies of it), turning a loaded state's lists into its tensors: what a run
        does at its start, and what :func:`pinn_sine.runs.load_run` does with a finished
        run's checkpoint."""
        self.net = net
        if self._resumed is not None:
            like = self.net.state_dict()
            self.snapshots = [(int(step), {k: torch.tensor(v, dtype=like[k].dtype, device=like[k].device)
                                           for k, v in params.items()}) for step, params in self._resumed]
            self._resumed = None

    def on_after_step(self, loop, stage, result) -> None:
        if stage.name == self.stage and crossed(loop.done, result.steps, self.every):
            params = {k: v.detach().clone() for k, v in loop.context.net.state_dict().items()}
            self.snapshots = (self.snapshots + [(loop.global_step, params)])[-self.keep:]

    @property
    def steps(self) -> list[int]:
        """The global steps of the kept snapshots, oldest first."""
        return [step for step, _ in self.snapshots]

    def ensemble(self, keep: int | None = None):
        """The :class:`~pinn_sine.nets.ensemble.Ensemble` of the last ``keep`` snapshots
        (all kept ones by default): copies of the trained network with their parameters."""
        import copy

        from .nets.ensemble import Ensemble

        if not self.snapshots:
            raise ValueError(f"SnapshotEnsemble kept no snapshot: no {self.stage!r} stage reached a multiple of "
                             f"every={self.every} steps (train with this callback first, and a stage that long).")
        k = len(self.snapshots) if keep is None else keep
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= len(self.snapshots):
            raise ValueError(f"keep must be an integer in [1, {len(self.snapshots)}] (the snapshots kept), got "
                             f"keep={keep!r}.")
        members = []
        for _, params in self.snapshots[-k:]:
            member = copy.deepcopy(self.net)
            member.load_state_dict(params)
            members.append(member)
        return Ensemble(members)

    def state_dict(self) -> dict:
        return {"snapshots": [[step, {k: v.detach().cpu().tolist() for k, v in params.items()}]
                              for step, params in self.snapshots]}

    def load_state_dict(self, state: dict) -> None:
        self._resumed = [(step, params) for step, params in state.get("snapshots", [])]


class LogProgress:
    """Progress for a log file: a line ``desc: done/total (p%) key=value ... [s]`` to
    stderr every ``every`` of the steps (a fraction) or ``seconds`` of wall time,
    whichever comes first, and one at the end. The bar's interface (``update``,
    ``set_postfix``, ``close``) so the loop need not know which it drives."""

    def __init__(self, total: int, initial: int, desc: str, *, every: float = 0.1, seconds: float = 30.0):
        self.total, self.n, self.desc, self.seconds = total, initial, desc, seconds
        self.step = max(1, math.ceil(every * total))
        self.postfix: dict = {}
        self.t0 = self.last_t = time.perf_counter()
        self.last_n = initial
        self.closed = False

    def set_postfix(self, postfix: dict, refresh: bool = True) -> None:
        self.postfix = dict(postfix)

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.perf_counter()
        due = self.n // self.step > self.last_n // self.step or now - self.last_t >= self.seconds
        if due and self.n < self.total:  # the last line is close()'s
            self._write(now)

    def _write(self, now: float) -> None:
        pct = 100.0 * self.n / self.total if self.total else 100.0
        fields = " ".join(f"{k}={v}" for k, v in self.postfix.items())
        print(f"{self.desc}: {self.n}/{self.total} ({pct:.0f}%) {fields} [{now - self.t0:.1f} s]".replace("  ", " "),
              file=sys.stderr, flush=True)
        self.last_t, self.last_n = now, self.n

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._write(time.perf_counter())
