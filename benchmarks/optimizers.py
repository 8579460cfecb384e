"""Error against the exact solution vs wall time: Adam, Adam + L-BFGS and Adam +
Gauss-Newton on the same network, points, seed and machine (issue 18).

    OMP_NUM_THREADS=1 python benchmarks/optimizers.py --problems poisson2d,helmholtz2d --seconds 600 \\
        --seeds 0,1 --jobs 2 --out runs/optimizers
    OMP_NUM_THREADS=1 python benchmarks/optimizers.py --problems wave1d --seconds 1200 --seeds 0,1 --jobs 2
    OMP_NUM_THREADS=1 python benchmarks/optimizers.py --problems poisson2d --seeds 0 --jobs 2 \\
        --methods adam+gn,adam+gn-cg,adam+gn-sketched,adam+gn-tr --width-scalable 64

Every run trains a float64 SIREN of the problem's configuration below (``CONFIG``) for
``--seconds`` of wall time on one thread; the runs of one invocation go ``--jobs`` at a
time, so the methods of a seed run side by side on the same machine load. The
methods:

* ``adam``: Adam alone, its cosine schedule sized to the budget from a short timing
  run (the step count it reaches is reported);
* ``adam+lbfgs``: ``CONFIG.adam`` Adam steps, then L-BFGS on one fixed batch of
  ``CONFIG.batch`` points until the budget is spent;
* ``adam+gn``: the same Adam steps, then :class:`~pinn_sine.optim.GaussNewton` on the
  same fixed batch until the budget is spent;
* ``adam+gn-accel``: the same with the dense descent's geodesic acceleration
  (``descent={"name": "dense", "acceleration": True}``);
* ``adam+gn-ens``: ``adam+gn-accel`` with a :class:`~pinn_sine.callbacks.SnapshotEnsemble`:
  the reported error is that of the mean, as functions, of the fits of the last
  ``--ensemble`` batches (needs ``--gn-resample``); its curve is the last iterate's, with
  the ensemble's error as its last point;
* ``adam+gn-cg``, ``adam+gn-sketched``, ``adam+gn-dual``, ``adam+gn-tr``: the same with
  the Gauss-Newton stage composed of other parts (``GN_OPTIONS``: the matrix-free CG
  descent with the Nystrom preconditioner, the doubly sketched descent, the dual
  descent, the trust-region search on the dense descent); ``--gn-options`` overrides
  their parts. The scalable descents (``SCALABLE``: cg, sketched, dual) may train a
  wider network (``--width-scalable``/``--depth-scalable``): each row records its
  parameter count.

The error is the relative L2 error against the exact solution on a 101^d grid (the
problem's FD reference where there is no exact solution), logged during training, so
the curves give the error at every time. Prints a markdown table (median over the seeds
of the final error, the best of the two baselines, and their ratio to Gauss-Newton) and
writes ``results.csv``, ``results.md`` and ``errors_vs_time.png`` to ``--out``.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from _parallel import run_all, write_results


@dataclass(frozen=True)
class Config:
    """A problem's benchmark set-up: a small SIREN (a few thousand parameters keep the
    Gauss-Newton system at a few thousand unknowns, which is what made ENGD work) and
    the fixed batch of the second-order stages."""

    width: int
    depth: int
    first_omega: float
    hidden_omega: float
    batch: int          # interior points of the L-BFGS / Gauss-Newton batch (and of Adam's draws)
    adam: int           # Adam steps before L-BFGS / Gauss-Newton
    resample: int | None = None  # Gauss-Newton: a fresh batch every this many steps (None: one batch)
    problem_kwargs: tuple = ()
    problem: str | None = None  # the registry name (None: the CONFIG key)


def multiscale_solution(x, y):
    """Poisson2D's two modes plus sin(4 pi x) sin(8 pi y) and sin(12 pi x) sin(16 pi y): the
    "poisson2d-multiscale" case (module-level, so the reference cache can key on it)."""
    from pinn_sine.problems.poisson import two_mode_solution

    return (two_mode_solution(x, y) + torch.sin(4 * math.pi * x) * torch.sin(8 * math.pi * y)
            + torch.sin(12 * math.pi * x) * torch.sin(16 * math.pi * y))


# Chosen by 400 s Gauss-Newton runs on this machine (one thread, seed 0): Poisson2D 32x2
# on 2000 points 3.0e-7, 24x2 on 1500 3.8e-7, 40x2 1.3e-6 and 48x2 1.3e-5 (fewer steps:
# a step costs about N p^2), first omega 8 instead of 4: 1.2e-6; Wave1D 32x3 overfits a
# fixed batch (loss 1e-10, error 1.2e-4), a fresh batch every 50 steps: 3.4e-5.
CONFIG = {
    "poisson2d": Config(32, 2, 4.0, 30.0, 2000, 500),
    "helmholtz2d": Config(32, 2, 4.0, 30.0, 2000, 500),
    "wave1d": Config(32, 3, 5.0, 30.0, 2000, 1000, resample=50),
    "wave2d": Config(32, 3, 6.0, 30.0, 2000, 1000, resample=50),
    "helmholtz-point-source": Config(32, 3, 10.0, 30.0, 2000, 1000),
    # not tuned: the top mode is 16 pi on [-1, 1] (first omega 16, as 4 for the default's
    # 4 pi) and 4000 points give about 4 per half-wavelength of it
    "poisson2d-multiscale": Config(48, 2, 16.0, 30.0, 4000, 1000, problem="poisson2d",
                                   problem_kwargs=(("u", multiscale_solution),)),
}
METHODS = ("adam", "adam+lbfgs", "adam+gn", "adam+gn-accel", "adam+gn-ens", "adam+gn-cg", "adam+gn-sketched",
           "adam+gn-dual", "adam+gn-tr")
# The Gauss-Newton parts of each adam+gn* method (GaussNewton keywords; --gn-options
# overrides them), from benchmarks/gn_step.py (p = 1k-10k, N = 16k): Nystrom-preconditioned
# CG reached rtol 1e-6 in 49-83 iterations at p = 1k-2.5k (diagonal: 100 iterations to
# 2e-3-7e-2), so 50 iterations is a mostly converged step; the sketched step with
# sampled rows was often no descent direction (gain -inf), with all rows it is a step in
# a random half of the parameters at p = 4.4k.
GN_OPTIONS = {
    "adam+gn": {},
    "adam+gn-accel": {"descent": {"name": "dense", "acceleration": True}},
    "adam+gn-ens": {"descent": {"name": "dense", "acceleration": True}},
    "adam+gn-cg": {"descent": {"name": "cg", "preconditioner": "nystrom", "rank": 50},
                   "solver": {"name": "cg", "max_iter": 50}},
    "adam+gn-sketched": {"descent": {"name": "sketched", "rows": 4096, "cols": 2048}},
    "adam+gn-dual": {"descent": {"name": "dual", "momentum": 0.0}},
    "adam+gn-tr": {"search": "trust_region"},
}
# the methods whose descents scale past the dense one: --width-scalable/--depth-scalable
SCALABLE = ("adam+gn-cg", "adam+gn-sketched", "adam+gn-dual")


def make_problem(name: str):
    from pinn_sine.problems import PROBLEMS

    return PROBLEMS[CONFIG[name].problem or name](**dict(CONFIG[name].problem_kwargs))


def exact_reference(problem, n: int = 101):
    """The exact solution on an n^d grid as a ReferenceField (the FD reference where the
    problem has no exact solution)."""
    from pinn_sine.validation.evaluate import exact_on_grid
    from pinn_sine.validation.reference import ReferenceField

    exact = problem.exact_solution
    if exact is None:
        return problem.reference(), "reference"
    coords = problem.grid(n)
    template = ReferenceField(problem=problem.name, params={"grid": n}, coords=coords,
                              fields={"u": np.zeros(tuple(len(c) for c in coords.values()))}, solver="exact",
                              order=0, spacing={k: float(c[1] - c[0]) for k, c in coords.items()})
    return ReferenceField(problem=problem.name, params={"grid": n}, coords=coords,
                          fields=exact_on_grid(exact, template), solver="exact", order=0,
                          spacing=template.spacing), "exact"


def build_net(problem, cfg: Config, seed: int):
    from pinn_sine.nets import MLP, Sine

    return MLP(problem.in_dim, problem.out_dim, cfg.width, cfg.depth, activation=Sine(cfg.hidden_omega),
               first_omega=cfg.first_omega, seed=seed).double()


def stages_for(method: str, problem, cfg: Config, seed: int, seconds: float, gn_options: dict) -> list:
    from pinn_sine import train
    from pinn_sine.optim import LBFGS, Adam, GaussNewton

    if method == "adam":
        probe = build_net(problem, cfg, seed)
        t = train(problem, probe, stages=[Adam(20)], batch=cfg.batch, seed=seed, progress=False, log_every=20)
        steps = max(100, int(0.9 * seconds / t.timings["step_median"]))
        return [Adam(steps)]
    tail = (LBFGS(10**9, batch=cfg.batch) if method == "adam+lbfgs"
            else GaussNewton(10**9, batch=cfg.batch, resample_every=cfg.resample, **gn_options))
    return [Adam(cfg.adam), tail]


def run_one(job: tuple) -> dict:
    """One (problem, method, seed) run on one thread; returns its row and curve."""
    name, method, seed, seconds, overrides, gn_options, keep = job
    torch.set_num_threads(1)
    problem = make_problem(name)
    cfg = replace(CONFIG[name], **overrides)
    ref, against = exact_reference(problem)
    stages = stages_for(method, problem, cfg, seed, seconds, gn_options)
    net = build_net(problem, cfg, seed)
    from pinn_sine import train
    from pinn_sine.callbacks import SnapshotEnsemble
    from pinn_sine.validation.evaluate import evaluate

    snapshots = [SnapshotEnsemble(cfg.resample, keep)] if method == "adam+gn-ens" else []
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        result = train(problem, net, stages=stages, batch=cfg.batch, seed=seed, reference=ref, eval_every=25,
                       log_every=25, time_limit=seconds, progress=False, callbacks=snapshots)
        status = "ok"
    except FloatingPointError as err:  # report a diverged run instead of losing the table
        result, status = None, f"diverged: {err}"
    curve = [] if result is None else [(r["time"], r["rel_l2"]) for r in result.history if "rel_l2" in r]
    last_iterate = curve[-1][1] if curve else float("nan")
    if snapshots and result is not None:  # the ensemble's error closes the curve (its build counts in the time)
        ens = snapshots[0].ensemble()
        curve.append((time.perf_counter() - t0, evaluate(ens, ref, prediction=problem.predict(ens, ref))["rel_l2"]))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    errors = [e for _, e in curve]
    gn = [] if result is None else [r for r in result.history if r.get("phase") == "gauss_newton"]

    def gn_median(key, reduce=statistics.median):  # over the logged Gauss-Newton steps (every 25th)
        vals = [r[key] for r in gn if key in r]
        return reduce(vals) if vals else float("nan")
    return {"problem": name, "method": method, "seed": seed, "against": against, "status": status,
            "config": f"{cfg.width}x{cfg.depth}, batch {cfg.batch}, {cfg.adam} Adam, GN resample {cfg.resample}"
                      + (f", GN {json.dumps(gn_options, sort_keys=True)}" if gn_options else ""),
            "params": sum(p.numel() for p in net.parameters()), "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "steps": result.history[-1]["step"] if result and result.history else 0,
            "final": errors[-1] if errors else float("nan"), "best": min(errors) if errors else float("nan"),
            "gn_step_s": gn_median("step_time"), "gn_accepted": gn_median("accepted", statistics.fmean),
            "cg_iterations": gn_median("cg_iterations"), "cg_residual": gn_median("cg_residual"),
            "last_iterate": last_iterate, "members": len(snapshots[0].snapshots) if snapshots else 0,
            "curve": curve}


def short(method: str) -> str:
    """adam+lbfgs -> lbfgs, adam+gn-cg -> gn-cg (the steps column's names)."""
    return method.removeprefix("adam+")


def markdown(rows: list[dict], seconds: float) -> str:
    """One column per method (the three original ones always; the others where they ran);
    a method whose network differs from the problem's first row says its parameter count."""
    ran = {r["method"] for r in rows}
    shown = [m for m in METHODS if m in METHODS[:3] or m in ran]
    lines = [f"Relative L2 error after {seconds:g} s (median over seeds; error against the exact solution, or "
             "the FD reference where marked)", "",
             f"| problem | params | {' | '.join(shown)} | best baseline / gn | "
             f"steps ({', '.join(short(m) for m in shown)}) |", "|---" * (len(shown) + 4) + "|"]
    for name in dict.fromkeys(r["problem"] for r in rows):
        mine = [r for r in rows if r["problem"] == name]
        med = {m: statistics.median([r["final"] for r in mine if r["method"] == m] or [float("nan")])
               for m in shown}
        steps = {m: statistics.median([r["steps"] for r in mine if r["method"] == m] or [0]) for m in shown}
        params = {r["method"]: r["params"] for r in mine}
        base_p = mine[0]["params"]
        baselines = [med[m] for m in ("adam", "adam+lbfgs") if not math.isnan(med[m])]
        base = min(baselines) if baselines else float("nan")  # the best baseline that ran
        ratio = base / med["adam+gn"] if med["adam+gn"] > 0 else float("nan")
        tag = "" if mine[0]["against"] == "exact" else " (vs FD ref)"
        cells = [f"{med[m]:.2e}" + (f" (p {params[m]})" if params.get(m, base_p) != base_p else "") for m in shown]
        lines.append(f"| {name}{tag} | {base_p} | {' | '.join(cells)} | "
                     f"{'-' if math.isnan(ratio) else f'{ratio:.0f}x'} | "
                     f"{', '.join(f'{steps[m]:.0f}' for m in shown)} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["problem"] for r in rows))
    fig, axes = plt.subplots(1, len(names), figsize=(5.2 * len(names), 4.2), squeeze=False)
    colours = {"adam": "tab:blue", "adam+lbfgs": "tab:orange", "adam+gn": "tab:green", "adam+gn-accel": "tab:cyan",
               "adam+gn-ens": "tab:pink",
               "adam+gn-cg": "tab:red",
               "adam+gn-sketched": "tab:purple", "adam+gn-dual": "tab:brown", "adam+gn-tr": "tab:olive"}
    for ax, name in zip(axes[0], names):
        for r in (r for r in rows if r["problem"] == name and r["curve"]):
            t, e = zip(*r["curve"])
            ax.semilogy(t, e, color=colours[r["method"]], alpha=0.85, lw=1.3,
                        label=f"{r['method']}, p {r['params']} (seed {r['seed']})")
        ax.set_title(f"{name}: SIREN, float64, 1 thread")
        ax.set_xlabel("wall time [s]")
        ax.set_ylabel("relative L2 error vs exact" if rows[0]["against"] == "exact" else "relative L2 error")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--problems", default="poisson2d,helmholtz2d",
                        help=f"comma-separated from {sorted(CONFIG)}")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated from {list(METHODS)}")
    parser.add_argument("--seconds", type=float, default=600.0, help="wall-clock budget of every run")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (one thread each)")
    parser.add_argument("--out", default="runs/optimizers")
    parser.add_argument("--width", type=int, default=None, help="override CONFIG's width")
    parser.add_argument("--depth", type=int, default=None, help="override CONFIG's depth")
    parser.add_argument("--batch", type=int, default=None, help="override CONFIG's batch")
    parser.add_argument("--adam-steps", type=int, default=None, help="override CONFIG's Adam steps before L-BFGS/GN")
    parser.add_argument("--first-omega", type=float, default=None, help="override CONFIG's first-layer omega")
    parser.add_argument("--gn-resample", type=int, default=None, help="override CONFIG's Gauss-Newton resampling")
    parser.add_argument("--width-scalable", type=int, default=None,
                        help=f"the width of the scalable Gauss-Newton methods {list(SCALABLE)} (default: --width)")
    parser.add_argument("--depth-scalable", type=int, default=None,
                        help=f"the depth of {list(SCALABLE)} (default: --depth)")
    parser.add_argument("--ensemble", type=int, default=8,
                        help="adam+gn-ens: the batch fits averaged (the last this many)")
    parser.add_argument("--gn-options", default=None,
                        help='JSON {method: {GaussNewton keyword: value}} replacing GN_OPTIONS\' keys, e.g. '
                             '\'{"adam+gn-cg": {"solver": {"name": "cg", "max_iter": 100}}}\'')
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in (("width", args.width), ("depth", args.depth), ("batch", args.batch),
                                   ("adam", args.adam_steps), ("first_omega", args.first_omega),
                                   ("resample", args.gn_resample)) if v is not None}
    problems = args.problems.split(",")
    methods = args.methods.split(",")
    for p in problems:
        if p not in CONFIG:
            parser.error(f'Invalid problem "{p}". Must be one of {sorted(CONFIG)}.')
    for m in methods:
        if m not in METHODS:
            parser.error(f'Invalid method "{m}". Must be one of {list(METHODS)}.')
    if not args.seconds > 0 or args.jobs < 1 or args.ensemble < 1:
        parser.error("--seconds must be > 0, --jobs >= 1 and --ensemble >= 1.")
    seeds = [int(s) for s in args.seeds.split(",")]
    gn_options = {m: dict(o) for m, o in GN_OPTIONS.items()}
    if args.gn_options is not None:
        try:
            given = json.loads(args.gn_options)
        except json.JSONDecodeError as err:
            parser.error(f"--gn-options is not JSON: {err}")
        if not isinstance(given, dict) or not all(isinstance(v, dict) for v in given.values()):
            parser.error('--gn-options must be a JSON object {method: {keyword: value}}.')
        for m, o in given.items():
            if m not in GN_OPTIONS:
                parser.error(f'--gn-options: invalid method "{m}". Must be one of {list(GN_OPTIONS)}.')
            gn_options[m].update(o)
    from pinn_sine.optim import GaussNewton

    for p in problems:  # refuse a bad part now, not in a worker after the Adam stage
        cfg = replace(CONFIG[p], **overrides)
        for m in methods:
            if m == "adam+gn-ens" and cfg.resample is None:
                parser.error(f"adam+gn-ens averages the fits of redrawn batches; {p} keeps one batch: give "
                             "--gn-resample (e.g. 50).")
            if m in gn_options:
                try:
                    GaussNewton(1, batch=cfg.batch, resample_every=cfg.resample, **gn_options[m])
                except (TypeError, ValueError) as err:
                    parser.error(f"{m}: {err}")
    scalable = {k: v for k, v in (("width", args.width_scalable), ("depth", args.depth_scalable)) if v is not None}
    jobs = [(p, m, s, args.seconds, {**overrides, **(scalable if m in SCALABLE else {})}, gn_options.get(m, {}),
             args.ensemble) for p in problems for s in seeds for m in methods]
    rows = run_all(run_one, jobs, args.jobs, args.seconds, lambda row: (
        f"{row['problem']:>24} {row['method']:>11} seed {row['seed']} ({row['config']}): final "
        f"{row['final']:.3e}"
        + (f" (mean of {row['members']} batch fits; last iterate {row['last_iterate']:.3e})" if row["members"] else "")
        + f", best {row['best']:.3e}, {row['steps']} steps, {row['wall_s']} s, {row['cpu_s']} CPU s "
        f"({row['status']}); GN "
        f"median step {row['gn_step_s']:.3g} s, accepted {row['gn_accepted']:.2g}, CG {row['cg_iterations']:.3g} "
        f"iterations to {row['cg_residual']:.2g}"))
    out = Path(args.out)
    write_results(out, markdown(rows, args.seconds), rows)
    plot(rows, out / "errors_vs_time.png")
    print(f"\nwrote {out}/results.md, results.csv, errors_vs_time.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
