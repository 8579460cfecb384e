"""The training loop: Adam with a schedule, an optional L-BFGS stage, checkpoints,
progress and history."""
from __future__ import annotations

import json
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from . import distributed
from .adaptive import RADSampler
from .derivatives import get_engine
from .problems.base import Problem
from .validation.evaluate import evaluate
from .validation.reference import ReferenceField
from .weighting import CausalWeights, TermWeighting, as_term_weighting

SCHEDULES = ("cosine", "exponential", "constant")
CHECKPOINT_FORMAT = 1


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        net: the trained network (the same object that was passed in).
        history: one dict per logged step: "step", "phase" ("adam"/"lbfgs"), "loss"
            (the weighted total), each loss term (unweighted means), the weights
            "w_<term>", with causal weighting "<term>_causal" (the weighted sum over
            time chunks) and "causal_w0" ... "causal_w{M-1}", "lr", "time" (seconds
            since start) and, every ``eval_every`` steps when a reference is given,
            "rel_l2".
        timings: "total", "adam", "lbfgs" seconds and "step_median" (Adam, seconds).
        final: the last evaluation against the reference (empty without one).
    """

    net: nn.Module
    history: list[dict] = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    final: dict = field(default_factory=dict)

    def history_table(self) -> tuple[list[str], list[list]]:
        """Columns and rows of the history (for CSV)."""
        cols: list[str] = []
        for row in self.history:
            for k in row:
                if k not in cols:
                    cols.append(k)
        return cols, [[row.get(c, "") for c in cols] for row in self.history]


def _lr_lambda(schedule: str, steps: int, final_factor: float):
    if schedule == "constant":
        return lambda k: 1.0
    if schedule == "exponential":
        return lambda k: final_factor ** (min(k, steps) / max(steps, 1))
    return lambda k: final_factor + (1 - final_factor) * 0.5 * (1 + math.cos(math.pi * min(k, steps) / max(steps, 1)))


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
        fn = get_engine(self.engine)
        jets = {key: fn(self.net, batch[key], problem.input_names, spec)
                for key, spec in problem.derivatives.items() if key in batch}
        return problem.losses(jets, batch), problem.pointwise_residual(jets, batch)


def train(problem: Problem, net: nn.Module, *, steps: int, lr: float = 1e-3, batch: int | None = None,
          seed: int = 0, weights: dict[str, float] | TermWeighting | None = None,
          causal: CausalWeights | None = None, schedule: str = "cosine", final_lr_factor: float = 0.01,
          lbfgs_steps: int = 0, lbfgs_batch: int | None = None, resample_every: int | str = 1,
          adaptive: RADSampler | None = None, engine: str = "jet", reference: ReferenceField | None = None,
          eval_every: int = 500, log_every: int = 10, checkpoint: str | os.PathLike | None = None,
          checkpoint_every: int = 500, resume: str | os.PathLike | None = None, progress: bool = True,
          compile: bool = False, time_limit: float | None = None) -> TrainResult:
    """Train ``net`` on ``problem``'s weighted residual losses.

    Loss = sum_k w_k L_k over the problem's named terms. Adam runs ``steps`` steps with
    the learning-rate ``schedule`` ("cosine" or "exponential" decay to
    ``lr * final_lr_factor``, or "constant"), drawing ``batch`` fresh interior points
    every ``resample_every`` steps (``"fixed"``: one batch for the whole run) from a
    generator seeded with ``seed``; then L-BFGS (strong-Wolfe line search) runs
    ``lbfgs_steps`` iterations on one fixed batch of ``lbfgs_batch`` points.

    Weighting (:mod:`pinn_sine.weighting`): ``weights`` sets w_k -- a dict
    ``{"boundary": 10.0}`` (1 for the others) or :class:`FixedWeights`, or
    :class:`GradNormWeights` (balanced by gradient norms every N steps; held fixed
    during L-BFGS). ``causal`` (:class:`CausalWeights`, time-dependent problems)
    replaces the "pde" term by its causally weighted sum over time chunks. The history
    logs the weights (``w_<term>``, ``causal_w<i>``) at every logged step.

    Sampling: ``adaptive`` (:class:`~pinn_sine.adaptive.RADSampler`) draws the interior
    points from a candidate pool by their residual (RAD); the pool is refreshed every
    ``adaptive.refresh_every`` steps and a new draw from it is made every time a batch
    is drawn. Causal weighting and RAD need :meth:`Problem.pointwise_residual`.

    Several processes: inside an initialised process group (``torchrun``, see
    :mod:`pinn_sine.distributed`) each rank draws ``batch / world_size`` points from its
    own generator, gradients are averaged by DistributedDataParallel, logged losses are
    the means over the ranks, and only rank 0 evaluates, shows progress and writes the
    checkpoint (which holds every rank's generator and points).

    Checkpoints (``checkpoint``) hold the network, optimiser, scheduler, sampler,
    current points and weighting state and are written atomically every
    ``checkpoint_every`` steps and at the end; ``resume`` continues from one to the same
    result as an uninterrupted run. A non-finite loss raises FloatingPointError naming
    the step and the term, and leaves the last good checkpoint untouched.

    Args:
        engine: derivative engine, "jet" (forward propagation, default) or "autograd".
        reference: a ReferenceField; its relative L2 error is logged every ``eval_every``.
        compile: run the loss terms under ``torch.compile`` (jet engine only: it needs no
            double backward).
        time_limit: a wall-clock budget in seconds for the Adam stage: it stops after the
            step that crosses it (the schedule still spans ``steps``; use
            ``schedule="constant"`` with a large ``steps`` for a pure time budget).
    """
    if not (isinstance(steps, int) and steps >= 0):
        raise ValueError(f"steps must be an integer >= 0, got steps={steps!r}.")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got lr={lr}.")
    if schedule not in SCHEDULES:
        raise ValueError(f'Invalid schedule "{schedule}". Must be one of {list(SCHEDULES)}.')
    if not (0 < final_lr_factor <= 1):
        raise ValueError(f"final_lr_factor must be in (0, 1], got {final_lr_factor}.")
    fixed_points = resample_every == "fixed"
    if not fixed_points and not (isinstance(resample_every, int) and not isinstance(resample_every, bool)):
        raise ValueError(f'resample_every must be an integer >= 1 or "fixed", got {resample_every!r}.')
    if lbfgs_steps < 0 or (not fixed_points and resample_every < 1) or eval_every < 1 or log_every < 1 \
            or checkpoint_every < 1:
        raise ValueError("lbfgs_steps must be >= 0 and resample_every, eval_every, log_every, "
                         "checkpoint_every >= 1.")
    if compile and engine != "jet":
        raise ValueError('compile=True needs engine="jet": double backward cannot be compiled.')
    if net.in_dim != problem.in_dim or net.out_dim != problem.out_dim:
        raise ValueError(f"the network maps {net.in_dim} -> {net.out_dim}, the problem {problem.name} needs "
                         f"{problem.in_dim} -> {problem.out_dim}; build MLP(problem.in_dim, problem.out_dim, ...).")
    weighting = as_term_weighting(weights)
    if causal is not None:
        if not isinstance(causal, CausalWeights):
            raise TypeError(f"causal must be a CausalWeights, got {causal!r}.")
        causal.bind(problem)
        if type(problem).pointwise_residual is Problem.pointwise_residual:
            problem.pointwise_residual({}, {})  # raises, saying what to implement
    if adaptive is not None:
        if not isinstance(adaptive, RADSampler):
            raise TypeError(f"adaptive must be a RADSampler, got {adaptive!r}.")
        adaptive.check(problem)
    batch = problem.default_batch if batch is None else int(batch)
    lbfgs_batch = batch if lbfgs_batch is None else int(lbfgs_batch)
    param = next(net.parameters())
    device, dtype = param.device, param.dtype
    ctx = distributed.current(device)
    world, rank = ctx.world_size, ctx.rank
    for name, value in (("batch", batch), ("lbfgs_batch", lbfgs_batch)):
        if value % world:
            raise ValueError(f"{name}={value} is not divisible by the {world} processes; each rank draws an equal "
                             f"share. Use {name}={world * max(1, value // world)}.")
    n_local, lbfgs_local = batch // world, lbfgs_batch // world
    if time_limit is not None:
        if not time_limit > 0:
            raise ValueError(f"time_limit must be > 0 seconds, got {time_limit}.")
        if world > 1:
            raise ValueError("time_limit is a per-process wall clock and the ranks would stop at different "
                             "steps; give a step budget for distributed runs.")

    generator = torch.Generator().manual_seed(distributed.rank_seed(seed, rank))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(schedule, steps, final_lr_factor))
    result = TrainResult(net=net)
    start_step, phase, t_offset = 0, "adam", 0.0
    lbfgs_state = None
    pts = None

    def to_dev(b: dict[str, Tensor]) -> dict[str, Tensor]:
        return {k: v.to(device=device, dtype=dtype) for k, v in b.items()}

    if resume is not None:
        ck = load_checkpoint(resume)
        net.load_state_dict(ck["net"])
        opt.load_state_dict(ck["adam"])
        sched.load_state_dict(ck["scheduler"])
        ranks = ck.get("ranks")
        if ranks is None:
            generator.set_state(ck["generator"])
        else:
            if len(ranks) != world:
                raise ValueError(f"{resume} was written by a run of {len(ranks)} processes; resume it with "
                                 f"{len(ranks)} (this run has {world}).")
            mine = ranks[rank]
            generator.set_state(mine["generator"])
            pts = to_dev(mine["points"]) if mine["points"] else None
            if adaptive is not None:
                adaptive.load_state_dict(mine["adaptive"])
        start_step, phase = int(ck["step"]), ck["meta"]["phase"]
        result.history = ck["meta"]["history"]
        t_offset = float(ck["meta"]["elapsed"])
        lbfgs_state = ck.get("lbfgs")
        weighting.load_state_dict(ck["meta"].get("weighting", {}))

    objective = _Objective(problem, net, engine, pointwise=causal is not None)
    train_terms = distributed.wrap(objective, device) if ctx.active else objective
    eval_terms = objective
    if compile:
        train_terms = torch.compile(train_terms)
        eval_terms = torch.compile(objective) if ctx.active else train_terms
    sum_ranks = distributed.all_reduce_sum if ctx.active else None
    params = [p for p in net.parameters() if p.requires_grad]

    def grad_norms(loss_terms: dict[str, Tensor]):
        """||d L_k / d theta|| of each term over the whole batch (a callback: only the
        steps that update adaptive weights pay for it)."""
        def compute() -> dict[str, float]:
            flats = []
            for v in loss_terms.values():
                gs = (torch.autograd.grad(v, params, retain_graph=True, allow_unused=True) if v.requires_grad
                      else [None] * len(params))
                flats.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                                        for g, p in zip(gs, params)]))
            g = torch.stack(flats)
            if ctx.active:
                g = distributed.all_reduce_mean(g)
            return {k: float(v) for k, v in zip(loss_terms, g.norm(dim=1))}
        return compute

    def weighted(b, step: int | None, fn=train_terms):
        """Total loss, the plain terms, and the terms the total is made of. ``step`` None:
        weights held (L-BFGS, evaluation)."""
        terms, residual = fn(b)
        unknown = weighting.named_terms() - set(terms)
        if unknown:
            raise ValueError(f"weights name unknown loss terms {sorted(unknown)}; "
                             f"{problem.name} has {sorted(terms)}.")
        loss_terms = dict(terms)
        if causal is not None:
            if causal.term not in terms:
                raise ValueError(f"CausalWeights(term={causal.term!r}): {problem.name} has terms {sorted(terms)}.")
            loss_terms[causal.term] = causal.loss(residual, b["interior"], all_reduce=sum_ranks)
        w = weighting.weights(loss_terms, -1 if step is None else step,
                              None if step is None else grad_norms(loss_terms))
        total = sum(w[k] * v for k, v in loss_terms.items())
        return total, terms, loss_terms

    def global_total(total: Tensor) -> Tensor:
        return distributed.all_reduce_mean(total.detach()) if ctx.active else total.detach()

    def check_finite(step, ph, total, terms):
        """``total`` is the all-rank mean, so every rank raises together."""
        if not torch.isfinite(total):
            bad = [k for k, v in terms.items() if not torch.isfinite(v)]
            if bad:
                what = f"term {bad[0]!r} = {float(terms[bad[0]].detach())}"
            else:
                what = f"total = {float(total)}" + (" (on another process)" if ctx.active else "")
            raise FloatingPointError(f"non-finite loss at step {step} ({ph}): {what}; the last checkpoint is left "
                                     "intact. Lower the learning rate or the omega of the first layer.")

    def save(step, ph):
        if checkpoint is None:
            return
        mine = {"generator": generator.get_state(),
                "points": {} if pts is None else {k: v.detach().cpu() for k, v in pts.items()},
                "adaptive": adaptive.state_dict() if adaptive is not None else {}}
        ranks = distributed.all_gather_objects(mine) if ctx.active else [mine]
        if not ctx.is_main:
            return
        meta = {"phase": ph, "history": result.history, "elapsed": time.perf_counter() - t0 + t_offset,
                "problem": problem.name, "problem_params": problem.params(), "net": getattr(net, "config", {}),
                "weighting": weighting.state_dict(),
                "train": {"steps": steps, "lr": lr, "batch": batch, "seed": seed, "schedule": schedule,
                          "lbfgs_steps": lbfgs_steps, "engine": engine, "weights": weighting.describe(),
                          "causal": None if causal is None else causal.describe(),
                          "adaptive": None if adaptive is None else adaptive.describe(),
                          "resample_every": resample_every, "world_size": world}}
        save_checkpoint(checkpoint, step=step, net=net, adam=opt, scheduler=sched, generator=generator,
                        lbfgs=lbfgs_opt.state_dict() if lbfgs_opt is not None else None, meta=meta, ranks=ranks)

    def log(step, ph, total, terms, loss_terms, evaluate_now):
        names = list(terms)
        values = torch.stack([total.detach().reshape(())] + [terms[k].detach().reshape(()) for k in names])
        if causal is not None:
            values = torch.cat([values, loss_terms[causal.term].detach().reshape(1)])
        if ctx.active:
            values = distributed.all_reduce_mean(values)
        values = values.tolist()
        row = {"step": step, "phase": ph, "loss": values[0], **dict(zip(names, values[1:1 + len(names)]))}
        if causal is not None:
            row[f"{causal.term}_causal"] = values[-1]
        row.update(weighting.log())
        if causal is not None:
            row.update(causal.log())
        row["lr"] = opt.param_groups[0]["lr"] if ph == "adam" else 1.0
        row["time"] = time.perf_counter() - t0 + t_offset
        if reference is not None and evaluate_now and ctx.is_main:
            row["rel_l2"] = evaluate(net, reference, prediction=problem.predict(net, reference))["rel_l2"]
        result.history.append(row)
        return row

    t0 = time.perf_counter()
    step_times: list[float] = []
    lbfgs_opt = None
    bar = _progress(steps + lbfgs_steps, start_step, progress and ctx.is_main, problem.name)
    last_err = None
    try:
        # ----- Adam -------------------------------------------------------------------
        for k in range(start_step, steps) if phase == "adam" else ():
            ts = time.perf_counter()
            drawn = False
            if pts is None or (not fixed_points and k % resample_every == 0):
                pts = to_dev(problem.sample(n_local, generator, progress=k / max(steps, 1)))
                drawn = True
            if adaptive is not None:
                if adaptive.due(k):
                    adaptive.refresh(problem, net, engine, pts[adaptive.point_set].shape[0], generator,
                                     progress=k / max(steps, 1), to_dev=to_dev)
                    drawn = True
                if drawn:
                    pts = adaptive.draw(problem, pts, generator, to_dev)
            opt.zero_grad(set_to_none=True)
            total, terms, loss_terms = weighted(pts, k)
            check_finite(k, "adam", global_total(total), terms)
            total.backward()
            opt.step()
            sched.step()
            step_times.append(time.perf_counter() - ts)
            done = k + 1
            out_of_time = time_limit is not None and time.perf_counter() - t0 >= time_limit
            if done % log_every == 0 or done == steps or out_of_time:
                row = log(done, "adam", total, terms, loss_terms,
                          done % eval_every == 0 or done == steps or out_of_time)
                last_err = row.get("rel_l2", last_err)
                bar.set_postfix(_postfix(row, last_err), refresh=False)
            bar.update(1)
            if done % checkpoint_every == 0 and done < steps:
                save(done, "adam")
            if out_of_time:
                break
        t_adam = time.perf_counter() - t0
        # ----- L-BFGS -------------------------------------------------------------------
        if lbfgs_steps:
            lbfgs_opt = torch.optim.LBFGS(net.parameters(), lr=1.0, max_iter=10, history_size=50,
                                          tolerance_grad=1e-12, tolerance_change=1e-15,
                                          line_search_fn="strong_wolfe")
            if lbfgs_state is not None:
                lbfgs_opt.load_state_dict(lbfgs_state)
            fixed = to_dev(problem.sample(lbfgs_local, torch.Generator().manual_seed(
                distributed.rank_seed(seed + 1, rank))))
            done_l = start_step - steps if phase in ("lbfgs", "done") else 0
            while done_l < lbfgs_steps:
                chunk = min(10, lbfgs_steps - done_l)
                lbfgs_opt.param_groups[0]["max_iter"] = chunk

                def closure():
                    lbfgs_opt.zero_grad(set_to_none=True)
                    tot, _, _ = weighted(fixed, None)
                    g = global_total(tot)
                    if torch.isfinite(g):
                        tot.backward()
                    return g

                lbfgs_opt.step(closure)
                total, terms, loss_terms = weighted(fixed, None, fn=eval_terms)
                check_finite(steps + done_l + chunk, "lbfgs", global_total(total), terms)
                done_l += chunk
                row = log(steps + done_l, "lbfgs", total, terms, loss_terms,
                          done_l % eval_every < chunk or done_l == lbfgs_steps)
                last_err = row.get("rel_l2", last_err)
                bar.set_postfix(_postfix(row, last_err), refresh=False)
                bar.update(chunk)
                phase = "lbfgs"
        save(steps + lbfgs_steps, "done")
    finally:
        bar.close()
    total_time = time.perf_counter() - t0
    result.timings = {"total": total_time + t_offset, "adam": t_adam, "lbfgs": total_time - t_adam,
                      "step_median": float(np.median(step_times)) if step_times else float("nan")}
    if reference is not None and ctx.is_main:
        result.final = evaluate(net, reference, prediction=problem.predict(net, reference))
    return result


def _postfix(row: dict, err) -> dict:
    out = {"loss": f"{row['loss']:.3e}"}
    if err is not None:
        out["rel_l2"] = f"{err:.2e}"
    return out


def _progress(total: int, initial: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc=desc, dynamic_ncols=True, leave=False)


# ----- checkpoints ----------------------------------------------------------------------
def save_checkpoint(path, *, step: int, net: nn.Module, adam, scheduler, generator: torch.Generator,
                    lbfgs=None, meta: dict, ranks: list[dict] | None = None) -> Path:
    """Atomically write a checkpoint: tensors in a state dict, the rest as JSON text.

    ``ranks`` holds each process's own state (generator, current points, RAD pool),
    in rank order; ``generator`` is rank 0's."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": CHECKPOINT_FORMAT, "step": step, "net": net.state_dict(), "adam": adam.state_dict(),
               "scheduler": scheduler.state_dict(), "generator": generator.get_state(),
               "meta_json": json.dumps(meta, default=str)}
    if lbfgs is not None:
        payload["lbfgs"] = lbfgs
    if ranks is not None:
        payload["ranks"] = ranks
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def load_checkpoint(path) -> dict:
    """Read a checkpoint with ``weights_only=True`` and check its format."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist.")
    ck = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a pinn_sine checkpoint of format {CHECKPOINT_FORMAT}.")
    ck["meta"] = json.loads(ck.pop("meta_json"))
    return ck
