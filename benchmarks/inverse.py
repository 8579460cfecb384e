"""Inverse problems: a coefficient recovered from point observations, Gauss-Newton
against Adam at equal wall time, and the reported standard error against the spread over
noise seeds (issue 28).

    OMP_NUM_THREADS=1 python benchmarks/inverse.py --seconds 300 --jobs 2 --out runs/inverse
    OMP_NUM_THREADS=1 python benchmarks/inverse.py --seconds 150 --jobs 2 --noise 0.01 \\
        --methods gn --noise-seeds 0,1,2,3,4,5,6,7,8,9 --out runs/inverse-noise

Cases (``--cases``), each from ``--points`` observations drawn uniformly in the domain
(point seed 0) from the exact solution, with seeded Gaussian noise of ``--noise`` times
the values' RMS (seed ``--noise-seeds``):

* ``wave1d``: Wave1D (c = 2, modes sin(pi x) cos(2 pi t) + 0.5 sin(4 pi x) cos(8 pi t)),
  c unknown from c = 1 within [0.5, 4];
* ``helmholtz2d``: Helmholtz2D with k = 4 (u = sin(pi x) sin(4 pi y), source f from the
  true k), k unknown from k = 2 within [0.5, 8];
* ``wave2d-velocity``: Wave2D (the default pulse, reflecting walls, t in [0, 0.4]) in
  c = 1 + 0.2 exp(-|x - (0.2, -0.1)|^2 / (2 0.25^2)), the velocity an unknown cosine
  expansion of 5 x 5 modes (``Wave2D.velocity_expansion``) from the uniform c0, observed by
  a 5 x 5 grid of sensors in [-0.6, 0.6]^2 at 21 times from the FD reference (``--points``
  does not apply); the error is the velocity field's relative L2 error against the bump
  (the 25-mode truncation's own is in the status column), the "coefficient" column the
  norm of the coefficients;
* ``point-omega``: HelmholtzPointSource (omega 10, uniform c = 1, source width 0.05),
  omega unknown from 8 within [5, 15], observed (from the FD reference) by ``--points``
  receivers on a ring of radius 0.45 about the centre (inside the physical region);
* ``point-velocity``: the same source in c = the Gaussian bump above, the velocity an
  unknown 5 x 5 cosine expansion (``HelmholtzPointSource.velocity_expansion``) from 0,
  observed by the same ring: one source, one frequency;
* ``point-velocity-4``: the bump lit by four sources of width 0.02 at (+-0.25, +-0.25), in
  the scattered formulation about the uniform c0 = 1 (the network, 8 outputs, learns the
  four scattered fields; the sources' singular parts are exact), the velocity 6 x 6
  modes (truncation 1.7e-3), the same ring of receivers, each observing the four complex
  fields.

Methods: ``gn``: ``--adam`` Adam steps (lr 1e-3, cosine; with ``--hold-warmup`` the network
alone, the coefficients held at the guess), then Gauss-Newton (dense Levenberg-Marquardt,
batch ``--gn-batch``, redrawn every ``--resample`` steps; damped by lambda I, or with
``--scaling columns`` by Marquardt's lambda diag(J^T J)) until the wall time is spent;
``adam``: Adam alone (constant lr 1e-3) for the same wall time. ``--data-weight`` weights
the data term in every stage. Every run trains a float64 SIREN ``--width`` x ``--depth`` on
one thread. The table gives the coefficient's relative error at the end (median over the
network seeds ``--seeds``), the standard error :func:`pinn_sine.inverse.estimate` reports,
the solution's relative L2 error against the exact solution, the steps done; with several
noise seeds, the spread (sample standard deviation) of the recovered values beside the
median reported standard error. ``results.csv`` holds every run with its
coefficient-vs-time curve;
``coefficient_vs_time.png`` draws the relative error of the coefficient against time.
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

CASES = {
    # name: (problem class, constructor kwargs, unknown, truth, guess, lower, upper)
    "wave1d": ("Wave1D", {}, "c", 2.0, 1.0, 0.5, 4.0),
    "helmholtz2d": ("Helmholtz2D", {"k": 4.0}, "k", 4.0, 2.0, 0.5, 8.0),
    # a +20% Gaussian bump in a uniform c = 1, as M^2 = 25 cosine coefficients from 0 (uniform
    # c0) within [-1, 1]; observed by a 5 x 5 grid of sensors in [-0.6, 0.6]^2 at 21 times
    "wave2d-velocity": ("Wave2D", {"snapshot_times": [0.02 * i for i in range(21)]}, "velocity", None,
                        [0.0] * 25, -1.0, 1.0),
    # the point source (omega 10, uniform c = 1): omega from omega = 8 within [5, 15], from
    # receivers on a ring of radius 0.45 about the source (inside the physical region)
    "point-omega": ("HelmholtzPointSource", {}, "omega", 10.0, 8.0, 5.0, 15.0),
    # the same source in the Gaussian bump (+20%), the velocity as 5 x 5 cosine coefficients
    # from 0 within [-1, 1]; one source, the ring of receivers
    "point-velocity": ("HelmholtzPointSource", {}, "velocity", None, [0.0] * 25, -1.0, 1.0),
    # four sources (width 0.02) at (+-0.25, +-0.25), the scattered formulation about c0 = 1
    "point-velocity-4": ("HelmholtzPointSource", {"source_center": [(-0.25, -0.25), (0.25, -0.25), (-0.25, 0.25),
                                                                    (0.25, 0.25)],
                                                  "source_width": 0.02, "formulation": "scattered",
                                                  "background_velocity": 1.0},
                         "velocity", None, [0.0] * 36, -1.0, 1.0),
}
RING_RADIUS = 0.45
METHODS = ("gn", "adam")


def bump(x, y):
    """c = 1 + 0.2 exp(-|x - (0.2, -0.1)|^2 / (2 0.25^2)), torch or numpy."""
    import numpy as np

    exp = torch.exp if isinstance(x, torch.Tensor) else np.exp
    return 1.0 + 0.2 * exp(-((x - 0.2) ** 2 + (y + 0.1) ** 2) / (2 * 0.25 ** 2))


def gn_stages(adam: int, batch: int, resample: int, hold_warmup: bool = False, scaling: str = "none") -> list:
    """The ``gn`` method's stages: the Adam warm-up (lr 1e-3; ``hold_warmup``: the network
    alone) and Gauss-Newton until the time limit (dense, damping ``scaling``)."""
    from pinn_sine.optim import Adam, GaussNewton

    return [Adam(adam, lr=1e-3, fit_coefficients=not hold_warmup),
            GaussNewton(10**9, batch=batch, resample_every=resample, descent={"name": "dense", "scaling": scaling})]


def _problem(case: str):
    from pinn_sine import problems

    cls, kwargs, *_ = CASES[case]
    if case == "wave2d-velocity":
        kwargs = {**kwargs, "c": bump}
    if case.startswith("point-velocity"):
        kwargs = {**kwargs, "velocity": bump}
    return getattr(problems, cls)(**kwargs)


def _points(problem, case: str, n: int):
    from pinn_sine.observations import ring, sensors, synthetic

    if case == "wave2d-velocity":
        g = torch.linspace(-0.6, 0.6, 5, dtype=torch.float64)
        grid = torch.cartesian_prod(g, g)
        return sensors(grid, torch.tensor(CASES[case][1]["snapshot_times"], dtype=torch.float64))
    if case.startswith("point-"):
        return ring((0.0, 0.0), RING_RADIUS, n)
    return synthetic(problem, n, seed=0).points


def run_one(job: tuple) -> dict:
    case, method, seed, noise, noise_seed, args = job
    torch.set_num_threads(1)
    from pinn_sine import train
    from pinn_sine.inverse import estimate
    from pinn_sine.nets import build_net
    from pinn_sine.observations import synthetic
    from pinn_sine.optim import Adam

    _, _, name, truth, guess, lower, upper = CASES[case]
    problem = _problem(case)
    points = _points(problem, case, args["points"])  # the same points for every noise seed
    obs = synthetic(problem, points, noise=noise, seed=noise_seed)
    problem.declare_unknown(name, guess, lower=lower, upper=upper).observe(obs)
    net = build_net(problem, "siren", width=args["width"], depth=args["depth"], seed=seed).double()
    if method == "gn":
        stages = gn_stages(args["adam"], args["gn_batch"], args["resample"], args["hold_warmup"], args["scaling"])
    else:
        stages = [Adam(10**9, lr=1e-3, schedule="constant")]
    t0, c0 = time.perf_counter(), time.process_time()
    status = "ok"
    try:
        result = train(problem, net, stages=stages, seed=seed, progress=False, time_limit=args["seconds"],
                       log_every=10, stall=None, weights={"data": args["data_weight"]})
    except FloatingPointError as err:  # TrainingDiverged: keep what was reached
        result, status = err.result, f"diverged: {str(err)[:60]}"
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    value = problem.coefficient_values()[name]
    extra = {"theta": None, "rel_error_domain": float("nan")}  # a velocity expansion's coefficients and error
    try:
        est = estimate(problem, net, n=args["gn_batch"], seed=seed)[name]
        se = est.std_error if not isinstance(est.std_error, list) else max(est.std_error)
    except (ValueError, RuntimeError) as err:
        se, status = float("nan"), f"{status}; no standard error: {str(err)[:50]}"
    if isinstance(value, list):  # a velocity expansion: the field's error against the model
        expansion = problem.velocity_expansion()
        theta = torch.tensor(value, dtype=torch.float64)
        # a point source's waves see c in the physical region (the layer damps them): the error there,
        # the whole domain's (layer included) beside it
        region = getattr(problem, "physical", None)
        rel_error = expansion.rel_l2(theta, bump, bounds=region)
        extra["theta"] = value
        value = float(theta.norm())
        truncation = expansion.truncation_error(bump, bounds=region)
        status += f"; truncation {truncation:.1e}"
        if region is not None:
            extra["rel_error_domain"] = expansion.rel_l2(theta, bump)
            status += (f"; physical region (whole domain: error {extra['rel_error_domain']:.2e}, truncation "
                       f"{expansion.truncation_error(bump):.1e})")

        def error_of(row):
            return float("nan")
    else:
        rel_error = abs(value - truth) / truth

        def error_of(row):
            return abs(row[f"coef_{name}"] - truth) / truth
    if problem.exact_solution is not None:
        grid = torch.cartesian_prod(*[torch.linspace(lo, hi, 101, dtype=torch.float64) for lo, hi in problem.bounds])
        with torch.no_grad():
            exact = problem.exact(grid)
            u_err = float((net(grid) - exact).norm() / exact.norm())
    else:  # against the FD reference
        from pinn_sine import evaluate

        ref = problem.reference()
        u_err = float(evaluate(net, ref, prediction=problem.predict(net, ref))["rel_l2"])
    curve = [(r["time"], error_of(r)) for r in result.history if f"coef_{name}" in r]
    return {"case": case, "method": method, "seed": seed, "noise": noise, "noise_seed": noise_seed,
            "value": value, "rel_error": rel_error, "std_error": se, "u_rel_l2": u_err, **extra,
            "steps": result.steps_done, "wall_s": wall, "cpu_s": cpu, "params": sum(p.numel() for p in net.parameters()),
            "status": status, "curve": curve}


def markdown(rows: list[dict], args) -> str:
    lines = [f"Inverse problems: {args.points} observations (noise {args.noise:g} x RMS), float64 SIREN "
             f"{args.width}x{args.depth} ({rows[0]['params']} parameters), {args.seconds:g} s wall on 1 thread each "
             f"({args.jobs} at a time); gn = {args.adam} Adam steps then Gauss-Newton (batch {args.gn_batch}, "
             f"redrawn every {args.resample} steps), adam = Adam lr 1e-3", "",
             "| case | method | runs | coefficient (median) | relative error (median) | reported std error (median) "
             "| spread over runs | u rel L2 vs exact (median) | steps (median) | CPU [s] (median) |",
             "|---" * 10 + "|"]
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["case"], r["method"]), []).append(r)
    for (case, method), rs in groups.items():
        values = [r["value"] for r in rs]
        spread = statistics.stdev(values) if len(values) > 1 else float("nan")
        lines.append(f"| {case} | {method} | {len(rs)} | {statistics.median(values):.10g} | "
                     f"{statistics.median(r['rel_error'] for r in rs):.2e} | "
                     f"{statistics.median(r['std_error'] for r in rs):.2e} | {spread:.2e} | "
                     f"{statistics.median(r['u_rel_l2'] for r in rs):.2e} | "
                     f"{statistics.median(r['steps'] for r in rs):.0f} | {statistics.median(r['cpu_s'] for r in rs):.0f} |")
    lines += ["", "| case | method | seed | noise seed | coefficient | relative error | std error | u rel L2 | steps | "
                  "status |", "|---" * 10 + "|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['method']} | {r['seed']} | {r['noise_seed']} | {r['value']:.12g} | "
                     f"{r['rel_error']:.2e} | {r['std_error']:.2e} | {r['u_rel_l2']:.2e} | {r['steps']} | "
                     f"{r['status']} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    first = (rows[0]["seed"], rows[0]["noise_seed"])  # one legend entry per case and method
    series = [(f"{r['case']} {r['method']}" if (r["seed"], r["noise_seed"]) == first else None,
               [t for t, _ in r["curve"]], [max(e, 1e-16) for _, e in r["curve"]],
               {"lw": 1.0, "color": f"C{list(CASES).index(r['case']) * 2 + (r['method'] == 'adam')}"})
              for r in rows if r["curve"]]
    curves_figure([("recovered coefficient vs time (float64 SIREN, 1 thread)", series)], path,
                  ylabel="relative error of the coefficient")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="wall time per run")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (one thread each)")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {list(CASES)}")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, of {list(METHODS)}")
    parser.add_argument("--seeds", default="0,1", help="network seeds, comma-separated")
    parser.add_argument("--noise", type=float, default=0.0, help="relative noise level of the observations")
    parser.add_argument("--noise-seeds", default="0", help="noise seeds, comma-separated")
    parser.add_argument("--points", type=int, default=200, help="observations")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--adam", type=int, default=100, help="gn: Adam steps before Gauss-Newton")
    parser.add_argument("--gn-batch", type=int, default=1024, help="gn: interior points of a Gauss-Newton batch")
    parser.add_argument("--resample", type=int, default=50, help="gn: Gauss-Newton steps between redraws")
    parser.add_argument("--hold-warmup", action="store_true",
                        help="gn: the Adam warm-up trains the network alone, the coefficients held at the guess")
    parser.add_argument("--scaling", choices=("none", "columns"), default="none",
                        help="gn: the damping, lambda I (none) or lambda diag(J^T J) (columns, Marquardt's)")
    parser.add_argument("--data-weight", type=float, default=1.0, help="the data term's weight")
    parser.add_argument("--out", type=Path, default=Path("runs/inverse"))
    args = parser.parse_args(argv)
    cases = [c for c in args.cases.split(",") if c]
    methods = [m for m in args.methods.split(",") if m]
    bad = [c for c in cases if c not in CASES] + [m for m in methods if m not in METHODS]
    if bad:
        parser.error(f"unknown cases/methods {bad}; choose from {list(CASES)} and {list(METHODS)}.")
    settings = {k: getattr(args, k) for k in ("seconds", "points", "width", "depth", "adam", "gn_batch", "resample",
                                                "hold_warmup", "data_weight", "scaling")}
    jobs = [(c, m, int(s), args.noise, int(ns), settings) for c in cases for m in methods
            for s in args.seeds.split(",") for ns in args.noise_seeds.split(",")]
    rows = run_all(run_one, jobs, args.jobs, args.seconds,
                   lambda r: f"{r['case']} {r['method']} seed {r['seed']} noise seed {r['noise_seed']}: "
                             f"{r['value']:.10g} (rel error {r['rel_error']:.2e}, se {r['std_error']:.2e}, "
                             f"{r['steps']} steps, {r['status']})")
    write_results(args.out, markdown(rows, args), rows)
    plot(rows, args.out / "coefficient_vs_time.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
