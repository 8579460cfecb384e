"""Optimizer stages: what :func:`pinn_sine.train` runs, one after another.

A stage owns its settings, its optimizer state and its step; the training context (the
:class:`~pinn_sine.train.Run` handed to every call) owns what all stages share: sampling
and the weighted loss; logging, evaluation, progress, checkpoints and the guards are the
loop's callbacks (:mod:`pinn_sine.callbacks`, :func:`pinn_sine.loop.fit`).

The protocol, for writing a new stage:

* ``name``: the phase written in the history and the checkpoint ("adam", ...).
* ``steps``: how many steps the stage runs.
* ``start(run, index)``: build the optimizer for ``run.params`` (``index`` is the
  stage's position in the list, used to seed its own fixed batch).
* ``step(run, done) -> StepResult``: advance by one unit (one step; L-BFGS: a chunk
  of iterations) from ``done`` completed steps; the result carries the loss terms to
  log and how many steps were taken.
* ``state_dict()`` / ``load_state_dict(state)``: everything needed for a resumed run
  to continue bit-identically (tensors and JSON-able values only: checkpoints are
  read with ``weights_only=True``).
* ``describe()``: the settings as a JSON-able dict (checkpoints, metrics).
* ``resume_settings(stored)`` (optional): called before ``start`` when a run resumes
  the stage, with its ``describe()`` as the checkpoint holds it; Adam keeps its stored
  schedule length there when it is given more steps.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .._checks import positive

SCHEDULES = ("cosine", "exponential", "constant")


@dataclass
class StepResult:
    """What one call of :meth:`Stage.step` did.

    Attributes:
        steps: steps taken by the call (1; L-BFGS: the iterations of a chunk).
        total: the weighted loss (scalar tensor) at the logged point.
        terms: the plain loss terms; loss_terms: the terms the total is made of.
        extra: stage-specific values for the history (learning rate, damping, ...).
    """

    steps: int
    total: Tensor
    terms: dict
    loss_terms: dict
    extra: dict = field(default_factory=dict)


def check_steps(steps, stage: str) -> int:
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 0:
        raise ValueError(f"{stage}: steps must be an integer >= 0, got steps={steps!r}.")
    return int(steps)


def check_batch(batch, stage: str) -> int | None:
    if batch is None:
        return None
    if isinstance(batch, bool) or not isinstance(batch, numbers.Integral) or not 1 <= batch < 2**31:
        too_big = isinstance(batch, numbers.Integral) and not isinstance(batch, bool) and batch >= 2**31
        raise ValueError(f"{stage}: batch must be an integer >= 1 (interior points) or None (the run's batch), "
                         f"got batch={batch!r}" + (" (a torch size: < 2**31)." if too_big else "."))
    return int(batch)


def _real(value) -> bool:
    """Whether ``value`` is a real number (not a bool or a string)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_every(value, name: str, stage: str, allow_fixed: bool = False):
    if allow_fixed and value == "fixed":
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        extra = ' or "fixed"' if allow_fixed else ""
        raise ValueError(f"{stage}: {name} must be an integer >= 1{extra}, got {name}={value!r}.")
    return int(value)


def check_positive_float(value, name: str, stage: str) -> float:
    """:func:`pinn_sine._checks.positive`, its message prefixed with the stage's name."""
    try:
        return positive(name, value, f"give {stage}({name}=...) a finite number > 0.")
    except ValueError as err:
        raise ValueError(f"{stage}: {err}") from None


