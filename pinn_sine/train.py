"""The training loop: optimizer stages run in order over what they share (sampling, the
weighted loss, the finite-loss guard, logging, evaluation, progress, checkpoints)."""
from __future__ import annotations

import math
import numbers
import os
import signal
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from . import distributed
from .adaptive import RADSampler
from .checkpoint import (CHECKPOINT_FORMAT, CheckpointError, check_compatible, check_same_settings, load_checkpoint,
                         save_checkpoint)
from .constraints import ConstrainedNet, unconstrained
from .metrics import ReferenceMetric, as_metrics, columns as metric_columns
from .nets.mlp import check_seed
from .optim import LBFGS, Adam, Stage
from .problems.base import Problem
from .stall import Stall, StallDetector
from .validation.evaluate import NonFinitePrediction, check_mask, evaluate, reference_limit
from .validation.reference import ReferenceField
from .weighting import CausalWeights, TermWeighting, as_term_weighting

__all__ = ["train", "TrainResult", "Run", "TrainingInterrupted", "TrainingDiverged", "STOP_REASONS", "Stall",
           "load_checkpoint", "save_checkpoint", "CHECKPOINT_FORMAT"]

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
            ``train(metrics=...)``, and "stalled" (True) on the row of a stage that
            stopped early because its loss stalled.
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


class _Objective(nn.Module):
    """The problem's loss terms for a batch and, when asked, the pointwise interior
    residual from the same forward pass (for causal weighting). A module, so that
    DistributedDataParallel can wrap it: the jet engine reads the MLP's layers
    directly and never calls its forward."""

    def __init__(self, problem: Problem, net: nn.Module, engine: str, pointwise: bool):
        super().__init__()
        self.problem, self.net, self.engine, self.pointwise = problem, net, engine, pointwise

    def forward(self, batch: dict[str, Tensor]) -> tuple[dict[str, Tensor], Tensor | None]:
        problem = self.problem
        if not self.pointwise:
            return problem.compute_losses(self.net, batch, self.engine), None
        jets = problem.jets(self.net, batch, self.engine)
        return problem.losses(jets, batch), problem.pointwise_residual(jets, batch)


def _check_pointwise(problem: Problem, net: nn.Module) -> None:
    """At first use: the mean of ``pointwise_residual`` is the ``pointwise_term`` loss
    term (on 32 points of a generator of its own, so the run's draws are untouched)."""
    from .problems.conformance import check_pointwise

    param = next(net.parameters())
    batch = problem.sample(32, torch.Generator().manual_seed(0), progress=1.0)
    check_pointwise(problem, net, {k: v.to(device=param.device, dtype=param.dtype) for k, v in batch.items()})


#: history columns of the built-in stages (a metric may not take their names)
STAGE_COLUMNS = ("lr", "lambda", "mu", "nu", "gain", "accepted", "step_time", "alpha", "radius", "rho", "redraws")

#: steps the logged loss must stay above ``divergence`` x its best before a run is stopped
DIVERGENCE_STEPS = 20


