"""Does averaging over redrawn batches, or choosing among their fits, lower the error of
accelerated Gauss-Newton? (issue 26: averaging the parameters does not; kept so the
finding can be rerun. Averaging the functions and choosing by a held-out residual: below.)

    OMP_NUM_THREADS=1 python benchmarks/gn_averaging.py --problem poisson2d --seed 0 --seconds 600 --every 50

Trains the ``adam+gn-accel`` method of ``benchmarks/optimizers.py`` (the problem's
CONFIG: float64 SIREN, Adam, then dense Levenberg-Marquardt with geodesic acceleration)
with a fresh batch every ``--every`` Gauss-Newton steps until ``--seconds``, keeping the
parameters theta_b at the end of every batch b. Prints the relative L2 error against the
exact solution of the last iterate, of the last few theta_b, and of their means

    theta_K = (1/K) sum_{b = B-K+1}^{B} theta_b       (Polyak-Ruppert averaging)

for K = 2, 4, 8, 16, 32 (and with the last iterate as one more term). Measured on
Poisson2D (32x2, batch 2000, every 50, 600 s, seeds 0 and 1, one thread each, side by
side): the last iterate 8.0e-10 and 8.7e-10, each theta_b 5.9e-10 to 1.7e-9, but the
mean of the last two 7.9e-6 and 1.5e-5 and of the last eight 2.0e-5: consecutive batch
fits lie far apart in parameter space on a curved set of nearly equal functions (the
network's near-symmetries), so their mean is not a fit at all. Averaging would have to
be in function space (the mean of the predictions), not of the parameters.

Two ways that need no exact solution are measured beside it, on the same batch ends:

* the function-space mean of the last K batch fits, u_K = (1/K) sum_b u(theta_b) (a
  snapshot ensemble: its PDE residual is the mean of theirs, the equation being linear);
* the batch fit with the smallest loss on a held-out batch of ``--validation`` points drawn
  once with its own seed (the problem's loss terms, summed), among the last K.

Measured on Helmholtz2D (32x2, every 50, 600 s, seeds 0 and 1 side by side): the last
batch end 9.4e-10 and 1.24e-9; the mean of the last 8 fits as functions 7.2e-10 and
8.6e-10 (of 4: 7.4e-10, 9.6e-10; of 16: 6.9e-10, 1.04e-9); the fit of least held-out loss
among the last 8: 1.6e-9 and 1.1e-9 (at a loss of 1e-16 the held-out loss does not rank
the fits by their error); the mean of the last 8 parameter vectors 3.6e-5 and 2.0e-5.
The function mean is :class:`pinn_sine.callbacks.SnapshotEnsemble`, the ``adam+gn-ens``
method of ``benchmarks/optimizers.py``.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

import optimizers


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    ap.add_argument("--problem", default="poisson2d", choices=sorted(optimizers.CONFIG))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--every", type=int, default=50, help="Gauss-Newton steps per batch")
    ap.add_argument("--validation", type=int, default=8000, help="points of the held-out batch")
    args = ap.parse_args(argv)
    if args.every < 1 or not args.seconds > 0:
        ap.error("--every must be >= 1 and --seconds > 0.")
    from pinn_sine import train
    from pinn_sine.callbacks import Callback
    from pinn_sine.optim import Adam, GaussNewton
    from pinn_sine.validation.evaluate import evaluate

    torch.set_num_threads(1)
    problem = optimizers.make_problem(args.problem)
    cfg = optimizers.CONFIG[args.problem]
    ref, against = optimizers.exact_reference(problem)
    net = optimizers.build_net(problem, cfg, args.seed)
    ends: list[tuple[int, float, list[torch.Tensor]]] = []
    t0 = time.perf_counter()

    class BatchEnds(Callback):
        def on_after_step(self, loop, stage, result):
            if stage.name == "gauss_newton" and loop.done % args.every == 0:
                ends.append((loop.done, time.perf_counter() - t0, [q.detach().clone() for q in net.parameters()]))

    gn = GaussNewton(10**9, batch=cfg.batch, resample_every=args.every,
                     **optimizers.GN_OPTIONS["adam+gn-accel"])
    train(problem, net, stages=[Adam(cfg.adam), gn], batch=cfg.batch, seed=args.seed, time_limit=args.seconds,
          progress=False, log_every=100, callbacks=[BatchEnds()])
    last = [q.detach().clone() for q in net.parameters()]

    def load(params: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for q, v in zip(net.parameters(), params):
                q.copy_(v)

    def error(params: list[torch.Tensor]) -> float:
        load(params)
        return evaluate(net, ref, prediction=problem.predict(net, ref))["rel_l2"]

    held_out = {k: v.double() for k, v in problem.sample(args.validation,
                                                          torch.Generator().manual_seed(10_000 + args.seed)).items()}

    def validation(params: list[torch.Tensor]) -> float:
        load(params)
        with torch.no_grad():
            return float(sum(problem.compute_losses(net, held_out).values()))

    def prediction(params: list[torch.Tensor]):
        load(params)
        return problem.predict(net, ref)["u"]

    def mean_error(fields) -> float:
        return evaluate(net, ref, prediction={"u": sum(fields) / len(fields)})["rel_l2"]

    print(f"{args.problem}, seed {args.seed}, {args.seconds:g} s, a fresh batch every {args.every} steps: "
          f"{len(ends)} batch ends; relative L2 error against the {against} solution\n")
    print("| parameters | error |\n|---|---|")
    print(f"| last iterate | {error(last):.3e} |")
    for done, t, params in ends[-6:]:
        print(f"| end of the batch at GN step {done} ({t:.0f} s) | {error(params):.3e} |")
    for k in (2, 4, 8, 16, 32):
        if len(ends) >= k:
            mean = [torch.stack([e[2][i] for e in ends[-k:]]).mean(0) for i in range(len(last))]
            with_last = [torch.stack([e[2][i] for e in ends[-k:]] + [last[i]]).mean(0) for i in range(len(last))]
            print(f"| mean of the last {k} batch ends | {error(mean):.3e} |")
            print(f"| the same and the last iterate | {error(with_last):.3e} |")
    print("\nIn function space, and chosen by the held-out loss (no exact solution used):\n")
    print("| K | mean of the last K fits (functions) | the fit of least held-out loss among the last K "
          "(its loss, its error) |\n|---|---|---|")
    fields = [prediction(e[2]) for e in ends]
    losses = [validation(e[2]) for e in ends]
    for k in (1, 2, 4, 8, 16, 32):
        if len(ends) >= k:
            best = min(range(len(ends) - k, len(ends)), key=losses.__getitem__)
            print(f"| {k} | {mean_error(fields[-k:]):.3e} | {losses[best]:.3e}, {error(ends[best][2]):.3e} |")
    print("\n| batch end (GN step) | held-out loss | error |\n|---|---|---|")
    for (done, _, params), loss in list(zip(ends, losses))[-16:]:
        print(f"| {done} | {loss:.3e} | {error(params):.3e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
