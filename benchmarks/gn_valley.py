"""What stops dense Gauss-Newton near 1e-7 on Poisson2D: the valley, the normal equations,
or the batch (issue 26).

    OMP_NUM_THREADS=1 python benchmarks/gn_valley.py --seconds 200
    OMP_NUM_THREADS=1 python benchmarks/gn_valley.py --seconds 200 --acceleration

Trains the ``poisson2d`` case of benchmarks/optimizers.py (float64 SIREN 32x2, 500 Adam
steps, then dense Levenberg-Marquardt on one fixed batch of 2000 interior points) for
``--seconds``, and then, at the parameters reached, prints

1. the singular values of J (N x p, from the SVD) and how the residual r is spread over
   its singular directions (|U^T r| summed over the directions whose singular value is
   below a fraction of the largest): where the residual left lies;
2. the exact damped step (from the SVD, no normal equations) at relative dampings mu
   (lambda = mu ||J||_F^2 / p, the Nielsen search's scale) from 1e-6 down to 1e-12: the
   step's length, the loss the linear model predicts and the loss reached, and the
   same for the geodesically accelerated step (``Dense(acceleration=True)``) with the
   gain ratio by its second-order model, the one the search judges it by: how small a
   damping each step survives;
3. the loss on the training batch and on two fresh batches of the same size: whether the
   batch is fitted beyond what it says about the solution.

``--acceleration`` trains with the accelerated descent instead (the part-3 comparison of
the two runs says what limits each).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import optimizers  # noqa: E402

MUS = (1e-6, 1e-8, 1e-9, 1e-10, 1e-12)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=200.0, help="wall time of the training run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--acceleration", action="store_true", help="train with the geodesic acceleration")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from pinn_sine import train
    from pinn_sine.derivatives.linearization import linearize, residual_vector
    from pinn_sine.optim import Adam, GaussNewton
    from pinn_sine.optim.descents import Dense
    from pinn_sine.optim.solvers import Cholesky

    name = "poisson2d"
    cfg, problem = optimizers.CONFIG[name], optimizers.make_problem(name)
    ref, _ = optimizers.exact_reference(problem)
    net = optimizers.build_net(problem, cfg, args.seed)
    gn = GaussNewton(10**9, batch=cfg.batch, descent={"name": "dense", "acceleration": args.acceleration})
    result = train(problem, net, stages=[Adam(cfg.adam), gn], batch=cfg.batch, seed=args.seed, reference=ref,
                   eval_every=25, log_every=25, time_limit=args.seconds, progress=False)
    last = result.history[-1]
    print(f"trained {args.seconds:g} s ({'accelerated' if args.acceleration else 'plain'} dense Gauss-Newton): "
          f"step {last['step']}, loss {last['loss']:.3e}, relative L2 error {last['rel_l2']:.3e}, "
          f"mu {getattr(gn.search, 'mu', float('nan')):.2e}\n")

    points = gn.points
    if points is None:
        parser.error(f"the run ended in its Adam steps ({cfg.adam}); give more --seconds.")
    lin = linearize(problem, net, points, {})
    J, r = lin.materialize(), lin.r
    loss = float(r @ r)
    U, S, Vt = torch.linalg.svd(J, full_matrices=False)
    c = U.T @ r
    print(f"1. J is {J.shape[0]} x {J.shape[1]}; singular values {float(S[0]):.3e} .. {float(S[-1]):.3e} "
          f"(ratio {float(S[0] / S[-1]):.1e}); |r| = {float(r.norm()):.3e}\n")
    print("| directions with s < f s_max | count | |U^T r| there | share of |r|^2 |")
    print("|---|---|---|---|")
    for f in (1e-2, 1e-4, 1e-6, 1e-8, 1e-10):
        m = S < f * S[0]
        print(f"| f = {f:g} | {int(m.sum())} | {float(c[m].norm()):.3e} | {float((c[m] ** 2).sum()) / loss:.4f} |")

    scale = float((J * J).sum()) / J.shape[1]

    def exact_step(rhs, lam):  # -(J^T J + lam I)^{-1} J^T rhs from the SVD
        return -(Vt.T @ (S / (S ** 2 + lam) * (U.T @ rhs)))

    print(f"\n2. damped steps at the loss {loss:.3e} (lambda = mu * {scale:.3e})\n")
    print("| mu | plain |d| | plain: model loss | plain: loss reached | accelerated: 2|a|/|v| | accelerated: "
          "loss reached | gain (second-order model) |")
    print("|---|---|---|---|---|---|---|")
    for mu in MUS:
        lam = mu * scale
        v = exact_step(r, lam)
        model = float((r + J @ v) @ (r + J @ v))
        plain = lin.residual_at(v)
        descent = Dense(acceleration=True, max_ratio=1e9)  # report every ratio; the stage's default is 0.75
        descent.start(torch.Generator())
        acc = descent.direction(lin, lam, Cholesky())
        reached = lin.residual_at(acc.d)
        predicted = loss - float((r + acc.Jd) @ (r + acc.Jd))
        gain = (loss - float(reached @ reached)) / predicted if predicted > 0 else float("nan")
        print(f"| {mu:g} | {float(v.norm()):.2e} | {model:.3e} | {float(plain @ plain):.3e} | "
              f"{acc.info['acceleration']:.3f} | {float(reached @ reached):.3e} | {gain:.3f} |")

    print("\n3. the loss on the training batch and on fresh batches of the same size\n")
    print(f"training batch: {float(residual_vector(problem, net, points, {}).square().sum()):.3e}")
    n = points["interior"].shape[0]
    for seed in (101, 102):
        fresh = {k: v.double() for k, v in problem.sample(n, torch.Generator().manual_seed(seed)).items()}
        print(f"fresh batch (seed {seed}): {float(residual_vector(problem, net, fresh, {}).square().sum()):.3e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
