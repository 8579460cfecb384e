"""Steps per second of the demo's training with 1 and 2 torch/BLAS threads, on a quiet
machine and beside a load: the measurement behind the CLI's default of one thread.

    OMP_NUM_THREADS=1 python benchmarks/threads.py                 # the table (about 4 minutes)
    OMP_NUM_THREADS=1 python benchmarks/threads.py --net default --gn 0   # the CLI's default net
    python benchmarks/threads.py --quick                           # a smoke run (about 1 minute)

Each cell runs in a fresh child process (``--child``) that builds the demo's network
(``--net demo``, ``make demo``: Poisson2D, SIREN 24x2, float64, batch 800) or the CLI's
default one (``--net default``: SIREN 128x3, float32, the problem's batch), sets its thread count
(``torch.set_num_threads`` and threadpoolctl for SciPy's BLAS, as ``pinn-sine
--threads`` does), warms up, then times ``--adam`` Adam steps and ``--gn`` Gauss-Newton
steps. "loaded" runs the same cell while another process keeps one core busy with a
one-thread matmul loop (what a second job on a shared 2-core machine does). Cells of a
round run one after another; the table gives the median of ``--repeats`` rounds.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

NETS = {"demo": (24, 2, 800, "float64"), "default": (128, 3, None, "float32")}


def child(threads: int, adam: int, gn: int, net_name: str) -> dict:
    import torch
    from threadpoolctl import threadpool_limits

    from pinn_sine import train
    from pinn_sine.nets import build_net
    from pinn_sine.optim import Adam, GaussNewton
    from pinn_sine.problems import Poisson2D

    torch.set_num_threads(threads)
    threadpool_limits(limits=threads)
    problem = Poisson2D()
    width, depth, batch, dtype = NETS[net_name]
    batch = batch or problem.default_batch
    out = {"adam": float("nan"), "gauss_newton": float("nan")}
    runs = [("adam", lambda: [Adam(adam)])] + ([("gauss_newton", lambda: [Adam(1), GaussNewton(gn, batch=batch)])]
                                             if gn else [])
    for name, stages in runs:
        net = build_net(problem, "siren", width=width, depth=depth, seed=0).to(getattr(torch, dtype))
        train(problem, net, stages=[Adam(5)], batch=batch, progress=False)  # warm-up
        t0 = time.perf_counter()
        result = train(problem, net, stages=stages(), batch=batch, progress=False)
        wall = time.perf_counter() - t0
        steps = adam if name == "adam" else gn
        out[name] = steps / (result.timings[name] if name in result.timings else wall)
    out["torch_threads"] = torch.get_num_threads()
    return out


def burner() -> None:
    import torch

    torch.set_num_threads(1)
    a = torch.randn(512, 512)
    while True:
        a = torch.tanh(a @ a / 512)


def run_cell(threads: int, loaded: bool, adam: int, gn: int, net: str) -> dict:
    load = None
    if loaded:
        load = subprocess.Popen([sys.executable, __file__, "--burn"], env={**os.environ, "OMP_NUM_THREADS": "1"})
        time.sleep(2.0)
    try:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        proc = subprocess.run([sys.executable, __file__, "--child", str(threads), "--adam", str(adam),
                               "--gn", str(gn), "--net", net], env=env, capture_output=True, text=True, check=True)
        return json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        if load is not None:
            load.kill()
            load.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adam", type=int, default=300)
    ap.add_argument("--gn", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--net", choices=sorted(NETS), default="demo")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--burn", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.burn:
        burner()
        return
    if args.child is not None:
        print(json.dumps(child(args.child, args.adam, args.gn, args.net)))
        return
    if args.quick:
        args.adam, args.gn, args.repeats = 60, 20, 1
    cells = [(t, loaded) for loaded in (False, True) for t in (1, 2)]
    rates: dict = {c: [] for c in cells}
    for _ in range(args.repeats):
        for t, loaded in cells:
            rates[(t, loaded)].append(run_cell(t, loaded, args.adam, args.gn, args.net))
    width, depth, batch, dtype = NETS[args.net]
    print(f"Poisson2D, SIREN {width}x{depth} {dtype}, batch {batch or 'default'}: steps per second, median of "
          f"{args.repeats} (os.cpu_count() = {os.cpu_count()})\n")
    print("| machine | threads | Adam steps/s | Gauss-Newton steps/s |")
    print("|---|---|---|---|")
    for t, loaded in cells:
        rs = rates[(t, loaded)]
        assert all(r["torch_threads"] == t for r in rs)
        adam = statistics.median(r["adam"] for r in rs)
        gn = statistics.median(r["gauss_newton"] for r in rs)
        print(f"| {'loaded (one core busy)' if loaded else 'quiet'} | {t} | {adam:.1f} | {gn:.2f} |")


if __name__ == "__main__":
    main()
