"""The convenient front of training: :func:`train` checks its keywords, builds the
shared training context (:class:`Run`: sampling, the weighted loss) and the callbacks
(:mod:`pinn_sine.callbacks`: checkpoints, evaluation, progress, the time limit, the
guards, stall stops, Ctrl-C), restores them from a checkpoint to resume, and runs the
loop (:func:`pinn_sine.loop.fit`) over the optimizer stages."""
from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

from . import distributed
from .adaptive import RADSampler
from .callbacks import (DIVERGENCE_STEPS, Callback, Checkpoint, DivergenceGuard, Evaluation, FiniteLossGuard,
                        LogProgress, Progress, SigintStop, StallStop, Timer, _postfix, _progress, restore)
from .checkpoint import (CHECKPOINT_FORMAT, CheckpointError, check_compatible, check_same_settings, load_checkpoint,
                         save_checkpoint)
from .constraints import ConstrainedNet, unconstrained
from .loop import (STOP_REASONS, Loop, TrainingDiverged, TrainingInterrupted, TrainResult, crossed as _crossed, fit,
                   stage_labels as _stage_labels)
from .metrics import as_metrics, columns as metric_columns
from .nets.mlp import check_seed
from .optim import LBFGS, Adam, Stage
from .problems.base import Problem
from .stall import Stall
from .validation.evaluate import check_mask
from .validation.reference import ReferenceField
from .weighting import CausalWeights, TermWeighting, as_term_weighting

__all__ = ["train", "fit", "Callback", "TrainResult", "Run", "TrainingInterrupted", "TrainingDiverged",
           "STOP_REASONS", "Stall", "load_checkpoint", "save_checkpoint", "CHECKPOINT_FORMAT", "LogProgress",
           "DIVERGENCE_STEPS", "coefficient_columns"]

# names kept importable from here for the modules and tests that import them
_ = (Loop, LogProgress, _postfix, _progress, _crossed, _stage_labels)


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
    batch = problem.draw(32, torch.Generator().manual_seed(0), progress=1.0)  # observations and fixed sets too
    check_pointwise(problem, net, {k: v.to(device=param.device, dtype=param.dtype) for k, v in batch.items()})


#: history columns of the built-in stages (a metric may not take their names)
STAGE_COLUMNS = ("lr", "lambda", "mu", "nu", "gain", "accepted", "step_time", "alpha", "radius", "rho", "redraws")


class Run:
    """The shared training context of one :func:`train` call (what every stage and
    callback shares): the problem and network, the sampling state, the weighted loss.
    Stages receive it in :meth:`~pinn_sine.optim.Stage.start` and
    :meth:`~pinn_sine.optim.Stage.step`; callbacks as ``loop.context``.

    Attributes a stage reads: ``problem``, ``net``, ``params`` (trainable parameters: the
    network's, then the problem's :meth:`~pinn_sine.problems.Problem.coefficients`),
    ``ctx`` (the distributed context), ``causal``, ``offset`` (steps of the stages
    before the current one), ``loop`` (the :class:`~pinn_sine.loop.Loop` running it),
    ``label`` (what progress lines say: the problem's name, or ``train(label=...)``).

    Its state (:meth:`state_dict`, per process: the generator, the current points, the
    RAD pool; the weighting's state is shared) is what a checkpoint needs to resume the
    sampling bit-identically.
    """

    def __init__(self, problem: Problem, net: nn.Module, *, batch: int, seed: int, engine: str,
                 weighting: TermWeighting, causal: CausalWeights | None, adaptive: RADSampler | None,
                 compile: bool):
        self.problem, self.net, self.batch, self.seed, self.engine = problem, net, batch, seed, engine
        self.label = problem.name  # what progress lines are labelled with (train(label=...))
        self.loop = None
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

    # ----- what the stages report to the callbacks ----------------------------------------
    def reset_growth(self) -> None:
        """A stage changed its objective (a new fixed batch): the callbacks'
        ``on_batch_change`` (the divergence guard forgets its best loss)."""
        if self.loop is not None:
            self.loop.call("on_batch_change", self.loop.stage)

    def check_finite(self, step: int, phase: str, total: Tensor, terms: dict[str, Tensor]) -> None:
        """A stage computed the loss ``total`` (its plain ``terms``) at global ``step``:
        the callbacks' ``on_loss`` (the finite-loss guard raises
        :class:`TrainingDiverged` when the all-rank mean is not finite)."""
        if self.loop is not None:
            self.loop.call("on_loss", step, phase, total, terms)

    # ----- logging and state ----------------------------------------------------------------
    def log_row(self, step: int, phase: str, res) -> dict:
        """The history row of a logged step: "step", "phase", the weighted "loss" and the
        plain terms (all-rank means), the causal term, the weights, the stage's columns
        and the problem's coefficients (:func:`coefficient_columns`)."""
        causal = self.causal
        names = list(res.terms)
        values = torch.stack([res.total.detach().reshape(())] + [res.terms[k].detach().reshape(()) for k in names])
        if causal is not None:
            values = torch.cat([values, res.loss_terms[causal.term].detach().reshape(1)])
        if self.ctx.active:
            values = distributed.all_reduce_mean(values)
        values = values.tolist()
        row = {"step": step, "phase": phase, "loss": values[0], **dict(zip(names, values[1:1 + len(names)]))}
        if causal is not None:
            row[f"{causal.term}_causal"] = values[-1]
        row.update(self.weighting.log())
        if causal is not None:
            row.update(causal.log())
        row.update(res.extra)
        row.update(coefficient_columns(self.problem))
        return row

    def state_dict(self) -> dict:
        """This process's sampling state: "generator", "points" (the current batch, on
        the CPU), "adaptive" (the RAD pool)."""
        return {"generator": self.generator.get_state(),
                "points": {} if self.points is None else {k: v.detach().cpu() for k, v in self.points.items()},
                "adaptive": self.adaptive.state_dict() if self.adaptive is not None else {}}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.points = self.to_dev(state["points"]) if state["points"] else None
        if self.adaptive is not None:
            self.adaptive.load_state_dict(state["adaptive"])


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


