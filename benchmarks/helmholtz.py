"""Helmholtz2D / HelmholtzPointSource: activations on the same budget against the FD reference.

    python benchmarks/helmholtz.py --case manufactured --steps 3000 --lbfgs-steps 500
    python benchmarks/helmholtz.py --case point-uniform --steps 3000 --activations siren
    python benchmarks/helmholtz.py --case point-square --steps 3000 --activations siren
    python benchmarks/helmholtz.py --fd-only
    OMP_NUM_THREADS=1 python benchmarks/helmholtz.py --case point-square --preset siren --activations siren \
        --formulations scattered --seconds 1200 --gn --dtype float64 --width 32 --depth 3 --batch 2000 \
        --steps 1000 --first-omega 20 --hidden-omega 30     (SIREN's own case, issue 30)
    OMP_NUM_THREADS=1 python benchmarks/helmholtz.py --case point-uniform --activations siren --formulations total \
        --seconds 120 --gn --dtype float64 --width 32 --batch 2000 --steps 1000 --first-omega 10 --hidden-omega 30
    (and the same with --formulations scattered, side by side)

Prints a markdown table per run (activation, rel L2 vs the FD reference, rel L2 vs the
exact solution where there is one, per-field errors over the physical region for the
point source, wall time, median Adam step) and the FD timing: a 512^2 complex solve of
the default point source with PML, with its points per wavelength.

Total vs scattered field (issue 30): ``--formulations total,scattered`` trains each
activation in each formulation of the point source (HelmholtzPointSource's
``formulation``: the network is u, or u - u_b around the exact background u_b), judged
by the same total-field errors; ``--seconds`` stops each run at that wall time and
``--gn`` follows the Adam steps with Gauss-Newton (dense Levenberg-Marquardt on one
fixed batch of ``--batch`` points) until then.

Targets (issue 3): manufactured case (Wang, Teng & Perdikaris 2021: a1 = 1, a2 = 4,
k = 1) rel L2 <= 1e-3 with the best periodic activation in under 10 minutes on 2 CPU
cores; point source, uniform and square velocity, rel L2 vs FD over the physical region
<= 1e-1; FD 512^2 with PML in < 20 s. Anchors: a plain tanh PINN (DeepXDE) ~1e-1 after
2000 Adam steps; Wang et al. ~1e-1 plain, 50-100x better with learning-rate annealing
after 40,000 steps.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from pinn_sine import train
from pinn_sine.callbacks import SnapshotEnsemble
from pinn_sine.figures import problem_figures
from pinn_sine.nets import ACTIVATIONS, MLP
from pinn_sine.problems.helmholtz import Helmholtz2D, HelmholtzPointSource
from pinn_sine.validation import predict
from pinn_sine.validation.evaluate import evaluate
from pinn_sine.validation.fd.helmholtz import helmholtz_2d, points_per_wavelength

CASES = ("manufactured", "point-uniform", "point-square", "point-circle")
# Case defaults (overridable by flags): net size, batch, L-BFGS iterations. The
# learning rate and first-layer omega come from the problem class.
DEFAULTS = {"manufactured": {"steps": 3000, "width": 64, "depth": 3, "batch": 1024, "lbfgs_steps": 500},
            "point": {"steps": 2000, "width": 64, "depth": 3, "batch": 1024, "lbfgs_steps": 0}}


def make_problem(case: str, omega: float | None, formulation: str = "total", background_velocity=None,
                 preset: str | None = None, velocity_edge: float | None = None):
    """The case's problem; ``preset`` ("siren": omega 20, source width 0.01) and
    ``velocity_edge`` (the inclusions' edge width; 0 = SIREN's sharp edges) apply to the
    point source only."""
    if case == "manufactured":
        if formulation != "total" or preset is not None or velocity_edge is not None:
            raise SystemExit("--formulations, --preset and --velocity-edge apply to the point source cases only.")
        return Helmholtz2D()
    kw = {} if omega is None else {"omega": omega}
    if formulation == "scattered" and background_velocity is not None:
        kw["background_velocity"] = background_velocity
    if velocity_edge is not None:
        kw["velocity_edge"] = velocity_edge
    return HelmholtzPointSource(velocity=case.split("-", 1)[1], formulation=formulation, preset=preset, **kw)


def build_net(problem, name: str, args) -> MLP:
    act = ACTIVATIONS[name]()
    kw = {}
    if act.sine_init and hasattr(act, "omega"):  # Sine and Finer: per-layer omega
        kw = {"first_omega": args.first_omega if args.first_omega is not None else problem.default_first_omega,
              "hidden_omega": args.hidden_omega}
    net = MLP(problem.in_dim, problem.out_dim, args.width, args.depth, activation=act, seed=args.seed, **kw)
    return net.double() if args.dtype == "float64" else net


def stages_for(args, lr: float) -> list:
    """Adam (cosine over its steps), then L-BFGS, or with ``--gn`` Gauss-Newton on one
    fixed batch (a fresh one every ``--resample`` steps) until the time limit."""
    from pinn_sine.optim import LBFGS, Adam, GaussNewton

    stages = [Adam(args.steps, lr=lr)]
    if args.gn:
        options = {}
        if args.adaptive:  # RAD: each redraw's interior points drawn by the residual from a 10x pool
            options["adaptive"] = {"name": "rad"}
        if args.scaling != "none" or args.acceleration:
            options["descent"] = {"name": "dense", "scaling": args.scaling, "acceleration": args.acceleration}
        stages.append(GaussNewton(10**9, batch=args.batch, resample_every=args.resample, **options))
    elif args.lbfgs_steps:
        stages.append(LBFGS(args.lbfgs_steps, batch=args.lbfgs_batch))
    return stages


def fd_timing(n: int = 512) -> str:
    """The default point source's FD solve on an n^2 node grid, timed."""
    p = HelmholtzPointSource()
    x = np.linspace(-1.0, 1.0, n)
    X, Y = np.meshgrid(x, x, indexing="ij")
    f = p.source(torch.from_numpy(np.stack([X.ravel(), Y.ravel()], 1))).numpy().reshape(X.shape)
    t0 = time.perf_counter()
    helmholtz_2d(f, omega=p.omega, c=1.0, n=(n, n), pml_width=p.pml_width, pml_strength=p.pml_strength)
    secs = time.perf_counter() - t0
    ppw = points_per_wavelength(p.omega, 1.0, x[1] - x[0])
    return (f"FD: helmholtz_2d {n}^2 nodes with PML (omega {p.omega:g}, c = 1, width {p.pml_width:g}, strength "
            f"{p.pml_strength:g}): {secs:.2f} s, {ppw:.1f} points per wavelength; torch threads "
            f"{torch.get_num_threads()}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", choices=CASES, default="manufactured")
    ap.add_argument("--steps", type=int, default=None, help="Adam steps (3000 manufactured, 2000 point)")
    ap.add_argument("--lbfgs-steps", type=int, default=None)
    ap.add_argument("--activations", default="siren,finer,metasin,tanh")
    ap.add_argument("--width", type=int, default=None)
    ap.add_argument("--depth", type=int, default=None)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--lbfgs-batch", type=int, default=4096)
    ap.add_argument("--lr", type=float, default=None, help="default: the problem's default_lr")
    ap.add_argument("--first-omega", type=float, default=None, help="default: the problem's default_first_omega")
    ap.add_argument("--hidden-omega", type=float, default=None)
    ap.add_argument("--omega", type=float, default=None, help="point source: angular frequency")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resolution", type=int, default=None, help="reference grid (default: the problem's)")
    ap.add_argument("--plots", type=Path, default=None, help="write the problem's figures here")
    ap.add_argument("--fd-only", action="store_true", help="print the FD timing only")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--formulations", default="total",
                    help="point source: comma list of total, scattered (HelmholtzPointSource's formulation)")
    ap.add_argument("--seconds", type=float, default=None, help="wall-time limit of each run (train's time_limit)")
    ap.add_argument("--gn", action="store_true",
                    help="Gauss-Newton on one fixed batch of --batch points after the Adam steps, until --seconds")
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    ap.add_argument("--background-velocity", type=float, default=None,
                    help="scattered formulation: c0 of the background (default: c at the source)")
    ap.add_argument("--resample", type=int, default=None,
                    help="with --gn: draw a fresh batch every this many Gauss-Newton steps (default: one fixed batch)")
    ap.add_argument("--adaptive", action="store_true",
                    help="with --gn --resample N: each redraw by the residual (RAD, a 10x pool; Burgers' recipe)")
    ap.add_argument("--scaling", choices=("none", "columns"), default="none",
                    help="with --gn: damping lambda I (none) or Marquardt's lambda diag(J^T J) (columns)")
    ap.add_argument("--acceleration", action="store_true",
                    help="with --gn: the dense descent's geodesic acceleration (Transtrum & Sethna)")
    ap.add_argument("--preset", choices=("siren",), default=None,
                    help="point source: SIREN's case (omega 20, source width 0.01)")
    ap.add_argument("--velocity-edge", type=float, default=None,
                    help="point source: the inclusions' edge width (0: SIREN's sharp edges; default 0.02)")
    ap.add_argument("--ensemble", type=int, default=None,
                    help="with --gn --resample N: also report the mean, as functions, of the last this many batch "
                         "fits (pinn_sine.callbacks.SnapshotEnsemble)")
    args = ap.parse_args(argv)
    if args.ensemble is not None and not (args.gn and args.resample and args.ensemble >= 1):
        ap.error("--ensemble K (>= 1) averages the fits of redrawn batches: give --gn and --resample N too.")
    if args.adaptive and not (args.gn and args.resample):
        ap.error("--adaptive needs --gn and --resample N (the redraws it makes adaptive).")
    if (args.acceleration or args.scaling != "none") and not args.gn:
        ap.error("--acceleration and --scaling are options of the Gauss-Newton stage: give --gn too.")
    if args.fd_only:
        print(fd_timing())
        return 0

    names = [a.strip() for a in args.activations.split(",") if a.strip()]
    unknown = [a for a in names if a not in ACTIVATIONS]
    if unknown:
        ap.error(f"unknown activations {unknown}; valid: {sorted(ACTIVATIONS)}")
    defaults = DEFAULTS["manufactured" if args.case == "manufactured" else "point"]
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    formulations = [f.strip() for f in args.formulations.split(",") if f.strip()]
    problems = {f: make_problem(args.case, args.omega, f, args.background_velocity, args.preset, args.velocity_edge)
                for f in formulations}
    problem = problems[formulations[0]]
    lr = problem.default_lr if args.lr is None else args.lr
    t0 = time.perf_counter()
    ref = problem.reference(args.resolution)  # the total field: one reference for every formulation
    t_ref = time.perf_counter() - t0
    exact = None
    if problem.has_exact:
        exact = problem.exact(torch.from_numpy(ref.points())).numpy().reshape(ref.grid_shape)
        print(f"FD reference {ref.solver} on {ref.grid_shape}: rel L2 vs exact "
              f"{np.linalg.norm(ref.fields['u'] - exact) / np.linalg.norm(exact):.2e}")
    redraw = "" if args.resample is None else (f", redrawn every {args.resample} steps"
                                                + (" by the residual (RAD)" if args.adaptive else ""))
    tail = (f"Gauss-Newton on a fixed batch of {args.batch}{redraw}" if args.gn
            else f"{args.lbfgs_steps} L-BFGS iterations (batch {args.lbfgs_batch})")
    limit = "" if args.seconds is None else f"; stopped at {args.seconds:g} s"
    print(f"{problem!r}\nbudget: {args.steps} Adam steps (lr {lr}, cosine, batch {args.batch}) + {tail}{limit}; "
          f"MLP {args.width} x {args.depth} {args.dtype}; seed {args.seed}; torch threads "
          f"{torch.get_num_threads()}\n", flush=True)

    rows = []
    for formulation in formulations:
        problem = problems[formulation]
        for name in names:
            net = build_net(problem, name, args)
            snaps = [] if args.ensemble is None else [SnapshotEnsemble(args.resample, args.ensemble)]
            res = train(problem, net, stages=stages_for(args, lr), batch=args.batch, seed=args.seed, reference=ref,
                        eval_every=max(args.steps // 5, 1), log_every=max(args.steps // 100, 1),
                        time_limit=args.seconds, progress=args.progress, callbacks=snaps)
            m = res.final
            if snaps and snaps[0].snapshots:
                ens = snaps[0].ensemble()
                m_ens = evaluate(ens, ref, prediction=problem.predict(ens, ref))
                print(f"# {name} ({formulation}): the mean of the last {ens.members} batch fits (GN steps "
                      f"{snaps[0].steps}): rel L2 {m_ens['rel_l2']:.3e} (the last iterate {m['rel_l2']:.3e})",
                      file=sys.stderr, flush=True)
                m = dict(m_ens, last_iterate=m["rel_l2"], members=ens.members)
            adam = [h["rel_l2"] for h in res.history if h["phase"] == "adam" and "rel_l2" in h]
            row = {"name": name, "formulation": formulation, "adam": adam[-1] if adam else float("nan"), "m": m,
                   "wall": res.timings["total"], "ms": 1e3 * res.timings["step_median"],
                   "last": {ph: max((h["step"] for h in res.history if h["phase"] == ph), default=0)
                            for ph in ("adam", "gauss_newton")}}
            if exact is not None:
                pred = predict(net, ref)["u"]
                row["exact"] = np.linalg.norm(pred - exact) / np.linalg.norm(exact)
            rows.append(row)
            logged = [h for h in res.history if "rel_l2" in h]
            logged = logged[::max(1, len(logged) // 20)] + logged[-1:]  # about 20 of them, and the last
            print(f"# {name} ({formulation}): logged rel_l2 " + ", ".join(
                f"{h['step']}:{h['rel_l2']:.2e}" for h in logged), file=sys.stderr, flush=True)
            if args.plots is not None:
                for path in problem_figures(problem, net, ref, args.plots / f"{name}-{formulation}") or ():
                    print(f"# wrote {path}", file=sys.stderr)

    if args.case == "manufactured":
        print("| activation | rel L2 vs FD after Adam | after L-BFGS | max abs vs FD | rel L2 vs exact | wall [s] "
              "| Adam step median [ms] |")
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['name']} | {r['adam']:.2e} | {r['m']['rel_l2']:.2e} | {r['m']['max_abs']:.2e} | "
                  f"{r['exact']:.2e} | {r['wall']:.0f} | {r['ms']:.1f} |")
    else:
        if args.ensemble is not None:
            print(f"(final: the mean of the last {args.ensemble} batch fits; the last iterate in the last column)\n")
        print("| activation | formulation | rel L2 (real+imag) after Adam | final | rel L2 real | rel L2 imag "
              "| rel L2 magnitude | Adam / GN steps | wall [s] | step median [ms] |"
              + (" last iterate |" if args.ensemble is not None else ""))
        print("|---|---|---|---|---|---|---|---|---|---|" + ("---|" if args.ensemble is not None else ""))
        for r in rows:
            m = r["m"]
            gn = max(0, r["last"]["gauss_newton"] - r["last"]["adam"])
            last = f"{r['last']['adam']} / {gn}"
            print(f"| {r['name']} | {r['formulation']} | {r['adam']:.2e} | {m['rel_l2']:.2e} | "
                  f"{m['rel_l2_u_real']:.2e} | {m['rel_l2_u_imag']:.2e} | {m['rel_l2_abs']:.2e} | {last} | "
                  f"{r['wall']:.0f} | {r['ms']:.1f} |"
                  + (f" {m['last_iterate']:.2e} |" if "last_iterate" in m else (" - |" if args.ensemble else "")))
        print(f"\nerrors over the physical region ({int(ref.mask.sum())} of {ref.mask.size} nodes); reference "
              f"{ref.grid_shape}, {ref.attrs.get('points_per_wavelength', float('nan')):.1f} points per wavelength")
    print(f"\nreference {ref.grid_shape}: {t_ref:.2f} s (cached after the first call)")
    print(fd_timing())
    return 0


if __name__ == "__main__":
    sys.exit(main())
