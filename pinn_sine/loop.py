"""The training loop: optimizer stages run step by step, every other concern a callback.

:func:`fit` runs ``stages`` (:mod:`pinn_sine.optim`) in order on a shared training
context (:class:`pinn_sine.train.Run`: the problem, the network, the sampler, the
weighted loss) and calls the callbacks (:mod:`pinn_sine.callbacks`) at fixed points;
checkpoints, evaluation, progress, the time limit, the loss guards, stall stops and
Ctrl-C are callbacks. With N_s the steps of stage s, the global step of stage s's step
d is sum_{r < s} N_r + d, whether or not earlier stages stopped early.

The hooks, in the order a run calls them (each callback in list order; the names follow
Lightning's, a stage playing the part of an epoch):

    on_fit_start(loop)
      for each stage:
        on_stage_start(loop, stage)
        for each step:
          on_step_start(loop, stage)
            on_loss(loop, step, phase, total, terms)      (a stage's losses, via run.check_finite)
            on_batch_change(loop, stage)                  (a stage redraws its batch, via run.reset_growth)
          on_after_step(loop, stage, result)              (stop requests: loop.stop / loop.stop_stage)
          on_log(loop, stage, row)                        (a logged step: callbacks add columns to row)
          on_step_end(loop, stage, result, row)           (row None when the step is not logged)
        on_stage_end(loop, stage)
      on_fit_end(loop)                                    (only when the loop ran to its end)
    on_exception(loop, error)                             (any exception; it is re-raised)
    teardown(loop)                                        (always, last: the result is then complete)
"""
from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from torch import nn

__all__ = ["fit", "Loop", "TrainResult", "TrainingInterrupted", "TrainingDiverged", "STOP_REASONS"]