class Stage:
    """Base class of the optimizer stages (see the module docstring for the protocol)."""

    name = "stage"
    steps: int = 0
    #: evaluate against the reference at every logged step, not only every ``eval_every``
    #: (stages whose few, costly steps each change the error a lot: Gauss-Newton)
    evaluate_each_log: bool = False

    def start(self, run, index: int) -> None:
        raise NotImplementedError

    def step(self, run, done: int) -> StepResult:
        raise NotImplementedError

    def resume_settings(self, stored: dict) -> None:
        """Called before :meth:`start` when a run resumes this stage from a checkpoint;
        ``stored`` is the stage's :meth:`describe` as the checkpoint holds it. A stage
        whose schedule depends on its length keeps the stored one when it is given more
        steps now (the default does nothing)."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def describe(self) -> dict:
        raise NotImplementedError

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self.describe().items() if k != "stage")
        return f"{type(self).__name__}({body})"


def _lr_lambda(schedule: str, steps: int, final_factor: float):
    """The rate factor at step k of a schedule over ``steps``; it stays at the end value
    after ``steps`` (a resumed stage given more steps continues at its final rate)."""
    if schedule == "constant":
        return lambda k: 1.0
    if schedule == "exponential":
        return lambda k: final_factor ** (min(k, steps) / max(steps, 1))
    return lambda k: final_factor + (1 - final_factor) * 0.5 * (1 + math.cos(math.pi * min(k, steps) / max(steps, 1)))


class Adam(Stage):
    """Adam with a learning-rate schedule on freshly drawn points.

    The rate decays from ``lr`` to ``lr * final_lr_factor`` over ``steps`` ("cosine":
    lr_k = lr (f + (1 - f)(1 + cos(pi k / steps)) / 2; "exponential": lr f^(k/steps);
    "constant"). Resumed with more steps than its checkpoint was written with, the stage
    keeps the stored schedule and runs the extra steps at its final rate: a schedule
    re-stretched over the new length would jump back up (from 1% of lr to about half
    of it at the old end of a cosine), which blew up a converged run at once. A new
    batch of interior points is drawn every ``resample_every`` steps
    (``"fixed"``: one batch for the stage); residual-based adaptive sampling, when the
    run has it, draws them.

    In an inverse problem (:meth:`~pinn_sine.problems.Problem.declare_unknown`) the
    stage fits the problem's coefficients with the network; ``fit_coefficients=False``
    holds them at their current values and trains the network alone (a warm-up that
    fits the network to the guessed coefficients and the data before a Gauss-Newton stage
    moves both: an untrained network's residual otherwise drags the coefficients away
    from a good guess).

    Args:
        steps: number of Adam steps (>= 0).
        lr: the initial learning rate; None takes the problem's ``default_lr``.
        schedule: "cosine", "exponential" or "constant".
        final_lr_factor: the schedule's end point as a fraction of lr, in (0, 1].
        betas: Adam's moment decay rates, each in [0, 1).
        resample_every: steps between fresh batches (>= 1) or "fixed".
        fit_coefficients: whether the problem's trainable coefficients are fitted too.
    """

    name = "adam"

    def __init__(self, steps: int, *, lr: float | None = None, schedule: str = "cosine",
                 final_lr_factor: float = 0.01, betas: tuple[float, float] = (0.9, 0.999),
                 resample_every: int | str = 1, fit_coefficients: bool = True):
        self.steps = check_steps(steps, "Adam")
        if lr is not None:
            if not (_real(lr) and math.isfinite(lr) and lr > 0):
                raise ValueError(f"Adam: lr must be > 0 (or None for the problem's default_lr), got lr={lr!r}; give a "
                                 "finite number, e.g. 1e-3.")
            lr = float(lr)
        if not isinstance(schedule, str) or schedule not in SCHEDULES:
            raise ValueError(f'Invalid schedule "{schedule}". Must be one of {list(SCHEDULES)}.')
        if not (_real(final_lr_factor) and 0 < final_lr_factor <= 1):
            raise ValueError(f"Adam: final_lr_factor must be in (0, 1], got final_lr_factor={final_lr_factor!r}; use "
                             "e.g. 0.01.")
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise ValueError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}.") from None
        if not (_real(b1) and _real(b2)):
            raise ValueError(f"Adam: betas must be a pair (beta1, beta2) of numbers, got {betas!r}; use e.g. "
                             "(0.9, 0.999).")
        b1, b2 = float(b1), float(b2)
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"Adam: betas must each be in [0, 1), got {betas!r}; use e.g. (0.9, 0.999).")
        self.lr, self.schedule, self.final_lr_factor, self.betas = lr, schedule, float(final_lr_factor), (b1, b2)
        self.resample_every = check_every(resample_every, "resample_every", "Adam", allow_fixed=True)
        if not isinstance(fit_coefficients, bool):
            raise ValueError(f"Adam: fit_coefficients must be True or False, got fit_coefficients={fit_coefficients!r}.")
        self.fit_coefficients = fit_coefficients
        self.opt = self.sched = None
        self.held: list[Tensor] = []
        self.schedule_steps = self.steps  # the schedule's length (a resumed, extended stage keeps its old one)

    def resume_settings(self, stored: dict) -> None:
        stored_steps = int(stored.get("schedule_steps", stored.get("steps", self.steps)))
        self.schedule_steps = min(self.steps, stored_steps)

    def start(self, run, index: int) -> None:
        lr = run.problem.default_lr if self.lr is None else self.lr
        self.held = [] if self.fit_coefficients else list(run.problem.coefficients().values())
        held = {id(c) for c in self.held}  # the network's alone: the coefficients stay where they are
        params = [q for q in run.params if id(q) not in held]
        self.opt = torch.optim.Adam(params, lr=lr, betas=self.betas)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, _lr_lambda(self.schedule, self.schedule_steps,
                                                                            self.final_lr_factor))

    def step(self, run, done: int) -> StepResult:
        progress = done / max(self.steps, 1)
        pts = run.draw(done, resample=self.resample_every != "fixed" and done % self.resample_every == 0,
                       progress=progress)
        self.opt.zero_grad(set_to_none=True)
        total, terms, loss_terms = run.weighted(pts, done)
        run.check_finite(run.offset + done, self.name, total, terms)
        total.backward()
        for c in self.held:  # not the optimizer's: their gradients would only pile up
            c.grad = None
        self.opt.step()
        self.sched.step()
        # The rate the next step will use (at the end: lr * final_lr_factor).
        return StepResult(1, total, terms, loss_terms, {"lr": self.opt.param_groups[0]["lr"]})

    def state_dict(self) -> dict:
        return {"adam": self.opt.state_dict(), "scheduler": self.sched.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.opt.load_state_dict(state["adam"])
        self.sched.load_state_dict(state["scheduler"])

    def describe(self) -> dict:
        out = {"stage": self.name, "steps": self.steps, "lr": self.lr, "schedule": self.schedule,
               "final_lr_factor": self.final_lr_factor, "betas": list(self.betas),
               "resample_every": self.resample_every}
        if self.schedule_steps != self.steps:
            out["schedule_steps"] = self.schedule_steps
        if not self.fit_coefficients:  # only when set: the runs made before it describe alike
            out["fit_coefficients"] = False
        return out


class LBFGS(Stage):
    """L-BFGS with a strong-Wolfe line search on one fixed batch.

    The batch of ``batch`` interior points (None: the run's batch) is drawn once, from
    a generator seeded with the run's seed plus the stage's position in the stage
    list, so it is the same in a resumed run. Iterations run in chunks of
    ``chunk`` (one ``torch.optim.LBFGS.step`` each); the history logs and the
    checkpoints fall between chunks. With ``resample_every=N`` a fresh fixed batch is
    drawn from that generator every N iterations (chunks end there) and the L-BFGS
    memory starts afresh on it: curvature pairs of the old batch's loss would mix two
    objectives. The generator and the batch are checkpointed.

    Args:
        steps: L-BFGS iterations (>= 0).
        batch: interior points of the fixed batch, or None.
        history_size: curvature pairs kept (>= 1).
        chunk: iterations per logged chunk (>= 1).
        tolerance_grad, tolerance_change: torch's stopping tolerances (> 0).
        resample_every: iterations between fresh batches (>= 1), or None: one batch.
    """

    name = "lbfgs"

    def __init__(self, steps: int, *, batch: int | None = None, history_size: int = 50, chunk: int = 10,
                 tolerance_grad: float = 1e-12, tolerance_change: float = 1e-15, resample_every: int | None = None):
        self.steps = check_steps(steps, "LBFGS")
        self.batch = check_batch(batch, "LBFGS")
        self.history_size = check_every(history_size, "history_size", "LBFGS")
        self.chunk = check_every(chunk, "chunk", "LBFGS")
        self.tolerance_grad = check_positive_float(tolerance_grad, "tolerance_grad", "LBFGS")
        self.tolerance_change = check_positive_float(tolerance_change, "tolerance_change", "LBFGS")
        self.resample_every = None if resample_every is None else check_every(resample_every, "resample_every",
                                                                                  "LBFGS")
        self.opt = None
        self.points = None
        self.generator = None

    def _optimizer(self, params):
        return torch.optim.LBFGS(params, lr=1.0, max_iter=self.chunk, history_size=self.history_size,
                                 tolerance_grad=self.tolerance_grad, tolerance_change=self.tolerance_change,
                                 line_search_fn="strong_wolfe")

    def start(self, run, index: int) -> None:
        self.opt = self._optimizer(run.params)
        self.to_dev = run.to_dev
        if self.resample_every is None:
            self.points = run.fixed_batch(self.batch, index)
        else:  # the same first batch as without resampling, from a generator kept for the next ones
            self.generator = run.stage_generator(index)
            self.points = run.fixed_batch(self.batch, index, generator=self.generator)

    def step(self, run, done: int) -> StepResult:
        chunk = min(self.chunk, self.steps - done)
        every = self.resample_every
        if every is not None:
            chunk = min(chunk, every - done % every)
            if done and done % every == 0:
                self.points = run.fixed_batch(self.batch, None, generator=self.generator)
                self.opt = self._optimizer(run.params)
        self.opt.param_groups[0]["max_iter"] = chunk

        def closure():
            self.opt.zero_grad(set_to_none=True)
            tot, _, _ = run.weighted(self.points, None)
            g = run.global_total(tot)
            if torch.isfinite(g):
                tot.backward()
            return g

        self.opt.step(closure)
        total, terms, loss_terms = run.weighted(self.points, None, evaluation=True)
        run.check_finite(run.offset + done + chunk, self.name, total, terms)
        return StepResult(chunk, total, terms, loss_terms, {"lr": 1.0})

    def state_dict(self) -> dict:
        out = {"lbfgs": self.opt.state_dict()}
        if self.resample_every is not None:
            out["generator"] = self.generator.get_state()
            out["points"] = {k: v.detach().cpu() for k, v in self.points.items()}
        return out

    def load_state_dict(self, state: dict) -> None:
        self.opt.load_state_dict(state["lbfgs"])
        if self.resample_every is not None:
            self.generator.set_state(state["generator"])
            self.points = self.to_dev(state["points"])

    def describe(self) -> dict:
        out = {"stage": self.name, "steps": self.steps, "batch": self.batch, "history_size": self.history_size,
               "chunk": self.chunk, "tolerance_grad": self.tolerance_grad,
               "tolerance_change": self.tolerance_change}
        if self.resample_every is not None:  # only when set: the runs made before it describe alike
            out["resample_every"] = self.resample_every
        return out
