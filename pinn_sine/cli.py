"""The ``pinn-sine`` command: solve, reference, problems.

``torchrun --nproc_per_node=N -m pinn_sine.cli solve ...`` trains data-parallel over N
processes (:mod:`pinn_sine.distributed`; nccl on GPUs, gloo on CPUs); rank 0 writes.

Names are mapped to classes here and nowhere else; an unknown name lists the valid ones.
Problem parameters are given as ``--name value`` after the fixed options
(``--t-max 0.4`` becomes ``t_max=0.4``); an option the problem does not take is an error.
"""
from __future__ import annotations

import argparse
import ast
import csv
import inspect
import json
import sys
from pathlib import Path

import torch

from . import nets
from .nets import ACTIVATIONS, MLP, FourierFeatures
from .problems import PROBLEMS


def _lookup(table: dict, name: str, what: str):
    try:
        return table[name]
    except KeyError:
        raise SystemExit(f'Invalid {what} "{name}". Must be one of {sorted(table)}.') from None


def _parse_value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def problem_kwargs(cls, extra: list[str]) -> dict:
    """Turn ``--some-name value`` pairs into constructor keyword arguments of ``cls``."""
    params = inspect.signature(cls.__init__).parameters
    valid = [p for p in params if p not in ("self", "args", "kwargs")]
    out = {}
    it = iter(extra)
    for token in it:
        if not token.startswith("--"):
            raise SystemExit(f"unexpected argument {token!r}; problem options look like --name value.")
        key = token[2:].replace("-", "_")
        if "=" in key:
            key, value = key.split("=", 1)
        else:
            value = next(it, None)
            if value is None:
                raise SystemExit(f"option {token} needs a value.")
        if key not in valid:
            raise SystemExit(f'{cls.__name__} has no option "{key}". Valid options: {valid}.')
        out[key] = _parse_value(value)
    return out


def build_problem(name: str, extra: list[str], constraint: str = "soft"):
    """The problem ``name`` with the options ``extra`` (``--name value``) and, for
    ``constraint="hard"``, its boundary/initial data built into the network."""
    cls = _lookup(PROBLEMS, name, "problem")
    kwargs = problem_kwargs(cls, extra)
    if constraint != "soft":
        if "constraint" not in inspect.signature(cls.__init__).parameters:
            raise SystemExit(f"{cls.__name__} has no constraint option (--constraint {constraint}); problems with "
                             f"hard constraints: {sorted(n for n, c in PROBLEMS.items() if c.offers_hard_constraint)}.")
        kwargs["constraint"] = constraint
    try:
        return cls(**kwargs)
    except ValueError as err:
        raise SystemExit(f"{cls.__name__}: {err}") from None


def build_net(problem, args) -> MLP:
    fourier = FourierFeatures(args.fourier, args.fourier_scale) if args.fourier else None
    try:
        return nets.build_net(problem, args.activation, width=args.width, depth=args.depth, seed=args.seed,
                              omega=args.act_omega, K=args.K, first_omega=args.first_omega,
                              hidden_omega=args.hidden_omega, fourier=fourier)
    except ValueError as err:
        raise SystemExit(str(err)) from None


def _write_history(result, path: Path) -> None:
    cols, rows = result.history_table()
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        w.writerows(rows)


def _parse_weights(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        term, sep, value = item.partition("=")
        try:
            out[term] = float(value)
        except ValueError:
            sep = ""
        if not sep or not term:
            raise SystemExit(f"--weight takes TERM=VALUE, e.g. --weight boundary=10; got {item!r}.")
    return out


def build_training(args) -> dict:
    """The weighting and sampling objects of ``train`` from the solve options."""
    from .adaptive import RADSampler
    from .weighting import CausalWeights, FixedWeights, GradNormWeights

    fixed = _parse_weights(args.weight)
    try:
        if args.weighting == "gradnorm":
            weights = GradNormWeights(update_every=args.gradnorm_every, alpha=args.gradnorm_alpha, initial=fixed)
        else:
            weights = FixedWeights(fixed)
        causal = (None if args.causal_eps is None
                  else CausalWeights(eps=args.causal_eps, chunks=args.causal_chunks))
        adaptive = (RADSampler(pool=args.rad_pool, k=args.rad_k, c=args.rad_c, refresh_every=args.rad_every)
                    if args.rad else None)
    except ValueError as err:
        raise SystemExit(str(err)) from None
    return {"weights": weights, "causal": causal, "adaptive": adaptive}


def build_stages(args) -> list:
    """The optimizer stages of ``solve``: Adam (``--steps``), then L-BFGS
    (``--lbfgs-steps``), then Gauss-Newton (``--gn-steps``), each only when asked for."""
    from .optim import LBFGS, Adam, GaussNewton

    resample = build_resample(args.resample_every)
    try:
        stages = [Adam(args.steps, lr=args.lr, resample_every=resample)]
        if args.lbfgs_steps:
            stages.append(LBFGS(args.lbfgs_steps, batch=args.lbfgs_batch))
        if args.gn_steps:
            stages.append(GaussNewton(args.gn_steps, batch=args.gn_batch, damping=args.gn_damping))
    except ValueError as err:
        raise SystemExit(f"--steps/--lbfgs-steps/--gn-steps: {err}") from None
    return stages


def build_resample(value: str):
    if value == "fixed":
        return value
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f'--resample-every takes an integer >= 1 or "fixed", got {value!r}.') from None


