"""Solver comparison: problems x activations x seeds (x constraints) at a fixed budget,
against each problem's finite-difference reference.

Every cell (problem, activation, seed, constraint) trains one network and writes its result to
``<out>/cells/<cell>.json`` atomically, so a rerun skips finished cells and an
interrupted cell leaves nothing half-written. After the grid, ``results.csv`` (one row
per run), ``results.md`` (mean and spread over seeds per problem and activation, the
best per problem in bold; a hard-constrained run's column is "<activation>+hard"),
``errors.png`` (a bar chart) and the field figures of the best run per problem
(``best/<problem>/``) are written.
"""
from __future__ import annotations

import csv
import json
import math
import numbers
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._io import atomic_write, write_text
from .nets import NET_NAMES, build_net

#: the activations of the comparison: ``nets.build_net``'s names ("fourier-tanh" is tanh
#: behind Fourier features, the classic remedy for spectral bias)
ACTIVATION_NAMES = NET_NAMES
#: the metric each problem is ranked by, and whether larger is better
METRIC = {"inpainting": ("psnr_region", True)}
DEFAULT_METRIC = ("rel_l2", False)


@dataclass(frozen=True)
class Cell:
    problem: str
    activation: str
    seed: int
    #: "soft" or "hard" (the problem's data built into the network)
    constraint: str = "soft"

    @property
    def name(self) -> str:
        hard = "" if self.constraint == "soft" else f"__{self.constraint}"
        return f"{self.problem}__{self.activation}__s{self.seed}{hard}"


def make_problem(name: str, constraint: str = "soft"):
    """The problem ``name`` with its defaults, under ``constraint``."""
    from .problems import problem_class

    cls = problem_class(name)
    return cls() if constraint == "soft" else cls(constraint=constraint)


def label(row: dict) -> str:
    """A row's column in the tables: its activation, "+hard" under the hard constraint."""
    constraint = row.get("constraint", "soft")
    return row["activation"] if constraint == "soft" else f"{row['activation']}+{constraint}"


def run_cell(cell: Cell, *, steps: int | None, seconds: float | None, width: int, depth: int,
             out: str, threads: int = 1, modules=()) -> dict:
    """Train one cell and write its JSON (and figures). Runs in a worker process, which
    first imports ``modules`` (a user's problems: a spawned worker knows only the
    built-in ones) and holds torch and BLAS to ``threads``."""
    import torch
    from threadpoolctl import threadpool_limits

    from .problems.registry import load_problem_module
    from .train import train
    from .validation.evaluate import evaluate

    for spec in modules:
        load_problem_module(spec)
    torch.set_num_threads(threads)
    threadpool_limits(limits=threads)
    problem = make_problem(cell.problem, cell.constraint)
    ref = problem.reference()
    net = problem.constrain(build_net(problem, cell.activation, width=width, depth=depth, seed=cell.seed))
    t0 = time.perf_counter()
    try:
        result = train(problem, net, steps=steps if steps is not None else 10**9, lr=problem.default_lr,
                       seed=cell.seed, time_limit=seconds, schedule="cosine" if steps is not None else "constant",
                       progress=False)
    except FloatingPointError as err:  # a diverged cell is a result of the table, not the end of it
        result, status = None, f"diverged: {str(err).split(';')[0]}"
    else:
        status = "ok"
    wall = time.perf_counter() - t0
    row = {"problem": cell.problem, "activation": cell.activation, "seed": cell.seed, "constraint": cell.constraint,
           "status": status, "steps": result.history[-1]["step"] if result and result.history else 0,
           "wall_s": round(wall, 2)}
    if result is None:
        row[_metric(cell.problem)[0]] = float("nan")
    else:
        metrics = evaluate(net, ref, prediction=problem.predict(net, ref), exact=problem.exact_solution)
        row.update({k: v for k, v in metrics.items() if isinstance(v, float)})
    cell_dir = Path(out) / "cells" / cell.name
    cell_dir.mkdir(parents=True, exist_ok=True)
    state = net.state_dict()
    atomic_write(cell_dir / "net.pt", lambda tmp: torch.save(state, tmp))
    # The cell's JSON last, atomically: a cell is done exactly when its file exists.
    write_text(Path(out) / "cells" / f"{cell.name}.json", json.dumps(row, indent=1))
    return row


