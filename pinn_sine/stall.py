"""Stall stops: a stage whose loss no longer improves ends early and the run moves on.

The rule (:class:`Stall`), applied by :func:`pinn_sine.train` to every stage: let
l_i be the loss a stage reports at each of its steps (Adam: the step's batch loss;
L-BFGS: after each chunk, on its fixed batch; Gauss-Newton: at the point it keeps), at
stage step d_i, and W the window in steps. At a logged step n of the stage the stage
has stalled when

    min_{d_i > n - W} l_i  >=  (1 - rtol) * min_{d_i <= n - W} l_i

(the best loss of the last W steps is not better than the best before them by the
factor 1 - rtol; the right side needs at least one step before the window, so a stage
runs at least W steps). The test runs at the logged steps (every ``log_every`` steps,
where the loop already reads the loss), over every step's loss.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch

__all__ = ["Stall", "StallDetector"]


@dataclass(frozen=True)
class Stall:
    """When a stage counts as stalled (see the module docstring for the test).

    Args:
        window: W as a fraction of the stage's steps (a float in (0, 1]) or as a number
            of steps (an int >= 1).
        rtol: the relative improvement of the best loss the window must reach, in [0, 1).
        min_steps: the least W for a fractional window (steps): Gauss-Newton's rejected
            trials keep the loss unchanged for a few steps, and a short window would
            take them for a stall.
    """

    window: int | float = 0.1
    rtol: float = 1e-5
    min_steps: int = 50

    def __post_init__(self):
        w = self.window
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not math.isfinite(w) or w <= 0 \
                or (isinstance(w, numbers.Integral) is False and w > 1):
            raise ValueError(f"Stall: window must be a fraction of the stage's steps in (0, 1] (a float) or a number "
                             f"of steps >= 1 (an int), got window={w!r}.")
        r = self.rtol
        if isinstance(r, bool) or not isinstance(r, numbers.Real) or not 0 <= r < 1:
            raise ValueError(f"Stall: rtol must be in [0, 1), got rtol={r!r}; e.g. 1e-5.")
        m = self.min_steps
        if isinstance(m, bool) or not isinstance(m, numbers.Integral) or m < 1:
            raise ValueError(f"Stall: min_steps must be an integer >= 1, got min_steps={m!r}.")

    def steps(self, stage_steps: int) -> int:
        """W for a stage of ``stage_steps`` steps."""
        if isinstance(self.window, numbers.Integral):
            return int(self.window)
        return max(self.min_steps, math.ceil(self.window * stage_steps))

    def describe(self) -> dict:
        return {"window": self.window, "rtol": self.rtol, "min_steps": self.min_steps}


class StallDetector:
    """The stall test of one stage: every step's loss is added (a tensor, no device
    synchronisation), and read at the checks. State (checkpointed): the best loss before
    the window and the (step, loss) pairs in it."""

    def __init__(self, rule: Stall, stage_steps: int):
        self.rule, self.window = rule, rule.steps(stage_steps)
        self.best_before: float | None = None
        self.recent: list[list] = []       # [stage step, loss] with loss a float
        self.pending: list = []            # (stage step, loss tensor) not yet read
        self.message = ""

    def add(self, done: int, loss: torch.Tensor) -> None:
        self.pending.append((done, loss.detach().reshape(())))

    def flush(self, reduce) -> None:
        """Read the pending losses (``reduce``: the all-rank mean of a tensor)."""
        if self.pending:
            values = reduce(torch.stack([v for _, v in self.pending])).tolist()
            self.recent += [[d, float(v)] for (d, _), v in zip(self.pending, values)]
            self.pending = []

    def check(self, done: int, reduce) -> bool:
        """Whether the stage has stalled at its step ``done``; sets :attr:`message`."""
        self.flush(reduce)
        edge = done - self.window
        old = [v for d, v in self.recent if d <= edge]
        if old:
            best = min(old)
            self.best_before = best if self.best_before is None else min(self.best_before, best)
            self.recent = [[d, v] for d, v in self.recent if d > edge]
        if self.best_before is None or not self.recent:
            return False
        best_window = min(v for _, v in self.recent)
        if best_window >= (1 - self.rule.rtol) * self.best_before:
            self.message = (f"best loss {best_window:.6e} over its last {self.window} steps, not below "
                            f"(1 - {self.rule.rtol:g}) x {self.best_before:.6e}, the best before them")
            return True
        return False

    def state_dict(self, reduce) -> dict:
        self.flush(reduce)
        return {"window": self.window, "best_before": self.best_before, "recent": [list(r) for r in self.recent]}

    def load_state_dict(self, state: dict) -> None:
        self.window = int(state["window"])
        self.best_before = None if state["best_before"] is None else float(state["best_before"])
        self.recent = [[int(d), float(v)] for d, v in state["recent"]]
        self.pending = []
