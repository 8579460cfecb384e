"""Marching in time (issue 27): one network over the whole interval against K time windows
trained one after the other (:func:`pinn_sine.march`), at equal wall time.

    OMP_NUM_THREADS=1 python benchmarks/marching.py --cases wave1d --windows 1,4 --seconds 600 --seeds 0,1 \\
        --jobs 2 --out runs/marching-wave1d
    OMP_NUM_THREADS=1 python benchmarks/marching.py --cases heat --windows 1,2 --seconds 300 --seeds 0,1 --jobs 2
    OMP_NUM_THREADS=1 python benchmarks/marching.py --cases wave2d,wave2d-absorbing --windows 1,4 --seconds 1200
    OMP_NUM_THREADS=1 python benchmarks/marching.py --cases allen-cahn --windows 1,4 --seconds 1200 --seeds 0
    OMP_NUM_THREADS=1 python benchmarks/marching.py --cases heat --windows 4 --set growth=2.0 --seconds 300

Every run trains a SIREN of the case's configuration (``CASES``) with the case's stages
in every window (float64 Adam, then Gauss-Newton on a batch redrawn every ``resample``
steps until the budget is spent; the "-adam" cases float32 Adam alone at a constant
learning rate; the march's ``time_limit`` is shared, each window taking what is left over
the windows left), on one thread; ``--jobs`` runs go side by
side. K = 1 is ``train`` on the whole interval (a march of one window is exactly that).

The error is the relative L2 error of the final (piecewise) network against the exact
solution on the reference grid where the problem has one (Wave1D, heat), else against
the finite-difference reference, whose own error estimate is printed beside it (it must
be 100x smaller for the number to mean anything). Prints a markdown table (median over
the seeds, the error of each seed, steps, and the ratio of one window's error to K
windows') and writes ``results.csv``, ``results.md`` and ``errors_vs_time.png`` (each
window's error against its own reference as it trains, and the final error of the whole
run as a marker) to ``--out``.
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path

import torch
from _parallel import curves_figure, run_all, write_results

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Case:
    """A benchmark case: the problem, the SIREN and the stages of every window."""

    problem: str                 # "wave1d", "wave2d", "allen-cahn1d" (hard, periodic) or "heat" (examples/heat1d.py)
    width: int
    depth: int
    first_omega: float
    adam: int                    # Adam steps of the first window
    later_adam: int              # Adam steps of the later windows (they start warm)
    batch: int                   # interior points of the Adam draws and the Gauss-Newton batch
    resample: int | None         # Gauss-Newton: a fresh batch every this many steps
    lr: float = 1e-3
    gn_steps: int | None = None  # with final_batch: Gauss-Newton steps on ``batch`` before the final stage
    final_batch: int | None = None  # the final Gauss-Newton stage's batch (None: one Gauss-Newton stage)
    problem_kwargs: tuple = ()
    resolution: int | None = None
    gauss_newton: bool = True    # False: Adam alone at a constant learning rate until the budget is spent
    dtype: str = "float64"
    growth: float = 1.0          # each window's length over the one before (march(growth=))
    causal_eps: float | None = None  # causal weighting in time inside each window (CausalWeights(eps, 16))


# Wave1D, chosen by 600 s runs of K = 4 (seed 0; error against the exact solution): the
# configuration of benchmarks/optimizers.py (32x3, 2000 points, 1000 Adam steps) 3.4e-4;
# 1000 points, 300 Adam steps (100 in later windows) 3.1e-5; and a 24x3 net 1.4e-5
# (first omega 5) and 1.1e-5 (first omega 10: a window spans a quarter of the time, so a
# higher first-layer frequency); a final stage on 3000 points 1.7e-5, K = 8 3.4e-5.
# Wave2D: the configuration of benchmarks/optimizers.py (a fresh batch every 50 steps: a
# fixed one is overfit). Heat: a smaller net (the solution is one decaying mode).
CASES = {
    "wave1d": Case("wave1d", 24, 3, 10.0, 300, 100, 1000, 50),
    "heat": Case("heat", 24, 2, 2.0, 500, 100, 1000, 50, problem_kwargs=(("nu", 0.1), ("t_max", 1.0)),
                 resolution=65),
    "wave2d": Case("wave2d", 32, 3, 6.0, 1000, 200, 2000, 50),
    # Allen-Cahn: the recipe of benchmarks/nonlinear.py (hard initial data, periodic
    # encoding, SIREN 32x3 at first omega 10, Adam at the problem's 3e-4, Gauss-Newton on
    # 2048 points redrawn every 25 steps); windows after the first from the previous
    # window's network (NetworkField)
    "allen-cahn": Case("allen-cahn1d", 32, 3, 10.0, 1000, 200, 2048, 25, lr=3e-4),
    "wave2d-absorbing": Case("wave2d", 32, 3, 6.0, 1000, 200, 2000, 50, problem_kwargs=(("boundary", "absorbing"),)),
    # Adam alone on the CLI's default SIREN for Wave2D (128x3, float32, first omega 15, lr 1e-4)
    "wave2d-adam": Case("wave2d", 128, 3, 15.0, 0, 0, 2048, None, lr=1e-4, gauss_newton=False, dtype="float32"),
    "wave2d-absorbing-adam": Case("wave2d", 128, 3, 15.0, 0, 0, 2048, None, lr=1e-4, gauss_newton=False,
                                  dtype="float32", problem_kwargs=(("boundary", "absorbing"),)),
}


def heat_class():
    spec = importlib.util.spec_from_file_location("heat1d_example", ROOT / "examples" / "heat1d.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Heat1D


def build_problem(case: Case):
    from pinn_sine.problems import AllenCahn1D, Wave1D, Wave2D

    if case.problem == "allen-cahn1d":
        return AllenCahn1D(constraint="hard", **dict(case.problem_kwargs))
    cls = {"wave1d": Wave1D, "wave2d": Wave2D}.get(case.problem) or heat_class()
    return cls(**dict(case.problem_kwargs))


def run_one(job: tuple) -> dict:
    """One march of ``seconds`` (K windows, one seed) in this process, on one thread."""
    name, windows, seed, seconds, overrides = job
    torch.set_num_threads(1)
    from pinn_sine import march
    from pinn_sine.nets import MLP, Sine, build_net
    from pinn_sine.optim import Adam, GaussNewton

    case = replace(CASES[name], **overrides)
    problem = build_problem(case)
    reference = problem.reference(case.resolution)
    if problem.periodic:  # the periodic encoding the problem declares (Allen-Cahn)
        net = build_net(problem, "siren", width=case.width, depth=case.depth, first_omega=case.first_omega,
                        hidden_omega=30.0, seed=seed).to(getattr(torch, case.dtype))
    else:
        net = MLP(problem.in_dim, problem.out_dim, case.width, case.depth, activation=Sine(30.0),
                  first_omega=case.first_omega, seed=seed).to(getattr(torch, case.dtype))

    def stages(adam: int) -> list:
        if not case.gauss_newton:
            return [Adam(10**9, lr=case.lr, schedule="constant")]
        if case.final_batch is None:
            return [Adam(adam, lr=case.lr), GaussNewton(10**9, batch=case.batch, resample_every=case.resample)]
        return [Adam(adam, lr=case.lr), GaussNewton(case.gn_steps, batch=case.batch, resample_every=case.resample),
                GaussNewton(10**9, batch=case.final_batch, resample_every=case.resample)]

    from pinn_sine.weighting import CausalWeights

    causal = None if case.causal_eps is None else CausalWeights(eps=case.causal_eps, chunks=16)
    start, cpu = time.perf_counter(), time.process_time()
    result = march(problem, net, windows=windows, stages=stages(case.adam), later_stages=stages(case.later_adam),
                   reference=reference, seed=seed, batch=case.batch, time_limit=seconds, progress=False,
                   eval_every=100, stall=None, growth=case.growth, causal=causal)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    final = result.final
    exact = "rel_l2_exact" in final
    column = "rel_l2_exact" if exact else "rel_l2"  # every window logs it where the problem has an exact solution
    curve = [(row["time"], row["window"], row[column]) for row in result.history if column in row]
    return {"case": name + "".join(f" {k}={v}" for k, v in overrides.items()), "windows": windows, "seed": seed, "seconds": seconds,
            "error": final["rel_l2_exact"] if exact else final["rel_l2"], "against": "exact" if exact else reference.solver,
            "rel_l2_fd": final["rel_l2"], "reference_error": reference.error_estimate,
            "steps": result.steps_done, "train_time": result.timings["total"], "wall": wall, "cpu": cpu,
            "window_errors": [next((r[column] for r in reversed(w.history) if column in r), None)
                              for w in result.windows],
            "params": sum(p.numel() for p in result.net.nets[0].parameters()), "curve": curve}


def describe(row: dict) -> str:
    return (f"{row['case']} K={row['windows']} seed {row['seed']}: {row['error']:.3e} ({row['against']}), "
            f"{row['steps']} steps in {row['train_time']:.0f} s ({row['cpu']:.0f} CPU s); windows "
            + ", ".join(f"{e:.1e}" for e in row["window_errors"] if e is not None))


def table(rows: list[dict]) -> str:
    lines = ["| case | windows | error (median) | per seed | against | steps | CPU [s] | reference error | "
             "one window / K windows |",
             "|---|---|---|---|---|---|---|---|---|"]
    medians = {}
    for key in dict.fromkeys((r["case"], r["windows"]) for r in rows):
        group = [r for r in rows if (r["case"], r["windows"]) == key]
        medians[key] = statistics.median(r["error"] for r in group)
    for (name, windows), med in medians.items():
        group = [r for r in rows if (r["case"], r["windows"]) == (name, windows)]
        one = medians.get((name, 1))
        ratio = f"{one / med:.1f}x" if one is not None and windows != 1 else ""
        ref_err = group[0]["reference_error"]
        lines.append(f"| {name} ({group[0]['seconds']:g} s) | {windows} | {med:.2e} | "
                     + ", ".join(f"{r['error']:.1e}" for r in group)
                     + f" | {group[0]['against']} | {statistics.median(r['steps'] for r in group):.0f} | "
                     + f"{min(r['cpu'] for r in group):.0f}-{max(r['cpu'] for r in group):.0f} | "
                     + ("" if ref_err is None else f"{ref_err:.1e}") + f" | {ratio} |")
    return "\n".join(lines)


def figure(rows: list[dict], path: Path) -> None:
    colours = ["C0", "C1", "C2", "C3", "C4", "C5"]
    panels = []
    for name in dict.fromkeys(r["case"] for r in rows):
        series = []
        for i, windows in enumerate(dict.fromkeys(r["windows"] for r in rows if r["case"] == name)):
            run = min((r for r in rows if (r["case"], r["windows"]) == (name, windows)), key=lambda r: r["seed"])
            style = {"color": colours[i % len(colours)]}
            for k in range(windows):
                pts = [(t, e) for t, w, e in run["curve"] if w == k]
                if pts:
                    label = (f"K={windows} (each window on its own times)" if k == 0 and windows > 1
                             else f"K={windows}" if k == 0 else None)
                    series.append((label, [p[0] for p in pts], [p[1] for p in pts], style))
            series.append((None, [run["train_time"]], [run["error"]],
                           {**style, "marker": "o", "linestyle": "none"}))
        panels.append((f"{name} (seed {min(r['seed'] for r in rows if r['case'] == name)}; o: final, whole run)",
                       series))
    curves_figure(panels, path, ylabel="relative L2 error")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="wave1d", help=f"comma-separated, of {sorted(CASES)}")
    ap.add_argument("--windows", default="1,4", help="comma-separated window counts (1: one network)")
    ap.add_argument("--seconds", type=float, default=600.0, help="wall-time budget of each run")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--jobs", type=int, default=2, help="runs side by side (one thread each)")
    ap.add_argument("--out", type=Path, default=Path("runs/marching"))
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help=f"override a field of every case ({[f.name for f in fields(Case)][1:]}), e.g. width=24")
    args = ap.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        kinds = {f.name: f.type for f in fields(Case)}
        if key not in kinds or key in ("problem", "problem_kwargs"):
            raise SystemExit(f"--set {item}: not a field of a case; one of {sorted(set(kinds) - {'problem', 'problem_kwargs'})}")
        overrides[key] = None if value == "none" else (float(value) if key in ("first_omega", "lr", "growth", "causal_eps")
                                                       else int(value))
    if (overrides.get("final_batch") is None) != (overrides.get("gn_steps") is None):
        raise SystemExit("--set final_batch=N needs --set gn_steps=M (the Gauss-Newton steps before it), and back")
    cases = [c for c in args.cases.split(",") if c]
    bad = [c for c in cases if c not in CASES]
    if bad:
        raise SystemExit(f"unknown cases {bad}; choose from {sorted(CASES)}")
    windows = [int(k) for k in args.windows.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    for name in cases:  # the references first, once, in this process (cached for the workers)
        case = CASES[name]
        build_problem(case).reference(case.resolution)
    jobs = [(c, k, s, args.seconds, overrides) for c in cases for s in seeds for k in windows]
    rows = run_all(run_one, jobs, args.jobs, args.seconds, describe)
    write_results(args.out, table(rows), rows)
    figure(rows, args.out / "errors_vs_time.png")
    print(f"wrote {args.out}/results.md, results.csv, errors_vs_time.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