def cmd_solve(args, extra) -> int:
    from . import distributed
    from .figures import problem_figures
    from .plots import field_comparison, loss_curves
    from .train import train
    from .validation.evaluate import evaluate
    from .validation.reference import ReferenceField
    from .validation.store import save_reference

    problem = build_problem(args.problem, extra, args.constraint)
    options = build_training(args)
    stages = build_stages(args)
    # Under torchrun: one process per device, gradients all-reduced, rank 0 writes.
    ctx = distributed.init_from_env(args.device)
    try:
        net = build_net(problem, args)
        if args.dtype == "float64":
            net = net.double()
        net = problem.constrain(net.to(ctx.device))
        if not ctx.is_main:
            distributed.barrier()  # rank 0 computes (and caches) the reference first
        ref = problem.reference(args.resolution)
        if ctx.is_main:
            distributed.barrier()
        out = Path(args.out)
        if ctx.is_main:
            out.mkdir(parents=True, exist_ok=True)
            procs = f"; {ctx.world_size} processes" if ctx.active else ""
            hard = (f"; hard constraint ({', '.join(problem.hard_constraint().conditions)} exact)"
                    if problem.constraint == "hard" else "")
            print(f"{problem!r}\n{args.activation} MLP width={args.width} depth={args.depth}{hard}; reference "
                  f"{ref.solver} on {ref.grid_shape}{procs}")
        result = train(problem, net, stages=stages, batch=args.batch, seed=args.seed, engine=args.engine,
                       reference=ref, eval_every=args.eval_every,
                       checkpoint=out / "checkpoint.pt", checkpoint_every=args.checkpoint_every, resume=args.resume,
                       progress=not args.quiet, compile=args.compile, **options)
        if not ctx.is_main:
            return 0
    finally:
        distributed.shutdown()
    pred = problem.predict(net, ref)
    metrics = evaluate(net, ref, prediction=pred, exact=problem.exact_solution)
    metrics.update({"problem": problem.name, "activation": args.activation, "steps": args.steps,
                    "lbfgs_steps": args.lbfgs_steps, "lbfgs_batch": args.lbfgs_batch, "gn_steps": args.gn_steps,
                    "gn_batch": args.gn_batch, "stages": [s.describe() for s in stages], "engine": args.engine,
                    "constraint": problem.constraint,
                    "seed": args.seed, "timings": result.timings,
                    "processes": ctx.world_size,
                    "weighting": options["weights"].describe(),
                    "causal": None if options["causal"] is None else options["causal"].describe(),
                    "adaptive": None if options["adaptive"] is None else options["adaptive"].describe(),
                    "resample_every": stages[0].resample_every})
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    _write_history(result, out / "history.csv")
    # A prediction file describes the network, not the reference: its own parameters (so
    # its hash is not the reference's) and none of the reference's error estimate.
    net_params = {"reference_hash": ref.hash, "activation": args.activation, "width": args.width,
                  "depth": args.depth, "steps": args.steps, "lbfgs_steps": args.lbfgs_steps, "gn_steps": args.gn_steps,
                  "seed": args.seed, "constraint": problem.constraint}
    predicted = ReferenceField(problem=ref.problem, params=net_params, coords=ref.coords, fields=pred,
                               solver=f"pinn-{args.activation}", order=0, spacing=ref.spacing, mask=ref.mask,
                               attrs={k: v for k, v in ref.attrs.items()
                                      if k not in ("error_estimate", "error_method")})
    save_reference(predicted, out / "prediction.h5", kind="prediction",
                   description=f"{args.activation} MLP width={args.width} depth={args.depth}, {args.steps} steps "
                               f"(seed {args.seed}) on {problem!r}; rel L2 {metrics['rel_l2']:.3e} against the "
                               f"{ref.solver} reference",
                   extra_attrs={"reference_solver": ref.solver, "training_json": json.dumps(metrics, default=str)})
    figures = [loss_curves(result.history, out / "loss.png", title=f"{problem.name} / {args.activation}")]
    custom = problem_figures(problem, net, ref, out)
    if custom is not None:
        figures += custom
    elif len(ref.coords) == 2:
        figures.append(field_comparison(pred, ref, out / "field.png",
                                        title=f"{problem.name} / {args.activation}: rel L2 {metrics['rel_l2']:.2e}"))
    summary = {k: v for k, v in metrics.items() if isinstance(v, float)}
    print("metrics: " + ", ".join(f"{k}={v:.3e}" for k, v in summary.items()))
    print(f"time: {result.timings['total']:.1f} s; wrote {out}/metrics.json, history.csv, prediction.h5, "
          + ", ".join(p.name for p in figures))
    return 0


