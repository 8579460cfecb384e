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

from .problems.base import Problem
from .validation.evaluate import evaluate
from .validation.reference import ReferenceField

SCHEDULES = ("cosine", "exponential", "constant")
CHECKPOINT_FORMAT = 1


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        net: the trained network (the same object that was passed in).
        history: one dict per logged step: "step", "phase" ("adam"/"lbfgs"), "loss",
            each loss term, "lr", "time" (seconds since start) and, every
            ``eval_every`` steps when a reference is given, "rel_l2".
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


def train(problem: Problem, net: nn.Module, *, steps: int, lr: float = 1e-3, batch: int | None = None,
          seed: int = 0, weights: dict[str, float] | None = None, schedule: str = "cosine",
          final_lr_factor: float = 0.01, lbfgs_steps: int = 0, lbfgs_batch: int | None = None,
          resample_every: int = 1, engine: str = "jet", reference: ReferenceField | None = None,
          eval_every: int = 500, log_every: int = 10, checkpoint: str | os.PathLike | None = None,
          checkpoint_every: int = 500, resume: str | os.PathLike | None = None, progress: bool = True,
          compile: bool = False) -> TrainResult:
    """Train ``net`` on ``problem``'s weighted residual losses.

    Loss = sum_k w_k L_k over the problem's named terms (w_k = 1 unless given in
    ``weights``). Adam runs ``steps`` steps with the learning-rate ``schedule``
    ("cosine" or "exponential" decay to ``lr * final_lr_factor``, or "constant"),
    drawing ``batch`` fresh interior points every ``resample_every`` steps from a
    generator seeded with ``seed``; then L-BFGS (strong-Wolfe line search) runs
    ``lbfgs_steps`` iterations on one fixed batch of ``lbfgs_batch`` points.

    Checkpoints (``checkpoint``) hold the network, optimiser, scheduler and sampler
    state and are written atomically every ``checkpoint_every`` steps and at the end;
    ``resume`` continues from one to the same result as an uninterrupted run. A
    non-finite loss raises FloatingPointError naming the step and the term, and leaves
    the last good checkpoint untouched.

    Args:
        engine: derivative engine, "jet" (forward propagation, default) or "autograd".
        reference: a ReferenceField; its relative L2 error is logged every ``eval_every``.
        compile: run the loss under ``torch.compile`` (jet engine only: it needs no
            double backward).
    """
    if not (isinstance(steps, int) and steps >= 0):
        raise ValueError(f"steps must be an integer >= 0, got steps={steps!r}.")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got lr={lr}.")
    if schedule not in SCHEDULES:
        raise ValueError(f'Invalid schedule "{schedule}". Must be one of {list(SCHEDULES)}.')
    if not (0 < final_lr_factor <= 1):
        raise ValueError(f"final_lr_factor must be in (0, 1], got {final_lr_factor}.")
    if lbfgs_steps < 0 or resample_every < 1 or eval_every < 1 or log_every < 1 or checkpoint_every < 1:
        raise ValueError("lbfgs_steps must be >= 0 and resample_every, eval_every, log_every, "
                         "checkpoint_every >= 1.")
    if compile and engine != "jet":
        raise ValueError('compile=True needs engine="jet": double backward cannot be compiled.')
    if net.in_dim != problem.in_dim or net.out_dim != problem.out_dim:
        raise ValueError(f"the network maps {net.in_dim} -> {net.out_dim}, the problem {problem.name} needs "
                         f"{problem.in_dim} -> {problem.out_dim}; build MLP(problem.in_dim, problem.out_dim, ...).")
    batch = problem.default_batch if batch is None else int(batch)
    lbfgs_batch = batch if lbfgs_batch is None else int(lbfgs_batch)
    weights = dict(weights or {})
    param = next(net.parameters())
    device, dtype = param.device, param.dtype

    generator = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(schedule, steps, final_lr_factor))
    result = TrainResult(net=net)
    start_step, phase, t_offset = 0, "adam", 0.0
    lbfgs_state = None
    if resume is not None:
        ck = load_checkpoint(resume)
        net.load_state_dict(ck["net"])
        opt.load_state_dict(ck["adam"])
        sched.load_state_dict(ck["scheduler"])
        generator.set_state(ck["generator"])
        start_step, phase = int(ck["step"]), ck["meta"]["phase"]
        result.history = ck["meta"]["history"]
        t_offset = float(ck["meta"]["elapsed"])
        lbfgs_state = ck.get("lbfgs")

    def to_dev(b: dict[str, Tensor]) -> dict[str, Tensor]:
        return {k: v.to(device=device, dtype=dtype) for k, v in b.items()}

    def weighted(b):
        terms = problem.compute_losses(net, b, engine)
        unknown = set(weights) - set(terms)
        if unknown:
            raise ValueError(f"weights name unknown loss terms {sorted(unknown)}; "
                             f"{problem.name} has {sorted(terms)}.")
        total = sum(weights.get(k, 1.0) * v for k, v in terms.items())
        return total, terms

    loss_fn = torch.compile(weighted) if compile else weighted

    def check_finite(step, ph, total, terms):
        if not torch.isfinite(total):
            bad = [k for k, v in terms.items() if not torch.isfinite(v)] or ["total"]
            raise FloatingPointError(f"non-finite loss at step {step} ({ph}): term {bad[0]!r} = "
                                     f"{float(terms.get(bad[0], total).detach())}; the last checkpoint is left intact. "
                                     "Lower the learning rate or the omega of the first layer.")

    def save(step, ph):
        if checkpoint is None:
            return
        meta = {"phase": ph, "history": result.history, "elapsed": time.perf_counter() - t0 + t_offset,
                "problem": problem.name, "problem_params": problem.params(), "net": getattr(net, "config", {}),
                "train": {"steps": steps, "lr": lr, "batch": batch, "seed": seed, "schedule": schedule,
                          "lbfgs_steps": lbfgs_steps, "engine": engine, "weights": weights}}
        save_checkpoint(checkpoint, step=step, net=net, adam=opt, scheduler=sched, generator=generator,
                        lbfgs=lbfgs_opt.state_dict() if lbfgs_opt is not None else None, meta=meta)

    def log(step, ph, total, terms, evaluate_now):
        row = {"step": step, "phase": ph, "loss": float(total), **{k: float(v) for k, v in terms.items()},
               "lr": opt.param_groups[0]["lr"] if ph == "adam" else 1.0,
               "time": time.perf_counter() - t0 + t_offset}
        if reference is not None and evaluate_now:
            row["rel_l2"] = evaluate(net, reference, prediction=problem.predict(net, reference))["rel_l2"]
        result.history.append(row)
        return row

    t0 = time.perf_counter()
    step_times: list[float] = []
    lbfgs_opt = None
    bar = _progress(steps + lbfgs_steps, start_step, progress, problem.name)
    last_err = None
    pts = None
    try:
        # ----- Adam -------------------------------------------------------------------
        for k in range(start_step, steps) if phase == "adam" else ():
            ts = time.perf_counter()
            if pts is None or k % resample_every == 0:
                pts = to_dev(problem.sample(batch, generator, progress=k / max(steps, 1)))
            opt.zero_grad(set_to_none=True)
            total, terms = loss_fn(pts)
            check_finite(k, "adam", total, terms)
            total.backward()
            opt.step()
            sched.step()
            step_times.append(time.perf_counter() - ts)
            done = k + 1
            if done % log_every == 0 or done == steps:
                row = log(done, "adam", total.detach(), {n: v.detach() for n, v in terms.items()},
                          done % eval_every == 0 or done == steps)
                last_err = row.get("rel_l2", last_err)
                bar.set_postfix(_postfix(row, last_err), refresh=False)
            bar.update(1)
            if done % checkpoint_every == 0 and done < steps:
                save(done, "adam")
        t_adam = time.perf_counter() - t0
        # ----- L-BFGS -------------------------------------------------------------------
        if lbfgs_steps:
            lbfgs_opt = torch.optim.LBFGS(net.parameters(), lr=1.0, max_iter=10, history_size=50,
                                          tolerance_grad=1e-12, tolerance_change=1e-15,
                                          line_search_fn="strong_wolfe")
            if lbfgs_state is not None:
                lbfgs_opt.load_state_dict(lbfgs_state)
            fixed = to_dev(problem.sample(lbfgs_batch, torch.Generator().manual_seed(seed + 1)))
            done_l = start_step - steps if phase in ("lbfgs", "done") else 0
            while done_l < lbfgs_steps:
                chunk = min(10, lbfgs_steps - done_l)
                lbfgs_opt.param_groups[0]["max_iter"] = chunk

                def closure():
                    lbfgs_opt.zero_grad(set_to_none=True)
                    tot, _ = loss_fn(fixed)
                    if torch.isfinite(tot):
                        tot.backward()
                    return tot

                lbfgs_opt.step(closure)
                total, terms = loss_fn(fixed)
                check_finite(steps + done_l + chunk, "lbfgs", total, terms)
                done_l += chunk
                row = log(steps + done_l, "lbfgs", total.detach(), {n: v.detach() for n, v in terms.items()},
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
    if reference is not None:
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
                    lbfgs=None, meta: dict) -> Path:
    """Atomically write a checkpoint: tensors in a state dict, the rest as JSON text."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": CHECKPOINT_FORMAT, "step": step, "net": net.state_dict(), "adam": adam.state_dict(),
               "scheduler": scheduler.state_dict(), "generator": generator.get_state(),
               "meta_json": json.dumps(meta, default=str)}
    if lbfgs is not None:
        payload["lbfgs"] = lbfgs
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
