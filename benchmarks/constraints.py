"""Hard vs soft boundary and initial conditions at equal wall time (issue 17).

    OMP_NUM_THREADS=1 python benchmarks/constraints.py --problems poisson2d,helmholtz2d,wave1d,wave2d \\
        --activations siren,tanh --seconds 120 --seeds 0,1 --jobs 2 --out runs/constraints

Every run trains one network of the problem's configuration below (``CONFIG``; SIREN
with the problem's first-layer omega and hidden omega 30, or tanh with Glorot weights)
for ``--seconds`` of wall time on one thread, under ``constraint="soft"`` (the data as
loss terms) or ``"hard"`` (the data built into the network, ``problem.constrain(net)``,
:mod:`pinn_sine.constraints`). The soft and the hard run of one (problem, activation,
seed) are queued next to each other, so with ``--jobs 2`` they run side by side on the
same machine load; both draw the same interior points (the seed's sampler). Methods
(``--methods``):

* ``adam``: Adam alone at the problem's learning rate, its cosine schedule sized to the
  budget from a short timing run of the same network (the step count is reported);
* ``adam+lbfgs``: ``CONFIG.adam`` Adam steps, then L-BFGS on one fixed batch of
  ``CONFIG.batch`` points until the budget is spent;
* ``adam+gn``: the same with Gauss-Newton instead of L-BFGS, on the smaller
  ``gn_width x gn_depth`` net in float64 (whatever ``--dtype`` says).

The error is the final relative L2 error against the exact solution on the FD
reference's grid (``evaluate(net, ref, exact=problem.exact_solution)["rel_l2_exact"]``),
against the FD reference itself where the problem has no exact solution (Wave2D). Prints
a markdown table (median over the seeds, soft / hard ratio) and writes ``results.md``
and ``results.csv`` (one row per run) to ``--out``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from _parallel import run_all, write_results


@dataclass(frozen=True)
class Config:
    """A problem's benchmark set-up: the network and the batches."""

    width: int
    depth: int
    batch: int          # interior points per Adam draw and of the fixed L-BFGS batch
    adam: int           # Adam steps before L-BFGS or Gauss-Newton
    gn_width: int = 32  # adam+gn trains a smaller net in float64 (a Gauss-Newton step costs N p^2)
    gn_depth: int = 2


CONFIG = {
    "poisson2d": Config(64, 3, 1024, 1000),
    "helmholtz2d": Config(64, 3, 1024, 1000),
    "wave1d": Config(64, 3, 2048, 2000),
    "wave2d": Config(64, 3, 2048, 2000),
}
ACTIVATIONS = ("siren", "tanh")
CONSTRAINTS = ("soft", "hard")
METHODS = ("adam", "adam+lbfgs", "adam+gn")


def make_problem(name: str, constraint: str):
    from pinn_sine.problems import PROBLEMS

    return PROBLEMS[name](constraint=constraint)


def build_net(problem, activation: str, cfg: Config, seed: int, dtype: torch.dtype, method: str = "adam"):
    """The inner network (an MLP) and the one to train, ``problem.constrain(inner)``;
    ``adam+gn`` gets the smaller (gn_width x gn_depth) net in float64."""
    from pinn_sine.nets import MLP, Sine, Tanh

    width, depth = (cfg.gn_width, cfg.gn_depth) if method == "adam+gn" else (cfg.width, cfg.depth)
    if method == "adam+gn":
        dtype = torch.float64
    if activation == "siren":
        inner = MLP(problem.in_dim, problem.out_dim, width, depth, activation=Sine(30.0),
                    first_omega=problem.default_first_omega, seed=seed)
    else:
        inner = MLP(problem.in_dim, problem.out_dim, width, depth, activation=Tanh(), seed=seed)
    return problem.constrain(inner.to(dtype))


def stages_for(method: str, problem, activation: str, cfg: Config, seed: int, seconds: float,
               dtype: torch.dtype) -> list:
    from pinn_sine import train
    from pinn_sine.optim import LBFGS, Adam, GaussNewton

    if method == "adam":
        probe = build_net(problem, activation, cfg, seed, dtype)
        t = train(problem, probe, stages=[Adam(20)], batch=cfg.batch, seed=seed, progress=False, log_every=20)
        return [Adam(max(100, int(0.95 * seconds / t.timings["step_median"])))]
    if method == "adam+gn":
        return [Adam(cfg.adam), GaussNewton(10**9, batch=cfg.batch)]
    return [Adam(cfg.adam), LBFGS(10**9, batch=cfg.batch)]


