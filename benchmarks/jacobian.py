"""Residual Jacobian rows per second: the jet engine's per-point bookkeeping against
torch.func's vmap(jacrev) of the per-point residual (issues 16 and 18).

    OMP_NUM_THREADS=1 python benchmarks/jacobian.py --points 2000 --width 32 --depth 2 --repeats 5

The case is Poisson2D's interior residual (Lap u - f) / sqrt(<f^2>) with a float64
SIREN: ``residual_jacobian`` (one forward jet pass, one backward pass per residual
column, one einsum per layer) against ``vmap(jacrev(r))`` over the points, where
r(theta, x) takes the Laplacian from ``torch.func.hessian`` of the network at one point.
Both give the same rows (checked here to 1e-10 relative). The two engines take turns
in every round; the table gives the median time and the median of the per-round ratios.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time

import torch


def main(argv: list[str] | None = None) -> int:
    from pinn_sine.derivatives.jacobian import residual_jacobian
    from pinn_sine.nets import MLP, Sine
    from pinn_sine.problems import Poisson2D

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    problem = Poisson2D()
    net = MLP(2, 1, args.width, args.depth, activation=Sine(30.0), first_omega=4.0, seed=0).double()
    batch = {k: v.double() for k, v in problem.sample(args.points, torch.Generator().manual_seed(0)).items()}
    names = [n for n, _ in net.named_parameters()]
    theta = {n: p.detach() for n, p in net.named_parameters()}
    scale = math.sqrt(problem._f_scale_value)

    def residual(params, x, f):
        def u(y):
            return torch.func.functional_call(net, params, (y.unsqueeze(0),))[0, 0]
        return (torch.func.hessian(u)(x).diagonal().sum() - f[0]) / scale

    jac_fn = torch.func.vmap(torch.func.jacrev(residual), in_dims=(None, 0, 0))

    def jet():
        return residual_jacobian(problem, net, batch, {})[1]  # the interior rows, then the boundary rows

    def func():
        rows = jac_fn(theta, batch["interior"], batch["f"])
        return torch.cat([rows[n].reshape(rows[n].shape[0], -1) for n in names], dim=1)

    J_jet, J_func = jet(), func()
    n = args.points
    rows = {"jet": J_jet.shape[0], "vmap(jacrev)": n}
    err = float((J_jet[:n] * math.sqrt(n) - J_func).abs().max() / J_func.abs().max())
    times = {"jet": [], "vmap(jacrev)": []}
    for _ in range(args.repeats):
        for name, fn in (("jet", jet), ("vmap(jacrev)", func)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    # rows per second of each, per round (the jet also builds the boundary rows)
    ratios = [(rows["jet"] / a) / (n / b) for a, b in zip(times["jet"], times["vmap(jacrev)"])]
    p = sum(q.numel() for q in net.parameters())
    print(f"Poisson2D interior residual, SIREN {args.width}x{args.depth} ({p} parameters), {n} points, float64, "
          f"1 thread; max relative difference {err:.1e}\n")
    print("| engine | median time | Jacobian rows / s |")
    print("|---|---|---|")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"| {name} ({rows[name]} rows) | {med * 1e3:.1f} ms | {rows[name] / med:,.0f} |")
    print(f"\njet rows per second over vmap(jacrev) (median of per-round ratios): {statistics.median(ratios):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
