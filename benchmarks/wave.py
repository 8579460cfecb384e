"""Wave1D / Wave2D: activations against the finite-difference reference.

    python benchmarks/wave.py --problem wave1d --steps 20000 --activations siren,finer,metasin,tanh
    python benchmarks/wave.py --problem wave2d --steps 5000 --activations siren --device cuda

Prints a markdown table (activation, steps, rel L2 vs the FD reference, time per step)
and the FD reference timing (wave_2d: a 512^2 grid marched to t = 1; wave_1d: the
reference grid). Targets from issue 4: Wave1D rel L2 <= 1e-2 with the best periodic
activation in <= 20k steps; Wave2D (width 0.05, c = 1, t_max = 0.4) rel L2 <= 5e-2.
Anchors for Wave1D: PINNacle ~1e-1 (20k steps), NTK ~4e-3 (80k), PirateNet ~3e-5 (200k).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from pinn_sine import train
from pinn_sine.figures import problem_figures
from pinn_sine.nets import ACTIVATIONS, MLP
from pinn_sine.problems.wave import Wave1D, Wave2D
from pinn_sine.validation.fd.wave import wave_1d, wave_2d

PROBLEMS = {"wave1d": Wave1D, "wave2d": Wave2D}
# First-layer omega (sine families) and Adam learning rate come from the problem class
# (default_first_omega, default_lr), picked by short runs; the hidden layers keep the
# activation's own omega (30) unless --hidden-omega is given (hidden omega 1 trained
# 5-10x worse on Wave1D).
OMEGA_FAMILIES = ("siren", "finer")


def fd_timing(problem: str) -> tuple[str, float]:
    """Seconds for the FD reference solve named in the table footer."""
    if problem == "wave2d":
        p = Wave2D(t_max=1.0, snapshot_times=[0.0, 1.0])
        t0 = time.perf_counter()
        wave_2d(lambda X, Y: p.initial_displacement(X, Y), c=1.0, bounds=p.domain, n=(513, 513),
                t_out=[0.0, 1.0], cfl=0.5)
        return "wave_2d, 513^2 nodes (h = 1/256), t = 0..1, cfl 0.5", time.perf_counter() - t0
    p = Wave1D()
    nx = p.fd_refine * (p.default_resolution - 1) + 1
    t0 = time.perf_counter()
    wave_1d(lambda x: np.sin(np.pi * x) + 0.5 * np.sin(4 * np.pi * x), c=p.c, nx=nx,
            t_out=p.reference_times(), cfl=0.5)
    return f"wave_1d, {nx} nodes, {p.time_resolution} output times, cfl 0.5", time.perf_counter() - t0


def build_net(problem, activation: str, args) -> MLP:
    act = ACTIVATIONS[activation]()
    kw = {}
    if activation in OMEGA_FAMILIES:
        first = args.first_omega if args.first_omega is not None else problem.default_first_omega
        kw = {"first_omega": first, "hidden_omega": args.hidden_omega}
    return MLP(problem.in_dim, problem.out_dim, args.width, args.depth, activation=act, seed=args.seed, **kw)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problem", choices=sorted(PROBLEMS), default="wave1d")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--activations", default="siren,finer,metasin,tanh")
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--lr", type=float, default=None, help="default: the problem's default_lr")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--first-omega", type=float, default=None, help="override the per-problem default")
    ap.add_argument("--hidden-omega", type=float, default=None)
    ap.add_argument("--curriculum-end", type=float, default=None, help="time curriculum (off by default)")
    ap.add_argument("--pulse-fraction", type=float, default=None, help="wave2d: near-pulse t = 0 points")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--resolution", type=int, default=None, help="reference grid (default: the problem's)")
    ap.add_argument("--plots", type=Path, default=None, help="write the problem's figures here")
    args = ap.parse_args(argv)

    names = [a.strip() for a in args.activations.split(",") if a.strip()]
    unknown = [a for a in names if a not in ACTIVATIONS]
    if unknown:
        ap.error(f"unknown activations {unknown}; valid: {sorted(ACTIVATIONS)}")
    kw = {}
    if args.curriculum_end is not None:
        kw["curriculum_end"] = args.curriculum_end
    if args.pulse_fraction is not None:
        if args.problem != "wave2d":
            ap.error("--pulse-fraction applies to wave2d only")
        kw["pulse_fraction"] = args.pulse_fraction
    problem = PROBLEMS[args.problem](**kw)
    args.lr = PROBLEMS[args.problem].default_lr if args.lr is None else args.lr
    t0 = time.perf_counter()
    ref = problem.reference(args.resolution)
    t_ref = time.perf_counter() - t0

    rows = []
    for name in names:
        net = build_net(problem, name, args).to(args.device)
        res = train(problem, net, steps=args.steps, lr=args.lr, batch=args.batch, seed=args.seed, reference=ref,
                    eval_every=max(args.steps // 10, 1), log_every=max(args.steps // 100, 1), progress=False)
        best = min((r["rel_l2"] for r in res.history if "rel_l2" in r), default=float("nan"))
        rows.append((name, args.steps, res.final["rel_l2"], best, 1e3 * res.timings["step_median"]))
        print(f"# {name}: rel_l2 {res.final['rel_l2']:.3e} (per t: "
              + ", ".join(f"{v:.2e}" for v in res.final.get("rel_l2_per_t", [])[:: max(1, len(ref.coords['t']) // 5)])
              + ")", file=sys.stderr, flush=True)
        print("#   logged rel_l2: " + ", ".join(f"{r['step']}:{r['rel_l2']:.2e}" for r in res.history if "rel_l2" in r),
              file=sys.stderr, flush=True)
        if args.plots is not None:
            for path in problem_figures(problem, net, ref, args.plots / name):
                print(f"# wrote {path}", file=sys.stderr)

    dev = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"\n{problem!r}, MLP {args.width}x{args.depth}, lr {args.lr}, batch "
          f"{args.batch or problem.default_batch}, seed {args.seed}, device {dev}\n")
    print("| activation | steps | rel L2 (final) | rel L2 (best logged) | ms / step |")
    print("|---|---|---|---|---|")
    for name, steps, err, best, ms in rows:
        print(f"| {name} | {steps} | {err:.3e} | {best:.3e} | {ms:.2f} |")
    what, secs = fd_timing(args.problem)
    print(f"\nFD reference: {what}: {secs:.2f} s (this run's reference grid {ref.grid_shape}: "
          f"{t_ref:.2f} s, cached after the first call)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