class Run:
    """What the stages of one :func:`train` call share: the problem and network, the
    sampling state, the weighted loss, the finite-loss guard. Stages receive it in
    :meth:`~pinn_sine.optim.Stage.start` and :meth:`~pinn_sine.optim.Stage.step`.

    Attributes a stage reads: ``problem``, ``net``, ``params`` (trainable parameters: the
    network's, then the problem's :meth:`~pinn_sine.problems.Problem.coefficients`),
    ``ctx`` (the distributed context), ``causal``, ``offset`` (steps of the stages
    before the current one).
    """

    def __init__(self, problem: Problem, net: nn.Module, *, batch: int, seed: int, engine: str,
                 weighting: TermWeighting, causal: CausalWeights | None, adaptive: RADSampler | None,
                 compile: bool, divergence: float | None = None):
        self.problem, self.net, self.batch, self.seed, self.engine = problem, net, batch, seed, engine
        self.divergence = divergence
        self.reset_growth()
        self.weighting, self.causal, self.adaptive = weighting, causal, adaptive
        param = next(net.parameters())
        self.device, self.dtype = param.device, param.dtype
        self.ctx = distributed.current(self.device)
        self.generator = torch.Generator().manual_seed(distributed.rank_seed(seed, self.ctx.rank))
        self.points: dict[str, Tensor] | None = None
        self.params = [p for p in net.parameters() if p.requires_grad]
        # the problem's trainable coefficients (Problem.coefficients(); none for a forward problem)
        known = {id(p) for p in self.params}
        self.params += [c for c in problem.coefficients().values() if id(c) not in known]
        self.offset = 0
        objective = _Objective(problem, net, engine, pointwise=causal is not None)
        self.train_terms = distributed.wrap(objective, self.device) if self.ctx.active else objective
        self.eval_terms = objective
        if compile:
            self.train_terms = torch.compile(self.train_terms)
            self.eval_terms = torch.compile(objective) if self.ctx.active else self.train_terms

    # ----- sampling ---------------------------------------------------------------------
    def to_dev(self, b: dict[str, Tensor]) -> dict[str, Tensor]:
        return {k: v.to(device=self.device, dtype=self.dtype) for k, v in b.items()}

    def local(self, batch: int | None, what: str) -> int:
        """This process's share of ``batch`` interior points (None: the run's batch)."""
        n = self.batch if batch is None else batch
        world = self.ctx.world_size
        if n % world:
            raise ValueError(f"{what}={n} is not divisible by the {world} processes; each rank draws an equal "
                             f"share. Use {what}={world * max(1, n // world)}.")
        return n // world

    def draw(self, done: int, *, resample: bool, progress: float) -> dict[str, Tensor]:
        """The current points of the shared sampler: a fresh draw when ``resample`` or
        none is held yet, then RAD's draw from its pool when the run has it."""
        drawn = False
        if self.points is None or resample:
            self.points = self.to_dev(self.problem.draw(self.local(None, "batch"), self.generator,
                                                          progress=progress))
            drawn = True
        adaptive = self.adaptive
        if adaptive is not None:
            if adaptive.due(done):
                adaptive.refresh(self.problem, self.net, self.engine, self.points[adaptive.point_set].shape[0],
                                 self.generator, progress=progress, to_dev=self.to_dev)
                drawn = True
            if drawn:
                self.points = adaptive.draw(self.problem, self.points, self.generator, self.to_dev)
        return self.points

    def stage_generator(self, index: int) -> torch.Generator:
        """A generator of the stage at ``index`` (seed + index, per rank)."""
        return torch.Generator().manual_seed(distributed.rank_seed(self.seed + index, self.ctx.rank))

    def fixed_batch(self, batch: int | None, index: int | None, *,
                    generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """A batch of ``batch`` interior points (None: the run's) drawn from ``generator``
        or from :meth:`stage_generator` of ``index``: the same in a resumed run."""
        gen = self.stage_generator(index) if generator is None else generator
        return self.to_dev(self.problem.draw(self.local(batch, "batch"), gen))

    # ----- the loss ---------------------------------------------------------------------
    def term_weights(self, names) -> dict[str, float]:
        """The weighting's current (held) weights of the terms ``names``."""
        self._check_names(names)
        return self.weighting.weights(list(names), -1, None)

    def _check_names(self, names) -> None:
        unknown = self.weighting.named_terms() - set(names)
        if unknown:
            raise ValueError(f"weights name unknown loss terms {sorted(unknown)}; "
                             f"{self.problem.name} has {sorted(names)}.")

    def weighted(self, b: dict[str, Tensor], step: int | None, *, evaluation: bool = False):
        """Total loss, the plain terms, and the terms the total is made of. ``step`` None:
        weights held (L-BFGS, Gauss-Newton, evaluation); ``evaluation``: the
        non-distributed loss module (no gradient synchronisation)."""
        terms, residual = (self.eval_terms if evaluation else self.train_terms)(b)
        self._check_names(terms)
        loss_terms = dict(terms)
        causal = self.causal
        if causal is not None:
            if causal.term not in terms:
                raise ValueError(f"CausalWeights(term={causal.term!r}): {self.problem.name} has terms "
                                 f"{sorted(terms)}.")
            sum_ranks = distributed.all_reduce_sum if self.ctx.active else None
            loss_terms[causal.term] = causal.loss(residual, b["interior"], all_reduce=sum_ranks)
        w = self.weighting.weights(loss_terms, -1 if step is None else step,
                                   None if step is None else self._grad_norms(loss_terms))
        total = sum(w[k] * v for k, v in loss_terms.items())
        return total, terms, loss_terms

    def _grad_norms(self, loss_terms: dict[str, Tensor]):
        """||d L_k / d theta|| of each term over the whole batch (a callback: only the
        steps that update adaptive weights pay for it)."""
        params = self.params

        def compute() -> dict[str, float]:
            flats = []
            for v in loss_terms.values():
                gs = (torch.autograd.grad(v, params, retain_graph=True, allow_unused=True) if v.requires_grad
                      else [None] * len(params))
                flats.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                                        for g, p in zip(gs, params)]))
            g = torch.stack(flats)
            if self.ctx.active:
                g = distributed.all_reduce_mean(g)
            return {k: float(v) for k, v in zip(loss_terms, g.norm(dim=1))}
        return compute

    def global_total(self, total: Tensor) -> Tensor:
        return distributed.all_reduce_mean(total.detach()) if self.ctx.active else total.detach()

    def reset_growth(self) -> None:
        """Forget the best loss (a new stage: another batch or objective)."""
        self.best, self.above_since = float("inf"), None

    def check_growth(self, step: int, phase: str, loss: float) -> None:
        """Raise FloatingPointError when the logged loss (the all-rank mean at the point a
        stage keeps: Gauss-Newton's rejected trials never get here) has stayed above
        ``divergence`` times the stage's best for ``DIVERGENCE_STEPS`` steps."""
        if self.divergence is None:
            return
        if loss < self.best:
            self.best, self.above_since = loss, None
        elif loss > self.divergence * self.best:
            if self.above_since is None:
                self.above_since = step
            if step - self.above_since >= DIVERGENCE_STEPS:
                raise TrainingDiverged(
                    f"diverging at step {step} ({phase}): the loss {loss:.3e} has been above {self.divergence:g} x "
                    f"its best {self.best:.3e} since step {self.above_since}; the last checkpoint is left intact. "
                    "Lower the learning rate (--lr) or the omega of the first layer (--first-omega).", step)
        else:
            self.above_since = None

    def check_finite(self, step: int, phase: str, total: Tensor, terms: dict[str, Tensor]) -> None:
        """Raise FloatingPointError when the (all-rank mean) loss is not finite; every
        rank raises together."""
        total = self.global_total(total)
        if not torch.isfinite(total):
            bad = [k for k, v in terms.items() if not torch.isfinite(v)]
            if bad:
                what = f"term {bad[0]!r} = {float(terms[bad[0]].detach())}"
            else:
                what = f"total = {float(total)}" + (" (on another process)" if self.ctx.active else "")
            raise TrainingDiverged(f"non-finite loss at step {step} ({phase}): {what}; the last checkpoint is left "
                                   "intact. Lower the learning rate or the omega of the first layer.", step)