#: why a run stopped: every planned step done, the time limit, a SIGINT (Ctrl-C), a
#: diverging or non-finite loss
STOP_REASONS = ("completed", "time_limit", "interrupted", "diverged")


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) during :func:`train`: the step in progress was finished, a
    checkpoint written at it (where ``checkpoint`` was given), and training stopped.

    Attributes: ``step`` (global steps done), ``checkpoint`` (the file written, or None),
    ``result`` (the :class:`TrainResult` so far, ``stop_reason`` "interrupted")."""

    def __init__(self, step: int, checkpoint, result: "TrainResult"):
        self.step, self.checkpoint, self.result = step, checkpoint, result
        where = f"; checkpoint {checkpoint}" if checkpoint is not None else ""
        super().__init__(f"interrupted at step {step}{where}")


class TrainingDiverged(FloatingPointError):
    """A non-finite or diverging loss: training stopped and the last checkpoint is left
    intact. ``step`` is the step it was detected at; :func:`train` attaches ``result``
    (the :class:`TrainResult` so far, ``stop_reason`` "diverged")."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step, self.result = step, None


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        net: the trained network (the same object that was passed in).
        history: one dict per logged step: "step" (counted over all stages), "phase"
            (the stage's name: "adam", "lbfgs", "gauss_newton"), "loss" (the weighted
            total), each loss term (unweighted means), the weights "w_<term>", with
            causal weighting "<term>_causal" and "causal_w0" ... "causal_w{M-1}", the
            stage's own columns ("lr"; Gauss-Newton: "lambda", "mu", "gain",
            "accepted", "step_time"), "time" (seconds since start) and, every
            ``eval_every`` steps when a reference is given, "rel_l2" (and
            "rel_l2_exact" against the exact solution on the reference's grid, where
            the problem has one), at the same steps a column per metric of
            ``train(metrics=...)``, "stalled" (True) on the row of a stage that
            stopped early because its loss stalled, and the columns of the user's
            callbacks (:meth:`pinn_sine.callbacks.Callback.on_log`).
        timings: "total" seconds, the seconds of each stage under its name (a repeated
            name gets a suffix: "adam_2"), and "step_median" (of the Adam steps).
        final: the last evaluation against the reference (empty without one), with
            ``rel_l2_exact`` where the problem has an exact solution.
        final_losses: the last logged "loss" (weighted total) and unweighted terms.
        steps_done: global steps done (over all stages, a resumed run's earlier ones
            included; a stalled stage counts the steps it ran); steps_planned: the sum
            of the stages' ``steps``.
        stop_reason: one of :data:`STOP_REASONS`; stop_message: the same in words.
        metrics: the last evaluated value of every metric (``rel_l2`` ... and the
            user's ``metrics``), from the last evaluated history row.
        stalls: one dict per stage that stalled: "index" (its position), "stage" (its
            label), "step" (global step), "stage_step" and "steps" (planned), "message".
        coefficients: the final value of each unknown of an inverse problem
            (:meth:`~pinn_sine.problems.Problem.declare_unknown`), which the history also
            logs at every logged step as ``coef_<name>`` (``coef_<name>_rms`` for a
            vector); empty for a forward problem. Their standard errors:
            :func:`pinn_sine.inverse.estimate`.
    """

    net: nn.Module
    history: list[dict] = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    final: dict = field(default_factory=dict)
    final_losses: dict = field(default_factory=dict)
    steps_done: int = 0
    steps_planned: int = 0
    stop_reason: str = "completed"
    stop_message: str = ""
    metrics: dict = field(default_factory=dict)
    stalls: list = field(default_factory=list)
    coefficients: dict = field(default_factory=dict)

    def history_table(self) -> tuple[list[str], list[list]]:
        """Columns and rows of the history (for CSV)."""
        cols: list[str] = []
        for row in self.history:
            for k in row:
                if k not in cols:
                    cols.append(k)
        return cols, [[row.get(c, "") for c in cols] for row in self.history]


def stage_labels(stages: Sequence) -> list[str]:
    """Each stage's name, a repeated one with a suffix ("adam", "adam_2")."""
    labels, seen = [], {}
    for s in stages:
        seen[s.name] = seen.get(s.name, 0) + 1
        labels.append(s.name if seen[s.name] == 1 else f"{s.name}_{seen[s.name]}")
    return labels


def crossed(done: int, taken: int, every: int) -> bool:
    """Whether the steps (done - taken, done] contain a multiple of ``every``."""
    return done // every > (done - taken) // every


class Loop:
    """The state of one :func:`fit`, which every hook receives: what callbacks read and
    the requests they make.

    Read: ``context`` (the :class:`~pinn_sine.train.Run`), ``stages``, ``labels``,
    ``callbacks``, ``result`` (the :class:`TrainResult` being built: its ``history``),
    ``index`` and ``stage`` (the current stage), ``done`` (its steps done),
    :attr:`global_step`, :attr:`stage_ending` (this step is the stage's last),
    :attr:`log_due` (this step is logged), ``resumed`` (the current stage continues
    from a checkpoint), ``log_every``, :meth:`elapsed` (seconds, a resumed run's
    earlier ones included), ``states`` (the started stages' state dicts).

    Requests, in :meth:`Callback.on_after_step`: :meth:`stop` (the run ends after this
    step, which is logged: a time limit), :meth:`stop_stage` (the stage ends at this
    logged step, the next one starts: a stall); at any time :meth:`interrupt` (the run
    checkpoints after the step in progress and raises :class:`TrainingInterrupted`).
    """

    def __init__(self, context, stages: Sequence, callbacks: Sequence, *, log_every: int = 10):
        self.context, self.stages, self.callbacks = context, list(stages), list(callbacks)
        self.labels = stage_labels(self.stages)
        self.log_every = log_every
        self.result = TrainResult(net=context.net, steps_planned=sum(s.steps for s in self.stages))
        self.index, self.stage, self.done, self.resumed = len(self.stages) - 1, None, 0, False
        self.states: list[dict] = []
        self.start: tuple[int, int] = (0, 0)        # (stage index, its steps done) to resume from
        self.stored_stages: list[dict] = []         # the stages' describe() as the checkpoint holds them
        self.elapsed_before = 0.0
        self.stop_request: tuple[str, str] | None = None
        self.stage_stop: str | None = None
        self.interrupted = threading.Event()
        self.step_result = None
        self.checkpoint_path = None                 # set by a Checkpoint callback (TrainingInterrupted names it)
        self._t0 = time.perf_counter()

    # ----- what callbacks read ------------------------------------------------------------
    @property
    def global_step(self) -> int:
        return self.context.offset + self.done

    @property
    def stage_ending(self) -> bool:
        return self.done >= self.stage.steps or self.stop_request is not None

    @property
    def log_due(self) -> bool:
        return self.stage_ending or crossed(self.global_step, self.step_result.steps, self.log_every)

    @property
    def is_last(self) -> bool:
        return self.index == len(self.stages) - 1

    @property
    def finished(self) -> bool:
        """The last stage has run its steps (or stopped early): nothing is left to do."""
        return self.is_last and (self.done >= self.stage.steps or self.stage_stop is not None)

    def elapsed(self) -> float:
        return time.perf_counter() - self._t0 + self.elapsed_before

    # ----- requests -----------------------------------------------------------------------
    def stop(self, reason: str, message: str) -> None:
        """End the run after the current step (logged, evaluated), e.g. ("time_limit", ...)."""
        self.stop_request = (reason, message)

    def stop_stage(self, message: str) -> None:
        """End the current stage at this logged step (recorded in ``result.stalls``)."""
        self.stage_stop = message

    def interrupt(self) -> None:
        """Stop after the step in progress, checkpoint it and raise TrainingInterrupted."""
        self.interrupted.set()

    # ----- the run's state ----------------------------------------------------------------
    def state_dict(self) -> dict:
        """The loop's own state (JSON-able but for the stages' states): where it is, the
        history, the stalls and the elapsed time."""
        return {"stage": self.index, "stage_step": self.done, "stages": self.states,
                "described": [s.describe() for s in self.stages[:self.index + 1]],
                "history": self.result.history, "final_losses": self.result.final_losses,
                "stalls": self.result.stalls, "elapsed": self.elapsed()}

    def load_state_dict(self, state: dict) -> None:
        self.start = (int(state["stage"]), int(state["stage_step"]))
        self.states, self.stored_stages = list(state["stages"]), list(state["described"])
        self.result.history = state["history"]
        self.result.final_losses = state.get("final_losses", {})
        self.result.stalls = list(state.get("stalls", []))
        self.elapsed_before = float(state["elapsed"])

    # ----- internals ----------------------------------------------------------------------
    def call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    def finish(self, reason: str, message: str) -> None:
        """Set how the run ended (every hook of :meth:`Callback.teardown` sees it)."""
        result = self.result
        # a stage that stalled before the current one moved the global step past its planned
        # end (later stages count from there); the current stage, stalled or not, did not
        skipped = sum(r["steps"] - r["stage_step"] for r in result.stalls if r["index"] != self.index)
        result.steps_done, result.stop_reason, result.stop_message = self.global_step - skipped, reason, message
        if result.stalls:
            result.stop_message += "; stalled: " + ", ".join(f"{r['stage']} at step {r['step']}"
                                                              for r in result.stalls)
        result.coefficients = self.context.problem.coefficient_values()

    def log(self, stage, res) -> dict:
        row = self.context.log_row(self.global_step, stage.name, res)
        self.result.final_losses = {k: row[k] for k in ["loss", *res.terms]}
        row["time"] = self.elapsed()
        self.call("on_log", stage, row)
        if self.stage_stop is not None:
            row["stalled"] = True
        self.result.history.append(row)
        return row


def fit(context, stages: Sequence, callbacks: Sequence = (), *, log_every: int = 10,
        state: dict | None = None) -> TrainResult:
    """Run ``stages`` in order on ``context`` (a :class:`~pinn_sine.train.Run`), calling
    ``callbacks`` (:class:`pinn_sine.callbacks.Callback`) at the hooks of the module
    docstring; a history row every ``log_every`` steps and at the end of every stage.
    ``state``: a :meth:`Loop.state_dict` to resume from (the callbacks' own states are
    restored by the caller, :func:`pinn_sine.callbacks.restore`). Returns the result."""
    from .callbacks import Callback

    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks must be pinn_sine.callbacks.Callback instances, got {cb!r}; subclass "
                            "Callback and override the hooks you need.")
    keys = [cb.state_key for cb in callbacks]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ValueError(f"callbacks share the state_key {twice}; a checkpoint keeps one state per key. Give each "
                         "callback its own state_key (a property of the class).")
    loop = Loop(context, stages, callbacks, log_every=log_every)
    if state is not None:
        loop.load_state_dict(state)
    context.loop = loop
    first, first_done = loop.start
    skip = {r["index"]: r for r in loop.result.stalls}  # a resumed run: stages that stalled are finished
    try:
        loop.call("on_fit_start")
        for index, stage in enumerate(loop.stages):
            loop.index, loop.stage, loop.stage_stop = index, stage, None
            if index < first:
                context.offset += stage.steps
                continue
            if index in skip:
                loop.done = skip[index]["stage_step"]
                if loop.is_last:
                    break
                context.offset += stage.steps
                continue
            loop.resumed = index == first and state is not None and first < len(loop.states)
            if loop.resumed:
                stage.resume_settings(loop.stored_stages[index])
            stage.start(context, index)
            loop.done = 0
            if loop.resumed:
                stage.load_state_dict(loop.states[index])
                loop.done = first_done
            loop.states = loop.states[:index] + [stage.state_dict()]
            loop.call("on_stage_start", stage)
            while loop.done < stage.steps:
                loop.call("on_step_start", stage)
                res = loop.step_result = stage.step(context, loop.done)
                loop.done += res.steps
                loop.call("on_after_step", stage, res)
                row = loop.log(stage, res) if loop.log_due else None
                loop.call("on_step_end", stage, res, row)
                if loop.stage_stop is not None or loop.stop_request is not None or loop.interrupted.is_set():
                    break
            loop.states[index] = stage.state_dict()
            if loop.stage_stop is not None:
                loop.result.stalls.append({"index": index, "stage": loop.labels[index], "step": loop.global_step,
                                           "stage_step": loop.done, "steps": stage.steps,
                                           "message": loop.stage_stop})
            loop.call("on_stage_end", stage)
            if loop.interrupted.is_set() and not loop.finished:
                loop.finish("interrupted", f"interrupted (Ctrl-C) at step {loop.global_step} of "
                                           f"{loop.result.steps_planned}")
                raise TrainingInterrupted(loop.global_step, loop.checkpoint_path, loop.result)
            if loop.stop_request is not None or loop.is_last:
                break
            context.offset += stage.steps
        stopped_early = loop.stop_request is not None and loop.global_step < loop.result.steps_planned \
            and not (loop.index in {r["index"] for r in loop.result.stalls} and loop.is_last)
        if stopped_early:
            loop.finish(*loop.stop_request)
        else:
            loop.finish("completed", f"all {loop.result.steps_planned} steps done")
        loop.call("on_fit_end")
    except BaseException as err:
        if isinstance(err, TrainingDiverged):
            loop.finish("diverged", str(err).split(";")[0])
            err.result = loop.result
        try:
            loop.call("on_exception", err)
        finally:
            _teardown(loop)
        raise
    _teardown(loop)
    return loop.result


def _teardown(loop: Loop) -> None:
    """Every callback's ``teardown``, even after one of them raised (the first error is
    raised at the end): a callback that failed must not leave another's resources (the
    SIGINT handler, a progress bar) in place for the rest of the process."""
    first = None
    for cb in loop.callbacks:
        try:
            cb.teardown(loop)
        except BaseException as err:  # noqa: BLE001 - re-raised below
            if first is None:
                first = err
    if first is not None:
        raise first
