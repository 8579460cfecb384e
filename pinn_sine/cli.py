"""The ``pinn-sine`` command: solve, reference, observe, compare, export, problems.

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
import math
import os
import re
import shutil
import sys
import textwrap
from pathlib import Path

import torch

from . import nets
from .kernels import KernelUnavailableError, set_backend
from .nets import ACTIVATIONS, MLP, NET_NAMES, FourierFeatures, PeriodicEncoding
from .problems import PROBLEMS
from .problems.registry import load_problem_modules, unknown_name_message


#: the upper end of sizes (width, batch, resolution, ...): torch's sizes are int32
SIZE_LIMIT = (2**31, "2**31")
#: seeds are integers in [0, 2**63) (nets.mlp.check_seed)
SEED_LIMIT = (2**63, "2**63")
#: threads per process beyond which a value is a mistake rather than a machine
MAX_THREADS = 1024


def _integer(lo: int | None, hi: tuple[int, str] | None = None):
    """An argparse type: an integer >= ``lo`` (None: any) and below ``hi`` (its value and
    how to write it; None: no bound); argparse names the option."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if lo is not None and value < lo:
            raise argparse.ArgumentTypeError(f"must be an integer >= {lo}, got {text!r}")
        if hi is not None and value >= hi[0]:
            raise argparse.ArgumentTypeError(f"must be an integer in [{lo}, {hi[1]}), got {text!r}")
        return value
    parse.__name__ = "integer"
    return parse


def _threads(text: str) -> int:
    value = _integer(1)(text)
    if value > MAX_THREADS:
        raise argparse.ArgumentTypeError(f"must be an integer in [1, {MAX_THREADS}], got {text!r}")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None


