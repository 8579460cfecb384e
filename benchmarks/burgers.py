"""Burgers (nu = 0.01/pi) under Gauss-Newton: a fixed uniform batch, a fixed large batch,
and batches redrawn by the residual (RAD), at equal wall time (issue 31).

    OMP_NUM_THREADS=1 python benchmarks/burgers.py --seconds 600 --jobs 2 --out runs/burgers

Every run trains the same float64 tanh MLP 20 x 3 (3 hidden layers of 20: 921
parameters) on :class:`~pinn_sine.problems.Burgers1D` (initial and boundary points:
1/8 of the interior points each) with ``--adam`` Adam steps (lr 1e-3, cosine), then
Gauss-Newton (dense Levenberg-Marquardt, Nielsen damping) until ``--seconds`` of wall
time are spent, on one thread (the CPU seconds the process got are in the table: on a
shared machine they fall short of the wall time):

* ``gn-uniform``: one fixed uniform batch of 2048 interior points (2560 in all);
* ``gn-8192``: one fixed uniform batch of 8192 interior points (10240 in all);
* ``gn-rad``: 2048 interior points drawn from a pool of 10 x 2048 candidates by the
  residual (RAD, k = ``--rad-k``, c = ``--rad-c``), redrawn with a fresh pool every
  ``--resample`` Gauss-Newton steps (``GaussNewton(adaptive="rad", resample_every=...)``).

The error is the relative L2 error against the exact (Cole-Hopf) solution on the
257 x 257 grid of ``Burgers1D.reference()``, evaluated at every logged Gauss-Newton
step. The table gives the error at the end, its range (min - max) over the last 60 s,
the Gauss-Newton steps, the median step time and the redraws; ``results.csv`` holds
the curves and ``errors_vs_time.png`` draws them.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _parallel import curves_figure, run_all, write_results  # noqa: E402

METHODS = ("gn-uniform", "gn-8192", "gn-rad")
BATCH = {"gn-uniform": 2048, "gn-8192": 8192, "gn-rad": 2048}
WIDTH, DEPTH = 20, 3
FRACTION = 0.125  # initial and boundary points per interior point


def run_one(job: tuple) -> dict:
    method, seed, seconds, adam, resample, k, c, window = job
    torch.set_num_threads(1)
    from pinn_sine import train
    from pinn_sine.nets import MLP, Tanh
    from pinn_sine.optim import Adam, GaussNewton
    from pinn_sine.problems import Burgers1D

    problem = Burgers1D(initial_fraction=FRACTION, boundary_fraction=FRACTION)
    ref = problem.reference()
    net = MLP(2, 1, WIDTH, DEPTH, activation=Tanh(), seed=seed).double()
    options = ({"adaptive": {"name": "rad", "k": k, "c": c}, "resample_every": resample}
               if method == "gn-rad" else {})
    stages = [Adam(adam, lr=1e-3), GaussNewton(10**9, batch=BATCH[method], **options)]
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        result = train(problem, net, stages=stages, batch=2048, seed=seed, reference=ref,
                       log_every=5, eval_every=500, time_limit=seconds, progress=False)
        status, history = "ok", result.history
    except FloatingPointError as err:
        status, history = f"diverged: {str(err)[:80]}", getattr(getattr(err, "result", None), "history", [])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    curve = [(r["time"], r["rel_l2_exact"]) for r in history if "rel_l2_exact" in r]
    gn = [r for r in history if r.get("phase") == "gauss_newton"]
    end = curve[-1][0] if curve else 0.0
    last = [e for t, e in curve if t >= end - window] or [float("nan")]
    return {"method": method, "seed": seed, "status": status, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "params": sum(p.numel() for p in net.parameters()),
            "final": curve[-1][1] if curve else float("nan"), "last_min": min(last), "last_max": max(last),
            "best": min((e for _, e in curve), default=float("nan")),
            "gn_steps": gn[-1]["step"] - adam if gn else 0,
            "gn_step_s": statistics.median([r["step_time"] for r in gn]) if gn else float("nan"),
            "redraws": gn[-1].get("redraws", 0) if gn else 0,
            "final_loss": gn[-1]["loss"] if gn else float("nan"), "curve": curve}


def markdown(rows: list[dict], args) -> str:
    lines = [f"Burgers1D nu = 0.01/pi, tanh MLP {WIDTH}x{DEPTH} ({rows[0]['params']} parameters), float64, "
             f"{args.adam} Adam steps then Gauss-Newton, {args.seconds:g} s wall on 1 thread each "
             f"({args.jobs} at a time); relative L2 error against the exact solution on 257 x 257", "",
             f"| method | seed | batch (interior) | error at {args.seconds:g} s | range over last {args.window:g} s "
             "| max/min | best | GN steps | GN step [s] | redraws | final loss | CPU [s] | status |",
             "|---" * 13 + "|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['seed']} | {BATCH[r['method']]} | {r['final']:.2e} | "
                     f"{r['last_min']:.2e} - {r['last_max']:.2e} | {r['last_max'] / r['last_min']:.1f} | "
                     f"{r['best']:.2e} | {r['gn_steps']} | {r['gn_step_s']:.2f} | {r['redraws']} | "
                     f"{r['final_loss']:.1e} | {r['cpu_s']:.0f} | {r['status']} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    series = [(f"{r['method']} (seed {r['seed']})", *zip(*r["curve"]), {}) for r in rows if r["curve"]]
    curves_figure([("Burgers nu = 0.01/pi, tanh 20x3, float64, 1 thread", series)], path,
                  ylabel="relative L2 error vs exact")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="wall time per run")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (one thread each)")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, of {list(METHODS)}")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--adam", type=int, default=2000, help="Adam steps before Gauss-Newton")
    parser.add_argument("--resample", type=int, default=25, help="gn-rad: Gauss-Newton steps between redraws")
    parser.add_argument("--rad-k", type=float, default=1.0, help="gn-rad: RAD exponent k")
    parser.add_argument("--rad-c", type=float, default=1.0, help="gn-rad: RAD offset c")
    parser.add_argument("--window", type=float, default=60.0, help="seconds at the end over which the range is taken")
    parser.add_argument("--out", type=Path, default=Path("runs/burgers"))
    args = parser.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown methods {unknown}; choose from {list(METHODS)}.")
    seeds = [int(s) for s in args.seeds.split(",")]
    jobs = [(m, s, args.seconds, args.adam, args.resample, args.rad_k, args.rad_c, args.window)
            for s in seeds for m in methods]
    rows = run_all(run_one, jobs, args.jobs, args.seconds,
                   lambda r: f"{r['method']} seed {r['seed']}: {r['final']:.2e} ({r['status']}, {r['gn_steps']} GN steps)")
    write_results(args.out, markdown(rows, args), rows)
    plot(rows, args.out / "errors_vs_time.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