def train(problem: Problem, net: nn.Module, *, stages: Sequence[Stage] | None = None, steps: int | None = None,
          lr: float | None = None, batch: int | None = None, seed: int = 0,
          weights: dict[str, float] | TermWeighting | None = None, causal: CausalWeights | None = None,
          schedule: str = "cosine", final_lr_factor: float = 0.01, lbfgs_steps: int = 0,
          lbfgs_batch: int | None = None, resample_every: int | str = 1, adaptive: RADSampler | None = None,
          engine: str = "jet", reference: ReferenceField | None = None, eval_every: int = 500,
          log_every: int = 10, checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 500,
          resume: str | os.PathLike | None = None, progress: bool = True, compile: bool = False,
          time_limit: float | None = None, divergence: float | None = 1e4, metrics=None,
          stall: Stall | None = Stall(), callbacks: Sequence[Callback] | None = None,
          label: str | None = None) -> TrainResult:
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
    times the stage's best for :data:`DIVERGENCE_STEPS` steps (None: no such check; the
    window is checkpointed, so a run resumed inside it stops where an uninterrupted one does).
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
        callbacks: more callbacks (:class:`pinn_sine.callbacks.Callback`), called after the
            built-in ones at every hook of the loop (:mod:`pinn_sine.loop`): to add history
            columns, stop the run or a stage, act at stage ends; each one's
            ``state_dict`` is checkpointed and restored on resume.
        label: what the progress lines are labelled with (default the problem's name;
            :func:`pinn_sine.march` says which window).

    The loop (:func:`pinn_sine.loop.fit`) calls, in this order, :class:`~pinn_sine.callbacks.Timer`
    (``time_limit``), :class:`~pinn_sine.callbacks.Evaluation` (``reference``, ``metrics``,
    ``eval_every``), :class:`~pinn_sine.callbacks.StallStop` (``stall``),
    :class:`~pinn_sine.callbacks.DivergenceGuard` (``divergence``),
    :class:`~pinn_sine.callbacks.FiniteLossGuard`, :class:`~pinn_sine.callbacks.Progress`
    (``progress``), :class:`~pinn_sine.callbacks.Checkpoint` (``checkpoint``,
    ``checkpoint_every``), :class:`~pinn_sine.callbacks.SigintStop`, then ``callbacks``.
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
    check_time_limit(time_limit)
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
    user_callbacks = _check_callbacks(callbacks)
    terms = [t.name for t in problem.terms()] if problem.has_terms else []
    reserved = {"step", "phase", "loss", "time", "stalled", *terms, *(f"w_{t}" for t in terms), *STAGE_COLUMNS,
                *coefficient_columns(problem)}
    if causal is not None:
        reserved |= {f"{causal.term}_causal", *(f"causal_w{i}" for i in range(causal.chunks))}
    exact_known = reference is not None and problem.exact_solution is not None
    metric_list = as_metrics(metrics, reference=reference, exact=exact_known, reserved=reserved)
    mark_trained_for(net, problem.name)
    run = Run(problem, net, batch=batch, seed=seed, engine=engine, weighting=weighting, causal=causal,
              adaptive=adaptive, compile=compile)
    if label is not None:
        if not isinstance(label, str):
            raise TypeError(f"label must be a string (shown in the progress lines), got {label!r}.")
        run.label = label
    ctx = run.ctx
    run.local(None, "batch")
    for s in stages:
        if getattr(s, "batch", None) is not None:
            run.local(s.batch, f"{type(s).__name__}(batch)")
    if time_limit is not None:
        if ctx.world_size > 1:
            raise ValueError("time_limit is a per-process wall clock and the ranks would stop at different "
                             "steps; give a step budget for distributed runs.")

    exact = problem.exact_solution if reference is not None else None
    settings = {"batch": batch, "seed": seed, "engine": engine, "weights": weighting.describe(),
                "causal": None if causal is None else causal.describe(),
                "adaptive": None if adaptive is None else adaptive.describe(),
                "world_size": ctx.world_size, "stall": None if stall is None else stall.describe()}
    metric_names = [c for m in metric_list for c in metric_columns(m, exact is not None)]
    built_in: list[Callback] = [Timer(time_limit),
                                Evaluation(problem, reference, metric_list, exact=exact, eval_every=eval_every,
                                           columns=metric_names)]
    if stall is not None:
        built_in.append(StallStop(stall))
    if divergence is not None:
        built_in.append(DivergenceGuard(divergence))
    built_in += [FiniteLossGuard(), Progress(progress, metric_names),
                 Checkpoint(checkpoint, checkpoint_every, settings), SigintStop(enabled=not ctx.active)]
    everything = built_in + user_callbacks
    state = None
    if resume is not None:
        state = _resume(resume, problem, net, stages, run, everything, batch=batch, seed=seed, engine=engine,
                        stall=stall)
    return fit(run, stages, everything, log_every=log_every, state=state)