def _die_with_parent(parent: int) -> None:
    """The initializer of compare's worker processes: a worker ends when the process that
    started it dies (killed, even by SIGKILL), rather than finishing its cell and writing
    it into a table nobody is building. On Linux the kernel sends SIGTERM at the parent's
    death (prctl PR_SET_PDEATHSIG); elsewhere a thread watches the parent's pid."""
    import os
    import signal
    import sys
    import threading

    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
    else:
        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=watch, name="compare-parent-watch", daemon=True).start()
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def _names(values, what: str, valid=None) -> tuple:
    """``values`` (a list of names or seeds) as a tuple, or a ValueError/TypeError naming
    ``what``: a list, not empty, without duplicates (a cell would run twice)."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{what} must be a list of {'seeds' if what == 'seeds' else 'names'}, got {values!r}"
                        + (f"; e.g. {what}=[{values!r}]" if isinstance(values, str) else "") + ".")
    values = tuple(values)
    if not values:
        raise ValueError(f"{what} is empty; give at least one" + (f", from {list(valid)}." if valid else "."))
    seen = set()
    for v in values:
        if v in seen:
            raise ValueError(f"{what} gives {v!r} twice ({list(values)}); each cell runs once.")
        seen.add(v)
    return values


def compare(problems, activations=ACTIVATION_NAMES, seeds=(0,), *, steps: int | None = None,
            seconds: float | None = None, width: int = 64, depth: int = 3, out: str = "runs/compare",
            jobs: int = 1, progress: bool = True, constraints=("soft",), threads: int = 1,
            modules=()) -> list[dict]:
    """Run the grid (skipping cells already in ``out``) and write the summaries.

    Exactly one of ``steps`` (Adam steps per cell) and ``seconds`` (wall-clock budget
    per cell) sets the budget. ``jobs`` cells run in parallel processes of ``threads``
    threads each (default 1). ``modules`` (module names or .py paths, as ``pinn-sine
    --module``) register a user's problems in every worker process.
    ``constraints`` ("soft", "hard") runs every cell under each: "hard" trains
    ``problem.constrain(net)`` (:mod:`pinn_sine.constraints`) and needs problems that
    offer it. Returns the rows of all finished cells. The lists must not repeat an entry.
    Worker processes end with the process that started them (a killed compare leaves
    none training on); every file of a cell is written atomically, its JSON last, so a
    rerun skips exactly the finished cells and completes the table.
    """
    from .problems import PROBLEMS
    from .problems.base import CONSTRAINTS
    from .nets.mlp import check_seed
    from .train import _progress

    if (steps is None) == (seconds is None):
        raise ValueError("give exactly one budget: steps=... or seconds=...")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1):
        raise ValueError(f"steps must be an integer >= 1 (Adam steps per cell), got steps={steps!r}.")
    if seconds is not None and (isinstance(seconds, (bool, str)) or not isinstance(seconds, numbers.Real)
                                or not (math.isfinite(seconds) and seconds > 0)):
        raise ValueError(f"seconds must be a finite number > 0 (wall-clock seconds per cell), got seconds={seconds!r}.")
    for name, value in (("width", width), ("depth", depth), ("jobs", jobs), ("threads", threads)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 1 <= value < 2**31:
            raise ValueError(f"{name} must be an integer >= 1, got {name}={value!r}.")
    problems = _names(problems, "problems", sorted(PROBLEMS))
    activations = _names(activations, "activations", ACTIVATION_NAMES)
    seeds = tuple(check_seed(s, f"seeds[{i}]") for i, s in enumerate(_names(seeds, "seeds")))
    for p in problems:
        if p not in PROBLEMS:
            raise ValueError(f'Invalid problem "{p}". Must be one of {sorted(PROBLEMS)}.')
    for a in activations:
        if a not in ACTIVATION_NAMES:
            raise ValueError(f'Invalid activation "{a}". Must be one of {list(ACTIVATION_NAMES)}.')
    constraints = _names(constraints, "constraints", CONSTRAINTS)
    for c in constraints:
        if c not in CONSTRAINTS:
            raise ValueError(f'Invalid constraint "{c}". Must be one of {list(CONSTRAINTS)}.')
    if "hard" in constraints:
        lacking = [p for p in problems if not PROBLEMS[p].offers_hard_constraint]
        if lacking:
            raise ValueError(f"{lacking} offer no hard constraint; problems that do: "
                             f"{sorted(n for n, c in PROBLEMS.items() if c.offers_hard_constraint)}.")
    root = Path(out)
    (root / "cells").mkdir(parents=True, exist_ok=True)
    cells = [Cell(p, a, s, c) for p in problems for a in activations for s in seeds for c in constraints]
    todo = [c for c in cells if not (root / "cells" / f"{c.name}.json").exists()]
    # References first, once, in this process: the workers then read them from the cache
    # (one file per problem: the constraint is not part of a reference's key).
    for p in dict.fromkeys(c.problem for c in todo):
        if progress:
            _say(f"the {p} reference (from the cache, or computed once)")
        PROBLEMS[p]().reference()
    kw = dict(steps=steps, seconds=seconds, width=width, depth=depth, out=str(root), threads=threads,
              modules=tuple(modules))
    bar = _progress(len(cells), len(cells) - len(todo), progress, "compare")
    try:
        if jobs == 1:
            for c in todo:
                run_cell(c, **kw)
                bar.update(1)
        else:
            import multiprocessing as mp

            import os

            with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"),
                                     initializer=_die_with_parent, initargs=(os.getpid(),)) as pool:
                futures = [pool.submit(run_cell, c, **kw) for c in todo]
                for fut in as_completed(futures):
                    fut.result()
                    bar.update(1)
    finally:
        bar.close()
    rows = [json.loads((root / "cells" / f"{c.name}.json").read_text()) for c in cells]
    write_summaries(rows, root, width=width, depth=depth, say=_say if progress else None)
    return rows


def _say(text: str) -> None:
    """A line of what compare is doing, to stderr (beside the bar, never in the tables)."""
    import sys

    print(f"compare: {text}", file=sys.stderr, flush=True)


def _metric(problem: str) -> tuple[str, bool]:
    return METRIC.get(problem, DEFAULT_METRIC)


def summarise(rows: list[dict]) -> dict:
    """{problem: {column: (mean, std, n, diverged)}} of each problem's ranking metric, a
    column per activation and constraint (:func:`label`), over the n seeds that did not
    diverge."""
    out: dict = {}
    for r in rows:
        key, _ = _metric(r["problem"])
        out.setdefault(r["problem"], {}).setdefault(label(r), []).append(r[key])
    return {p: {a: _stats(v) for a, v in acts.items()} for p, acts in out.items()}


def _stats(values: list[float]) -> tuple[float, float, int, int]:
    """(mean, std, n, diverged) over the cells that did not diverge (nan where all did);
    n counts those cells, diverged the others."""
    ok = [v for v in values if not math.isnan(v)]
    diverged = len(values) - len(ok)
    return (float(np.mean(ok)), float(np.std(ok)), len(ok), diverged) if ok else \
        (float("nan"), float("nan"), 0, diverged)


def markdown_table(rows: list[dict]) -> str:
    """Problems as rows, activations (and "+hard" runs) as columns, mean (+- std over
    seeds); best in bold."""
    summ = summarise(rows)
    columns = [a + hard for a in ACTIVATION_NAMES for hard in ("", "+hard")]
    acts = [a for a in columns if any(a in v for v in summ.values())]
    lines = ["| problem (metric) | " + " | ".join(acts) + " |", "|---|" + "---|" * len(acts)]
    for p, vals in summ.items():
        key, larger = _metric(p)
        finite = [a for a in vals if vals[a][2]]
        best = (max if larger else min)(finite, key=lambda a: vals[a][0]) if finite else None
        cells = []
        for a in acts:
            if a not in vals:
                cells.append("")
                continue
            mean, std, n, diverged = vals[a]
            if n == 0:
                cells.append("diverged")
                continue
            text = f"{mean:.2f}" if larger else f"{mean:.2e}"
            if n > 1:
                text += f" ± {std:.2f}" if larger else f" ± {std:.1e}"
            if diverged:
                text += f" ({diverged} diverged)"
            cells.append(f"**{text}**" if a == best else text)
        lines.append(f"| {p} ({key}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_summaries(rows: list[dict], root: Path, *, width: int, depth: int, say=None) -> None:
    """results.csv, results.md, errors.png and the best runs' figures; ``say(text)``
    (None: silent) is told what is being written."""
    say = say or (lambda text: None)
    say(f"writing {root}/results.csv, results.md and errors.png")
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]

    def write_csv(tmp: str) -> None:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=cols)
            w.writeheader()
            w.writerows(rows)

    atomic_write(root / "results.csv", write_csv)
    write_text(root / "results.md", markdown_table(rows) + "\n")
    _bar_chart(rows, root / "errors.png")
    _best_figures(rows, root, width=width, depth=depth, say=say)


def _bar_chart(rows: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure

    summ = summarise(rows)
    problems = list(summ)
    fig = Figure(figsize=(4 * len(problems), 3.6), layout="constrained")
    axs = fig.subplots(1, len(problems), squeeze=False)[0]
    for ax, p in zip(axs, problems):
        key, larger = _metric(p)
        acts = list(summ[p])
        means = [summ[p][a][0] for a in acts]
        stds = [summ[p][a][1] for a in acts]
        ax.bar(range(len(acts)), means, yerr=stds, color="tab:blue")
        ax.set_xticks(range(len(acts)), acts, rotation=45, ha="right")
        if not larger:
            ax.set_yscale("log")
        ax.set_title(f"{p}: {key}")
        ax.grid(alpha=0.3, axis="y")
    fig.savefig(path, dpi=110)


def _best_figures(rows: list[dict], root: Path, *, width: int, depth: int, say) -> None:
    """Field figures of the best run per problem, from its saved weights."""
    import torch

    from .figures import problem_figures
    from .plots import field_comparison
    from .validation.evaluate import describe_errors, evaluate, exact_on_grid

    for p in dict.fromkeys(r["problem"] for r in rows):
        key, larger = _metric(p)
        cands = [r for r in rows if r["problem"] == p and not math.isnan(r[key])]
        if not cands:
            continue
        best = (max if larger else min)(cands, key=lambda r: r[key])
        cell = Cell(best["problem"], best["activation"], best["seed"], best.get("constraint", "soft"))
        problem = make_problem(p, cell.constraint)
        net = problem.constrain(build_net(problem, cell.activation, width=width, depth=depth, seed=cell.seed))
        net.load_state_dict(torch.load(root / "cells" / cell.name / "net.pt", weights_only=True))
        ref = problem.reference()
        target = root / "best" / p
        say(f"rendering the figures of the best {p} run ({label(best)}, seed {best['seed']}, {key} "
            f"{best[key]:.3g}) into {target}")
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        if problem_figures(problem, net, ref, target, activation=label(best)) is None and len(ref.coords) == 2:
            pred = problem.predict(net, ref)
            exact = None if problem.exact_solution is None else exact_on_grid(problem.exact_solution, ref)
            errors = evaluate(net, ref, prediction=pred, exact=exact)
            field_comparison(pred, ref, target / "field.png", exact=exact,
                             title=f"{p} / {label(best)}: {describe_errors(errors)}")