def run_one(job: tuple) -> dict:
    """One (problem, activation, constraint, method, seed) run on one thread."""
    name, activation, constraint, method, seed, seconds, dtype_name = job
    torch.set_num_threads(1)
    from pinn_sine import train
    from pinn_sine.validation.evaluate import evaluate

    dtype = getattr(torch, dtype_name)
    problem = make_problem(name, constraint)
    cfg = CONFIG[name]
    ref = problem.reference()
    exact = problem.exact_solution
    stages = stages_for(method, problem, activation, cfg, seed, seconds, dtype)
    net = build_net(problem, activation, cfg, seed, dtype, method)
    t0 = time.perf_counter()
    try:
        result = train(problem, net, stages=stages, batch=cfg.batch, seed=seed, time_limit=seconds,
                       log_every=100, progress=False)
        status = "ok"
    except FloatingPointError as err:  # report a diverged run instead of losing the table
        result, status = None, f"diverged: {err}"
    wall = time.perf_counter() - t0
    error = float("nan")
    if result is not None:
        metrics = evaluate(net, ref, prediction=problem.predict(net, ref), exact=exact)
        error = metrics["rel_l2_exact"] if exact is not None else metrics["rel_l2"]
    return {"problem": name, "activation": activation, "constraint": constraint, "method": method, "seed": seed,
            "against": "exact" if exact is not None else "reference", "status": status,
            "params": sum(p.numel() for p in net.parameters()), "wall_s": round(wall, 1),
            "steps": result.history[-1]["step"] if result and result.history else 0,
            "adam_steps": stages[0].steps, "rel_l2": error}


def markdown(rows: list[dict], seconds: float) -> str:
    lines = [f"Relative L2 error after {seconds:g} s on one thread (median over seeds; against the exact "
             "solution, or the FD reference where marked)", "",
             "| problem | activation | method | soft | hard | soft / hard | steps (soft, hard) | seeds |",
             "|---|---|---|---|---|---|---|---|"]
    keys = dict.fromkeys((r["problem"], r["activation"], r["method"]) for r in rows)
    for name, act, method in keys:
        mine = [r for r in rows if (r["problem"], r["activation"], r["method"]) == (name, act, method)]
        med = {c: statistics.median([r["rel_l2"] for r in mine if r["constraint"] == c] or [float("nan")])
               for c in CONSTRAINTS}
        steps = {c: statistics.median([r["steps"] for r in mine if r["constraint"] == c] or [0]) for c in CONSTRAINTS}
        ratio = med["soft"] / med["hard"] if med["hard"] > 0 else float("nan")
        tag = "" if mine[0]["against"] == "exact" else " (vs FD ref)"
        seeds = len({r["seed"] for r in mine})
        lines.append(f"| {name}{tag} | {act} | {method} | {med['soft']:.2e} | {med['hard']:.2e} | {ratio:.2g}x | "
                     f"{steps['soft']:.0f}, {steps['hard']:.0f} | {seeds} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--problems", default=",".join(CONFIG), help=f"comma-separated from {list(CONFIG)}")
    parser.add_argument("--activations", default=",".join(ACTIVATIONS),
                        help=f"comma-separated from {list(ACTIVATIONS)}")
    parser.add_argument("--methods", default="adam+lbfgs", help=f"comma-separated from {list(METHODS)}")
    parser.add_argument("--seconds", type=float, default=120.0, help="wall-clock budget of every run")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (one thread each)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--out", default="runs/constraints")
    args = parser.parse_args(argv)
    problems, activations, methods = (args.problems.split(","), args.activations.split(","),
                                      args.methods.split(","))
    for values, valid, what in ((problems, CONFIG, "problem"), (activations, ACTIVATIONS, "activation"),
                                (methods, METHODS, "method")):
        for v in values:
            if v not in valid:
                parser.error(f'Invalid {what} "{v}". Must be one of {list(valid)}.')
    if not args.seconds > 0 or args.jobs < 1:
        parser.error("--seconds must be > 0 and --jobs >= 1.")
    seeds = [int(s) for s in args.seeds.split(",")]
    # Soft and hard of one (problem, activation, method, seed) next to each other: they run together.
    jobs = [(p, a, c, m, s, args.seconds, args.dtype)
            for p in problems for a in activations for m in methods for s in seeds for c in CONSTRAINTS]
    # References first, once, in this process (one file per problem for both constraints).
    for p in problems:
        make_problem(p, "soft").reference()
    rows = run_all(run_one, jobs, args.jobs, args.seconds, lambda row: (
        f"{row['problem']:>12} {row['activation']:>5} {row['constraint']:>4} {row['method']:>10} seed "
        f"{row['seed']}: rel L2 {row['rel_l2']:.3e}, {row['steps']} steps, {row['wall_s']} s ({row['status']})"))
    out = Path(args.out)
    write_results(out, markdown(rows, args.seconds), rows)
    print(f"\nwrote {out}/results.md, results.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