def mark_trained_for(net: nn.Module, problem_name: str) -> None:
    """Record the problem's name on ``net`` (and its inner network) as ``trained_for``, so
    that :func:`~pinn_sine.evaluate` refuses a reference of another problem."""
    for module in {id(m): m for m in (net, unconstrained(net))}.values():
        module.trained_for = problem_name


def check_reference(problem: Problem, reference) -> None:
    """``reference`` is a ReferenceField of ``problem``: its name, its parameters where it
    records the resolution they were computed at, and a usable mask."""
    if not isinstance(reference, ReferenceField):
        raise TypeError(f"reference must be a ReferenceField (problem.reference(...)), got {type(reference).__name__}.")
    check_mask(reference)
    if reference.problem != problem.name:
        raise ValueError(f"reference is of the problem {reference.problem!r}, the run trains {problem.name!r}; "
                         f"pass {type(problem).__name__}(...).reference().")
    resolution = reference.params.get("resolution")
    if resolution is not None:
        import json

        expected = json.loads(json.dumps(problem.reference_params(resolution), default=str))
        stored = json.loads(json.dumps(reference.params, default=str))
        diff = sorted(k for k in set(expected) | set(stored) if expected.get(k) != stored.get(k))
        if diff:
            raise ValueError(f"reference of {problem.name} was computed with other parameters: "
                             + "; ".join(f"{k}: reference {stored.get(k)!r}, problem {expected.get(k)!r}" for k in diff)
                             + ". Pass problem.reference() of this problem.")


def _legacy_stages(steps, lr, schedule, final_lr_factor, lbfgs_steps, lbfgs_batch, resample_every) -> list[Stage]:
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got steps={steps!r}.")
    if isinstance(lbfgs_steps, bool) or not isinstance(lbfgs_steps, numbers.Integral) or lbfgs_steps < 0:
        raise ValueError(f"lbfgs_steps must be an integer >= 0, got lbfgs_steps={lbfgs_steps!r}.")
    stages: list[Stage] = [Adam(int(steps), lr=lr, schedule=schedule, final_lr_factor=final_lr_factor,
                                resample_every=resample_every)]
    if lbfgs_steps:
        stages.append(LBFGS(int(lbfgs_steps), batch=lbfgs_batch))
    return stages


def _stage_labels(stages: Sequence[Stage]) -> list[str]:
    labels, seen = [], {}
    for s in stages:
        seen[s.name] = seen.get(s.name, 0) + 1
        labels.append(s.name if seen[s.name] == 1 else f"{s.name}_{seen[s.name]}")
    return labels


def _crossed(done: int, taken: int, every: int) -> bool:
    """Whether the steps (done - taken, done] contain a multiple of ``every``."""
    return done // every > (done - taken) // every