def cmd_reference(args, extra) -> int:
    from .validation.store import reference_with_info, save_reference

    problem = build_problem(args.problem, extra)
    ref, info = reference_with_info(problem, args.resolution, cache=not args.no_cache)
    print(f"{problem.name}: {ref.solver} (order {ref.order}) on grid {dict(zip(ref.coords, ref.grid_shape))}, "
          f"spacing {ref.spacing}")
    if ref.error_estimate is None:
        print("error estimate: unknown")
    else:
        print(f"error estimate: {ref.error_estimate:.3e} relative L2 ({ref.error_method or 'method unknown'})")
    if info.source == "cache":
        print(f"loaded from the cache {info.path} in {info.seconds:.3g} s")
    else:
        where = f"; cached at {info.path}" if info.stored else ""
        print(f"computed in {info.seconds:.3g} s ({info.reason}){where}")
    if args.out:
        print(f"wrote {save_reference(ref, args.out)}")
    return 0


def cmd_compare(args, extra) -> int:
    from .compare import ACTIVATION_NAMES, compare

    if extra:
        raise SystemExit(f"unrecognized arguments: {' '.join(extra)}")
    problems = args.problems.split(",") if args.problems else sorted(PROBLEMS)
    activations = args.activations.split(",") if args.activations else list(ACTIVATION_NAMES)
    seeds = [int(s) for s in args.seeds.split(",")]
    constraints = args.constraints.split(",")
    try:
        rows = compare(problems, activations, seeds, steps=args.steps, seconds=args.seconds, width=args.width,
                       depth=args.depth, out=args.out, jobs=args.jobs, progress=not args.quiet,
                       constraints=constraints)
    except ValueError as err:
        raise SystemExit(str(err)) from None
    from .compare import markdown_table

    print(markdown_table(rows))
    print(f"\nwrote {args.out}/results.csv, results.md, errors.png and best/<problem>/ figures")
    return 0


