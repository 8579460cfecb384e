"""Inpainting: the network recipe of ``pinn-sine solve inpainting`` against the
finite-difference inpaintings (harmonic, biharmonic, TV), per image and mask.

    python benchmarks/inpainting.py [--images camera,moon,coins] [--masks random:0.5,random:0.9,blocks:8]
        [--size 256] [--time-limit 300] [--seeds 0,1] [recipe options] [--csv out.csv] [--plots DIR]
    python benchmarks/inpainting.py --from-csv seed0.csv,seed1.csv   # the tables of stored runs

Issue 30, item 3: on the missing pixels, the network beats the best of harmonic,
biharmonic and TV in both PSNR and SSIM, within 5 minutes per run. For each image and
mask this prints one row per method (PSNR and SSIM on the missing pixels, the median
over ``--seeds``; the best classical value of each column marked with *) and whether
the network beats it. A seed sets the mask (``mask_seed``), the network's init and its
sampling; the FD inpaintings are solved on each seed's mask.

The network recipe defaults to the problem's defaults (``Inpainting``'s prior, prior
weight and schedule, first omega, learning rate, batch, antialiasing) and to
``DEFAULT_WIDTH``/``DEFAULT_DEPTH`` below; every part can be overridden for a sweep.
``--steps`` defaults to the recipe's 12000 Adam steps (``--time-limit`` stops a run
that takes longer); ``--steps auto`` times a few steps first and runs as many as fit in
the time limit (so the cosine learning-rate schedule ends when the time does), but two
runs started side by side misjudge the step time with it (benchmarks/inpainting_sweeps.md).
The reported time includes the calibration and the render. The network is evaluated on
:meth:`Inpainting.predict`, the image it would hand back (by default its values at the
missing pixel centres, with the known pixels themselves, as the FD methods keep them);
the row "network, tent predict (not counted)" is the same answer through the other
predict filter, for information. As ``Inpainting.recipe`` has it, training never stops
for a stall (``--stall default``: ``train``'s ``Stall()``; the per-run line says when it
stopped) and the answer is the mean, as functions, of the network after every 250th of
its last 1500 Adam steps (``--ensemble 6 --ensemble-every 250``; ``--ensemble 0``: the
last iterate); the row "network, last iterate (not counted)" is the last iterate.

Sweeps (issue 30; their log: benchmarks/inpainting_sweeps.md) run one cell at a time, e.g.

    python benchmarks/inpainting.py --size 128 --images camera --masks random:0.5 --seeds 0 \
        --time-limit 60 --classical "" --prior tv --prior-weight 3e-3 --batch 2048

The block mask "blocks:8" is 8 square holes of side size/8 (32 pixels at 256^2) at
random places (they may overlap): about 11% of the pixels at 256^2 with seed 0.
"""
from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path

import torch

from pinn_sine import Stall, evaluate, train
from pinn_sine.callbacks import SnapshotEnsemble
from pinn_sine.figures import problem_figures
from pinn_sine.nets import build_net
from pinn_sine.optim import parse_stage_spec
from pinn_sine.problems.inpainting import CLASSICAL, Inpainting

#: the network the CLI builds by default (``pinn-sine solve``'s --width/--depth)
DEFAULT_WIDTH = 128
DEFAULT_DEPTH = 3
#: seconds kept for the render and evaluation out of the time limit with --steps auto
RENDER_RESERVE = 10.0
#: the Adam steps of ``pinn-sine solve inpainting`` (its recipe's one stage)
RECIPE_STEPS = parse_stage_spec(Inpainting.recipe["stage"][0])["steps"]


def problem_for(image: str, mask: str, size: int, seed: int, args) -> Inpainting:
    """The problem with the recipe's options (None: the problem's own default)."""
    names = ("prior", "prior_weight", "prior_decay", "prior_sampling", "prior_region", "hessian_form", "n_jitter",
             "antialias", "keep_known", "predict_filter")
    kw = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    if kw.get("prior") == "none":
        kw["prior"] = None
    return Inpainting(image, mask, size=size, mask_seed=seed, **kw)


