"""Where a velocity inversion loses the velocity: the four-source point-source case of
benchmarks/inverse.py (``point-velocity-4``) started at the projected truth instead of the
uniform guess, the velocity error printed after the Adam warm-up and after Gauss-Newton
(issue 28).

    OMP_NUM_THREADS=1 python benchmarks/inverse_start.py --adam 100 --seconds 180
    OMP_NUM_THREADS=1 python benchmarks/inverse_start.py --adam 2000 --hold-warmup --seconds 600

(``--hold-warmup``: the warm-up trains the network alone, the velocity held at the truth;
``--scaling columns``: Marquardt's damping in the Gauss-Newton stage.) If the velocity stays near its truncation error, the formulation is consistent and the
runs from the uniform guess are limited by the optimizer's path; if it drifts, something in
the set-up pulls it away. The table gives the velocity's relative L2 error over the physical
region (and the coefficients' relative distance from the projected truth) and the wave
fields' error against the FD reference after each stage.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from inverse import _points, _problem, bump, gn_stages  # noqa: E402

CASE = "point-velocity-4"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adam", type=int, default=100, help="Adam steps (lr 1e-3) before Gauss-Newton")
    parser.add_argument("--seconds", type=float, default=180.0, help="wall time of the Gauss-Newton stage")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--hold-warmup", action="store_true",
                        help="the Adam warm-up trains the network alone, the coefficients held at the start")
    parser.add_argument("--scaling", choices=("none", "columns"), default="none",
                        help="the Gauss-Newton damping: lambda I (none) or lambda diag(J^T J) (columns)")
    parser.add_argument("--data-weight", type=float, default=1.0, help="the data term's weight")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from pinn_sine import train
    from pinn_sine.nets import build_net
    from pinn_sine.observations import synthetic

    problem = _problem(CASE)
    obs = synthetic(problem, _points(problem, CASE, 200))
    expansion = problem.velocity_expansion(6)
    truth = expansion.project(bump)
    problem.declare_unknown("velocity", truth.tolist(), lower=-1.0, upper=1.0).observe(obs)
    net = build_net(problem, "siren", width=args.width, depth=args.depth, seed=args.seed).double()
    ref = problem.reference()

    def errors():
        theta = torch.tensor(problem.coefficient_values()["velocity"], dtype=torch.float64)
        return (expansion.rel_l2(theta, bump, bounds=problem.physical),
                float((theta - truth).norm() / truth.norm()))

    rows = [("start (the projected truth)", *errors(), float("nan"), 0)]
    warmup, gauss_newton = gn_stages(args.adam, 1024, 50, args.hold_warmup, args.scaling)
    for label, stage, seconds in ((f"after {args.adam} Adam steps", warmup, None),
                                  (f"after Gauss-Newton ({args.seconds:g} s)", gauss_newton, args.seconds)):
        result = train(problem, net, stages=[stage], seed=args.seed, progress=False, time_limit=seconds, stall=None,
                       reference=ref, eval_every=100, weights={"data": args.data_weight})
        rows.append((label, *errors(), float(result.final["rel_l2"]), result.steps_done))
    print("| stage | velocity rel L2 (physical region) | coefficients vs projected truth | fields vs FD | steps |")
    print("|---|---|---|---|---|")
    for label, err, coef, field, steps in rows:
        print(f"| {label} | {err:.2e} | {coef:.2e} | {field:.2e} | {steps} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
