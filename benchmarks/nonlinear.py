"""Nonlinear PDEs at equal wall time: Adam, Adam + L-BFGS and Gauss-Newton on Burgers and
Allen-Cahn (issue 29).

    OMP_NUM_THREADS=1 python benchmarks/nonlinear.py --seconds 600 --jobs 2 --out runs/nonlinear

Problems (``--problems``), error = relative L2 against the reference over the whole
space-time grid (Burgers: the exact Cole-Hopf solution on 257 x 257; Allen-Cahn: the
Fourier-ETDRK4 solution on 201 x 201, its own error 1.5e-9):

* ``burgers1d``: nu = 0.01/pi, a float64 tanh MLP 20 x 3 (921 parameters); Gauss-Newton
  with RAD redraws every 25 steps (the recipe of ``benchmarks/burgers.py``);
* ``allen-cahn1d``: the jaxpi case with the initial data built in (``constraint="hard"``)
  and the periodic encoding, a float64 SIREN 32 x 3 (first omega 10; 2273 parameters);
  Gauss-Newton on batches of 2048 interior points redrawn every 25 steps.

Methods (``--methods``): ``adam`` (the problem's default rate, cosine over a step count
the time limit cuts), ``adam-lbfgs`` (Adam for ``--adam`` steps, then L-BFGS on a fixed
batch redrawn every 500 iterations until the time is spent), ``gn`` (``--adam`` Adam
steps, then Gauss-Newton). One thread per run; the table gives the error at the end, the
best error logged, the steps and the CPU seconds the run got.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _parallel import curves_figure, run_all, write_results  # noqa: E402

PROBLEMS = ("burgers1d", "allen-cahn1d")
METHODS = ("adam", "adam-lbfgs", "gn")


def _setup(name: str, seed: int):
    from pinn_sine.nets import MLP, Tanh, build_net
    from pinn_sine.problems import AllenCahn1D, Burgers1D

    if name == "burgers1d":
        problem = Burgers1D(initial_fraction=0.125, boundary_fraction=0.125)
        net = MLP(2, 1, 20, 3, activation=Tanh(), seed=seed).double()
        return problem, net, {"adaptive": {"name": "rad", "k": 1.0, "c": 1.0}, "resample_every": 25}
    problem = AllenCahn1D(constraint="hard")
    net = problem.constrain(build_net(problem, "siren", width=32, depth=3, seed=seed).double())
    return problem, net, {"resample_every": 25}


def run_one(job: tuple) -> dict:
    name, method, seed, seconds, adam = job
    torch.set_num_threads(1)
    from pinn_sine import train
    from pinn_sine.optim import LBFGS, Adam, GaussNewton

    problem, net, gn_options = _setup(name, seed)
    ref = problem.reference()
    if method == "adam":
        stages = [Adam(200_000)]
    elif method == "adam-lbfgs":
        stages = [Adam(adam)] + [LBFGS(500, batch=2048) for _ in range(200)]
    else:
        stages = [Adam(adam), GaussNewton(10**9, batch=2048, **gn_options)]
    t0, c0 = time.perf_counter(), time.process_time()
    status = "ok"
    try:
        result = train(problem, net, stages=stages, batch=2048, seed=seed, reference=ref, progress=False,
                       time_limit=seconds, log_every=25, eval_every=250, stall=None)
    except FloatingPointError as err:
        result, status = err.result, f"diverged: {str(err)[:50]}"
    errors = [(r["time"], r["rel_l2"]) for r in result.history if "rel_l2" in r]
    final = result.final.get("rel_l2", errors[-1][1] if errors else float("nan"))
    return {"problem": name, "method": method, "seed": seed, "final": final,
            "best": min(e for _, e in errors) if errors else float("nan"), "steps": result.steps_done,
            "params": sum(p.numel() for p in net.parameters()), "wall_s": time.perf_counter() - t0,
            "cpu_s": time.process_time() - c0, "status": status, "curve": errors}


def markdown(rows: list[dict], args) -> str:
    lines = [f"Nonlinear PDEs, {args.seconds:g} s wall per run on one thread ({args.jobs} at a time), float64; "
             f"relative L2 error against the reference over the space-time grid", "",
             "| problem | net (parameters) | method | seed | error at the end | best logged | steps | CPU [s] | "
             "status |", "|---" * 9 + "|"]
    for r in rows:
        net = "tanh 20x3" if r["problem"] == "burgers1d" else "SIREN 32x3, hard, periodic"
        lines.append(f"| {r['problem']} | {net} ({r['params']}) | {r['method']} | {r['seed']} | {r['final']:.2e} | "
                     f"{r['best']:.2e} | {r['steps']} | {r['cpu_s']:.0f} | {r['status']} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    curves_figure([(name, [(f"{r['method']} (seed {r['seed']})", *zip(*r["curve"]), {}) for r in rows
                           if r["problem"] == name and r["curve"]]) for name in PROBLEMS], path,
                  ylabel="relative L2 error vs reference")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="wall time per run")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (one thread each)")
    parser.add_argument("--problems", default=",".join(PROBLEMS), help=f"comma-separated, of {list(PROBLEMS)}")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, of {list(METHODS)}")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--adam", type=int, default=1000, help="Adam steps before L-BFGS or Gauss-Newton")
    parser.add_argument("--out", type=Path, default=Path("runs/nonlinear"))
    args = parser.parse_args(argv)
    problems = [p for p in args.problems.split(",") if p]
    methods = [m for m in args.methods.split(",") if m]
    bad = [p for p in problems if p not in PROBLEMS] + [m for m in methods if m not in METHODS]
    if bad:
        parser.error(f"unknown problems/methods {bad}; choose from {list(PROBLEMS)} and {list(METHODS)}.")
    jobs = [(p, m, int(s), args.seconds, args.adam) for p in problems for m in methods
            for s in args.seeds.split(",")]
    rows = run_all(run_one, jobs, args.jobs, args.seconds,
                   lambda r: f"{r['problem']} {r['method']} seed {r['seed']}: {r['final']:.2e} "
                             f"(best {r['best']:.2e}, {r['steps']} steps, {r['status']})")
    write_results(args.out, markdown(rows, args), rows)
    plot(rows, args.out / "errors_vs_time.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
