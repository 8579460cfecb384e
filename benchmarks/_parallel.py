"""Equal-wall-time runs of a benchmark, ``jobs`` at a time in spawned processes.

Shared by ``constraints.py`` and ``optimizers.py``: both queue (problem, method, seed)
runs of a fixed wall-time budget, print a line as each finishes and a markdown table at
the end, and write the table and one CSV row per run to ``--out``.
"""
from __future__ import annotations

import csv
import json
import math
import multiprocessing as mp
from pathlib import Path
from typing import Callable, Sequence


def run_all(run_one: Callable[[tuple], dict], jobs: Sequence[tuple], workers: int, seconds: float,
            describe: Callable[[dict], str]) -> list[dict]:
    """Run ``run_one`` over ``jobs`` in ``workers`` spawned processes, in order.

    Prints the expected duration first (``ceil(len(jobs) / workers) * seconds``) and
    ``describe(row)`` as each run finishes, so a long benchmark shows progress.
    """
    print(f"{len(jobs)} runs of {seconds:g} s, {workers} at a time: about "
          f"{math.ceil(len(jobs) / workers) * seconds / 60:.0f} minutes", flush=True)
    rows = []
    with mp.get_context("spawn").Pool(workers) as pool:
        for row in pool.imap(run_one, jobs):
            rows.append(row)
            print(describe(row), flush=True)
    return rows


def write_results(out: Path, table: str, rows: list[dict]) -> None:
    """Print ``table``; write it to ``out/results.md`` and ``rows`` to ``out/results.csv``.

    A list-valued column (a logged error curve) is written as JSON, in a ``<name>_json``
    column.
    """
    print("\n" + table)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(table + "\n")
    keys = list(rows[0])
    listed = {k for k in keys if any(isinstance(r.get(k), list) for r in rows)}  # JSON in every row
    header = [f"{k}_json" if k in listed else k for k in keys]
    with open(out / "results.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for r in rows:
            w.writerow([json.dumps(r[k]) if k in listed else r[k] for k in keys])


def curves_figure(panels: Sequence[tuple[str, list]], path: Path, *, ylabel: str,
                  xlabel: str = "wall time [s]") -> None:
    """Curves against wall time on log axes, one panel per ``(title, series)`` side by side,
    each series ``(label, xs, ys, style)`` (``label`` None: not in the legend; ``style``
    extra keywords of ``semilogy``, e.g. a colour); written to ``path`` at 120 dpi."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axs = plt.subplots(1, len(panels), figsize=(6.5 if len(panels) == 1 else 5.5 * len(panels), 4.2),
                            squeeze=False)
    for ax, (title, series) in zip(axs[0], panels):
        for label, xs, ys, style in series:
            ax.semilogy(xs, ys, **{"lw": 1.2, **style}, label=label)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