def train(problem: Problem, net: nn.Module, *, stages: Sequence[Stage] | None = None, steps: int | None = None,
          lr: float | None = None, batch: int | None = None, seed: int = 0,
          weights: dict[str, float] | TermWeighting | None = None, causal: CausalWeights | None = None,
          schedule: str = "cosine", final_lr_factor: float = 0.01, lbfgs_steps: int = 0,
          lbfgs_batch: int | None = None, resample_every: int | str = 1, adaptive: RADSampler | None = None,
          engine: str = "jet", reference: ReferenceField | None = None, eval_every: int = 500,
          log_every: int = 10, checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 500,
          resume: str | os.PathLike | None = None, progress: bool = True, compile: bool = False,
          time_limit: float | None = None, divergence: float | None = 1e4, metrics=None,
          stall: Stall | None = Stall()) -> TrainResult:
    """Train ``net`` on ``problem``'s weighted residual losses, stage after stage.

    Loss = sum_k w_k L_k over the problem's named terms. ``stages`` is a list of
    optimizer stages from :mod:`pinn_sine.optim` run in order, e.g.
    ``[Adam(1000), GaussNewton(300)]``; ``steps`` (Adam with ``lr``, ``schedule``,
    ``final_lr_factor``, ``resample_every``) plus ``lbfgs_steps`` (L-BFGS on a fixed
    batch of ``lbfgs_batch`` points) is the shorthand for
    ``[Adam(steps, ...), LBFGS(lbfgs_steps, batch=lbfgs_batch)]``. ``lr`` None takes
    the problem's ``default_lr``. Interior points come from a generator seeded with
    ``seed``, ``batch`` per draw (default: the problem's ``default_batch``).

    Weighting (:mod:`pinn_sine.weighting`): ``weights`` sets w_k -- a dict
    ``{"boundary": 10.0}`` (1 for the others) or :class:`FixedWeights`, or
    :class:`GradNormWeights` (balanced by gradient norms every N Adam steps; held fixed
    in the other stages). ``causal`` (:class:`CausalWeights`, time-dependent problems)
    replaces the "pde" term by its causally weighted sum over time chunks. The history
    logs the weights (``w_<term>``, ``causal_w<i>``) at every logged step.

    Sampling: ``adaptive`` (:class:`~pinn_sine.adaptive.RADSampler`) draws the Adam
    stages' interior points from a candidate pool by their residual (RAD). Causal
    weighting and RAD need :meth:`Problem.pointwise_residual`.

    Several processes: inside an initialised process group (``torchrun``, see
    :mod:`pinn_sine.distributed`) each rank draws ``batch / world_size`` points from its
    own generator, gradients are averaged by DistributedDataParallel, logged losses are
    the means over the ranks, and only rank 0 evaluates, shows progress and writes the
    checkpoint (which holds every rank's generator and points).

    A problem with ``constraint="hard"`` trains ``problem.constrain(net)`` (its data built
    into the network, :mod:`pinn_sine.constraints`); an unconstrained ``net`` is refused.

    Checkpoints (``checkpoint``) hold the network, every started stage's state, the
    sampler and the weighting; they are written atomically whenever the step count
    passes a multiple of ``checkpoint_every``, at the end of every stage and at the
    end. ``resume`` continues from one to the same result as an uninterrupted run, in
    any stage; a finished last stage given more steps continues. A non-finite loss
    raises FloatingPointError naming the step and the term, and leaves the last good
    checkpoint untouched; so does a diverging loss, one that stays above ``divergence``
    times the stage's best for :data:`DIVERGENCE_STEPS` steps (None: no such check).
    Both are :class:`TrainingDiverged` (a FloatingPointError) carrying the result so far.

    Ctrl-C (SIGINT, in the main thread of a single process) finishes the step in
    progress, writes a checkpoint at it and raises :class:`TrainingInterrupted` (a
    KeyboardInterrupt) with the result so far; resuming from that checkpoint ends
    bit-identical to an uninterrupted run. A second Ctrl-C stops at once. The result
    says why training stopped (``stop_reason``: completed, time_limit, interrupted,
    diverged) and how far it got (``steps_done`` of ``steps_planned``).

    Metrics (:mod:`pinn_sine.metrics`): with a ``reference`` the run logs ``rel_l2``
    (:class:`~pinn_sine.metrics.RelL2`); ``metrics`` adds more, each a history column
    at the evaluation steps, in the progress line and in ``TrainResult.metrics``:
    :class:`~pinn_sine.metrics.MaxAbs`, a built-in against a reference of your own, or
    any function ``net -> number`` (an object with ``name`` and ``__call__(net)``, or a
    function under its ``__name__``). Names must be new history columns.

    Stall stops (:class:`~pinn_sine.stall.Stall`, default ``Stall()``: a window of 10%
    of the stage's steps, at least 50, and rtol 1e-5; None: never): a stage whose best
    loss over the window is not below (1 - rtol) times its best before it ends at that
    logged step, says so (a printed line, a history row with "stalled", an entry in
    ``TrainResult.stalls``) and the next stage starts. A resumed run treats a stage that
    stalled as finished.

    Args:
        engine: derivative engine, "jet" (forward propagation, default), "autograd" (reverse over
            reverse, the reference) or "func" (forward over reverse through torch.func).
        reference: a ReferenceField; its relative L2 error (and the exact solution's, where
            the problem has one) is logged every ``eval_every`` steps, and at every logged
            step of a stage with ``evaluate_each_log`` (Gauss-Newton).
        log_every: history rows every this many steps (and at the end of every stage).
        compile: run the loss terms under ``torch.compile`` (jet engine only: it needs no
            double backward).
        time_limit: a wall-clock budget in seconds for the whole run: training stops
            after the step that crosses it (an Adam schedule still spans its ``steps``;
            use ``schedule="constant"`` with a large ``steps`` for a pure time budget).
        metrics: a list of metrics added to the default ``rel_l2`` (see above).
        stall: the stall rule of every stage, or None.
    """
    if not isinstance(problem, Problem):
        hint = (f"; build it by name with pinn_sine.problems.problem_class({problem!r})()" if isinstance(problem, str)
                else "")
        raise TypeError(f"problem must be a Problem instance such as Poisson2D(), got {problem!r}{hint}.")
    if not (isinstance(net, nn.Module) and all(isinstance(getattr(net, k, None), int) for k in ("in_dim", "out_dim"))):
        raise TypeError(f"net must be a network with in_dim and out_dim (an MLP such as MLP(problem.in_dim, "
                        f"problem.out_dim), or problem.constrain(MLP(...))), got {net!r}.")
    if stages is None:
        if steps is None:
            raise ValueError("train() needs stages=[...] (pinn_sine.optim) or steps= (Adam steps).")
        stages = _legacy_stages(steps, lr, schedule, final_lr_factor, lbfgs_steps, lbfgs_batch, resample_every)
    else:
        legacy = {"steps": steps is not None, "lr": lr is not None, "lbfgs_steps": lbfgs_steps != 0,
                  "lbfgs_batch": lbfgs_batch is not None, "schedule": schedule != "cosine",
                  "final_lr_factor": final_lr_factor != 0.01, "resample_every": resample_every != 1}
        given = [k for k, v in legacy.items() if v]
        if given:
            raise ValueError(f"train() got stages= and {given}; these set the default Adam/L-BFGS stages. Put them "
                             "into the stage objects instead, e.g. stages=[Adam(3000, lr=1e-3), LBFGS(500)].")
        if isinstance(stages, Stage):
            raise TypeError(f"stages must be a list of stages, e.g. stages=[{stages!r}]; got the single stage "
                            f"{stages!r}.")
        if isinstance(stages, (str, bytes)) or not isinstance(stages, Iterable):
            raise TypeError(f"stages must be a list of stages (Adam, LBFGS, GaussNewton), got {stages!r}.")
        stages = list(stages)
        if not stages:
            raise ValueError("stages is empty; give at least one stage, e.g. stages=[Adam(1000)].")
        for s in stages:
            if not isinstance(s, Stage):
                raise TypeError(f"stages must hold pinn_sine.optim stages (Adam, LBFGS, GaussNewton), got {s!r}.")
        if len({id(s) for s in stages}) != len(stages):
            raise ValueError("the same stage object appears twice in stages; give each its own instance.")
    for name, value in (("eval_every", eval_every), ("log_every", log_every), ("checkpoint_every", checkpoint_every)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {name}={value!r}.")
    for name, value in (("compile", compile), ("progress", progress)):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be True or False, got {name}={value!r}.")
    for name, value in (("checkpoint", checkpoint), ("resume", resume)):
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise TypeError(f"{name} must be a file path or None, got {value!r}.")
    if compile and engine != "jet":
        raise ValueError('compile=True needs engine="jet": double backward cannot be compiled.')
    if net.in_dim != problem.in_dim or net.out_dim != problem.out_dim:
        raise ValueError(f"the network maps {net.in_dim} -> {net.out_dim}, the problem {problem.name} needs "
                         f"{problem.in_dim} -> {problem.out_dim}; build MLP(problem.in_dim, problem.out_dim, ...).")
    if problem.constraint == "hard" and not (isinstance(net, ConstrainedNet)
                                             and net.transform == problem.hard_constraint()):
        what = ("a network with another constraint" if isinstance(net, ConstrainedNet)
                else "an unconstrained network")
        raise ValueError(f"{problem.name} has constraint='hard': its {list(problem.hard_constraint().conditions)} "
                         f"conditions are built into the network and have no loss terms, but train() got {what}. "
                         "Pass problem.constrain(net).")
    weighting = as_term_weighting(weights)
    if causal is not None:
        if not isinstance(causal, CausalWeights):
            raise TypeError(f"causal must be a CausalWeights, got {causal!r}.")
        causal.bind(problem)
        if not problem.has_pointwise:
            problem.pointwise_residual({}, {})  # raises, saying what to implement
    if adaptive is not None:
        if not isinstance(adaptive, RADSampler):
            raise TypeError(f"adaptive must be a RADSampler, got {adaptive!r}.")
        adaptive.check(problem)
    if causal is not None or adaptive is not None:
        _check_pointwise(problem, net)
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, numbers.Integral)
                              or not 1 <= batch < 2**31):
        too_big = isinstance(batch, numbers.Integral) and not isinstance(batch, bool) and batch >= 2**31
        raise ValueError(f"batch must be an integer >= 1 (interior points per draw) or None for the problem's "
                         f"default_batch ({problem.default_batch}), got batch={batch!r}"
                         + (" (a torch size: < 2**31)." if too_big else "."))
    seed = check_seed(seed)
    if time_limit is not None and (isinstance(time_limit, (bool, str)) or not isinstance(time_limit, numbers.Real)
                                   or not (math.isfinite(time_limit) and time_limit > 0)):
        raise ValueError(f"time_limit must be > 0 seconds, got {time_limit!r}; give a finite number of seconds, or "
                         "None for no limit.")
    dtypes = {p.dtype for p in net.parameters()}
    if not dtypes <= {torch.float32, torch.float64}:
        raise ValueError(f"the network's parameters are {sorted(map(str, dtypes))}; train() runs float32 or float64 "
                         "networks (the derivative jets lose too much in half precision). Use net.float() or "
                         "net.double().")
    if reference is not None:
        check_reference(problem, reference)
    batch = problem.default_batch if batch is None else int(batch)
    if divergence is not None and not (isinstance(divergence, numbers.Real) and not isinstance(divergence, bool)
                                       and math.isfinite(divergence) and divergence > 1):
        raise ValueError(f"divergence must be a finite factor > 1 or None, got divergence={divergence!r}.")
    if stall is not None and not isinstance(stall, Stall):
        raise TypeError(f"stall must be a pinn_sine.Stall (e.g. Stall(window=0.1, rtol=1e-5)) or None, got {stall!r}.")
    terms = [t.name for t in problem.terms()] if problem.has_terms else []
    reserved = {"step", "phase", "loss", "time", "stalled", *terms, *(f"w_{t}" for t in terms), *STAGE_COLUMNS,
                *coefficient_columns(problem)}
    if causal is not None:
        reserved |= {f"{causal.term}_causal", *(f"causal_w{i}" for i in range(causal.chunks))}
    exact_known = reference is not None and problem.exact_solution is not None
    metric_list = as_metrics(metrics, reference=reference, exact=exact_known, reserved=reserved)
    mark_trained_for(net, problem.name)
    run = Run(problem, net, batch=batch, seed=seed, engine=engine, weighting=weighting, causal=causal,
              adaptive=adaptive, compile=compile, divergence=divergence)
    ctx = run.ctx
    run.local(None, "batch")
    for s in stages:
        if getattr(s, "batch", None) is not None:
            run.local(s.batch, f"{type(s).__name__}(batch)")
    if time_limit is not None:
        if ctx.world_size > 1:
            raise ValueError("time_limit is a per-process wall clock and the ranks would stop at different "
                             "steps; give a step budget for distributed runs.")

    result = TrainResult(net=net)
    exact = problem.exact_solution if reference is not None else None
    labels = _stage_labels(stages)
    first, first_done, t_offset, saved_stage = 0, 0, 0.0, None
    stall_state: dict = {}
    if resume is not None:
        ck = load_checkpoint(resume)
        check_compatible(resume, ck["meta"], problem=problem.name, problem_params=problem.params(),
                         net_config=getattr(net, "config", {}), inverse=problem.inverse_record())
        stored = [d["stage"] for d in ck["meta"]["stages"]]
        if stored != [s.name for s in stages[:len(stored)]] or len(stored) > len(stages):
            raise ValueError(f"{resume} was written by a run with the stages {stored}; this run has "
                             f"{[s.name for s in stages]}. Resume with the same stages (later ones may be added).")
        check_same_settings(resume, ck, net=net, stages=stages, batch=batch, seed=seed, engine=engine)
        try:
            net.load_state_dict(ck["net"])
        except RuntimeError as err:
            reason = str(err).splitlines()[0]
            raise CheckpointError(resume, f"its weights do not fit this network ({reason}).") from None
        _load_coefficients(resume, problem, ck.get("coefficients", {}))
        ranks = ck.get("ranks")
        if not isinstance(ranks, list) or not ranks:
            raise CheckpointError(resume, "lacks the per-process sampling state ('ranks').")
        if len(ranks) != ctx.world_size:
            raise ValueError(f"{resume} was written by a run of {len(ranks)} processes; resume it with "
                             f"{len(ranks)} (this run has {ctx.world_size}).")
        mine = ranks[ctx.rank]
        run.generator.set_state(mine["generator"])
        run.points = run.to_dev(mine["points"]) if mine["points"] else None
        if adaptive is not None:
            adaptive.load_state_dict(mine["adaptive"])
        first, first_done = int(ck["stage"]), int(ck["stage_step"])
        saved_stage = ck["stages"][first] if first < len(ck["stages"]) else None
        result.history = ck["meta"]["history"]
        result.final_losses = ck["meta"].get("final_losses", {})
        t_offset = float(ck["meta"]["elapsed"])
        weighting.load_state_dict(ck["meta"].get("weighting", {}))
        stored_stall = ck["meta"].get("train", {}).get("stall", "absent")
        if stored_stall != "absent" and stored_stall != (None if stall is None else stall.describe()):
            raise CheckpointError(resume, f"was written by another run: stall: checkpoint {stored_stall!r}, this run "
                                          f"{None if stall is None else stall.describe()!r}. Resume with the same "
                                          "stall rule, or start afresh.")
        stall_state = ck["meta"].get("stall") or {}
        result.stalls = list(stall_state.get("stalls", []))

    t0 = time.perf_counter()
    states: list[dict] = list(ck["stages"]) if resume is not None else []
    detector: StallDetector | None = None

    def reduce(t: Tensor) -> Tensor:
        return distributed.all_reduce_mean(t) if ctx.active else t

    def elapsed() -> float:
        return time.perf_counter() - t0 + t_offset

    def save(index: int, done: int, phase: str) -> None:
        if checkpoint is None:
            return
        if detector is not None:
            detector.flush(reduce)  # every rank: the all-rank mean of the pending losses
        mine = {"generator": run.generator.get_state(),
                "points": {} if run.points is None else {k: v.detach().cpu() for k, v in run.points.items()},
                "adaptive": adaptive.state_dict() if adaptive is not None else {}}
        ranks = distributed.all_gather_objects(mine) if ctx.active else [mine]
        if not ctx.is_main:
            return
        meta = {"phase": phase, "history": result.history, "final_losses": result.final_losses,
                "elapsed": elapsed(), "problem": problem.name,
                "problem_params": problem.params(), "inverse": problem.inverse_record(),
                "net": getattr(net, "config", {}),
                "weighting": weighting.state_dict(), "stages": [s.describe() for s in stages[:index + 1]],
                "train": {"batch": batch, "seed": seed, "engine": engine, "weights": weighting.describe(),
                          "causal": None if causal is None else causal.describe(),
                          "adaptive": None if adaptive is None else adaptive.describe(),
                          "world_size": ctx.world_size, "stall": None if stall is None else stall.describe()},
                "stall": {"stalls": result.stalls,
                          "detector": None if detector is None else detector.state_dict(reduce)}}
        save_checkpoint(checkpoint, step=run.offset + done, net=net, stage=index, stage_step=done,
                        stages=states, generator=run.generator, meta=meta, ranks=ranks,
                        coefficients=problem.coefficients())

    def log(stage: Stage, done: int, res, evaluate_now: bool, exact_fields, stalled_now: bool = False) -> dict:
        names = list(res.terms)
        values = torch.stack([res.total.detach().reshape(())] + [res.terms[k].detach().reshape(()) for k in names])
        if causal is not None:
            values = torch.cat([values, res.loss_terms[causal.term].detach().reshape(1)])
        if ctx.active:
            values = distributed.all_reduce_mean(values)
        values = values.tolist()
        row = {"step": run.offset + done, "phase": stage.name, "loss": values[0],
               **dict(zip(names, values[1:1 + len(names)]))}
        result.final_losses = {k: row[k] for k in ["loss", *names]}
        if causal is not None:
            row[f"{causal.term}_causal"] = values[-1]
        row.update(weighting.log())
        if causal is not None:
            row.update(causal.log())
        row.update(res.extra)
        row.update(coefficient_columns(problem))
        row["time"] = elapsed()
        if evaluate_now and ctx.is_main and metric_list:
            row.update(measure(row, stage))
        if stalled_now:
            row["stalled"] = True
        result.history.append(row)
        return row

    def measure(row: dict, stage: Stage) -> dict:
        """Every metric's columns at this row: the run's reference metrics from one
        evaluation (one prediction on the grid), the others called on the net."""
        out: dict = {}
        errors = None
        for m in metric_list:
            try:
                if isinstance(m, ReferenceMetric) and m.reference is None:
                    if errors is None:
                        errors = evaluate(net, reference, prediction=problem.predict(net, reference),
                                          exact=exact_fields)
                    values = m.from_errors(errors, exact is not None)
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

    stage_times: dict[str, float] = {}
    adam_steps: list[float] = []
    result.steps_planned = sum(s.steps for s in stages)
    out_of_time = False
    last_err: dict = {}
    index, done = len(stages) - 1, 0
    exact_fields = None
    if exact is not None and ctx.is_main:  # once: every evaluation compares with the same fields
        from .validation.evaluate import exact_on_grid
        exact_fields = exact_on_grid(exact, reference)

    metric_names = [c for m in metric_list for c in metric_columns(m, exact is not None)]

    def stopped(reason: str, message: str) -> None:
        skipped = sum(r["steps"] - r["stage_step"] for r in result.stalls)
        result.steps_done, result.stop_reason, result.stop_message = run.offset + done - skipped, reason, message
        if result.stalls:
            result.stop_message += "; stalled: " + ", ".join(f"{r['stage']} at step {r['step']}"
                                                              for r in result.stalls)
        last = next((r for r in reversed(result.history) if any(c in r for c in metric_names)), {})
        result.metrics = {c: last[c] for c in metric_names if c in last}
        result.coefficients = problem.coefficient_values()
        result.timings = {"total": time.perf_counter() - t0 + t_offset, **stage_times,
                          "step_median": float(np.median(adam_steps)) if adam_steps else float("nan")}

    stalled_stages = {r["index"]: r for r in result.stalls}
    with _sigint_stops_after_step(enabled=not ctx.active) as interrupted:
        try:
            for index, stage in enumerate(stages):
                if index < first:
                    run.offset += stage.steps
                    continue
                if index in stalled_stages:  # a resumed run: the stage stalled, it is finished
                    done = stalled_stages[index]["stage_step"]
                    if index == len(stages) - 1:
                        break
                    run.offset += stage.steps
                    continue
                if index == first and saved_stage is not None:
                    stage.resume_settings(ck["meta"]["stages"][index])
                stage.start(run, index)
                run.reset_growth()
                done = 0
                detector = None if stall is None else StallDetector(stall, stage.steps)
                if index == first and saved_stage is not None:
                    stage.load_state_dict(saved_stage)
                    done = first_done
                    if detector is not None and stall_state.get("detector") is not None:
                        detector.load_state_dict(stall_state["detector"])
                states = states[:index] + [stage.state_dict()]
                ts = time.perf_counter()
                bar = _progress(stage.steps, done, progress and ctx.is_main, f"{problem.name} {labels[index]}")
                first_step = True
                stalled = False
                try:
                    while done < stage.steps:
                        t_step = time.perf_counter()
                        res = stage.step(run, done)
                        done += res.steps
                        if stage.name == "adam":
                            adam_steps.append(time.perf_counter() - t_step)
                        global_done = run.offset + done
                        out_of_time = time_limit is not None and time.perf_counter() - t0 >= time_limit
                        end = done >= stage.steps or out_of_time
                        logged = end or _crossed(global_done, res.steps, log_every)
                        if detector is not None:
                            detector.add(done, res.total)
                            stalled = logged and not end and detector.check(done, reduce)
                        if logged:
                            fresh = end or stalled or _crossed(global_done, res.steps, eval_every) \
                                or stage.evaluate_each_log
                            row = log(stage, done, res, fresh, exact_fields, stalled)
                            if any(c in row for c in metric_names):
                                last_err = row
                            bar.set_postfix(_postfix(row, res.terms, last_err, metric_names), refresh=False)
                            run.check_growth(global_done, stage.name, row["loss"])
                        elif first_step:  # the growth guard's first best, before a fast divergence
                            run.check_growth(global_done, stage.name, float(run.global_total(res.total)))
                        first_step = False
                        bar.update(res.steps)
                        if stalled:
                            break
                        if not end and not interrupted.is_set() and _crossed(global_done, res.steps, checkpoint_every):
                            states[index] = stage.state_dict()
                            save(index, done, stage.name)
                        if out_of_time or interrupted.is_set():
                            break
                finally:
                    bar.close()
                stage_times[labels[index]] = time.perf_counter() - ts
                states[index] = stage.state_dict()
                if stalled:
                    record = {"index": index, "stage": labels[index], "step": run.offset + done, "stage_step": done,
                              "steps": stage.steps, "message": detector.message}
                    result.stalls.append(record)
                    stalled_stages[index] = record
                    if progress and ctx.is_main:
                        print(f"{problem.name} {labels[index]}: stalled at step {run.offset + done} ({done} of "
                              f"{stage.steps}): {detector.message}; "
                              + ("the run ends." if index == len(stages) - 1 else "the next stage starts."),
                              file=sys.stderr, flush=True)
                detector = None
                last = index == len(stages) - 1 and (done >= stage.steps or stalled)
                if interrupted.is_set() and not last:
                    save(index, done, stage.name)
                    stopped("interrupted", f"interrupted (Ctrl-C) at step {run.offset + done} of "
                                           f"{result.steps_planned}")
                    raise TrainingInterrupted(run.offset + done, checkpoint, result)
                if out_of_time or index == len(stages) - 1:
                    break
                save(index, done, stage.name)  # a kill during the next stage resumes from here
                run.offset += stage.steps
        except TrainingDiverged as err:
            stopped("diverged", str(err).split(";")[0])
            err.result = result
            raise
    save(index, done, "done")
    if out_of_time and run.offset + done < result.steps_planned and not (
            index in stalled_stages and index == len(stages) - 1):
        stopped("time_limit", f"time limit of {time_limit:g} s reached at step {run.offset + done} of "
                              f"{result.steps_planned}")
    else:
        stopped("completed", f"all {result.steps_planned} steps done")
    if result.stop_reason != "completed" and progress and ctx.is_main:
        print(f"{problem.name}: stopped, {result.stop_message}", file=sys.stderr, flush=True)
    if reference is not None and ctx.is_main:
        result.final = evaluate(net, reference, prediction=problem.predict(net, reference), exact=exact_fields)
        limit = reference_limit(result.final, reference)
        if limit is not None:
            warnings.warn(limit, RuntimeWarning, stacklevel=2)
    return result


