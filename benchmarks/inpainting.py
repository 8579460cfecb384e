"""Inpainting camera with SIREN / FINER / MetaSin and no, TV or Hessian prior, beside the
finite-difference (harmonic, biharmonic, TV) inpaintings.

    python benchmarks/inpainting.py [--size 256] [--steps 3000] [--missing 0.5,0.9]
        [--activations siren,finer,metasin] [--priors none,tv,hessian] [--csv out.csv] [--plots DIR]

Target (issue 5): at 50% of the pixels missing, the best network with a prior is within
1 dB (PSNR on the missing pixels) of the best FD reference. Prints one markdown table per
missing fraction: PSNR and SSIM on the missing pixels, PSNR on the whole image and wall
time per run (FD solvers timed uncached). Networks are evaluated on their rendered
(tent-filtered) image, the image they were fitted through.
"""
from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import torch

from pinn_sine import evaluate, train
from pinn_sine.figures import problem_figures
from pinn_sine.nets import MLP, Finer, MetaSin, Sine
from pinn_sine.problems.inpainting import CLASSICAL, DEFAULT_PRIOR_WEIGHT, Inpainting


def build(name: str, out_dim: int, args) -> MLP:
    if name == "siren":
        act, first = Sine(args.omega), args.first_omega
    elif name == "finer":
        act, first = Finer(args.omega), args.first_omega
    elif name == "metasin":
        act, first = MetaSin(K=args.K, freq_init=args.metasin_freq_init), None
    else:
        raise SystemExit(f'Invalid activation "{name}". Must be one of [\'finer\', \'metasin\', \'siren\'].')
    return MLP(2, out_dim, args.width, args.depth, activation=act, first_omega=first, seed=args.seed)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", default="camera")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--missing", default="0.5,0.9", help="fractions of missing pixels, comma separated")
    ap.add_argument("--activations", default="siren,finer,metasin")
    ap.add_argument("--priors", default="none,tv,hessian")
    ap.add_argument("--classical", default=",".join(CLASSICAL), help="FD references to run ('' for none)")
    ap.add_argument("--tv-weight", default=str(DEFAULT_PRIOR_WEIGHT["tv"]), help="comma list: a weight sweep")
    ap.add_argument("--hessian-weight", default=str(DEFAULT_PRIOR_WEIGHT["hessian"]), help="comma list")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=8192, help="known pixels per step")
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--omega", type=float, default=30.0, help="hidden omega of SIREN/FINER")
    ap.add_argument("--first-omega", type=float, default=30.0, help="first-layer omega of SIREN/FINER")
    ap.add_argument("--K", type=int, default=10, help="MetaSin components")
    ap.add_argument("--metasin-freq-init", default="uniform")
    ap.add_argument("--n-jitter", type=int, default=4)
    ap.add_argument("--no-antialias", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is fastest for small "
                    "nets on a loaded machine)")
    ap.add_argument("--csv", default=None, help="also write the rows here")
    ap.add_argument("--plots", default=None, help="write the figures of the best network per fraction here")
    args = ap.parse_args()

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    weights = {"tv": [float(w) for w in args.tv_weight.split(",")],
               "hessian": [float(w) for w in args.hessian_weight.split(",")]}
    rows = []
    print(f"{args.image} at {args.size}^2; {args.steps} Adam steps (lr {args.lr}, {args.batch} pixels/step), "
          f"MLP width {args.width} depth {args.depth}, first omega {args.first_omega}; antialias "
          f"{not args.no_antialias} ({args.n_jitter} jitters); prior weights {weights}; device {args.device}, "
          f"torch threads {torch.get_num_threads()}")
    for missing in [float(m) for m in args.missing.split(",")]:
        base = Inpainting(args.image, f"random:{missing}", size=args.size, antialias=not args.no_antialias,
                          n_jitter=args.n_jitter, mask_seed=args.seed)
        ref = base.reference()
        print(f"\n### {100 * missing:g}% missing ({ref.mask.sum()} of {ref.mask.size} pixels)\n")
        print("| method | prior | weight | PSNR missing [dB] | SSIM missing | PSNR all [dB] | time [s] |")
        print("|---|---|---|---|---|---|---|")
        for method in [c for c in args.classical.split(",") if c]:
            t0 = time.perf_counter()
            fd_ref = base.classical(method, cache=False)
            elapsed = time.perf_counter() - t0
            m = evaluate(None, ref, prediction=fd_ref.fields)
            rows.append({"missing": missing, "method": f"FD {method}", "prior": "-", "weight": "-", **m,
                         "time": elapsed})
            print(f"| FD {method} | - | - | {m['psnr_region']:.2f} | {m['ssim_region']:.3f} | {m['psnr']:.2f} | "
                  f"{elapsed:.1f} |", flush=True)
        best_net = None
        runs = [(None, None) if p == "none" else (p, w) for p in args.priors.split(",")
                for w in ([None] if p == "none" else weights[p])]
        for prior, weight in runs:
            problem = base if prior is None else Inpainting(
                args.image, f"random:{missing}", size=args.size, prior=prior, prior_weight=weight,
                antialias=not args.no_antialias, n_jitter=args.n_jitter, mask_seed=args.seed)
            for name in args.activations.split(","):
                net = build(name, problem.out_dim, args).to(args.device)
                sync(args.device)
                t0 = time.perf_counter()
                train(problem, net, steps=args.steps, lr=args.lr, batch=args.batch, seed=args.seed,
                      progress=False, log_every=max(args.steps // 10, 1))
                sync(args.device)
                elapsed = time.perf_counter() - t0
                m = evaluate(net, ref, prediction=problem.predict(net))
                rows.append({"missing": missing, "method": name, "prior": prior or "none",
                             "weight": "-" if weight is None else weight, **m, "time": elapsed})
                print(f"| {name} | {prior or 'none'} | {'-' if weight is None else weight} | {m['psnr_region']:.2f} | "
                      f"{m['ssim_region']:.3f} | {m['psnr']:.2f} | {elapsed:.1f} |", flush=True)
                if prior is not None and (best_net is None or m["psnr_region"] > best_net[0]):
                    best_net = (m["psnr_region"], name, f"{prior} {weight:g}", net, problem)
        fd_rows = [r for r in rows if r["missing"] == missing and r["method"].startswith("FD")]
        fd_best = max(fd_rows, key=lambda r: r["psnr_region"]) if fd_rows else None
        if best_net is not None and fd_best is not None:
            gap = best_net[0] - fd_best["psnr_region"]
            print(f"\nbest network with a prior: {best_net[1]} + {best_net[2]} at {best_net[0]:.2f} dB; best FD: "
                  f"{fd_best['method']} at {fd_best['psnr_region']:.2f} dB; difference {gap:+.2f} dB "
                  f"(target at 50% missing: >= -1 dB)")
            if args.plots:
                out = Path(args.plots) / f"missing{round(100 * missing)}"
                paths = problem_figures(best_net[4], best_net[3], ref, out, method=fd_best["method"][3:])
                print("wrote " + ", ".join(str(p) for p in paths))
    if args.csv:
        keys = ["missing", "method", "prior", "weight", "psnr_region", "ssim_region", "psnr", "ssim", "time"]
        with open(args.csv, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)


if __name__ == "__main__":
    main()
