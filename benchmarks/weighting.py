"""Loss weighting and adaptive sampling at the same step budget (issue 8).

    python benchmarks/weighting.py --problems helmholtz2d --activations tanh --methods fixed,gradnorm --steps 5000
    python benchmarks/weighting.py --problems wave1d --activations siren,metasin \\
        --methods fixed,gradnorm,causal,rad,gradnorm+causal --steps 20000 --device cuda

Methods are "+"-joined parts: ``fixed`` (the problem's normalised terms, weight 1),
``raw`` (fixed weights that undo the problem's normalisation: the plain mean squares of
Wang, Teng & Perdikaris 2021), ``gradnorm`` (:class:`GradNormWeights`), ``causal``
(:class:`CausalWeights`, time-dependent problems only) and ``rad``
(:class:`RADSampler`). A method a problem cannot run (causal without time; RAD or causal
without ``Problem.pointwise_residual``) is reported as skipped with the reason.

Prints a markdown table: problem, activation, method, steps, final and best logged rel L2
against the reference, ms per step, and the final term weights. Targets (issue 8):
gradnorm >= 5x lower rel L2 than fixed weights with tanh on Helmholtz2D (a1 = 1, a2 = 4;
published 50-100x at 40k steps); the best Wave1D combination <= 1e-3 on a GPU budget and
<= 1e-2 on 2 CPU cores within 30 minutes.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from pinn_sine import train
from pinn_sine.adaptive import RADSampler
from pinn_sine.nets import ACTIVATIONS, MLP
from pinn_sine.problems import Poisson2D, Wave1D
from pinn_sine.problems.base import Problem
from pinn_sine.weighting import CausalWeights, FixedWeights, GradNormWeights

PARTS = ("fixed", "raw", "gradnorm", "causal", "rad")
OMEGA_FAMILIES = ("siren", "finer")


def make_problem(name: str) -> Problem:
    if name == "helmholtz2d":
        # imported here: Helmholtz2D is newer than this script's other problems
        from pinn_sine.problems.helmholtz import Helmholtz2D

        return Helmholtz2D(a1=1.0, a2=4.0)
    if name == "wave1d":
        return Wave1D()
    if name == "poisson2d":
        return Poisson2D()
    raise SystemExit(f'Invalid problem "{name}". Must be one of ["helmholtz2d", "poisson2d", "wave1d"].')


def raw_weights(problem: Problem) -> dict[str, float]:
    """Fixed weights that turn the problem's normalised terms back into plain mean squares
    (the unbalanced loss the gradient-norm paper starts from)."""
    if hasattr(problem, "_pde_scale"):  # Helmholtz2D
        return {"pde": problem._pde_scale, "boundary": problem._u2}
    if hasattr(problem, "_f_scale_value"):  # Poisson2D
        return {"pde": problem._f_scale_value}
    if isinstance(problem, Wave1D):
        c = problem.c
        return {"pde": c ** 4 * problem._l2, "initial": problem._u2, "initial_velocity": c ** 2 * problem._g2,
                "boundary": problem._u2}
    raise SystemExit(f"no raw weights known for {problem.name}")


def build(method: str, problem: Problem, args) -> dict | str:
    """train() keyword arguments for ``method``, or the reason it cannot run."""
    parts = method.split("+")
    bad = [p for p in parts if p not in PARTS]
    if bad:
        raise SystemExit(f"unknown method parts {bad}; valid: {list(PARTS)} joined by '+'.")
    has_hook = problem.has_pointwise
    kw: dict = {}
    if "gradnorm" in parts:
        initial = raw_weights(problem) if "raw" in parts else None
        kw["weights"] = GradNormWeights(update_every=args.gradnorm_every, alpha=args.gradnorm_alpha, initial=initial)
    elif "raw" in parts:
        kw["weights"] = FixedWeights(raw_weights(problem))
    if "causal" in parts:
        if "t" not in problem.input_names:
            return f"{problem.name} is not time-dependent"
        if not has_hook:
            return f"{type(problem).__name__} has no pointwise_residual"
        kw["causal"] = CausalWeights(eps=args.causal_eps, chunks=args.causal_chunks)
    if "rad" in parts:
        if not has_hook:
            return f"{type(problem).__name__} has no pointwise_residual"
        kw["adaptive"] = RADSampler(pool=args.rad_pool, k=args.rad_k, c=args.rad_c, refresh_every=args.rad_every)
    return kw


def build_net(problem: Problem, activation: str, args) -> MLP:
    kw = {}
    if activation in OMEGA_FAMILIES:
        first = args.first_omega if args.first_omega is not None else problem.default_first_omega
        kw = {"first_omega": first}
    net = MLP(problem.in_dim, problem.out_dim, args.width, args.depth, activation=ACTIVATIONS[activation](),
              seed=args.seed, **kw)
    return net.to(args.device)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", default="helmholtz2d,wave1d")
    ap.add_argument("--activations", default="siren,metasin")
    ap.add_argument("--methods", default="fixed,gradnorm,causal,rad")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--lbfgs-steps", type=int, default=0)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--lr", type=float, default=None, help="default: the problem's")
    ap.add_argument("--schedule", default="cosine", choices=["cosine", "exponential", "constant"])
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--first-omega", type=float, default=None)
    ap.add_argument("--gradnorm-every", type=int, default=100)
    ap.add_argument("--gradnorm-alpha", type=float, default=0.9)
    ap.add_argument("--causal-eps", type=float, default=1.0)
    ap.add_argument("--causal-chunks", type=int, default=32)
    ap.add_argument("--rad-pool", type=int, default=None)
    ap.add_argument("--rad-k", type=float, default=1.0)
    ap.add_argument("--rad-c", type=float, default=1.0)
    ap.add_argument("--rad-every", type=int, default=500)
    ap.add_argument("--resolution", type=int, default=None, help="reference grid (default: 257 for "
                    "helmholtz2d, the problem's otherwise)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)

    split = lambda s: [x.strip() for x in s.split(",") if x.strip()]  # noqa: E731
    activations = split(args.activations)
    unknown = [a for a in activations if a not in ACTIVATIONS]
    if unknown:
        ap.error(f"unknown activations {unknown}; valid: {sorted(ACTIVATIONS)}")
    rows = []
    for pname in split(args.problems):
        problem = make_problem(pname)
        res = args.resolution or (257 if pname == "helmholtz2d" else None)
        ref = problem.reference(res)
        lr = problem.default_lr if args.lr is None else args.lr
        for act in activations:
            for method in split(args.methods):
                kw = build(method, problem, args)
                if isinstance(kw, str):
                    rows.append((pname, act, method, args.steps, None, None, None, f"skipped: {kw}"))
                    print(f"# {pname} / {act} / {method}: skipped ({kw})", file=sys.stderr, flush=True)
                    continue
                net = build_net(problem, act, args)
                t0 = time.perf_counter()
                result = train(problem, net, steps=args.steps, lr=lr, batch=args.batch, seed=args.seed,
                               schedule=args.schedule, lbfgs_steps=args.lbfgs_steps, reference=ref,
                               eval_every=max(args.steps // 10, 1), log_every=max(args.steps // 100, 1),
                               progress=False, **kw)
                wall = time.perf_counter() - t0
                last = result.history[-1]
                weights = ", ".join(f"{k[2:]}={v:.3g}" for k, v in last.items() if k.startswith("w_"))
                if "causal_w0" in last:
                    weights += f"; causal min w={min(v for k, v in last.items() if k.startswith('causal_w')):.3g}"
                best = min((r["rel_l2"] for r in result.history if "rel_l2" in r), default=float("nan"))
                rows.append((pname, act, method, args.steps, result.final["rel_l2"], best,
                             1e3 * result.timings["step_median"], weights))
                print(f"# {pname} / {act} / {method}: rel_l2 {result.final['rel_l2']:.3e} in {wall:.0f} s; "
                      "logged: " + ", ".join(f"{r['step']}:{r['rel_l2']:.2e}" for r in result.history
                                             if "rel_l2" in r), file=sys.stderr, flush=True)

    dev = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"\nMLP {args.width}x{args.depth}, batch {args.batch}, {args.schedule} lr (problem default unless "
          f"--lr), gradnorm every {args.gradnorm_every} (alpha {args.gradnorm_alpha}), causal eps "
          f"{args.causal_eps} / {args.causal_chunks} chunks, RAD k={args.rad_k} c={args.rad_c} every "
          f"{args.rad_every}, seed {args.seed}, device {dev}\n")
    print("| problem | activation | method | steps | rel L2 (final) | rel L2 (best logged) | ms / step | final weights |")
    print("|---|---|---|---|---|---|---|---|")
    for pname, act, method, steps, err, best, ms, note in rows:
        if err is None:
            print(f"| {pname} | {act} | {method} | {steps} | - | - | - | {note} |")
        else:
            print(f"| {pname} | {act} | {method} | {steps} | {err:.3e} | {best:.3e} | {ms:.2f} | {note} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