def run_net(problem: Inpainting, seed: int, args) -> dict:
    """Train the recipe's network on ``problem``; its metrics on the missing pixels and
    the wall time (calibration, training and render)."""
    ref = problem.reference()
    batch = problem.default_batch if args.batch is None else args.batch
    lr = problem.default_lr if args.lr is None else args.lr

    def net_():
        return build_net(problem, args.activation, width=args.width, depth=args.depth, seed=seed,
                         omega=args.omega, first_omega=args.first_omega)

    t0 = time.perf_counter()
    steps = args.steps
    if steps == "auto":
        probe = net_()
        train(problem, probe, steps=5, lr=lr, batch=batch, seed=seed, progress=False)  # warm-up
        spent = []
        for n in (10, 40):  # the difference leaves out train's fixed cost per call
            t1 = time.perf_counter()
            train(problem, probe, steps=n, lr=lr, batch=batch, seed=seed, progress=False)
            spent.append(time.perf_counter() - t1)
        per_step = max((spent[1] - spent[0]) / 30, 1e-4)
        steps = max(10, int((args.time_limit - RENDER_RESERVE - (time.perf_counter() - t0)) / per_step))
    net = net_()
    remaining = args.time_limit - (time.perf_counter() - t0) - RENDER_RESERVE / 2
    stall = {"default": Stall(), "none": None}[args.stall]
    snaps = [] if not args.ensemble else [SnapshotEnsemble(args.ensemble_every, args.ensemble, stage="adam")]
    result = train(problem, net, steps=int(steps), lr=lr, batch=batch, seed=seed, progress=False,
                   time_limit=max(remaining, 1.0), log_every=max(int(steps) // 10, 1), stall=stall, callbacks=snaps)
    last = evaluate(net, ref, prediction=problem.predict(net))
    if snaps and snaps[0].snapshots:  # the recipe's answer: the mean of the last Adam iterates as functions
        net = snaps[0].ensemble()
        m = evaluate(net, ref, prediction=problem.predict(net))
        m["members"], m["last_iterate"] = net.members, last
    else:
        m = last
    m["time"] = time.perf_counter() - t0
    m["steps"], m["stop"] = result.steps_done, result.stop_message
    # for information: the same answer through the other predict filter (not the recipe)
    other = "tent" if problem.predict_filter == "point" else "point"
    if problem.antialias:
        saved, problem.predict_filter = problem.predict_filter, other
        try:
            alt = evaluate(net, ref, prediction=problem.predict(net))
        finally:
            problem.predict_filter = saved
        m["other"] = {"filter": other, **alt}
    m["net"] = net
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default="camera,moon,coins", help="bundled scikit-image names (grey)")
    ap.add_argument("--masks", default="random:0.5,random:0.9,blocks:8", help="mask specs, comma separated")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seeds", default="0,1", help="seeds (mask, init, sampling); the table shows the median")
    ap.add_argument("--time-limit", type=float, default=300.0, help="seconds per network run")
    ap.add_argument("--classical", default=",".join(CLASSICAL), help="FD methods ('' for none)")
    ap.add_argument("--no-net", action="store_true", help="only the FD methods")
    # the recipe: None takes the problem's (or this script's) default
    ap.add_argument("--activation", default="siren")
    ap.add_argument("--width", type=int, default=DEFAULT_WIDTH)
    ap.add_argument("--depth", type=int, default=DEFAULT_DEPTH)
    ap.add_argument("--omega", type=float, default=None, help="hidden omega (default: the activation's)")
    ap.add_argument("--first-omega", type=float, default=None, help="default: Inpainting.default_first_omega")
    ap.add_argument("--lr", type=float, default=None, help="default: Inpainting.default_lr")
    ap.add_argument("--batch", type=int, default=None, help="default: Inpainting.default_batch")
    ap.add_argument("--steps", default=str(RECIPE_STEPS),
                    help='Adam steps (default: the recipe\'s), or "auto": as many as fit in --time-limit')
    ap.add_argument("--prior", default=None, help="none, tv or hessian (default: Inpainting's)")
    ap.add_argument("--prior-weight", type=float, default=None)
    ap.add_argument("--prior-decay", type=float, default=None, help="the prior weight's final fraction")
    ap.add_argument("--prior-sampling", default=None, help="uniform, sobol or lhs: the prior's points")
    ap.add_argument("--prior-region", default=None, help="all or missing: where the prior's points lie")
    ap.add_argument("--hessian-form", default=None, help="squared or norm (with --prior hessian)")
    ap.add_argument("--n-jitter", type=int, default=None)
    ap.add_argument("--antialias", type=lambda s: {"true": True, "false": False}[s.lower()], default=None)
    ap.add_argument("--keep-known", type=lambda s: {"true": True, "false": False}[s.lower()], default=None)
    ap.add_argument("--predict-filter", default=None, help="point or tent (default: Inpainting's)")
    ap.add_argument("--stall", default="none", choices=["default", "none"],
                    help="train's stall stop: none (the recipe's: --stall off) or default Stall()")
    ap.add_argument("--ensemble", type=int, default=Inpainting.recipe["ensemble"],
                    help="the answer is the mean, as functions, of the last this many Adam iterates (the recipe's; "
                         "0: the last iterate); the last iterate is reported beside it, not counted")
    ap.add_argument("--ensemble-every", type=int, default=Inpainting.recipe["ensemble_every"],
                    help="with --ensemble: Adam steps between the iterates (the recipe's)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--csv", default=None, help="also write every run here (after each image and mask)")
    ap.add_argument("--plots", default=None, help="write the figures of each first seed's network here")
    ap.add_argument("--from-csv", default=None, help="only print the tables of these --csv files (comma separated)")
    args = ap.parse_args()
    if args.from_csv:
        from_csv(args.from_csv.split(","), [c for c in args.classical.split(",") if c])
        return
    if args.steps != "auto":
        args.steps = int(args.steps)
    torch.set_num_threads(args.threads)

    seeds = [int(s) for s in args.seeds.split(",")]
    methods = [c for c in args.classical.split(",") if c]
    recipe = {k: getattr(args, k) for k in ("activation", "width", "depth", "omega", "first_omega", "lr", "batch",
                                            "steps", "prior", "prior_weight", "prior_decay", "prior_sampling",
                                            "prior_region", "hessian_form", "n_jitter", "antialias", "keep_known",
                                            "predict_filter", "stall", "ensemble", "ensemble_every")}
    print(f"{args.size}^2, seeds {seeds}, {args.time_limit:g} s per network run, torch threads "
          f"{torch.get_num_threads()}; recipe (None = the problem's default): {recipe}")
    rows, verdicts = [], []
    for image in args.images.split(","):
        for mask in args.masks.split(","):
            cell = []
            for seed in seeds:
                base = problem_for(image, mask, args.size, seed, args)
                ref = base.reference()
                common = {"image": image, "mask": mask, "size": args.size, "seed": seed,
                          "missing": int(base.missing.sum())}
                for method in methods:
                    t0 = time.perf_counter()
                    fields = base.classical(method).fields  # cached: the time is the solve only when uncached
                    m = evaluate(None, ref, prediction=fields)
                    cell.append({**common, "method": method, **m, "time": time.perf_counter() - t0, "steps": 0})
                if not args.no_net:
                    m = run_net(base, seed, args)
                    cell.append({**common, "method": "network", **{k: m[k] for k in COLUMNS}, "steps": m["steps"]})
                    if "last_iterate" in m:
                        cell.append({**common, "method": "network, last iterate (not counted)",
                                     **{k: m["last_iterate"][k] for k in COLUMNS if k != "time"}, "time": m["time"],
                                     "steps": m["steps"]})
                    if "other" in m:
                        cell.append({**common, "method": f"network, {m['other']['filter']} predict (not counted)",
                                     **{k: m["other"][k] for k in COLUMNS if k != "time"}, "time": m["time"],
                                     "steps": m["steps"]})
                    if args.plots and seed == seeds[0]:
                        fd_rows = [r for r in cell if r["seed"] == seed and r["method"] in methods]
                        best = max(fd_rows, key=lambda r: r["psnr_region"])["method"] if fd_rows else "biharmonic"
                        out = Path(args.plots) / f"{image}_{mask.replace(':', '')}"
                        paths = problem_figures(base, m["net"], ref, out, method=best)
                        print("  wrote " + ", ".join(str(q) for q in paths))
                    print(f"  {image} {mask} seed {seed}: network {m['psnr_region']:.2f} dB, SSIM "
                          f"{m['ssim_region']:.3f}, {m['steps']} steps, {m['time']:.0f} s ({m['stop']})", flush=True)
            rows += cell
            verdicts += cell_table(cell, methods)
            if args.csv:  # after every cell, so that a run stopped early keeps what it measured
                write_csv(args.csv, rows)
    summary(verdicts)


COLUMNS = ("psnr_region", "ssim_region", "psnr", "ssim", "time")


def cell_table(cell: list[dict], methods: list[str]) -> list[tuple]:
    """Print one image and mask's table (medians over the seeds); the verdict as a
    one-element list (empty without a network or FD methods)."""
    image, mask = cell[0]["image"], cell[0]["mask"]
    seeds = sorted({r["seed"] for r in cell})
    names = list(dict.fromkeys(r["method"] for r in cell))
    med = {name: {k: statistics.median(r[k] for r in cell if r["method"] == name) for k in COLUMNS}
           for name in names}
    count = f", {cell[0]['missing']} pixels missing with seed {cell[0]['seed']}" if cell[0]["missing"] else ""
    print(f"\n### {image}, {mask} at {cell[0]['size']}^2 (median over seeds {seeds}{count})\n")
    print("| method | PSNR missing [dB] | SSIM missing | time [s] |")
    print("|---|---|---|---|")
    fd = [m for m in methods if m in med]
    best_p = max((med[c]["psnr_region"] for c in fd), default=None)
    best_s = max((med[c]["ssim_region"] for c in fd), default=None)
    for name, v in med.items():
        def star(val, best):
            return "*" if name in fd and val == best else ""
        print(f"| {name} | {v['psnr_region']:.2f}{star(v['psnr_region'], best_p)} | "
              f"{v['ssim_region']:.4f}{star(v['ssim_region'], best_s)} | {v['time']:.0f} |")
    if "network" not in med or not fd:
        return []
    net = med["network"]
    ok = net["psnr_region"] > best_p and net["ssim_region"] > best_s
    print(f"\nnetwork - best classical (*): {net['psnr_region'] - best_p:+.2f} dB, SSIM "
          f"{net['ssim_region'] - best_s:+.4f}: {'beats' if ok else 'does not beat'} both\n", flush=True)
    return [(image, mask, len(seeds), net["psnr_region"] - best_p, net["ssim_region"] - best_s, ok)]


def summary(verdicts: list[tuple]) -> None:
    if not verdicts:
        return
    print("\n### Summary: network minus the best classical method (median over seeds)\n")
    print("| image | mask | seeds | PSNR [dB] | SSIM | beats both |")
    print("|---|---|---|---|---|---|")
    for image, mask, n, dp, ds, ok in verdicts:
        print(f"| {image} | {mask} | {n} | {dp:+.2f} | {ds:+.4f} | {'yes' if ok else 'no'} |")
    print(f"\n{sum(v[-1] for v in verdicts)} of {len(verdicts)} cells beat the best classical method in both")


def write_csv(path: str, rows: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def from_csv(paths: list[str], methods: list[str]) -> None:
    """Print the tables of runs stored by --csv (several files: e.g. one per seed)."""
    rows = []
    for path in paths:
        with open(path, newline="") as fh:
            for r in csv.DictReader(fh):
                rows.append({**r, **{k: float(r[k]) for k in COLUMNS}, "seed": int(r["seed"]),
                             "size": int(r["size"]), "missing": int(r.get("missing") or 0)})
    verdicts = []
    for key in dict.fromkeys((r["image"], r["mask"]) for r in rows):
        verdicts += cell_table([r for r in rows if (r["image"], r["mask"]) == key], methods)
    summary(verdicts)

if __name__ == "__main__":
    main()