def coefficient_columns(problem: Problem) -> dict[str, float]:
    """The history columns of the unknowns: ``coef_<name>`` for a scalar, ``coef_<name>_rms``
    (the root mean square of the entries) for a vector."""
    out = {}
    for name, value in problem.coefficient_values().items():
        if isinstance(value, list):
            out[f"coef_{name}_rms"] = math.sqrt(sum(v * v for v in value) / len(value))
        else:
            out[f"coef_{name}"] = value
    return out


def _load_coefficients(path, problem: Problem, stored: dict) -> None:
    """Put the checkpoint's raw coefficients into the problem's, in place (the stages hold
    these very tensors)."""
    mine = problem.coefficients()
    if set(stored) != set(mine):
        raise CheckpointError(path, f"holds the problem coefficients {sorted(stored)}, this run has "
                                    f"{sorted(mine)}. Resume with the same unknowns, or start afresh.")
    with torch.no_grad():
        for name, value in stored.items():
            if value.shape != mine[name].shape:
                raise CheckpointError(path, f"its coefficient {name!r} has shape {tuple(value.shape)}, this run's "
                                            f"{tuple(mine[name].shape)}.")
            mine[name].copy_(value)


@contextmanager
def _sigint_stops_after_step(enabled: bool = True):
    """Within the block, the first SIGINT (Ctrl-C) sets the yielded event, which the loop
    reads after the step in progress (so the checkpoint it then writes is a consistent
    state); a second SIGINT interrupts at once. Only in the main thread and where SIGINT
    has Python's default handler; elsewhere (and under torchrun, where the ranks would
    stop at different steps) the event is never set."""
    flag = threading.Event()
    if not enabled or threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield flag
        return

    def handler(signum, frame):
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()
        print("\nCtrl-C: stopping after the current step and writing a checkpoint (Ctrl-C again: stop at once)",
              file=sys.stderr, flush=True)

    signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


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
    import sys

    from tqdm.auto import tqdm

    if enabled and not sys.stderr.isatty():
        return LogProgress(total, initial, desc)
    return tqdm(total=total, initial=initial, disable=not enabled, desc=desc, dynamic_ncols=True, leave=True)


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
        import sys

        pct = 100.0 * self.n / self.total if self.total else 100.0
        fields = " ".join(f"{k}={v}" for k, v in self.postfix.items())
        print(f"{self.desc}: {self.n}/{self.total} ({pct:.0f}%) {fields} [{now - self.t0:.1f} s]".replace("  ", " "),
              file=sys.stderr, flush=True)
        self.last_t, self.last_n = now, self.n

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._write(time.perf_counter())