def _finite_float(text: str) -> float:
    """An argparse type: a finite number."""
    value = _number(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    value = _number(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def _periodic_spec(text: str) -> str:
    """An argparse type: ``NAME=PERIOD[,NAME=PERIOD...]`` (periods finite and > 0) or
    ``none``; kept as text (config.json stores it so), parsed by :func:`_periods`."""
    _periods(text)
    return text.strip()


def _periods(text: str) -> dict[str, float]:
    """``--periodic``'s text as name -> period ({} for ``none``)."""
    text = text.strip()
    if text.lower() == "none":
        return {}
    out: dict[str, float] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise argparse.ArgumentTypeError(f"takes NAME=PERIOD[,NAME=PERIOD...] (e.g. x=2.0) or none, got {text!r}")
        try:
            period = _positive_float(value.strip())
        except argparse.ArgumentTypeError as err:
            raise argparse.ArgumentTypeError(f"the period of {name!r} {err}") from None
        if name in out:
            raise argparse.ArgumentTypeError(f"{name!r} is given twice; got {text!r}")
        out[name] = period
    return out


def _fraction(text: str) -> float:
    value = _finite_float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {text!r}")
    return value


def _device(text: str) -> str:
    """An argparse type: a torch device this build can use."""
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a torch device; use cpu or cuda (cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text!r}: this torch build sees no CUDA device "
                                             f"(torch {torch.__version__}); use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{text!r}: there are {torch.cuda.device_count()} CUDA devices")
    elif device.type != "cpu":
        raise argparse.ArgumentTypeError(f"{text!r}: pinn-sine runs on cpu or cuda")
    return text


def _int_list(text: str) -> list[int]:
    """An argparse type: distinct comma-separated seeds (a repeated seed would run a cell twice)."""
    try:
        values = [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes comma-separated integers, e.g. 0,1,2; got {text!r}") from None
    if not all(0 <= v < SEED_LIMIT[0] for v in values):
        raise argparse.ArgumentTypeError(f"takes distinct comma-separated integers in [0, {SEED_LIMIT[1]}), e.g. "
                                         f"0,1,2; got {text!r}")
    _no_repeats(values, text)
    return values


def _no_repeats(values: list, text: str) -> None:
    seen = set()
    for v in values:
        if v in seen:
            raise argparse.ArgumentTypeError(f"{v!r} is given twice; got {text!r}")
        seen.add(v)


def _name_list(what: str, valid):
    """An argparse type: distinct comma-separated names from ``valid`` (a list, or a
    callable returning one); an empty text or name is refused, not read as "all"."""
    def parse(text: str) -> list[str]:
        names = list(valid() if callable(valid) else valid)
        names_text = "[" + ", ".join(repr(n) for n in names) + "]"
        values = text.split(",")
        if not text.strip():
            raise argparse.ArgumentTypeError(f"takes comma-separated names from {names_text}; got {text!r}")
        if not all(v.strip() for v in values):
            raise argparse.ArgumentTypeError(f"takes comma-separated names from {names_text}; got {text!r} "
                                             "(an empty name)")
        values = [v.strip() for v in values]
        _no_repeats(values, text)
        for v in values:
            if v not in names:
                raise argparse.ArgumentTypeError(unknown_name_message(what, v, names))
        return values
    parse.__name__ = f"{what} names"
    return parse


def build_stall(text: str):
    """The :class:`~pinn_sine.stall.Stall` rule of a ``--stall`` value: ``off`` (None),
    ``default`` (``Stall()``) or ``WINDOW[:RTOL]`` (an integer window counts steps, a
    decimal one is a fraction of the stage's steps)."""
    from .stall import Stall

    text = str(text).strip()
    if text in ("off", "none"):
        return None
    if text == "default":
        return Stall()
    window, _, rtol = text.partition(":")
    try:
        w = int(window) if window.strip().isdigit() else float(window)
        r = float(rtol) if rtol else Stall.rtol
    except ValueError:
        raise ValueError(f"expected off, default or WINDOW[:RTOL] (e.g. 0.2:1e-6 or 500), got {text!r}.") from None
    return Stall(window=w, rtol=r)


def _stall_spec(text: str) -> str:
    """An argparse type: a ``--stall`` value (checked by :func:`build_stall`, kept as written)."""
    try:
        build_stall(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _stage_spec(text: str) -> str:
    """An argparse type: a stage spec ``NAME[:key=value,...]`` (checked by
    :func:`pinn_sine.optim.parse_stage_spec`, kept as written: config.json records it)."""
    from .optim import parse_stage_spec

    try:
        parse_stage_spec(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


class _Parser(argparse.ArgumentParser):
    """An error is one line naming the option at fault (no usage block), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _HelpFormatter(argparse.HelpFormatter):
    """Help text with every option's default."""

    def _get_help_string(self, action):
        """The help with " (default: ...)" added, unless the text already says what the
        default is or there is none to show (None, an empty list, a flag)."""
        text = action.help or ""
        if action.default is not argparse.SUPPRESS and action.option_strings and "default" not in text.lower() \
                and action.default not in (None, [], "") \
                and not isinstance(action, (argparse._StoreTrueAction, argparse._HelpAction)):
            text += " (default: %(default)s)"
        return text


def _lookup(table: dict, name: str, what: str):
    try:
        return table[name]
    except KeyError:
        raise SystemExit(unknown_name_message(what, name, table)) from None


#: environment variable: torch and BLAS threads of a pinn-sine process (default 1)
THREADS_ENV = "PINN_SINE_THREADS"


def resolve_threads(value: int | None) -> int:
    """``--threads``, else ``PINN_SINE_THREADS``, else 1: one thread per process is the
    default because on a shared 2-core machine two threads ran the demo's steps about 4x
    slower than one (README, "Threads"; ``benchmarks/threads.py``)."""
    if value is not None:
        return value
    text = os.environ.get(THREADS_ENV, "").strip()
    if not text:
        return 1
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_THREADS:
        raise SystemExit(f"{THREADS_ENV}={text!r}: must be an integer >= 1 and <= {MAX_THREADS} (threads per "
                         "process).")
    return value


def set_threads(n: int) -> None:
    """Hold torch (intra-op) and the BLAS/OpenMP libraries of NumPy/SciPy to ``n`` threads."""
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    threadpool_limits(limits=n)


def default_out(problem: str, root: str = "runs") -> Path:
    """A fresh run folder ``runs/<problem>-<UTC date>-<time>`` (``-2``, ``-3``, ... when
    that name is taken), so that every ``solve`` without ``--out`` gets its own."""
    import datetime

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{problem}-{stamp}"
    out, k = base, 1
    while out.exists():
        k += 1
        out = base.with_name(f"{base.name}-{k}")
    return out


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
    return _make_problem(cls, problem_kwargs(cls, extra), constraint)


def _make_problem(cls, kwargs: dict, constraint: str):
    kwargs = dict(kwargs)
    if constraint != "soft":
        if "constraint" not in inspect.signature(cls.__init__).parameters:
            raise SystemExit(f"{cls.__name__} has no constraint option (--constraint {constraint}); problems with "
                             f"hard constraints: {sorted(n for n, c in PROBLEMS.items() if c.offers_hard_constraint)}.")
        kwargs["constraint"] = constraint
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise SystemExit(f"{cls.__name__}: {err}") from None


def build_net(problem, args) -> MLP:
    fourier = FourierFeatures(args.fourier, args.fourier_scale) if args.fourier else None
    try:
        return nets.build_net(problem, args.activation, width=args.width, depth=args.depth, seed=args.seed,
                              omega=args.act_omega, K=args.K, first_omega=args.first_omega,
                              hidden_omega=args.hidden_omega, fourier=fourier, periodic=_periodic_arg(problem, args))
    except ValueError as err:
        raise SystemExit(str(err)) from None


def _periodic_arg(problem, args):
    """``build_net``'s ``periodic`` from --periodic and --periodic-modes: None (the
    problem's own), {} (none) or an encoding with the modes asked for."""
    spec, modes = getattr(args, "periodic", None), getattr(args, "periodic_modes", None)
    periods = None if spec is None else _periods(spec)
    if modes is None or periods == {}:  # --periodic none: no encoding, whatever the modes (a --config's)
        return periods
    chosen = dict(getattr(problem, "periodic", None) or {}) if periods is None else periods
    if not chosen:
        raise SystemExit(f"--periodic-modes {modes}: no input is periodic ({type(problem).__name__} declares no "
                         "periodic input); give --periodic NAME=PERIOD, e.g. --periodic x=2.0, or drop "
                         "--periodic-modes.")
    try:
        return PeriodicEncoding(chosen, modes)
    except ValueError as err:
        raise SystemExit(f"--periodic: {err}") from None


def _write_history(result, path: Path) -> None:
    """history.csv, written atomically like every file of a run."""
    import io

    from ._io import write_text

    cols, rows = result.history_table()
    text = io.StringIO(newline="")
    w = csv.writer(text)
    w.writerow(cols)
    w.writerows(rows)
    write_text(path, text.getvalue())


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


#: the options ``--stage`` replaces: the shorthand of the Adam, L-BFGS and Gauss-Newton stages
STAGE_SHORTHAND = ("steps", "lr", "resample_every", "lbfgs_steps", "lbfgs_batch", "gn_steps", "gn_batch",
                   "gn_damping")


def build_stages(args) -> list:
    """The optimizer stages of ``solve``.

    With ``--stage`` (repeatable), the stages it lists, in order; on ``--resume`` the
    k-th ``--stage`` updates the run's k-th stage, which only its steps may change (a
    name alone keeps it), the run's later stages stay, and further ``--stage`` add
    stages. Without it, a run made with ``--stage`` (``--resume``, ``--config``) gets its
    stages back from config.json's ``"stages"``; any other run gets the shorthand: Adam
    (``--steps``), then L-BFGS (``--lbfgs-steps``), then Gauss-Newton (``--gn-steps``),
    each only when asked for. ``--stage`` and the shorthand options are not mixed."""
    stored = getattr(args, "stored", None)
    stored_specs = (stored or {}).get("options", {}).get("stage") or []
    if args.stage or stored_specs:
        given = _given_options(args, STAGE_SHORTHAND)
        if given:
            flags = ", ".join(_flag(k) for k in given)
            why = ("--stage gives the stages" if args.stage
                   else "this run's stages were given with --stage (config.json's \"stages\")")
            raise SystemExit(f"{flags}: {why}; {flags} {'is' if len(given) == 1 else 'are'} the shorthand for the "
                             "default stages and cannot be mixed with it. Put the settings into --stage, e.g. "
                             "--stage adam:steps=2000,lr=1e-3 --stage lbfgs:steps=500,batch=4096.")
    if args.stage:
        resuming = stored is not None and args.resume is not None and args.config is None
        return _stages_from_specs(args, stored["stages"] if resuming and stored.get("stages") else [])
    if stored_specs:
        args.stage = list(stored_specs)  # recorded again: the run is still described by its stages
        source = f"--config {args.config}" if args.config is not None else f"--resume {args.resume}"
        if not stored.get("stages"):  # a hand-written config with only the specs
            return _stages_from_specs(args, [], specs=stored_specs, source=source)
        return [_described_stage(desc, k, source) for k, desc in enumerate(stored["stages"])]
    return _shorthand_stages(args)


def _shorthand_stages(args) -> list:
    from .optim import LBFGS, Adam, GaussNewton

    resample = build_resample(args.resample_every)
    made = [("--steps/--lr", lambda: Adam(args.steps, lr=args.lr, resample_every=resample), True),
            ("--lbfgs-steps/--lbfgs-batch", lambda: LBFGS(args.lbfgs_steps, batch=args.lbfgs_batch),
             args.lbfgs_steps),
            ("--gn-steps/--gn-batch/--gn-damping",
             lambda: GaussNewton(args.gn_steps, batch=args.gn_batch, damping=args.gn_damping), args.gn_steps)]
    stages = []
    for options, make, wanted in made:
        if not wanted:
            continue
        try:
            stages.append(make())
        except ValueError as err:
            raise SystemExit(f"{options}: {err}") from None
    return stages


def _given_options(args, keys) -> list[str]:
    """Which of the solve options ``keys`` the command line gives (not their defaults,
    which a stored config may have set)."""
    unset = object()
    argv = getattr(args, "argv", None)
    argv = sys.argv[1:] if argv is None else argv
    probe, _ = make_parser(solve_defaults=dict.fromkeys(keys, unset)).parse_known_args(argv)
    return [k for k in keys if getattr(probe, k, unset) is not unset]


def _described_stage(desc, k: int, source: str):
    """Stage ``k`` of a stored config's ``"stages"``, rebuilt."""
    from .optim import stage_from_description

    try:
        return stage_from_description(desc)
    except ValueError as err:
        raise SystemExit(f"{source}: config.json's stage {k + 1}: {err}") from None


def _merged(stored: dict, spec: dict) -> dict:
    """A stored stage description with a spec's settings over it; a part given as
    ``part.option=...`` without a new name updates the stored part's options."""
    out = dict(stored)
    for key, value in spec.items():
        was = out.get(key)
        if isinstance(value, dict) and "name" not in value and was is not None:
            out[key] = {**(was if isinstance(was, dict) else {"name": was}), **value}
        else:
            out[key] = value
    return out


def _stages_from_specs(args, stored: list[dict], *, specs=None, source: str = "--stage") -> list:
    """The stages of ``--stage`` (or ``specs``), each over the stored stage at its
    position (``stored``: a resumed run's config.json "stages"; later stored stages are
    kept). A resumed stage whose settings other than steps change is refused, listing
    each change with the run's value."""
    from .optim import parse_stage_spec, stage_from_description
    from .optim.spec import stage_name

    specs = args.stage if specs is None else specs
    stages, changed = [], []
    for k, text in enumerate(specs):
        where = f"{source} {text}" if source == "--stage" else f"{source}: its stage {text!r}"
        try:
            spec = parse_stage_spec(text)
            if k < len(stored):
                was = stored[k]
                if stage_name(was.get("stage")) != spec["stage"]:
                    raise SystemExit(f"--resume {args.resume}: --stage {text} is stage {k + 1}, which in the run is "
                                     f"{was.get('stage')}; a resumed run keeps its stages in order: give "
                                     f"--stage {was.get('stage')}:steps=N to extend it (later stages may be added).")
                stage = stage_from_description(_merged(was, spec))
                now, before = _canon_stage(stage.describe()), _canon_stage(was)
                changed += [(k, text, key, now.get(key), before.get(key)) for key in sorted(set(now) | set(before))
                            if now.get(key) != before.get(key)]
            else:
                stage = stage_from_description(spec)
        except ValueError as err:
            raise SystemExit(f"{where}: {err}") from None
        stages.append(stage)
    if changed:
        listed = "; ".join(f"--stage {text}: {key}={now!r} (the run's stage {k + 1} has {was!r})"
                           for k, text, key, now, was in changed)
        raise SystemExit(f"--resume {args.resume}: a stage's settings cannot change when a run resumes, only its "
                         f"steps: {listed}. Start a new run (another --out) to change them.")
    for k in range(len(specs), len(stored)):
        stages.append(_described_stage(stored[k], k, f"--resume {args.resume}"))
    return stages


def _canon_stage(desc: dict) -> dict:
    """A stage description as JSON stores it, without what a resume may change (steps,
    and the state that follows from them)."""
    return {k: v for k, v in _canonical(desc).items() if k not in ("steps", "schedule_steps")}


def build_resample(value: str):
    if value == "fixed":
        return value
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f'--resample-every takes an integer >= 1 or "fixed", got {value!r}.') from None


#: solve options that are not part of a run's stored configuration
_NOT_STORED = ("command", "func", "config", "resume", "overwrite", "argv", "stored", "module", "lock",
               "backend_before", "recipe_applied", "recipe_problem")
#: keys earlier versions wrote into a config's options that are no solve option (dropped on reading)
_LEGACY_OPTIONS = ("backend_before",)
#: stored options whose values depend on the machine: checked when used, not when read
_MACHINE_OPTIONS = ("device",)
#: solve options a resumed run may change: its budget, how it is watched, where it runs.
#: Every other option (the seed, dtype, batch, network, engine, constraint, the problem
#: and its options, the optimizer and weighting settings, the reference) is the run's.
RESUME_MAY_CHANGE = ("steps", "lbfgs_steps", "gn_steps", "time_limit", "eval_every", "checkpoint_every", "quiet",
                     "threads", "kernels", "device")
#: the settings of a stage a resume may add (its steps option 0 in the stored run)
_STAGE_SETTINGS = {"lbfgs_steps": ("lbfgs_batch",), "gn_steps": ("gn_batch", "gn_damping")}
#: solve options only the command line decides: where a run writes, what it overwrites or
#: resumes (a stored config's values for these are ignored)
COMMAND_LINE_ONLY = ("out", "overwrite", "resume", "config", "module", "modules")


def solve_options(args) -> dict:
    """The solve options of ``args`` by name, as ``config.json`` stores them."""
    return {k: v for k, v in vars(args).items() if k not in _NOT_STORED}


def _resume_paths(value: str) -> tuple[Path, Path]:
    """``--resume DIR_OR_CHECKPOINT``: the checkpoint file and its run folder."""
    from .marching import window_checkpoint
    from .runs import CHECKPOINT_NAME

    path = Path(value)
    if path.is_dir():
        ck = path / CHECKPOINT_NAME
        if not ck.exists() and not window_checkpoint(ck, 0).exists():  # a march killed in window 0 has that one
            raise SystemExit(f"--resume {value}: the folder holds no {CHECKPOINT_NAME}.")
        return ck, path
    if not path.exists():
        raise SystemExit(f"--resume {value}: no such checkpoint file or run folder.")
    return path, path.parent


def stored_config(args) -> dict | None:
    """The run config ``solve`` starts from: ``--config FILE``, else the ``config.json``
    beside ``--resume``'s checkpoint (its ``out`` becomes that folder); None without."""
    from .runs import CONFIG_NAME, read_config

    if args.config is not None:
        path = Path(args.config)
    elif args.resume is not None:
        _, folder = _resume_paths(args.resume)
        path = folder / CONFIG_NAME
        if not path.exists():
            return None  # a bare checkpoint: the command line describes the run
    else:
        return None
    try:
        config = read_config(path, require_digest=args.config is None)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"--{'config' if args.config is not None else 'resume'}: {err}") from None
    source = f"--config {path}" if args.config is not None else f"--resume {args.resume} ({path})"
    if not isinstance(config["options"], dict):
        raise SystemExit(f"{source}: its options are a {type(config['options']).__name__}, not a JSON object of "
                         "solve options.")
    config["stored_modules"] = list(config["options"].get("modules") or [])
    # Where a run writes, what it overwrites or resumes: the command line's alone.
    config["options"] = check_stored_options({k: v for k, v in config["options"].items()
                                              if k not in COMMAND_LINE_ONLY}, source)
    if args.config is None:
        config["options"]["out"] = str(path.parent)
    return config


def check_stored_options(options: dict, source: str) -> dict:
    """A stored config's solve options, checked as the command line checks them (an
    unknown option, a value outside an option's choices, a value its type refuses: one
    line naming ``source``, the option, its value and what is valid) and converted as the
    command line converts them."""
    import difflib

    actions = make_parser().solve_actions
    out = {}
    for key, value in options.items():
        if key in _LEGACY_OPTIONS:
            continue
        action = actions.get(key)
        if action is None:
            close = difflib.get_close_matches(str(key), list(actions), n=1)
            hint = f' Did you mean "{close[0]}"?' if close else ""
            raise SystemExit(f"{source}: unknown option {key}={value!r}.{hint} The options are those of "
                             "pinn-sine solve --help (dashes as underscores).")
        out[key] = _stored_value(action, key, value, source)
    return out


def _stored_value(action: argparse.Action, key: str, value, source: str):
    """One stored option's value, as the parser would have made it from the command line."""
    where = f"{source}: {key}={value!r}"
    if isinstance(action, argparse._StoreTrueAction):
        if not isinstance(value, bool):
            raise SystemExit(f"{where}: must be true or false.")
        return value
    if isinstance(action, argparse._AppendAction):
        example = '["adam:steps=500", "lbfgs:steps=100"]' if key == "stage" else '["boundary=10"]'
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise SystemExit(f"{where}: must be a list of {action.metavar} strings, e.g. {example}.")
        for item in value if action.type is not None else ():
            try:
                action.type(item)
            except argparse.ArgumentTypeError as err:
                raise SystemExit(f"{source}: {key}: {err}") from None
        return value
    if value is None:
        if action.default is not None:
            raise SystemExit(f"{where}: must be a value (remove it to take the default {action.default!r}).")
        return None
    if action.choices is not None:
        if value not in action.choices:
            raise SystemExit(f"{source}: {key}={value!r} is not one of {list(action.choices)}.")
        return value
    if action.type is not None:
        if not isinstance(value, (str, int, float)):
            raise SystemExit(f"{where}: must be a number or a string.")
        if key in _MACHINE_OPTIONS:  # checked where it is used: a resume may run elsewhere (--device cpu)
            if not isinstance(value, str):
                raise SystemExit(f"{where}: must be a string such as \"cpu\" or \"cuda\".")
            return value
        try:
            return action.type(str(value))
        except argparse.ArgumentTypeError as err:
            raise SystemExit(f"{where}: {err}.") from None
    if isinstance(value, int) and not isinstance(value, bool) and isinstance(action.default, str):
        return str(value)  # e.g. resample_every 100
    if not isinstance(value, str):
        raise SystemExit(f"{where}: must be a string.")
    return value


def _canonical(value):
    """``value`` as JSON stores it (tuples become lists)."""
    return json.loads(json.dumps(value, default=str))


def _flag(key: str) -> str:
    return "problem" if key == "problem" else "--" + key.replace("_", "-")


def recipe_flags(recipe: dict) -> str:
    """A recipe as the command-line options it stands for."""
    out = []
    for key, value in recipe.items():
        if key == "stage":
            out += [f"--stage {v}" for v in value]
        elif key == "problem":
            out += [f"{_flag(k)} {v}" for k, v in value.items()]
        else:
            out.append(f"{_flag(key)} {value}")
    return " ".join(out)


#: recipe options that belong to the recipe's stages (an ensemble of the last iterates
#: every N steps fits its step count): dropped with them when the command line gives stages
_OF_THE_STAGES = ("ensemble", "ensemble_every")


def apply_recipe(args) -> tuple[dict, dict]:
    """Give the solve options of the problem's :attr:`~pinn_sine.problems.Problem.recipe`
    that the command line leaves unset (all of them unless ``--no-recipe``); its stages,
    and the options of :data:`_OF_THE_STAGES` with them, only when no stage option
    (``--stage``, ``--steps``, ``--lbfgs-steps``, ``--gn-steps`` and their settings) is
    given, its problem options only where the command line gives none. Returns (the
    solve options set, the problem options to use where not given)."""
    cls = PROBLEMS.get(args.problem) if args.problem is not None else None
    recipe = dict(getattr(cls, "recipe", None) or {})
    if not recipe or args.no_recipe:
        return {}, {}
    problem_options = dict(recipe.pop("problem", None) or {})
    actions = make_parser().solve_actions
    unknown = sorted(k for k in recipe if k not in actions or k in _NOT_STORED or k in COMMAND_LINE_ONLY)
    if unknown:
        raise SystemExit(f"{cls.__name__}.recipe: {unknown} {'is no' if len(unknown) == 1 else 'are no'} solve "
                         f"option(s) a recipe may set; e.g. activation, width, depth, dtype, stage, stall.")
    given = set(_given_options(args, [k for k in recipe if k != "stage"] + list(STAGE_SHORTHAND)))
    stages_given = bool(args.stage) or not given.isdisjoint(STAGE_SHORTHAND)
    applied = {}
    for key, value in recipe.items():
        if key == "stage":
            if stages_given:
                continue
            value = [_stage_spec(v) for v in value]
        elif key in given or (stages_given and key in _OF_THE_STAGES and "stage" in recipe):
            continue
        setattr(args, key, value)
        applied[key] = value
    return applied, problem_options


def check_resume_options(args, extra: list[str], stored: dict) -> None:
    """Refuse, in one line listing them with the run's values, the options the command
    line gives a resumed run that it cannot take (not in :data:`RESUME_MAY_CHANGE`): the
    run would go on with its own values, so a new value would be ignored or break it.
    The same value given again is no change. The settings of a stage the run did not have
    may be given with it (``--gn-steps 50 --gn-batch 512``)."""
    options = stored["options"]
    added = {k for steps, settings in _STAGE_SETTINGS.items() if not options.get(steps) for k in settings}
    changed = []
    for key, was in options.items():
        if key in RESUME_MAY_CHANGE or key in COMMAND_LINE_ONLY or key in added or key == "stage":
            # --stage: build_stages checks the stages themselves
            continue
        now = getattr(args, key, was)
        if now != was:
            changed.append((_flag(key), now, was))
    if args.problem == stored["problem"]["name"] and args.problem in PROBLEMS:
        cls = PROBLEMS[args.problem]
        stored_options = stored["problem"].get("options") or {}
        params = inspect.signature(cls.__init__).parameters
        for key, now in problem_kwargs(cls, extra).items():
            default = params[key].default
            was = stored_options.get(key, "its default" if default is inspect.Parameter.empty else default)
            if _canonical(now) != _canonical(was):  # a tuple given, a list stored: the same
                changed.append((_flag(key), now, was))
    if not changed:
        return
    argv = getattr(args, "argv", None) or sys.argv[1:]

    def position(item) -> int:
        flag, now, _ = item
        token = str(now) if flag == "problem" else flag
        return next((i for i, t in enumerate(argv) if t == token or t.startswith(token + "=")), len(argv))

    listed = ", ".join(f"{flag} {now} (the run has {was})" for flag, now, was in sorted(changed, key=position))
    may = ", ".join(_flag(k) for k in RESUME_MAY_CHANGE)
    raise SystemExit(f"--resume {args.resume}: these options cannot change when a run resumes: {listed}; only {may} "
                     "may. Start a new run (another --out) to change them.")


def _check_out(args, resume_folder: Path | None) -> Path:
    """``--out``: creatable, writable, claimed by this process (``runs.RunLock``, stored
    as ``args.lock``; rank 0 only under torchrun) and holding no other run (unless
    --overwrite, or it is the folder being resumed). The claim comes before the check,
    so two runs started together into one folder cannot both pass it."""
    from .runs import RUN_FILES, FolderInUse, RunLock, holds_run

    out = Path(args.out)
    if str(args.out).strip() == "":
        raise SystemExit("--out '': give a folder name (or leave --out out for a new runs/<problem>-<time>).")
    if out.exists() and not out.is_dir():
        raise SystemExit(f"--out {out}: is a file, not a folder.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SystemExit(f"--out {out}: cannot create the folder ({err.strerror or err}).") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise SystemExit(f"--out {out}: the folder is not writable.")
    if int(os.environ.get("RANK", "0")) == 0:
        try:
            args.lock = RunLock(out)
        except FolderInUse as err:
            raise SystemExit(f"--out {err}") from None
    if holds_run(out) and not args.overwrite:
        same = resume_folder is not None and out.resolve() == resume_folder.resolve()
        if not same:
            found = [name for name in RUN_FILES if (out / name).exists()]
            raise SystemExit(f"--out {out} already holds a run ({', '.join(found)}); give --resume {out} to "
                             "continue it, --overwrite to replace it, or another --out.")
    return out


def cmd_solve(args, extra) -> int:
    """``pinn-sine solve``: train, then write metrics, history, prediction and figures.

    A run that fails before its first checkpoint (a bad option found by ``train``, an
    interrupt while the reference is computed) leaves nothing behind that would block
    its folder: the config.json it wrote is removed, and the folder too if this run
    created it and it is empty."""
    from .runs import CHECKPOINT_NAME, CONFIG_NAME

    cls = _lookup(PROBLEMS, args.problem, "problem")
    if args.out is None:
        args.out = str(_resume_paths(args.resume)[1] if args.resume is not None else default_out(cls.name))
    out = Path(args.out)
    created = not out.exists()
    args.lock = None
    try:
        return _solve(args, extra, cls)
    except BaseException:
        if args.lock is not None and args.resume is None and out.is_dir() and not (out / CHECKPOINT_NAME).exists():
            (out / CONFIG_NAME).unlink(missing_ok=True)
            args.lock.release()
            if created and not any(out.iterdir()):
                out.rmdir()
        raise
    finally:
        if args.lock is not None:
            args.lock.release()
        if hasattr(args, "backend_before"):
            set_backend(args.backend_before)


def _solve(args, extra, cls) -> int:
    from . import distributed
    from .checkpoint import CheckpointError, check_compatible, load_checkpoint
    from .figures import problem_figures
    from .marching import march, window_checkpoint
    from .plots import field_comparison, loss_curves
    from .runs import CONFIG_NAME, RUN_FILES, json_text, run_config, versions
    from .train import TrainingDiverged, TrainingInterrupted, train
    from .validation.evaluate import describe_errors, evaluate, exact_on_grid, reference_limit
    from .validation.reference import ReferenceField
    from .validation.store import save_reference
    from ._io import write_text

    stored = getattr(args, "stored", None)
    options_base = {}
    if stored is not None and stored["problem"]["name"] == args.problem:
        options_base = dict(stored["problem"].get("options") or {})
    given = problem_kwargs(cls, extra)
    from_file = {k: v for k, v in options_base.items() if k not in given}
    if from_file:  # say what a stored file decided, paths (an image) included
        source = args.config if args.config is not None else f"{args.resume} (config.json)"
        print(f"problem options from {source}: " + ", ".join(f"{k}={v!r}" for k, v in from_file.items()))
    recipe_problem = {k: v for k, v in args.recipe_problem.items() if k not in given}
    problem_options = {**recipe_problem, **options_base, **given}
    problem = _make_problem(cls, problem_options, args.constraint)
    _make_inverse(problem, args)
    options = build_training(args)
    stages = build_stages(args)
    snapshots = _snapshot_ensemble(args, stages)
    resume, resume_folder, resumed_step, resumed = None, None, None, None
    if args.resume is not None:
        resume, resume_folder = _resume_paths(args.resume)
        try:
            if args.windows > 1 and not resume.exists() and window_checkpoint(resume, 0).exists():
                resumed = None  # a march killed in its first window: that window's checkpoint only
                resumed_step = int(load_checkpoint(window_checkpoint(resume, 0))["step"])
            else:
                resumed = load_checkpoint(resume)
                resumed_step = int(resumed["step"])
        except CheckpointError as err:
            raise SystemExit(f"--resume: {err}") from None
    # The network first: a bad --activation or width is refused before the folder exists.
    net = build_net(problem, args)
    out = _check_out(args, resume_folder)
    # Under torchrun: one process per device, gradients all-reduced, rank 0 writes.
    ctx = distributed.init_from_env(args.device)
    try:
        if args.dtype == "float64":
            net = net.double()
        net = problem.constrain(net.to(ctx.device))
        if resumed is not None:  # before config.json is rewritten
            try:
                check_compatible(resume, resumed["meta"], problem=problem.name, problem_params=problem.params(),
                                 net_config=getattr(net, "config", {}), inverse=problem.inverse_record())
            except CheckpointError as err:
                raise SystemExit(f"--resume: {err}") from None
        if ctx.is_main and args.overwrite and resume is None:
            for name in RUN_FILES:
                (out / name).unlink(missing_ok=True)
        if not ctx.is_main:
            distributed.barrier()  # rank 0 computes (and caches) the reference first
        try:
            ref = problem.reference(args.resolution)
        except ValueError as err:
            raise SystemExit(f"--resolution {args.resolution}: {err}") from None
        if ctx.is_main:
            distributed.barrier()
        kernels = _choose_kernels(args, stages, ctx.device)
        config = run_config(problem=problem, problem_options=problem_options, net=net, stages=stages,
                            options=solve_options(args), reference=ref, argv=getattr(args, "argv", None))
        config["kernels"] = kernels
        if resume is not None:
            config["resumed_from"] = {"checkpoint": str(resume), "step": resumed_step}
            if stored is not None and args.config is None and stored.get("run_id"):
                config["run_id"] = stored["run_id"]  # the same run, continued
        if ctx.is_main:
            write_text(out / CONFIG_NAME, json_text(config))
            procs = f"; {ctx.world_size} processes" if ctx.active else ""
            hard = (f"; hard constraint ({', '.join(problem.hard_constraint().conditions)} exact)"
                    if problem.constraint == "hard" else "")
            periodic = getattr(net, "config", {}).get("periodic")
            encoding = ("" if periodic is None
                        else "; " + PeriodicEncoding(periodic["periods"], periodic["modes"]).describe())
            print(f"{problem!r}\n{args.activation} MLP width={args.width} depth={args.depth} {args.dtype}{hard}"
                  f"{encoding}; "
                  f"reference {ref.solver} on {ref.grid_shape}{procs}; {args.threads} thread"
                  f"{'s' if args.threads > 1 else ''}; kernels {kernels['backend']} ({kernels['reason']})")
            print(f"run folder: {out}")
            if args.recipe_applied or recipe_problem:
                print(f"{problem.name}'s recipe (measured; --no-recipe for the plain defaults): "
                      + recipe_flags({**args.recipe_applied, **({"problem": recipe_problem} if recipe_problem else {})}))
            if resume is not None:
                print(f"resumed from step {resumed_step} ({resume})")
        try:
            common = dict(stages=stages, batch=args.batch, seed=args.seed, engine=args.engine, reference=ref,
                          eval_every=args.eval_every, checkpoint=out / "checkpoint.pt",
                          checkpoint_every=args.checkpoint_every, resume=resume, progress=not args.quiet,
                          compile=args.compile, time_limit=args.time_limit,
                          stall=build_stall(args.stall), callbacks=snapshots, **options)
            if args.windows > 1:
                result = march(problem, net, windows=args.windows, growth=args.window_growth,
                               **common)
                net = result.net
                for row in result.window_table():
                    print(f"window {row['window'] + 1}/{args.windows} [{row['t_start']:.4g}, {row['t_end']:.4g}]: "
                          f"{row['steps']} steps, {row['time']:.1f} s"
                          + ("" if row["rel_l2"] is None else f", rel_l2 {row['rel_l2']:.3e} (its reference)"))
            else:
                result = train(problem, net, **common)
        except CheckpointError as err:
            raise SystemExit(f"--resume: {err}") from None
        except ValueError as err:  # a setting train() refuses (e.g. the weight of an unknown term)
            raise SystemExit(str(err)) from None
        except KernelUnavailableError as err:
            raise SystemExit(f"kernels {kernels['backend']} ({kernels['reason']}): {err} Run with --kernels native."
                             ) from None
        except TrainingInterrupted as stop:
            if ctx.is_main:
                _write_stop(out, args, problem, stop.result, versions)
                print(f"interrupted at step {stop.step}; continue with: pinn-sine solve --resume {out}",
                      file=sys.stderr)
            raise SystemExit(130) from None
        except TrainingDiverged as err:
            if ctx.is_main and (out / "checkpoint.pt").exists() and err.result is not None:
                _write_stop(out, args, problem, err.result, versions)
            raise SystemExit(f"training stopped: {err}") from None
        if not ctx.is_main:
            return 0
    finally:
        distributed.shutdown()
    exact = problem.exact_solution
    exact_fields = None if exact is None else exact_on_grid(exact, ref)  # once: metrics and the figure
    ensemble = None
    if snapshots and not snapshots[0].snapshots:
        print(f"--ensemble: none of the {_kept(args, snapshots[0])} was kept (the run stopped before step "
              f"{snapshots[0].every} of its {snapshots[0].stage} stage); the answer is the last iterate.",
              file=sys.stderr)
        snapshots = []
    if snapshots:  # the answer is the mean of the kept iterates; the last iterate is reported beside it
        last = evaluate(net, ref, prediction=problem.predict(net, ref), exact=exact_fields)
        net = snapshots[0].ensemble()
        ensemble = {"members": net.members, "steps": snapshots[0].steps, "kept": _kept(args, snapshots[0]),
                    "last_iterate": {k: v for k, v in last.items() if isinstance(v, float)}}
    pred = problem.predict(net, ref)
    metrics = evaluate(net, ref, prediction=pred, exact=exact_fields)
    errors = list(metrics)
    summary = _stage_summary(args, stages, problem)
    metrics.update({"problem": problem.name, "activation": args.activation, "steps": summary["steps"],
                    "lbfgs_steps": summary["lbfgs_steps"], "lbfgs_batch": summary["lbfgs_batch"],
                    "gn_steps": summary["gn_steps"], "gn_batch": summary["gn_batch"],
                    "stages": [s.describe() for s in stages], "engine": args.engine,
                    **_stop_fields(result),
                    "constraint": problem.constraint,
                    "seed": args.seed, "timings": result.timings,
                    "processes": ctx.world_size, "threads": args.threads,
                    "torch_threads": torch.get_num_threads(), "kernels": kernels,
                    "weighting": options["weights"].describe(),
                    "causal": None if options["causal"] is None else options["causal"].describe(),
                    "adaptive": None if options["adaptive"] is None else options["adaptive"].describe(),
                    "resample_every": summary["resample_every"],
                    "final_losses": result.final_losses, "problem_params": problem.params(),
                    "net": getattr(net, "config", {}), "lr": summary["lr"],
                    "batch": problem.default_batch if args.batch is None else args.batch, "dtype": args.dtype,
                    "device": str(ctx.device), "reference_hash": ref.hash, "versions": versions(),
                    "command": config["command"], "config": CONFIG_NAME, "run_id": config["run_id"]})
    if args.windows > 1:
        metrics["windows"] = result.window_table()
    if ensemble is not None:
        metrics["ensemble"] = ensemble
        print(f"the mean of the last {ensemble['members']} {ensemble['kept']} (steps {ensemble['steps']}): "
              f"{describe_errors(metrics)}; the last iterate: {describe_errors(ensemble['last_iterate'])}")
    estimates = _inverse_results(problem, net, args, options, result, metrics)
    limit = reference_limit(metrics, ref)
    if limit is not None:
        metrics["warnings"] = [limit]
    write_text(out / "metrics.json", json_text(metrics))
    _write_history(result, out / "history.csv")
    # A prediction file describes the network, not the reference: its own parameters (so
    # its hash is not the reference's) and none of the reference's error estimate.
    net_params = {"reference_hash": ref.hash, "activation": args.activation, "width": args.width,
                  "depth": args.depth, "steps": summary["steps"], "lbfgs_steps": summary["lbfgs_steps"],
                  "gn_steps": summary["gn_steps"],
                  "seed": args.seed, "constraint": problem.constraint, "run_id": config["run_id"]}
    predicted = ReferenceField(problem=ref.problem, params=net_params, coords=ref.coords, fields=pred,
                               solver=f"pinn-{args.activation}", order=0, spacing=ref.spacing, mask=ref.mask,
                               attrs={k: v for k, v in ref.attrs.items()
                                      if k not in ("error_estimate", "error_method")})
    save_reference(predicted, out / "prediction.h5", kind="prediction",
                   description=f"{args.activation} MLP width={args.width} depth={args.depth}"
                               + ("" if ensemble is None
                                  else f" (the mean of {ensemble['members']} {ensemble['kept']})") + ", "
                               f"{result.steps_done} steps (seed {args.seed}) on {problem!r}; "
                               f"{describe_errors(metrics)} (the {ref.solver} reference)",
                   extra_attrs={"reference_solver": ref.solver, "training_json": json.dumps(metrics, default=str)})
    heading = f"{problem.name} / {args.activation}: {describe_errors(metrics)}"
    figures = [loss_curves(result.history, out / "loss.png", title=heading,
                           reference_error=metrics.get("reference_error"))]
    if problem.unknowns:
        from .plots import coefficient_history
        figures.append(coefficient_history(result.history, out / "coefficients.png", problem=problem,
                                           estimates=estimates, title=f"{problem.name}: recovered coefficients"))
    custom = problem_figures(problem, net, ref, out, activation=args.activation)
    if custom is not None:
        figures += custom
    elif len(ref.coords) == 2:
        figures.append(field_comparison(pred, ref, out / "field.png", title=heading,
                                        exact=exact_fields))
    print(f"result: {describe_errors(metrics)}" + "".join(
        f", {k}={metrics[k]:.3e}" for k in errors
        if isinstance(metrics[k], float) and k not in ("rel_l2", "rel_l2_exact")))
    for line in estimates.values():
        print(f"recovered {line}")
    if limit is not None:
        print(f"warning: {limit}", file=sys.stderr)
    print(f"stopped: {result.stop_message}; time: {result.timings['total']:.1f} s; wrote {out}/metrics.json, "
          "history.csv, prediction.h5, " + ", ".join(p.name for p in figures))
    return 0


def _make_inverse(problem, args) -> None:
    """``--unknown NAME=GUESS[:LOWER:UPPER]`` (repeatable) and ``--observations FILE``: the
    problem's unknowns and the data term; a bad declaration is one line naming the option."""
    from .problems.unknowns import parse_unknown

    for spec in args.unknown:
        try:
            unknown = parse_unknown(spec)
            problem.declare_unknown(unknown.name, unknown.guess, lower=unknown.lower, upper=unknown.upper)
        except ValueError as err:
            raise SystemExit(f"--unknown {spec}: {err}") from None
    if args.observations is not None:
        from .observations import Observations

        try:
            problem.observe(Observations.from_file(args.observations))
        except (ValueError, OSError) as err:
            raise SystemExit(f"--observations {args.observations}: {err}") from None
    if args.unknown and args.observations is None:
        print("warning: --unknown without --observations: the equation alone rarely determines a coefficient "
              "(any c solves a wave equation with its own solution); give measurements with --observations FILE.",
              file=sys.stderr)


def _inverse_results(problem, net, args, options, result, metrics) -> dict:
    """metrics.json's "coefficients" (each unknown's guess, bounds, value, and with
    observations its standard error and, for a synthetic draw of this problem, the truth)
    and "observations" (their record); the estimates, by name (empty for a forward run)."""
    if not problem.unknowns:
        if problem.observations is not None:
            metrics["observations"] = problem.observations.record()
        return {}
    from .inverse import estimate

    estimates = {}
    if problem.observations is not None:
        weighting = options.get("weights")
        names = [t.name for t in problem.terms()]
        weights = weighting.weights(names, -1, None) if weighting is not None else {}
        try:
            estimates = estimate(problem, net, n=problem.default_batch if args.batch is None else args.batch,
                                 seed=args.seed, weights=weights)
        except (ValueError, RuntimeError) as err:  # too few data, an SVD that fails to converge
            print(f"warning: no standard errors: {err}", file=sys.stderr)
        metrics["observations"] = problem.observations.record()
    values = problem.coefficient_values()
    metrics["coefficients"] = {
        name: {**unknown.describe(), "value": values[name],
               **({k: v for k, v in estimates[name].as_dict().items() if k != "value"} if name in estimates else {})}
        for name, unknown in problem.unknowns.items()}
    return estimates


def _stage_summary(args, stages, problem) -> dict:
    """metrics.json's one-line account of the stages (beside their full ``"stages"``):
    the shorthand options' values, or for a run given by ``--stage`` the steps of its
    stages of each kind added up, and the first Adam / L-BFGS / Gauss-Newton stage's
    rate, resampling and batch (None where the run has no such stage)."""
    if not args.stage:
        return {"steps": args.steps, "lbfgs_steps": args.lbfgs_steps, "lbfgs_batch": args.lbfgs_batch,
                "gn_steps": args.gn_steps, "gn_batch": args.gn_batch,
                "lr": problem.default_lr if args.lr is None else args.lr,
                "resample_every": stages[0].resample_every}

    def first(name):
        return next((s for s in stages if s.name == name), None)

    adam, lbfgs, gn = first("adam"), first("lbfgs"), first("gauss_newton")
    return {**{key: sum(s.steps for s in stages if s.name == name)
               for key, name in (("steps", "adam"), ("lbfgs_steps", "lbfgs"), ("gn_steps", "gauss_newton"))},
            "lbfgs_batch": getattr(lbfgs, "batch", None), "gn_batch": getattr(gn, "batch", None),
            "lr": None if adam is None else problem.default_lr if adam.lr is None else adam.lr,
            "resample_every": getattr(adam, "resample_every", None)}


def _snapshot_ensemble(args, stages) -> list:
    """``--ensemble K``: a :class:`~pinn_sine.callbacks.SnapshotEnsemble` as a callbacks list
    (empty without ``--ensemble``). With ``--ensemble-every N``: the iterates after every
    N-th step of the stages named like the run's last one (an Adam stage: the mean of its
    last iterates as functions, the inpainting recipe); without it: the last K batch fits
    of the Gauss-Newton stage that redraws its points (every = its ``resample_every``)."""
    if args.ensemble is None:
        if args.ensemble_every is not None:
            raise SystemExit(f"--ensemble-every {args.ensemble_every} sets the steps between the iterates of an "
                             "--ensemble; give --ensemble K too (e.g. --ensemble 6 --ensemble-every 250).")
        return []
    from .callbacks import SnapshotEnsemble

    if args.windows > 1:
        raise SystemExit("--ensemble averages the iterates of one network; it does not combine with --windows.")
    if args.ensemble_every is not None:
        return [SnapshotEnsemble(args.ensemble_every, args.ensemble, stage=stages[-1].name)]
    redrawn = [s for s in stages if s.name == "gauss_newton" and getattr(s, "resample_every", None)]
    if not redrawn:
        raise SystemExit("--ensemble K averages the fits of a Gauss-Newton stage's redrawn batches (e.g. "
                         "--stage gn:steps=2000,batch=2000,resample_every=50 --ensemble 8), or with "
                         "--ensemble-every N the iterates after every N-th step of the last stage (e.g. "
                         "--ensemble 6 --ensemble-every 250 for an Adam stage).")
    every = {s.resample_every for s in redrawn}
    if len(every) > 1:
        raise SystemExit(f"--ensemble: the Gauss-Newton stages redraw every {sorted(every)} steps; give them one "
                         "resample_every, or --ensemble-every N.")
    return [SnapshotEnsemble(every.pop(), args.ensemble)]


def _kept(args, snaps) -> str:
    """What ``--ensemble`` averages, in words: the redrawing Gauss-Newton stage's "batch
    fits", or with ``--ensemble-every`` "<stage> iterates (one every N steps)"."""
    return "batch fits" if args.ensemble_every is None else f"{snaps.stage} iterates (one every {snaps.every} steps)"


def _auto_kernels(args, stages, device) -> dict:
    """The automatic backend choice for this run (:func:`pinn_sine.kernels.auto_backend`:
    "compiled" for a SIREN/FINER run on the CPU with enough Adam steps to pay back the
    compilation, measured by ``benchmarks/breakeven.py``), set for the process."""
    from .kernels import auto_backend
    from .kernels.dispatch import SAFETY, break_even

    steps = sum(s.steps for s in stages if s.name == "adam")
    backend, reason = auto_backend(device=torch.device(device), steps=steps, families={args.activation},
                                   dtype=args.dtype)
    measured = break_even(getattr(torch, args.dtype))
    if backend == "compiled" and args.time_limit is not None and measured is not None:
        # The step saving is 15-30%: a compile of ~20 s pays back after about 5x its own
        # time; with the usual safety factor, a run limited to less never compiles.
        least = 5 * SAFETY * measured[2]
        if args.time_limit < least:
            backend, reason = None, (f"native: --time-limit {args.time_limit:g} s < {least:.0f} s, too short to pay "
                                     f"back a compile of ~{measured[2]:.0f} s")
    set_backend(backend)
    return {"backend": backend or "auto", "reason": reason}


def _stop_fields(result) -> dict:
    """What metrics.json says of how training ended: steps done and planned, why it
    stopped, and each stage that stalled (its index and label, the global and stage
    step it stopped at, its planned steps)."""
    return {"steps_done": result.steps_done, "steps_planned": result.steps_planned,
            "stop_reason": result.stop_reason, "stop_message": result.stop_message,
            "stalled": [{k: r[k] for k in ("index", "stage", "step", "stage_step", "steps")}
                        for r in result.stalls]}


def _write_stop(out: Path, args, problem, result, versions) -> None:
    """metrics.json of a run that stopped early (interrupted, diverged): how far it got and
    why, its last losses; no evaluation (a person waiting on Ctrl-C wants the prompt)."""
    from ._io import write_text
    from .runs import json_text

    metrics = {"problem": problem.name, "activation": args.activation, **_stop_fields(result),
               "final_losses": result.final_losses, "timings": result.timings, "threads": args.threads,
               "seed": args.seed, "versions": versions()}
    write_text(out / "metrics.json", json_text(metrics))


def _choose_kernels(args, stages, device) -> dict:
    """The activation backend of this run and why: ``--kernels`` (or PINN_SINE_KERNELS) as
    given, else the automatic choice; set for the process and recorded in config.json."""
    from .kernels import dispatch

    args.backend_before = dispatch.requested_backend()  # restored after the run (in-process callers)
    if args.kernels is not None:
        set_backend(args.kernels)
        return {"backend": args.kernels, "reason": "--kernels"}
    forced = dispatch.requested_backend()
    if forced is not None:
        return {"backend": forced, "reason": dispatch.ENV_VAR}
    return _auto_kernels(args, stages, device)


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


def _observe_points(problem, layout: str, n: int | None):
    """``--layout`` and ``--points`` as the points argument of ``observations.synthetic``
    (an int for a uniform draw, else a tensor) and the layout's text for its provenance
    (None for uniform, which the provenance records by itself)."""
    from . import observations

    kind, _, spec = layout.partition(":")
    names = problem.input_names

    def numbers(text: str, what: str) -> list[float]:
        try:
            values = [float(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise SystemExit(f"--layout {layout}: {what} must be comma-separated numbers, got {text!r}.") from None
        if not all(math.isfinite(v) for v in values):
            raise SystemExit(f"--layout {layout}: {what} must be finite numbers, got {text!r}.")
        return values

    def count() -> int:
        if n is None:
            raise SystemExit(f"--layout {kind} needs --points N (the number of observations).")
        return n

    try:
        if kind == "uniform" and not spec:
            return count(), None
        if kind == "line":
            ends = numbers(spec, "the ends")
            if len(ends) != 2 * len(names):
                raise SystemExit(f"--layout {layout}: a line in {problem.name}'s inputs {names} takes "
                                 f"{2 * len(names)} numbers (start, then end), got {len(ends)}.")
            return observations.line(ends[:len(names)], ends[len(names):], count()), layout
        if kind == "ring":
            values = numbers(spec, "cx,cy,r")
            if len(names) != 2 or len(values) != 3:
                raise SystemExit(f"--layout {layout}: a ring takes cx,cy,r in a problem of two inputs; "
                                 f"{problem.name} has {names}, and {len(values)} numbers were given.")
            return observations.ring(values[:2], values[2], count()), layout
        if kind == "sensors":
            where, at, times = spec.partition("@")
            if names[0] != "t" or not at:
                raise SystemExit(f"--layout {layout}: sensors take POSITIONS@NT (positions x1,x2,... with "
                                 "coordinates a/b in 2-D, NT equispaced times) in a time-dependent problem (first "
                                 f"input t); {problem.name} has {names}.")
            try:
                k = int(times)
            except ValueError:
                k = 0
            if k < 1:
                raise SystemExit(f"--layout {layout}: NT after @ must be an integer >= 1, got {times!r}.")
            positions = [numbers(item.replace("/", ","), "a position") for item in where.split(",") if item.strip()]
            if not positions or any(len(p) != len(names) - 1 for p in positions):
                raise SystemExit(f"--layout {layout}: each position has {len(names) - 1} coordinate(s) "
                                 f"{names[1:]} (separated by /), got {where!r}.")
            lo, hi = problem.bounds[0]
            points = observations.sensors(positions, torch.linspace(lo, hi, k, dtype=torch.float64))
            if n is not None and n != len(points):
                raise SystemExit(f"--points {n}: the sensors layout has {len(positions)} positions x {k} times = "
                                 f"{len(points)} points; leave --points out.")
            return points, layout
    except ValueError as err:
        raise SystemExit(f"--layout {layout}: {err}") from None
    raise SystemExit(f"--layout {layout}: expected uniform, line:START,END, ring:CX,CY,R or sensors:X1,X2,...@NT.")


def cmd_observe(args, extra) -> int:
    from .observations import synthetic

    out = Path(args.out)
    if out.suffix.lower() not in (".h5", ".hdf5"):
        raise SystemExit(f"--out {out}: observations are written as HDF5; name the file *.h5.")
    if out.exists() and not args.overwrite:
        raise SystemExit(f"--out {out} exists; pass --overwrite to replace it, or choose another file.")
    problem = build_problem(args.problem, extra)
    points, layout = _observe_points(problem, args.layout, args.points)
    try:
        obs = synthetic(problem, points, noise=args.noise, seed=args.seed, resolution=args.resolution,
                        source=args.source, layout=layout, max_interpolation_error=args.max_interpolation_error)
    except ValueError as err:
        raise SystemExit(f"{problem.name}: {err}") from None
    path = obs.save(out)
    prov = obs.provenance
    source = prov["source"]
    if source == "reference":
        error = prov["reference_error"]
        source += (f" (its error {'unknown' if error is None else f'{error:.1e}'}, interpolation "
                   f"{prov['interpolation']['error_estimate']:.1e})")
    print(f"{problem.name}: {len(obs)} observations ({layout or 'uniform'}, seed {args.seed}), noise {args.noise:g} "
          f"relative, source {source}; wrote {path}, digest {obs.digest()[:16]}")
    return 0

def cmd_compare(args, extra) -> int:
    from .compare import ACTIVATION_NAMES, compare

    if extra:
        raise SystemExit(f"unrecognized arguments: {' '.join(extra)}")
    problems = args.problems if args.problems is not None else sorted(PROBLEMS)
    activations = args.activations if args.activations is not None else list(ACTIVATION_NAMES)
    seeds = args.seeds
    constraints = args.constraints
    try:
        rows = compare(problems, activations, seeds, steps=args.steps, seconds=args.seconds, width=args.width,
                       depth=args.depth, out=args.out, jobs=args.jobs, progress=not args.quiet,
                       constraints=constraints, threads=args.threads, modules=args.modules)
    except ValueError as err:
        raise SystemExit(str(err)) from None
    from .compare import markdown_table

    print(markdown_table(rows))
    print(f"\nwrote {args.out}/results.csv, results.md, errors.png and best/<problem>/ figures")
    return 0


def cmd_export(args, extra) -> int:
    from .export import export_run

    if extra:
        raise SystemExit(f"unrecognized arguments: {' '.join(extra)}")
    try:
        paths = export_run(args.run, args.format, args.out)
    except ImportError as err:
        raise SystemExit(f"export: {err}") from None
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"export {args.run}: {err}") from None
    shown = paths if len(paths) <= 3 else [paths[0], "...", paths[-1]]
    print(f"wrote {len(paths)} file(s): " + ", ".join(map(str, shown)))
    return 0


def _parameter_docs(cls) -> dict[str, str]:
    """The ``Args:`` entries of a problem's class (and ``__init__``) docstring, one
    unwrapped text per parameter name ("a, b: text" documents both)."""
    out: dict[str, str] = {}
    for doc in (inspect.getdoc(cls), cls.__init__.__doc__ and inspect.getdoc(cls.__init__)):
        lines = (doc or "").splitlines()
        start = next((k + 1 for k, line in enumerate(lines) if line.strip() == "Args:"), len(lines))
        indent, names = None, []
        for line in lines[start:]:
            if not line.strip():
                continue
            depth = len(line) - len(line.lstrip())
            indent = depth if indent is None else indent
            entry = re.match(r"\s*([\w, ]+):\s*(.*)", line) if depth == indent else None
            if depth < indent or (depth == indent and entry is None):
                break
            if entry:
                names = [n.strip() for n in entry.group(1).split(",")]
                out.update((n, entry.group(2)) for n in names)
            else:
                out.update((n, f"{out[n]} {line.strip()}") for n in names)
    return out


def cmd_problems(args, extra) -> int:
    """Every problem: its summary, then each parameter as ``--name (default: ...)`` with
    its meaning and valid values from the docstring, wrapped, never cut."""
    width = max(60, min(100, shutil.get_terminal_size((100, 24)).columns))
    for name, cls in PROBLEMS.items():
        summary = " ".join((inspect.getdoc(cls) or "").split("\n\n")[0].split())
        print(textwrap.fill(f"{name}: {cls.__name__} -- {summary}", width, subsequent_indent="    "))
        docs = _parameter_docs(cls)
        for p in list(inspect.signature(cls.__init__).parameters.values())[1:]:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            default = "" if p.default is inspect.Parameter.empty else f" (default: {p.default!r})"
            print(f"  --{p.name.replace('_', '-')}{default}")
            print(textwrap.fill(docs.get(p.name, "(undocumented)"), width, initial_indent="      ",
                                subsequent_indent="      "))
        if cls.recipe:  # the measured set-up solve uses where the command line is silent
            print(textwrap.fill(f"recipe (what solve uses where the command line is silent; --no-recipe): "
                                f"{recipe_flags(cls.recipe)}", width, initial_indent="  ", subsequent_indent="      ",
                                break_on_hyphens=False, break_long_words=False))
        print()
    print("Set a parameter with `pinn-sine solve NAME --param value`; tuples and numbers are Python literals, "
          "e.g. --modes '((1, 1.0), (2, 0.5))'.")
    return 0


def make_parser(solve_defaults: dict | None = None) -> argparse.ArgumentParser:
    """The ``pinn-sine`` parser; ``solve_defaults`` (a stored run config's options) replace
    the defaults of ``solve``, so that the command line overrides them."""
    kw = {"allow_abbrev": False, "formatter_class": _HelpFormatter}
    parser = _Parser(prog="pinn-sine", description=__doc__.splitlines()[0], **kw)
    parser.add_argument("--module", action="append", default=[], metavar="MODULE",
                        help="import a module (a name like mypkg.problems, or a .py file) that registers problems "
                             "with register_problem, before the command (repeatable; also PINN_SINE_MODULES, and "
                             "installed packages' entry points in the group pinn_sine.problems)")
    sub = parser.add_subparsers(dest="command", required=True)
    pos, nonneg = _integer(1), _integer(0)
    size, nonneg_size = _integer(1, SIZE_LIMIT), _integer(0, SIZE_LIMIT)
    threads_help = (f"torch and BLAS threads of this process (default: {THREADS_ENV}, else 1: on a shared 2-core "
                    "machine two threads were about 4x slower per step than one)")

    solve = sub.add_parser("solve", help="train a network on a problem and compare it with the FD reference", **kw)
    solve.add_argument("problem", nargs="?", default=None,
                       help=f"one of {sorted(PROBLEMS)} (optional with --config or --resume of a run folder)")
    solve.add_argument("--activation", default="siren", help=f"one of {sorted(ACTIVATIONS)}")
    solve.add_argument("--width", type=size, default=128, help="hidden units per layer")
    solve.add_argument("--depth", type=size, default=3, help="hidden layers")
    solve.add_argument("--act-omega", type=_positive_float, default=None,
                       help="omega of Sine/Finer (hidden layers); --omega is a problem parameter")
    solve.add_argument("--first-omega", type=_positive_float, default=None,
                       help="omega of the first layer (default: the problem's suggestion)")
    solve.add_argument("--hidden-omega", type=_positive_float, default=None, help="omega of the hidden layers")
    solve.add_argument("--K", type=size, default=None, help="MetaSin components")
    solve.add_argument("--fourier", type=nonneg_size, default=0, help="number of Fourier features (0: none)")
    solve.add_argument("--fourier-scale", type=_positive_float, default=1.0, help="Fourier feature scale")
    solve.add_argument("--periodic", type=_periodic_spec, default=None, metavar="NAME=PERIOD[,...]|none",
                       help="make the network exactly periodic in these inputs, e.g. x=2.0 (default: the periods the "
                            "problem declares; none: no periodic encoding)")
    solve.add_argument("--periodic-modes", type=size, default=None, metavar="M",
                       help="harmonics per periodic input (default 1; none with --periodic none)")
    solve.add_argument("--steps", type=nonneg, default=2000, help="Adam steps")
    solve.add_argument("--lbfgs-steps", type=nonneg, default=0, help="L-BFGS steps after Adam")
    solve.add_argument("--lbfgs-batch", type=size, default=None,
                       help="points of the one fixed L-BFGS batch (default: --batch; a larger batch "
                            "keeps L-BFGS from overfitting it)")
    solve.add_argument("--gn-steps", type=nonneg, default=0,
                       help="Gauss-Newton (Levenberg-Marquardt) steps after Adam and L-BFGS; use --dtype float64")
    solve.add_argument("--gn-batch", type=size, default=None,
                       help="interior points of the fixed Gauss-Newton batch (default: --batch)")
    solve.add_argument("--gn-damping", type=_positive_float, default=1e-3,
                       help="initial relative Gauss-Newton damping")
    solve.add_argument("--stage", action="append", type=_stage_spec, default=[], metavar="NAME[:KEY=VALUE,...]",
                       help="an optimizer stage with its settings (the constructor's keywords), repeatable, in order, "
                            "instead of --steps/--lbfgs-steps/--gn-steps and their options: e.g. --stage "
                            "adam:steps=500,lr=1e-3 --stage gauss_newton:steps=300,batch=1000; stages: adam, lbfgs "
                            "(l-bfgs), gauss_newton (gn); values: numbers, true/false, none, pairs 0.9/0.999; "
                            "part.option=value sets an option of a part. On --resume the k-th --stage extends the "
                            "run's k-th stage (only steps may change) and more --stage add stages")
    solve.add_argument("--lr", type=_positive_float, default=None, help="Adam learning rate (default: the problem's)")
    solve.add_argument("--batch", type=size, default=None, help="interior points per draw (default: the problem's)")
    solve.add_argument("--seed", type=_integer(0, SEED_LIMIT), default=0, help="seed of the init and the sampling")
    solve.add_argument("--engine", default="jet", choices=["jet", "autograd", "func"], help="derivative engine")
    solve.add_argument("--constraint", default="soft", choices=["soft", "hard"],
                       help="boundary/initial data as loss terms (soft) or built into the network (hard)")
    solve.add_argument("--unknown", action="append", default=[], metavar="NAME=GUESS[:LOWER:UPPER]",
                       help="recover this problem parameter (repeatable), from GUESS within the bounds, e.g. "
                            "c=1.0:0.5:4.0; with --observations")
    solve.add_argument("--observations", default=None, metavar="FILE",
                       help="point observations (.h5 from pinn-sine observe, or .npz) fitted as the loss term "
                            "'data' (weight it with --weight data=W)")
    solve.add_argument("--weighting", default="fixed", choices=["fixed", "gradnorm"],
                       help="loss-term weights: fixed (--weight) or gradient-norm balancing")
    solve.add_argument("--weight", action="append", default=[], metavar="TERM=VALUE",
                       help="fixed weight of a loss term (repeatable; the initial weight with gradnorm)")
    solve.add_argument("--gradnorm-every", type=pos, default=1000, help="steps between gradnorm updates")
    solve.add_argument("--gradnorm-alpha", type=_fraction, default=0.9, help="gradnorm moving-average factor")
    solve.add_argument("--causal-eps", type=_positive_float, default=None,
                       help="causal weighting in time with this eps (time-dependent problems; off by default)")
    solve.add_argument("--causal-chunks", type=size, default=32, help="time chunks of causal weighting")
    solve.add_argument("--resample-every", default="1", help='steps between fresh points, or "fixed"')
    solve.add_argument("--rad", action="store_true", help="residual-based adaptive sampling of the interior")
    solve.add_argument("--rad-pool", type=size, default=None, help="RAD candidates per process (default 10 x batch)")
    solve.add_argument("--rad-k", type=_finite_float, default=1.0, help="RAD exponent k")
    solve.add_argument("--rad-c", type=_finite_float, default=1.0, help="RAD offset c")
    solve.add_argument("--rad-every", type=pos, default=1000, help="steps between RAD pool refreshes")
    solve.add_argument("--compile", action="store_true", help="torch.compile the loss terms")
    solve.add_argument("--kernels", default=None, choices=["auto", "native", "triton", "compiled"],
                       help="activation backend (default: PINN_SINE_KERNELS, else auto = Triton on CUDA, native "
                            "elsewhere); compiled fuses the SIREN/FINER jet nodes with torch.compile: about 1.5x "
                            "faster steps on a CPU after a first step that compiles")
    solve.add_argument("--resolution", type=_integer(2, SIZE_LIMIT), default=None,
                       help="reference grid resolution (default: the problem's)")
    solve.add_argument("--eval-every", type=pos, default=250, help="steps between evaluations")
    solve.add_argument("--checkpoint-every", type=pos, default=500, help="steps between checkpoints")
    solve.add_argument("--time-limit", type=_positive_float, default=None, metavar="SECONDS",
                       help="wall-clock budget of the run in seconds")
    solve.add_argument("--windows", type=_integer(1, (1000, "windows")), default=1, metavar="K",
                       help="march in time: train K equal time windows one after the other, each from the previous "
                            "window's network (time-dependent problems; the stages run in every window, "
                            "--time-limit is shared; --constraint hard for problems first order in time, e.g. "
                            "allen-cahn1d; default 1: one network over the whole interval)")
    solve.add_argument("--window-growth", type=_positive_float, default=1.0, metavar="G",
                       help="with --windows: each window G times as long as the one before (G > 1: short early "
                            "windows, for solutions that change fastest at the start)")
    solve.add_argument("--ensemble", type=_integer(1, (10000, "10000")), default=None, metavar="K",
                       help="the answer is the mean, as functions, of the fits of the last K batches of a "
                            "Gauss-Newton stage that redraws its points (resample_every): Poisson2D/Helmholtz2D past "
                            "1e-9 with K = 8 (README); the last iterate is reported beside it; with --ensemble-every: "
                            "the last K iterates of the last stage")
    solve.add_argument("--ensemble-every", type=_integer(1), default=None, metavar="N",
                       help="with --ensemble K: keep the network after every N-th step of the run's last stage "
                            "(an Adam stage: the mean of its last K iterates as functions; inpainting's recipe: "
                            "--ensemble 6 --ensemble-every 250)")
    solve.add_argument("--config", default=None, metavar="FILE",
                       help="rerun the run of this config.json; other options override its values")
    solve.add_argument("--resume", default=None, metavar="DIR_OR_CHECKPOINT",
                       help="continue a run: its folder (rebuilt from its config.json) or a checkpoint file")
    solve.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    solve.add_argument("--device", type=_device, default="cuda" if torch.cuda.is_available() else "cpu",
                       help="cpu or cuda")
    solve.add_argument("--dtype", default="float32", choices=["float32", "float64"], help="network dtype")
    solve.add_argument("--out", default=None,
                       help="run folder (default: a new runs/<problem>-<date>-<time>; with --resume, its folder)")
    solve.add_argument("--threads", type=_threads, default=None, help=threads_help)
    solve.add_argument("--quiet", action="store_true", help="no progress bar")
    solve.add_argument("--stall", type=_stall_spec, default="default", metavar="off|default|WINDOW[:RTOL]",
                       help="when a stage counts as stalled and the next one starts: off (never), default "
                            "(Stall(): no 1e-5 relative gain of the best loss over 10%% of the stage's steps), or "
                            "a window (a fraction of the stage's steps, or steps) and rtol, e.g. 0.2:1e-6")
    solve.add_argument("--no-recipe", action="store_true",
                       help="ignore the problem's measured set-up (its recipe: network, dtype, stages, stall) and "
                            "use the plain defaults of these options")
    solve.set_defaults(func=cmd_solve)
    parser.solve_actions = {a.dest: a for a in solve._actions if a.dest != "help"}
    if solve_defaults:
        # --stage appends: the stored specs as its default would have the command line's added to them
        solve.set_defaults(**{k: v for k, v in solve_defaults.items()
                              if k in parser.solve_actions and k != "stage"})

    ref = sub.add_parser("reference", help="compute (or load from cache) a problem's FD reference", **kw)
    ref.add_argument("problem", help=f"one of {sorted(PROBLEMS)}")
    ref.add_argument("--resolution", type=_integer(2, SIZE_LIMIT), default=None,
                     help="grid resolution (default: the problem's)")
    ref.add_argument("--out", default=None, help="also write the HDF5 file here")
    ref.add_argument("--no-cache", action="store_true", help="compute afresh, do not read or write the cache")
    ref.add_argument("--threads", type=_threads, default=None, help=threads_help)
    ref.set_defaults(func=cmd_reference)

    observe = sub.add_parser("observe", help="draw synthetic point observations of a problem's solution (HDF5)", **kw)
    observe.add_argument("problem", help=f"one of {sorted(PROBLEMS)}")
    observe.add_argument("--points", type=size, default=None,
                         help="number of observations (uniform, line, ring; sensors: positions x times)")
    observe.add_argument("--noise", type=_finite_float, default=0.0,
                         help="relative noise level: sigma = noise x the RMS of the clean values, per output")
    observe.add_argument("--seed", type=_integer(0, SEED_LIMIT), default=0, help="seed of the points and the noise")
    observe.add_argument("--layout", default="uniform",
                         help="uniform (in the problem's bounds), line:START,END (2 x inputs numbers), "
                              "ring:CX,CY,R (two inputs) or sensors:X1,X2,...@NT (time-dependent problems: the "
                              "positions, a/b in 2-D, at NT equispaced times)")
    observe.add_argument("--source", default="auto", choices=["auto", "exact", "reference"],
                         help="clean values from the exact solution or the FD reference (auto: exact where known)")
    observe.add_argument("--resolution", type=_integer(2, SIZE_LIMIT), default=None,
                         help="reference grid resolution (default: the problem's)")
    observe.add_argument("--max-interpolation-error", type=_positive_float, default=1e-3,
                         help="the largest estimated relative error of the interpolated reference at the points")
    observe.add_argument("--out", required=True, help="the HDF5 file to write (*.h5)")
    observe.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    observe.add_argument("--threads", type=_threads, default=None, help=threads_help)
    observe.set_defaults(func=cmd_observe)

    comp = sub.add_parser("compare", help="problems x activations x seeds against the FD references", **kw)
    comp.add_argument("--problems", type=_name_list("problem", lambda: sorted(PROBLEMS)), default=None,
                      help="comma-separated (default: all)")
    comp.add_argument("--activations", type=_name_list("activation", NET_NAMES), default=None,
                      help=f"comma-separated from {','.join(NET_NAMES)} (default: all)")
    comp.add_argument("--seeds", type=_int_list, default=[0], help="comma-separated integers")
    budget = comp.add_mutually_exclusive_group(required=True)
    budget.add_argument("--steps", type=pos, default=None, help="Adam steps per cell")
    budget.add_argument("--seconds", type=_positive_float, default=None, help="wall-clock seconds per cell")
    comp.add_argument("--width", type=size, default=64, help="hidden units per layer")
    comp.add_argument("--depth", type=size, default=3, help="hidden layers")
    comp.add_argument("--jobs", type=size, default=1, help="cells run in parallel processes")
    comp.add_argument("--constraints", type=_name_list("constraint", ("soft", "hard")), default="soft",
                      help="comma-separated from soft,hard: each cell runs under each (default: soft)")
    comp.add_argument("--out", default="runs/compare", help="output folder")
    comp.add_argument("--threads", type=_threads, default=None,
                      help=threads_help.replace("this process", "each cell"))
    comp.add_argument("--quiet", action="store_true", help="no progress bar")
    comp.set_defaults(func=cmd_compare)

    export = sub.add_parser("export", help="write a run's prediction, reference and error for ParaView (meshio)",
                            **kw)
    export.add_argument("run", metavar="RUN_DIR", help="a finished solve folder")
    export.add_argument("--format", default="vtk", choices=["vtk", "xdmf"],
                        help="vtk (one file per time of a time-dependent run) or xdmf (a time series)")
    export.add_argument("--out", default=None, metavar="PATH",
                        help="the file to write (default: RUN_DIR/<problem>_fields.<format>)")
    export.set_defaults(func=cmd_export)

    probs = sub.add_parser("problems", help="list the problems and their parameters", **kw)
    probs.set_defaults(func=cmd_problems)
    return parser


def _module_specs(argv: list[str]) -> list[str]:
    """The ``--module`` values before the subcommand (loaded before the parser is built,
    so that its problem lists and lookups know the user's problems)."""
    specs, it = [], iter(argv)
    for token in it:
        if token == "--module":
            value = next(it, None)
            if value is not None:
                specs.append(value)
        elif token.startswith("--module="):
            specs.append(token.split("=", 1)[1])
        elif not token.startswith("-"):
            break
    return specs


def main(argv: list[str] | None = None) -> int:
    """The ``pinn-sine`` command. Ctrl-C anywhere ends it with one line and status 130
    (``solve`` first finishes its step and writes a checkpoint)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("pinn-sine: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `pinn-sine ... | head`: the reader left; no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as err:  # a full disk, a folder that cannot be written: one line naming the file
        print(f"pinn-sine: error: {err}", file=sys.stderr)
        return 1


def _main(argv: list[str]) -> int:
    try:
        modules = load_problem_modules(_module_specs(argv))
    except ValueError as err:
        raise SystemExit(f"--module: {err}") from None
    parser = make_parser()
    args, extra = parser.parse_known_args(argv)
    args.modules = [spec for spec in modules if not spec.startswith("entry point ")]
    if extra and args.command == "problems":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if hasattr(args, "threads"):
        args.threads = resolve_threads(args.threads)
        set_threads(args.threads)
    if args.command == "solve":
        stored = stored_config(args)
        if stored is not None:  # the stored run's options become the defaults
            parser = make_parser(solve_defaults=stored["options"])
            args, extra = parser.parse_known_args(argv)
            args.modules = [spec for spec in modules if not spec.startswith("entry point ")]
            args.threads = resolve_threads(args.threads)
            set_threads(args.threads)
            if args.resume is not None and args.config is None:
                args.argv = argv
                check_resume_options(args, extra, stored)
        args.stored = stored
        args.argv = argv
        args.recipe_applied, args.recipe_problem = ({}, {}) if stored is not None else apply_recipe(args)
        if stored is not None and args.problem not in PROBLEMS and stored["stored_modules"]:
            mods = " ".join(f"--module {m}" for m in stored["stored_modules"])
            raise SystemExit(f'the run\'s problem "{args.problem}" was registered by {mods}; give it again: '
                             f"pinn-sine {mods} solve ...")
        if args.problem is None:
            parser.error("solve needs a PROBLEM, one of " + str(sorted(PROBLEMS))
                         + " (or --config FILE / --resume RUN_FOLDER of a run with config.json)")
        if args.problem.startswith("-"):
            parser.error(f"unrecognized argument {args.problem}")
    args.argv = argv
    return args.func(args, extra)


if __name__ == "__main__":
    sys.exit(main())
