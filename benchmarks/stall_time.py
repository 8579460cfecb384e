"""How much of a run's time each stage spends after its loss stalled, without and with
the stall stop (issue 31). The recipe of `make demo`: Poisson2D, SIREN width 24 depth 2,
float64, batch 800, Adam 500 then Gauss-Newton 1200 (`pinn-sine solve poisson2d
--activation siren --width 24 --depth 2 --dtype float64 --batch 800 --steps 500
--gn-steps 1200`).

Without the stop (stall=None) the stall test of :class:`Stall` is
replayed on the logged losses (every 10 steps, as the CLI logs): the first step where it holds is where the stage
stalled, and the time from there to the stage's end is time spent stalled. With the
stop (the default Stall()) the stage ends there.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/stall_time.py [--adam 500 --gn 1200 --rtol 1e-5]
"""
from __future__ import annotations

import argparse

import torch

from pinn_sine import Stall, train
from pinn_sine.nets import build_net
from pinn_sine.optim import Adam, GaussNewton
from pinn_sine.problems import Poisson2D
from pinn_sine.stall import StallDetector


def stalled_at(rows: list[dict], rule: Stall, steps: int, first: int) -> dict | None:
    """The row at which ``rule`` fires on these rows' losses (one stage)."""
    det = StallDetector(rule, steps)
    for row in rows:
        det.add(row["step"] - first, torch.tensor(row["loss"], dtype=torch.float64))
        if row["step"] - first < steps and det.check(row["step"] - first, lambda t: t):
            return row
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adam", type=int, default=500)
    ap.add_argument("--gn", type=int, default=1200)
    ap.add_argument("--rtol", type=float, default=Stall().rtol)
    ap.add_argument("--window", type=float, default=Stall().window)
    a = ap.parse_args()
    torch.set_num_threads(1)
    rule = Stall(window=a.window, rtol=a.rtol)
    problem = Poisson2D()
    ref = problem.reference()
    for label, stall in (("before (stall=None)", None), (f"after ({rule})", rule)):
        net = build_net(problem, "siren", width=24, depth=2, seed=0).double()
        stages = [Adam(a.adam), GaussNewton(a.gn)]
        r = train(problem, net, stages=stages, batch=800, seed=0, reference=ref, progress=False, log_every=10,
                  stall=stall)
        total = r.timings["total"]
        print(f"{label}: total {total:.1f} s, rel_l2 {r.final['rel_l2']:.3e}, steps {r.steps_done}/{r.steps_planned}")
        first = 0
        for s in stages:
            rows = [row for row in r.history if first < row["step"] <= first + s.steps]
            t_start = rows[0]["time"] - (rows[1]["time"] - rows[0]["time"]) if len(rows) > 1 else rows[0]["time"]
            t_end = rows[-1]["time"]
            hit = stalled_at(rows, rule, s.steps, first)
            after = 0.0 if hit is None else t_end - hit["time"]
            where = "never" if hit is None else f"step {hit['step'] - first} of {s.steps}"
            print(f"  {s.name:>12}: {t_end - t_start:7.1f} s, loss stalled at {where}; time after it "
                  f"{after:6.1f} s = {100 * after / total:4.1f}% of the run; final loss {rows[-1]['loss']:.3e}")
            first += s.steps


if __name__ == "__main__":
    main()