def cmd_problems(args, extra) -> int:
    for name, cls in PROBLEMS.items():
        doc = (inspect.getdoc(cls) or "").splitlines()[0]
        print(f"{name}: {cls.__name__} -- {doc}")
        for p in list(inspect.signature(cls.__init__).parameters.values())[1:]:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            default = "" if p.default is inspect.Parameter.empty else f" = {p.default!r}"
            print(f"    --{p.name.replace('_', '-')}{default}")
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pinn-sine", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    solve = sub.add_parser("solve", help="train a network on a problem and compare it with the FD reference")
    solve.add_argument("problem", help=f"one of {sorted(PROBLEMS)}")
    solve.add_argument("--activation", default="siren", help=f"one of {sorted(ACTIVATIONS)}")
    solve.add_argument("--width", type=int, default=128)
    solve.add_argument("--depth", type=int, default=3)
    solve.add_argument("--act-omega", type=float, default=None,
                       help="omega of Sine/Finer (hidden layers); --omega is a problem parameter")
    solve.add_argument("--first-omega", type=float, default=None,
                       help="omega of the first layer (default: the problem's suggestion)")
    solve.add_argument("--hidden-omega", type=float, default=None)
    solve.add_argument("--K", type=int, default=None, help="MetaSin components")
    solve.add_argument("--fourier", type=int, default=0, help="number of Fourier features (0: none)")
    solve.add_argument("--fourier-scale", type=float, default=1.0)
    solve.add_argument("--steps", type=int, default=2000)
    solve.add_argument("--lbfgs-steps", type=int, default=0)
    solve.add_argument("--lbfgs-batch", type=int, default=None,
                       help="points of the one fixed L-BFGS batch (default: --batch; a larger batch "
                            "keeps L-BFGS from overfitting it)")
    solve.add_argument("--gn-steps", type=int, default=0,
                       help="Gauss-Newton (Levenberg-Marquardt) steps after Adam and L-BFGS; use --dtype float64")
    solve.add_argument("--gn-batch", type=int, default=None,
                       help="interior points of the fixed Gauss-Newton batch (default: --batch)")
    solve.add_argument("--gn-damping", type=float, default=1e-3, help="initial relative Gauss-Newton damping")
    solve.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: the problem's)")
    solve.add_argument("--batch", type=int, default=None)
    solve.add_argument("--seed", type=int, default=0)
    solve.add_argument("--engine", default="jet", choices=["jet", "autograd"])
    solve.add_argument("--constraint", default="soft", choices=["soft", "hard"],
                       help="boundary/initial data as loss terms (soft) or built into the network (hard)")
    solve.add_argument("--weighting", default="fixed", choices=["fixed", "gradnorm"],
                       help="loss-term weights: fixed (--weight) or gradient-norm balancing")
    solve.add_argument("--weight", action="append", default=[], metavar="TERM=VALUE",
                       help="fixed weight of a loss term (repeatable; the initial weight with gradnorm)")
    solve.add_argument("--gradnorm-every", type=int, default=1000, help="steps between gradnorm updates")
    solve.add_argument("--gradnorm-alpha", type=float, default=0.9, help="gradnorm moving-average factor")
    solve.add_argument("--causal-eps", type=float, default=None,
                       help="causal weighting in time with this eps (time-dependent problems; off by default)")
    solve.add_argument("--causal-chunks", type=int, default=32, help="time chunks of causal weighting")
    solve.add_argument("--resample-every", default="1", help='steps between fresh points, or "fixed"')
    solve.add_argument("--rad", action="store_true", help="residual-based adaptive sampling of the interior")
    solve.add_argument("--rad-pool", type=int, default=None, help="RAD candidates per process (default 10 x batch)")
    solve.add_argument("--rad-k", type=float, default=1.0)
    solve.add_argument("--rad-c", type=float, default=1.0)
    solve.add_argument("--rad-every", type=int, default=1000, help="steps between RAD pool refreshes")
    solve.add_argument("--compile", action="store_true")
    solve.add_argument("--resolution", type=int, default=None, help="reference grid resolution")
    solve.add_argument("--eval-every", type=int, default=250)
    solve.add_argument("--checkpoint-every", type=int, default=500)
    solve.add_argument("--resume", default=None, help="checkpoint to resume from")
    solve.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    solve.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    solve.add_argument("--out", default="runs/latest")
    solve.add_argument("--quiet", action="store_true", help="no progress bar")
    solve.set_defaults(func=cmd_solve)

    ref = sub.add_parser("reference", help="compute (or load from cache) a problem's FD reference")
    ref.add_argument("problem")
    ref.add_argument("--resolution", type=int, default=None)
    ref.add_argument("--out", default=None, help="also write the HDF5 file here")
    ref.add_argument("--no-cache", action="store_true")
    ref.set_defaults(func=cmd_reference)

    comp = sub.add_parser("compare", help="problems x activations x seeds against the FD references")
    comp.add_argument("--problems", default=None, help="comma-separated (default: all)")
    comp.add_argument("--activations", default=None,
                      help="comma-separated from siren,finer,metasin,tanh,relu,fourier-tanh (default: all)")
    comp.add_argument("--seeds", default="0")
    budget = comp.add_mutually_exclusive_group(required=True)
    budget.add_argument("--steps", type=int, default=None, help="Adam steps per cell")
    budget.add_argument("--seconds", type=float, default=None, help="wall-clock seconds per cell")
    comp.add_argument("--width", type=int, default=64)
    comp.add_argument("--depth", type=int, default=3)
    comp.add_argument("--jobs", type=int, default=1, help="cells run in parallel processes")
    comp.add_argument("--constraints", default="soft",
                      help="comma-separated from soft,hard: each cell runs under each (default: soft)")
    comp.add_argument("--out", default="runs/compare")
    comp.add_argument("--quiet", action="store_true")
    comp.set_defaults(func=cmd_compare)

    probs = sub.add_parser("problems", help="list the problems and their parameters")
    probs.set_defaults(func=cmd_problems)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "problems":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args.func(args, extra)


if __name__ == "__main__":
    sys.exit(main())