def check_time_limit(time_limit) -> None:
    """``time_limit`` is None or a finite number of seconds > 0 (ValueError otherwise)."""
    if time_limit is not None and (isinstance(time_limit, (bool, str)) or not isinstance(time_limit, numbers.Real)
                                   or not (math.isfinite(time_limit) and time_limit > 0)):
        raise ValueError(f"time_limit must be > 0 seconds, got {time_limit!r}; give a finite number of seconds, or "
                         "None for no limit.")


def _check_callbacks(callbacks) -> list[Callback]:
    """``callbacks`` as a list of distinct Callback instances (None: none)."""
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        raise TypeError(f"callbacks must be a list of callbacks, e.g. callbacks=[{callbacks!r}]; got the single "
                        f"callback {callbacks!r}.")
    if isinstance(callbacks, (str, bytes)) or not isinstance(callbacks, Iterable):
        raise TypeError(f"callbacks must be a list of pinn_sine.callbacks.Callback instances, got {callbacks!r}.")
    callbacks = list(callbacks)
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks must hold pinn_sine.callbacks.Callback instances (subclass Callback and "
                            f"override the hooks you need), got {cb!r}.")
    if len({id(cb) for cb in callbacks}) != len(callbacks):
        raise ValueError("the same callback object appears twice in callbacks; give each its own instance.")
    return callbacks


def _resume(path, problem: Problem, net: nn.Module, stages: list[Stage], run: Run, callbacks: list[Callback], *,
            batch: int, seed: int, engine: str, stall: Stall | None) -> dict:
    """Check the checkpoint at ``path`` against this run, put its weights, coefficients,
    sampling and weighting state into ``net``, ``problem`` and ``run``, its callbacks'
    states into ``callbacks``, and return the loop's state (:meth:`Loop.load_state_dict`)."""
    ck = load_checkpoint(path)
    meta = ck["meta"]
    check_compatible(path, meta, problem=problem.name, problem_params=problem.params(),
                     net_config=getattr(net, "config", {}), inverse=problem.inverse_record())
    stored = [d["stage"] for d in meta["stages"]]
    if stored != [s.name for s in stages[:len(stored)]] or len(stored) > len(stages):
        raise ValueError(f"{path} was written by a run with the stages {stored}; this run has "
                         f"{[s.name for s in stages]}. Resume with the same stages (later ones may be added).")
    check_same_settings(path, ck, net=net, stages=stages, batch=batch, seed=seed, engine=engine)
    try:
        net.load_state_dict(ck["net"])
    except RuntimeError as err:
        reason = str(err).splitlines()[0]
        raise CheckpointError(path, f"its weights do not fit this network ({reason}).") from None
    _load_coefficients(path, problem, ck.get("coefficients", {}))
    ranks = ck.get("ranks")
    if not isinstance(ranks, list) or not ranks:
        raise CheckpointError(path, "lacks the per-process sampling state ('ranks').")
    ctx = run.ctx
    if len(ranks) != ctx.world_size:
        raise ValueError(f"{path} was written by a run of {len(ranks)} processes; resume it with "
                         f"{len(ranks)} (this run has {ctx.world_size}).")
    run.load_state_dict(ranks[ctx.rank])
    run.weighting.load_state_dict(meta.get("weighting", {}))
    stored_stall = meta.get("train", {}).get("stall", "absent")
    if stored_stall != "absent" and stored_stall != (None if stall is None else stall.describe()):
        raise CheckpointError(path, f"was written by another run: stall: checkpoint {stored_stall!r}, this run "
                                    f"{None if stall is None else stall.describe()!r}. Resume with the same "
                                    "stall rule, or start afresh.")
    restore(callbacks, meta)
    return {"stage": ck["stage"], "stage_step": ck["stage_step"], "stages": ck["stages"], "described": meta["stages"],
            "history": meta["history"], "final_losses": meta.get("final_losses", {}),
            "stalls": (meta.get("stall") or {}).get("stalls", []), "elapsed": meta["elapsed"]}


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
