"""Does a float32 precision schedule pay for Gauss-Newton (issue 26 item 6)?

    OMP_NUM_THREADS=1 python benchmarks/precision.py --widths 32,48 --repeats 5
    OMP_NUM_THREADS=1 python benchmarks/precision.py --seconds 300 --float32-steps 300
    # side by side, at equal load:
    OMP_NUM_THREADS=1 python benchmarks/precision.py --skip-steps --seconds 300 --only dense &
    OMP_NUM_THREADS=1 python benchmarks/precision.py --skip-steps --seconds 300 --only mixed

Part 1 (always): the cost of one dense Gauss-Newton direction (J formed, the normal
equations by SciPy syrk + Cholesky) in float64 against the same direction through
``MixedPrecision`` on a float32 copy of the linearization (the linearization itself is
built in float64 either way), on Poisson2D SIRENs of the given widths (depth 2) and the
batch of benchmarks/optimizers.py; the two take turns, the ratio is the median of the
per-round ratios. Also the relative difference of the two steps.

Part 2 (``--seconds``): the error against the exact solution after the same wall time,
500 Adam steps then Gauss-Newton with the dense descent and with
``MixedPrecision(float32_steps=...)`` (run one after the other on this thread).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch


def _net(width: int, seed: int = 0):
    from pinn_sine.nets import MLP, Sine

    return MLP(2, 1, width, 2, activation=Sine(30.0), first_omega=4.0, seed=seed).double()


def step_costs(widths, batch: int, repeats: int) -> list[dict]:
    from pinn_sine.derivatives.linearization import linearize
    from pinn_sine.optim.descents import Dense, MixedPrecision
    from pinn_sine.optim.solvers import Cholesky
    from pinn_sine.problems import Poisson2D

    problem = Poisson2D()
    rows = []
    for width in widths:
        net = _net(width)
        pts = {k: v.double() for k, v in problem.sample(batch, torch.Generator().manual_seed(0)).items()}
        solver = Cholesky()
        times = {"float64": [], "float32": []}
        diff = None
        for _ in range(repeats + 1):
            for kind in ("float64", "float32"):
                lin = linearize(problem, net, pts, {})
                descent = Dense() if kind == "float64" else MixedPrecision("dense", float32_steps=10**9)
                descent.start(torch.Generator().manual_seed(0))
                t0 = time.perf_counter()
                scale = descent.frobenius2(lin) / lin.n_cols
                step = descent.direction(lin, 1e-3 * scale, solver)
                times[kind].append(time.perf_counter() - t0)
                if kind == "float64":
                    ref = step.d
                else:
                    diff = float((step.d - ref).norm() / ref.norm())
        f64, f32 = times["float64"][1:], times["float32"][1:]
        ratio = statistics.median(a / b for a, b in zip(f64, f32))
        rows.append({"width": width, "p": sum(q.numel() for q in net.parameters()), "N": lin.n_rows,
                     "float64 s": statistics.median(f64), "float32 s": statistics.median(f32),
                     "speed-up": ratio, "step rel. diff": diff})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", default="32,48")
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.0, help="part 2's budget per run (0: skip part 2)")
    parser.add_argument("--float32-steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=("dense", "mixed"), default=None,
                        help="part 2 for one descent only (run two invocations side by side to compare at equal load)")
    parser.add_argument("--skip-steps", action="store_true", help="skip part 1")
    args = parser.parse_args(argv)
    print(f"threads: torch {torch.get_num_threads()}")
    rows = [] if args.skip_steps else step_costs([int(w) for w in args.widths.split(",")], args.batch, args.repeats)
    if rows:
        print("| width | p | N | float64 step s | float32 step s | speed-up | step rel. diff |")
        print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['width']} | {r['p']} | {r['N']} | {r['float64 s']:.3f} | {r['float32 s']:.3f} | "
              f"{r['speed-up']:.2f}x | {r['step rel. diff']:.1e} |")
    if args.seconds > 0:
        import sys
        from pathlib import Path

        sys.path.insert(0, str(Path(__file__).parent))
        from optimizers import exact_reference

        from pinn_sine import train
        from pinn_sine.optim import Adam, GaussNewton
        from pinn_sine.problems import Poisson2D

        problem = Poisson2D()
        ref, _ = exact_reference(problem)
        width = int(args.widths.split(",")[0])
        print(f"\n| descent | width | error vs exact after {args.seconds:.0f} s | GN steps |")
        print("|---|---|---|---|")
        runs = (("dense", "dense"),
                (f"mixed ({args.float32_steps} float32)",
                 {"name": "mixed", "inner": "dense", "float32_steps": args.float32_steps}))
        for name, descent in runs:
            if args.only is not None and not name.startswith(args.only):
                continue
            net = _net(width, args.seed)
            result = train(problem, net, stages=[Adam(500), GaussNewton(10**9, batch=args.batch, descent=descent)],
                           batch=args.batch, seed=args.seed, reference=ref, time_limit=args.seconds, progress=False,
                           log_every=25, eval_every=25)
            last = [r for r in result.history if "rel_l2" in r][-1]
            print(f"| {name} | {width} | {last['rel_l2']:.2e} | {result.history[-1]['step'] - 500} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
