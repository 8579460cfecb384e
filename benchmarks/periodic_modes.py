"""How many harmonics should a periodic input encoding carry? AllenCahn1D (periodic in x,
period 2) with a SIREN behind ``PeriodicEncoding({"x": 2.0}, modes=M)``, same budget per M.

    OMP_NUM_THREADS=1 python benchmarks/periodic_modes.py                  # fit + pde, M = 1, 2, 4, seeds 0, 1
    OMP_NUM_THREADS=1 python benchmarks/periodic_modes.py --task fit --steps 1000

Two tasks, both reported as the rel L2 error against the Fourier-ETDRK4 reference on its
grid:

  fit  -- least squares regression of the reference field u(t, x) (random batches of
          grid points, Adam with a cosine schedule): can the network represent and find
          the solution, u0 = x^2 cos(pi x) with its slope jump at x = +-1 included?
  pde  -- the PINN itself: ``train(problem, net, steps=...)`` on the problem's losses,
          the stall stop off (every M gets the full budget).

The first-layer omega is the one ``build_net`` uses for the problem (its
``default_first_omega`` or Sine's own). Prints one row per (task, M, seed) and the
median per (task, M).

Measured (SIREN 64x3, 2000 Adam steps, batch 1024, float32, one thread of a shared
2-core CPU; rel L2 for seeds 0 / 1):

    task (command options)                        M = 1              M = 2              M = 4
    fit                                           1.25e-3 / 1.27e-3  1.13e-3 / 1.07e-3  8.9e-4 / 9.0e-4
    pde, hard initial data (--constraint hard)    3.40e-2 / 3.71e-2  3.56e-2 / 1.88e-2  5.31e-2 / 9.52e-2
    pde, soft (defaults)                          0.923 / 0.926      0.930 / 0.934      0.939 / 0.939
    pde, soft, --first-omega 5 (seed 0)           0.887              -                  0.905

More modes help the regression a little (1.4x at M = 4) and the PINN not at all (M = 4
is 1.6-2.6x worse with the hard constraint; M = 1 and 2 are within the seed spread; the
soft runs have not left the trivial state after 2000 steps with any M), so one mode,
jaxpi's choice, is the default (``pinn_sine.nets.periodic.DEFAULT_MODES``).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from pinn_sine import evaluate, train
from pinn_sine.nets import PeriodicEncoding, build_net
from pinn_sine.problems import AllenCahn1D


def _fit(problem, net, ref, steps: int, batch: int, seed: int) -> float:
    t, x = (torch.as_tensor(v, dtype=torch.float32) for v in ref.coords.values())
    T, X = torch.meshgrid(t, x, indexing="ij")
    pts = torch.stack([T.reshape(-1), X.reshape(-1)], 1)
    u = torch.as_tensor(ref.fields["u"], dtype=torch.float32).reshape(-1, 1)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=1e-5)
    for _ in range(steps):
        idx = torch.randint(0, pts.shape[0], (batch,), generator=g)
        loss = ((net(pts[idx]) - u[idx]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        return float((net(pts) - u).norm() / u.norm())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=["fit", "pde", "both"], default="both")
    ap.add_argument("--modes", default="1,2,4")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--constraint", choices=["soft", "hard"], default="soft", help="the initial data's")
    ap.add_argument("--first-omega", type=float, default=None, help="default: build_net's rule")
    args = ap.parse_args()
    problem = AllenCahn1D(constraint=args.constraint)
    ref = problem.reference()
    tasks = ["fit", "pde"] if args.task == "both" else [args.task]
    results: dict = {}
    for task in tasks:
        for M in (int(m) for m in args.modes.split(",")):
            for seed in (int(s) for s in args.seeds.split(",")):
                net = problem.constrain(build_net(problem, "siren", width=args.width, depth=args.depth, seed=seed,
                                                  first_omega=args.first_omega,
                                                  periodic=PeriodicEncoding({"x": 2.0}, modes=M)))
                start = time.perf_counter()
                if task == "fit":
                    err = _fit(problem, net, ref, args.steps, args.batch, seed)
                else:
                    train(problem, net, steps=args.steps, batch=args.batch, seed=seed, progress=False, stall=None)
                    err = float(evaluate(net, ref)["rel_l2"])
                results.setdefault((task, M), []).append(err)
                print(f"{task} M={M} seed={seed}: rel L2 {err:.3e} ({time.perf_counter() - start:.0f} s)", flush=True)
    for (task, M), errs in results.items():
        print(f"{task} M={M}: median rel L2 {statistics.median(errs):.3e} over {len(errs)} seeds")


if __name__ == "__main__":
    main()
